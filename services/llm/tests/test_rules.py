"""Post rules as plain functions: X's weighted length, trimming, stripping, near-duplicates."""

from __future__ import annotations

import pytest
from puppet_llm import rules, weighted
from puppet_llm.rules import Limits, Style


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("hello world", 11),
        ("café", 4),  # NFC: one code point
        ("cafe\u0301", 4),  # decomposed é normalises to one
        ("see https://example.com/a/very/long/path?with=query", 4 + 23),
        ("docs at example.com ok", 8 + 23 + 3),
        ("日本語", 6),
        ("한국어", 6),
        (
            "“quotes” — dash…",
            1 + 6 + 1 + 1 + 1 + 1 + 4 + 2,
        ),  # … (U+2026) is outside the light ranges
        ("ok 😀", 3 + 2),
        ("👍🏽", 2),  # skin tone modifier sequence
        ("👨‍👩‍👧‍👦", 2),  # ZWJ family
        ("🇯🇵🇺🇸", 4),  # two flags
        ("1️⃣", 2),  # keycap
        ("❤️", 2),  # VS16 sequence
        ("a\u2013b", 3),  # en dash (8211) is light
    ],
)
def test_weighted_length_follows_twitter_text(text: str, length: int) -> None:
    assert weighted.weighted_length(text) == length


def test_trim_cuts_at_a_word_boundary_and_never_inside_a_url() -> None:
    text = " ".join(["word"] * 60) + " https://example.com/x"
    cut = weighted.trim(text, 280)
    assert cut is not None
    assert weighted.weighted_length(cut) <= 280
    assert cut.endswith("word")
    assert "https" not in cut
    assert weighted.trim("x" * 300) is None
    assert weighted.trim("short", 280) == "short"


def test_cjk_text_is_trimmed_by_weight() -> None:
    text = " ".join(["日本語"] * 60)  # 6 + 1 per word
    cut = weighted.trim(text)
    assert cut is not None
    assert 274 <= weighted.weighted_length(cut) <= 280


def test_clean_removes_model_artefacts() -> None:
    style = Style(display_name="Coby")
    assert rules.clean('"Tweet: hello there"', style) == "hello there"
    assert rules.clean("Coby: hi\nTIMESTAMP: 2026\nUNIQUE_ID: x", style) == "hi"
    assert rules.clean("- Here's my tweet: yo", style) == "yo"
    assert rules.clean("#Tweet: #MirrorOfLove", style) == "#MirrorOfLove"


def test_clean_removes_markup_a_small_model_echoes_but_keeps_hashtags() -> None:
    """Seen from SmolLM2 under `dev.py up`: answers wrapped in tags, prompt headings echoed."""
    style = Style()
    assert rules.clean("<response>\nIt's great to share this.\n</post>", style) == (
        "It's great to share this."
    )
    assert rules.clean("## What's your mood?\nI feel great about tea.", style) == (
        "I feel great about tea."
    )
    assert rules.clean("#tea is life <3 #oolong", style) == "#tea is life <3 #oolong"


def test_a_cut_off_draft_ends_at_its_last_finished_sentence() -> None:
    cut = "I love tea. Oolong at dawn is the best! The potential for this impact is unhindered by"
    assert rules.drop_unfinished(cut) == "I love tea. Oolong at dawn is the best!"
    assert rules.drop_unfinished('She said "go." and then we') == 'She said "go."'
    assert rules.drop_unfinished("no sentence ends here at all") == "no sentence ends here at all"
    assert rules.drop_unfinished("v1.5 is out") == "v1.5 is out"
    kept = "I love tea. Oolong at dawn is the best!"
    assert rules.apply(cut, Style(), Limits(), cut=True).text == kept
    assert rules.apply(cut, Style(), Limits()).text == cut


def test_a_text_cut_to_fit_ends_at_its_last_finished_sentence_that_fits() -> None:
    first = "Tea at dawn is a small rebellion."
    long = f"{first} " + "It feels amazing working alongside someone new " * 8
    assert rules.apply(long, Style(), Limits()).text == first
    no_sentence = "oolong " * 60  # nothing finished to go back to: the word-boundary cut stays
    assert rules.apply(no_sentence, Style(), Limits()).text == ("oolong " * 40).strip()


def test_stranger_handles_and_leaked_ids_are_stripped() -> None:
    limits = Limits(allowed_handles=frozenset({"bob"}), leaked_ids=frozenset({"4242"}))
    checked = rules.apply(
        "hey @Bob and @mallory, user 4242 and 1234567890123456789 but 2024 stays",
        Style(),
        limits,
    )
    assert checked.text == "hey @Bob and, user and but 2024 stays"


def test_output_style_lowercases_strips_hashtags_and_emoji() -> None:
    style = Style(lowercase=True, strip_hashtags=True, strip_emoji=True)
    assert rules.apply("Fake Tweet 1 With Caps #FakeTag 😀", style, Limits()).text == (
        "fake tweet 1 with caps"
    )


def test_banned_phrase_and_empty_text_are_problems() -> None:
    style = Style(banned_phrases=("Ted Talk",))
    assert rules.apply("this is my ted talk", style, Limits()).problem == "banned phrase"
    assert rules.apply('""', Style(), Limits()).problem == "empty"


def test_trade_text_may_state_only_the_facts() -> None:
    limits = Limits(allowed_numbers=rules.normal_numbers(["0.250", "1,234.5", "SOL"]))
    assert rules.apply("sold 0.25 sol for 1234.5 bonk", Style(), limits).problem == ""
    assert "figure" in rules.apply("sold 0.25 sol, up 300%", Style(), limits).problem
    assert "advice" in rules.apply("buy now 0.25", Style(), limits).problem


def test_near_duplicates_by_shingles() -> None:
    recent = ["the coffee here is a crime against beans"]
    assert rules.near_duplicate("The coffee here is a crime against beans!", recent, 0.6)
    assert rules.near_duplicate("the coffee here is a crime against all beans", recent, 0.6)
    assert not rules.near_duplicate("tea is a quiet kind of rebellion", recent, 0.6)
    assert rules.near_duplicate("gm", ["GM"], 0.6)
