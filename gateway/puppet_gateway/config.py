"""Typed gateway settings and the one template that renders Envoy's bootstrap from them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

__all__ = [
    "DEFAULT_PORTS",
    "SERVICES",
    "GatewaySettings",
    "ServiceUpstreams",
    "render",
    "render_yaml",
    "runtime_key",
]

SERVICES = ("agent", "memory", "llm", "social", "chain")
DEFAULT_PORTS = {"agent": 50051, "memory": 50052, "llm": 50053, "social": 50054, "chain": 50055}
# Model calls (llm, and agent which waits on llm) take far longer than a store lookup.
DEFAULT_TIMEOUTS_S = {"agent": 60.0, "llm": 60.0, "memory": 5.0, "social": 10.0, "chain": 15.0}
REST_TARGET = "rest"
"""The split name of the legacy REST routes (legacy Node vs Python AgentService)."""
LEGACY_CLUSTER = "legacy"
REST_MARKER = "x-puppet-rest"
"""Request header the REST routes add, so Envoy's own errors there are rendered as JSON."""
# Envoy retries these on every method: the upstream never saw the request.
_NEVER_SENT = "connect-failure,refused-stream"


@dataclass(frozen=True)
class ServiceUpstreams:
    """Where one gRPC service runs: its stable hosts and, optionally, canary hosts."""

    name: str
    """Service short name: agent, memory, llm, social or chain."""
    stable: tuple[str, ...]
    """`host:port` of each stable replica."""
    canary: tuple[str, ...] = ()
    """`host:port` of each canary replica; empty means no canary cluster."""
    timeout_s: float = 5.0
    """Overall per-call cap (route timeout and max_stream_duration)."""
    safe_methods: tuple[str, ...] = ()
    """Methods marked NO_SIDE_EFFECTS or IDEMPOTENT: the only ones Envoy retries on UNAVAILABLE."""

    @property
    def grpc_service(self) -> str:
        """Fully qualified gRPC service name, e.g. `puppet.memory.v1.MemoryService`."""
        return f"puppet.{self.name}.v1.{self.name.capitalize()}Service"

    @property
    def stable_cluster(self) -> str:
        return f"{self.name}_stable"

    @property
    def canary_cluster(self) -> str:
        return f"{self.name}_canary"

    @property
    def failover_cluster(self) -> str:
        """Aggregate cluster [canary, stable]: the split's canary share, safe when canary dies."""
        return f"{self.name}_canary_failover"


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the Envoy bootstrap depends on."""

    services: tuple[ServiceUpstreams, ...]
    runtime_root: Path
    """Symlink that points at the live runtime layer directory (weights)."""
    descriptor: Path | None = None
    """FileDescriptorSet with AgentService's google.api.http rules; None disables REST."""
    legacy_url: str | None = None
    """Legacy Node engine (`PUPPET_GATEWAY_LEGACY_URL`); None gives it a share of 0."""
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int = 9901
    access_log: Path | None = None
    health_interval_s: float = 2.0
    unhealthy_threshold: int = 2
    rest_timeout_s: float = 60.0
    shadow_port: int | None = None
    """Shadow mode: legacy-bound GETs are mirrored through a loopback listener on this port that
    transcodes them to the Python AgentService; the client still gets the legacy answer."""
    initial_weights: Mapping[str, int] = field(default_factory=dict)
    """Canary (or, for `rest`, Python) percentage per split, before any runtime layer."""
    concurrency: int | None = None
    """Envoy worker threads (`--concurrency`); None leaves Envoy's default, one per CPU."""

    def service(self, name: str) -> ServiceUpstreams:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(f"no service {name!r} in the gateway config")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, runtime_root: Path, descriptor: Path | None
    ) -> GatewaySettings:
        """Read `PUPPET_GATEWAY_*`: `<SVC>_ADDR` (comma-separated), `<SVC>_CANARY_ADDR`, etc."""
        env = os.environ if env is None else env
        services = []
        for name in SERVICES:
            key = f"PUPPET_GATEWAY_{name.upper()}"
            stable = env.get(f"{key}_ADDR", f"127.0.0.1:{DEFAULT_PORTS[name]}")
            canary = env.get(f"{key}_CANARY_ADDR", "")
            services.append(
                ServiceUpstreams(
                    name=name,
                    stable=_split(stable),
                    canary=_split(canary),
                    timeout_s=DEFAULT_TIMEOUTS_S[name],
                    safe_methods=safe_methods(name),
                )
            )
        return cls(
            services=tuple(services),
            runtime_root=runtime_root,
            descriptor=descriptor,
            legacy_url=env.get("PUPPET_GATEWAY_LEGACY_URL") or None,
            listen_host=env.get("PUPPET_GATEWAY_HOST", "127.0.0.1"),
            listen_port=int(env.get("PUPPET_GATEWAY_PORT", "8080")),
            admin_port=int(env.get("PUPPET_GATEWAY_ADMIN_PORT", "9901")),
            shadow_port=int(env["PUPPET_GATEWAY_SHADOW_PORT"])
            if env.get("PUPPET_GATEWAY_SHADOW_PORT")
            else None,
            concurrency=int(env["PUPPET_GATEWAY_CONCURRENCY"])
            if env.get("PUPPET_GATEWAY_CONCURRENCY")
            else None,
        )

    def with_access_log(self, path: Path) -> GatewaySettings:
        return replace(self, access_log=path)


