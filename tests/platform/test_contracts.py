"""The contracts package (libs/contracts): one module per publishing service, holding only that service's subjects,
and each service publishes and serves only the subjects of its own module. Static checks (no running suite).

A service "publishes or serves" a subject where the subject reaches ``add_event(conn, SUBJECT, ...)``,
``new_event(SUBJECT, ...)``, ``<bus|js|nc>.publish(SUBJECT, ...)``, ``<bus|js|nc>.serve(SUBJECT, ...)``, or a function
of the service that passes one of its parameters on to one of those (found by the scan, e.g. conference's
``publish_room_detail(conn, nodes, SUBJECT, room)``). Each subject there must resolve, through the file's imports
(following local variables), to a constant of ``contracts.<service>``; anything the scan cannot resolve fails.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

import contracts

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "conference", "link", "realtime", "recording", "telemetry")
NATS_RECEIVERS = {"bus", "js", "nc"}  # ``<...>.bus.publish(...)``, ``self.nc.publish(...)``: NATS, not e.g. an SSE hub


def contract_modules() -> dict[str, object]:
    return {
        info.name: importlib.import_module(f"contracts.{info.name}")
        for info in pkgutil.iter_modules(contracts.__path__)
    }


def subjects_of(module: object) -> dict[str, str]:
    """The module's subject constants: its upper-case module-level strings."""
    return {name: value for name, value in vars(module).items() if name.isupper() and isinstance(value, str)}


# ---- (1) a module holds only its own service's subjects ------------------------------------------------------------
def test_one_module_per_publishing_service() -> None:
    modules = contract_modules()
    assert modules, "no contracts modules"
    assert set(modules) <= set(SERVICES), f"contracts modules that name no service: {set(modules) - set(SERVICES)}"


def test_every_subject_is_its_modules_service() -> None:
    wrong = []
    for svc, module in contract_modules().items():
        subjects = subjects_of(module)
        assert subjects, f"contracts.{svc} holds no subject"
        for name, subject in subjects.items():
            if not (subject.startswith(f"{svc}.") or subject.startswith(f"rpc.{svc}.")):
                wrong.append(f"contracts.{svc}.{name} = {subject!r}")
    assert not wrong, f"subjects in another service's module: {wrong}"


def test_no_subject_or_struct_is_defined_twice() -> None:
    subjects: dict[str, str] = {}
    structs: dict[str, str] = {}
    for svc, module in contract_modules().items():
        for name, subject in subjects_of(module).items():
            assert subject not in subjects, f"{subject!r}: contracts.{svc}.{name} and {subjects[subject]}"
            subjects[subject] = f"contracts.{svc}.{name}"
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, msgspec.Struct) and value.__module__ == module.__name__:
                assert name not in structs, f"struct {name}: contracts.{svc} and {structs[name]}"
                structs[name] = f"contracts.{svc}"


# ---- (2) a service publishes and serves only its own subjects ------------------------------------------------------
@dataclass(frozen=True)
class Sink:
    """A call that publishes or serves: the subject is positional argument ``index`` or keyword ``keyword``."""

    index: int
    keyword: str
    nats_receiver: bool = False  # only as a method of a bus / JetStream / NATS client


BASE_SINKS = {
    "add_event": Sink(1, "subject"),
    "new_event": Sink(0, "subject"),
    "publish": Sink(0, "subject", nats_receiver=True),
    "serve": Sink(0, "subject", nats_receiver=True),
    "serve_snapshot": Sink(1, "subject"),  # servicekit.rebuild.serve_snapshot(bus, SUBJECT, readers)
}


class Unresolved(Exception):
    pass


