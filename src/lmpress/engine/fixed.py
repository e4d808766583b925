"""Fixed-point building blocks of the integer engine, written once for every backend.

Conventions: a tensor "at frac F" holds round(real * 2**F) as int64. Weight scales are
integer multipliers at frac W_FRAC, per-row activation scales multipliers at ROW_FRAC.
Rounding is always floor(x / 2**s + 1/2) (arithmetic shift), the same on every backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

ACT_MAX = 127  # activations enter matrix products as int8 values


@dataclass(frozen=True)
class FixedPoint:
    """Bit positions of the integer engine; stored in each model file's metadata."""

    res_frac: int = 12  # residual stream
    gain_frac: int = 12  # RMSNorm gains
    w_frac: int = 28  # per-channel weight scale multipliers
    row_frac: int = 20  # per-row activation scale multipliers
    qk_frac: int = 10  # queries and keys after rotary (q pre-scaled by 1/sqrt(head))
    v_frac: int = 10  # values and attention output
    hidden_frac: int = 10  # SwiGLU gate and up projections
    logit_frac: int = 12  # output logits, in nats
    rope_frac: int = 14  # rotary cos/sin table
    exp_frac: int = 16  # exp table values (1.0 = 2**16)
    exp_step_bits: int = 8  # exp table index step = 2**-8 nats
    exp_range: int = 24  # exp table covers 0 .. 24 nats; beyond is 0
    silu_range: int = 16  # silu table covers -16 .. 16; beyond: 0 or x
    freq_bits: int = 28  # frequency tables total 2**28 plus one per token
    # Fields added later; left out of the file while they hold their defaults (see
    # EXTENSION_FIELDS), so older model files keep their bytes.
    freq_exp_frac: int = 0  # frac of a finer exp table for the frequency table; 0 = exp_frac
    qk_norm_frac: int = 0  # q/k before a per-head RMSNorm (config.qk_norm); 0 = unused

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: v for k, v in d.items() if k not in EXTENSION_FIELDS or v != 0}

    @property
    def extended(self) -> bool:
        return any(getattr(self, f) != 0 for f in EXTENSION_FIELDS)


EXTENSION_FIELDS = ("freq_exp_frac", "qk_norm_frac")


def rshift(xp, x, s: int):
    """x / 2**s rounded half up; a left shift when s < 0."""
    if s <= 0:
        return x * (1 << -s)
    return (x + (1 << (s - 1))) >> s


def div_round(xp, num, den):
    """num / den rounded half up, den > 0."""
    return (2 * num + den) // (2 * den)


def quant_rows(xp, x, frac: int, fp: FixedPoint):
    """int8 values q and a per-row multiplier m for `x` at frac `frac`, so that the real
    row is q * m / 2**row_frac."""
    if xp.kernels is not None:
        return xp.kernels.quant_rows(x, frac, fp.row_frac)
    amax = xp.clip(xp.amax(abs(x), -1), 1, 2**44)
    q = div_round(xp, ACT_MAX * x, amax)
    if fp.row_frac >= frac:
        m = div_round(xp, amax * (1 << (fp.row_frac - frac)), ACT_MAX)
    else:
        m = div_round(xp, amax, ACT_MAX << (frac - fp.row_frac))
    return q, m


def rms_norm_quant(xp, x, gain, fp: FixedPoint):
    """RMSNorm(x) * gain, quantized per row: returns (int8 q, row multiplier).

    The normalisation only scales a row, so it enters the row multiplier:
    real row scale = max|x*g| / (127 * rms(x) * 2**gain_frac).
    """
    if xp.kernels is not None:
        return xp.kernels.rms_norm_quant(x, gain, fp.row_frac - fp.gain_frac)
    n = x.shape[-1]
    mean_sq = xp.sum(x * x, -1) // n
    rms = xp.clip(xp.isqrt(xp.clip(mean_sq, 0, 2**52 - 1)), 1, 2**40)
    xg = x * gain  # at res_frac + gain_frac
    amax = xp.clip(xp.amax(abs(xg), -1), 1, 2**40)
    q = div_round(xp, ACT_MAX * xg, amax)
    m = div_round(xp, amax * (1 << (fp.row_frac - fp.gain_frac)), ACT_MAX * rms)
    return q, m


def requant(xp, acc, w_mult, row_mult, out_frac: int, fp: FixedPoint):
    """Exact accumulator -> fixed point at `out_frac`: acc * w_mult * row_mult, rescaled.

    Two rounding steps keep every product inside int64: first by the weight scale (keeping
    8 extra bits), then by the row scale.
    """
    t = rshift(xp, acc * w_mult, fp.w_frac - 8)
    t = xp.clip(t, -(2**38), 2**38)
    return rshift(xp, t * xp.clip(row_mult, 0, 2**24), fp.row_frac + 8 - out_frac)


def lookup(xp, table, idx):
    """table[idx] with idx clipped to the table."""
    return table[xp.clip(idx, 0, table.shape[0] - 1)]


def swiglu(xp, gate, up, silu_table, fp: FixedPoint):
    """silu(gate) * up for gate and up at hidden_frac (product at 2 * hidden_frac); silu
    by table over -silu_range .. silu_range, 0 below and the identity above."""
    r = fp.silu_range
    if xp.kernels is not None:
        return xp.kernels.silu_mul(gate, up, silu_table, fp.hidden_frac - 8, r)
    idx = rshift(xp, gate, fp.hidden_frac - 8) + (r << 8)
    act = lookup(xp, silu_table, idx)
    act = xp.where(idx >= (2 * r) << 8, gate, xp.where(idx < 0, 0, act))
    return act * up


def softmax_weights(xp, scores, valid, score_frac: int, exp_table, fp: FixedPoint):
    """Unnormalised integer softmax weights exp(score - max) along the last axis, 0 where
    `valid` is false (None: all valid). `scores` are at frac `score_frac`, in nats;
    `valid` is (L, S) for scores (..., L, S)."""
    if xp.kernels is not None:
        return xp.kernels.softmax_weights(scores, valid, score_frac - fp.exp_step_bits,
                                          exp_table)
    s = scores if valid is None else xp.where(valid, scores, -(2**62))
    top = xp.amax(s, -1)
    e = lookup(xp, exp_table, rshift(xp, top - s, score_frac - fp.exp_step_bits))
    return e if valid is None else xp.where(valid, e, 0)


def freq_table(xp, logits, exp_table, fp: FixedPoint):
    """THE step from model output to the coder's table, shared by encoder and decoder.

    logits (..., V) at frac logit_frac -> int64 frequencies, every token >= 1, totals in
    [2**freq_bits, 2**freq_bits + V].
    """
    if xp.kernels is not None:
        return xp.kernels.freq_table(logits, exp_table, fp.logit_frac - fp.exp_step_bits,
                                     fp.freq_bits)
    top = xp.amax(logits, -1)
    e = lookup(xp, exp_table, rshift(xp, top - logits, fp.logit_frac - fp.exp_step_bits))
    total = xp.sum(e, -1)
    # A shift, not a multiply: int64 multiplies have no vector instruction on x86 (AVX2).
    # Integer division stays: float64 division plus an exact correction measured slower.
    return 1 + (e << fp.freq_bits) // total