def _split(addresses: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in addresses.split(",") if a.strip())


def safe_methods(service: str) -> tuple[str, ...]:
    """Methods the proto marks NO_SIDE_EFFECTS or IDEMPOTENT (safe to retry on UNAVAILABLE)."""
    from google.protobuf.descriptor_pb2 import MethodOptions

    from puppet_gateway.descriptors import service_descriptor

    try:
        desc = service_descriptor(service)
    except (ImportError, KeyError):
        return ()
    safe = {MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT}
    return tuple(m.name for m in desc.methods if m.GetOptions().idempotency_level in safe)


def runtime_key(split: str, cluster: str) -> str:
    """The runtime key that overrides one weighted cluster's weight."""
    return f"routing.{split}.{cluster}"


def render_yaml(settings: GatewaySettings) -> str:
    return yaml.safe_dump(render(settings), sort_keys=False, width=100)


def render(settings: GatewaySettings) -> dict[str, Any]:
    """The Envoy bootstrap (validated against Envoy 1.40 by `envoy --mode validate`)."""
    return {
        "node": {"id": "puppet-gateway", "cluster": "puppet-gateway"},
        "admin": {"address": _socket(settings.admin_host, settings.admin_port)},
        "stats_flush_interval": "1s",
        "layered_runtime": {
            "layers": [
                {"name": "defaults", "static_layer": _default_weights(settings)},
                {
                    "name": "disk",
                    "disk_layer": {"symlink_root": str(settings.runtime_root), "subdirectory": ""},
                },
                {"name": "admin", "admin_layer": {}},
            ]
        },
        "static_resources": {
            "listeners": [_listener(settings), *_shadow_listener(settings)],
            "clusters": _clusters(settings),
        },
    }


def _default_weights(settings: GatewaySettings) -> dict[str, int]:
    # The safe-method regexes list whole services; RE2's default size cap (100) is too small.
    weights: dict[str, int] = {"re2.max_program_size.error_level": 1000}
    for svc in settings.services:
        if svc.canary:
            canary = settings.initial_weights.get(svc.name, 0)
            weights[runtime_key(svc.name, svc.stable_cluster)] = 100 - canary
            weights[runtime_key(svc.name, svc.failover_cluster)] = canary
    if settings.legacy_url and settings.descriptor:
        python = settings.initial_weights.get(REST_TARGET, 0)
        weights[runtime_key(REST_TARGET, LEGACY_CLUSTER)] = 100 - python
        weights[runtime_key(REST_TARGET, "agent_stable")] = python
    return weights