@dataclass
class SourceFile:
    path: Path
    tree: ast.Module
    parents: dict[ast.AST, ast.AST]
    imports: dict[str, str]  # local name -> "module" (import X as name) or "module:attr" (from module import attr)

    @classmethod
    def load(cls, path: Path) -> SourceFile:
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        imports: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    imports[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    imports[alias.asname or alias.name] = f"{node.module}:{alias.name}"
        return cls(path, tree, parents, imports)

    def where(self, node: ast.AST) -> str:
        return f"{self.path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"

    def enclosing_functions(self, node: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield node

    def imported_module(self, name: str) -> str | None:
        """The module a local name stands for (``from contracts import recording as ev`` -> contracts.recording)."""
        target = self.imports.get(name)
        if target is None:
            return None
        return target.replace(":", ".")

    def resolve(self, expr: ast.expr, scope: ast.AST, seen: frozenset[str] = frozenset()) -> set[str]:
        """The ``module.CONSTANT`` names a subject expression can take (e.g. {"contracts.link.LINK_CREATED"})."""
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            module = self.imported_module(expr.value.id)
            if module is None:
                raise Unresolved(f"{ast.unparse(expr)}: {expr.value.id} is no imported module")
            return {f"{module}.{expr.attr}"}
        if isinstance(expr, ast.IfExp):
            return self.resolve(expr.body, scope, seen) | self.resolve(expr.orelse, scope, seen)
        if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Dict):  # {...}[key]
            return set().union(*(self.resolve(value, scope, seen) for value in expr.value.values))
        if (  # {...}.get(key, default)
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr == "get"
            and isinstance(expr.func.value, ast.Dict)
        ):
            values = [*expr.func.value.values, *expr.args[1:]]
            return set().union(*(self.resolve(value, scope, seen) for value in values))
        if isinstance(expr, ast.Name):
            name = expr.id
            if name in seen:
                raise Unresolved(f"{name}: assigned from itself")
            for function in self.enclosing_functions(scope):  # a local (or closure) variable: every value it gets
                values = list(assignments(function, name))
                if values:
                    return set().union(*(self.resolve(value, value, seen | {name}) for value in values))
            target = self.imports.get(name)
            if target is None or ":" not in target:
                raise Unresolved(
                    f"{name}: neither imported nor a local variable (a subject defined outside contracts?)"
                )
            return {target.replace(":", ".")}
        raise Unresolved(f"{ast.unparse(expr)}: not a subject constant")


def assignments(function: ast.AST, name: str) -> Iterator[ast.expr]:
    """The values assigned to ``name`` in ``function`` (not in functions nested in it)."""
    for node in walk_own(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    yield node.value
                elif isinstance(target, ast.Tuple | ast.List) and any(
                    isinstance(element, ast.Name) and element.id == name for element in target.elts
                ):
                    raise Unresolved(f"{name}: assigned by unpacking")
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr | ast.AugAssign):
            target = node.target
            if isinstance(target, ast.Name) and target.id == name:
                if node.value is None or isinstance(node, ast.AugAssign):
                    raise Unresolved(f"{name}: assigned in a way the scan does not follow")
                yield node.value
        elif isinstance(node, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith | ast.comprehension):
            targets = (
                [node.target]
                if isinstance(node, ast.For | ast.AsyncFor | ast.comprehension)
                else [item.optional_vars for item in node.items if item.optional_vars is not None]
            )
            for target in targets:
                if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target)):
                    raise Unresolved(f"{name}: bound by a loop or with statement")


def walk_own(function: ast.AST) -> Iterator[ast.AST]:
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))


def parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [arg.arg for arg in [*function.args.posonlyargs, *function.args.args]]


def receiver_name(func: ast.Attribute) -> str:
    value = func.value
    return value.attr if isinstance(value, ast.Attribute) else value.id if isinstance(value, ast.Name) else ""


def sink_of(call: ast.Call, sinks: dict[str, Sink]) -> Sink | None:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    sink = sinks.get(name or "")
    if sink is None:
        return None
    if sink.nats_receiver and not (isinstance(func, ast.Attribute) and receiver_name(func) in NATS_RECEIVERS):
        return None
    return sink


def subject_argument(call: ast.Call, sink: Sink) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == sink.keyword:
            return keyword.value
    if len(call.args) > sink.index and not any(isinstance(arg, ast.Starred) for arg in call.args[: sink.index + 1]):
        return call.args[sink.index]
    return None


def service_files(svc: str) -> list[SourceFile]:
    return [SourceFile.load(path) for path in sorted((ROOT / "services" / svc / svc).rglob("*.py"))]


