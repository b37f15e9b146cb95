"""Persona files: pydantic models of the legacy JSON as shipped, and the directory loader."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

log = logging.getLogger(__name__)

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
SECRET_PATHS = (("twitter_credentials",), ("solana_integration", "private_key"))
"""Keys removed from the stored copy of a persona file (handed to social/chain instead)."""


class _Section(BaseModel):
    """A part of the file: unknown keys are kept (legacy files carry many unused ones)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Personality(_Section):
    traits: list[str] = Field(default_factory=list, max_length=100)
    values: list[str] = Field(default_factory=list, max_length=100)
    speaking_style: str = Field(default="", max_length=2_000)
    interests: list[str] = Field(default_factory=list, max_length=100)


class Formatting(_Section):
    uses_hashtags: bool = False
    hashtag_style: str = ""
    uses_emojis: bool = False
    emoji_frequency: str = ""
    capitalization: str = ""
    sentence_length: str = ""


class StyleGuide(_Section):
    voice: str = ""
    tone: str = ""
    formatting: Formatting = Field(default_factory=Formatting)
    topics_to_avoid: list[str] = Field(default_factory=list, max_length=100)


class PostFrequency(_Section):
    min_hours_between_posts: float = Field(default=3.0, gt=0, le=24 * 365)
    max_hours_between_posts: float = Field(default=12.0, gt=0, le=24 * 365)
    peak_posting_hours: list[int] = Field(default_factory=list, max_length=24)

    @model_validator(mode="after")
    def _ordered(self) -> PostFrequency:
        if self.max_hours_between_posts < self.min_hours_between_posts:
            raise ValueError("max_hours_between_posts must be >= min_hours_between_posts")
        if any(not 0 <= hour <= 23 for hour in self.peak_posting_hours):
            raise ValueError("peak_posting_hours must be hours 0-23")
        return self


class InteractionPatterns(_Section):
    reply_probability: float = Field(default=0.5, ge=0, le=1)
    quote_tweet_probability: float = Field(default=0.3, ge=0, le=1)
    like_probability: float = Field(default=0.7, ge=0, le=1)


class ContentPreferences(_Section):
    max_thread_length: int = Field(default=3, ge=1, le=25)
    typical_post_length: int = Field(default=240, ge=1, le=100_000)
    link_sharing_frequency: float = Field(default=0.2, ge=0, le=1)


class Behavior(_Section):
    post_frequency: PostFrequency = Field(default_factory=PostFrequency)
    interaction_patterns: InteractionPatterns = Field(default_factory=InteractionPatterns)
    content_preferences: ContentPreferences = Field(default_factory=ContentPreferences)


class SeedEvent(_Section):
    content: str = Field(min_length=1, max_length=8_000)
    importance: float = Field(default=0.5, ge=0, le=1)


class SeedRelationship(_Section):
    sentiment: float = Field(default=0.0, ge=-1, le=1)
    familiarity: float = Field(default=0.0, ge=0, le=1)
    trust: float = Field(default=0.0, ge=0, le=1)
    notes: list[str] = Field(default_factory=list, max_length=20)


class InitialMemory(_Section):
    """Seed memories. The snake_case keys of every shipped file are used (legacy ignored them:
    it read camelCase); the camelCase spellings are accepted too."""

    core_memories: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("core_memories", "coreMemories")
    )
    recent_events: list[str | SeedEvent] = Field(
        default_factory=list, validation_alias=AliasChoices("recent_events", "recentEvents")
    )
    relationships: dict[str, SeedRelationship] = Field(default_factory=dict)


class OutputRules(_Section):
    """Not in legacy files: what legacy special-cased for the id coby-agent, as data."""

    lowercase: bool = False
    strip_hashtags: bool = False
    strip_emoji: bool = False
    banned_phrases: list[str] = Field(default_factory=list, max_length=100)
    regenerate_prefixes: list[str] = Field(default_factory=list, max_length=20)
    regenerate_probability: float = Field(default=0.0, ge=0, le=1)
    max_regenerations: int = Field(default=0, ge=0, le=5)
    max_tokens: int = Field(default=0, ge=0, le=4_096)
    temperature: float | None = Field(default=None, ge=0, le=2)
    prompt_as_user_message: bool = False


class PersonaFile(_Section):
    """One persona file (config/agents/<id>.json or the body of POST /api/agents)."""

    id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    name: str = Field(default="", max_length=128)
    description: str = Field(default="", max_length=2_000)
    llm_provider: str = Field(default="", max_length=32)
    custom_system_prompt: str = Field(default="", max_length=20_000)
    rotating_system_prompts: list[str] = Field(default_factory=list, max_length=20)
    personality: Personality = Field(default_factory=Personality)
    style_guide: StyleGuide = Field(default_factory=StyleGuide)
    behavior: Behavior = Field(default_factory=Behavior)
    initial_memory: InitialMemory | None = None
    output_rules: OutputRules | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def has_custom_prompt(self) -> bool:
        return bool(self.custom_system_prompt.strip())


class PersonaInvalid(ValueError):
    """A persona file failed validation; `violations` are (snake_case field path, message)."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{path or '(file)'}: {msg}" for path, msg in violations))


def parse(raw: Any) -> PersonaFile:
    """Validate a decoded persona file.

    Raises:
        PersonaInvalid: with one violation per bad field.
    """
    if not isinstance(raw, dict):
        raise PersonaInvalid([("", "a persona file is a JSON object")])
    bad_numbers = [path for path, value in _walk(raw) if not math.isfinite(value)]
    if bad_numbers:
        raise PersonaInvalid([(path, "must be a finite number") for path in bad_numbers])
    try:
        return PersonaFile.model_validate(raw)
    except ValidationError as err:
        raise PersonaInvalid(
            [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in err.errors()]
        ) from None


def _walk(value: Any, path: str = "") -> list[tuple[str, float]]:
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _walk(v, f"{path}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _walk(v, f"{path}.{i}")]
    if isinstance(value, float):
        return [(path, value)]
    return []


def stored_copy(raw: dict[str, Any]) -> dict[str, Any]:
    """The persona file without its secrets (the copy that is stored and may be shown)."""
    copy = json.loads(json.dumps(raw))
    for path in SECRET_PATHS:
        parent = copy
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return dict(copy)


@dataclass(frozen=True)
class LoadedPersona:
    """A persona file read from disk: where it came from, its raw JSON and its parsed form."""

    path: Path
    raw: dict[str, Any]
    persona: PersonaFile


@dataclass(frozen=True)
class LoadProblem:
    """A persona file that was skipped, and why (file and field path in the message)."""

    path: Path
    message: str


def load_dir(directory: Path) -> tuple[list[LoadedPersona], list[LoadProblem]]:
    """Load every *.json in directory, alphabetically; bad files are reported and skipped."""
    loaded: list[LoadedPersona] = []
    problems: list[LoadProblem] = []
    seen: set[str] = set()
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            persona = parse(raw)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problems.append(LoadProblem(path, f"{path}: not readable JSON: {err}"))
            continue
        except PersonaInvalid as err:
            problems.append(LoadProblem(path, f"{path}: {err}"))
            continue
        if persona.id in seen:
            problems.append(LoadProblem(path, f"{path}: id: duplicate id {persona.id!r}"))
            continue
        seen.add(persona.id)
        loaded.append(LoadedPersona(path, raw, persona))
    for problem in problems:
        log.error("persona file skipped: %s", problem.message)
    return loaded, problems
