"""Request checks: every bad field becomes one BadRequest violation naming it."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from puppet.memory.v1 import memory_pb2
from puppet_runtime import FieldChecks

from puppet_memory.store import Channel, Kind, Vector

AGENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
COUNTERPARTY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
MEMORY_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_CONTENT = 8_000
MAX_ENTRIES = 32
MAX_BUDGET = 1_000_000
MAX_DIMENSION = 4_096
CLOCK_SKEW_US = 60_000_000


class Checks(FieldChecks):
    """This service's field checks."""

    def cursor(self, query: str, token: str, shape: type) -> Any:
        """The decoded page_token: a str or an [int, str] pair per shape; fails otherwise."""
        cursor = self.page_token("page_token", query, token)
        ok = cursor is None or (
            isinstance(cursor, str)
            if shape is str
            else isinstance(cursor, list)
            and len(cursor) == 2
            and type(cursor[0]) is int
            and isinstance(cursor[1], str)
        )
        if not ok:
            self.fail("page_token", "is not a token this service issued")
            return None
        return cursor

    def agent_name(self, field: str, name: str) -> str:
        agent = name.removeprefix("agents/")
        if agent == name:
            self.fail(field, f"must have the form agents/{{agent}}, got {name[:80]!r}")
            return ""
        return self.pattern(field, agent, AGENT, "agents/{agent} with 1-64 of [a-z0-9_-]")

    def child_name(
        self, field: str, name: str, collection: str, regex: re.Pattern[str]
    ) -> tuple[str, str]:
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "agents" or parts[2] != collection:
            self.fail(field, f"must have the form agents/{{agent}}/{collection}/{{id}}")
            return "", ""
        if not AGENT.fullmatch(parts[1]) or not regex.fullmatch(parts[3]):
            self.fail(field, f"has a malformed id: {name[:120]!r}")
        return parts[1], parts[3]

    def timestamp(self, field: str, ts: timestamp_pb2.Timestamp, *, past: bool = False) -> int:
        valid = len(self.violations)
        us = super().timestamp(field, ts)
        if past and len(self.violations) == valid and us > time.time_ns() // 1_000 + CLOCK_SKEW_US:
            self.fail(field, "must not be in the future")
        return us

    def duration_us(self, field: str, d: duration_pb2.Duration, low_s: float, high_s: float) -> int:
        us = d.seconds * 1_000_000 + d.nanos // 1_000
        if not -999_999_999 <= d.nanos <= 999_999_999 or not low_s <= us / 1e6 <= high_s:
            self.fail(field, f"must be from {low_s:g} s to {high_s:g} s")
            return int(low_s * 1_000_000)
        return us

    def string_map(
        self, field: str, values: Mapping[str, str], *, value_max: int
    ) -> dict[str, str]:
        if len(values) > MAX_ENTRIES:
            self.fail(field, f"must have at most {MAX_ENTRIES} entries, got {len(values)}")
        for key, value in values.items():
            if not 1 <= len(key) <= 64:
                self.fail(f"{field}[{key[:40]!r}]", "key must be 1-64 characters")
            if len(value) > value_max:
                self.fail(f"{field}[{key[:40]!r}]", f"value must be at most {value_max} characters")
        return dict(values)

    def strings(
        self, field: str, values: Sequence[str], *, most: int, each: int
    ) -> tuple[str, ...]:
        if len(values) > most:
            self.fail(field, f"must have at most {most} items, got {len(values)}")
        for i, value in enumerate(values):
            self.text(f"{field}[{i}]", value, low=1, high=each)
        return tuple(values)

    def kind(self, field: str, value: int, *, default: Kind | None) -> Kind:
        if value == 0 and default is not None:
            return default
        try:
            return Kind(value)
        except ValueError:
            self.fail(field, f"must be a MemoryKind other than UNSPECIFIED, got {value}")
            return Kind.GENERAL

    def kinds(self, field: str, values: Sequence[int]) -> frozenset[Kind]:
        return frozenset(self.kind(f"{field}[{i}]", v, default=None) for i, v in enumerate(values))

    def channel(self, field: str, value: int) -> Channel:
        if value == 0:
            return Channel.API
        if value == Channel.CONSOLIDATION:
            self.fail(field, "PROVENANCE_CHANNEL_CONSOLIDATION is set by the service only")
        try:
            return Channel(value)
        except ValueError:
            self.fail(field, f"is not a ProvenanceChannel: {value}")
            return Channel.API

    def embedding(self, field: str, e: memory_pb2.Embedding) -> tuple[str, Vector]:
        self.text(f"{field}.model", e.model, low=1, high=128)
        vector = np.asarray(e.values, dtype=np.float32)
        if not 1 <= vector.size <= MAX_DIMENSION:
            self.fail(f"{field}.values", f"must have 1-{MAX_DIMENSION} numbers, got {vector.size}")
        elif not np.isfinite(vector).all():
            self.fail(f"{field}.values", "must all be finite numbers (no NaN or infinity)")
        elif not np.any(vector):
            self.fail(f"{field}.values", "must not be all zero")
        return e.model, vector

    def mask(
        self,
        field: str,
        mask: field_mask_pb2.FieldMask,
        allowed: frozenset[str],
        prefixes: tuple[str, ...] = (),
    ) -> list[str]:
        if not mask.paths:
            self.fail(field, "is required: name the fields to change")
        for path in mask.paths:
            if path not in allowed and not any(path.startswith(p) and path != p for p in prefixes):
                self.fail(f"{field}.paths", f"{path[:80]!r} is not one of {sorted(allowed)}")
        return list(mask.paths)
