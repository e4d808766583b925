"""Export a trained float checkpoint into the shipped integer model, and measure what the
quantization costs: bits per byte of the float model and of the integer model on the same
streams (same segments, same sliding window)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..codec import Compressor
from ..model.quantize import quantize_model
from ..model.tokenizer import ByteTokenizer
from ..model.weights import IntegerWeights
from ..segments import byte_segments
from .torch_model import LlamaLM, apply_rotary, rotary_tables


def export(model: LlamaLM, tokenizer_json: str, name: str, out_path: Path) -> IntegerWeights:
    """Quantize a trained model and its tokenizer into the integer model file `out_path`."""
    float_weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    weights = quantize_model(float_weights, model.cfg, tokenizer_json, name)
    weights.save(out_path)
    return weights


@torch.no_grad()
def float_bits(model: LlamaLM, tok: ByteTokenizer, data: bytes, segment_bytes: int) -> float:
    """Total -log2 p of `data` under the float model, streamed exactly as the codec does
    (BOS-started segments, attention over the last `window` positions)."""
    cfg, total = model.cfg, 0.0
    cos, sin = (t.float() for t in rotary_tables(cfg, cfg.max_positions))
    for seg in byte_segments(data, segment_bytes):
        ids = tok.encode(seg)
        for i in range(0, len(ids), cfg.max_positions):
            part = torch.from_numpy(ids[i:i + cfg.max_positions])
            inp = torch.cat([torch.tensor([cfg.bos_id]), part[:-1]])[None]
            T = inp.shape[1]
            pos = torch.arange(T)
            band = (pos[:, None] - pos[None, :] >= 0) & (pos[:, None] - pos[None, :] < cfg.window)
            x = model.wte(inp)
            for blk in model.blocks:
                a = blk.attn
                h = blk.norm_attn(x)
                q, k, v = (w(h).view(1, T, cfg.n_head, -1).transpose(1, 2)
                           for w in (a.wq, a.wk, a.wv))
                q, k = apply_rotary(q, cos[:T], sin[:T]), apply_rotary(k, cos[:T], sin[:T])
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=band)
                x = x + a.wo(y.transpose(1, 2).reshape(1, T, cfg.n_embd))
                x = x + blk.mlp(blk.norm_mlp(x))
            logits = model.norm_out(x) @ model.wte.weight.T
            total += F.cross_entropy(logits[0], part, reduction="sum").item() / math.log(2)
    return total


def quantization_report(model: LlamaLM, weights: IntegerWeights, data: bytes,
                        segment_bytes: int = 16384) -> dict:
    tok = ByteTokenizer(weights.tokenizer_json)
    fbits = float_bits(model, tok, data, segment_bytes)
    comp = Compressor(weights, segment_bytes=segment_bytes, fallback=False, adapt=False)
    archive = comp.compress(data)
    n = len(data)
    return {"n_bytes": n, "float_bpb": fbits / n,
            "int_estimate_bpb": comp.stats.estimate_bits / n,
            "int_archive_bpb": 8 * len(archive) / n}


