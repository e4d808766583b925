"""The benchmark loop: every codec on every item through `measure`, then totals.

Totals are Σ bits / Σ bytes over the files of a (codec, category), never a mean of
per-file ratios, so a large file counts for its size. Confidence intervals come from a
seeded bootstrap over files: resample the files with replacement, recompute the total."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .codecs import Codec
from .inputs import BenchInput, InputSet
from .measure import Row, measure

if TYPE_CHECKING:
    from .estimate_run import EstimateResult

ALL = "(all)"  # the category of the overall totals
N_BOOTSTRAP = 1000
SEED = 20240101

Done = dict[tuple[str, str], Row]  # (codec key, sha256) -> a finished row


@dataclass
class Total:
    """Figures of one codec over the files of one category (or ALL)."""

    codec: str
    category: str
    n_files: int
    n_bytes_in: int
    n_bytes_out: int
    bits_per_byte: float
    ci_low: float  # 95% bootstrap interval of bits_per_byte over files
    ci_high: float
    compress_kb_s: float  # Σ bytes / Σ seconds
    decompress_kb_s: float
    peak_mem_bytes: int | None  # the largest over the files
    n_errors: int = 0
    estimate_bits_per_byte: float | None = None  # Σ estimate / Σ LM-coded bytes
    lm_bits_per_byte: float | None = None  # Σ LM-coded archive bits / Σ LM-coded bytes
    adjusted_bits_per_byte: float | None = None  # (Σ archive + model file once) / Σ bytes
    delta_vs_best_classical: float | None = None  # bits/byte minus the best classical codec


@dataclass
class BenchResult:
    rows: list[Row]
    totals: list[Total]
    notes: list[str] = field(default_factory=list)
    machine: dict = field(default_factory=dict)
    n_empty: int = 0
    n_skipped: int = 0
    estimates: EstimateResult | None = None  # --estimate: models scored without coding


def machine_info() -> dict:
    """Where the speeds were measured (DESIGN §4: quote speeds with the machine)."""
    return {"platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}


def run_bench(inputs: InputSet, codecs: Iterable[Codec], *, done: Done | None = None,
              on_row: Callable[[Row, bool], None] | None = None,
              on_start: Callable[[Codec, BenchInput], None] | None = None,
              pool=None) -> BenchResult:
    """Measure every codec on every item. Rows found in `done` (same codec key and sha256)
    are reused, not measured again; `on_start(codec, item)` is called before a row is
    measured and `on_row(row, reused)` after each row. With a `pool` (lmpress.cluster),
    the rows of integer models are measured on its workers, all files at once."""
    done = done or {}
    rows: list[Row] = []
    for codec in codecs:
        jobs = {}  # item index -> the worker's job, when measured elsewhere
        if pool is not None and codec.remote is not None:
            from .remote import measure_remote

            jobs = {i: pool.submit(measure_remote, codec.remote, item)
                    for i, item in enumerate(inputs.items)
                    if not _reusable(done, codec, item)}
        for i, item in enumerate(inputs.items):
            old = done.get((codec.key, item.sha256))
            reused = _reusable(done, codec, item)
            if reused:
                row = Row.from_dict({**old.__dict__, "name": item.name,
                                     "category": item.category, "codec": codec.name})
            else:
                if on_start is not None:
                    on_start(codec, item)
                row = jobs[i].result() if i in jobs else measure(codec, item)
                row.codec = codec.name
            rows.append(row)
            if on_row is not None:
                on_row(row, reused)
    notes = list(inputs.notes) + list(inputs.skipped)
    n_errors = sum(r.status != "ok" for r in rows)
    if n_errors:
        notes.append(f"{n_errors} row(s) failed; see the error column")
    return BenchResult(rows, summarize(rows), notes, machine_info(),
                       n_empty=len(inputs.empty), n_skipped=len(inputs.skipped))


def _reusable(done: Done, codec: Codec, item: BenchInput) -> bool:
    old = done.get((codec.key, item.sha256))
    return old is not None and old.status == "ok"


def summarize(rows: list[Row], seed: int = SEED) -> list[Total]:
    """Totals per (codec, category) and per codec over all categories, in row order."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.codec, r.category), []).append(r)
        groups.setdefault((r.codec, ALL), []).append(r)
    totals = [_total(codec, cat, rs, seed) for (codec, cat), rs in groups.items()]
    categories = {t.category for t in totals}
    if len(categories) == 2:  # one real category: its totals equal the ALL ones
        totals = [t for t in totals if t.category != ALL]
    _add_deltas(totals, rows)
    return sorted(totals, key=lambda t: (t.category == ALL, t.category))


def _total(codec: str, category: str, rows: list[Row], seed: int) -> Total:
    ok = [r for r in rows if r.status == "ok"]
    n_in = np.array([r.n_bytes_in for r in ok], dtype=np.float64)
    n_out = np.array([r.n_bytes_out for r in ok], dtype=np.float64)
    bpb = 8 * n_out.sum() / n_in.sum() if ok else float("nan")
    low, high = bootstrap_interval(n_in, n_out, seed)
    t = Total(codec, category, len(ok), int(n_in.sum()), int(n_out.sum()), bpb, low, high,
              n_in.sum() / 1000 / max(sum(r.compress_s for r in ok), 1e-9),
              n_in.sum() / 1000 / max(sum(r.decompress_s for r in ok), 1e-9),
              max((r.peak_mem_bytes for r in ok if r.peak_mem_bytes is not None),
                  default=None),
              n_errors=len(rows) - len(ok))
    lm = [r for r in ok if r.estimate_bits is not None and r.lm_bytes_in]
    if lm:
        lm_in = sum(r.lm_bytes_in for r in lm)
        t.estimate_bits_per_byte = sum(r.estimate_bits for r in lm) / lm_in
        t.lm_bits_per_byte = 8 * sum(r.lm_bytes_out for r in lm) / lm_in
    if ok and ok[0].model_bytes:
        t.adjusted_bits_per_byte = 8 * (n_out.sum() + ok[0].model_bytes) / n_in.sum()
    return t


def bootstrap_interval(n_in: np.ndarray, n_out: np.ndarray, seed: int = SEED,
                       n_resamples: int = N_BOOTSTRAP) -> tuple[float, float]:
    """95% percentile interval of 8 Σ out / Σ in when files are resampled.

    >>> bootstrap_interval(np.array([100.0, 100.0]), np.array([50.0, 50.0]))
    (4.0, 4.0)
    """
    if len(n_in) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(n_in), size=(n_resamples, len(n_in)))
    rates = 8 * n_out[idx].sum(axis=1) / n_in[idx].sum(axis=1)
    low, high = np.percentile(rates, [2.5, 97.5])
    return float(low), float(high)


def _add_deltas(totals: list[Total], rows: list[Row]) -> None:
    """For model rows: bits/byte minus the best classical codec's on the same category."""
    model_codecs = {r.codec for r in rows if r.model_bytes}
    for cat in {t.category for t in totals}:
        classical = [t.bits_per_byte for t in totals
                     if t.category == cat and t.codec not in model_codecs and t.n_files]
        if not classical:
            continue
        for t in totals:
            if t.category == cat and t.codec in model_codecs and t.n_files:
                t.delta_vs_best_classical = t.bits_per_byte - min(classical)
