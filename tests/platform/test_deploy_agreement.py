"""The deployment artefacts agree with the code: every service directory is deployed (Kubernetes and compose),
on the port deploy/routes.toml gives it, with the settings its settings class reads, and the generated files
are up to date with deploy/k8s-gen/generate.py.

Settings are found statically (ast), so the test imports no service: the fields of every class deriving from
servicekit's CommonSettings in services/<svc>/<svc>/*.py, plus names read straight from os.environ.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.kube import by_kind, find_kubectl, kustomize

ROOT = Path(__file__).resolve().parents[2]
ROUTES = tomllib.loads((ROOT / "deploy" / "routes.toml").read_text(encoding="utf-8"))
PORTS: dict[str, int] = {name: int(port) for name, port in ROUTES["services"].items()}
SERVICE_DIRS = sorted(p.name for p in (ROOT / "services").iterdir() if (p / p.name).is_dir())
KIT = ROOT / "libs" / "servicekit" / "servicekit"
# Read by the image's start command, not by settings.
RUNTIME = {"SERVICE", "PORT"}
# What the brief requires each service to get, beyond the common set.
COMMON_REQUIRED = {"SERVICE_NAME", "REDIS_URL", "NATS_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_HOST"}
MYSQL_REQUIRED = {"MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DATABASE"}
DATABASES = {"conference": "conference", "link": "link", "telemetry": "telemetry", "recording": "recording"}
EXTRA_REQUIRED = {
    "link": {"CUSTOM_CHARSET", "ROOM_DAY_DEFAULT_TIMEOUT", "SMS_ENABLE", "SMS_API_URL", "SMS_API_KEY"},
    "auth": {"AUTH_API_KEY"},
}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|_KEY)$")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_gen_generate", ROOT / "deploy" / "k8s-gen" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
    return names


def _environ_reads(tree: ast.AST) -> set[str]:
    """Names read as os.environ.get("X"), os.environ["X"], os.getenv("X"), env.get("X") on an environ."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            target = ast.unparse(node.func.value)
            if (node.func.attr == "get" and "environ" in target) or ast.unparse(node.func) == "os.getenv":
                if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    names.add(node.args[0].value)
        if isinstance(node, ast.Subscript) and "environ" in ast.unparse(node.value):
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                names.add(node.slice.value)
    return names