def published_subjects(svc: str, files: list[SourceFile]) -> tuple[list[tuple[str, str]], list[str]]:
    """(where, module.CONSTANT) of every subject the service publishes or serves, and what the scan cannot resolve."""
    sinks = dict(BASE_SINKS)
    while True:  # wrappers: functions passing a parameter on as the subject (and wrappers of those)
        found = False
        for source in files:
            for call in (node for node in ast.walk(source.tree) if isinstance(node, ast.Call)):
                sink = sink_of(call, sinks)
                argument = sink and subject_argument(call, sink)
                if not isinstance(argument, ast.Name):
                    continue
                function = next(source.enclosing_functions(call), None)
                if function is None or argument.id not in parameters(function) or function.name in sinks:
                    continue
                params = parameters(function)
                is_method = isinstance(source.parents.get(function), ast.ClassDef) and params[:1] in (["self"], ["cls"])
                sinks[function.name] = Sink(params.index(argument.id) - int(is_method), argument.id)
                found = True
        if not found:
            break
    published: list[tuple[str, str]] = []
    unresolved: list[str] = []
    for source in files:
        for call in (node for node in ast.walk(source.tree) if isinstance(node, ast.Call)):
            sink = sink_of(call, sinks)
            if sink is None:
                continue
            argument = subject_argument(call, sink)
            if argument is None:
                unresolved.append(f"{source.where(call)}: no subject argument in {ast.unparse(call)[:80]}")
                continue
            function = next(source.enclosing_functions(call), None)
            if (
                isinstance(argument, ast.Name)
                and function is not None
                and function.name in sinks
                and argument.id in parameters(function)
            ):
                continue  # a wrapper passing its parameter on: its callers are checked
            try:
                for subject in source.resolve(argument, call):
                    published.append((source.where(call), subject))
            except Unresolved as exc:
                unresolved.append(f"{source.where(call)}: {exc}")
    return published, unresolved


def test_services_publish_and_serve_only_their_own_subjects() -> None:
    modules = contract_modules()
    wrong: list[str] = []
    for svc in SERVICES:
        published, unresolved = published_subjects(svc, service_files(svc))
        wrong += [f"{svc}: cannot resolve {item}" for item in unresolved]
        for where, subject in published:
            module, _, constant = subject.rpartition(".")
            if module != f"contracts.{svc}":
                wrong.append(f"{where}: {svc} publishes or serves {subject}, not a subject of contracts.{svc}")
            elif not hasattr(modules[svc], constant):
                wrong.append(f"{where}: contracts.{svc} has no {constant}")
    assert not wrong, "\n".join(wrong)


def test_the_scan_finds_what_the_services_publish() -> None:
    """Guards the scan itself: it finds every subject of each module published or served by its service (a subject
    nobody publishes is either a call the scan misses or a contract in the wrong module), and known sites (direct,
    through ``ev.``, a wrapper, a local variable)."""
    found = {svc: {subject for _, subject in published_subjects(svc, service_files(svc))[0]} for svc in SERVICES}
    for svc, module in contract_modules().items():
        missing = {f"contracts.{svc}.{name}" for name in subjects_of(module)} - found[svc]
        assert not missing, f"{svc} publishes or serves none of {sorted(missing)} (as far as the scan sees)"
    assert "contracts.link.LINK_CREATED" in found["link"]  # add_event through link.events.link_created
    assert "contracts.link.RPC_LINK_ROOM" in found["link"]  # bus.serve
    assert "contracts.conference.ROOM_CLOSED" in found["conference"]  # publish_room_detail (wrapper)
    assert "contracts.conference.ROOM_DETAIL_CHANGED" in found["conference"]  # wrapper, via a local dict lookup
    assert "contracts.recording.RECORDING_EGRESS_UPDATED" in found["recording"]  # ev.X through a local variable
    assert "contracts.telemetry.TASK_SMS_REQUESTED" in found["telemetry"]
    assert not found["auth"] and not found["realtime"]  # they publish and serve nothing (hence no module)


def test_no_service_imports_another_service() -> None:
    wrong = []
    for svc in SERVICES:
        others = set(SERVICES) - {svc}
        for source in service_files(svc):
            for node in ast.walk(source.tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                wrong += [f"{source.where(node)}: imports {name}" for name in names if name.split(".")[0] in others]
    assert not wrong, "\n".join(wrong)
