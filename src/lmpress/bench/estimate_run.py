"""Estimate-only rows for `lmpress bench --estimate`: each model scores each item under
one declared context rule (estimate.py), without coding. Totals are Σ −ln p over Σ bytes
(or words) of the files, as lm-evaluation-harness aggregates documents."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .estimate import ContextRule, Figures, Scorer, bits_per_byte, estimate, perplexity
from .inputs import BenchError, InputSet
from .run import ALL


@dataclass
class EstimateRow(Figures):
    """One (model, item): the model's Σ −ln p of the item, no archive."""

    model: str
    model_key: str
    category: str
    name: str
    sha256: str
    context: str  # the declared context rule
    n_bytes: int
    n_tokens: int = 0
    n_words: int = 0  # lm-eval's count: len(re.split(r"\s+", text))
    nll: float = 0.0  # Σ −ln p in nats (lm-eval's −loglikelihood)
    seconds: float = 0.0
    status: str = "ok"
    error: str = ""

    def to_dict(self) -> dict:
        return {**asdict(self), "bits_per_byte": self.bits_per_byte,
                "byte_perplexity": self.byte_perplexity,
                "word_perplexity": self.word_perplexity}


@dataclass
class EstimateTotal:
    model: str
    category: str
    context: str
    n_files: int
    n_bytes: int
    n_tokens: int
    n_words: int
    nll: float
    bits_per_byte: float
    byte_perplexity: float
    word_perplexity: float
    n_errors: int = 0


@dataclass
class PositionLoss:
    """Mean bits per token by position in the window the model read, for one model."""

    model: str
    context: str
    bits_sum: list[float] = field(default_factory=list)  # Σ bits of tokens at position i
    count: list[int] = field(default_factory=list)  # tokens scored at position i


@dataclass
class EstimateResult:
    rows: list[EstimateRow]
    totals: list[EstimateTotal]
    positions: list[PositionLoss]


def run_estimates(inputs: InputSet, scorers: Sequence[Scorer], rule: ContextRule,
                  on_row: Callable[[EstimateRow], None] | None = None) -> EstimateResult:
    """Every scorer on every item; a text that cannot be scored is an error row."""
    rows: list[EstimateRow] = []
    positions: list[PositionLoss] = []
    for scorer in scorers:
        context = rule.describe(scorer.max_len)
        bits_sum = np.zeros(scorer.max_len)
        count = np.zeros(scorer.max_len, dtype=np.int64)
        for item in inputs.items:
            row = EstimateRow(scorer.name, scorer.key, item.category, item.name, item.sha256,
                              context, len(item.data))
            start = time.perf_counter()
            try:
                e = estimate(scorer, item.data, rule)
            except BenchError as err:
                row.status, row.error = "error", str(err)
            else:
                row.n_tokens, row.n_words, row.nll = e.n_tokens, e.n_words, e.nll
                np.add.at(bits_sum, e.token_position, e.token_nll / np.log(2))
                np.add.at(count, e.token_position, 1)
            row.seconds = time.perf_counter() - start
            rows.append(row)
            if on_row is not None:
                on_row(row)
        used = int(np.flatnonzero(count).max()) + 1 if count.any() else 0
        positions.append(PositionLoss(scorer.name, context, bits_sum[:used].tolist(),
                                      count[:used].tolist()))
    return EstimateResult(rows, summarize_estimates(rows), positions)


def summarize_estimates(rows: list[EstimateRow]) -> list[EstimateTotal]:
    """Totals per (model, category) and per model over all categories."""
    groups: dict[tuple[str, str], list[EstimateRow]] = {}
    for r in rows:
        groups.setdefault((r.model, r.category), []).append(r)
        groups.setdefault((r.model, ALL), []).append(r)
    if len({c for _, c in groups}) == 2:  # one real category: ALL would repeat it
        groups = {k: v for k, v in groups.items() if k[1] != ALL}
    totals = []
    for (model, category), rs in groups.items():
        ok = [r for r in rs if r.status == "ok"]
        nll = sum(r.nll for r in ok)
        n_bytes, n_words = sum(r.n_bytes for r in ok), sum(r.n_words for r in ok)
        totals.append(EstimateTotal(model, category, rs[0].context, len(ok), n_bytes,
                                    sum(r.n_tokens for r in ok), n_words, nll,
                                    bits_per_byte(nll, n_bytes), perplexity(nll, n_bytes),
                                    perplexity(nll, n_words), len(rs) - len(ok)))
    return sorted(totals, key=lambda t: (t.category == ALL, t.category))

