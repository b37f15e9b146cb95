"""EventEngine: priority order, delayed events firing on their own, failure isolation, history."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from puppet_agent.life.events import ALL, Event, EventEngine, Priority, for_each_persona


class ManualClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_events_are_handled_highest_priority_first_then_in_arrival_order():
    engine = EventEngine()
    seen: list[str] = []

    async def record(event: Event) -> None:
        seen.append(event.data)

    engine.on(ALL, record)
    engine.submit("custom", "low", priority=Priority.LOW)
    engine.submit("custom", "normal-1")
    engine.submit("custom", "critical", priority=Priority.CRITICAL)
    engine.submit("custom", "normal-2")
    engine.submit("custom", "high", priority=Priority.HIGH)
    async with engine:
        await engine.idle()
    assert seen == ["critical", "high", "normal-1", "normal-2", "low"]


async def test_a_lone_delayed_event_fires_at_its_time_without_another_event():
    # Legacy fired a delayed event only when a later event arrived (CONTRACT §11 #9).
    fired = asyncio.get_running_loop().create_future()
    engine = EventEngine()

    async def handle(event: Event) -> None:
        fired.set_result(time.monotonic())

    engine.on("news", handle)
    async with engine:
        start = time.monotonic()
        event = engine.submit("news", {"headline": "x"}, delay_s=0.15)
        assert event.due_at is not None
        assert engine.scheduled() == [event]
        at = await asyncio.wait_for(fired, 2)
        await engine.idle()
    assert 0.14 <= at - start < 1.0
    assert engine.scheduled() == []
    assert [p.event.id for p in engine.history()] == [event.id]


async def test_delayed_events_follow_an_injected_clock():
    clock = ManualClock()
    engine = EventEngine(clock=clock)
    handled: list[str] = []

    async def handle(event: Event) -> None:
        handled.append(event.data)

    engine.on("custom", handle)
    async with engine:
        engine.submit("custom", "later", delay_s=3600)
        engine.submit("custom", "sooner", delay_s=60)
        await engine.idle()
        assert handled == []
        clock.now += 61
        engine.wake()
        await engine.idle()
        assert handled == ["sooner"]
        clock.now += 3600
        engine.wake()
        await engine.idle()
    assert handled == ["sooner", "later"]
    assert engine.history()[-1].processed_at == clock.now


async def test_a_failing_handler_is_logged_and_isolated(caplog):
    engine = EventEngine(handler_timeout_s=0.2)
    ok: list[str] = []

    async def boom(event: Event) -> None:
        raise RuntimeError("handler bug")

    async def hang(event: Event) -> None:
        await asyncio.sleep(10)

    async def fine(event: Event) -> None:
        ok.append(event.type)

    engine.on("news", boom)
    engine.on("news", hang)
    engine.on("news", fine)
    engine.on("mood_shift", fine)
    with caplog.at_level(logging.ERROR, logger="puppet_agent.life.events"):
        async with engine:
            engine.submit("news", {})
            engine.submit("mood_shift", {})
            await engine.idle()
    assert ok == ["news", "mood_shift"]
    assert [p.failed for p in engine.history()] == [2, 0]
    assert "handler bug" in caplog.text


async def test_history_is_bounded_and_listed_oldest_first():
    engine = EventEngine(history_size=3)
    async with engine:
        for i in range(5):
            engine.submit("custom", i)
        await engine.idle()
    assert [p.event.data for p in engine.history()] == [2, 3, 4]
    assert [p.event.data for p in engine.history(limit=2)] == [3, 4]


async def test_for_each_persona_targets_exactly_and_isolates_each_persona(caplog):
    engine = EventEngine()
    done: list[tuple[str, str]] = []

    async def handle(persona_id: str, event: Event) -> None:
        if persona_id == "bad":
            raise ValueError("persona bug")
        done.append((persona_id, event.data))

    engine.on(ALL, for_each_persona(lambda: ["bad", "a", "ab", "b"], handle))
    async with engine:
        engine.submit("custom", "all")
        engine.submit("custom", "only-ab", targets=["ab"])
        engine.submit("custom", "bad-and-b", targets=["bad", "b"])
        await engine.idle()
    assert sorted(done) == [
        ("a", "all"),
        ("ab", "all"),
        ("ab", "only-ab"),
        ("b", "all"),
        ("b", "bad-and-b"),
    ]
    assert "persona bug" in caplog.text


def test_priority_parsing():
    assert Priority.parse("") is Priority.NORMAL
    assert Priority.parse("Critical") is Priority.CRITICAL
    with pytest.raises(ValueError, match="unknown priority"):
        Priority.parse("urgent")
