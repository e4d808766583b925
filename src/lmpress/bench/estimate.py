"""A model's own estimate of a text's size, measured without coding: Σ −log p of every
token, with the accounting that makes such figures comparable.

- Every token is scored exactly once (checked), so every byte is paid for once.
- The first token is predicted from a start token (the model's BOS, see scorers.py).
- The tokenizer must give the bytes back: decode(encode(x)) == x, else an error.
- The context is a declared rule (`ContextRule`): `document` (the whole document as one
  window; an error if it does not fit), `disjoint` (windows of `window` tokens whose
  scored parts do not overlap) or `sliding` (each window scores its last `stride` tokens
  with up to `window` tokens of context). The windows are exactly lm-evaluation-harness's
  `lm_eval.utils.get_rolling_token_windows(tokens, start, window, window - stride + 1)`;
  `disjoint` is stride = window, the harness's own `loglikelihood_rolling` setting.

Formulas, as lm-evaluation-harness computes them from Σ ln p per document
(lm_eval/api/metrics.py: `weighted_mean`, `weighted_perplexity`, `bits_per_byte`;
lm_eval/api/task.py `count_words`, `count_bytes`):
    bits_per_byte   = Σ(−ln p) / ln 2 / Σ bytes
    byte_perplexity = exp(Σ(−ln p) / Σ bytes) = 2 ** bits_per_byte
    word_perplexity = exp(Σ(−ln p) / Σ words), words = len(re.split(r"\\s+", text))
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .inputs import BenchError

CONTEXT_KINDS = ("disjoint", "sliding", "document")


class EstimateError(BenchError):
    """A text that cannot be scored under the declared rule (too long, no round trip)."""


class Scorer(Protocol):
    """A model as the estimate sees it (implementations in scorers.py)."""

    name: str  # shown in tables
    key: str  # identifies the weights
    max_len: int  # the most tokens one forward pass may read
    start_id: int  # the start-of-text token that predicts the first token

    def tokenize(self, data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
        """Token ids of `data` (round trip checked) and each token's byte length, or None
        where a token's bytes are not defined on their own."""

    def score(self, inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray]
              ) -> list[np.ndarray]:
        """−ln p(target[i] | inputs[:i+1]) per position of each window, float64."""


