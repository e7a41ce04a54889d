"""Generate docs/architecture.md from the code: the services, their tables, the events each publishes and
consumes, the requests each answers and asks, and which module serves each route of the route table.

    python -m deploy.architecture          # rewrite docs/architecture.md
    python -m deploy.architecture --check  # fail when it is out of date (the test suite runs this)

Sources, all read from the code: subjects from ``libs/contracts`` (a module per publishing service); who uses a
subject from the imports of each service's modules (a service imports a subject constant to publish, serve,
consume or ask it); tables from each service's migrations; routes from ``deploy/routes.toml`` and the
controllers of each service's Litestar app.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.edge.routes import Route, load

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "architecture.md"
CONTRACTS = ROOT / "libs" / "contracts" / "contracts"
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / p.name / "app.py").is_file())
_TABLE = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?`?(\w+)`?", re.IGNORECASE)


@dataclass
class Subject:
    value: str
    owner: str
    constant: str
    users: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # service -> importing modules
    consumers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # service -> modules

    @property
    def is_request(self) -> bool:
        return self.value.startswith("rpc.")


def contract_subjects() -> dict[tuple[str, str], Subject]:
    """(owner, constant name) -> subject, from the string constants of each contracts module."""
    found: dict[tuple[str, str], Subject] = {}
    for path in sorted(CONTRACTS.glob("*.py")):
        if path.stem == "__init__":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and "." in node.value.value
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.isupper():
                        found[(path.stem, target.id)] = Subject(node.value.value, path.stem, target.id)
    return found


def module_name(service: str, path: Path) -> str:
    relative = path.relative_to(ROOT / "services" / service).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def scan_uses(subjects: dict[tuple[str, str], Subject]) -> None:
    """Record, per subject, the modules of each service that import it (by name, or as ``alias.NAME``)."""
    for service in SERVICES:
        for path in sorted((ROOT / "services" / service / service).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = module_name(service, path)
            aliases: dict[str, str] = {}  # local name of a contracts module -> owner
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("contracts"):
                    if node.module == "contracts":
                        for alias in node.names:
                            aliases[alias.asname or alias.name] = alias.name
                        continue
                    owner = node.module.split(".")[1]
                    for alias in node.names:
                        subject = subjects.get((owner, alias.name))
                        if subject:
                            subject.users[service].add(module)
            if aliases:
                for node in ast.walk(tree):
                    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                        owner = aliases.get(node.value.id)
                        subject = subjects.get((owner, node.attr)) if owner else None
                        if subject:
                            subject.users[service].add(module)


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` one or more trailing tokens."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


class _Values:
    """What a name in one module can stand for: string constants of the module, imported contract subjects,
    and the elements of the literal tuples a ``for`` loop walks."""

    def __init__(self, tree: ast.Module, subjects: dict[tuple[str, str], Subject]) -> None:
        self.constants: dict[str, ast.expr] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.constants[target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("contracts."):
                owner = node.module.split(".")[1]
                for alias in node.names:
                    subject = subjects.get((owner, alias.name))
                    if subject:
                        self.constants[alias.asname or alias.name] = ast.Constant(subject.value)

    def literal(self, node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Name) and node.id in self.constants:
            node = self.constants[node.id]
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    def rows(self, node: ast.expr) -> list[ast.expr]:
        if isinstance(node, ast.Name) and node.id in self.constants:
            node = self.constants[node.id]
        return list(node.elts) if isinstance(node, ast.Tuple | ast.List) else []


def _subscriptions(tree: ast.Module, values: _Values) -> list[tuple[str, str | None]]:
    """(owner stream, filter subject or None for the whole stream) of every ``*.consume(...)`` call."""
    loops: dict[int, ast.For] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            for inner in ast.walk(node):
                loops.setdefault(id(inner), node)  # the outermost loop around each node
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "consume"):
            continue
        args = {i: a for i, a in enumerate(node.args)} | {k.arg: k.value for k in node.keywords if k.arg}
        owner_expr, filter_expr = args.get(0, args.get("owner")), args.get(3, args.get("filter_subject"))
        bindings: list[dict[str, ast.expr]] = [{}]
        loop = loops.get(id(node))
        if loop is not None and isinstance(loop.target, ast.Tuple):
            names = [t.id if isinstance(t, ast.Name) else "" for t in loop.target.elts]
            bindings = [dict(zip(names, values.rows(row), strict=False)) for row in values.rows(loop.iter)]
        for bound in bindings:

            def value(expr: ast.expr | None, bound: dict[str, ast.expr] = bound) -> str | None:
                if isinstance(expr, ast.Name) and expr.id in bound:
                    expr = bound[expr.id]
                return values.literal(expr)

            owner = value(owner_expr)
            if owner is None:
                raise ValueError(f"a consume() call whose stream cannot be read: {ast.unparse(node)}")
            found.append((owner, value(filter_expr)))
    return found


def scan_consumers(subjects: dict[tuple[str, str], Subject]) -> None:
    """A service consumes a subject its subscription's filter selects; a subscription to a whole stream counts
    only for the subjects the service names (its handlers dispatch on them)."""
    for service in SERVICES:
        for path in sorted((ROOT / "services" / service / service).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = module_name(service, path)
            for owner, pattern in _subscriptions(tree, _Values(tree, subjects)):
                for subject in subjects.values():
                    if subject.owner != owner or subject.is_request:
                        continue
                    if pattern is not None and _matches(pattern, subject.value):
                        subject.consumers[service].add(module)
                    elif pattern is None and service in subject.users:
                        subject.consumers[service] |= subject.users[service]


def tables() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for service in SERVICES:
        names: list[str] = []
        for path in sorted((ROOT / "services" / service / service).rglob("migrations/*.sql")):
            for name in _TABLE.findall(path.read_text(encoding="utf-8")):
                if name not in names:
                    names.append(name)
        found[service] = names
    return found


def route_modules() -> dict[str, list[tuple[str, set[str]]]]:
    """service -> [(handler path, modules)] from each service's Litestar app (built, never started)."""
    found: dict[str, list[tuple[str, set[str]]]] = {}
    for service in SERVICES:
        app_module = importlib.import_module(f"{service}.app")
        app: Any = getattr(app_module, "http_app", None) or app_module.app
        paths: dict[str, set[str]] = defaultdict(set)
        for route in app.routes:
            single = getattr(route, "route_handler", None)  # a bare @asgi route has one handler
            for handler in getattr(route, "route_handlers", None) or ([single] if single else []):
                module = handler.fn.__module__
                if module.startswith(f"{service}."):
                    paths[route.path].add(module.removeprefix(f"{service}."))
        socket_server = _socket_server_module(service)
        if socket_server:  # Socket.IO is served beside the Litestar app, by python-socketio
            paths["/socket.io/*"].add(socket_server)
            paths["/api/realtime/socket.io/*"].add(socket_server)
        found[service] = sorted(paths.items())
    return found


