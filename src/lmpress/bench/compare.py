"""Paired comparison of two compressors (or models) on the same files.

The difference of their total rates, Δ = 8 (Σ out_A − Σ out_B) / Σ in over the files both
coded, with a 95% bootstrap interval from resampling files (the same resample for both,
which is what makes it paired), and how many files each one won.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .inputs import BenchError
from .measure import Row
from .run import N_BOOTSTRAP, SEED


@dataclass
class Comparison:
    a: str
    b: str
    n_files: int
    delta_bits_per_byte: float  # A minus B: negative means A is smaller
    ci_low: float
    ci_high: float
    a_wins: int  # files where A's output is smaller
    b_wins: int

    def line(self) -> str:
        return (f"{self.a} vs {self.b}: {self.delta_bits_per_byte:+.4f} bits/B "
                f"(95% CI {self.ci_low:+.4f} to {self.ci_high:+.4f}) over {self.n_files} "
                f"files; smaller on {self.a_wins} vs {self.b_wins}")


def pick(rows: list[Row], pattern: str) -> str:
    """The one codec name containing `pattern` (exact names win)."""
    names = list(dict.fromkeys(r.codec for r in rows))
    if pattern in names:
        return pattern
    found = [n for n in names if pattern in n]
    if len(found) != 1:
        raise BenchError(f"--compare: {pattern!r} matches {len(found)} of the measured "
                         f"compressors ({', '.join(names)}); give a part of exactly one")
    return found[0]


def paired(rows: list[Row], a: str, b: str, seed: int = SEED,
           n_resamples: int = N_BOOTSTRAP) -> Comparison:
    by_a = {(r.category, r.name, r.sha256): r for r in rows if r.codec == a and r.status == "ok"}
    by_b = {(r.category, r.name, r.sha256): r for r in rows if r.codec == b and r.status == "ok"}
    keys = [k for k in by_a if k in by_b and by_a[k].n_bytes_in]
    if not keys:
        raise BenchError(f"--compare: {a} and {b} have no file in common")
    n_in = np.array([by_a[k].n_bytes_in for k in keys], dtype=float)
    da = np.array([by_a[k].n_bytes_out for k in keys], dtype=float)
    db = np.array([by_b[k].n_bytes_out for k in keys], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(keys), size=(n_resamples, len(keys)))
    deltas = 8 * (da[idx] - db[idx]).sum(axis=1) / n_in[idx].sum(axis=1)
    low, high = np.percentile(deltas, [2.5, 97.5])
    return Comparison(a, b, len(keys), float(8 * (da - db).sum() / n_in.sum()), float(low),
                      float(high), int((da < db).sum()), int((db < da).sum()))
