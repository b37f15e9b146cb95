"""The canary controller: reads Envoy's stats, moves weights in steps, records every decision."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from puppet_gateway.config import LEGACY_CLUSTER, REST_TARGET, runtime_key
from puppet_gateway.envoy import RuntimeLayer

__all__ = [
    "STEPS",
    "AutoPolicy",
    "ClusterStats",
    "Controller",
    "Decision",
    "EnvoyAdmin",
    "Split",
    "SplitStatus",
]

log = logging.getLogger(__name__)

STEPS = (0, 1, 5, 25, 50, 100)
"""Canary percentages `promote` walks through."""
# gRPC codes that say the server (not the caller) failed: UNKNOWN, DEADLINE_EXCEEDED, INTERNAL,
# UNAVAILABLE, DATA_LOSS. NOT_FOUND or INVALID_ARGUMENT are a client's doing, not the canary's.
SERVER_FAULTS = ("2", "4", "13", "14", "15")


@dataclass(frozen=True)
class Split:
    """One weighted split: which runtime keys hold its weights and which clusters it feeds."""

    name: str
    stable_cluster: str
    canary_cluster: str
    """The weighted cluster that takes the canary share (the aggregate, for a service)."""
    canary_members: tuple[str, ...]
    """Every cluster whose stats count as the canary's (the aggregate and the pinned one)."""

    @classmethod
    def named(cls, name: str) -> Split:
        if name == REST_TARGET:
            return cls(name, LEGACY_CLUSTER, "agent_stable", ("agent_stable",))
        failover = f"{name}_canary_failover"
        return cls(name, f"{name}_stable", failover, (failover, f"{name}_canary"))

    @property
    def stable_key(self) -> str:
        return runtime_key(self.name, self.stable_cluster)

    @property
    def canary_key(self) -> str:
        return runtime_key(self.name, self.canary_cluster)


@dataclass(frozen=True)
class ClusterStats:
    """Cumulative counts since Envoy started, and the last flush interval's latency."""

    requests: int = 0
    failures: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None

    @property
    def success_rate(self) -> float | None:
        return None if not self.requests else 1.0 - self.failures / self.requests

    def minus(self, earlier: ClusterStats) -> ClusterStats:
        """Counts over the window since `earlier`; latency as of now."""
        return ClusterStats(
            self.requests - earlier.requests,
            self.failures - earlier.failures,
            self.p50_ms,
            self.p95_ms,
        )


@dataclass(frozen=True)
class SplitStatus:
    split: str
    canary_percent: int
    stable: ClusterStats
    canary: ClusterStats
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Decision:
    """One weight change (or a deliberate hold), with the evidence it was made on."""

    split: str
    action: str
    """set, promote, rollback or hold."""
    from_percent: int
    to_percent: int
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class AutoPolicy:
    """When `auto` promotes and when it rolls back."""

    min_success: float = 0.95
    p95_budget_ms: float = 250.0
    window_s: float = 30.0
    """A step is promoted once the canary held up for this long."""
    min_requests: int = 20
    """Fewer canary requests than this in a window decide nothing (except a rollback)."""
    poll_s: float = 1.0
    """How often the stats are read; a failing canary is rolled back at the next poll."""


