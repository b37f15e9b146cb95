"""`puppet canary`: status, set, promote, rollback and auto for the gateway's weighted splits."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from puppet_gateway.controller import AutoPolicy, Controller, Decision, EnvoyAdmin, SplitStatus
from puppet_gateway.envoy import RuntimeLayer
from puppet_gateway.shadow import Replay, RouteReport, shadow_report

__all__ = ["app"]

app = typer.Typer(help="Canary weights of the Envoy gateway: inspect, move, automate.")
console = Console()
T = TypeVar("T")

AdminUrl = Annotated[
    str, typer.Option(envvar="PUPPET_GATEWAY_ADMIN_URL", help="Envoy admin (127.0.0.1 only).")
]
RuntimeRoot = Annotated[
    Path,
    typer.Option(
        envvar="PUPPET_GATEWAY_RUNTIME_ROOT",
        help="Symlink of the disk runtime layer; `-`: Envoy's admin layer (one pod, not kept).",
    ),
]
DecisionLog = Annotated[
    Path, typer.Option(envvar="PUPPET_GATEWAY_DECISION_LOG", help="JSONL file of decisions.")
]
SplitName = Annotated[str, typer.Argument(help="A service (memory, agent, ...) or `rest`.")]

DEFAULT_ADMIN = "http://127.0.0.1:9901"
DEFAULT_RUNTIME = Path("data/gateway/runtime/current")
DEFAULT_LOG = Path("data/gateway/decisions.jsonl")


def _run(
    admin_url: str,
    runtime_root: Path,
    decision_log: Path,
    action: Callable[[Controller], Awaitable[T]],
) -> T:
    async def go() -> T:
        admin = EnvoyAdmin(admin_url)
        try:
            layer = None if str(runtime_root) == "-" else RuntimeLayer(runtime_root)
            return await action(Controller(admin, layer, decision_log))
        finally:
            await admin.close()

    try:
        return asyncio.run(go())
    except KeyError as err:  # a split Envoy does not have
        raise typer.BadParameter(str(err.args[0])) from None
    except httpx.HTTPError as err:
        raise typer.BadParameter(f"envoy admin at {admin_url}: {err}") from None


def _show(decision: Decision) -> None:
    console.print(
        f"{decision.split}: {decision.action} {decision.from_percent}% -> "
        f"{decision.to_percent}% ({decision.reason})"
    )


def _fmt(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.1f}{suffix}"


@app.command()
def status(
    splits: Annotated[list[str], typer.Argument(help="Splits to show.")],
    sample_s: Annotated[float, typer.Option(help="Window for the request rate.")] = 1.0,
    admin_url: AdminUrl = DEFAULT_ADMIN,
    runtime_root: RuntimeRoot = DEFAULT_RUNTIME,
    decision_log: DecisionLog = DEFAULT_LOG,
) -> None:
    """Weights; per side: request rate and success rate over `sample_s` (success since start
    when idle), total requests, p50/p95 of Envoy's last stats interval."""

    async def collect(controller: Controller) -> list[tuple[SplitStatus, SplitStatus]]:
        first = [await controller.status(split) for split in splits]
        await asyncio.sleep(sample_s)
        return list(zip(first, [await controller.status(split) for split in splits], strict=True))

    table = Table("split", "canary %", "side", "req/s", "requests", "success", "p50 ms", "p95 ms")
    for before, now in _run(admin_url, runtime_root, decision_log, collect):
        sides = (("stable", before.stable, now.stable), ("canary", before.canary, now.canary))
        for side, earlier, stats in sides:
            window = stats.minus(earlier)
            success = window.success_rate if window.requests else stats.success_rate
            rate = None if success is None else 100 * success
            table.add_row(
                now.split,
                str(now.canary_percent),
                side,
                _fmt(window.requests / sample_s),
                str(stats.requests),
                _fmt(rate, "%"),
                _fmt(stats.p50_ms),
                _fmt(stats.p95_ms),
            )
    console.print(table)


