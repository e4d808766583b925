"""`lmpress.lossy.compress`: choose a reconstruction R of the input within a quality
level's bound, then compress R with the ordinary lossless Compressor. Decoding the
archive with the normal decoder gives R byte for byte; quality 100 gives the lossless
archive of the input itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..codec import Compressor
from ..segments import auto_segment_bytes
from .distortion import bound_problems, chrf, levenshtein, semantic_similarity
from .levels import Level, level_for
from .search import Choice, Search
from .units import (
    KINDS,
    Unit,
    compile_protect,
    normalise,
    prepare,
    protected_spans,
    to_bytes,
    to_text,
)


class LossyInternalError(AssertionError):
    """The search produced a reconstruction that breaks its own bound (a bug)."""


@dataclass
class LossyResult:
    """A lossy compression and its figures."""

    archive: bytes
    reconstruction: bytes
    quality: int
    level: Level
    original_bytes: int
    lossy_bytes: int
    lossless_bytes: int | None  # None when not measured
    edit_distance: int  # Levenshtein(O, R), characters
    normalised_edit_distance: int  # Levenshtein(N(O), N(R)): what the bound limits
    n_chars: int  # characters of O
    chrf: float  # 0..100
    semantic: float | None  # cosine, None when not measured
    n_substitutions: int  # words replaced by the model's choice
    n_deletions: int  # words left out
    n_case_changes: int
    choices: list[Choice] = field(default_factory=list, repr=False)  # in text order

    @property
    def savings(self) -> float | None:
        """1 - lossy / lossless archive bytes."""
        if not self.lossless_bytes:
            return None
        return 1 - self.lossy_bytes / self.lossless_bytes

    def summary(self) -> str:
        """One paragraph for people."""
        parts = [f"quality {self.quality} ({self.level.name}): {self.original_bytes} bytes"]
        if self.lossless_bytes is not None:
            parts.append(f"lossless {self.lossless_bytes}")
        parts.append(f"lossy {self.lossy_bytes}")
        if self.savings is not None:
            parts.append(f"saves {self.savings:.1%}")
        per = self.edit_distance / max(1, self.n_chars)
        parts.append(f"edit distance {self.edit_distance} ({per:.2%} of characters; "
                     f"{self.normalised_edit_distance} after normalisation)")
        parts.append(f"chrF {self.chrf:.1f}")
        if self.semantic is not None:
            parts.append(f"semantic similarity {self.semantic:.4f}")
        parts.append(f"{self.n_substitutions} words substituted, {self.n_deletions} left "
                     f"out, {self.n_case_changes} case changes")
        return ", ".join(parts)


def reconstruct(data: bytes, engine, level: Level, kinds=KINDS, protect=()
                ) -> tuple[bytes, list[Choice], list[str]]:
    """R for `data` at `level` with a loaded engine; also the unit choices and the
    texts of the protected spans. The result keeps the bound, or LossyInternalError."""
    if level.lossless:
        return data, [], []
    text = to_text(data)
    spans = protected_spans(text, kinds, compile_protect(protect))
    prot = [text[a:b] for a, b in spans]
    units = prepare(text, spans, level.layout)
    r0_len = sum(len(u.text) for u in units)
    n_len = len(normalise(text, level.layout, level.case))
    rate = level.edit_budget * n_len / max(1, r0_len)
    segments = _segments(units, engine)
    choices = [c for seg in Search(engine, level, rate).run(segments) for c in seg]
    while True:
        rec = "".join(c.chosen for c in choices)
        if not bound_problems(text, rec, level, prot):
            return to_bytes(rec), choices, prot
        subs = [i for i, c in enumerate(choices) if c.kind in ("sub", "drop")]
        if not subs:  # layout alone cannot break the bound: a bug in units.py
            raise LossyInternalError("internal error: the reconstruction breaks its bound "
                                     "without substitutions; please report this input")
        for i in subs[-max(1, len(subs) // 20):]:  # undo the last few and check again
            c = choices[i]
            choices[i] = Choice(c.original, c.original, "keep", 0, 0.0)


def _segments(units: list[Unit], engine) -> list[list[Unit]]:
    """Units grouped into segments of about the Compressor's size, ending after a line
    break where possible, each short enough in tokens for the model's positions."""
    n_bytes = sum(len(to_bytes(u.text)) for u in units)
    size = auto_segment_bytes(n_bytes, engine.batch_size)
    todo, out = [], []
    cur, cur_bytes = [], 0
    for u in units:
        cur.append(u)
        cur_bytes += len(to_bytes(u.text))
        if cur_bytes >= size and ("\n" in u.text or cur_bytes >= 2 * size):
            todo.append(cur)
            cur, cur_bytes = [], 0
    if cur:
        todo.append(cur)
    todo.reverse()
    while todo:
        seg = todo.pop()
        n_tok = len(engine.tok.encode(to_bytes("".join(u.text for u in seg))))
        if n_tok < engine.cfg.max_positions or len(seg) == 1:
            out.append(seg)
        else:
            todo += [seg[len(seg) // 2:], seg[:len(seg) // 2]]
    return out


def compress(data: bytes, quality: int = 100, *, model=None, level: int | None = None,
             protect=(), kinds=KINDS, lossless: bool = True, semantic: bool = True,
             compressor: Compressor | None = None) -> LossyResult:
    """Lossy-compress `data` at `quality` (0..100; 100 = lossless, bit-identical to
    `lmpress.compress`). `protect`: extra regular expressions whose matches stay exact;
    `kinds`: the default protected kinds to keep (see units.KINDS). `lossless` and
    `semantic` also measure the lossless archive size and the semantic similarity."""
    lv = level_for(quality)
    data = bytes(data)
    comp = compressor or Compressor(model, level=level)
    rec, choices, _ = reconstruct(data, comp.engine, lv, kinds, protect)
    archive = comp.compress(rec)
    lossless_bytes = len(archive) if rec == data else (
        len(comp.compress(data)) if lossless else None)
    o, r = to_text(data), to_text(rec)
    return LossyResult(
        archive, rec, quality, lv, len(data), len(archive), lossless_bytes,
        levenshtein(o, r), levenshtein(normalise(o, lv.layout, lv.case),
                                       normalise(r, lv.layout, lv.case)),
        len(o), chrf(r, o) if o or r else 100.0,
        semantic_similarity(comp.engine, data, rec) if semantic else None,
        *(sum(c.kind == k for c in choices) for k in ("sub", "drop", "case")),
        choices)