def _socket(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


_ACCESS_FORMAT = (
    "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL% %RESPONSE_CODE% "
    "grpc=%GRPC_STATUS% route=%ROUTE_NAME% cluster=%UPSTREAM_CLUSTER% host=%UPSTREAM_HOST% "
    "attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT% flags=%RESPONSE_FLAGS% ms=%DURATION%\n"
)


def _listener(settings: GatewaySettings) -> dict[str, Any]:
    hcm: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
        ".v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "route_config": _route_config(settings),
        "local_reply_config": _legacy_error_bodies(),
        "http_filters": _http_filters(settings),
    }
    if settings.access_log:
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3"
                    ".FileAccessLog",
                    "path": str(settings.access_log),
                    "log_format": {"text_format_source": {"inline_string": _ACCESS_FORMAT}},
                },
            }
        ]
    return {
        "name": "gateway",
        "address": _socket(settings.listen_host, settings.listen_port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def _legacy_error_bodies() -> dict[str, Any]:
    """Envoy's own REST errors (no upstream, timeout, no route) as the legacy `{"error": ...}`.

    Only REST requests are rewritten: by path, or (once the transcoder rewrote the path) by the
    marker header every REST route adds. gRPC clients get Envoy's grpc-status as usual.
    """
    by_path = {"name": ":path", "string_match": {"prefix": "/api/"}}
    by_marker = {"name": REST_MARKER, "present_match": True}
    return {
        "mappers": [
            {
                "filter": {
                    "or_filter": {
                        "filters": [
                            {"header_filter": {"header": by_path}},
                            {"header_filter": {"header": by_marker}},
                        ]
                    }
                },
                "body_format_override": {
                    "json_format": {"error": "%LOCAL_REPLY_BODY%", "status": "%RESPONSE_CODE%"}
                },
            }
        ]
    }


# Transcoded errors arrive as google.rpc.Status JSON ({"code", "message", "details"}); legacy
# clients read `error`. The filter is off by default and on for the REST routes only (so no gRPC
# call pays for a Lua coroutine), and has no request hook: on a REST answer it adds
# "error": <message> to every JSON error body that lacks one and leaves every other answer alone.
_LEGACY_ERRORS_LUA = r"""
function envoy_on_response(handle)
  local status = tonumber(handle:headers():get(":status") or "200")
  if status < 400 then return end
  local kind = handle:headers():get("content-type") or ""
  if not kind:find("application/json", 1, true) then return end
  local body = handle:body()
  if body == nil or body:length() == 0 then return end
  local text = body:getBytes(0, body:length())
  if text:find('"error"', 1, true) or text:sub(1, 1) ~= "{" or text == "{}" then return end
  local message = text:match('"message"%s*:%s*"(.-)"%s*[,}]') or "error"
  body:setBytes('{"error":"' .. message .. '",' .. text:sub(2))
end
"""
LUA_FILTER = "envoy.filters.http.lua"

HEALTH_PATH = "/gateway/healthz"
"""Answered by Envoy itself (200, or 503 while draining): the Kubernetes probe target."""


def _http_filters(settings: GatewaySettings) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [
        {
            "name": "envoy.filters.http.health_check",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3"
                ".HealthCheck",
                "pass_through_mode": False,
                "headers": [{"name": ":path", "string_match": {"exact": HEALTH_PATH}}],
            },
        }
    ]
    if settings.descriptor is not None:
        filters.append(
            {
                "name": LUA_FILTER,
                "disabled": True,  # the REST routes turn it on
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                    "default_source_code": {"inline_string": _LEGACY_ERRORS_LUA},
                },
            }
        )
        filters.append(
            {
                "name": "envoy.filters.http.grpc_json_transcoder",
                "disabled": True,  # only the Python share of a REST route turns it on
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http"
                    ".grpc_json_transcoder.v3.GrpcJsonTranscoder",
                    "proto_descriptor": str(settings.descriptor),
                    "services": [settings.service("agent").grpc_service],
                    "match_incoming_request_route": True,
                    "convert_grpc_status": True,
                    "request_validation_options": {"reject_unknown_method": True},
                    "print_options": {"always_print_primitive_fields": True},
                },
            }
        )
    filters.append(
        {
            "name": "envoy.filters.http.grpc_stats",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3"
                ".FilterConfig",
                "stats_for_all_methods": True,
                "enable_upstream_stats": True,
            },
        }
    )
    filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
            },
        }
    )
    return filters


