"""Request checks: every bad field becomes one BadRequest violation naming it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from puppet.llm.v1 import llm_pb2
from puppet_runtime import FieldChecks

AGENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
HANDLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
MEMORY = re.compile(r"agents/[a-z0-9][a-z0-9_-]{0,63}/memories/[a-z0-9][a-z0-9_-]{0,63}")
POST = re.compile(r"accounts/[A-Za-z0-9_.-]{1,64}/posts/[A-Za-z0-9_.-]{1,128}")
RECEIPT = re.compile(r"wallets/[A-Za-z0-9_.-]{1,128}/receipts/[A-Za-z0-9_.-]{1,128}")
SIGNATURE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,128}")
USER_ID = re.compile(r"[0-9]{1,32}")
DECIMAL = re.compile(r"[0-9]{1,30}(?:\.[0-9]{1,30})?")
SYMBOL = re.compile(r"[A-Za-z0-9$._-]{1,16}")


class Checks(FieldChecks):
    """This service's field checks."""

    def strings(self, field: str, values: Sequence[str], *, most: int, each: int) -> None:
        if len(values) > most:
            self.fail(field, f"must have at most {most} items, got {len(values)}")
        for i, value in enumerate(values[:most]):
            self.text(f"{field}[{i}]", value, low=1, high=each)

    def enum(self, field: str, value: int, kind: Any, *, unspecified_ok: bool = True) -> int:
        if value not in kind.values() or (value == 0 and not unspecified_ok):
            names = [n for n in list(kind.keys()) if not n.endswith("UNSPECIFIED")]
            self.fail(field, f"must be one of {names}, got {value}")
        return value

    def agent(self, field: str, name: str, suffix: str = "") -> str:
        """The {agent} of agents/{agent}{suffix}."""
        body = name.removeprefix("agents/")
        if body == name or not body.endswith(suffix):
            self.fail(field, f"must have the form agents/{{agent}}{suffix}, got {name[:80]!r}")
            return ""
        agent = body[: len(body) - len(suffix)]
        self.pattern(field, agent, AGENT, f"agents/{{agent}}{suffix} with 1-64 of [a-z0-9_-]")
        return agent


def output_rules(c: Checks, f: str, o: llm_pb2.OutputRules) -> None:
    c.strings(f"{f}.banned_phrases", o.banned_phrases, most=100, each=200)
    c.strings(f"{f}.regenerate_prefixes", o.regenerate_prefixes, most=20, each=200)
    c.number(f"{f}.regenerate_probability", o.regenerate_probability, 0, 1)
    if not 0 <= o.max_regenerations <= 5:
        c.fail(f"{f}.max_regenerations", f"must be 0-5, got {o.max_regenerations}")
    if not 0 <= o.max_tokens <= 4096:
        c.fail(f"{f}.max_tokens", f"must be 0-4096, got {o.max_tokens}")
    if o.HasField("temperature"):
        c.number(f"{f}.temperature", o.temperature, 0, 2)


def persona(c: Checks, f: str, p: llm_pb2.Persona, present: bool) -> None:
    c.required(f, present)
    c.agent(f"{f}.agent", p.agent)
    c.text(f"{f}.display_name", p.display_name, high=128)
    c.text(f"{f}.description", p.description, high=2_000)
    c.enum(f"{f}.provider", p.provider, llm_pb2.Provider)
    c.pattern(f"{f}.model", p.model, MODEL, "a model id of [A-Za-z0-9._:/-]", optional=True)
    c.text(f"{f}.custom_system_prompt", p.custom_system_prompt, high=20_000)
    c.strings(f"{f}.rotating_system_prompts", p.rotating_system_prompts, most=20, each=20_000)
    for name in ("traits", "values", "interests", "formatting_rules", "topics_to_avoid"):
        c.strings(f"{f}.{name}", getattr(p, name), most=50, each=500)
    for name in ("speaking_style", "voice", "tone"):
        c.text(f"{f}.{name}", getattr(p, name), high=2_000)
    output_rules(c, f"{f}.output_rules", p.output_rules)
    for name in ("reply", "quote", "like"):
        c.number(
            f"{f}.interaction_probabilities.{name}",
            getattr(p.interaction_probabilities, name),
            0,
            1,
        )


