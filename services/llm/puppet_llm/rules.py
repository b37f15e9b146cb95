"""Post rules: clean a model's draft into a post, or say what is wrong with it."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from puppet_llm import weighted

_QUOTES = ('"', "'", "\u201c", "\u201d", "\u2018", "\u2019")
_LEAD = re.compile(
    r"^\s*(?:[-*#]\s*)?(?:example|template|response|tweet|post|reply|here'?s my tweet|my tweet|"
    r"how about)\s*:\s*",
    re.IGNORECASE,
)
_ECHO = re.compile(r"^\s*(?:TIMESTAMP|UNIQUE_ID|Current time)\s*:.*$", re.IGNORECASE | re.MULTILINE)
# Markup a small model wraps its answer in or echoes from the prompt's layout: bare tags such as
# <response> or </post>, and Markdown heading lines ("## Your current mood"). A hashtag has no
# space after its '#', so it is never a heading.
_TAG = re.compile(r"</?[A-Za-z][\w-]*\s*/?>")
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t].*$", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?\u2026][\"')\]\u201d\u2019]*(?=\s|$)")
_HANDLE = re.compile(r"(?<![\w@])@(\w{1,64})\b\s?")
_HASHTAG = re.compile(r"(?<![\w&])#\w+")
_SNOWFLAKE = re.compile(r"(?<![\d.,])\d{15,20}(?![\d.,])")
_SPACES = re.compile(r"[ \t]+")
_BLANKS = re.compile(r"\n{3,}")
_BEFORE_PUNCT = re.compile(r" +([,.;:!?])")
_WORD = re.compile(r"[\w']+")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_ADVICE = re.compile(
    r"\b(?:financial advice|not financial advice|nfa|dyor|you should (?:buy|sell)|buy now|"
    r"go buy|guaranteed|can'?t lose|risk[- ]free|to the moon)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Style:
    """What a persona's output rules do to every text."""

    lowercase: bool = False
    strip_hashtags: bool = False
    strip_emoji: bool = False
    banned_phrases: tuple[str, ...] = ()
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Limits:
    """What this particular text may contain."""

    max_weight: int = weighted.MAX_WEIGHTED
    allowed_handles: frozenset[str] = frozenset()
    leaked_ids: frozenset[str] = frozenset()
    allowed_numbers: frozenset[str] | None = None
    """For trade announcements: the only figures the text may state."""


@dataclass(frozen=True, slots=True)
class Checked:
    """A cleaned text, or the problem that makes it unusable."""

    text: str
    problem: str = ""


def clean(draft: str, style: Style) -> str:
    """Undo the usual model artefacts (quotes, 'Tweet:' prefixes, echoed prompt lines, markup)."""
    text = _TAG.sub("", _HEADING.sub("", _ECHO.sub("", draft))).strip()
    name = style.display_name.strip()
    for _ in range(2):
        text = _LEAD.sub("", text)
        if name and text.lower().startswith(name.lower() + ":"):
            text = text[len(name) + 1 :]
        text = text.strip()
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1].strip()
    return text


def drop_unfinished(text: str) -> str:
    """A text cut off (the model hit max_tokens, or it was cut to fit), up to its last finished
    sentence.

    With no finished sentence the fragment is all there is, and it is kept.
    """
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()] if ends else text


def _strip_handles(text: str, allowed: frozenset[str]) -> str:
    def keep(m: re.Match[str]) -> str:
        return m.group(0) if m.group(1).lower() in allowed else ""

    return _HANDLE.sub(keep, text)


def _strip_ids(text: str, leaked: frozenset[str]) -> str:
    for user_id in sorted(leaked, key=len, reverse=True):
        text = re.sub(rf"(?<!\d){re.escape(user_id)}(?!\d)", "", text)
    return _SNOWFLAKE.sub("", text)


def _tidy(text: str) -> str:
    lines = [_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", line)).strip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _normal_number(token: str) -> str:
    token = token.replace(",", "")
    return token.rstrip("0").rstrip(".") if "." in token else token


def normal_numbers(values: Collection[str]) -> frozenset[str]:
    """The figures in values, normalised (no thousands separators or trailing zeros)."""
    return frozenset(_normal_number(n) for v in values for n in _NUMBER.findall(v))


def apply(draft: str, style: Style, limits: Limits, *, cut: bool = False) -> Checked:
    """Clean draft and enforce the rules; Checked.problem names the first broken rule.

    cut: the model stopped at its token limit, so the draft's last sentence may be unfinished.
    """
    text = clean(draft, style)
    if cut:
        text = drop_unfinished(text)
    text = _strip_ids(_strip_handles(text, limits.allowed_handles), limits.leaked_ids)
    if style.strip_hashtags:
        text = _HASHTAG.sub("", text)
    if style.strip_emoji:
        text = weighted.strip_emoji(text)
    if style.lowercase:
        text = text.lower()
    text = _tidy(text)
    if not text:
        return Checked("", "empty")
    lowered = text.lower()
    for phrase in style.banned_phrases:
        if phrase.lower() in lowered:
            return Checked(text, "banned phrase")
    if limits.allowed_numbers is not None:
        if _ADVICE.search(text):
            return Checked(text, "reads as financial advice")
        if normal_numbers([text]) - limits.allowed_numbers:
            return Checked(text, "states a figure not in the trade facts")
    fitted = weighted.trim(text, limits.max_weight)
    if fitted is None:
        return Checked(text, "too long")
    if fitted != text:  # cut to fit: end at the last finished sentence that fits, if any
        fitted = drop_unfinished(fitted)
    return Checked(fitted)


def starts_with(text: str, prefixes: Sequence[str]) -> bool:
    """Whether text starts with one of prefixes, ignoring case."""
    lowered = text.lower()
    return any(lowered.startswith(p.lower()) for p in prefixes)


def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(weighted.URL.sub(" ", text).lower())
    if len(words) < 3:
        return frozenset((w,) for w in words)
    return frozenset(tuple(words[i : i + 2]) for i in range(len(words) - 1))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the word-bigram shingles of a and b (unigrams for short texts)."""
    sa, sb = _shingles(a), _shingles(b)
    if not sa or not sb:
        return 1.0 if a.strip().lower() == b.strip().lower() else 0.0
    return len(sa & sb) / len(sa | sb)


def near_duplicate(text: str, recent: Sequence[str], threshold: float) -> bool:
    """Whether text repeats one of the recent posts."""
    return any(similarity(text, post) >= threshold for post in recent)
