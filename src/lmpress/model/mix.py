"""A mix: two or more integer models that share a tokenizer and a fixed-point layout,
run side by side, their logits averaged with integer shares (engine/mix.py).

Averaging logits is a geometric mixture, p ∝ p1^a * p2^b: where the models disagree it
keeps only what both find likely. Two models trained apart err in different places, so
the mix predicts better than either: lmpress-max-v1 with lmpress-small-v5 at 5:3 coded
held-out text 3-7% smaller than max-v1 alone (docs/BENCHMARKS.md).

A mix has no file of its own. Its identity is its parts' digests and its shares, hashed
into `digest`, which archives record as they record a single model's (docs/FORMAT.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from ..errors import ModelFileError
from .config import ModelConfig
from .weights import IntegerWeights

SHARE_BITS = 8  # shares are numerators over 256; mixed logits = sum(share * logits) >> 8


def mix_digest(part_digests: list[str], shares: tuple[int, ...]) -> str:
    """The sha256 that names a mix: its parts' digests and its shares, in order."""
    text = json.dumps({"mix": "lmpress-mix-v1", "parts": part_digests,
                       "shares": list(shares)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class MixedWeights:
    """The parts and shares of a mix, with what the codec reads of a model: a name, a
    digest, the tokenizer, and a config whose window and positions fit every part."""

    name: str
    parts: tuple[IntegerWeights, ...]
    shares: tuple[int, ...]
    summary: str = ""

    def __post_init__(self):
        first = self.parts[0]
        if len(self.parts) < 2 or len(self.shares) != len(self.parts) \
                or sum(self.shares) != 1 << SHARE_BITS or min(self.shares) < 1:
            raise ModelFileError(f"mix {self.name}: needs two or more parts with positive "
                                 f"shares summing to {1 << SHARE_BITS}")
        for p in self.parts[1:]:
            if (p.tokenizer_json != first.tokenizer_json or p.fixed != first.fixed
                    or p.config.vocab_size != first.config.vocab_size
                    or p.config.bos_id != first.config.bos_id):
                raise ModelFileError(f"mix {self.name}: {p.name} and {first.name} differ in "
                                     "tokenizer or fixed-point layout; only models that "
                                     "share both can be mixed")
        for p in self.parts:  # models made in memory (tests) get theirs here
            p.digest = p.digest or hashlib.sha256(p.to_bytes()).hexdigest()
        self.digest = mix_digest([p.digest for p in self.parts], self.shares)

    @property
    def tokenizer_json(self) -> str:
        return self.parts[0].tokenizer_json

    @property
    def config(self) -> ModelConfig:
        """The first part's config with the smallest window and positions of all parts:
        chunks of that many tokens and streams of that length fit every part."""
        return replace(self.parts[0].config,
                       window=min(p.config.window for p in self.parts),
                       max_positions=min(p.config.max_positions for p in self.parts))

    @property
    def configs(self) -> list[ModelConfig]:
        return [p.config for p in self.parts]

    def __reduce__(self):
        """A shipped mix travels to worker processes by name (they load its parts from
        the package); any other by value."""
        from .registry import SHIPPED, load_model

        entry = SHIPPED.get(self.name)
        if entry is not None and entry.sha256 == self.digest:
            return load_model, (self.name,)
        return MixedWeights, (self.name, self.parts, self.shares, self.summary)