def context(c: Checks, f: str, x: llm_pb2.CompositionContext) -> None:
    m = x.mood
    c.number(f"{f}.mood.valence", m.valence, -1, 1)
    c.number(f"{f}.mood.arousal", m.arousal, 0, 1)
    c.number(f"{f}.mood.dominance", m.dominance, 0, 1)
    if len(x.memories) > 100:
        c.fail(f"{f}.memories", f"must have at most 100 items, got {len(x.memories)}")
    for i, mem in enumerate(x.memories[:100]):
        g = f"{f}.memories[{i}]"
        c.pattern(
            f"{g}.memory", mem.memory, MEMORY, "agents/{agent}/memories/{memory}", optional=True
        )
        c.text(f"{g}.content", mem.content, low=1, high=100_000)
        c.text(f"{g}.kind", mem.kind, high=32)
        c.number(f"{g}.importance", mem.importance, 0, 1)
    c.strings(f"{f}.recent_posts", x.recent_posts, most=50, each=4_000)
    if len(x.allowed_handles) > 200:
        c.fail(f"{f}.allowed_handles", "must have at most 200 items")
    for i, handle in enumerate(x.allowed_handles[:200]):
        c.pattern(f"{f}.allowed_handles[{i}]", handle, HANDLE, "a handle without @")
    if x.HasField("now"):
        c.timestamp(f"{f}.now", x.now)


def target(c: Checks, f: str, t: llm_pb2.TargetPost, present: bool) -> None:
    c.required(f, present)
    c.pattern(f"{f}.post", t.post, POST, "accounts/{account}/posts/{post}")
    c.text(f"{f}.text", t.text, low=1, high=4_000)
    c.pattern(f"{f}.author_handle", t.author_handle, HANDLE, "a handle without @", optional=True)
    c.pattern(f"{f}.author_user_id", t.author_user_id, USER_ID, "a numeric user id", optional=True)
    if len(t.conversation) > 50:
        c.fail(f"{f}.conversation", f"must have at most 50 items, got {len(t.conversation)}")
    for i, p in enumerate(t.conversation[:50]):
        g = f"{f}.conversation[{i}]"
        c.text(f"{g}.text", p.text, low=1, high=4_000)
        c.pattern(
            f"{g}.author_handle", p.author_handle, HANDLE, "a handle without @", optional=True
        )
        c.pattern(
            f"{g}.author_user_id", p.author_user_id, USER_ID, "a numeric user id", optional=True
        )


def counterparty(c: Checks, f: str, p: llm_pb2.Counterparty, present: bool) -> None:
    if not present:
        return
    c.pattern(f"{f}.id", p.id, HANDLE, "a persona id or a handle without @")
    c.text(f"{f}.display_name", p.display_name, high=128)
    c.number(f"{f}.sentiment", p.sentiment, -1, 1)
    c.number(f"{f}.familiarity", p.familiarity, 0, 1)
    c.number(f"{f}.trust", p.trust, 0, 1)
    c.strings(f"{f}.notes", p.notes, most=50, each=500)


def trade(c: Checks, f: str, t: llm_pb2.TradeFacts, present: bool) -> None:
    """Only the facts of a confirmed receipt are accepted."""
    c.required(f, present)
    c.pattern(f"{f}.receipt", t.receipt, RECEIPT, "wallets/{wallet}/receipts/{receipt}")
    c.pattern(f"{f}.signature", t.signature, SIGNATURE, "a base58 transaction signature")
    if t.kind not in ("swap", "transfer"):
        c.fail(f"{f}.kind", f"must be swap or transfer, got {t.kind[:20]!r}")
    c.pattern(f"{f}.input_symbol", t.input_symbol, SYMBOL, "a token symbol of 1-16 characters")
    c.pattern(f"{f}.input_amount", t.input_amount, DECIMAL, "a decimal string such as 0.25")
    swap = t.kind == "swap"
    for name, regex, what in (
        ("output_symbol", SYMBOL, "a token symbol of 1-16 characters"),
        ("output_amount", DECIMAL, "a decimal string"),
        ("price", DECIMAL, "a decimal string"),
    ):
        value = getattr(t, name)
        if swap:
            c.pattern(f"{f}.{name}", value, regex, what)
        elif value:
            c.fail(f"{f}.{name}", "must be empty for a transfer")
    c.required(f"{f}.confirm_time", t.HasField("confirm_time"))
    if t.HasField("confirm_time"):
        c.timestamp(f"{f}.confirm_time", t.confirm_time)
