"""Float weights -> the integer model: int8 per-channel weights, integer scales, and the
lookup tables (exp, SiLU, rotary) computed once here and stored in the model file, so
that no transcendental function runs at coding time."""

from __future__ import annotations

import math

import numpy as np

from ..engine.fixed import FixedPoint
from .config import ModelConfig
from .weights import IntegerWeights

LINEARS = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")


def _float_name(layer: int, linear: str) -> str:
    """The torch model's name of a block's linear weight (blocks.i.attn.wq.weight, ...)."""
    sub = "attn." if linear in ("wq", "wk", "wv", "wo") else "mlp."
    return f"blocks.{layer}.{sub}{linear}.weight"


def quantize_matrix(w: np.ndarray, fp: FixedPoint) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (output channel) symmetric int8: w ~= q * m / 2**w_frac."""
    w = np.asarray(w, dtype=np.float64)
    scale = np.maximum(np.abs(w).max(axis=1), 1e-8) / 127.0
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    m = np.rint(scale * 2.0**fp.w_frac).astype(np.int64)
    return q, np.maximum(m, 1)


def build_tables(cfg: ModelConfig, fp: FixedPoint, inv_freq: list[float] | None = None,
                 rope_scale: float = 1.0) -> dict[str, np.ndarray]:
    """The exp, SiLU and rotary tables. `inv_freq` (head_size // 2 rotary frequencies)
    defaults to rope_theta ** (-j / half); converted models pass their own (Llama 3 or
    YaRN scaling), and `rope_scale` multiplies cos and sin (YaRN's attention factor)."""
    step = 1 << fp.exp_step_bits
    exp = [round(math.exp(-i / step) * 2**fp.exp_frac) for i in range(fp.exp_range * step)]
    silu = []
    for i in range(2 * fp.silu_range * 256):
        x = i / 256 - fp.silu_range
        silu.append(round(x / (1 + math.exp(-x)) * 2**fp.hidden_frac))
    half = cfg.head_size // 2
    if inv_freq is None:
        inv_freq = [cfg.rope_theta ** (-j / half) for j in range(half)]
    angles = [[p * f for f in inv_freq] for p in range(cfg.max_positions)]
    one = (1 << fp.rope_frac) * rope_scale
    cos = np.array([[round(math.cos(a) * one) for a in row] for row in angles], dtype=np.int32)
    sin = np.array([[round(math.sin(a) * one) for a in row] for row in angles], dtype=np.int32)
    tables = {"tables.exp": np.array(exp, dtype=np.int32),
              "tables.silu": np.array(silu, dtype=np.int32),
              "tables.rope_cos": cos, "tables.rope_sin": sin}
    if fp.freq_exp_frac:
        tables["tables.exp_freq"] = freq_exp_table(fp)
    return tables


def freq_exp_table(fp: FixedPoint) -> np.ndarray:
    """exp(-i / 2**exp_step_bits) at frac freq_exp_frac, down to its first zero: the
    frequency table's finer exp (a 16-bit table rounds every token more than 11 nats
    below the top to zero, which a 150k-token vocabulary feels)."""
    if not 16 <= fp.freq_exp_frac <= 30:  # e << freq_bits and sums must fit int64
        raise ValueError(f"freq_exp_frac {fp.freq_exp_frac} is outside 16..30")
    step, out = 1 << fp.exp_step_bits, []
    while not out or out[-1] > 0:
        out.append(round(math.exp(-len(out) / step) * 2**fp.freq_exp_frac))
    return np.array(out, dtype=np.int64)


def quantize_model(float_weights: dict[str, np.ndarray], cfg: ModelConfig, tokenizer_json: str,
                   name: str, fp: FixedPoint | None = None,
                   inv_freq: list[float] | None = None, rope_scale: float = 1.0,
                   summary: str = "") -> IntegerWeights:
    """`float_weights` uses the torch model's names (wte.weight, blocks.i.attn.wq.weight,
    blocks.i.norm_attn.weight, ..., norm_out.weight), plus, as the config asks, q/k/v
    biases (blocks.i.attn.bq), per-head norms (blocks.i.attn.q_norm.weight) and a
    separate output head (head.weight)."""
    fp = fp or FixedPoint()
    out: dict[str, np.ndarray] = {}

    class _Float64:  # one tensor at a time in float64: a 0.5B model would need 4 GB at once
        def __getitem__(self, k: str) -> np.ndarray:
            return np.asarray(float_weights[k], dtype=np.float64)

    f = _Float64()
    q, m = quantize_matrix(f["wte.weight"], fp)
    out["wte.q"], out["wte.m"] = q, m
    if not cfg.tie_embeddings:
        out["head.q"], out["head.m"] = quantize_matrix(f["head.weight"], fp)
    gain = lambda g: np.rint(g * 2**fp.gain_frac).astype(np.int32)  # noqa: E731
    root = math.sqrt(cfg.head_size)  # attention temperature, folded into q (or its norm)
    for i in range(cfg.n_layer):
        b = f"blocks.{i}."
        for n in LINEARS:
            w = f[_float_name(i, n)]
            if n == "wq" and not cfg.qk_norm:  # fold the temperature 1/sqrt(head) into q
                w = w / root
            q, m = quantize_matrix(w, fp)
            out[f"layers.{i}.{n}.q"], out[f"layers.{i}.{n}.m"] = q, m
        out[f"layers.{i}.norm_attn"] = gain(f[b + "norm_attn.weight"])
        out[f"layers.{i}.norm_mlp"] = gain(f[b + "norm_mlp.weight"])
        if cfg.qkv_bias:  # added to the projections' fixed-point outputs
            q_frac = fp.qk_norm_frac if cfg.qk_norm else fp.qk_frac
            q_root = 1.0 if cfg.qk_norm else root
            for n, frac, div in (("bq", q_frac, q_root), ("bk", q_frac, 1.0),
                                 ("bv", fp.v_frac, 1.0)):
                out[f"layers.{i}.{n}"] = np.rint(f[b + "attn." + n] / div * 2**frac
                                                  ).astype(np.int64)
        if cfg.qk_norm:
            out[f"layers.{i}.q_norm"] = gain(f[b + "attn.q_norm.weight"] / root)
            out[f"layers.{i}.k_norm"] = gain(f[b + "attn.k_norm.weight"])
    out["norm_out"] = gain(f["norm_out.weight"])
    out.update(build_tables(cfg, fp, inv_freq, rope_scale))
    return IntegerWeights(name, cfg, fp, tokenizer_json, out, summary=summary)


def dequantize_model(weights: IntegerWeights) -> dict[str, np.ndarray]:
    """The float weights (torch model names) that `quantize_model` would turn back into
    `weights`, up to its rounding: where a new model's training starts from a shipped one.
    Only plain models (no biases, head norms or separate head) are supported."""
    cfg, fp, t = weights.config, weights.fixed, weights.tensors
    if cfg.qkv_bias or cfg.qk_norm or not cfg.tie_embeddings:
        raise ValueError(f"{weights.name} is a converted model; only lmpress's own models "
                         "can be dequantized")

    def mat(name: str) -> np.ndarray:
        m = np.asarray(t[name + ".m"], dtype=np.float64)
        return np.asarray(t[name + ".q"], dtype=np.float64) * (m / 2.0**fp.w_frac)[:, None]

    gain = lambda g: np.asarray(g, dtype=np.float64) / 2**fp.gain_frac  # noqa: E731
    out = {"wte.weight": mat("wte"), "norm_out.weight": gain(t["norm_out"])}
    for i in range(cfg.n_layer):
        b = f"blocks.{i}."
        for n in LINEARS:
            w = mat(f"layers.{i}.{n}")
            out[_float_name(i, n)] = w * math.sqrt(cfg.head_size) if n == "wq" else w
        out[b + "norm_attn.weight"] = gain(t[f"layers.{i}.norm_attn"])
        out[b + "norm_mlp.weight"] = gain(t[f"layers.{i}.norm_mlp"])
    return out


def seeded_float_weights(cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """Deterministic random float weights (for tests and golden archives): a splitmix64
    stream, so they never change with numpy's generator versions."""
    state = np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)

    def normal(shape: tuple[int, ...], std: float) -> np.ndarray:
        nonlocal state
        n = int(np.prod(shape))
        with np.errstate(over="ignore"):
            z = state + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            state = z[-1]
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        u = (z >> np.uint64(11)).astype(np.float64) / 2.0**53  # uniform [0, 1)
        return ((u - 0.5) * (std * math.sqrt(12.0))).reshape(shape)

    C, Hd = cfg.n_embd, cfg.n_hidden
    w = {"wte.weight": normal((cfg.vocab_size, C), 0.1), "norm_out.weight": np.ones(C)}
    for i in range(cfg.n_layer):
        b = f"blocks.{i}."
        for n, shape in (("attn.wq", (C, C)), ("attn.wk", (C, C)), ("attn.wv", (C, C)),
                         ("attn.wo", (C, C)), ("mlp.w_gate", (Hd, C)), ("mlp.w_up", (Hd, C)),
                         ("mlp.w_down", (C, Hd))):
            w[b + n + ".weight"] = normal(shape, 1.0 / math.sqrt(shape[1]))
        w[b + "norm_attn.weight"] = 1 + normal((C,), 0.1)
        w[b + "norm_mlp.weight"] = 1 + normal((C,), 0.1)
    return w
