"""Network policies (k8s/components/network-policies, generated from the SERVICES table of
deploy/k8s-gen/generate.py): the table of who calls whom agrees with the code both ways (NATS, MariaDB and Redis
from each service's ServiceSpec, third parties from the settings its settings class declares); the built
policies allow exactly the table, with the Gateway as the only caller of exactly the services the route table
sends to; the component builds with the production overlay and with its example peers, and kubernetes-validate
accepts every policy.

Read statically (ast), so no service is imported.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.kube import by_kind, find_kubectl, kustomize

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "k8s" / "overlays" / "production"
BASE = ROOT / "k8s" / "base"
COMPONENT = ROOT / "k8s" / "components" / "network-policies"
ROUTES = tomllib.loads((ROOT / "deploy" / "routes.toml").read_text(encoding="utf-8"))
PORTS: dict[str, int] = {name: int(port) for name, port in ROUTES["services"].items()}
ROUTED = {route["service"] for route in ROUTES["route"]}  # the services the Gateway sends requests to
SERVICE_DIRS = sorted(p.name for p in (ROOT / "services").iterdir() if (p / p.name).is_dir())
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
# Own settings that look like an address but are not called: the suite's own public base URL.
NOT_CALLED = {"API_URL"}
ADDRESS = re.compile(r"(_URL|_API|_HOST)$")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_gen_generate_net", ROOT / "deploy" / "k8s-gen" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()


def _peers(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert (document["kind"], document["metadata"]["name"]) == (GEN.PEERS_KIND, GEN.PEERS_NAME)
    return document["spec"]


# --- what the code reaches -------------------------------------------------------------------------------------


def code_reach(service: str) -> tuple[set[str], set[str]]:
    """(the peers the service's code opens connections to, own settings naming an address no peer stands for).

    NATS, MariaDB and Redis from the flags of its ServiceSpec (servicekit connects to what they switch on); the
    third parties from the settings its settings class in app.py declares (THIRD_PARTIES names each one's)."""
    tree = ast.parse((ROOT / "services" / service / service / "app.py").read_text(encoding="utf-8"))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "ServiceSpec"
    ]
    assert len(calls) == 1, f"{service}: one ServiceSpec(...) in app.py"
    flags = {"uses_db": True, "uses_redis": True, "uses_bus": True}  # ServiceSpec's defaults
    for keyword in calls[0].keywords:
        if keyword.arg in flags:
            assert isinstance(keyword.value, ast.Constant), f"{service}: {keyword.arg} must be a literal"
            flags[keyword.arg] = bool(keyword.value.value)
    fields = {
        statement.target.id.upper()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any(ast.unparse(base).endswith("CommonSettings") for base in node.bases)
        for statement in node.body
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
    }
    assert fields, f"{service}: no settings class deriving from CommonSettings in app.py"
    reach = {"dns"}
    reach |= {
        peer for flag, peer in (("uses_bus", "nats"), ("uses_db", "mariadb"), ("uses_redis", "redis")) if flags[flag]
    }
    reach |= {party for party, setting in GEN.THIRD_PARTIES.items() if setting in fields}
    unknown = {name for name in fields if ADDRESS.search(name)} - set(GEN.THIRD_PARTIES.values()) - NOT_CALLED
    return reach, unknown


def table_problems() -> list[str]:
    """Where the generator's table (GEN.SERVICES, through GEN.egress) and the code disagree."""
    problems = []
    for service in SERVICE_DIRS:
        reach, unknown = code_reach(service)
        table = set(GEN.egress(service))
        if reach - table:
            problems.append(f"{service}: the code reaches {sorted(reach - table)}, the table does not let it")
        if table - reach:
            problems.append(f"{service}: the table lets it reach {sorted(table - reach)}, the code does not")
        if unknown:
            problems.append(f"{service}: settings {sorted(unknown)} name an address that is in no THIRD_PARTIES")
    return problems


def test_reader_finds_what_the_services_declare() -> None:
    # Guards the static reader: auth has neither database nor Redis, link's SMS gateway setting is seen.
    assert code_reach("auth") == ({"dns", "nats"}, set())
    assert "sms" in code_reach("link")[0] and "mariadb" in code_reach("link")[0]


def test_the_table_agrees_with_the_code() -> None:
    assert table_problems() == []


def test_the_table_check_catches_disagreements(monkeypatch) -> None:
    table = GEN.SERVICES
    monkeypatch.setitem(table, "link", dataclasses.replace(table["link"], calls=()))  # the SMS gateway forgotten
    monkeypatch.setitem(table, "auth", dataclasses.replace(table["auth"], redis=True))  # auth uses no Redis
    monkeypatch.setitem(table, "conference", dataclasses.replace(table["conference"], calls=("livekit", "encode")))
    monkeypatch.setitem(table, "telemetry", dataclasses.replace(table["telemetry"], database=None))
    problems = table_problems()
    assert {problem.split(":")[0] for problem in problems} == {"link", "auth", "conference", "telemetry"}, problems
    monkeypatch.undo()
    # A new third-party address in a settings class without a THIRD_PARTIES entry is reported too.
    monkeypatch.setitem(GEN.THIRD_PARTIES, "sms", "SMS_GATEWAY_URL")
    assert any("SMS_API_URL" in problem for problem in table_problems())


README_NAMES = {
    "MariaDB": "mariadb",
    "Redis": "redis",
    "LiveKit": "livekit",
    "SMS gateway": "sms",
    "radio location API": "radio",
    "encode API": "encode",
}


def test_the_k8s_readme_shows_the_table() -> None:
    text = (ROOT / "k8s" / "README.md").read_text(encoding="utf-8")
    section = text[text.index("| service | called by (ingress) |") :].split("\n\n")[0].splitlines()[2:]
    shown = {}
    for row in section:
        service, called_by, calls = (cell.strip() for cell in row.strip("|").split("|"))
        assert called_by == ("the Gateway" if service in ROUTED else "—"), service
        shown[service] = {"dns", "nats"} | {README_NAMES[name.strip()] for name in calls.split(",") if name != "—"}
    assert shown == {service: set(GEN.egress(service)) for service in SERVICE_DIRS}


# --- what the built policies allow ----------------------------------------------------------------------------


def policy_problems(docs: list[dict[str, Any]], peers: dict[str, Any]) -> list[str]:
    """Where the built NetworkPolicies differ from the table, given the peers the overlay declared."""
    problems = []
    policies = by_kind(docs, "NetworkPolicy")
    deployments = by_kind(docs, "Deployment")
    if set(policies) != {"default-deny", *SERVICE_DIRS}:
        problems.append(f"policies {sorted(policies)}: want default-deny and one per service")
    deny = policies.get("default-deny", {}).get("spec", {})
    if deny != {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}:
        problems.append(f"default-deny does not deny everything both ways: {deny}")
    rules = {peer: {"to": value["to"], "ports": value["ports"]} for peer, value in peers.items() if "to" in value}
    for service in SERVICE_DIRS:
        spec = policies.get(service, {}).get("spec", {})
        selector = spec.get("podSelector", {}).get("matchLabels", {})
        selected = [
            name
            for name, deployment in deployments.items()
            if selector and selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        ]
        if selected != [service]:
            problems.append(f"{service}: its policy selects the pods of {selected}")
        if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
            problems.append(f"{service}: policyTypes {spec.get('policyTypes')}")
        gateway = [{"from": peers["gateway"]["from"], "ports": [{"protocol": "TCP", "port": PORTS[service]}]}]
        if spec.get("ingress", []) != (gateway if service in ROUTED else []):
            problems.append(f"{service}: ingress {spec.get('ingress')} is not (only) the Gateway on its port")
        allowed = []
        for rule in spec.get("egress", []):
            peer = next((peer for peer, expected in rules.items() if rule == expected), None)
            if peer is None:
                problems.append(f"{service}: egress rule {rule} is no declared peer")
            allowed.append(peer)
        if allowed != list(GEN.egress(service)):
            problems.append(f"{service}: egress to {allowed}, the table says {list(GEN.egress(service))}")
    return problems


def validation_errors(docs: list[dict[str, Any]]) -> list[str]:
    errors = []
    for doc in docs:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{doc['metadata']['name']} (k8s {version}): {exc.message}")
    return errors


@pytest.fixture(scope="module")
def kubectl() -> str:
    found = find_kubectl()
    if found is None:
        pytest.fail("no kubectl with kustomize >= v4: run deploy/install-tools.sh")
    return found


@pytest.fixture(scope="module")
def production(kubectl: str) -> list[dict[str, Any]]:
    return kustomize(kubectl, OVERLAY)


def test_production_policies_follow_the_table_and_validate(production) -> None:
    assert policy_problems(production, _peers(OVERLAY / "network-peers.yaml")) == []
    policies = [doc for doc in production if doc["kind"] == "NetworkPolicy"]
    assert policies and validation_errors(policies) == []
    assert all(doc["metadata"]["namespace"] == "ems" for doc in policies)
    assert not [doc for doc in production if doc["kind"] == GEN.PEERS_KIND]  # local config, never applied


def test_the_gateway_reaches_exactly_the_routed_services(production) -> None:
    gateway_from = _peers(OVERLAY / "network-peers.yaml")["gateway"]["from"]
    reachable = {
        name
        for name, policy in by_kind(production, "NetworkPolicy").items()
        for rule in policy["spec"].get("ingress", [])
        if rule.get("from") == gateway_from
    }
    assert ROUTED and reachable == ROUTED


def test_the_policy_check_catches_mistakes(production) -> None:
    peers = _peers(OVERLAY / "network-peers.yaml")
    docs = copy.deepcopy(production)
    policies = by_kind(docs, "NetworkPolicy")
    policies["link"]["spec"]["egress"].pop()  # the SMS gateway unreachable
    policies["auth"]["spec"]["ingress"].append({"from": [{"podSelector": {}}]})  # every pod may call auth
    policies["conference"]["spec"]["egress"].append({"ports": [{"port": 443}]})  # anywhere on 443
    policies["telemetry"]["spec"]["podSelector"] = {"matchLabels": {"app.kubernetes.io/part-of": "ems"}}
    problems = policy_problems(docs, peers)
    assert {problem.split(":")[0] for problem in problems} == {"link", "auth", "conference", "telemetry"}, problems


def _overlay(tmp_path: Path, peers: Path | None) -> Path:
    """A throwaway overlay: the base, the component, and a copy of ``peers`` (kustomize loads files only from
    below an overlay)."""
    resources = [os.path.relpath(BASE, tmp_path)]
    if peers:
        shutil.copy(peers, tmp_path / "peers.yaml")
        resources.append("peers.yaml")
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": resources,
                "components": [os.path.relpath(COMPONENT, tmp_path)],
            }
        ),
        encoding="utf-8",
    )
    return tmp_path


def test_the_component_builds_with_its_example_peers(kubectl, tmp_path) -> None:
    docs = kustomize(kubectl, _overlay(tmp_path, COMPONENT / "peers.example.yaml"))
    assert policy_problems(docs, _peers(COMPONENT / "peers.example.yaml")) == []
    assert validation_errors([doc for doc in docs if doc["kind"] == "NetworkPolicy"]) == []


def test_the_component_without_peers_does_not_build(kubectl, tmp_path) -> None:
    # Never the placeholders silently: an overlay that forgets the peers gets an error, not open policies.
    result = subprocess.run(
        [kubectl, "kustomize", str(_overlay(tmp_path, None))], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and GEN.PEERS_KIND in result.stderr, result.stderr
