"""Model configuration: one frozen dataclass that travels inside the weights file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

# Fields added after the first model files shipped. `to_json` leaves them out while they
# hold their defaults, so files (and therefore digests and archives) of models that do
# not use them stay byte-identical; a file that uses one is marked as a newer format.
EXTENSION_FIELDS = ("n_kv_head", "head_dim", "qkv_bias", "qk_norm", "tie_embeddings")


@dataclass(frozen=True)
class ModelConfig:
    """A Llama-style decoder: RMSNorm, rotary positions, SwiGLU, tied embeddings by
    default; grouped-query attention, QKV biases (Qwen2), per-head q/k RMSNorm (Qwen3)
    and a separate output head for models converted from Hugging Face checkpoints."""

    vocab_size: int = 4096  # byte-level BPE; 256 byte tokens + merges + specials
    n_layer: int = 4  # transformer blocks
    n_head: int = 8  # attention (query) heads
    n_embd: int = 256  # residual width; small enough for 2-core CPU training
    n_hidden: int = 688  # SwiGLU inner width, ~8/3 * n_embd rounded to 16
    window: int = 256  # attention window in tokens (training context = window)
    max_positions: int = 4096  # rotary table length = longest stream in tokens
    rope_theta: float = 10000.0  # rotary base
    norm_eps: float = 1e-5  # RMSNorm epsilon used by the float (training) model
    bos_id: int = 0  # start-of-text token that begins every stream and document
    n_kv_head: int = 0  # key/value heads (grouped-query attention); 0 = n_head
    head_dim: int = 0  # per-head width; 0 = n_embd // n_head
    qkv_bias: bool = False  # q, k, v projections carry biases (Qwen2)
    qk_norm: bool = False  # per-head RMSNorm of q and k before rotary (Qwen3)
    tie_embeddings: bool = True  # the output head is the embedding; else a separate head

    @property
    def head_size(self) -> int:
        return self.head_dim or self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def attn_width(self) -> int:
        """Width of the concatenated query heads (= n_embd unless head_dim says else)."""
        return self.n_head * self.head_size

    @property
    def extended(self) -> bool:
        """True when a field newer than the first file format differs from its default."""
        default = ModelConfig()
        return any(getattr(self, f) != getattr(default, f) for f in EXTENSION_FIELDS)

    def to_json(self) -> str:
        raw, default = asdict(self), ModelConfig()
        for f in EXTENSION_FIELDS:
            if raw[f] == getattr(default, f):
                del raw[f]
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})
