"""The quality cost of a conversion: per-token bits of the float model (transformers,
float32) and of the converted integer model (the coder's own frequency tables) on the
same token streams, each begun with the start token, attending over the same sliding
window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model.tokenizer import ByteTokenizer
from ..model.weights import IntegerWeights
from ..segments import byte_segments
from .hf import Checkpoint


@dataclass(frozen=True)
class Quality:
    n_bytes: int
    n_tokens: int
    float_bits: float  # sum of -log2 p under the float model
    int_bits: float  # sum of -log2(f / total) under the integer model
    abs_diff_bits: float  # sum over tokens of |integer bits - float bits|

    @property
    def float_bpb(self) -> float:
        return self.float_bits / max(self.n_bytes, 1)

    @property
    def int_bpb(self) -> float:
        return self.int_bits / max(self.n_bytes, 1)

    @property
    def deviation(self) -> float:
        """Mean per-token |integer - float| bits relative to the float model's mean: how
        far apart the two models are token by token, even where the totals agree."""
        return self.abs_diff_bits / self.float_bits if self.float_bits else 0.0

    @property
    def cost(self) -> float:
        """Relative growth of the code length from float to integer (0.01 = 1%)."""
        return self.int_bits / self.float_bits - 1 if self.float_bits else 0.0


def token_streams(tok: ByteTokenizer, data: bytes, max_tokens: int,
                  segment_bytes: int = 16384) -> list[np.ndarray]:
    """The codec's segments of `data`, tokenized, cut to at most `max_tokens` each."""
    out = []
    for seg in byte_segments(data, segment_bytes):
        ids = tok.encode(seg)
        out += [ids[i:i + max_tokens] for i in range(0, len(ids), max_tokens)]
    return out


def float_bits(ck: Checkpoint, streams: Sequence[np.ndarray], rows: np.ndarray,
               window: int) -> np.ndarray:
    """Per-token bits of the float model; `rows` maps converted ids to checkpoint ids."""
    import torch

    out = []
    head = ck.model.get_output_embeddings()
    with torch.no_grad():
        for ids in streams:
            target = torch.from_numpy(rows[ids])
            inp = torch.cat([torch.tensor([ck.start_id]), target[:-1]])[None]
            T = inp.shape[1]
            mask = None
            if T > window:  # the engine's sliding window: each position sees `window`
                pos = torch.arange(T)
                dist = pos[:, None] - pos[None, :]
                mask = torch.where((dist >= 0) & (dist < window), 0.0, float("-inf"))[None, None]
            hidden = ck.model.model(input_ids=inp, attention_mask=mask).last_hidden_state[0]
            for c in range(0, T, 512):  # logits a piece at a time: V may be 150k
                logp = torch.log_softmax(head(hidden[c:c + 512]).double(), -1)
                picked = logp.gather(-1, target[c:c + 512, None])[:, 0]
                out.append((-picked / np.log(2)).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def integer_bits(weights: IntegerWeights, streams: Sequence[np.ndarray],
                 backend: str | None = None, batch_size: int = 8) -> np.ndarray:
    """Per-token bits of the integer model: exactly what the range coder pays without
    adaptation."""
    from ..codec import _Engine
    from ..streams import chunked_tables

    engine = _Engine(weights, backend, batch_size)
    out = []
    for g in range(0, len(streams), batch_size):
        group = streams[g:g + batch_size]
        B, L = len(group), max(len(s) for s in group)
        tgt = np.zeros((B, L), dtype=np.int64)
        for b, s in enumerate(group):  # padding after the end: causal, never read
            tgt[b, :len(s)] = s
        inp = np.concatenate([np.full((B, 1), engine.cfg.bos_id), tgt[:, :-1]], axis=1)
        _, freq, total = chunked_tables(engine, inp, tgt[..., None])
        bits = np.log2(total / freq[..., 0])
        out += [bits[b, :len(s)] for b, s in enumerate(group)]
    return np.concatenate(out) if out else np.zeros(0)
