"""The integer transformer's blocks in a few compiled calls per layer, for decoding steps
and the encoder's chunks alike (the numpy backend with its compiled kernels).

A decoder advances its streams one token at a time, so each step of `IntegerLM.trunk`
was some thirty small numpy operations per layer. For a batch of 12-32 streams their
Python overhead was about 5.5 s of a 35 s level-6 decode of 100 KB, and it holds the GIL:
with `-T 2` the two threads' shares of a batch could not overlap it. Here a layer is four
matrix products (`NumpyBackend.matmul_raw`, which releases the GIL) and four fused kernels
(nogil), which compute the same integers as the general path, element by element, with
the same helpers (kernels.py): requantization, rotary, the ring write, attention, SwiGLU
and the row quantizations. A chunk of L positions is the same with B * L rows; its
attention goes position by position (kernels._attend_chunk), as the decoder's steps do,
and its residual stream is updated in place instead of through int64 temporaries.
tests/test_step.py compares this path with the general one; the golden archives bind both.

Used for models without QKV biases or per-head norms whose every product may be rescaled
in float64 (`usable`); everything else takes the general path.
"""

from __future__ import annotations

import numpy as np

from . import kernels as K

_jit_int = K._jit_int


def usable(lm) -> bool:
    """Whether `layers` can run `lm`'s blocks (the compiled kernels are loaded, the
    architecture is plain, and every requantization has its float64 multipliers)."""
    c = lm.cfg
    if lm.xp.kernels is None or c.qkv_bias or c.qk_norm or c.head_size % 2:
        return False
    return all(layer[n][2] is not None for layer in lm.layers
               for n in ("wqkv", "wo", "w_gate_up", "w_down"))


@_jit_int
def _rq(a, wm, rm, c1, k1, c2, k2, s2_pos):
    """`requant_f64` of one accumulator (kernels._requant_rows), as an int64."""
    t = np.floor((np.float64(a) * wm + c1) * k1) * rm
    if s2_pos:
        return np.int64(np.floor((t + c2) * k2))
    return np.int64(t * k2)


@_jit_int
def _consts(s):
    """(c, k, s > 0) of a rounding shift by s, as _requant_rows takes them."""
    c = np.float64(1 << (s - 1)) if s > 0 else 0.0
    return c, 2.0 ** -s, s > 0


@_jit_int
def _row_mult(m):
    return np.float64(min(max(m, 0), 1 << 24))


@_jit_int
def _rotated_heads(acc, r, col, wm, rm, s1, s2, cos, sin, rope_s, bound, out):
    """Heads out (H, hs) from columns col.. of acc row r: requantized, rotated by the
    row's (cos, sin) and clipped (kernels._rope_clip)."""
    H, hs = out.shape
    half = hs // 2
    c1, k1, _ = _consts(s1)
    c2, k2, pos2 = _consts(s2)
    for h in range(H):
        base = col + h * hs
        for d in range(half):
            a = _rq(acc[r, base + d], wm[base + d], rm, c1, k1, c2, k2, pos2)
            c = _rq(acc[r, base + d + half], wm[base + d + half], rm, c1, k1, c2, k2, pos2)
            out[h, d], out[h, d + half] = K._rotate_clip(a, c, cos[d], sin[d], rope_s, bound)


@_jit_int
def _qkv(acc, rowm, wm, s1, s2_qk, s2_v, cos, sin, rope_s, bound, q, k, v):
    """The q|k|v product's rows (B * L, N), row b * L + l for stream b at position l, into
    q (B, L, H, hs) and k, v (B, L, Hkv, hs): requantized, q and k rotated at their
    position (cos, sin (L, hs / 2)), all clipped to +-bound."""
    B, L, Hkv, hs = k.shape
    nq = q.shape[2] * hs
    c1, k1, _ = _consts(s1)
    c2, k2, pos2 = _consts(s2_v)
    for b in range(B):
        for li in range(L):
            r = b * L + li
            rm = _row_mult(rowm[r])
            _rotated_heads(acc, r, 0, wm, rm, s1, s2_qk, cos[li], sin[li], rope_s, bound,
                           q[b, li])
            _rotated_heads(acc, r, nq, wm, rm, s1, s2_qk, cos[li], sin[li], rope_s, bound,
                           k[b, li])
            base = nq + Hkv * hs
            for h in range(Hkv):
                for d in range(hs):
                    j = base + h * hs + d
                    x = _rq(acc[r, j], wm[j], rm, c1, k1, c2, k2, pos2)
                    v[b, li, h, d] = min(max(x, -bound), bound)


