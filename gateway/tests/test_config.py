"""The rendered bootstrap: Envoy accepts it, and it keeps the gateway's safety rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from puppet_gateway.config import LUA_FILTER, GatewaySettings, render
from puppet_gateway.envoy import Envoy, split_weights


def _settings(tmp_path: Path, descriptor: Path, **env: str) -> GatewaySettings:
    return GatewaySettings.from_env(
        env, runtime_root=tmp_path / "runtime" / "current", descriptor=descriptor
    )


def _routes(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    route_config = hcm["typed_config"]["route_config"]
    assert route_config["validate_clusters"] is True
    return {r["name"]: r for r in route_config["virtual_hosts"][0]["routes"]}


@pytest.mark.parametrize(
    "env",
    [
        {},
        {
            "PUPPET_GATEWAY_LEGACY_URL": "http://127.0.0.1:3000",
            "PUPPET_GATEWAY_MEMORY_CANARY_ADDR": "127.0.0.1:60052",
            "PUPPET_GATEWAY_AGENT_CANARY_ADDR": "127.0.0.1:60051,127.0.0.1:60061",
        },
        {
            "PUPPET_GATEWAY_LEGACY_URL": "https://legacy.internal",
            "PUPPET_GATEWAY_CHAIN_ADDR": "chain:1",
        },
    ],
    ids=["defaults", "legacy-and-canaries", "dns-and-tls"],
)
def test_envoy_validates_the_rendered_config(tmp_path, descriptor, env):
    envoy = Envoy(_settings(tmp_path, descriptor, **env), tmp_path / "envoy")
    done = envoy.validate()
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_legacy_url_rest_goes_to_python_only(tmp_path, descriptor):
    config = render(_settings(tmp_path, descriptor))
    routes = _routes(config)
    assert routes["rest_get"]["route"]["cluster"] == "agent_stable"
    assert (
        "envoy.filters.http.grpc_json_transcoder" in routes["rest_get"]["typed_per_filter_config"]
    )
    names = [c["name"] for c in config["static_resources"]["clusters"]]
    assert "legacy" not in names


def test_transcoder_is_on_only_for_the_python_share(tmp_path, descriptor):
    settings = _settings(tmp_path, descriptor, PUPPET_GATEWAY_LEGACY_URL="http://127.0.0.1:3000")
    config = render(settings)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    (transcoder,) = [
        f
        for f in hcm["typed_config"]["http_filters"]
        if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    ]
    assert (transcoder["name"], transcoder["disabled"]) == (
        "envoy.filters.http.grpc_json_transcoder",
        True,
    )
    split = _routes(config)["rest_get"]["route"]["weighted_clusters"]["clusters"]
    by_name = {c["name"]: c for c in split}
    assert "typed_per_filter_config" not in by_name["legacy"]
    assert "typed_per_filter_config" in by_name["agent_stable"]
    assert config["layered_runtime"]["layers"][0]["static_layer"]["routing.rest.legacy"] == 100
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_lua_error_bodies_run_on_rest_routes_only(tmp_path, descriptor):
    settings = _settings(tmp_path, descriptor, PUPPET_GATEWAY_LEGACY_URL="http://127.0.0.1:3000")
    config = render(settings)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    (lua,) = [f for f in hcm["typed_config"]["http_filters"] if f["name"] == LUA_FILTER]
    assert lua["disabled"] is True
    assert "envoy_on_request" not in lua["typed_config"]["default_source_code"]["inline_string"]
    routes = _routes(config)
    rest = [r for name, r in routes.items() if name.startswith("rest_") and "route" in r]
    assert len(rest) == 6
    assert all(LUA_FILTER in r["typed_per_filter_config"] for r in rest)
    grpc = [r for name, r in routes.items() if not name.startswith("rest_")]
    assert grpc
    assert not any(LUA_FILTER in r.get("typed_per_filter_config", {}) for r in grpc)


def test_only_safe_methods_retry_on_unavailable(tmp_path, descriptor):
    routes = _routes(render(_settings(tmp_path, descriptor)))
    safe, other = routes["memory_safe"], routes["memory_other"]
    assert "GetPersona" in safe["match"]["safe_regex"]["regex"]
    assert "CreateMemory" not in safe["match"]["safe_regex"]["regex"]
    assert "unavailable" in safe["route"]["retry_policy"]["retry_on"]
    assert "unavailable" not in other["route"]["retry_policy"]["retry_on"]
    assert other["route"]["max_stream_duration"]["max_stream_duration"] == "5.0s"


def test_split_weights_never_sum_to_zero(tmp_path, descriptor):
    settings = _settings(tmp_path, descriptor, PUPPET_GATEWAY_MEMORY_CANARY_ADDR="127.0.0.1:1")
    assert split_weights(settings, "memory", 0) == {
        "routing.memory.memory_stable": 100,
        "routing.memory.memory_canary_failover": 0,
    }
    with pytest.raises(ValueError, match=r"0\.\.100"):
        split_weights(settings, "memory", 101)
    with pytest.raises(ValueError, match="no canary"):
        split_weights(settings, "llm", 5)
    with pytest.raises(ValueError, match="no legacy"):
        split_weights(settings, "rest", 5)


def test_worker_count_is_envoys_default_unless_set(tmp_path, descriptor):
    default = Envoy(_settings(tmp_path, descriptor), tmp_path / "a")
    assert "--concurrency" not in default.command()
    one = Envoy(_settings(tmp_path, descriptor, PUPPET_GATEWAY_CONCURRENCY="1"), tmp_path / "b")
    command = one.command()
    assert command[command.index("--concurrency") + 1] == "1"


def test_python_m_puppet_gateway_prepares_a_valid_config(tmp_path):
    from puppet_gateway.serve import prepare

    env = {
        "PUPPET_GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "PUPPET_GATEWAY_DESCRIPTOR": str(tmp_path / "build" / "agent.binpb"),
        "PUPPET_GATEWAY_LEGACY_URL": "http://127.0.0.1:3000",
    }
    envoy = prepare(env)
    assert envoy.config_path.exists()
    assert (tmp_path / "build" / "agent.binpb").stat().st_size > 1000
    done = envoy.validate()
    assert done.returncode == 0, done.stderr
