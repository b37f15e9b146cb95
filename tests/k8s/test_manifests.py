"""Static checks of k8s/ and the service Dockerfiles: render, validate strictly, assert invariants.

Every Deployment in every rendered target (k8s/base and each k8s/overlays/*) and every
services/*/Dockerfile is discovered, so a new service's yaml or Dockerfile gets the same checks.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shlex
import shutil
import subprocess
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
TARGETS = [K8S / "base", *sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))]
DOCKERFILES = sorted((ROOT / "services").glob("*/Dockerfile"))
K8S_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
NON_ROOT_UID = 10001
DEFAULT_DRAIN_S, DEFAULT_GRACE_S = 1.0, 5.0
# Who may open a gRPC connection to whom, where a service's NetworkPolicy says so.
CALLERS = {"memory": {"agent", "llm"}, "llm": {"agent"}, "chain": {"agent"}}
SECRET_NAME = re.compile(r"(^|_)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|URI|DSN)(_|$)")
SECRET_VALUE = re.compile(r"://[^/\s:@]+:[^/\s@]+@|\b(sk|xai)-[A-Za-z0-9_-]{16,}")
QUANTITY = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def target_id(target: Path) -> str:
    return str(target.relative_to(K8S))


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
        found: list[Doc] = [c for c in self.pod["containers"] if "grpc" in self.ports(c)]
        assert len(found) == 1, "exactly one container serves the port named grpc"
        return found[0]

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
    assert "memory" in apps


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
        for path in folder.glob("*.yaml"):
            assert path.name == "kustomization.yaml" or path.name in used, path


# --- every Deployment ------------------------------------------------------------------------


def test_grpc_probes_check_health(workload: Workload) -> None:
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
    env = workload.env
    drain = float(env.get(f"{workload.prefix}DRAIN_S", DEFAULT_DRAIN_S))
    grace = float(env.get(f"{workload.prefix}SHUTDOWN_GRACE_S", DEFAULT_GRACE_S))
    assert workload.pod.get("terminationGracePeriodSeconds", 30) > drain + grace


def test_env_binds_the_declared_ports(workload: Workload) -> None:
    env, ports = workload.env, Workload.ports(workload.main)
    assert env[f"{workload.prefix}HOST"] == "0.0.0.0"
    assert int(env.get(f"{workload.prefix}PORT", ports["grpc"])) == ports["grpc"]
    assert int(env[f"{workload.prefix}METRICS_PORT"]) == ports["metrics"]


def test_secrets_come_by_reference(workload: Workload) -> None:
    for container in workload.containers:
        for item in container.get("env", []):
            if SECRET_NAME.search(item["name"]):
                assert "value" not in item, f"{item['name']} is a secret: use secretKeyRef"
                assert item["valueFrom"]["secretKeyRef"]["optional"] is True
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


# --- Dockerfiles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuations joined and comments dropped, numbered by stage."""
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
class Dockerfile:
    path: Path

    @property
    def service(self) -> str:
        return self.path.parent.name

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def instructions(self) -> list[Instruction]:
        return parse_dockerfile(self.text)

    @property
    def final(self) -> list[Instruction]:
        last = self.instructions[-1].stage
        return [i for i in self.instructions if i.stage == last]

    def of(self, keyword: str, stage: list[Instruction] | None = None) -> list[str]:
        return [i.args for i in (stage or self.instructions) if i.keyword == keyword]


@pytest.fixture(params=DOCKERFILES, ids=lambda p: p.parent.name)
def dockerfile(request: pytest.FixtureRequest) -> Dockerfile:
    return Dockerfile(request.param)


def test_every_service_image_has_a_dockerfile() -> None:
    for deployment in find(rendered(K8S / "base"), "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            name, _, _ = split_image(container["image"])
            assert name.startswith("puppet/")
            assert (ROOT / "services" / name.removeprefix("puppet/") / "Dockerfile").is_file()


def test_dockerfile_is_multi_stage_on_pinned_images(dockerfile: Dockerfile) -> None:
    stages: list[str] = []
    for args in dockerfile.of("FROM"):
        words = [w for w in args.split() if not w.startswith("--")]
        image = words[0]
        if image not in stages:
            _, tag, digest = split_image(image)
            assert digest or (tag and tag != "latest"), image
        assert len(words) == 3, f"name every stage: {args}"
        assert words[1].upper() == "AS", args
        stages.append(words[2])
    assert len(stages) >= 2
    assert split_image(dockerfile.of("FROM")[-1].split()[0])[:2] == (
        "python",
        "3.11-slim-bookworm",
    )
    assert re.search(r"^#.*@sha256:", dockerfile.text, re.MULTILINE), "say how to pin by digest"


def test_dockerfile_installs_only_the_locked_service(dockerfile: Dockerfile) -> None:
    uv_version = re.search(r'^UV_VERSION = "(.+)"$', (ROOT / "dev.py").read_text(), re.M)
    assert uv_version
    uv_images = re.findall(r"ghcr\.io/astral-sh/uv\S*", dockerfile.text)
    assert uv_images
    assert set(uv_images) == {f"ghcr.io/astral-sh/uv:{uv_version[1]}"}, "the uv dev.py pins"
    syncs = [r for r in dockerfile.of("RUN") if "uv sync" in r]
    assert syncs
    for run in syncs:
        assert {"--frozen", "--no-dev", "--mount=type=cache,target=/root/.cache/uv"} <= set(
            run.split()
        )
        assert f"--package puppet-{dockerfile.service}" in run
    assert env_values(dockerfile.instructions)["UV_PROJECT_ENVIRONMENT"] == "/app/.venv"
    assert any("/app/.venv /app/.venv" in c for c in dockerfile.of("COPY", dockerfile.final))


def test_dockerfile_runs_the_module_as_non_root(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    (user,) = dockerfile.of("USER", final)
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), "numeric, non-root"
    assert int(user.split(":")[0]) == NON_ROOT_UID
    (entrypoint,) = dockerfile.of("ENTRYPOINT", final)
    assert json.loads(entrypoint) == ["python", "-m", f"puppet_{dockerfile.service}"]
    assert not dockerfile.of("CMD", final)
    assert not dockerfile.of("SHELL")
    assert not any("astral-sh/uv" in c for c in dockerfile.of("COPY", final)), "no uv at runtime"
    assert env_values(final)[f"PUPPET_{dockerfile.service.upper()}_HOST"] == "0.0.0.0"


def test_dockerfile_bakes_in_no_secrets(dockerfile: Dockerfile) -> None:
    for ins in dockerfile.instructions:
        if ins.keyword in ("ENV", "ARG"):
            for key in env_keys(ins.args):
                assert not SECRET_NAME.search(key), key
    assert not re.search(r"\.env\b", " ".join(dockerfile.of("COPY") + dockerfile.of("ADD")))


def test_dockerfile_exposes_the_deployment_ports(dockerfile: Dockerfile) -> None:
    exposed = {int(p.split("/")[0]) for args in dockerfile.of("EXPOSE") for p in args.split()}
    workload = Workload(K8S / "base", dockerfile.service)
    assert exposed == set(Workload.ports(workload.main).values())


def test_build_context_is_filtered() -> None:
    patterns = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] not in "#"
    ]
    assert patterns[0] == "**", "deny everything, then allow-list what images need"
    assert {"!pyproject.toml", "!uv.lock", "!libs", "!services"} <= set(patterns)
    assert {"**/.venv", "**/tests", "**/__pycache__"} <= set(patterns)
