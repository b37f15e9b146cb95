"""`puppet event <type>`: inject an event into the personas' world (AgentService.CreateEvent)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from google.protobuf.struct_pb2 import Value
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.agent.v1 import agent_service_pb2_grpc as rpc

from puppet_cli import output
from puppet_cli.config import Config
from puppet_cli.rpc import Failure, connect, run

AGENT = pb.DESCRIPTOR.services_by_name["AgentService"]

_DELAY = re.compile(r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_delay(text: str) -> int:
    """A delay such as `500ms`, `30s`, `5m`, `2h`, `1d` or `45` (seconds) in milliseconds."""
    match = _DELAY.fullmatch(text.strip())
    if match is None:
        raise Failure(f"--delay {text!r} is not a delay like 30s, 5m, 2h or 500ms")
    return round(float(match["amount"]) * _UNIT_MS[match["unit"] or "s"])


def parse_data(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs as a JSON object; a value that parses as JSON (3, true, [1]) keeps its type."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise Failure(f"--data {pair!r} is not key=value")
        try:
            data[key] = json.loads(raw)
        except json.JSONDecodeError:
            data[key] = raw
    return data


async def _create(config: Config, request: pb.CreateEventRequest) -> pb.CreateEventResponse:
    async with connect(config, "agent", AGENT) as channel:
        return await rpc.AgentServiceStub(channel).CreateEvent(request, metadata=config.metadata())


def event(
    config: Config,
    event_type: str,
    *,
    targets: list[str],
    data: list[str],
    delay: str | None,
    priority: str,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Inject an event now or after a delay, for some personas or (no --target) all of them."""

    async def work() -> pb.CreateEventResponse:
        payload = Value()
        payload.struct_value.SetInParent()  # {} too: with no --data the payload is an object
        payload.struct_value.update(parse_data(data))
        request = pb.CreateEventRequest(
            type=event_type,
            data=payload,
            target_agent_ids=targets,
            priority=priority,
            delay_ms=parse_delay(delay) if delay else 0,
            request_id=request_id or f"cli-{uuid.uuid4().hex}",
        )
        return await _create(config, request)

    reply = run(work())
    if as_json:
        output.emit_json(output.as_dict(reply))
        return
    receipt = reply.event
    when = (
        f"scheduled for {output.stamp(receipt.execute_after)}" if reply.scheduled else "queued now"
    )
    output.show(f"event {receipt.id} ({receipt.type}) {when}")