class EnvoyAdmin:
    """Envoy's admin API (bound to 127.0.0.1; it is unauthenticated)."""

    def __init__(self, admin_url: str, *, timeout_s: float = 2.0) -> None:
        self._client = httpx.AsyncClient(base_url=admin_url, timeout=timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def runtime(self) -> dict[str, str]:
        reply = await self._client.get("/runtime", params={"format": "json"})
        reply.raise_for_status()
        entries: dict[str, Any] = reply.json()["entries"]
        return {key: str(entry.get("final_value", "")) for key, entry in entries.items()}

    async def set_runtime(self, values: Mapping[str, int]) -> None:
        """Write keys to Envoy's admin runtime layer (this Envoy only; lost on restart)."""
        params = {key: str(value) for key, value in values.items()}
        reply = await self._client.post("/runtime_modify", params=params)
        reply.raise_for_status()

    async def stats(self, clusters: Sequence[str]) -> dict[str, ClusterStats]:
        """Per cluster: gRPC calls and server faults (or HTTP requests and 5xx), and latency."""
        regex = r"^cluster\.({})\.".format("|".join(c.replace(".", r"\.") for c in clusters))
        reply = await self._client.get("/stats", params={"format": "json", "filter": regex})
        reply.raise_for_status()
        counters: dict[str, int] = {}
        quantiles: dict[str, list[dict[str, float | None]]] = {}
        for entry in reply.json()["stats"]:
            if "name" in entry:
                counters[entry["name"]] = int(entry["value"])
            elif "histograms" in entry:
                for histogram in entry["histograms"]["computed_quantiles"]:
                    quantiles[histogram["name"]] = histogram["values"]
        return {c: _cluster_stats(c, counters, quantiles) for c in clusters}


def _cluster_stats(
    cluster: str,
    counters: Mapping[str, int],
    quantiles: Mapping[str, list[dict[str, float | None]]],
) -> ClusterStats:
    grpc_prefix = f"cluster.{cluster}.grpc."
    grpc_total = sum(
        v for k, v in counters.items() if k.startswith(grpc_prefix) and k.endswith(".total")
    )
    if grpc_total:
        faults = sum(
            v
            for k, v in counters.items()
            if k.startswith(grpc_prefix) and k.rsplit(".", 1)[1] in SERVER_FAULTS
        )
        requests = grpc_total
    else:
        requests = counters.get(f"cluster.{cluster}.upstream_rq_completed", 0)
        faults = counters.get(f"cluster.{cluster}.upstream_rq_5xx", 0)
    # Supported quantiles are 0, 25, 50, 75, 90, 95, ...: index 2 is p50, 5 is p95.
    latency = quantiles.get(f"cluster.{cluster}.upstream_rq_time") or [{}] * 6
    return ClusterStats(requests, faults, latency[2].get("interval"), latency[5].get("interval"))


def _combine(parts: Sequence[ClusterStats]) -> ClusterStats:
    """Counts add up; latency comes from the busiest member."""
    busiest = max(parts, key=lambda s: s.requests, default=ClusterStats())
    return ClusterStats(
        sum(p.requests for p in parts),
        sum(p.failures for p in parts),
        busiest.p50_ms,
        busiest.p95_ms,
    )


class Controller:
    """Status, set, promote, rollback and `auto` for the gateway's splits.

    Weights are written to the gateway's disk runtime layer (so they survive an Envoy restart),
    or, with `layer=None`, to the admin layer of this one Envoy (when the disk layer is a
    read-only ConfigMap volume), and read back from Envoy's `/runtime`. Every change is logged
    with its evidence and appended to a JSONL decision log.
    """

    def __init__(
        self,
        admin: EnvoyAdmin,
        layer: RuntimeLayer | None,
        decision_log: Path,
        *,
        steps: Sequence[int] = STEPS,
    ) -> None:
        self.admin = admin
        self.layer = layer
        self.decision_log = decision_log
        self.steps = tuple(steps)

    async def weight(self, split: str) -> int:
        """The canary's live percentage, as Envoy sees it."""
        runtime = await self.admin.runtime()
        s = Split.named(split)
        if s.canary_key not in runtime:
            raise KeyError(f"envoy has no split {split!r}")
        try:
            return int(runtime[s.canary_key])
        except ValueError:
            return 0

    async def status(self, split: str) -> SplitStatus:
        s = Split.named(split)
        stats = await self.admin.stats([s.stable_cluster, *s.canary_members])
        canary = _combine([stats[c] for c in s.canary_members])
        return SplitStatus(split, await self.weight(split), stats[s.stable_cluster], canary)

    async def set(
        self,
        split: str,
        percent: int,
        *,
        reason: str = "operator",
        action: str = "set",
        evidence: Mapping[str, Any] | None = None,
    ) -> Decision:
        if not 0 <= percent <= 100:
            raise ValueError(f"weight must be within 0..100, got {percent}")
        s = Split.named(split)
        before = await self.weight(split)
        values = {s.stable_key: 100 - percent, s.canary_key: percent}
        if self.layer is None:
            await self.admin.set_runtime(values)
        else:
            self.layer.update(values)
        await self._applied(split, percent)
        decision = Decision(split, action, before, percent, reason, dict(evidence or {}))
        self._record(decision)
        return decision

    async def promote(
        self, split: str, *, reason: str = "operator", evidence: Mapping[str, Any] | None = None
    ) -> Decision:
        current = await self.weight(split)
        target = next((step for step in self.steps if step > current), 100)
        return await self.set(split, target, reason=reason, action="promote", evidence=evidence)

    async def rollback(
        self, split: str, *, reason: str = "operator", evidence: Mapping[str, Any] | None = None
    ) -> Decision:
        return await self.set(split, 0, reason=reason, action="rollback", evidence=evidence)

    async def auto(
        self, split: str, policy: AutoPolicy, *, max_duration_s: float | None = None
    ) -> list[Decision]:
        """Promote step by step while the canary holds up; roll back to 0 as soon as it does not.

        A canary at 0% is first moved to the first step (there is nothing to judge at 0%).
        Returns when the canary reached 100%, was rolled back, or `max_duration_s` passed.
        """
        decisions: list[Decision] = []
        started = time.monotonic()
        if await self.weight(split) == 0:  # nothing to judge at 0%: open at the first step
            decisions.append(await self.promote(split, reason="auto: canary starts"))
        window_start = await self.status(split)
        window_opened = time.monotonic()
        while max_duration_s is None or time.monotonic() - started < max_duration_s:
            await asyncio.sleep(policy.poll_s)
            now = await self.status(split)
            window = now.canary.minus(window_start.canary)
            evidence = _evidence(now, window, time.monotonic() - window_opened, policy)
            verdict = _judge(window, policy)
            if verdict is not None:
                decisions.append(await self.rollback(split, reason=verdict, evidence=evidence))
                return decisions
            if time.monotonic() - window_opened < policy.window_s:
                continue
            if window.requests < policy.min_requests:
                log.info(
                    "canary %s: holding at %d%%, too little traffic: %s",
                    split,
                    now.canary_percent,
                    evidence,
                )
            else:
                decision = await self.promote(
                    split, reason="canary healthy over the window", evidence=evidence
                )
                decisions.append(decision)
                if decision.to_percent >= 100:
                    return decisions
            window_start, window_opened = await self.status(split), time.monotonic()
        return decisions

    async def _applied(self, split: str, percent: int, timeout_s: float = 5.0) -> None:
        """Wait until Envoy reloaded the layer, so the next read sees the new weight."""
        deadline = time.monotonic() + timeout_s
        while await self.weight(split) != percent:
            if time.monotonic() > deadline:
                raise TimeoutError(f"envoy did not pick up {split}={percent}% in {timeout_s}s")
            await asyncio.sleep(0.02)

    def _record(self, decision: Decision) -> None:
        log.info(
            "canary %s: %s %d%% -> %d%% (%s) evidence=%s",
            decision.split,
            decision.action,
            decision.from_percent,
            decision.to_percent,
            decision.reason,
            json.dumps(decision.evidence, sort_keys=True),
        )
        self.decision_log.parent.mkdir(parents=True, exist_ok=True)
        with self.decision_log.open("a") as out:
            out.write(json.dumps(asdict(decision), sort_keys=True) + "\n")


def _judge(window: ClusterStats, policy: AutoPolicy) -> str | None:
    """Why the canary must be rolled back now, or None."""
    if window.requests >= max(5, policy.min_requests // 4):
        rate = window.success_rate
        if rate is not None and rate < policy.min_success:
            return f"success rate {rate:.1%} below {policy.min_success:.0%}"
    if window.requests and window.p95_ms is not None and window.p95_ms > policy.p95_budget_ms:
        return f"p95 {window.p95_ms:.1f} ms above the {policy.p95_budget_ms:.0f} ms budget"
    return None


def _evidence(
    now: SplitStatus, window: ClusterStats, window_s: float, policy: AutoPolicy
) -> dict[str, Any]:
    return {
        "canary_percent": now.canary_percent,
        "window_s": round(window_s, 2),
        "canary_requests": window.requests,
        "canary_server_faults": window.failures,
        "canary_success_rate": window.success_rate,
        "canary_p50_ms": window.p50_ms,
        "canary_p95_ms": window.p95_ms,
        "stable_p95_ms": now.stable.p95_ms,
        "policy": asdict(policy),
    }
