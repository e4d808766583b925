"""Compiled (numba) kernels for the numpy backend: the integer engine's element-wise and
per-row steps fused into single passes, with no temporaries.

Each kernel computes exactly the integers of its numpy counterpart in `fixed.py` or
`transformer.py` (tests/test_kernels.py checks them against each other on random and
extreme inputs, and archives are byte-identical with and without them). Floats appear
only where the numpy path uses them: as exact carriers of integers below 2**53, where
every product, sum, power-of-two scaling and floor is exact, so no evaluation order,
vector width or fused multiply-add can change a result.

numba is optional: without it (or with LMPRESS_KERNELS=numpy, or for inputs too small to
repay loading it: backends.NumpyBackend) the engine runs the plain numpy code, more
slowly, to the same bytes. Compiled code is cached on disk (numba's cache=True), so only
the first use on a machine pays the few seconds of compiling.
"""

from __future__ import annotations

import math

import numpy as np

from .fixed import ACT_MAX

try:
    from numba import njit
except ImportError:  # the numpy path is complete without them
    njit = None

AVAILABLE = njit is not None
# An integer-valued float64 x with |x| <= 2**51, plus 1.5 * 2**52, holds x in its low bits:
# kernels write x + _MAGIC into an int64 array's memory and `_unmagic` subtracts the bits.
# Both are vector code; AVX2 has no float64 -> int64 conversion, so np.int64(x) is not.
_MAGIC = 6755399441055744.0
_MAGIC_BITS = int(np.float64(_MAGIC).view(np.int64))