def settings_reads(files: list[Path], known_bases: set[str]) -> tuple[set[str], set[str]]:
    """(env names of the settings fields declared in ``files`` by classes deriving from known_bases,
    env names read directly)."""
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in files]
    classes = [node for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    bases = set(known_bases)
    changed = True
    while changed:  # settings classes deriving from other settings classes
        changed = False
        for cls in classes:
            if cls.name not in bases and _base_names(cls) & bases:
                bases.add(cls.name)
                changed = True
    fields = {
        statement.target.id.upper()
        for cls in classes
        if cls.name in bases and (_base_names(cls) & bases or cls.name in known_bases)
        for statement in cls.body
        if isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and not ast.unparse(statement.annotation).startswith(("ClassVar", "typing.ClassVar"))
    }
    direct = set().union(*(_environ_reads(tree) for tree in trees)) if trees else set()
    return fields, direct


COMMON_FIELDS, KIT_DIRECT = settings_reads(sorted(KIT.glob("*.py")), {"CommonSettings"})


def service_reads(service: str) -> tuple[set[str], set[str]]:
    """(every env name the service reads, the ones its own settings class declares)."""
    own, direct = settings_reads(sorted((ROOT / "services" / service / service).glob("*.py")), {"CommonSettings"})
    return COMMON_FIELDS | KIT_DIRECT | own | direct, own


def test_settings_reader_finds_real_fields() -> None:
    # Guards the static reader itself: known fields of servicekit and of auth.
    assert {"MYSQL_HOST", "MYSQL_DATABASE", "REDIS_URL", "NATS_URL", "LIVEKIT_API_SECRET"} <= COMMON_FIELDS
    assert "APP_TIMEZONE" in KIT_DIRECT
    every, own = service_reads("auth")
    assert "AUTH_API_KEY" in own and "MYSQL_HOST" not in own and "MYSQL_HOST" in every


@pytest.fixture(scope="module")
def k8s_env() -> dict[str, dict[str, str]]:
    """service -> {env name: 'config' | 'secret' | 'value'} from the rendered production overlay."""
    kubectl = find_kubectl()
    if kubectl is None:
        pytest.fail("no kubectl with kustomize >= v4: run deploy/install-tools.sh")
    docs = kustomize(kubectl, ROOT / "k8s" / "overlays" / "production")
    config_maps = by_kind(docs, "ConfigMap")
    result = {}
    for name, deployment in by_kind(docs, "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env.update(dict.fromkeys(config_maps[source["configMapRef"]["name"]]["data"], "config"))
        for item in container.get("env", []):
            env[item["name"]] = "secret" if "secretKeyRef" in item.get("valueFrom", {}) else "value"
        result[name] = env
    return result


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def test_generated_deployment_files_are_up_to_date() -> None:
    assert GEN.main(["--check"]) == 0, "run `uv run python deploy/k8s-gen/generate.py`"


def test_services_and_ports_agree_everywhere(k8s_env, compose) -> None:
    assert set(SERVICE_DIRS) == set(PORTS) == set(GEN.SERVICES), "services/, routes.toml and the generator"
    assert set(k8s_env) == set(SERVICE_DIRS)
    assert {name for name, svc in compose["services"].items() if "build" in svc} == set(SERVICE_DIRS)
    for service in SERVICE_DIRS:
        assert compose["services"][service]["environment"]["PORT"] == str(PORTS[service])


def test_kubernetes_and_compose_give_each_service_the_same_settings(k8s_env, compose) -> None:
    for service in SERVICE_DIRS:
        definition = compose["services"][service]
        # compose bakes SERVICE into the image as a build argument; Kubernetes sets it on the one shared image.
        assert definition["build"]["args"]["SERVICE"] == service
        compose_names = set(definition["environment"]) | {"SERVICE"}
        assert set(k8s_env[service]) == compose_names, service


def test_every_deployed_setting_is_read_by_its_service(k8s_env) -> None:
    shared = set(GEN.COMMON_CONFIG)  # one ConfigMap for all: infrastructure addresses
    unread = {}
    for service in SERVICE_DIRS:
        reads, _ = service_reads(service)
        extra = set(k8s_env[service]) - reads - RUNTIME - shared - GEN.PLANNED
        if extra:
            unread[service] = sorted(extra)
    assert unread == {}, "deployed but never read (typo, or the setting was renamed)"


def test_planned_settings_are_still_unread() -> None:
    # Once a service reads a PLANNED setting, drop it from PLANNED in the generator so the check above applies.
    read_now = {name for service in SERVICE_DIRS for name in service_reads(service)[0] & GEN.PLANNED}
    assert read_now == set()


def test_every_setting_a_service_declares_is_deployed(k8s_env) -> None:
    missing = {}
    for service in SERVICE_DIRS:
        _, own = service_reads(service)
        absent = own - set(k8s_env[service]) - set(COMMON_FIELDS)
        if absent:
            missing[service] = sorted(absent)
    assert missing == {}, "add these to SERVICES in deploy/k8s-gen/generate.py and regenerate"


def test_required_settings_are_deployed_and_secrets_come_from_the_secret(k8s_env, compose) -> None:
    for service in SERVICE_DIRS:
        env = k8s_env[service]
        required = COMMON_REQUIRED | EXTRA_REQUIRED.get(service, set())
        if service in DATABASES:
            required |= MYSQL_REQUIRED
            assert compose["services"][service]["environment"]["MYSQL_DATABASE"] == DATABASES[service]
        else:
            assert not set(env) & MYSQL_REQUIRED, f"{service} has no database"
        assert required <= set(env), (service, sorted(required - set(env)))
        for name, source in env.items():
            if SECRET_NAME.search(name):
                assert source == "secret", (service, name)
