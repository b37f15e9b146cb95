"""Between persona files, other services' messages and AgentService's legacy-shaped messages."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from puppet.agent.v1 import agent_pb2 as a
from puppet.llm.v1 import llm_pb2
from puppet.memory.v1 import memory_pb2, persona_pb2, relationship_pb2

from puppet_agent.personas import PersonaFile
from puppet_agent.store import EventRecord, PostRecord

PROVIDERS = {
    "openai": llm_pb2.PROVIDER_OPENAI,
    "grok": llm_pb2.PROVIDER_GROK,
    "local": llm_pb2.PROVIDER_LOCAL,
    "fake": llm_pb2.PROVIDER_FAKE,
}
KIND_NAMES = {
    memory_pb2.MEMORY_KIND_CORE: "core",
    memory_pb2.MEMORY_KIND_EVENT: "event",
    memory_pb2.MEMORY_KIND_INTERACTION: "interaction",
    memory_pb2.MEMORY_KIND_POST: "post",
    memory_pb2.MEMORY_KIND_GENERAL: "general",
    memory_pb2.MEMORY_KIND_LONG_TERM: "long_term",
}
KINDS = {name: kind for kind, name in KIND_NAMES.items()}
DELIVERY = {
    "queued": a.POST_DELIVERY_QUEUED,
    "scheduled": a.POST_DELIVERY_SCHEDULED,
    "needs_review": a.POST_DELIVERY_NEEDS_REVIEW,
    "sent": a.POST_DELIVERY_SENT,
    "rejected": a.POST_DELIVERY_REJECTED,
    "failed": a.POST_DELIVERY_FAILED,
}
DELIVERY_NAMES = {value: name for name, value in DELIVERY.items()}
POST_KINDS = {
    "post": a.POST_KIND_POST,
    "reply": a.POST_KIND_REPLY,
    "quote": a.POST_KIND_QUOTE,
    "thread": a.POST_KIND_THREAD,
    "trade": a.POST_KIND_TRADE_ANNOUNCEMENT,
}


def ts(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp with millisecond precision (prints like the legacy ISO strings)."""
    if seconds is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMilliseconds(round(seconds * 1000))
    return stamp


