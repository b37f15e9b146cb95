"""The gateway's and the canaries' manifests: what Envoy gets is valid, and weights stay safe."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from puppet_gateway.config import GatewaySettings, runtime_key
from puppet_gateway.envoy import Envoy

from tests.k8s.render import Doc, render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"


def _find(docs: list[Doc], kind: str, name: str) -> Doc:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.fixture(scope="module")
def base() -> list[Doc]:
    return render(K8S / "base")


@pytest.fixture(scope="module")
def with_canary(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    folder = tmp_path_factory.mktemp("canary-target")
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{K8S / 'base'}]\ncomponents: [{K8S / 'components' / 'canary'}]\n"
    )
    return render(folder)


def _container(docs: list[Doc], name: str) -> Doc:
    container: Doc = _find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    return container


def _gateway_env(docs: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = _find(docs, "ConfigMap", "gateway-config")["data"]
    return data


def test_gateway_probes_envoy_and_never_exposes_admin(base):
    container = _container(base, "gateway")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/gateway/healthz", "port": "http"}
    service = _find(base, "Service", "gateway")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    env = _gateway_env(base)
    assert env["PUPPET_GATEWAY_ADMIN_PORT"] == "9901"
    assert "PUPPET_GATEWAY_ADMIN_HOST" not in env  # the loopback default is kept


def test_weights_are_a_configmap_volume_envoy_watches(base):
    pod = _find(base, "Deployment", "gateway")["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "weights"]
    assert "subPath" not in mount, "subPath mounts never receive ConfigMap updates"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "weights"]
    assert volume["configMap"]["name"] == "gateway-weights"
    root = _gateway_env(base)["PUPPET_GATEWAY_RUNTIME_ROOT"]
    assert root == f"{mount['mountPath']}/..data"


def test_every_split_in_the_weights_sums_to_100(base):
    weights = _find(base, "ConfigMap", "gateway-weights")["data"]
    totals: collections.Counter[str] = collections.Counter()
    for key, value in weights.items():
        _, split, _ = key.split(".", 2)
        totals[split] += int(value)
    assert totals
    assert set(totals.values()) == {100}, totals
    assert runtime_key("memory", "memory_canary_failover") in weights
    assert weights[runtime_key("rest", "legacy")] == "100"


def test_grace_outlasts_the_prestop_drain(base):
    pod = _find(base, "Deployment", "gateway")["spec"]["template"]["spec"]
    pre_stop = " ".join(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"])
    assert "/healthcheck/fail" in pre_stop
    assert "time.sleep(10)" in pre_stop
    assert pod["terminationGracePeriodSeconds"] > 10 + 5


def _envoy_from(docs: list[Doc], tmp_path: Path) -> Envoy:
    env: dict[str, Any] = dict(_gateway_env(docs))
    settings = GatewaySettings.from_env(
        env, runtime_root=tmp_path / "runtime" / "current", descriptor=None
    )
    return Envoy(settings, tmp_path / "envoy")


@pytest.mark.parametrize("target", ["base", "with_canary"])
def test_envoy_accepts_the_config_the_manifests_produce(target, request, tmp_path):
    envoy = _envoy_from(request.getfixturevalue(target), tmp_path)
    assert envoy.settings.listen_host == "0.0.0.0"
    assert envoy.settings.admin_host == "127.0.0.1"
    done = envoy.validate()
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("version", ["1.32.0", kubernetes_validate.latest_version()])
def test_canary_component_validates_strictly(with_canary, version):
    for doc in with_canary:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("service", ["memory", "llm"])
def test_canary_runs_beside_stable_without_taking_its_traffic(with_canary, service):
    canary = _find(with_canary, "Deployment", f"{service}-canary")
    stable = _find(with_canary, "Deployment", service)
    labels = canary["spec"]["template"]["metadata"]["labels"]
    assert labels["puppet.dev/canary-of"] == service
    stable_selector = _find(with_canary, "Service", service)["spec"]["selector"]
    assert any(labels.get(k) != v for k, v in stable_selector.items()), "stable would serve it"
    canary_service = _find(with_canary, "Service", f"{service}-canary")
    assert canary_service["spec"]["clusterIP"] == "None"
    assert canary_service["spec"]["selector"].items() <= labels.items()
    got, want = _container(with_canary, f"{service}-canary"), _container(with_canary, service)
    for same in ("readinessProbe", "livenessProbe", "startupProbe", "securityContext", "envFrom"):
        assert got[same] == want[same], same
    assert stable["spec"]["replicas"] >= 2
    assert canary["spec"]["replicas"] == 1
    port = next(p["port"] for p in canary_service["spec"]["ports"] if p["name"] == "grpc")
    env = _gateway_env(with_canary)
    assert env[f"PUPPET_GATEWAY_{service.upper()}_CANARY_ADDR"] == f"{service}-canary:{port}"