@app.command("set")
def set_weight(
    split: SplitName,
    percent: Annotated[int, typer.Argument(min=0, max=100, help="Canary share in percent.")],
    admin_url: AdminUrl = DEFAULT_ADMIN,
    runtime_root: RuntimeRoot = DEFAULT_RUNTIME,
    decision_log: DecisionLog = DEFAULT_LOG,
) -> None:
    """Set the canary's share of a split (live, no restart)."""
    _show(_run(admin_url, runtime_root, decision_log, lambda c: c.set(split, percent)))


@app.command()
def promote(
    split: SplitName,
    admin_url: AdminUrl = DEFAULT_ADMIN,
    runtime_root: RuntimeRoot = DEFAULT_RUNTIME,
    decision_log: DecisionLog = DEFAULT_LOG,
) -> None:
    """Move the canary to the next step (1, 5, 25, 50, 100)."""
    _show(_run(admin_url, runtime_root, decision_log, lambda c: c.promote(split)))


@app.command()
def rollback(
    split: SplitName,
    admin_url: AdminUrl = DEFAULT_ADMIN,
    runtime_root: RuntimeRoot = DEFAULT_RUNTIME,
    decision_log: DecisionLog = DEFAULT_LOG,
) -> None:
    """Send the canary nothing."""
    _show(_run(admin_url, runtime_root, decision_log, lambda c: c.rollback(split)))


@app.command()
def auto(
    split: SplitName,
    min_success: Annotated[float, typer.Option(help="Roll back below this.")] = 0.95,
    p95_budget_ms: Annotated[float, typer.Option(help="Roll back above this.")] = 250.0,
    window_s: Annotated[float, typer.Option(help="Healthy this long: promote.")] = 30.0,
    min_requests: Annotated[int, typer.Option(help="Traffic needed to promote.")] = 20,
    max_duration_s: Annotated[float | None, typer.Option(help="Stop after this.")] = None,
    admin_url: AdminUrl = DEFAULT_ADMIN,
    runtime_root: RuntimeRoot = DEFAULT_RUNTIME,
    decision_log: DecisionLog = DEFAULT_LOG,
) -> None:
    """Promote step by step while the canary holds up; roll back to 0 when it does not."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    policy = AutoPolicy(min_success, p95_budget_ms, window_s, min_requests)
    decisions = _run(
        admin_url,
        runtime_root,
        decision_log,
        lambda c: c.auto(split, policy, max_duration_s=max_duration_s),
    )
    for decision in decisions:
        _show(decision)


def _replays(captures: Path, include_writes: bool) -> list[Replay]:
    replays = []
    for path in sorted(captures.glob("*.json")):
        request = json.loads(path.read_text())["request"]
        if request["method"] in ("GET", "HEAD") or include_writes:
            body = request.get("body") if request.get("body_is_json") else None
            replays.append(Replay(request["method"], request["path"], body))
    return replays


@app.command()
def diff(
    captures: Annotated[Path, typer.Argument(help="Folder of legacy captures (*.json).")],
    gateway_url: Annotated[
        str, typer.Option(envvar="PUPPET_GATEWAY_URL", help="The gateway's listener.")
    ] = "http://127.0.0.1:8080",
    include_writes: Annotated[
        bool, typer.Option(help="Also replay writes (they happen on both sides).")
    ] = False,
) -> None:
    """Replay captured requests to legacy and to Python; report per route where they differ."""

    async def go() -> dict[str, RouteReport]:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
            return dict(await shadow_report(client, _replays(captures, include_writes)))

    reports = asyncio.run(go())
    table = Table("route", "requests", "status differences", "key/type differences")
    for report in reports.values():
        table.add_row(
            report.route,
            str(report.requests),
            "\n".join(report.status_mismatches) or "-",
            "\n".join(sorted(report.shape_differences)) or "-",
        )
    console.print(table)
    if not all(report.same for report in reports.values()):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
