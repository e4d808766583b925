"""Integer-exact Llama-style inference. Every step from token ids to the coder's
frequency table is integer arithmetic, so numpy and torch (CPU or CUDA), batched or
stepwise, any thread count, give the same tables bit for bit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.weights import IntegerWeights
from .backends import get_backend
from .fixed import (
    ACT_MAX,
    freq_table,
    quant_rows,
    requant,
    rms_norm_quant,
    rshift,
    softmax_weights,
    swiglu,
)

QK_CLIP = 2**20  # |q|, |k|, |v| bound: keeps attention products exact in float64


@dataclass
class StreamState:
    """KV ring buffers of the last `window` positions for B streams advancing together."""

    pos: int  # position of the next token
    keys: list[Any]  # per layer (B, Hkv, W, hs) float64 (int16/float32: _narrow_ring), rotated
    values: list[Any]  # per layer (B, Hkv, W, hs), as keys
    slot_pos: Any  # (W,) int64 position held by each ring slot, -1 = empty


_INT16_MAX = 2**15 - 1


def _fits_int16(*arrays) -> bool:
    return all(float(np.abs(a).max(initial=0)) <= _INT16_MAX for a in arrays)


def _narrow_ring(st: StreamState, i: int) -> None:
    """A decoding step's ring in the narrowest type that holds it exactly: int16 while
    every value fits (trained models' keys and values stay near 2**13), else float32
    (|x| <= QK_CLIP < 2**24). The integers are the same; int16 halves the bytes each step
    reads (7% of the attention kernel, which its arithmetic bounds; docs/ENGINE.md)."""
    narrow = np.int16 if _fits_int16(st.keys[i], st.values[i]) else np.float32
    st.keys[i], st.values[i] = st.keys[i].astype(narrow), st.values[i].astype(narrow)


def _widen_ring(st: StreamState, i: int) -> None:
    """Layer i's ring in float32 (exact for |x| <= QK_CLIP), for a value int16 cannot hold."""
    st.keys[i], st.values[i] = (a.astype(np.float32) for a in (st.keys[i], st.values[i]))


def _ring_fit(st: StreamState, i: int, k, v) -> None:
    """Layer i's ring made ready for keys and values (B, Hkv, l, hs): an int16 ring widens
    to float32 if one of them does not fit."""
    if st.keys[i].dtype == np.int16 and not _fits_int16(k, v):
        _widen_ring(st, i)


def _ring_write(st: StreamState, i: int, slots, k, v) -> None:
    """Write keys and values (B, Hkv, l, hs) into layer i's ring at `slots` (`_ring_fit`)."""
    _ring_fit(st, i, k, v)
    st.keys[i][:, :, slots] = k
    st.values[i][:, :, slots] = v


def _visible(masks, slots, W: int) -> np.ndarray:
    """(L, W): the ring slots each position of a step or chunk sees once its own key is
    written (compiled attention writes position by position): the ring before it where
    the window reaches (`IntegerLM._masks`), and the chunk's slots up to the position."""
    ring_ok, chunk_ok = masks
    valid = np.ones((len(slots), W), np.bool_) if ring_ok is None else ring_ok.copy()
    if chunk_ok is not None:  # a chunk's own slots, once written, are seen causally
        valid[:, slots] |= chunk_ok
    return valid


def _swap(x):
    """The last two axes swapped (a view), for numpy arrays and torch tensors."""
    return x.swapaxes(-1, -2) if isinstance(x, np.ndarray) else x.transpose(-1, -2)


class IntegerLM:
    def __init__(self, weights: IntegerWeights, backend: str | None = None):
        self.w = weights
        self.cfg = weights.config
        self.fp = weights.fixed
        self.xp = xp = get_backend(backend)
        t = weights.tensors
        C, Hd, A = self.cfg.n_embd, self.cfg.n_hidden, self.cfg.attn_width

        def lin(name: str, k: int, *more: str):
            """The matrix (k, out) of `name` -- with `more` side by side, one product for
            linears that read the same input (q|k|v, gate|up); split by `_linear_parts`."""
            names = (name, *more)
            q = np.concatenate([t[n + ".q"] for n in names], 0)
            m = np.concatenate([np.asarray(t[n + ".m"], dtype=np.int64) for n in names])
            return (xp.matrix(np.ascontiguousarray(q.T), k * ACT_MAX**2), xp.asint(m),
                    self._f64_mult(m, k))

        self.wte_q = xp.narrow(t["wte.q"])  # int8; rows become int64 when scaled
        self.wte_m = xp.asint(t["wte.m"])
        self.head = lin("wte", C) if self.cfg.tie_embeddings else lin("head", C)
        self.layers = []
        for i in range(self.cfg.n_layer):
            p = f"layers.{i}."
            self.layers.append({
                "norm_attn": xp.asint(t[p + "norm_attn"]),
                "norm_mlp": xp.asint(t[p + "norm_mlp"]),
                "wqkv": lin(p + "wq", C, p + "wk", p + "wv"),
                "w_gate_up": lin(p + "w_gate", C, p + "w_up"),
                "wo": lin(p + "wo", A),
                "w_down": lin(p + "w_down", Hd),
                **{n: xp.asint(t[p + n]) for n in ("bq", "bk", "bv") if self.cfg.qkv_bias},
                **{n: xp.asint(t[p + n]) for n in ("q_norm", "k_norm") if self.cfg.qk_norm},
            })
        self.norm_out = xp.asint(t["norm_out"])
        self.exp_table = xp.asint(t["tables.exp"])
        # the frequency table's exp: a finer table when the model file has one
        self.freq_exp = xp.asint(t["tables.exp_freq"]) if self.fp.freq_exp_frac \
            else self.exp_table
        self.silu_table = xp.asint(t["tables.silu"])
        self.rope_cos = xp.asint(t["tables.rope_cos"])
        self.rope_sin = xp.asint(t["tables.rope_sin"])
        self._step = None  # step.py, when usable (`_fused_step`); False when not

    def _f64_mult(self, w_mult: np.ndarray, k: int):
        """float64 weight multipliers when `requant` may run in float64 for a product over
        k int8 x int8 terms, else None. Proof: |acc| <= k*127**2 =: A; the first product
        |acc * w_mult| <= A*max(w_mult) < 2**52 is exact; after the shift by s1 = w_frac - 8,
        |t| <= A*max(w_mult)/2**s1 + 1, under the int64 path's clip of 2**38 (so that clip
        never acts), and |t * row_mult| <= (A*max(w_mult)/2**s1 + 1) * 2**24 < 2**52."""
        if not hasattr(self.xp, "requant_f64") or w_mult.size == 0:
            return None
        bound = k * ACT_MAX**2 * int(np.abs(w_mult).max())
        t_max = bound // 2 ** (self.fp.w_frac - 8) + 1
        if bound >= 2**52 or t_max >= 2**38 or t_max * 2**24 >= 2**52:
            return None
        return w_mult.astype(np.float64)

    def _fused_step(self) -> bool:
        """Whether one-position steps take step.py's fused blocks (decided once the
        backend has loaded its compiled kernels, which it may do late: `prepare`)."""
        if self._step is None and self.xp.kernels is not None:
            from . import step

            self._step = step if step.usable(self) else False
        return bool(self._step)

    # -- state ---------------------------------------------------------------------------
    def new_state(self, batch: int) -> StreamState:
        c, xp = self.cfg, self.xp
        shape = (batch, c.kv_heads, c.window, c.head_size)
        if xp.kernels is not None:
            # the compiled paths narrow a new ring at its first use, and zeros always fit
            # int16: start there, an eighth of float64's bytes (max-v1's rings for 34
            # streams: 107 MB instead of 856 MB)
            keys = [np.zeros(shape, np.int16) for _ in range(c.n_layer)]
        else:
            keys = [xp.f64(xp.full(shape, 0)) for _ in range(c.n_layer)]
        return StreamState(0, keys, [k * 0 for k in keys], xp.full((c.window,), -1))

    # -- blocks --------------------------------------------------------------------------
    def _linear(self, xq, row_m, lin, out_frac: int):
        """int8 rows xq (with row multipliers) times a weight matrix, at `out_frac`."""
        return self._linear_parts(xq, row_m, lin, [(None, out_frac)])[0]

    def _linear_parts(self, xq, row_m, lin, parts: list[tuple[int | None, int]]):
        """`_linear` of side-by-side matrices (`lin(name, k, *more)`): one product, then
        each part of (columns or None = the rest, out_frac) rescaled on its own; the
        integers equal those of separate products."""
        w, w_mult, w_mult_f64 = lin
        xp, fp, out, a = self.xp, self.fp, [], 0
        acc = xp.matmul_raw(xq, w) if w_mult_f64 is not None else xp.matmul(xq, w)
        for n, out_frac in parts:
            b = None if n is None else a + n
            if w_mult_f64 is not None:  # exact: see _f64_mult
                out.append(xp.requant_f64(acc[..., a:b], w_mult_f64[a:b], row_m,
                                          fp.w_frac - 8, fp.row_frac + 8 - out_frac))
            else:
                out.append(requant(xp, acc[..., a:b], w_mult[a:b], row_m, out_frac, fp))
            a = b
        return out

    def _rotate(self, x, pos):
        """x (B, H, L, hs) at qk_frac rotated by the integer tables at positions pos (L,)."""
        half = x.shape[-1] // 2
        cos, sin = self.rope_cos[pos], self.rope_sin[pos]  # (L, half)
        a, b = x[..., :half], x[..., half:]
        s = self.fp.rope_frac
        return self.xp.cat([rshift(self.xp, a * cos - b * sin, s),
                            rshift(self.xp, a * sin + b * cos, s)], -1)

    def _heads(self, x, n_head: int):
        """(B, L, n_head * hs) -> (B, n_head, L, hs)."""
        B, L, _ = x.shape
        x = x.reshape(B, L, n_head, self.cfg.head_size)
        return x.transpose(0, 2, 1, 3) if isinstance(x, np.ndarray) else x.permute(0, 2, 1, 3)

    def _qkv(self, layer: dict, xq, row_m):
        """q, k, v as heads (B, n_head or kv_heads, L, hs), with their biases if any."""
        c, fp = self.cfg, self.fp
        qk_frac = fp.qk_norm_frac if c.qk_norm else fp.qk_frac
        kv_width = c.kv_heads * c.head_size
        ys = self._linear_parts(xq, row_m, layer["wqkv"], [
            (c.n_head * c.head_size, qk_frac), (kv_width, qk_frac), (kv_width, fp.v_frac)])
        if c.qkv_bias:
            ys = [y + layer[b] for y, b in zip(ys, ("bq", "bk", "bv"))]
        return [self._heads(y, n) for y, n in zip(ys, (c.n_head, c.kv_heads, c.kv_heads))]

    def _head_norm(self, x, gain):
        """Per-head RMSNorm (Qwen3's q_norm / k_norm): x (B, H, L, hs) at qk_norm_frac ->
        x * gain / rms(x) at qk_frac, by integer square root and integer division."""
        xp, fp = self.xp, self.fp
        x = xp.clip(x, -(2**27), 2**27)  # squares summed over a head stay below 2**63
        mean_sq = xp.sum(x * x, -1) // x.shape[-1]
        rms = xp.clip(xp.isqrt(xp.clip(mean_sq, 0, 2**52 - 1)), 1, 2**40)
        shift = fp.gain_frac - fp.qk_frac  # real x*g/rms = (x*g) / (rms * 2**gain_frac)
        if shift >= 0:
            return (2 * x * gain + (rms << shift)) // (2 * (rms << shift))
        return (2 * (x * gain << -shift) + rms) // (2 * rms)

    def _masks(self, st: StreamState, pos):
        """Which keys each query may see, shared by all layers: (L, W) over the ring (None
        when all are visible) and (L, L) causal within a chunk (None for one step)."""
        W = self.cfg.window
        if pos.shape[0] == 1:
            kpos = st.slot_pos.clone() if hasattr(st.slot_pos, "clone") else st.slot_pos.copy()
            kpos[pos % W] = pos
            chunk_ok = None
        else:
            kpos = st.slot_pos
            chunk_ok = pos[None, :] <= pos[:, None]  # L <= W: causal is the whole rule
        dist = pos[:, None] - kpos[None, :]  # (L, W)
        ring_ok = (dist >= 0) & (dist < W) & (kpos[None, :] >= 0)
        if chunk_ok is None and bool(ring_ok.all()):
            ring_ok = None
        return ring_ok, chunk_ok

    def _attention(self, layer: dict, i: int, h, st: StreamState, pos, masks):
        xp, fp, W, c = self.xp, self.fp, self.cfg.window, self.cfg
        xq, row_m = rms_norm_quant(xp, h, layer["norm_attn"], fp)
        q, k, v = self._qkv(layer, xq, row_m)
        if c.qk_norm:
            q, k = self._head_norm(q, layer["q_norm"]), self._head_norm(k, layer["k_norm"])
        kernels = xp.kernels
        if kernels is not None:  # rotate and clip in one pass
            cos, sin = self.rope_cos[pos], self.rope_sin[pos]
            q, k = (kernels.rope_clip(a, cos, sin, fp.rope_frac, QK_CLIP) for a in (q, k))
            v = xp.f64(xp.clip(v, -QK_CLIP, QK_CLIP))
        else:
            q, k = self._rotate(q, pos), self._rotate(k, pos)
            q, k, v = (xp.f64(xp.clip(a, -QK_CLIP, QK_CLIP)) for a in (q, k, v))
        B, L = h.shape[0], h.shape[1]
        # Grouped-query attention: query heads (B, Hkv, G, L, hs) meet the keys and values
        # of their group (B, Hkv, 1, ., hs) by broadcasting; G = 1 without grouping.
        q = q.reshape(B, c.kv_heads, c.n_head // c.kv_heads, L, c.head_size)
        slots = pos % W
        ring_ok, chunk_ok = masks
        if kernels is not None:  # position by position, as a decoder steps (kernels.py)
            if st.keys[i].dtype == np.float64:  # a new ring
                _narrow_ring(st, i)
            _ring_fit(st, i, k, v)
            out = kernels.attend_chunk(q.transpose(0, 3, 1, 2, 4), k.transpose(0, 2, 1, 3),
                                       v.transpose(0, 2, 1, 3), st.keys[i], st.values[i],
                                       _visible(masks, slots, W), slots,
                                       2 * fp.qk_frac - fp.exp_step_bits, self.exp_table)
            return self._attention_out(layer, out.transpose(0, 2, 3, 1, 4), B, L)
        if chunk_ok is None:  # one step: write the ring, then attend over it
            st.keys[i][:, :, slots] = k
            st.values[i][:, :, slots] = v
            scores = xp.matmul_f64(q, _swap(st.keys[i][:, :, None]))  # (B, Hkv, G, 1, W)
            e = softmax_weights(xp, scores, ring_ok, 2 * fp.qk_frac, self.exp_table, fp)
            num = xp.matmul_f64(xp.f64(e), st.values[i][:, :, None])  # (B, Hkv, G, 1, hs)
        else:  # a chunk of L <= W positions: the ring before it, then the chunk itself.
            # Scores and weighted sums are taken against the two parts separately (no
            # copy of the ring); integer sums do not depend on grouping.
            ring_k, ring_v = xp.f64(st.keys[i]), xp.f64(st.values[i])
            scores = xp.cat([xp.matmul_f64(q, _swap(ring_k[:, :, None])),
                             xp.matmul_f64(q, _swap(k[:, :, None]))], -1)  # (.., L, W + L)
            e = softmax_weights(xp, scores, xp.cat([ring_ok, chunk_ok], 1), 2 * fp.qk_frac,
                                self.exp_table, fp)
            ef = xp.f64(e)
            num = xp.matmul_f64(ef[..., :W], ring_v[:, :, None]) + \
                xp.matmul_f64(ef[..., W:], v[:, :, None])
            _ring_write(st, i, slots, k, v)  # may be a step's int16 ring (lossy lookahead)
        e_sum = xp.sum(e, -1)
        out = (2 * num + e_sum) // (2 * e_sum)  # num / e_sum rounded half up
        return self._attention_out(layer, out, B, L)

    def _attention_out(self, layer: dict, out, B: int, L: int):
        """Heads (B, Hkv, G, L, hs) at v_frac -> the block's output projection."""
        xp, fp, c = self.xp, self.fp, self.cfg
        out = out.reshape(B, c.n_head, L, c.head_size)
        out = (out.transpose(0, 2, 1, 3) if isinstance(out, np.ndarray)
               else out.permute(0, 2, 1, 3)).reshape(B, L, c.attn_width)
        oq, om = quant_rows(xp, out, fp.v_frac, fp)
        return self._linear(oq, om, layer["wo"], fp.res_frac)

    def _mlp(self, layer: dict, h):
        xp, fp = self.xp, self.fp
        xq, row_m = rms_norm_quant(xp, h, layer["norm_mlp"], fp)
        Hd = self.cfg.n_hidden
        gate, up = self._linear_parts(xq, row_m, layer["w_gate_up"],
                                      [(Hd, fp.hidden_frac), (Hd, fp.hidden_frac)])
        hq, hm = quant_rows(xp, swiglu(xp, gate, up, self.silu_table, fp),
                            2 * fp.hidden_frac, fp)
        return self._linear(hq, hm, layer["w_down"], fp.res_frac)

    # -- public --------------------------------------------------------------------------
    def forward(self, st: StreamState, tokens) -> Any:
        """Logits (B, L, V) at logit_frac for tokens (B, L), L <= window; advances `st`."""
        h = self.trunk(st, tokens)
        xq, row_m = rms_norm_quant(self.xp, h, self.norm_out, self.fp)
        return self._linear(xq, row_m, self.head, self.fp.logit_frac)

    def trunk(self, st: StreamState, tokens) -> Any:
        """The residual stream (B, L, C) at res_frac after the last block, before the final
        norm and head (lossy mode's hidden states); advances `st` like `forward`."""
        xp, fp = self.xp, self.fp
        tokens = xp.asint(tokens)
        L = tokens.shape[1]
        if not 1 <= L <= self.cfg.window or st.pos + L > self.cfg.max_positions:
            raise ValueError(f"chunk of {L} tokens at position {st.pos} exceeds the model")
        pos = xp.arange(L) + st.pos
        h = rshift(xp, self.wte_q[tokens] * self.wte_m[tokens][..., None],
                   fp.w_frac - fp.res_frac)  # (B, L, C) at res_frac
        masks = self._masks(st, pos)
        if isinstance(h, np.ndarray) and self._fused_step():
            W = self.cfg.window
            h = self._step.layers(self, st, pos, h, _visible(masks, pos % W, W))
        else:
            for i, layer in enumerate(self.layers):
                h = h + self._attention(layer, i, h, st, pos, masks)
                h = h + self._mlp(layer, h)
        st.slot_pos[pos % self.cfg.window] = pos
        st.pos += L
        return h

    def freqs(self, logits):
        """Integer frequency tables (..., V) from `forward`'s logits."""
        return freq_table(self.xp, logits, self.freq_exp, self.fp)

    def numbers(self, logits, want):
        """The (start, freq) in `freqs`' tables of the ids `want` (..., k) and the tables'
        totals, by a compiled kernel that never builds the tables; None when the backend
        has none (then take them from `freqs`)."""
        kernels, fp = self.xp.kernels, self.fp
        if kernels is None:
            return None
        return kernels.freq_starts(logits, want, self.freq_exp,
                                   fp.logit_frac - fp.exp_step_bits, fp.freq_bits)
