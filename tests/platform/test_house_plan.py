"""Every service follows the house plan of the README: the same entries in every service package, controllers
listed in routes/, domain code free of I/O, and no service importing another (fast: reads the source only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / p.name / "app.py").is_file())
# Entries a service package may have: a module or, once it grows, a package of the same name.
PLAN = {"app", "routes", "domain", "repository", "events", "clients", "migrations"}
EXTRA = {"realtime": {"sockets"}}  # realtime's Socket.IO server: its second entry point
# What a domain module never imports: storage, messaging, HTTP, the web framework, servicekit's I/O parts.
IO_MODULES = {
    "asyncmy", "redis", "nats", "httpx", "litestar", "socketio", "livekit", "arq", "aiofiles",
    "servicekit.db", "servicekit.bus", "servicekit.web", "servicekit.jobs", "servicekit.schedule",
}  # fmt: skip


def package(service: str) -> Path:
    return ROOT / "services" / service / service


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_package_holds_only_the_plans_entries(service: str) -> None:
    allowed = PLAN | EXTRA.get(service, set())
    entries = {p.stem if p.suffix == ".py" else p.name for p in package(service).iterdir()}
    entries -= {"__init__", "__pycache__"}
    assert entries <= allowed, f"{service}: {sorted(entries - allowed)} are not in the house plan"
    assert {"app", "routes", "domain", "events"} <= entries


@pytest.mark.parametrize("service", SERVICES)
def test_routes_list_their_controllers(service: str) -> None:
    routes = package(service) / "routes"
    assert (routes / "__init__.py").is_file()
    tree = ast.parse((routes / "__init__.py").read_text(encoding="utf-8"))
    names = {t.id for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign) for t in _targets(n)}
    assert "CONTROLLERS" in names, f"{service}: routes/__init__.py does not define CONTROLLERS"
    assert f"{service}.routes" in imports(package(service) / "app.py")


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.Name]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [t for t in targets if isinstance(t, ast.Name)]


@pytest.mark.parametrize("service", SERVICES)
def test_domain_code_does_no_io(service: str) -> None:
    base = package(service)
    files = [base / "domain.py"] if (base / "domain.py").is_file() else sorted((base / "domain").rglob("*.py"))
    assert files, f"{service} has no domain"
    for path in files:
        bad = {m for m in imports(path) if m in IO_MODULES or m.split(".")[0] in IO_MODULES}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service: str) -> None:
    others = set(SERVICES) - {service}
    for path in package(service).rglob("*.py"):
        crossing = {m for m in imports(path) if m.split(".")[0] in others}
        assert not crossing, f"{path.relative_to(ROOT)} imports {sorted(crossing)}"


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The import reader finds what a domain module must not have."""
    sample = tmp_path / "domain.py"
    sample.write_text("from servicekit.db import Database\nimport redis.asyncio\n", encoding="utf-8")
    assert {"servicekit.db", "redis.asyncio"} <= imports(sample)