@_jit_int
def _qkv_attend(acc, rowm, wm, s1, s2_qk, s2_v, cos, sin, rope_s, bound, keys, values,
                slots, limit, valid, att_s, exp_table, G, v_frac, row_frac, oq, om):
    """From the q|k|v product of L positions of B streams (rows b * L + l): queries and
    keys rotated and clipped, values clipped (`_qkv`), then attention position by
    position, each key and value written at its ring slot first (kernels._attend_chunk;
    valid (L, W), `exp_table` as float64), and its output quantized per row into oq
    (B * L, A), om (B * L,).
    Returns False, writing nothing, when a key or value exceeds `limit` (an int16 ring
    must widen first; transformer._ring_fit)."""
    L = slots.shape[0]
    B = acc.shape[0] // L
    Hkv, hs = keys.shape[1], keys.shape[3]
    q = np.empty((B, L, Hkv * G, hs), np.float64)
    k = np.empty((B, L, Hkv, hs), np.float64)
    v = np.empty((B, L, Hkv, hs), np.float64)
    _qkv(acc, rowm, wm, s1, s2_qk, s2_v, cos, sin, rope_s, bound, q, k, v)
    for x in (k, v):
        for b in range(B):
            for li in range(L):
                for h in range(Hkv):
                    for d in range(hs):
                        if abs(x[b, li, h, d]) > limit:
                            return False
    out = np.empty((B, L, Hkv, G, hs), np.int64)
    K._attend_chunk(q.reshape(B, L, Hkv, G, hs), k, v, keys, values, valid, slots, att_s,
                    exp_table, out, limit < 2**15)
    K._quant_rows(out.reshape(B * L, Hkv * G * hs), v_frac, row_frac, oq, om)
    return True


@_jit_int
def _residual(h, acc, wm, rowm, s1, s2):
    """h += acc requantized (the block's output at res_frac), in place."""
    c1, k1, _ = _consts(s1)
    c2, k2, pos2 = _consts(s2)
    for b in range(h.shape[0]):
        rm = _row_mult(rowm[b])
        for j in range(h.shape[1]):
            h[b, j] += _rq(acc[b, j], wm[j], rm, c1, k1, c2, k2, pos2)


@_jit_int
def _swiglu_quant(acc, rowm, wm, s1, s2, table, silu_s, silu_range, frac, row_frac,
                  hq, hm):
    """gate|up (B, 2 Hd) requantized, silu(gate) * up (kernels._silu_mul_rows), then
    quantized per row into hq (B, Hd), hm (B,)."""
    B, Hd = hq.shape
    c1, k1, _ = _consts(s1)
    c2, k2, pos2 = _consts(s2)
    prod = np.empty((B, Hd), np.int64)
    for b in range(B):
        rm = _row_mult(rowm[b])
        for j in range(Hd):
            g = _rq(acc[b, j], wm[j], rm, c1, k1, c2, k2, pos2)
            u = _rq(acc[b, Hd + j], wm[Hd + j], rm, c1, k1, c2, k2, pos2)
            prod[b, j] = K._silu(g, table, silu_s, silu_range) * u
    K._quant_rows(prod, frac, row_frac, hq, hm)


def layers(lm, st, pos: np.ndarray, h: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """`lm`'s blocks for L consecutive positions `pos` (L,) of B streams: h (B, L, C) at
    res_frac -> the residual stream after the last block; valid (L, W): the ring slots
    each position sees once its own is written (transformer._visible). Writes the rings
    of `st` (not slot_pos/pos)."""
    from .transformer import QK_CLIP, _narrow_ring, _widen_ring

    xp, fp, c = lm.xp, lm.fp, lm.cfg
    B, L, C = h.shape
    R = B * L  # rows b * L + l
    h = np.array(h.reshape(R, C), dtype=np.int64)
    slots, G = pos % c.window, c.n_head // c.kv_heads
    cos, sin = lm.rope_cos[pos], lm.rope_sin[pos]
    s1 = fp.w_frac - 8
    exp_f64 = lm.exp_table.astype(np.float64)  # the attention kernel's table type

    def s2(out_frac: int) -> int:
        return fp.row_frac + 8 - out_frac

    def norm(gain):
        xq, m = K.rms_norm_quant(h, gain, fp.row_frac - fp.gain_frac)
        return xq, m.reshape(R)

    oq = np.empty((R, c.attn_width), np.float32)
    hq = np.empty((R, c.n_hidden), np.float32)
    om, hm = np.empty(R, np.int64), np.empty(R, np.int64)
    for i, layer in enumerate(lm.layers):
        xq, m = norm(layer["norm_attn"])
        w, _, wm = layer["wqkv"]
        acc = xp.matmul_raw(xq, w)
        if st.keys[i].dtype == np.float64:  # a new ring
            _narrow_ring(st, i)
        for _ in range(2):
            limit = 2**15 - 1 if st.keys[i].dtype == np.int16 else QK_CLIP
            if _qkv_attend(acc, m, wm, s1, s2(fp.qk_frac), s2(fp.v_frac), cos, sin,
                           fp.rope_frac, QK_CLIP, st.keys[i], st.values[i], slots, limit,
                           valid, 2 * fp.qk_frac - fp.exp_step_bits, exp_f64, G,
                           fp.v_frac, fp.row_frac, oq, om):
                break
            _widen_ring(st, i)
        w, _, wm = layer["wo"]
        _residual(h, xp.matmul_raw(oq, w), wm, om, s1, s2(fp.res_frac))
        xq, m = norm(layer["norm_mlp"])
        w, _, wm = layer["w_gate_up"]
        _swiglu_quant(xp.matmul_raw(xq, w), m, wm, s1, s2(fp.hidden_frac),
                      lm.silu_table, fp.hidden_frac - 8, fp.silu_range,
                      2 * fp.hidden_frac, fp.row_frac, hq, hm)
        w, _, wm = layer["w_down"]
        _residual(h, xp.matmul_raw(hq, w), wm, hm, s1, s2(fp.res_frac))
    return h.reshape(B, L, C)
