"""Each persona's life: the posting schedule, mentions and reactions, events and their effects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from puppet.chain.v1 import chain_pb2
from puppet.llm.v1 import llm_pb2
from puppet.memory.v1 import memory_pb2
from puppet.social.v1 import social_pb2
from puppet_runtime import ServiceError

from puppet_agent import convert, trading
from puppet_agent.fleet import Fleet, derived
from puppet_agent.leases import Lease, LeaseStore
from puppet_agent.leases.leaser import Leaser
from puppet_agent.life import random_events
from puppet_agent.life.events import ALL, Event, EventEngine, Priority, for_each_persona
from puppet_agent.life.mood import Mood, shift_for_event, shift_for_interaction
from puppet_agent.life.reactions import (
    Action,
    InteractionPatterns,
    LoopGuard,
    Verdict,
    decide_reaction,
)
from puppet_agent.life.schedule import PostFrequency, next_post_time
from puppet_agent.settings import AgentSettings
from puppet_agent.store import EventRecord

log = logging.getLogger(__name__)

_ACTIONS = {
    llm_pb2.REACTION_ACTION_IGNORE: Action.IGNORE,
    llm_pb2.REACTION_ACTION_LIKE: Action.LIKE,
    llm_pb2.REACTION_ACTION_REPLY: Action.REPLY,
    llm_pb2.REACTION_ACTION_QUOTE: Action.QUOTE,
}


class Runner:
    """Runs the lives of the personas of this replica (the fleet's Life)."""

    def __init__(
        self,
        fleet: Fleet,
        settings: AgentSettings,
        *,
        leases: LeaseStore | None = None,
        replica_id: str = "local",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fleet = fleet
        self._settings = settings
        self._clock = clock
        self._rng = random.Random(settings.random_seed)
        self._tz = ZoneInfo(settings.timezone)
        self._engine = EventEngine(clock=clock)
        self._engine.on(ALL, self._handle_event)
        self._per_persona = for_each_persona(self._running, self._on_event)
        self.guard = LoopGuard(is_persona=lambda who: who in self._known, clock=time.monotonic)
        self._known: set[str] = set()
        self._paused: set[str] = set()
        self._lives: dict[str, list[asyncio.Task[None]]] = {}
        self._next: dict[str, float] = {}
        self._started = False
        self._leases = leases
        self.replica_id = replica_id
        self._leaser = (
            Leaser(
                leases,
                replica_id,
                self._running,
                ttl_s=settings.lease_ttl_s,
                on_acquired=self._acquired,
                on_lost=self._lost,
                rng=self._rng,
            )
            if leases is not None and settings.run_lives
            else None
        )
        self._tick_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._sync_task: asyncio.Task[None] | None = None

    # Life

    def persona_changed(self, agent_id: str) -> None:
        if self._started:
            task = asyncio.get_running_loop().create_task(self._refresh(agent_id))
            self._background.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("refreshing a persona's life failed", exc_info=task.exception())

    def persona_removed(self, agent_id: str) -> None:
        self._known.discard(agent_id)
        self._paused.discard(agent_id)
        self._stop_life(agent_id)

    def event_created(self, event: EventRecord) -> None:
        delay = 0.0 if event.execute_after is None else event.execute_after - self._clock()
        self._engine.submit(
            event.type,
            event.data,
            targets=event.targets,
            priority=Priority.parse(event.priority),
            delay_s=max(delay, 0.0) if event.execute_after is not None else 0.0,
            event_id=event.id,
        )

    def next_post_time(self, agent_id: str) -> float | None:
        return self._next.get(agent_id)

    async def lease(self, agent_id: str) -> tuple[str, float | None]:
        """Who holds the persona's lease (any replica's, read from the shared lease store)."""
        if self._leaser is not None and self._leases is not None:
            held = (await self._leases.holders()).get(agent_id)
            return (held.replica_id, held.expires_at) if held else ("", None)
        return (self.replica_id, None) if agent_id in self._lives else ("", None)

    async def leases(self) -> dict[str, tuple[str, float | None]]:
        """Every persona's lease holder (one read of the shared lease store)."""
        if self._leaser is not None and self._leases is not None:
            held = await self._leases.holders()
            return {k: (v.replica_id, v.expires_at) for k, v in held.items()}
        return {agent_id: (self.replica_id, None) for agent_id in self._lives}

    # lifecycle

    async def start(self) -> None:
        self._started = True
        await self._sync()
        if self._leaser is not None:
            assert self._leases is not None
            await self._leases.open()
            await self._leaser.start()
            self._sync_task = asyncio.get_running_loop().create_task(self._sync_loop())
        elif self._settings.run_lives:
            for agent_id in self._running():
                self._start_life(agent_id)
        for event in await self._fleet.store.pending_events():
            self.event_created(event)
        await self._engine.start()

    async def stop(self) -> None:
        self._started = False
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        if self._leaser is not None:
            with contextlib.suppress(Exception):
                await self._leaser.stop(release=True)
        for agent_id in list(self._lives):
            self._stop_life(agent_id)
        await self._engine.stop()
        if self._leases is not None and self._leaser is not None:
            await self._leases.close()

    async def _sync(self) -> None:
        """Persona ids and pause flags from the store (other replicas create and pause too)."""
        records = await self._fleet.store.list_personas(limit=100_000)
        self._known = {r.id for r in records}
        self._paused = {r.id for r in records if r.paused}
        for agent_id in list(self._lives):
            if agent_id not in self._known or agent_id in self._paused:
                self._stop_life(agent_id)

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.lease_ttl_s / 3)
            try:
                await self._sync()
                await self._tick()
            except Exception:
                log.exception("persona sync failed")

    async def _tick(self) -> None:
        if self._leaser is not None:
            async with self._tick_lock:
                await self._leaser.tick()

    async def _acquired(self, lease: Lease) -> None:
        if lease.key in self._known and lease.key not in self._paused:
            self._stop_life(lease.key)
            self._start_life(lease.key)

    async def _lost(self, agent_id: str) -> None:
        self._stop_life(agent_id)

    async def idle(self) -> None:
        """Wait until no due event is queued or being handled (for tests and shutdown)."""
        await self._engine.idle()

    async def _refresh(self, agent_id: str) -> None:
        record = await self._fleet.store.get_persona(agent_id)
        if record is None:
            return self.persona_removed(agent_id)
        self._known.add(agent_id)
        self._stop_life(agent_id)
        if record.paused:
            self._paused.add(agent_id)
            self._next.pop(agent_id, None)
        else:
            self._paused.discard(agent_id)
            if self._leaser is None and self._settings.run_lives:
                self._start_life(agent_id)
            elif self._leaser is not None:
                if agent_id in self._leaser.held:
                    self._start_life(agent_id)
                await self._tick()
        return None

    def _running(self) -> list[str]:
        return sorted(self._known - self._paused)

    def _start_life(self, agent_id: str) -> None:
        self._lives[agent_id] = [
            asyncio.get_running_loop().create_task(
                self._schedule(agent_id), name=f"post-{agent_id}"
            ),
            asyncio.get_running_loop().create_task(
                self._mentions(agent_id), name=f"mentions-{agent_id}"
            ),
            asyncio.get_running_loop().create_task(self._moods(agent_id), name=f"mood-{agent_id}"),
            asyncio.get_running_loop().create_task(
                self._ambient(agent_id), name=f"ambient-{agent_id}"
            ),
        ]
        if self._fleet.clients.chain is not None:
            self._lives[agent_id].append(
                asyncio.get_running_loop().create_task(
                    self._trading(agent_id), name=f"trading-{agent_id}"
                )
            )

    def _stop_life(self, agent_id: str) -> None:
        for task in self._lives.pop(agent_id, []):
            task.cancel()
        self._next.pop(agent_id, None)

    # posting schedule

    async def _schedule(self, agent_id: str) -> None:
        earliest = self._clock() + self._settings.first_post_delay_s
        while True:
            try:
                at = await self._plan(agent_id, earliest)
                self._next[agent_id] = at
                await self._sleep_until(at)
                await self._fleet.create_post(
                    agent_id, request_id=f"slot-{agent_id}-{int(at)}", trigger="schedule"
                )
            except asyncio.CancelledError:
                raise
            except ServiceError as err:
                if err.reason != "POST_TOO_SOON":
                    log.warning("scheduled post of %s failed: %s", agent_id, err.message)
                    await asyncio.sleep(self._settings.tick_s)
            except Exception:
                log.exception("scheduled post of %s failed", agent_id)
                await asyncio.sleep(self._settings.tick_s)

    async def _sleep_until(self, at: float) -> None:
        """Sleep in ticks, so a moved wall clock (or an injected one) is noticed."""
        for _ in range(1_000_000):
            wait = at - self._clock()
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, self._settings.tick_s))

    async def _plan(self, agent_id: str, earliest: float) -> float:
        _, persona = await self._fleet.persona(agent_id)
        state = await self._fleet.state(agent_id)
        freq = persona.behavior.post_frequency
        last = convert.seconds(state.last_post_time) if state is not None else None
        scale, floor_h = self._settings.schedule_scale, self._settings.min_post_gap_s / 3600
        low = max(freq.min_hours_between_posts * scale, floor_h if last is not None else 0.0)
        at = next_post_time(
            PostFrequency(
                min_hours=low,
                max_hours=max(freq.max_hours_between_posts * scale, low),
                peak_hours=frozenset(freq.peak_posting_hours),
                jitter_minutes=PostFrequency.jitter_minutes * scale,
            ),
            now=self._clock(),
            rng=self._rng,
            last_post=last,
            tz=self._tz,
        )
        return max(at, earliest)

    # random events (legacy setupRandomEvents, per persona)

    async def _ambient(self, agent_id: str) -> None:
        kinds = {
            "mood_shift": self._settings.mood_event_interval_s,
            "news": self._settings.news_event_interval_s,
            "interaction_prompt": self._settings.interaction_event_interval_s,
        }
        due = {kind: self._clock() + every for kind, every in kinds.items() if every > 0}
        while due:
            kind = min(due, key=due.__getitem__)
            await self._sleep_until(due[kind])
            due[kind] += kinds[kind]
            data = self._ambient_data(kind, agent_id)
            if data is None:
                continue
            try:
                await self._fleet.create_event(kind, data, [agent_id], "normal", 0)
            except Exception as err:
                log.warning("random %s event for %s not created: %s", kind, agent_id, err)

    def _ambient_data(self, kind: str, agent_id: str) -> dict[str, Any] | None:
        if kind == "mood_shift":
            return random_events.mood_data(self._rng)
        if kind == "news":
            return random_events.news_data(self._rng)
        others = [p for p in self._running() if p != agent_id]
        return random_events.interaction_data(self._rng, agent_id, others)

    # trading (decisions go to chain; announcements only from confirmed receipts)

    async def _trading(self, agent_id: str) -> None:
        while True:
            await asyncio.sleep(self._settings.trade_check_interval_s)
            try:
                outcome = await self.trade_once(agent_id)
                log.info("trading check of %s: %s", agent_id, outcome)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("trading check of %s failed: %s", agent_id, err)

    async def trade_once(self, agent_id: str) -> str:
        """One legacy trading check; returns what happened (for logs)."""
        chain = self._fleet.clients.chain
        record = await self._fleet.store.get_persona(agent_id)
        plan = trading.plan(record.config) if record is not None else None
        if chain is None or plan is None:
            return "not trading"
        state = await self._fleet.state(agent_id)
        saved = dict(state.state) if state is not None else {}
        now = self._clock()
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        day, _, count = saved.get("trades_day", "").partition(":")
        done_today = int(count) if day == today and count.isdigit() else 0
        last = float(saved["last_trade_time"]) if "last_trade_time" in saved else None
        if not plan.due(self._rng, now=now, last=last, today=done_today):
            return "not due"
        wallet = await trading.setup_wallet(
            chain,
            self._fleet.clients.memory,
            agent_id,
            record.config if record else {},
            applied=saved.get(trading.POLICY_STATE),
        )
        lamports = plan.draw_lamports(self._rng)
        if wallet is None or lamports <= 0:
            return "no wallet" if wallet is None else "nothing to trade"
        slot = str(int(now // self._settings.trade_check_interval_s))
        key = derived("trade", agent_id, slot)
        swap = chain_pb2.Swap(
            input_mint=trading.SOL_MINT,
            output_mint=self._rng.choice(plan.output_mints),
            amount=lamports,
        )
        action = await chain.swap(agent_id, wallet.name, swap, "autonomous trade", key)
        for _ in range(50):
            if action.state != chain_pb2.ACTION_STATE_SUBMITTED:
                break
            await asyncio.sleep(min(self._settings.tick_s, 1.0))
            action = await chain.action(action.name)
        if action.state != chain_pb2.ACTION_STATE_CONFIRMED or not action.receipt:
            return chain_pb2.ActionState.Name(action.state)
        receipt = await chain.receipt(action.receipt)
        memory = self._fleet.clients.memory
        await memory.set_state(agent_id, "last_trade_time", f"{now:.3f}")
        await memory.set_state(agent_id, "trades_day", f"{today}:{done_today + 1}")
        await self._fleet.announce_trade(agent_id, trade_facts(receipt, swap), key)
        return "confirmed"

    # mood

    async def _moods(self, agent_id: str) -> None:
        """Decay the mood toward the persona's baseline, one interval at a time."""
        interval = self._settings.mood_decay_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self._decay(agent_id, interval)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("mood decay of %s skipped: %s", agent_id, err)

    async def _decay(self, agent_id: str, elapsed_s: float) -> None:
        state = await self._fleet.state(agent_id)
        if state is None:
            return
        now = Mood(state.mood.valence, state.mood.arousal, state.mood.dominance)
        base = state.baseline_mood
        target = now.decayed(
            Mood(base.valence, base.arousal, base.dominance),
            elapsed_s,
            self._settings.mood_half_life_s,
        )
        deltas = (
            target.valence - now.valence,
            target.arousal - now.arousal,
            target.dominance - now.dominance,
        )
        if max(abs(d) for d in deltas) > 1e-4:
            await self._fleet.clients.memory.shift_mood(agent_id, *deltas)

    # mentions

    async def _mentions(self, agent_id: str) -> None:
        backoff = 1.0
        while True:
            try:
                state = await self._fleet.state(agent_id)
                cursor = state.last_mention_id if state is not None else ""
                async for mention in self._fleet.clients.social.mentions(agent_id, cursor):
                    backoff = 1.0
                    if agent_id not in self._paused:
                        await self._answer_once(agent_id, mention)
                    await self._fleet.clients.memory.set_last_mention(agent_id, mention.post.id)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning(
                    "mentions of %s interrupted (%s); retrying in %.0fs", agent_id, err, backoff
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    async def _answer_once(self, agent_id: str, mention: social_pb2.Mention) -> None:
        """Handle a mention; one that fails for good (e.g. the llm refuses) is skipped, so it
        cannot hold back every later mention. A dependency outage is raised (retried)."""
        try:
            await self._on_mention(agent_id, mention)
        except ServiceError as err:
            if err.reason.endswith("_UNAVAILABLE"):
                raise
            log.warning("mention %s of %s skipped: %s", mention.post.id, agent_id, err.message)

    async def _on_mention(self, agent_id: str, mention: social_pb2.Mention) -> None:
        post = mention.post
        if post.author_account == f"accounts/{agent_id}":
            return
        who = (post.author_account.rsplit("/", 1)[-1] or post.author_handle).lower() or "unknown"
        await self._fleet.clients.memory.create_memory(
            agent_id,
            memory_pb2.Memory(
                kind=memory_pb2.MEMORY_KIND_INTERACTION,
                content=f"@{post.author_handle} said: {post.text}"[:8_000],
                importance=0.5,
                associations=[who],
                provenance=memory_pb2.Provenance(
                    source=who[:64], channel=memory_pb2.PROVENANCE_CHANNEL_MENTION, trust=0.3
                ),
            ),
            request_id=derived("mention-memory", mention.name),
        )
        await self.react(agent_id, post, who, depth=mention.depth, mention=True, key=mention.name)

    async def react(
        self,
        agent_id: str,
        post: social_pb2.Post,
        who: str,
        *,
        depth: int,
        mention: bool,
        key: str,
        prompted: bool = False,
    ) -> Action:
        """Decide and act on a post: reply, quote or like through social; relationship, mood.

        A mention, or a post an interaction_prompt event pointed the persona at (`prompted`), is
        answered unless a loop breaker applies; any other post goes through the reaction draw.
        """
        _, persona = await self._fleet.persona(agent_id)
        patterns = persona.behavior.interaction_patterns
        if mention or prompted:
            action = Action.REPLY
        else:
            decision = await decide_reaction(
                InteractionPatterns(
                    patterns.reply_probability,
                    patterns.quote_tweet_probability,
                    patterns.like_probability,
                ),
                mention=False,
                rng=self._rng,
                llm=lambda: self._llm_decide(agent_id, persona, post, key),
            )
            action = decision.action
        if action in (Action.REPLY, Action.QUOTE):
            verdict = self.guard.admit(agent_id, who, thread_depth=depth)
            if verdict is not Verdict.OK:
                log.info("%s does not answer %s: %s", agent_id, who, verdict)
                action = Action.IGNORE
            else:
                await self._fleet.create_reply(
                    agent_id,
                    post.id,
                    fallback_text=post.text,
                    request_id=derived(str(action), key),
                    trigger="mention" if mention else "event",
                    quote=action is Action.QUOTE,
                )
        elif action is Action.LIKE:
            await self._fleet.clients.social.like(agent_id, post.name, derived("like", key))
        if action is not Action.IGNORE:
            await self._fleet.clients.memory.record_interaction(
                agent_id,
                who,
                sentiment=0.02,
                familiarity=0.05,
                note=f"{action} on: {post.text[:200]}",
                request_id=derived("rel", key),
            )
            shift = shift_for_interaction(0.2)
            await self._fleet.clients.memory.shift_mood(
                agent_id, shift.valence, shift.arousal, shift.dominance, derived("mood", key)
            )
        return action

    async def _llm_decide(
        self, agent_id: str, persona: Any, post: social_pb2.Post, key: str
    ) -> Action:
        llm_persona = convert.llm_persona(agent_id, persona, self._fleet.provider)
        llm_persona.ClearField("interaction_probabilities")  # the runner applies them
        state = await self._fleet.state(agent_id)
        context = await self._fleet.context(agent_id, state, post.text)
        decision = await self._fleet.clients.llm.decide_reaction(
            llm_persona,
            context,
            llm_pb2.TargetPost(
                post=post.name,
                text=post.text[:4_000],
                author_handle=post.author_handle,
                author_user_id=post.author_user_id,
            ),
            None,
            derived("decide", key),
        )
        return _ACTIONS.get(decision.action, Action.IGNORE)

    # events

    async def _handle_event(self, event: Event) -> None:
        try:
            await self._per_persona(event)
        finally:
            await self._fleet.store.mark_processed(event.id, self._clock())

    async def _on_event(self, agent_id: str, event: Event) -> None:
        key = f"{event.id}/{agent_id}"
        memory = self._fleet.clients.memory
        data = event.data if isinstance(event.data, dict) else {"value": event.data}
        shift = shift_for_event(event.type, data)
        if shift is not None:
            await memory.shift_mood(
                agent_id, shift.valence, shift.arousal, shift.dominance, derived("event-mood", key)
            )
        text = _event_text(event.type, data)
        if event.type != "interaction_prompt":
            await memory.create_memory(
                agent_id,
                memory_pb2.Memory(
                    kind=memory_pb2.MEMORY_KIND_EVENT,
                    content=text[:8_000],
                    importance=0.7 if event.type == "news" else 0.6,
                    metadata={"event_type": event.type[:1_024], "event_id": event.id},
                    provenance=memory_pb2.Provenance(
                        source="operator", channel=memory_pb2.PROVENANCE_CHANNEL_EVENT
                    ),
                ),
                request_id=derived("event-memory", key),
            )
        if not self._settings.run_lives:
            return
        if event.type == "interaction_prompt":
            await self._interaction_prompt(agent_id, data, key)
            return
        post = (
            event.type == "mood_shift"
            and (_number(data.get("arousalShift")) > 0.3 or self._rng.random() < 0.2)
        ) or (event.type == "news" and self._rng.random() < 0.3)
        if post:
            topic = str(data.get("headline") or data.get("topic") or "")[:280]
            with contextlib.suppress(ServiceError):
                await self._fleet.create_post(
                    agent_id, topic=topic, request_id=derived("event-post", key), trigger="event"
                )

    async def _interaction_prompt(self, agent_id: str, data: dict[str, Any], key: str) -> None:
        initiator = str(data.get("initiatorId") or agent_id)
        target = str(data.get("targetId") or "")
        if initiator != agent_id or not target or target == agent_id:
            return
        posts = await self._fleet.clients.social.recent_posts(target, limit=5)
        if posts:
            post = self._rng.choice(posts)
            await self.react(
                agent_id, post, target.lower(), depth=0, mention=False, key=key, prompted=True
            )
            return
        topic = str(data.get("topic") or "")[:280]
        with contextlib.suppress(ServiceError):
            await self._fleet.create_post(
                agent_id, topic=topic, request_id=derived("prompt-post", key), trigger="event"
            )


def _event_text(kind: str, data: dict[str, Any]) -> str:
    if kind == "news":
        return f"News: {data.get('headline') or data.get('description') or data}"
    if kind == "mood_shift":
        return str(data.get("description") or f"Experiencing {data.get('name', 'a mood shift')}")
    return f"Event {kind}: {data}"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def trade_facts(receipt: chain_pb2.Receipt, swap: chain_pb2.Swap) -> llm_pb2.TradeFacts:
    """The facts of a confirmed receipt, the only source of a trade announcement."""
    sold, bought = receipt.amount_in, receipt.amount_out
    return llm_pb2.TradeFacts(
        receipt=receipt.name,
        signature=receipt.signature,
        kind="swap",
        input_symbol=(sold.symbol or "SOL")[:16],
        input_amount=trading.decimal(sold.amount, sold.decimals),
        output_symbol=(bought.symbol or swap.output_mint[:6])[:16],
        output_amount=trading.decimal(bought.amount, bought.decimals),
        price=f"{receipt.realized_price:.6g}",
        confirm_time=receipt.confirm_time,
    )
