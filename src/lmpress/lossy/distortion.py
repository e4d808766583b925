"""Distortion figures of a reconstruction R against the original O, and the level bound.

- character edit distance: Levenshtein over Unicode characters (rapidfuzz);
- chrF: character n-gram F-score, n = 1..6, beta = 2, whitespace removed, precision and
  recall averaged over the orders that occur (sacreBLEU's CHRF defaults; the tests
  compare the two);
- semantic similarity: cosine of the mean-pooled, RMS-normalised final hidden states of
  the integer model over O and over R (the model's own view of what the text says).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import LmpressError
from .levels import Level
from .units import normalise


class DependencyError(LmpressError):
    """A package that lossy mode needs is missing."""


def levenshtein(a: str, b: str) -> int:
    try:
        from rapidfuzz.distance import Levenshtein
    except ImportError:
        raise DependencyError("lossy mode needs rapidfuzz for edit distances; install it "
                              "with: pip install rapidfuzz") from None
    return int(Levenshtein.distance(a, b))


def chrf(hypothesis: str, reference: str, order: int = 6, beta: float = 2.0) -> float:
    """chrF of `hypothesis` against `reference`, 0..100."""
    h, r = "".join(hypothesis.split()), "".join(reference.split())
    precision = recall = 0.0
    effective = 0
    for n in range(1, order + 1):
        hc = Counter(h[i:i + n] for i in range(len(h) - n + 1))
        rc = Counter(r[i:i + n] for i in range(len(r) - n + 1))
        n_hyp, n_ref = sum(hc.values()), sum(rc.values())
        if n_hyp and n_ref:
            match = sum((hc & rc).values())
            precision += match / n_hyp
            recall += match / n_ref
            effective += 1
    if not effective:
        return 0.0
    precision, recall = precision / effective, recall / effective
    if precision + recall == 0:
        return 0.0
    f2 = beta**2
    return 100 * (1 + f2) * precision * recall / (f2 * precision + recall)


def bound_problems(original: str, reconstruction: str, level: Level,
                   protected: list[str]) -> list[str]:
    """Why R breaks the level's bound (empty: it keeps it). `protected` are the texts of
    O's protected spans, which must appear in R unchanged and in order."""
    problems = []
    if level.lossless and original != reconstruction:
        problems.append("quality 100 must return the input unchanged")
    pos = 0
    for span in protected:
        at = reconstruction.find(span, pos)
        if at < 0:
            problems.append(f"protected span {span[:40]!r} is missing or altered")
            break
        pos = at + len(span)
    n_o = normalise(original, level.layout, level.case)
    n_r = normalise(reconstruction, level.layout, level.case)
    edit = levenshtein(n_o, n_r)
    if edit > level.edit_budget * len(n_o):
        problems.append(f"normalised edit distance {edit} exceeds the budget "
                        f"{level.edit_budget:.0%} of {len(n_o)} characters")
    return problems


def hidden_states(engine, ids: np.ndarray) -> np.ndarray:
    """Final hidden states (L, C) of the integer model over BOS + ids, as floats, each
    row divided by its RMS; fed in window-sized chunks, restarted every max_positions."""
    lm, cfg = engine.lm, engine.cfg
    xp = lm.xp
    rows = []
    span = cfg.max_positions - 1
    for s in range(0, len(ids), span):
        inp = np.concatenate([[cfg.bos_id], ids[s:s + span]])[None, :]
        st = lm.new_state(1)
        for c in range(0, inp.shape[1] - 1, cfg.window):
            h = lm.trunk(st, inp[:, c:c + cfg.window])
            rows.append(np.asarray(xp.to_numpy(h), dtype=np.float64)[0])
    if not rows:
        return np.zeros((0, cfg.n_embd))
    h = np.concatenate(rows)[:len(ids)]
    return h / np.maximum(np.sqrt((h * h).mean(-1, keepdims=True)), 1e-9)


def semantic_similarity(engine, original: bytes, reconstruction: bytes) -> float:
    """Cosine of the mean-pooled hidden states over O and over R; 1.0 for equal texts."""
    if original == reconstruction:
        return 1.0
    a, b = (hidden_states(engine, engine.tok.encode(x)).mean(0) if x else None
            for x in (original, reconstruction))
    if a is None or b is None:
        return 0.0
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
