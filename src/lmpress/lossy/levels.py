"""Quality levels of lossy mode: what each level may change, and the bound it keeps.

Every bound is checkable on the original O and the reconstruction R alone
(`distortion.check_bound`): protected spans of O appear unchanged and in order in R, and

    levenshtein(N(O), N(R)) <= edit_budget * len(N(O))

where N is the level's normalisation (line endings, whitespace runs, typographic
punctuation and letter case when the level grants those freedoms, else identity).

Any quality 0..100 maps onto the ladder: the level with the largest nominal quality not
above it (95 -> 90, 42 -> 30, 0 -> 10); 100 is lossless.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LmpressError


class QualityError(LmpressError):
    """A quality outside 0..100."""


@dataclass(frozen=True)
class Level:
    """One rung of the ladder."""

    quality: int  # nominal quality of the rung (100 = lossless)
    name: str  # a word for reports
    layout: bool  # free: CRLF/CR -> LF, whitespace runs -> one space, trailing spaces,
    #               3+ line breaks -> 2, typographic quotes/dashes/ellipsis -> ASCII
    case: bool  # free: a word's letter case (lower / Capitalised / UPPER), model's choice
    edit_budget: float  # substitutions: at most this fraction of len(N(O)) characters
    bits_per_char: float  # a substitution must save >= this many bits per edited character
    min_gain_bits: float  # ... and at least this many bits in all

    @property
    def lossless(self) -> bool:
        return self.quality == 100


LADDER: tuple[Level, ...] = (  # tuned on English prose (docs/BENCHMARKS.md, issue 7)
    Level(100, "lossless", False, False, 0.0, 0.0, 0.0),
    Level(90, "mild", True, True, 0.05, 3.0, 4.0),
    Level(70, "light", True, True, 0.12, 2.0, 3.0),
    Level(50, "medium", True, True, 0.25, 1.5, 2.0),
    Level(30, "strong", True, True, 0.55, 0.8, 1.5),
    Level(10, "extreme", True, True, 0.85, 0.5, 1.0),
)


def level_for(quality: int) -> Level:
    """The ladder's level for a quality 0..100 (largest nominal quality <= `quality`)."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
        raise QualityError(f"quality must be a whole number from 0 to 100 (100 = lossless), "
                           f"not {quality!r}")
    return next((lv for lv in LADDER if lv.quality <= quality), LADDER[-1])
