"""What every client shares: dependency errors mapped to ours, handles, timestamps."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import grpc
from google.protobuf import timestamp_pb2
from puppet_runtime.testing import status_of

from puppet_agent import errors

TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED,
}
_HANDLE_BAD = re.compile(r"[^A-Za-z0-9_]")


def handle_for(agent_id: str) -> str:
    """The sandbox handle of a persona: its id with [^A-Za-z0-9_] as "_", at most 15 long."""
    return _HANDLE_BAD.sub("_", agent_id)[:15]


def translate(service: str, err: grpc.aio.AioRpcError, agent_id: str = "") -> Exception:
    """A dependency's failure as this service's error (or the original for a bug of ours)."""
    code, info, _ = status_of(err)
    reason = info.reason if info is not None else ""
    if code in TRANSIENT:
        return errors.unavailable(service)
    if reason == "PERSONA_NOT_FOUND":
        return errors.agent_not_found(agent_id)
    if reason == "BUDGET_EXHAUSTED" and info is not None:
        return errors.llm_budget_exhausted(info.metadata.get("budget", "tokens"))
    if service == "llm" and code is grpc.StatusCode.FAILED_PRECONDITION:
        return errors.post_refused(reason, err.details() or reason)
    return err


@contextmanager
def calling(service: str, agent_id: str = "") -> Iterator[None]:
    """Map a failed call inside the block to this service's errors."""
    try:
        yield
    except grpc.aio.AioRpcError as err:
        mapped = translate(service, err, agent_id)
        if mapped is err:
            raise
        raise mapped from err


def ts(when: datetime | None) -> timestamp_pb2.Timestamp | None:
    if when is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp
