"""Persona files: the shipped legacy files load unchanged; broken variants are reported, skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from puppet_agent.personas import PersonaInvalid, load_dir, parse, stored_copy
from puppet_agent.testing import PERSONAS_DIR, persona_dict

LEGACY = ("claudia-agent", "coby-agent", "test-grok-agent")


@pytest.mark.parametrize("name", LEGACY)
def test_shipped_legacy_files_load_with_their_snake_case_initial_memory(name: str) -> None:
    raw = persona_dict(name)
    persona = parse(raw)
    assert persona.id == name
    assert persona.initial_memory is not None
    assert persona.initial_memory.core_memories == raw["initial_memory"]["core_memories"]
    assert len(persona.initial_memory.core_memories) > 0


def test_coby_values_are_read_as_shipped() -> None:
    persona = parse(persona_dict("coby-agent"))
    assert persona.display_name == "Coby"
    assert persona.behavior.post_frequency.min_hours_between_posts == 24
    assert persona.behavior.post_frequency.peak_posting_hours == [3, 4, 12, 15, 20, 22, 23]
    assert persona.behavior.interaction_patterns.reply_probability == 1.0
    assert len(persona.rotating_system_prompts) == 4
    assert persona.has_custom_prompt
    assert persona.style_guide.formatting.model_extra == {"avoid_hyphens": True}


def test_defaults_apply_and_explicit_zero_is_kept() -> None:
    persona = parse({"id": "z", "behavior": {"interaction_patterns": {"reply_probability": 0}}})
    assert persona.display_name == "z"
    assert persona.behavior.interaction_patterns.reply_probability == 0
    assert persona.behavior.interaction_patterns.like_probability == 0.7
    assert persona.behavior.post_frequency.max_hours_between_posts == 12


def test_camel_case_initial_memory_is_accepted_too() -> None:
    persona = parse({"id": "a", "initial_memory": {"coreMemories": ["x"], "recentEvents": ["y"]}})
    assert persona.initial_memory is not None
    assert persona.initial_memory.core_memories == ["x"]
    assert persona.initial_memory.recent_events == ["y"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"id": None}, "id"),
        ({"id": "Has Spaces"}, "id"),
        (
            {"behavior": {"post_frequency": {"min_hours_between_posts": "soon"}}},
            "behavior.post_frequency.min_hours_between_posts",
        ),
        (
            {"behavior": {"post_frequency": {"min_hours_between_posts": 0}}},
            "behavior.post_frequency.min_hours_between_posts",
        ),
        (
            {"behavior": {"interaction_patterns": {"like_probability": 2}}},
            "behavior.interaction_patterns.like_probability",
        ),
        ({"personality": {"traits": "feral"}}, "personality.traits"),
        ({"initial_memory": {"core_memories": [1]}}, "initial_memory.core_memories.0"),
    ],
)
def test_broken_fields_are_named_by_their_snake_case_path(
    patch: dict[str, Any], field: str
) -> None:
    raw = {"id": "ok"}
    for key, value in patch.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    with pytest.raises(PersonaInvalid) as caught:
        parse(raw)
    assert field in [path for path, _ in caught.value.violations], caught.value.violations


def test_non_object_file_is_invalid() -> None:
    with pytest.raises(PersonaInvalid):
        parse([{"id": "a"}])


def test_max_before_min_is_invalid() -> None:
    raw = {
        "id": "a",
        "behavior": {
            "post_frequency": {"min_hours_between_posts": 5, "max_hours_between_posts": 1}
        },
    }
    with pytest.raises(PersonaInvalid, match="max_hours_between_posts"):
        parse(raw)


def test_loader_reports_bad_files_and_keeps_the_good_ones(tmp_path: Path) -> None:
    for name in LEGACY:
        shutil.copy(PERSONAS_DIR / f"{name}.json", tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "bad-field.json").write_text(
        json.dumps({"id": "bad", "behavior": {"content_preferences": {"max_thread_length": 0}}})
    )
    dup = persona_dict("coby-agent")
    (tmp_path / "zz-dup.json").write_text(json.dumps(dup))
    loaded, problems = load_dir(tmp_path)
    assert [p.persona.id for p in loaded] == list(LEGACY)
    messages = sorted(p.message for p in problems)
    assert len(messages) == 3
    assert any(
        "bad-field.json" in m and "behavior.content_preferences.max_thread_length" in m
        for m in messages
    )
    assert any("broken.json" in m and "not readable JSON" in m for m in messages)
    assert any("zz-dup.json" in m and "duplicate" in m for m in messages)


def test_stored_copy_drops_secrets_and_keeps_unknown_keys() -> None:
    raw = persona_dict("coby-agent")
    raw["solana_integration"]["private_key"] = "secret"
    raw["twitter_credentials"]["apiKey"] = "secret"
    copy = stored_copy(raw)
    assert "twitter_credentials" not in copy
    assert "private_key" not in copy["solana_integration"]
    assert "secret" not in json.dumps(copy)
    assert copy["agent_kit_integration"] == raw["agent_kit_integration"]
    assert raw["solana_integration"]["private_key"] == "secret"


def test_sample_personas_know_each_other() -> None:
    tea, coffee = parse(persona_dict("tea-critic")), parse(persona_dict("coffee-snob"))
    assert tea.initial_memory is not None
    assert coffee.initial_memory is not None
    assert "coffee-snob" in tea.initial_memory.relationships
    assert "tea-critic" in coffee.initial_memory.relationships
