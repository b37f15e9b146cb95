"""Shadow diff: the same REST request answered by legacy and by Python, compared per route.

Each request goes through the gateway twice, pinned with `x-canary: never` (legacy) and
`x-canary: always` (Python), so the comparison covers exactly what clients would get. Compared:
status class, and on success the JSON keys and JSON types (values differ by nature: ids, times).
Only send reads here, or requests whose side effects are acceptable twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Replay", "RouteReport", "compare_json", "route_of", "shadow_report"]

_AGENT_ID = re.compile(r"^/api/agents/[^/]+")


@dataclass(frozen=True)
class Replay:
    """One REST request to send to both sides."""

    method: str
    path: str
    body: Any = None
    """JSON body, or None."""


@dataclass
class RouteReport:
    """Differences seen on one route (method + path template)."""

    route: str
    requests: int = 0
    status_mismatches: list[str] = field(default_factory=list)
    shape_differences: set[str] = field(default_factory=set)

    @property
    def same(self) -> bool:
        return not self.status_mismatches and not self.shape_differences


def route_of(method: str, path: str) -> str:
    """`GET /api/agents/coby-agent/memory` → `GET /api/agents/{agent_id}/memory`."""
    path = path.split("?", 1)[0]
    if path != "/api/agents":
        path = _AGENT_ID.sub("/api/agents/{agent_id}", path)
    return f"{method} {path}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def compare_json(legacy: Any, python: Any, where: str = "$") -> set[str]:
    """Key and type differences between two JSON documents (arrays: their first elements)."""
    kinds = _json_type(legacy), _json_type(python)
    if kinds[0] != kinds[1]:
        return {f"{where}: {kinds[0]} in legacy, {kinds[1]} in python"}
    if isinstance(legacy, dict):
        found = {f"{where}.{k}: only in legacy" for k in legacy.keys() - python.keys()}
        found |= {f"{where}.{k}: only in python" for k in python.keys() - legacy.keys()}
        for key in legacy.keys() & python.keys():
            found |= compare_json(legacy[key], python[key], f"{where}.{key}")
        return found
    if isinstance(legacy, list) and legacy and python:
        return compare_json(legacy[0], python[0], f"{where}[0]")
    return set()


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


async def shadow_report(
    client: httpx.AsyncClient, replays: Iterable[Replay]
) -> Mapping[str, RouteReport]:
    """Send each replay to both sides through the gateway `client` points at; report per route."""
    reports: dict[str, RouteReport] = {}
    for replay in replays:
        route = route_of(replay.method, replay.path)
        report = reports.setdefault(route, RouteReport(route))
        report.requests += 1
        answers = []
        for pin in ("never", "always"):
            answers.append(
                await client.request(
                    replay.method,
                    replay.path,
                    json=replay.body,
                    headers={"x-canary": pin},
                )
            )
        legacy, python = answers
        if legacy.status_code // 100 != python.status_code // 100:
            report.status_mismatches.append(
                f"{replay.path}: legacy {legacy.status_code}, python {python.status_code}"
            )
        elif legacy.is_success:
            report.shape_differences |= compare_json(_decode(legacy), _decode(python))
    return reports