_TRANSCODE_ON = {
    "envoy.filters.http.grpc_json_transcoder": {
        "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
        "config": {},  # an empty Any enables the filter with its listener-level config
    }
}
_LUA_ON = {
    LUA_FILTER: {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": {}}
}


def _route_config(settings: GatewaySettings) -> dict[str, Any]:
    routes: list[dict[str, Any]] = []
    for svc in settings.services:
        routes += _grpc_routes(svc)
    if settings.descriptor is not None:
        routes += _rest_routes(settings)
    return {
        "name": "gateway_routes",
        "validate_clusters": True,
        "virtual_hosts": [
            {
                "name": "api",
                "domains": ["*"],
                "response_headers_to_add": [
                    {"header": {"key": "x-upstream-cluster", "value": "%UPSTREAM_CLUSTER%"}},
                    {"header": {"key": "x-upstream-host", "value": "%UPSTREAM_HOST%"}},
                ],
                "routes": routes,
            }
        ],
    }


def _pin(value: str) -> list[dict[str, Any]]:
    return [{"name": "x-canary", "string_match": {"exact": value}}]


def _grpc_retry(safe: bool) -> dict[str, Any]:
    return {
        # "reset" is left out on purpose: it would also retry per-try timeouts (runs twice).
        "retry_on": f"{_NEVER_SENT},unavailable" if safe else _NEVER_SENT,
        "num_retries": 2 if safe else 1,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3"
                    ".PreviousHostsPredicate"
                },
            }
        ],
        "host_selection_retry_max_attempts": 3,
    }


def _grpc_routes(svc: ServiceUpstreams) -> list[dict[str, Any]]:
    prefix = f"/{svc.grpc_service}/"
    matchers: list[tuple[str, dict[str, Any], bool]] = []
    if svc.safe_methods:
        pattern = "^/{}/({})$".format(
            svc.grpc_service.replace(".", r"\."), "|".join(svc.safe_methods)
        )
        matchers.append(("safe", {"safe_regex": {"regex": pattern}}, True))
    matchers.append(("other", {"prefix": prefix}, False))
    routes: list[dict[str, Any]] = []
    for kind, match, safe in matchers:
        base = {
            "timeout": f"{svc.timeout_s}s",
            "max_stream_duration": {
                "max_stream_duration": f"{svc.timeout_s}s",
                "grpc_timeout_header_max": f"{svc.timeout_s}s",
            },
            "retry_policy": _grpc_retry(safe),
        }
        name = f"{svc.name}_{kind}"
        if svc.canary:
            pins = (("always", svc.canary_cluster), ("never", svc.stable_cluster))
            for value, cluster in pins:
                routes.append(
                    {
                        "name": f"{name}_pin_{value}",
                        "stat_prefix": f"{name}_pin_{value}",
                        "match": {**match, "grpc": {}, "headers": _pin(value)},
                        "route": {**base, "cluster": cluster},
                    }
                )
            target: dict[str, Any] = {
                "weighted_clusters": {
                    "runtime_key_prefix": f"routing.{svc.name}",
                    "clusters": [
                        {"name": svc.stable_cluster, "weight": 100},
                        {"name": svc.failover_cluster, "weight": 0},
                    ],
                }
            }
        else:
            target = {"cluster": svc.stable_cluster}
        routes.append(
            {
                "name": name,
                "stat_prefix": name,
                "match": {**match, "grpc": {}},
                "route": {**base, **target},
            }
        )
    return routes


