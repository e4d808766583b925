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
    lookup,
    quant_rows,
    requant,
    rms_norm_quant,
    rshift,
    softmax_weights,
)

QK_CLIP = 2**20  # |q|, |k|, |v| bound: keeps attention products exact in float64


@dataclass
class StreamState:
    """KV ring buffers of the last `window` positions for B streams advancing together."""

    pos: int  # position of the next token
    keys: list[Any]  # per layer (B, H, W, hs) float64, rotated keys
    values: list[Any]  # per layer (B, H, W, hs) float64
    slot_pos: Any  # (W,) int64 position held by each ring slot, -1 = empty


class IntegerLM:
    def __init__(self, weights: IntegerWeights, backend: str | None = None):
        self.w = weights
        self.cfg = weights.config
        self.fp = weights.fixed
        self.xp = xp = get_backend(backend)
        t = weights.tensors
        C, Hd = self.cfg.n_embd, self.cfg.n_hidden

        def lin(name: str, k: int):
            return (xp.matrix(np.ascontiguousarray(t[name + ".q"].T), k * ACT_MAX**2),
                    xp.asint(t[name + ".m"]))

        self.wte_q = xp.asint(t["wte.q"])
        self.wte_m = xp.asint(t["wte.m"])
        self.head = (xp.matrix(np.ascontiguousarray(t["wte.q"].T), C * ACT_MAX**2), self.wte_m)
        self.layers = []
        for i in range(self.cfg.n_layer):
            p = f"layers.{i}."
            self.layers.append({
                "norm_attn": xp.asint(t[p + "norm_attn"]),
                "norm_mlp": xp.asint(t[p + "norm_mlp"]),
                **{n: lin(p + n, C) for n in ("wq", "wk", "wv", "wo", "w_gate", "w_up")},
                "w_down": lin(p + "w_down", Hd),
            })
        self.norm_out = xp.asint(t["norm_out"])
        self.exp_table = xp.asint(t["tables.exp"])
        self.silu_table = xp.asint(t["tables.silu"])
        self.rope_cos = xp.asint(t["tables.rope_cos"])
        self.rope_sin = xp.asint(t["tables.rope_sin"])

    # -- state ---------------------------------------------------------------------------
    def new_state(self, batch: int) -> StreamState:
        c, xp = self.cfg, self.xp
        shape = (batch, c.n_head, c.window, c.head_size)
        zeros = [xp.f64(xp.full(shape, 0)) for _ in range(c.n_layer)]
        return StreamState(0, zeros, [z * 0 for z in zeros], xp.full((c.window,), -1))

    # -- blocks --------------------------------------------------------------------------
    def _linear(self, xq, row_m, lin, out_frac: int):
        return requant(self.xp, self.xp.matmul(xq, lin[0]), lin[1], row_m, out_frac, self.fp)

    def _rotate(self, x, pos):
        """x (B, H, L, hs) at qk_frac rotated by the integer tables at positions pos (L,)."""
        half = x.shape[-1] // 2
        cos, sin = self.rope_cos[pos], self.rope_sin[pos]  # (L, half)
        a, b = x[..., :half], x[..., half:]
        s = self.fp.rope_frac
        return self.xp.cat([rshift(self.xp, a * cos - b * sin, s),
                            rshift(self.xp, a * sin + b * cos, s)], -1)

    def _heads(self, x):
        B, L, _ = x.shape
        return x.reshape(B, L, self.cfg.n_head, self.cfg.head_size).transpose(0, 2, 1, 3) \
            if isinstance(x, np.ndarray) else \
            x.reshape(B, L, self.cfg.n_head, self.cfg.head_size).permute(0, 2, 1, 3)

    def _attention(self, layer: dict, i: int, h, st: StreamState, pos):
        xp, fp, W = self.xp, self.fp, self.cfg.window
        xq, row_m = rms_norm_quant(xp, h, layer["norm_attn"], fp)
        q = self._rotate(self._heads(self._linear(xq, row_m, layer["wq"], fp.qk_frac)), pos)
        k = self._rotate(self._heads(self._linear(xq, row_m, layer["wk"], fp.qk_frac)), pos)
        v = self._heads(self._linear(xq, row_m, layer["wv"], fp.v_frac))
        q, k, v = (xp.f64(xp.clip(a, -QK_CLIP, QK_CLIP)) for a in (q, k, v))
        slots = pos % W
        if pos.shape[0] == 1:  # one step: write the ring, then attend over it
            st.keys[i][:, :, slots] = k
            st.values[i][:, :, slots] = v
            keys, vals, kpos = st.keys[i], st.values[i], st.slot_pos.clone() \
                if hasattr(st.slot_pos, "clone") else st.slot_pos.copy()
            kpos[slots] = pos
        else:  # a chunk of L <= W positions: the ring before it, then the chunk itself
            keys = xp.cat([st.keys[i], k], 2)
            vals = xp.cat([st.values[i], v], 2)
            kpos = xp.cat([st.slot_pos, pos], 0)
            st.keys[i][:, :, slots] = k
            st.values[i][:, :, slots] = v
        dist = pos[:, None] - kpos[None, :]  # (L, K)
        valid = (dist >= 0) & (dist < W) & (kpos[None, :] >= 0)
        scores = xp.matmul_f64(q, keys.swapaxes(-1, -2) if isinstance(keys, np.ndarray)
                               else keys.transpose(-1, -2))  # (B, H, L, K)
        e = softmax_weights(xp, scores, valid, 2 * fp.qk_frac, self.exp_table, fp)
        num = xp.matmul_f64(xp.f64(e), vals)  # (B, H, L, hs)
        out = (2 * num + xp.sum(e, -1)) // (2 * xp.sum(e, -1))
        B, L = h.shape[0], h.shape[1]
        out = (out.transpose(0, 2, 1, 3) if isinstance(out, np.ndarray)
               else out.permute(0, 2, 1, 3)).reshape(B, L, self.cfg.n_embd)
        oq, om = quant_rows(xp, out, fp.v_frac, fp)
        return self._linear(oq, om, layer["wo"], fp.res_frac)

    def _mlp(self, layer: dict, h):
        xp, fp = self.xp, self.fp
        xq, row_m = rms_norm_quant(xp, h, layer["norm_mlp"], fp)
        gate = self._linear(xq, row_m, layer["w_gate"], fp.hidden_frac)
        up = self._linear(xq, row_m, layer["w_up"], fp.hidden_frac)
        r = fp.silu_range
        idx = rshift(xp, gate, fp.hidden_frac - 8) + (r << 8)
        act = lookup(xp, self.silu_table, idx)
        act = xp.where(idx >= (2 * r) << 8, gate, xp.where(idx < 0, 0, act))
        hq, hm = quant_rows(xp, act * up, 2 * fp.hidden_frac, fp)
        return self._linear(hq, hm, layer["w_down"], fp.res_frac)

    # -- public --------------------------------------------------------------------------
    def forward(self, st: StreamState, tokens) -> Any:
        """Logits (B, L, V) at logit_frac for tokens (B, L), L <= window; advances `st`."""
        xp, fp = self.xp, self.fp
        tokens = xp.asint(tokens)
        L = tokens.shape[1]
        if not 1 <= L <= self.cfg.window or st.pos + L > self.cfg.max_positions:
            raise ValueError(f"chunk of {L} tokens at position {st.pos} exceeds the model")
        pos = xp.arange(L) + st.pos
        h = rshift(xp, self.wte_q[tokens] * self.wte_m[tokens][..., None],
                   fp.w_frac - fp.res_frac)  # (B, L, C) at res_frac
        for i, layer in enumerate(self.layers):
            h = h + self._attention(layer, i, h, st, pos)
            h = h + self._mlp(layer, h)
        st.slot_pos[pos % self.cfg.window] = pos
        st.pos += L
        xq, row_m = rms_norm_quant(xp, h, self.norm_out, fp)
        return self._linear(xq, row_m, self.head, fp.logit_frac)

    def freqs(self, logits):
        """Integer frequency tables (..., V) from `forward`'s logits."""
        return freq_table(self.xp, logits, self.exp_table, self.fp)
