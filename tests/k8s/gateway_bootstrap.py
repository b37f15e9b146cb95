"""Render k8s/base/gateway/envoy.yaml with the gateway's own template, for Kubernetes upstreams.

    uv run python tests/k8s/gateway_bootstrap.py > k8s/base/gateway/envoy.yaml

Needs `puppet_gateway.config` (gateway/). The committed file is checked against this output by
tests/k8s, so a change of the template shows up as a failing test until the file is re-rendered.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "puppet"
ROUTED = ("agent", "memory", "llm")
"""Services the gateway routes, each with a canary. chain is never routed: only agent calls it."""
LEGACY_PORT = 3000
RUNTIME_ROOT = "/etc/envoy/runtime/..data"
DESCRIPTOR = "/app/descriptors/agent.binpb"
ADMIN_PORT = 9901
OPS_PORT = 9464
HEADER = """\
# Envoy 1.40 bootstrap of the gateway in Kubernetes (mounted at /etc/envoy/envoy.yaml from the
# generated ConfigMap gateway-envoy; edit this file, and the hash-suffixed name rolls the pods).
# Rendered by the gateway's own template (puppet_gateway.config.render) for these upstreams, plus
# the `ops` listener: `uv run python tests/k8s/gateway_bootstrap.py > k8s/base/gateway/envoy.yaml`.
#   gateway  0.0.0.0:8080  REST /api/ split legacy <-> AgentService (transcoded on its share);
#                          native gRPC per service split <svc>_stable <-> <svc>_canary_failover
#                          (aggregate [canary, stable]); x-canary: always|never pins a request.
#   ops      0.0.0.0:9464  /ready and /stats/prometheus only, proxied to the admin interface,
#                          which stays on 127.0.0.1:9901 (runtime_modify is unauthenticated).
# Upstreams are STRICT_DNS on the headless Services <svc> and <svc>-canary (components/canary)
# and the ExternalName Service `legacy`. chain is absent on purpose: only agent may call it.
# Weights: the `disk` runtime layer is the gateway-weights ConfigMap volume (kubelet swaps
# ..data atomically); keys routing.<split>.<cluster>, e.g. routing.memory.memory_canary_failover.
"""
_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _socket(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _ops_listener() -> dict[str, Any]:
    """Readiness and Prometheus metrics from the admin interface, and nothing else."""
    routes: list[dict[str, Any]] = [
        {
            "name": path.strip("/").replace("/", "_"),
            "match": {"path": path},
            "route": {"cluster": "admin"},
        }
        for path in ("/ready", "/stats/prometheus")
    ]
    routes.append(
        {"name": "not_found", "match": {"prefix": "/"}, "direct_response": {"status": 404}}
    )
    hcm = {
        "@type": f"{_HCM}.HttpConnectionManager",
        "stat_prefix": "ops",
        "route_config": {
            "name": "ops_routes",
            "virtual_hosts": [{"name": "ops", "domains": ["*"], "routes": routes}],
        },
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
    }
    return {
        "name": "ops",
        "address": _socket("0.0.0.0", OPS_PORT),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def bootstrap() -> dict[str, Any]:
    """The bootstrap as a document: the gateway's template, then the ops listener."""
    config: Any = importlib.import_module("puppet_gateway.config")
    suffix = f"{NAMESPACE}.svc.cluster.local"
    services = tuple(
        config.ServiceUpstreams(
            name=name,
            stable=(f"{name}.{suffix}:{config.DEFAULT_PORTS[name]}",),
            canary=(f"{name}-canary.{suffix}:{config.DEFAULT_PORTS[name]}",),
            timeout_s=config.DEFAULT_TIMEOUTS_S[name],
            safe_methods=config.safe_methods(name),
        )
        for name in ROUTED
    )
    settings = config.GatewaySettings(
        services=services,
        runtime_root=Path(RUNTIME_ROOT),
        descriptor=Path(DESCRIPTOR),
        legacy_url=f"http://legacy.{suffix}:{LEGACY_PORT}",
        listen_host="0.0.0.0",
        listen_port=8080,
        admin_port=ADMIN_PORT,
        access_log=Path("/dev/stdout"),
    )
    doc: dict[str, Any] = config.render(settings)
    doc["static_resources"]["listeners"].append(_ops_listener())
    admin = {"lb_endpoints": [{"endpoint": {"address": _socket("127.0.0.1", ADMIN_PORT)}}]}
    doc["static_resources"]["clusters"].append(
        {
            "name": "admin",
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "admin", "endpoints": [admin]},
        }
    )
    return doc


def render_text() -> str:
    return HEADER + yaml.dump(bootstrap(), Dumper=_NoAliases, sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render_text())