# The legacy engine (Express `cors()`) sent these on every answer, and answered every preflight.
_CORS = [
    {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
    for key, value in (
        ("access-control-allow-origin", "*"),
        ("access-control-allow-headers", "Origin, X-Requested-With, Content-Type, Accept"),
        ("access-control-allow-methods", "GET, POST, PUT, DELETE, OPTIONS"),
    )
]


def _rest_routes(settings: GatewaySettings) -> list[dict[str, Any]]:
    """Legacy REST `/api/...`: legacy Node vs Python AgentService (transcoded on its share)."""
    python = settings.service("agent").stable_cluster
    timeout = f"{settings.rest_timeout_s}s"
    routes: list[dict[str, Any]] = []
    for kind, methods, retry in (
        (
            "get",
            ["GET", "HEAD"],
            {"retry_on": f"{_NEVER_SENT},unavailable,gateway-error", "num_retries": 2},
        ),
        ("write", None, {"retry_on": _NEVER_SENT, "num_retries": 1}),
    ):
        match: dict[str, Any] = {"prefix": "/api/"}
        if methods:
            regex = "^({})$".format("|".join(methods))
            match["headers"] = [
                {"name": ":method", "string_match": {"safe_regex": {"regex": regex}}}
            ]
        base = {"timeout": timeout, "retry_policy": retry}
        name = f"rest_{kind}"
        if not settings.legacy_url:
            routes.append(
                {
                    "name": name,
                    "stat_prefix": name,
                    "match": match,
                    "route": {**base, "cluster": python},
                    "typed_per_filter_config": _TRANSCODE_ON,
                }
            )
            continue
        routes.append(
            {
                "name": f"{name}_pin_always",
                "stat_prefix": f"{name}_pin_always",
                "match": {**match, "headers": [*match.get("headers", []), *_pin("always")]},
                "route": {**base, "cluster": python},
                "typed_per_filter_config": _TRANSCODE_ON,
            }
        )
        routes.append(
            {
                "name": f"{name}_pin_never",
                "stat_prefix": f"{name}_pin_never",
                "match": {**match, "headers": [*match.get("headers", []), *_pin("never")]},
                "route": {**base, "cluster": LEGACY_CLUSTER, **_mirror(settings, kind)},
            }
        )
        split: dict[str, Any] = {
            **base,
            **_mirror(settings, kind),
            "weighted_clusters": {
                "runtime_key_prefix": f"routing.{REST_TARGET}",
                "clusters": [
                    {"name": LEGACY_CLUSTER, "weight": 100},
                    {"name": python, "weight": 0, "typed_per_filter_config": _TRANSCODE_ON},
                ],
            },
        }
        routes.append({"name": name, "stat_prefix": name, "match": match, "route": split})
    for route in routes:
        route["request_headers_to_add"] = [{"header": {"key": REST_MARKER, "value": "1"}}]
        route["response_headers_to_add"] = _CORS
        route["typed_per_filter_config"] = {**route.get("typed_per_filter_config", {}), **_LUA_ON}
    preflight = {
        "name": "rest_preflight",
        "stat_prefix": "rest_preflight",
        "match": {
            "prefix": "/api/",
            "headers": [{"name": ":method", "string_match": {"exact": "OPTIONS"}}],
        },
        "direct_response": {"status": 200},
        "response_headers_to_add": _CORS,
    }
    return [preflight, *routes]


SHADOW_CLUSTER = "shadow"


def _shadowing(settings: GatewaySettings) -> bool:
    return bool(settings.shadow_port and settings.legacy_url and settings.descriptor)


def _mirror(settings: GatewaySettings, kind: str) -> dict[str, Any]:
    """Mirror legacy-bound reads only: a mirrored write would happen twice (two posts)."""
    if kind != "get" or not _shadowing(settings):
        return {}
    return {"request_mirror_policies": [{"cluster": SHADOW_CLUSTER}]}


def _shadow_listener(settings: GatewaySettings) -> list[dict[str, Any]]:
    """Loopback listener that transcodes every mirrored REST read to AgentService."""
    if not _shadowing(settings):
        return []
    assert settings.shadow_port is not None
    filters = _http_filters(settings)
    for f in filters:
        f.pop("disabled", None)  # here the transcoder is on for everything
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
        ".v3.HttpConnectionManager",
        "stat_prefix": "shadow",
        "route_config": {
            "name": "shadow_routes",
            "validate_clusters": True,
            "virtual_hosts": [
                {
                    "name": "shadow",
                    "domains": ["*"],
                    "routes": [
                        {
                            "name": "shadow_rest",
                            "stat_prefix": "shadow_rest",
                            "match": {"prefix": "/api/"},
                            "route": {
                                "cluster": settings.service("agent").stable_cluster,
                                "timeout": f"{settings.rest_timeout_s}s",
                            },
                        }
                    ],
                }
            ],
        },
        "http_filters": filters,
    }
    return [
        {
            "name": "shadow",
            "address": _socket("127.0.0.1", settings.shadow_port),
            "filter_chains": [
                {
                    "filters": [
                        {
                            "name": "envoy.filters.network.http_connection_manager",
                            "typed_config": hcm,
                        }
                    ]
                }
            ],
        }
    ]