if AVAILABLE:
    _jit = njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    _jit_int = njit(cache=True, nogil=True)

    @_jit_int
    def _rshift(x, s):
        """x / 2**s rounded half up (fixed.rshift)."""
        if s <= 0:
            return x * (1 << -s)
        return (x + (1 << (s - 1))) >> s

    @_jit_int
    def _div_round(num, den):
        return (2 * num + den) // (2 * den)

    @_jit_int
    def _div_round_fast(num, den):
        """_div_round (den > 0) by a float64 quotient corrected by the exact remainder
        when both sides are exact in float64; integer division otherwise."""
        a, b = 2 * num + den, 2 * den
        if -(1 << 52) < a < (1 << 52) and b < (1 << 52):
            af, bf = np.float64(a), np.float64(b)
            q = math.floor(af / bf)
            rem = af - q * bf
            if rem < 0.0:
                q -= 1.0
            elif rem >= bf:
                q += 1.0
            return np.int64(q)
        return a // b

    @_jit_int
    def _isqrt(n):
        """floor(sqrt(n)) for 0 <= n < 2**52 (NumpyBackend.isqrt)."""
        r = np.int64(math.sqrt(np.float64(n)))
        if r * r > n:
            r -= 1
        if (r + 1) * (r + 1) <= n:
            r += 1
        return r

    @_jit_int
    def _exp_row(logits, r, table, s, e):
        """e = the exp table at (max - logit) of row r, as float64; returns the row's sum."""
        V = logits.shape[1]
        last = table.shape[0] - 1
        top = logits[r, 0]
        for v in range(1, V):
            top = max(top, logits[r, v])
        total = 0
        for v in range(V):
            x = table[min(_rshift(top - logits[r, v], s), last)]
            e[v] = x
            total += x
        return total

    @_jit
    def _quotients(e, scale, total, q):
        """q = floor(e * scale / total), exactly, for e * scale < 2**53: a float64
        multiply by 1 / total (within 1 of the quotient) corrected by the exact remainder.
        np.floor keeps float64 (math.floor would make integers), so the loop is vector
        code; returns the sum of q, also exact (integers below 2**53)."""
        t = np.float64(total)
        inv = 1.0 / t
        acc = 0.0
        for v in range(e.shape[0]):
            a = e[v] * scale
            x = np.floor(a * inv)
            rem = a - x * t
            x = x - 1.0 if rem < 0.0 else x
            x = x + 1.0 if rem >= t else x
            q[v] = x
            acc += x
        return acc

    @_jit
    def _sum_below(q, n):
        acc = 0.0
        for v in range(n):
            acc += q[v]
        return acc

    @_jit_int
    def _freq_rows(logits, table, s, freq_bits, f64_exact, out, out_f):
        """fixed.freq_table. When every e << freq_bits is below 2**53 (`f64_exact`), the
        division (e << freq_bits) // total is `_quotients`: the same integer, several
        times faster than integer division, which the other case keeps; it writes `out_f`,
        `out` viewed as float64, with _MAGIC added (`_unmagic`)."""
        n, V = logits.shape
        e = np.empty(V, np.float64)
        scale = np.float64(1 << freq_bits)
        for r in range(n):
            total = _exp_row(logits, r, table, s, e)
            if not f64_exact:
                for v in range(V):
                    out[r, v] = 1 + (np.int64(e[v]) << freq_bits) // total
                continue
            _quotients(e, scale, total, out_f[r])
            for v in range(V):
                out_f[r, v] += 1.0 + _MAGIC

    @_jit_int
    def _freq_starts_rows(logits, want, table, s, freq_bits, starts, freqs, totals):
        """What the encoder needs of fixed.freq_table, without the table: for each row the
        (start, frequency) of the `want` ids and the total. Needs `f64_exact` (see
        `_freq_rows`); start = sum of the frequencies below, each 1 + its quotient."""
        n, V = logits.shape
        e = np.empty(V, np.float64)
        q = np.empty(V, np.float64)
        scale = np.float64(1 << freq_bits)
        for r in range(n):
            total = _exp_row(logits, r, table, s, e)
            totals[r] = V + np.int64(_quotients(e, scale, total, q))
            for j in range(want.shape[1]):
                w = want[r, j]
                starts[r, j] = w + np.int64(_sum_below(q, w))
                freqs[r, j] = 1 + np.int64(q[w])

    @_jit_int
    def _requant_rows(acc, w_mult, row_mult, s1, s2, out, out_f):
        """`requant_f64` (backends.py) row by row. With s2 > 0 every result is at most
        2**51 (IntegerLM._f64_mult's bound 2**52, then the shift), so it goes to `out_f`,
        `out` viewed as float64, with _MAGIC added (`_unmagic`); else to `out`."""
        n, m = acc.shape
        c1, k1 = np.float64(1 << (s1 - 1)), 2.0 ** -s1
        c2 = np.float64(1 << (s2 - 1)) if s2 > 0 else 0.0
        k2 = 2.0 ** -s2
        for r in range(n):
            rm = np.float64(min(max(row_mult[r], 0), 1 << 24))
            if s2 > 0:
                for j in range(m):
                    t = np.floor((np.float64(acc[r, j]) * w_mult[j] + c1) * k1) * rm
                    out_f[r, j] = np.floor((t + c2) * k2) + _MAGIC
            else:
                for j in range(m):
                    t = np.floor((np.float64(acc[r, j]) * w_mult[j] + c1) * k1) * rm
                    out[r, j] = np.int64(t * k2)

    @_jit_int
    def _rms_norm_quant_rows(x, gain, frac_shift, q, m):
        """fixed.rms_norm_quant; frac_shift = row_frac - gain_frac (>= 0)."""
        n, C = x.shape
        for r in range(n):
            ss = 0
            amax = 0
            for j in range(C):
                ss += x[r, j] * x[r, j]
                a = abs(x[r, j] * gain[j])
                if a > amax:
                    amax = a
            rms = min(max(_isqrt(min(max(ss // C, 0), (1 << 52) - 1)), 1), 1 << 40)
            amax = min(max(amax, 1), 1 << 40)
            for j in range(C):
                q[r, j] = _div_round_fast(ACT_MAX * (x[r, j] * gain[j]), amax)
            m[r] = _div_round(amax * (1 << frac_shift), ACT_MAX * rms)

    @_jit_int
    def _quant_rows(x, frac, row_frac, q, m):
        """fixed.quant_rows."""
        n, C = x.shape
        for r in range(n):
            amax = 0
            for j in range(C):
                a = abs(x[r, j])
                if a > amax:
                    amax = a
            amax = min(max(amax, 1), 1 << 44)
            for j in range(C):
                q[r, j] = _div_round_fast(ACT_MAX * x[r, j], amax)
            if row_frac >= frac:
                m[r] = _div_round(amax * (1 << (row_frac - frac)), ACT_MAX)
            else:
                m[r] = _div_round(amax, ACT_MAX << (frac - row_frac))

    @_jit_int
    def _silu_mul_rows(gate, up, table, s, silu_range, out):
        """The SwiGLU product of transformer._mlp: silu(gate) * up, silu by table."""
        n, C = gate.shape
        for r in range(n):
            for j in range(C):
                out[r, j] = _silu(gate[r, j], table, s, silu_range) * up[r, j]

    @_jit_int
    def _silu(g, table, s, silu_range):
        """silu(g) by table over -silu_range .. silu_range; 0 below, g above (fixed.swiglu)."""
        idx = _rshift(g, s) + (silu_range << 8)
        if idx >= (2 * silu_range) << 8:
            return g
        if idx < 0:
            return 0
        return table[min(idx, table.shape[0] - 1)]

    @_jit_int
    def _softmax_rows(scores, valid, s, table, out):
        """fixed.softmax_weights over rows (R, L, S) with a mask (L, S) shared by all R."""
        R, L, S = scores.shape
        last = table.shape[0] - 1
        for a in range(R):
            for li in range(L):
                top = np.int64(-(1 << 62))
                for j in range(S):
                    if valid[li, j] and scores[a, li, j] > top:
                        top = np.int64(scores[a, li, j])
                for j in range(S):
                    if valid[li, j]:
                        i = _rshift(top - np.int64(scores[a, li, j]), s)
                        out[a, li, j] = table[min(max(i, 0), last)]
                    else:
                        out[a, li, j] = 0

    @_jit_int
    def _rope_clip(x, cos, sin, s, bound, out):
        """transformer._rotate then the clip to +-bound, as float64: x (B, H, L, hs),
        cos and sin (L, hs / 2)."""
        B, H, L, hs = x.shape
        half = hs // 2
        for b in range(B):
            for h in range(H):
                for i in range(L):
                    for d in range(half):
                        out[b, h, i, d], out[b, h, i, d + half] = _rotate_clip(
                            x[b, h, i, d], x[b, h, i, d + half], cos[i, d], sin[i, d], s,
                            bound)

    @_jit_int
    def _rotate_clip(a, c, cos, sin, s, bound):
        """One rotary pair (a, c) turned by the integer (cos, sin) at frac s, each clipped
        to +-bound."""
        lo = _rshift(a * cos - c * sin, s)
        hi = _rshift(a * sin + c * cos, s)
        return min(max(lo, -bound), bound), min(max(hi, -bound), bound)

    _NEG = -(1 << 62)

    @_jit_int
    def _scores_i16(qv, Kh, valid, q16, sc):
        """Scores q . k_w in int32 for an int16 ring when sum_d |q_d| < 2**15: then every
        q_d fits int16 and |q . k_w| < 2**15 * 2**15 = 2**30, so the products and sums
        are exact int32 (vector multiply-adds of int16 pairs). Returns (False, 0) when
        q is too large (the caller takes `_scores_f64`), else (True, max over valid)."""
        W, hs = Kh.shape
        l1 = 0.0
        for d in range(hs):
            l1 += abs(qv[d])
        if l1 >= 32768.0:
            return False, 0
        for d in range(hs):
            q16[d] = np.int16(qv[d])
        for w in range(W):
            acc = 0
            for d in range(hs):
                acc += np.int32(q16[d]) * np.int32(Kh[w, d])
            sc[w] = acc
        top = _NEG
        for w in range(W):
            x = np.int64(sc[w])
            if valid[w] and x > top:
                top = x
        return True, top

    @_jit
    def _scores_f64(qv, Kh, valid, sc):
        """sc[w] = q . k_w for every ring slot, float64 sums of integers below 2**53
        (any ring type); returns the largest over valid slots."""
        W, hs = Kh.shape
        top = _NEG
        for w in range(W):
            acc = 0.0
            for d in range(hs):
                acc += qv[d] * Kh[w, d]
            x = np.int64(acc)
            sc[w] = x
            if valid[w] and x > top:
                top = x
        return top

    @_jit
    def _weighted(sc, valid, top, s, table, Vh, num, e):
        """e_w = the exp table (float64) at rshift(top - sc_w, s) over valid slots, else
        0; num = sum_w e_w v_w, four slots at a time; returns sum_w e_w. Integers below
        2**53 (|v| <= 2**20, e <= 2**16, W slots), so exact in any order."""
        W, hs = Vh.shape
        last = table.shape[0] - 1
        for d in range(hs):
            num[d] = 0.0
        esum = 0.0
        for w in range(W):
            x = 0.0
            if valid[w]:
                x = table[min(max(_rshift(top - sc[w], s), 0), last)]
            e[w] = x
            esum += x
        W4 = W - W % 4
        for w in range(0, W4, 4):
            e0, e1, e2, e3 = e[w], e[w + 1], e[w + 2], e[w + 3]
            for d in range(hs):
                num[d] += (e0 * Vh[w, d] + e1 * Vh[w + 1, d]) + \
                    (e2 * Vh[w + 2, d] + e3 * Vh[w + 3, d])
        for w in range(W4, W):
            x = e[w]
            for d in range(hs):
                num[d] += x * Vh[w, d]
        return esum

    @_jit
    def _attend_one(qv, Kh, Vh, valid, s, table, i16, sc, sc32, q16, num, e, out):
        """out (hs,) = one query's exact attention over one head's ring: sum_w e_w v_w /
        sum_w e_w, rounded half up, with e = exp(score - max) by `table` (float64) over
        the valid slots. `i16`: the ring is int16, so small queries take `_scores_i16`.
        sc, sc32, q16, num, e: scratch."""
        fast, top = False, 0
        if i16:
            fast, top = _scores_i16(qv, Kh, valid, q16, sc32)
        if fast:
            esum = _weighted(sc32, valid, top, s, table, Vh, num, e)
        else:
            top = _scores_f64(qv, Kh, valid, sc)
            esum = _weighted(sc, valid, top, s, table, Vh, num, e)
        den = np.int64(esum)
        for d in range(out.shape[0]):
            out[d] = _div_round_fast(np.int64(num[d]), den)

    @_jit
    def _attend_chunk(q, k, v, keys, values, valid, slots, s, table, out, i16):
        """Exact attention for L consecutive positions (L = 1: a decoding step), position
        by position as a decoder steps: write the key and value (B, L, Hkv, hs) of
        position l into its ring slot slots[l] of the ring (B, Hkv, W, hs), then attend
        (`_attend_one`) with its queries q (B, L, Hkv, G, hs) over the slots valid[l]
        -> out (B, L, Hkv, G, hs). Each head's ring stays in cache for the whole chunk."""
        B, L, H, G, hs = q.shape
        W = keys.shape[2]
        sc, sc32 = np.empty(W, np.int64), np.empty(W, np.int32)
        q16, num, e = np.empty(hs, np.int16), np.empty(hs, np.float64), np.empty(W, np.float64)
        for b in range(B):
            for h in range(H):
                Kh, Vh = keys[b, h], values[b, h]
                for li in range(L):
                    for d in range(hs):
                        Kh[slots[li], d] = k[b, li, h, d]
                        Vh[slots[li], d] = v[b, li, h, d]
                    for g in range(G):
                        _attend_one(q[b, li, h, g], Kh, Vh, valid[li], s, table, i16, sc,
                                    sc32, q16, num, e, out[b, li, h, g])

    @_jit
    def _matmul_rows(x, wt, out):
        """out = x @ wt.T for a few float32 rows x (M, K) and int8 (or float32) weights wt
        (N, K), as dot products: 4 rows by 2 columns at a time, so each load of x or wt
        serves several products, then the last M % 4 rows 4 columns at a time. Exact in
        any order when K * 127**2 < 2**24 (the bound under which `NumpyBackend.matrix`
        chose float32): every partial sum is an integer below 2**24. A decoding step
        reads each weight once for its few rows, so reading int8 instead of float32
        matters: 12 rows of the default model 1.3x faster, 1 row 2.2x; and 1.4-2x
        BLAS's sgemm, which is tuned for large blocks (2-core CI machine, 2026-11-30)."""
        M, K = x.shape
        N = wt.shape[0]
        M4 = M - M % 4
        for m0 in range(0, M4, 4):
            for n in range(0, N - 1, 2):
                s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = np.float32(0)
                for k in range(K):
                    w0, w1 = np.float32(wt[n, k]), np.float32(wt[n + 1, k])
                    x0, x1, x2, x3 = x[m0, k], x[m0 + 1, k], x[m0 + 2, k], x[m0 + 3, k]
                    s0 += x0 * w0
                    s1 += x1 * w0
                    s2 += x2 * w0
                    s3 += x3 * w0
                    t0 += x0 * w1
                    t1 += x1 * w1
                    t2 += x2 * w1
                    t3 += x3 * w1
                out[m0, n], out[m0 + 1, n], out[m0 + 2, n], out[m0 + 3, n] = s0, s1, s2, s3
                out[m0, n + 1], out[m0 + 1, n + 1] = t0, t1
                out[m0 + 2, n + 1], out[m0 + 3, n + 1] = t2, t3
            if N % 2:
                for i in range(4):
                    out[m0 + i, N - 1] = _dot(x, m0 + i, wt, N - 1)
        N4 = N - N % 4
        for m in range(M4, M):
            for n in range(0, N4, 4):
                s0 = s1 = s2 = s3 = np.float32(0)
                for k in range(K):
                    xk = x[m, k]
                    s0 += xk * np.float32(wt[n, k])
                    s1 += xk * np.float32(wt[n + 1, k])
                    s2 += xk * np.float32(wt[n + 2, k])
                    s3 += xk * np.float32(wt[n + 3, k])
                out[m, n], out[m, n + 1], out[m, n + 2], out[m, n + 3] = s0, s1, s2, s3
            for n in range(N4, N):
                out[m, n] = _dot(x, m, wt, n)

    @_jit
    def _dot(x, m, wt, n):
        acc = np.float32(0)
        for k in range(x.shape[1]):
            acc += x[m, k] * np.float32(wt[n, k])
        return acc


FEW_ROWS = 32  # up to this many rows, `matmul_rows` beats BLAS (see _matmul_rows)


def matmul_rows(x: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """x (M, K) @ wt.T for float32 x and int8 (or float32) wt (N, K), C-contiguous,
    M <= FEW_ROWS."""
    out = np.empty((x.shape[0], wt.shape[0]), np.float32)
    _matmul_rows(x, wt, out)
    return out


def _rows(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.reshape(-1, x.shape[-1]))


def _unmagic(out: np.ndarray) -> np.ndarray:
    """The int64 array a kernel filled with float64 x + _MAGIC: now x (see _MAGIC)."""
    out -= _MAGIC_BITS
    return out


def _f64_exact(exp_table, freq_bits: int) -> bool:
    return (int(exp_table.max()) << freq_bits) < 2**53 and exp_table.min() >= 0


def freq_table(logits, exp_table, shift: int, freq_bits: int):
    out = np.empty(logits.shape, np.int64)
    rows = out.reshape(-1, logits.shape[-1])
    exact = _f64_exact(exp_table, freq_bits)
    _freq_rows(_rows(logits), exp_table, shift, freq_bits, exact, rows, rows.view(np.float64))
    return _unmagic(out) if exact else out


def freq_starts(logits, want, exp_table, shift: int, freq_bits: int):
    """logits (..., V), want ids (..., k) -> the (start, freq) of each wanted id in
    `freq_table`'s table (..., k) and the tables' totals (...); None when the table's
    quotients need integer division (then take them from the table)."""
    if not _f64_exact(exp_table, freq_bits):
        return None
    k = want.shape[-1]
    starts, freqs = (np.empty(want.shape, np.int64) for _ in range(2))
    totals = np.empty(logits.shape[:-1], np.int64)
    _freq_starts_rows(_rows(logits), np.ascontiguousarray(want.reshape(-1, k)), exp_table,
                      shift, freq_bits, starts.reshape(-1, k), freqs.reshape(-1, k),
                      totals.reshape(-1))
    return starts, freqs, totals


def requant_f64(acc, w_mult, row_mult, s1: int, s2: int):
    out = np.empty(acc.shape, np.int64)
    rows = out.reshape(-1, acc.shape[-1])
    _requant_rows(acc.reshape(-1, acc.shape[-1]), w_mult,
                  np.ascontiguousarray(row_mult.reshape(-1)), s1, s2, rows,
                  rows.view(np.float64))
    return _unmagic(out) if s2 > 0 else out


def rms_norm_quant(x, gain, frac_shift: int):
    q = np.empty(x.shape, np.float32)  # int8 values, ready for the float32 product
    m = np.empty(x.shape[:-1] + (1,), np.int64)
    _rms_norm_quant_rows(_rows(x), gain, frac_shift, q.reshape(-1, x.shape[-1]),
                         m.reshape(-1))
    return q, m


def quant_rows(x, frac: int, row_frac: int):
    q = np.empty(x.shape, np.float32)  # int8 values, ready for the float32 product
    m = np.empty(x.shape[:-1] + (1,), np.int64)
    _quant_rows(_rows(x), frac, row_frac, q.reshape(-1, x.shape[-1]), m.reshape(-1))
    return q, m


def silu_mul(gate, up, table, shift: int, silu_range: int):
    out = np.empty(gate.shape, np.int64)
    _silu_mul_rows(_rows(gate), _rows(up), table, shift, silu_range,
                   out.reshape(-1, gate.shape[-1]))
    return out


def rope_clip(x, cos, sin, shift: int, bound: int):
    """x (B, H, L, hs) int64 rotated by cos/sin (L, hs / 2) and clipped, as float64."""
    out = np.empty(x.shape, np.float64)
    _rope_clip(x, cos, sin, shift, bound, out)
    return out


def softmax_weights(scores, valid, shift: int, table):
    """scores (..., L, S), valid (L, S) or None."""
    L, S = scores.shape[-2:]
    mask = np.ones((L, S), np.bool_) if valid is None else np.ascontiguousarray(valid)
    out = np.empty(scores.shape, np.int64)
    _softmax_rows(np.ascontiguousarray(scores.reshape(-1, L, S)), mask, shift, table,
                  out.reshape(-1, L, S))
    return out


def attend_chunk(q, k, v, keys, values, valid, slots, shift: int, table):
    """q (B, L, Hkv, G, hs), k and v (B, L, Hkv, hs) float64 of L consecutive positions;
    the ring (B, Hkv, W, hs) int16, float32 or float64 (integers of at most 2**20, each
    type holding its ring's exactly), which each position's key and value are written
    into (in place); valid (L, W) bool: the slots each position sees once its own is
    written; slots (L,). Returns (B, L, Hkv, G, hs) int64 (`_attend_chunk`)."""
    out = np.empty(q.shape, np.int64)
    _attend_chunk(np.ascontiguousarray(q), np.ascontiguousarray(k), np.ascontiguousarray(v),
                  keys, values, np.ascontiguousarray(valid), np.asarray(slots, np.int64),
                  shift, np.asarray(table, np.float64), out, keys.dtype == np.int16)
    return out
