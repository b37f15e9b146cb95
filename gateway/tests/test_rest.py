"""Legacy REST through Envoy: the legacy share is passed through untouched, errors stay JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from puppet_runtime.testing import load_sibling

harness = load_sibling(__file__, "harness")
standin_module = load_sibling(__file__, "legacy_standin")


@pytest.fixture
def legacy() -> Iterator[Any]:
    standin = standin_module.LegacyStandin().start()
    yield standin
    standin.stop()


async def _rest_gateway(
    tmp_path: Any, memory_pair: Any, start_gateway: Any, descriptor: Any, legacy_url: str
) -> Any:
    stable, _ = memory_pair
    settings = harness.gateway_settings(
        tmp_path, [stable.address], legacy_url=legacy_url, descriptor=descriptor
    )
    return await start_gateway(settings)


def _request(capture: dict[str, Any]) -> dict[str, Any]:
    request = capture["request"]
    kwargs: dict[str, Any] = {"method": request["method"], "url": request["path"]}
    if "body" in request:
        body = request["body"]
        kwargs["content"] = json.dumps(body) if request.get("body_is_json") else str(body)
        kwargs["headers"] = {"content-type": request.get("content_type", "application/json")}
    return kwargs


async def test_every_legacy_route_passes_through_untouched_at_share_0(
    tmp_path, memory_pair, start_gateway, descriptor, legacy
):
    envoy = await _rest_gateway(tmp_path, memory_pair, start_gateway, descriptor, legacy.url)
    async with httpx.AsyncClient(base_url=envoy.url, timeout=5) as client:
        for capture in legacy.captures:
            kwargs = _request(capture)
            expected = legacy.answer(
                kwargs["method"], kwargs["url"], kwargs.get("content", "").encode()
            )["response"]
            got = await client.request(**kwargs)
            assert got.status_code == expected["status"], capture["name"]
            assert got.headers["access-control-allow-origin"] == "*"
            if kwargs["method"] == "OPTIONS":
                continue  # preflight: Envoy answers it, as Express' cors() did
            assert got.headers["x-upstream-cluster"] == "legacy"
            if expected.get("body_is_json"):
                assert got.json() == expected["body"], capture["name"]
    preflights = sum(c["request"]["method"] == "OPTIONS" for c in legacy.captures)
    assert sum(legacy.hits.values()) == len(legacy.captures) - preflights


async def test_x_canary_pins_rest_and_envoy_errors_are_legacy_json(
    tmp_path, memory_pair, start_gateway, descriptor, legacy
):
    envoy = await _rest_gateway(tmp_path, memory_pair, start_gateway, descriptor, legacy.url)
    async with httpx.AsyncClient(base_url=envoy.url, timeout=5) as client:
        assert (await client.get("/gateway/healthz")).status_code == 200  # the k8s probe
        never = await client.get("/api/status", headers={"x-canary": "never"})
        assert (never.status_code, never.headers["x-upstream-cluster"]) == (200, "legacy")
        # Pinned to Python, whose upstream in this test is down: Envoy answers, as JSON.
        always = await client.get("/api/status", headers={"x-canary": "always"})
    assert always.status_code == 503
    assert always.headers["content-type"] == "application/json"
    assert isinstance(always.json()["error"], str)


async def test_a_dead_legacy_backend_answers_json_503(
    tmp_path, memory_pair, start_gateway, descriptor, legacy
):
    envoy = await _rest_gateway(tmp_path, memory_pair, start_gateway, descriptor, legacy.url)
    legacy.stop()
    async with httpx.AsyncClient(base_url=envoy.url, timeout=5) as client:
        got = await client.get("/api/agents")
    assert got.status_code == 503
    assert isinstance(got.json()["error"], str)