def _socket_server_module(service: str) -> str | None:
    for path in sorted((ROOT / "services" / service / service).rglob("*.py")):
        if "socketio.AsyncServer(" in path.read_text(encoding="utf-8"):
            return module_name(service, path).removeprefix(f"{service}.")
    return None


def code_of(route: Route, handlers: list[tuple[str, set[str]]]) -> list[str]:
    """The modules whose handlers serve ``route`` (its exact path, or every path under a prefix route)."""
    location = route.location
    modules: set[str] = set()
    for path, owners in handlers:
        template = re.sub(r"\{[^}]+\}", "*", path)
        if template == route.path or (route.is_prefix and (path + "/").startswith(location)):
            modules |= owners
    return sorted(modules)


def _node(service: str) -> str:
    return f"svc_{service}"


def render() -> str:
    subjects = contract_subjects()
    scan_uses(subjects)
    scan_consumers(subjects)
    owned_tables = tables()
    handlers = route_modules()
    events = sorted((s for s in subjects.values() if not s.is_request), key=lambda s: s.value)
    requests = sorted((s for s in subjects.values() if s.is_request), key=lambda s: s.value)

    out = [
        "# Architecture",
        "",
        "Generated from the code by `python -m deploy.architecture` (the test suite checks it is current): do not",
        "edit by hand. Subjects come from `libs/contracts` (one module per publishing service), who uses them from",
        "the imports of each service's modules, tables from the migrations, routes from `deploy/routes.toml` and",
        "each service's controllers. Modules are named inside their service's package (`services/<name>/<name>/`).",
        "",
        "## Services, their tables and what flows between them",
        "",
        "Solid arrows: events on JetStream, from the publisher to each consumer. Dotted arrows: request/reply, from",
        "the service that asks to the one that answers. Every service also has the servicekit outbox and",
        "handled-event tables.",
        "",
        "```mermaid",
        "flowchart LR",
    ]
    for service in SERVICES:
        listed = owned_tables[service]
        label = f"<b>{service}</b>" + ("<br/>" + "<br/>".join(listed) if listed else "<br/><i>no tables</i>")
        out.append(f'  {_node(service)}["{label}"]')
    edges: dict[tuple[str, str, bool], list[str]] = defaultdict(list)
    for subject in events:
        for service in sorted(subject.consumers):
            if service != subject.owner:
                edges[(subject.owner, service, False)].append(subject.value)
    for subject in requests:
        for service in sorted(subject.users):
            if service != subject.owner:
                edges[(service, subject.owner, True)].append(subject.value)
    for (source, target, is_request), values in sorted(edges.items()):
        label = "<br/>".join(values)
        arrow = f'-. "{label}" .->' if is_request else f'-- "{label}" -->'
        out.append(f"  {_node(source)} {arrow} {_node(target)}")
    out += ["```", ""]

    def modules(subject: Subject, own: bool, consumed: bool = False) -> str:
        users = [
            f"{service}: " + ", ".join(f"`{m}`" for m in sorted(mods))
            for service, mods in sorted((subject.consumers if consumed else subject.users).items())
            if (service == subject.owner) == own
        ]
        return "; ".join(users) or "—"

    out += [
        "## Events",
        "",
        "| subject | constant | published by | consumed by |",
        "|---|---|---|---|",
    ]
    for subject in events:
        constant = f"`contracts.{subject.owner}.{subject.constant}`"
        consumed = modules(subject, False, consumed=True)
        out.append(f"| `{subject.value}` | {constant} | {modules(subject, True)} | {consumed} |")
    out += [
        "",
        "## Requests (request/reply)",
        "",
        "| subject | constant | answered by | asked by |",
        "|---|---|---|---|",
    ]
    for subject in requests:
        constant = f"`contracts.{subject.owner}.{subject.constant}`"
        out.append(f"| `{subject.value}` | {constant} | {modules(subject, True)} | {modules(subject, False)} |")
    out += [
        "",
        "## Routes",
        "",
        "Every route of `deploy/routes.toml`, its owner and the module of its controller.",
        "",
        "| path | methods | service | code |",
        "|---|---|---|---|",
    ]
    for route in load().routes:
        code = ", ".join(f"`{m}`" for m in code_of(route, handlers[route.service])) or "—"
        out.append(f"| `{route.path}` | {', '.join(route.methods)} | {route.service} | {code} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when docs/architecture.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else None
    if current == text:
        return 0
    if args.check:
        print(f"{OUTPUT.relative_to(ROOT)} is out of date: run `python -m deploy.architecture`", file=sys.stderr)
        return 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
