"""X's weighted length (twitter-text v3 rules): what counts as 280 characters on X."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_WEIGHTED = 280
URL_WEIGHT = 23
_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_TLDS = (
    "com|org|net|io|ai|co|dev|app|xyz|gg|me|info|biz|edu|gov|fun|so|fm|tv|ly|to|sh|us|uk|de|fr|jp"
)
URL = re.compile(
    rf"(?:https?://[^\s<>\"]+|www\.[^\s<>\"]+|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{_TLDS})"
    r"\b(?:/[^\s<>\"]*)?)",
    re.IGNORECASE,
)
_ZWJ, _VS16, _KEYCAP = 0x200D, 0xFE0F, 0x20E3


def _light(cp: int) -> bool:
    return any(low <= cp <= high for low, high in _LIGHT)


def _pictographic(cp: int) -> bool:
    return (
        0x1F000 <= cp <= 0x1FAFF
        or 0x2600 <= cp <= 0x27BF
        or 0x2300 <= cp <= 0x23FF
        or 0x2B00 <= cp <= 0x2BFF
        or cp in (0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D, 0x3297, 0x3299)
        or 0x2194 <= cp <= 0x21AA
        or 0x25AA <= cp <= 0x25FE
    )


def _modifier(cp: int) -> bool:
    return cp in (_VS16, 0xFE0E, _KEYCAP) or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F


def _regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _emoji_end(text: str, i: int) -> int:
    """End index of the emoji sequence starting at i, or i when none starts there."""
    cp = ord(text[i])
    n = len(text)
    if _regional(cp):
        return i + 2 if i + 1 < n and _regional(ord(text[i + 1])) else i + 1
    if text[i] in "0123456789#*":
        j = i + 1
        if j < n and ord(text[j]) == _VS16:
            j += 1
        return j + 1 if j < n and ord(text[j]) == _KEYCAP else i
    if not _pictographic(cp) and not (
        cp in (0xA9, 0xAE) and i + 1 < n and ord(text[i + 1]) == _VS16
    ):
        return i
    j = i + 1
    while j < n:
        c = ord(text[j])
        if _modifier(c):
            j += 1
        elif c == _ZWJ and j + 1 < n and _pictographic(ord(text[j + 1])):
            j += 2
        else:
            break
    return j


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of text that is counted (and cut) as a whole."""

    text: str
    weight: int
    kind: str  # "char", "url", "emoji", "space"


def segments(text: str) -> list[Segment]:
    """Split NFC-normalised text into URLs, emoji sequences and single characters."""
    text = unicodedata.normalize("NFC", text)
    spans = {m.start(): m.end() for m in URL.finditer(text)}
    out: list[Segment] = []
    i, n = 0, len(text)
    while i < n:
        if i in spans:
            out.append(Segment(text[i : spans[i]], URL_WEIGHT, "url"))
            i = spans[i]
            continue
        end = _emoji_end(text, i)
        if end > i:
            out.append(Segment(text[i:end], 2, "emoji"))
            i = end
            continue
        ch = text[i]
        kind = "space" if ch.isspace() else "char"
        out.append(Segment(ch, 1 if _light(ord(ch)) else 2, kind))
        i += 1
    return out


def weighted_length(text: str) -> int:
    """The length X counts for text."""
    return sum(s.weight for s in segments(text))


def trim(text: str, limit: int = MAX_WEIGHTED) -> str | None:
    """text cut at the last word boundary that fits in limit; None when no boundary fits.

    URLs and emoji sequences are never split.
    """
    parts = segments(text)
    if sum(s.weight for s in parts) <= limit:
        return text
    total, last_space = 0, -1
    for index, part in enumerate(parts):
        if total + part.weight > limit:
            break
        if part.kind == "space":
            last_space = index
        total += part.weight
    if last_space <= 0:
        return None
    cut = "".join(s.text for s in parts[:last_space]).rstrip(" ,;:-\u2013\u2014\n")
    return cut or None


def strip_emoji(text: str) -> str:
    """text without emoji sequences (flags, keycaps, ZWJ sequences, pictographs)."""
    return "".join(s.text for s in segments(text) if s.kind != "emoji")