def seconds(stamp: timestamp_pb2.Timestamp) -> float | None:
    """Epoch seconds of a set Timestamp, None for the zero value."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.seconds + stamp.nanos / 1e9


def iso(seconds_: float) -> str:
    text = datetime.fromtimestamp(seconds_, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def number_or_null(value: float | None) -> struct_pb2.Value:
    return (
        struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
        if value is None
        else (struct_pb2.Value(number_value=value))
    )


def string_or_null(value: str | None) -> struct_pb2.Value:
    return (
        struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
        if value is None
        else (struct_pb2.Value(string_value=value))
    )


def to_value(data: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    json_format.ParseDict(data, value)
    return value


def to_struct(data: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


def llm_persona(agent_id: str, persona: PersonaFile, provider: str) -> llm_pb2.Persona:
    """What the llm needs to speak as the persona. provider: the AgentSettings.llm_provider."""
    chosen = persona.llm_provider.lower() if provider == "persona" else provider
    patterns = persona.behavior.interaction_patterns
    formatting = persona.style_guide.formatting
    rules = [f"{key}: {value}" for key, value in formatting.model_dump().items() if value != ""]
    out = llm_pb2.Persona(
        agent=f"agents/{agent_id}",
        display_name=persona.display_name[:128],
        description=persona.description,
        provider=PROVIDERS.get(chosen, llm_pb2.PROVIDER_UNSPECIFIED),
        custom_system_prompt=persona.custom_system_prompt,
        rotating_system_prompts=persona.rotating_system_prompts,
        traits=persona.personality.traits,
        values=persona.personality.values,
        speaking_style=persona.personality.speaking_style,
        interests=persona.personality.interests,
        voice=persona.style_guide.voice,
        tone=persona.style_guide.tone,
        formatting_rules=rules,
        topics_to_avoid=persona.style_guide.topics_to_avoid,
        interaction_probabilities=llm_pb2.InteractionProbabilities(
            reply=patterns.reply_probability,
            quote=patterns.quote_tweet_probability,
            like=patterns.like_probability,
        ),
    )
    if persona.output_rules is not None:
        values = persona.output_rules.model_dump(exclude_none=True)
        values = {
            k: v for k, v in values.items() if k in llm_pb2.OutputRules.DESCRIPTOR.fields_by_name
        }
        out.output_rules.CopyFrom(llm_pb2.OutputRules(**values))
    return out


def mood(persona: persona_pb2.Persona | None) -> a.Mood:
    if persona is None:
        return a.Mood(valence=0.0, arousal=0.0, dominance=0.5)
    m = persona.mood
    return a.Mood(
        valence=round(m.valence, 6), arousal=round(m.arousal, 6), dominance=round(m.dominance, 6)
    )


def last_post_ms(persona: persona_pb2.Persona | None) -> float | None:
    if persona is None or not persona.HasField("last_post_time"):
        return None
    return float(persona.last_post_time.ToMilliseconds())


def agent_detail(agent_id: str, persona: PersonaFile, state: persona_pb2.Persona | None) -> Any:
    """The fields of GetAgentResponse, as keyword arguments."""
    p, s, b = persona.personality, persona.style_guide, persona.behavior
    f = s.formatting
    return {
        "id": agent_id,
        "name": persona.display_name,
        "description": persona.description,
        "personality": a.Personality(
            traits=p.traits,
            values=p.values,
            speaking_style=p.speaking_style,
            interests=p.interests,
        ),
        "style_guide": a.StyleGuide(
            voice=s.voice,
            tone=s.tone,
            formatting=a.Formatting(
                uses_hashtags=f.uses_hashtags,
                hashtag_style=f.hashtag_style,
                uses_emojis=f.uses_emojis,
                emoji_frequency=f.emoji_frequency,
                capitalization=f.capitalization,
                sentence_length=f.sentence_length,
            ),
            topics_to_avoid=s.topics_to_avoid,
        ),
        "behavior": a.Behavior(
            post_frequency=a.PostFrequency(
                min_hours_between_posts=b.post_frequency.min_hours_between_posts,
                max_hours_between_posts=b.post_frequency.max_hours_between_posts,
                peak_posting_hours=b.post_frequency.peak_posting_hours,
            ),
            interaction_patterns=a.InteractionPatterns(
                reply_probability=b.interaction_patterns.reply_probability,
                quote_tweet_probability=b.interaction_patterns.quote_tweet_probability,
                like_probability=b.interaction_patterns.like_probability,
            ),
            content_preferences=a.ContentPreferences(
                max_thread_length=b.content_preferences.max_thread_length,
                typical_post_length=b.content_preferences.typical_post_length,
                link_sharing_frequency=b.content_preferences.link_sharing_frequency,
            ),
        ),
        "current_mood": mood(state),
        "last_post_time": number_or_null(last_post_ms(state)),
    }


def summary(
    agent_id: str, persona: PersonaFile, state: persona_pb2.Persona | None
) -> a.AgentSummary:
    return a.AgentSummary(
        id=agent_id,
        name=persona.display_name,
        description=persona.description,
        last_post_time=number_or_null(last_post_ms(state)),
        mood=mood(state),
    )


def memory_item(memory: memory_pb2.Memory) -> a.MemoryItem:
    metadata = dict(memory.metadata)
    kind = metadata.get("type") or KIND_NAMES.get(memory.kind, "general")
    return a.MemoryItem(
        id=memory.name.rsplit("/", 1)[-1],
        content=memory.content,
        type=kind,
        timestamp=memory.create_time,
        importance=round(memory.importance, 6) if memory.HasField("importance") else 0.5,
        emotional_valence=round(memory.emotional_valence, 6),
        associations=memory.associations,
        metadata=to_struct(metadata),
    )


def relationship(rel: relationship_pb2.Relationship) -> tuple[str, a.Relationship]:
    counterparty = rel.name.rsplit("/", 1)[-1]
    when = seconds(rel.last_interaction_time)
    return counterparty, a.Relationship(
        target_agent_id=counterparty,
        sentiment=round(rel.sentiment, 6),
        familiarity=round(rel.familiarity, 6),
        trust=round(rel.trust, 6),
        last_interaction_date=string_or_null(None if when is None else iso(when)),
        recent_interactions=list(rel.notes)[:10],
        notes=rel.notes,
    )


def tweet_entry(post: PostRecord, rotating: int) -> a.TweetHistoryEntry:
    meta: dict[str, Any] = (
        {"hasRotatingPrompts": True, "numRotatingPrompts": rotating} if rotating else {}
    )
    network_id = post.social_post.rsplit("/", 1)[-1] if post.social_post else None
    return a.TweetHistoryEntry(
        content=post.text,
        timestamp=float(round(post.create_time * 1000)),
        id=string_or_null(network_id),
        is_reply=post.kind == "reply",
        metadata=to_struct(meta),
    )


def event(record: EventRecord) -> a.Event:
    return a.Event(
        id=record.id,
        type=record.type,
        data=to_value(record.data),
        timestamp=ts(record.create_time),
        processed_at=ts(record.processed_at or record.create_time),
        target_agent_ids=record.targets,
    )


def agent_post(post: PostRecord) -> a.AgentPost:
    return a.AgentPost(
        name=f"agents/{post.agent}/posts/{post.id}",
        kind=POST_KINDS.get(post.kind, a.POST_KIND_POST),
        text=post.text,
        target_post=post.target_post,
        social_post=post.social_post,
        outbox_item=post.outbox_item,
        delivery=DELIVERY.get(post.delivery, a.POST_DELIVERY_QUEUED),
        scheduled_time=ts(post.scheduled_time),
        create_time=ts(post.create_time),
        trigger=post.trigger,
    )


def json_value(message: Message) -> dict[str, Any]:
    """A message as proto3 JSON (every field, camelCase)."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def json_array(messages: Iterable[Message]) -> bytes:
    """Messages printed as proto3 JSON (every field, camelCase), as one JSON array."""
    items = [json_value(m) for m in messages]
    return json.dumps(items, separators=(",", ":")).encode()