def _endpoints(name: str, addresses: Sequence[str]) -> dict[str, Any]:
    endpoints = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        endpoints.append({"endpoint": {"address": _socket(host, int(port))}})
    return {"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]}


def _health(settings: GatewaySettings, check: dict[str, Any]) -> list[dict[str, Any]]:
    interval = f"{settings.health_interval_s}s"
    return [
        {
            "timeout": "1s",
            "interval": interval,
            "no_traffic_interval": interval,
            "unhealthy_threshold": settings.unhealthy_threshold,
            "healthy_threshold": 1,
            **check,
        }
    ]


_HTTP2 = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}


def _grpc_cluster(
    settings: GatewaySettings, svc: ServiceUpstreams, name: str, addresses: Sequence[str]
) -> dict[str, Any]:
    canary = name == svc.canary_cluster
    cluster: dict[str, Any] = {
        "name": name,
        "type": _discovery(addresses),
        "connect_timeout": "1s",
        "typed_extension_protocol_options": _HTTP2,
        "load_assignment": _endpoints(name, addresses),
        "health_checks": _health(
            settings, {"grpc_health_check": {"service_name": svc.grpc_service}}
        ),
        "outlier_detection": {
            "consecutive_5xx": 5,
            "consecutive_gateway_failure": 3,
            "interval": "2s",
            "base_ejection_time": "20s",
            # A canary may be ejected whole (the aggregate then falls back to stable).
            "max_ejection_percent": 100 if canary else 50,
        },
    }
    if canary:  # never panic-route to an unhealthy canary
        cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": 0}}
    return cluster


def _discovery(addresses: Sequence[str]) -> str:
    """STATIC for IP literals, STRICT_DNS for names (headless Services on Kubernetes)."""
    hosts = [a.rpartition(":")[0] for a in addresses]
    return "STATIC" if all(h.replace(".", "").isdigit() for h in hosts) else "STRICT_DNS"


def _clusters(settings: GatewaySettings) -> list[dict[str, Any]]:
    clusters: list[dict[str, Any]] = []
    for svc in settings.services:
        clusters.append(_grpc_cluster(settings, svc, svc.stable_cluster, svc.stable))
        if svc.canary:
            clusters.append(_grpc_cluster(settings, svc, svc.canary_cluster, svc.canary))
            clusters.append(
                {
                    "name": svc.failover_cluster,
                    "connect_timeout": "1s",
                    "lb_policy": "CLUSTER_PROVIDED",
                    "cluster_type": {
                        "name": "envoy.clusters.aggregate",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3"
                            ".ClusterConfig",
                            "clusters": [svc.canary_cluster, svc.stable_cluster],
                        },
                    },
                }
            )
    if settings.legacy_url:
        clusters.append(_legacy_cluster(settings, LEGACY_CLUSTER))
    if _shadowing(settings):
        assert settings.shadow_port is not None
        shadow = f"127.0.0.1:{settings.shadow_port}"
        clusters.append(
            {
                "name": SHADOW_CLUSTER,
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": _endpoints(SHADOW_CLUSTER, [shadow]),
            }
        )
    return clusters


def _legacy_cluster(settings: GatewaySettings, name: str) -> dict[str, Any]:
    assert settings.legacy_url is not None
    url = urlsplit(settings.legacy_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    address = f"{url.hostname}:{port}"
    cluster: dict[str, Any] = {
        "name": name,
        "type": _discovery([address]),
        "connect_timeout": "1s",
        "load_assignment": _endpoints(name, [address]),
        "health_checks": _health(settings, {"tcp_health_check": {}}),
        "outlier_detection": {"consecutive_5xx": 5, "interval": "5s", "base_ejection_time": "15s"},
    }
    if url.scheme == "https":
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"
                ".UpstreamTlsContext",
                "sni": url.hostname,
            },
        }
    return cluster
