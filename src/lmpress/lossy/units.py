"""Text units, protected spans and the layout normalisation of lossy mode.

Bytes are read as UTF-8 with `surrogateescape`, so any byte string works: an invalid
byte becomes a lone surrogate, which is always protected and written back unchanged.

Units follow the GPT-2 pre-token pattern that the byte-level tokenizer also uses (words
with their leading space, digit runs, punctuation runs, whitespace runs), so a unit is
always a whole number of tokens and the reconstruction stays aligned with the original.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import LmpressError

KINDS = ("numbers", "urls", "code", "names")  # protected by default; see `protected_spans`


class ProtectError(LmpressError):
    """A --protect pattern that is not a regular expression, or an unknown kind."""


_UNIT = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?(?:[^\w\s]|_)+"
                   r"|\s+(?!\S)|\s+")
_WORD = re.compile(r" ?[^\W\d_]+")  # a unit that substitutions and case changes may touch
_KIND_PATTERNS = {
    "numbers": [r"\S*\d\S*"],  # any whitespace-free run holding a digit: 3.14, v2, 2026-11
    "urls": [r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)\S+", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
             r"(?<![\w/])(?:~|\.{1,2})?/[\w.~-]+(?:/[\w.~-]*)*"],
    "code": [r"(?ms)^[ \t]*```.*?(?:^[ \t]*```[^\n]*$|\Z)", r"(?m)^(?: {4}|\t).*$",
             r"`[^`\n]+`"],
}
_INVALID = re.compile("[\udc80-\udcff]+")
_PUNCT = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
                        "\u2032": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
                        "\u201f": '"', "\u2033": '"', "\u2010": "-", "\u2011": "-",
                        "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
                        "\u2212": "-", "\u2026": "...", "\u00a0": " ", "\u2009": " ",
                        "\u202f": " ", "\u2007": " "})
_HSPACE = re.compile(r"[ \t\f\v]+")


def to_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def layout(text: str) -> str:
    """The layout freedoms as one normalisation: CRLF and CR -> LF, typographic quotes,
    dashes, ellipsis and odd spaces -> ASCII, runs of spaces and tabs -> one space, no
    spaces before a line break, at most one blank line in a row. Idempotent."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_PUNCT)
    text = _HSPACE.sub(" ", text).replace(" \n", "\n")
    return re.sub(r"\n{3,}", "\n\n", text)


def normalise(text: str, layout_free: bool, case_free: bool) -> str:
    """N, the level's normalisation: the distortion bound is measured after it."""
    if layout_free:
        text = layout(text)
    return text.casefold() if case_free else text


def compile_protect(patterns: tuple[str, ...] | list[str]) -> list[re.Pattern]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p, re.MULTILINE))
        except re.error as e:
            raise ProtectError(f"--protect {p!r} is not a valid regular expression ({e}); "
                               "quote it for the shell and check its brackets") from None
        if out[-1].search("") is not None and out[-1].fullmatch("") is not None:
            raise ProtectError(f"--protect {p!r} matches the empty string; make it match "
                               "at least one character")
    return out


def check_kinds(kinds) -> tuple[str, ...]:
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ProtectError(f"unknown protected kind {bad[0]!r}; choose from "
                           f"{', '.join(KINDS)}")
    return tuple(kinds)


def protected_spans(text: str, kinds=KINDS, extra: list[re.Pattern] = ()) -> list[tuple[int,
                                                                                        int]]:
    """Sorted, merged [start, end) spans of `text` that must come back exactly: the
    default `kinds` (numbers, URLs/e-mails/paths, code blocks and `inline code`, names =
    capitalised words inside a sentence and words with inner capitals), the `extra`
    patterns, and invalid UTF-8 bytes (always)."""
    spans = [m.span() for m in _INVALID.finditer(text)]
    for kind in check_kinds(kinds):
        if kind == "names":
            spans += _names(text)
        else:
            spans += [m.span() for p in _KIND_PATTERNS[kind] for m in re.finditer(p, text)]
    spans += [m.span() for p in extra for m in p.finditer(text)]
    merged: list[list[int]] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _names(text: str) -> list[tuple[int, int]]:
    """Likely names: a word with a capital after its first letter (GitHub, APT), or a
    capitalised word that does not start a sentence, line or heading."""
    out = []
    for m in re.finditer(r"[^\W\d_]+", text):
        w = m.group()
        if any(c.isupper() for c in w[1:]):
            out.append(m.span())
        elif w[0].isupper():
            before = text[:m.start()].rstrip(" \t\"'([")
            if before and before[-1] not in ".!?:;\n" and not before.endswith("\n"):
                out.append(m.span())
    return out


@dataclass
class Unit:
    """One unit of the layout-normalised text."""

    text: str
    protected: bool  # overlaps a protected span: kept exactly
    word: bool  # ` ?letters`: substitutions and case changes may apply


def prepare(text: str, spans: list[tuple[int, int]], layout_free: bool) -> list[Unit]:
    """The units of R0: the layout normalised outside protected spans (each kept
    verbatim), split into units with their protection."""
    pieces, kept, pos = [], [], 0
    for a, b in spans + [(len(text), len(text))]:
        gap = text[pos:a]
        pieces.append(layout(gap) if layout_free else gap)
        if b > a:
            start = sum(map(len, pieces))
            pieces.append(text[a:b])
            kept.append((start, start + b - a))
        pos = b
    r0 = "".join(pieces)
    units, k = [], 0
    for m in _UNIT.finditer(r0):
        a, b = m.span()
        while k < len(kept) and kept[k][1] <= a:
            k += 1
        prot = k < len(kept) and kept[k][0] < b
        units.append(Unit(m.group(), prot, not prot and _WORD.fullmatch(m.group()) is not None))
    if "".join(u.text for u in units) != r0:
        raise AssertionError("internal error: units do not cover the text")
    return units
