"""compose.yaml: valid against the Compose Specification schema, healthy start order, no committed secrets.

The machine has no Docker engine, so `docker compose config` cannot run: the schema from shared/schemas stands
in for it. shared/ sits beside the repository (../shared from the repo root), in CI as here.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"
COMPOSE = ROOT / "compose.yaml"
ROUTES = tomllib.loads((ROOT / "deploy" / "routes.toml").read_text(encoding="utf-8"))
PORTS: dict[str, int] = {name: int(port) for name, port in ROUTES["services"].items()}
EDGE_PORT = int(ROUTES["edge"]["port"])
INFRA = {"mariadb", "redis", "nats", "livekit", "edge"}
SERVICE_DIRS = sorted(p.name for p in (ROOT / "services").iterdir() if (p / p.name).is_dir())
# Secret-looking variable names: their values must come from the environment, never from the file.
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|_KEYS?|_TOKEN)$")
# The only literal defaults a secret may have: the LiveKit dev server's own credentials (DESIGN.md), or empty.
ALLOWED_SECRET_DEFAULTS = {"devkey", "secret", ""}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    assert SCHEMA.exists(), f"compose schema not found at {SCHEMA} (shared/ must sit beside the repository)"
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_matches_the_compose_specification(compose, validator) -> None:
    assert _errors(validator, compose) == []


def test_schema_check_rejects_a_broken_compose_file(compose, validator) -> None:
    # The same validation must catch real mistakes, or the test above proves nothing.
    broken = copy.deepcopy(compose)
    broken["services"]["edge"]["depends_on"]["auth"]["condition"] = "service_ready"
    broken["services"]["redis"]["healthcheck"]["test"] = {"cmd": "redis-cli ping"}
    broken["services"]["nats"]["restrat"] = "always"
    errors = _errors(validator, broken)
    assert any(e.startswith("services/edge/depends_on") for e in errors), errors
    assert any(e.startswith("services/redis/healthcheck/test") for e in errors), errors
    assert any("restrat" in e for e in errors), errors


def test_compose_runs_every_service_and_the_backing_services(compose) -> None:
    assert set(compose["services"]) == INFRA | set(SERVICE_DIRS)


def test_every_container_has_a_healthcheck_and_waits_for_healthy_dependencies(compose) -> None:
    services = compose["services"]
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check["test"][0] in {"CMD", "CMD-SHELL"} and not check.get("disable"), name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert condition == {"condition": "service_healthy"}, (name, dependency)


def test_service_containers_are_built_from_the_workspace_image_on_their_own_port(compose) -> None:
    for name in SERVICE_DIRS:
        service = compose["services"][name]
        assert service["build"] == {
            "context": ".",
            "dockerfile": "deploy/docker/Dockerfile",
            "args": {"SERVICE": name},
        }
        assert service["environment"]["PORT"] == str(PORTS[name])
        assert service["environment"]["SERVICE_NAME"] == name
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{PORTS[name]}/ready" in probe
        needs = set(service["depends_on"])
        assert {"redis", "nats"} <= needs
        assert ("mariadb" in needs) == ("MYSQL_DATABASE" in service["environment"]), name
    assert (ROOT / "deploy" / "docker" / "Dockerfile").is_file()


def test_backing_services(compose) -> None:
    services = compose["services"]
    assert "-js" in services["nats"]["command"]
    assert services["mariadb"]["image"].startswith("mariadb:")
    assert "--collation-server=utf8mb4_unicode_ci" in services["mariadb"]["command"]
    livekit = services["livekit"]
    assert livekit["image"].startswith("livekit/livekit-server")
    assert "--dev" in livekit["command"]
    # LiveKit's webhooks reach recording's /webhook on recording's own port.
    assert f"http://recording:{PORTS['recording']}/webhook" in livekit["environment"]["LIVEKIT_CONFIG"]


def test_edge_is_nginx_with_the_generated_config_on_port_5500(compose) -> None:
    edge = compose["services"]["edge"]
    assert edge["image"].startswith("nginx:")
    assert "./deploy/edge/nginx.compose.conf:/etc/nginx/nginx.conf:ro" in edge["volumes"]
    assert (ROOT / "deploy" / "edge" / "nginx.compose.conf").is_file()
    assert EDGE_PORT == 5500
    assert any(str(port).endswith(f":{EDGE_PORT}:{EDGE_PORT}") for port in edge["ports"]), edge["ports"]
    assert set(edge["depends_on"]) == set(SERVICE_DIRS)


def test_edge_container_has_every_file_the_config_imports(compose) -> None:
    conf = (ROOT / "deploy" / "edge" / "nginx.compose.conf").read_text(encoding="utf-8")
    mounts = {}
    for volume in compose["services"]["edge"]["volumes"]:
        source, target, mode = volume.split(":")
        assert mode == "ro" and (ROOT / source).exists(), volume
        mounts[target] = source
    js_path = re.search(r"js_path (\S+);", conf)
    for script in re.findall(r"js_import \w+ from (\S+);", conf):
        assert js_path, "js_import without js_path"
        assert f"{js_path.group(1)}/{script}" in mounts, script
    # Files nginx serves itself (the API reference at /docs): each under a mount, and there in the checkout.
    for alias in re.findall(r"alias (\S+);", conf):
        mount = next((t for t in mounts if alias.startswith(t.rstrip("/") + "/")), None)
        assert mount, f"alias {alias} is not under a mounted directory"
        assert (ROOT / mounts[mount] / alias[len(mount) :].lstrip("/")).exists(), alias
    modules = re.findall(r"load_module (\S+);", conf)
    # The official nginx image keeps its dynamic modules (njs included) under /etc/nginx/modules.
    assert all(m.startswith("modules/") for m in modules), modules
    assert compose["services"]["edge"]["image"].startswith("nginx:") or not modules


def test_edge_config_upstreams_are_the_compose_services(compose) -> None:
    conf = (ROOT / "deploy" / "edge" / "nginx.compose.conf").read_text(encoding="utf-8")
    upstreams = dict(re.findall(r"upstream svc_\w+ \{[^}]*?server ([\w-]+):(\d+);", conf))
    assert {name: int(port) for name, port in upstreams.items()} == {s: PORTS[s] for s in SERVICE_DIRS}
    assert f"listen {EDGE_PORT}" in conf
    for name in SERVICE_DIRS:
        assert compose["services"][name]["environment"]["PORT"] == upstreams[name]


def _secret_problems(compose: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if not SECRET_NAME.search(key):
                continue
            value = str(value)
            # Nothing but interpolations (and separators) may make up a secret's value.
            if re.search(r"[A-Za-z0-9]", INTERPOLATION.sub("", value)):
                problems.append(f"{name}.{key} has a literal value")
            for match in INTERPOLATION.finditer(value):
                op, arg = match.group("op"), match.group("arg") or ""
                if op in {":-", "-"} and arg not in ALLOWED_SECRET_DEFAULTS:
                    problems.append(f"{name}.{key} defaults to a literal secret")
    return problems


def test_no_secret_is_committed_in_compose(compose) -> None:
    assert _secret_problems(compose) == []
    # The database password is required from the environment (no default at all).
    for name in SERVICE_DIRS:
        env = compose["services"][name]["environment"]
        if "MYSQL_PASSWORD" in env:
            assert re.fullmatch(r"\$\{MYSQL_ROOT_PASSWORD:\?[^}]*\}", env["MYSQL_PASSWORD"]), name
    assert compose["services"]["mariadb"]["environment"]["MARIADB_ROOT_PASSWORD"].startswith("${MYSQL_ROOT_PASSWORD:?")


def test_secret_check_catches_hard_coded_values(compose) -> None:
    leaky = copy.deepcopy(compose)
    leaky["services"]["auth"]["environment"]["AUTH_API_KEY"] = "s3cr3t-key"
    leaky["services"]["link"]["environment"]["SMS_API_KEY"] = "${SMS_API_KEY:-abc123}"
    leaky["services"]["conference"]["environment"]["MYSQL_PASSWORD"] = "${MYSQL_ROOT_PASSWORD}pw"
    assert sorted(_secret_problems(leaky)) == [
        "auth.AUTH_API_KEY has a literal value",
        "conference.MYSQL_PASSWORD has a literal value",
        "link.SMS_API_KEY defaults to a literal secret",
    ]
