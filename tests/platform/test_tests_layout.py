"""The test tree's layout (fast: reads the source only): test modules sit in tests/<service>/ (named
test_<service>*.py), tests/flows/ (end to end across services) or tests/platform/ (the suite as a whole), with
unique basenames and no __init__.py (pytest imports them by basename; a package tests/<service> would shadow the
service's own); and no module under tests/ imports a test module: shared helpers live in tests/support.py and its
topic modules, shared fixtures in tests/conftest.py."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / p.name).is_dir())
GROUPS = {*SERVICES, "flows", "platform"}


def python_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts)


def all_test_modules() -> list[Path]:
    return [p for p in python_files() if p.name.startswith("test_")]


def imported_test_modules(path: Path) -> list[str]:
    """Modules named test_* that ``path`` imports, anywhere in it (function bodies included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = [base] if is_test_module(base) else [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [name for name in names if is_test_module(name)]
    return found


def is_test_module(dotted: str) -> bool:
    return any(part.startswith("test_") for part in dotted.split("."))


def test_no_module_imports_a_test_module() -> None:
    offenders = {str(p.relative_to(ROOT)): imported_test_modules(p) for p in python_files()}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_test_modules_sit_in_their_group() -> None:
    misplaced = []
    for path in all_test_modules():
        group = path.relative_to(TESTS).parts
        if len(group) != 2 or group[0] not in GROUPS:
            misplaced.append(str(path.relative_to(ROOT)))
        elif group[0] in SERVICES and not path.name.startswith(f"test_{group[0]}"):
            misplaced.append(str(path.relative_to(ROOT)))
    assert misplaced == []


def test_basenames_are_unique_and_groups_are_no_packages() -> None:
    counts = Counter(p.name for p in all_test_modules())
    assert [name for name, n in counts.items() if n > 1] == []
    assert [g for g in sorted(GROUPS) if (TESTS / g / "__init__.py").exists()] == []
