"""Model configuration: one frozen dataclass that travels inside the weights file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class ModelConfig:
    """A Llama-style decoder: RMSNorm, rotary positions, SwiGLU, tied embeddings."""

    vocab_size: int = 4096  # byte-level BPE; 256 byte tokens + merges + specials
    n_layer: int = 4  # transformer blocks
    n_head: int = 8  # attention heads; head size = n_embd // n_head
    n_embd: int = 256  # residual width; small enough for 2-core CPU training
    n_hidden: int = 688  # SwiGLU inner width, ~8/3 * n_embd rounded to 16
    window: int = 256  # attention window in tokens (training context = window)
    max_positions: int = 4096  # rotary table length = longest stream in tokens
    rope_theta: float = 10000.0  # rotary base
    norm_eps: float = 1e-5  # RMSNorm epsilon used by the float (training) model
    bos_id: int = 0  # start-of-text token that begins every stream and document

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})