@dataclass(frozen=True)
class ContextRule:
    kind: str = "disjoint"  # one of CONTEXT_KINDS
    window: int | None = None  # tokens one pass reads; None = the model's maximum
    stride: int | None = None  # sliding only: tokens scored per window; None = window // 2

    def __post_init__(self) -> None:
        if self.kind not in CONTEXT_KINDS:
            raise BenchError(f"--context must be one of {', '.join(CONTEXT_KINDS)}, "
                             f"got {self.kind!r}")
        if self.window is not None and self.window < 1:
            raise BenchError(f"--window must be at least 1, got {self.window}")
        if self.stride is not None and (self.kind != "sliding" or self.stride < 1):
            raise BenchError("--stride needs --context sliding and must be at least 1")

    def resolve(self, max_len: int) -> tuple[int, int]:
        """(window, stride) in tokens for a model that reads at most `max_len`."""
        window = self.window or max_len
        if window > max_len:
            raise BenchError(f"--window {window} is more than the model reads at once "
                             f"({max_len} tokens)")
        stride = window if self.kind == "disjoint" else (self.stride or max(1, window // 2))
        if stride > window:
            raise BenchError(f"--stride {stride} is more than --window {window}")
        return window, stride

    def describe(self, max_len: int) -> str:
        if self.kind == "document":
            return f"document (up to {max_len})"
        window, stride = self.resolve(max_len)
        return (f"disjoint window={window}" if self.kind == "disjoint"
                else f"sliding window={window} stride={stride}")


def plan_windows(n_tokens: int, max_len: int, rule: ContextRule
                 ) -> list[tuple[int, int, int]]:
    """(start, end, n_scored) per window over s = [start token] + tokens: the model reads
    s[start:end] and its last n_scored predictions are scored (tokens[end-n_scored:end]).

    >>> plan_windows(5, 4, ContextRule("sliding", 4, 2))
    [(0, 4, 4), (1, 5, 1)]
    """
    if n_tokens == 0:
        return []
    if rule.kind == "document":
        if n_tokens > max_len:
            raise EstimateError(f"a document of {n_tokens} tokens does not fit the model's "
                                f"{max_len}; use --context sliding or disjoint")
        return [(0, n_tokens, n_tokens)]
    window, stride = rule.resolve(max_len)
    first = min(window, n_tokens)
    plan, done = [(0, first, first)], first
    while done < n_tokens:  # as lm_eval.utils.get_rolling_token_windows
        n = min(n_tokens - done, stride)
        plan.append((done + n - window, done + n, n))
        done += n
    return plan


class Figures:
    """lm-eval's figures from `nll` (Σ −ln p), `n_bytes` and `n_words` of the subclass."""

    nll: float
    n_bytes: int
    n_words: int

    @property
    def bits_per_byte(self) -> float:
        return bits_per_byte(self.nll, self.n_bytes)

    @property
    def byte_perplexity(self) -> float:
        return perplexity(self.nll, self.n_bytes)

    @property
    def word_perplexity(self) -> float:
        return perplexity(self.nll, self.n_words)


@dataclass
class Estimate(Figures):
    """The scored text: every token's −ln p and how much context it had."""

    model: str
    context: str  # the declared rule, e.g. "sliding window=512 stride=256"
    n_bytes: int
    n_words: int  # lm-eval's count: len(re.split(r"\s+", text))
    token_nll: np.ndarray  # (n_tokens,) −ln p of each token, in text order
    token_position: np.ndarray  # (n_tokens,) its index in the window the model read
    token_bytes: np.ndarray | None  # (n_tokens,) byte length of each token, if defined

    @property
    def n_tokens(self) -> int:
        return len(self.token_nll)

    @property
    def nll(self) -> float:
        """Σ −ln p in nats: lm-eval's −loglikelihood of the document."""
        return float(self.token_nll.sum())

    @property
    def bits(self) -> float:
        return self.nll / math.log(2)



def bits_per_byte(nll: float, n_bytes: int) -> float:
    """Σ(−ln p) / ln 2 / Σ bytes (lm-eval `bits_per_byte`)."""
    return nll / n_bytes / math.log(2) if n_bytes else float("nan")


def perplexity(nll: float, n_units: int) -> float:
    """exp(Σ(−ln p) / Σ units) (lm-eval `weighted_perplexity`)."""
    if not n_units:
        return float("nan")
    try:
        return math.exp(nll / n_units)
    except OverflowError:
        return float("inf")


def count_words(data: bytes) -> int:
    """Words as lm-eval counts them: `len(re.split(r"\\s+", doc))` on the text.

    >>> count_words(b"two words\\n")
    3
    """
    return len(re.split(r"\s+", data.decode("utf-8", "surrogateescape")))


def estimate(scorer: Scorer, data: bytes, rule: ContextRule = ContextRule(),
             batch_windows: int = 16) -> Estimate:
    """Score `data` under `rule`; every token exactly once (checked)."""
    ids, token_bytes = scorer.tokenize(data)
    n = len(ids)
    if token_bytes is not None and int(token_bytes.sum()) != len(data):
        raise EstimateError(f"{scorer.name}: token byte lengths sum to "
                            f"{int(token_bytes.sum())}, not {len(data)}")
    s = np.concatenate([[scorer.start_id], ids]).astype(np.int64)
    nll = np.full(n, np.nan)
    position = np.zeros(n, dtype=np.int64)
    plan = plan_windows(n, scorer.max_len, rule)
    for g in range(0, len(plan), batch_windows):
        group = plan[g:g + batch_windows]
        scores = scorer.score([s[a:b] for a, b, _ in group],
                              [s[a + 1:b + 1] for a, b, _ in group])
        for (a, b, k), sc in zip(group, scores):
            if len(sc) != b - a or not np.isnan(nll[b - k:b]).all():
                raise EstimateError(f"{scorer.name}: a token was scored twice")
            nll[b - k:b] = sc[-k:]
            position[b - k:b] = np.arange(b - a - k, b - a)
    if np.isnan(nll).any():
        raise EstimateError(f"{scorer.name}: {int(np.isnan(nll).sum())} token(s) not scored")
    return Estimate(scorer.name, rule.describe(scorer.max_len), len(data), count_words(data),
                    nll, position, token_bytes)

