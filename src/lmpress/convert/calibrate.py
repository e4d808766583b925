"""Calibration on a text sample: what the activations of the float model look like, used
twice. First to smooth activation outliers (SmoothQuant: a per-channel factor moved from
the activations into the weights, exact in float), then to choose the integer engine's
fixed-point positions so that no clip in the engine acts on such text, with a margin.

Each FixedPoint field bounds a quantity (docs/ENGINE.md); the chosen value is the most
precise one whose bound still holds for `MARGIN` times the largest value seen."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ..engine.fixed import FixedPoint
from .hf import Checkpoint

MARGIN = 16.0  # headroom over the largest activation seen on the calibration text
FREQ_EXP_FRAC = 28  # the frequency table's exp resolves down to its floor of 2**-28


class Stats:
    """Maxima of the float model's activations over the calibration text: scalars by
    name (`peak`) and per-channel maxima of the inputs of the linear layers (`channel`)."""

    def __init__(self):
        self.peak: dict[str, float] = defaultdict(float)
        self.channel: dict[str, np.ndarray] = {}

    def max(self, name: str, value) -> None:
        self.peak[name] = max(self.peak[name], float(value))

    def channels(self, name: str, x) -> None:
        m = x.detach().abs().reshape(-1, x.shape[-1]).amax(0).double().numpy()
        self.channel[name] = np.maximum(self.channel.get(name, m), m)


def collect(ck: Checkpoint, streams: Sequence[np.ndarray]) -> Stats:
    """Run the float model over token streams (checkpoint ids, each starting with the
    start token) and record the activation maxima the engine's bounds need."""
    import torch

    st, hooks = Stats(), []
    hs = ck.head_dim

    def norm_hook(name, module):  # input: the residual stream; output: normalised * gain
        def hook(mod, args, out):
            x = args[0].double()
            rms = x.pow(2).mean(-1).sqrt()
            st.max("residual", x.abs().max())
            st.max("rms", rms.max())
            st.max("x_gain", (x.abs() * mod.weight.double().abs()).max())
            st.max("norm_row", (out.double().abs().amax(-1)).max())
            st.channels(name, out)
        return module.register_forward_hook(hook)

    def out_hook(name, module, scale=1.0):
        def hook(mod, args, out):
            st.max(name, out.detach().abs().max() * scale)
        return module.register_forward_hook(hook)

    def in_hook(name, module):
        def hook(mod, args):
            x = args[0]
            st.max(name, x.detach().abs().max())
            st.channels(name, x)
        return module.register_forward_pre_hook(hook)

    for i, layer in enumerate(ck.layers):
        a, m = layer.self_attn, layer.mlp
        hooks += [norm_hook(f"{i}.qkv", layer.input_layernorm),
                  norm_hook(f"{i}.mlp", layer.post_attention_layernorm),
                  in_hook(f"{i}.o", a.o_proj), in_hook(f"{i}.down", m.down_proj),
                  out_hook("v", a.v_proj), out_hook("gate", m.gate_proj),
                  out_hook("up", m.up_proj)]
        if hasattr(a, "q_norm"):
            hooks += [out_hook("q_pre", a.q_proj), out_hook("k_pre", a.k_proj),
                      out_hook("q", a.q_norm, 1 / math.sqrt(hs)), out_hook("k", a.k_norm)]
        else:
            hooks += [out_hook("q", a.q_proj, 1 / math.sqrt(hs)), out_hook("k", a.k_proj)]
    hooks += [norm_hook("head", ck.model.model.norm),
              out_hook("logits", ck.model.get_output_embeddings())]
    try:
        with torch.no_grad():
            for ids in streams:
                ck.model(torch.from_numpy(np.asarray(ids))[None])
    finally:
        for h in hooks:
            h.remove()
    gains = [ly.input_layernorm.weight for ly in ck.layers]
    gains += [ly.post_attention_layernorm.weight for ly in ck.layers] + [ck.model.model.norm.weight]
    st.max("gain", max(float(g.detach().abs().max()) for g in gains))
    qk_gains = [n.weight for ly in ck.layers for n in (getattr(ly.self_attn, "q_norm", None),
                                                       getattr(ly.self_attn, "k_norm", None))
                if n is not None]
    if qk_gains:
        st.max("gain", max(float(g.detach().abs().max()) for g in qk_gains))
    return st


def _bits(x: float) -> float:
    return math.log2(max(x, 1e-30) * MARGIN)


def choose_fixed_point(st: Stats, n_embd: int, qk_norm: bool) -> FixedPoint:
    """The most precise fixed-point layout whose bounds (docs/ENGINE.md) hold for MARGIN
    times the maxima in `st`."""
    p = st.peak
    clamp = lambda v, lo, hi: int(max(lo, min(hi, math.floor(v))))  # noqa: E731
    # row multipliers (real row scale * 2**row_frac) must stay below 2**24 (RMSNorm rows:
    # max|normalised * gain| / 127; attention output and SwiGLU rows: max|x| / 127)
    row_scale = max(p["norm_row"], *(p[k] for k in p if k.endswith((".o", ".down")))) / 127
    row_frac = clamp(24 - _bits(row_scale), 8, 20)
    # gains are int32, and RMSNorm shifts by row_frac - gain_frac >= 0
    gain_frac = clamp(min(30 - _bits(p["gain"]), row_frac), 8, 16)
    res_frac = clamp(min(26 - _bits(p["rms"]),  # mean square < 2**52 (isqrt)
                         40 - gain_frac - _bits(p["x_gain"]),  # |x * g| < 2**40
                         (62 - math.log2(n_embd)) / 2 - _bits(p["residual"])), 6, 24)
    qk_frac = clamp(20 - _bits(math.sqrt(2) * max(p["q"], p["k"])), 4, 16)  # |q|,|k| < 2**20
    v_frac = clamp(20 - _bits(p["v"]), 4, 16)
    act_up = max(p[k] for k in p if k.endswith(".down"))
    hidden_frac = clamp((44 - _bits(act_up)) / 2, 8, 14)  # silu(gate) * up < 2**44
    extra = {}
    if qk_norm:
        extra["qk_norm_frac"] = clamp(26 - _bits(max(p["q_pre"], p["k_pre"])), 4, 20)
    return FixedPoint(res_frac=res_frac, gain_frac=gain_frac, row_frac=row_frac,
                      qk_frac=qk_frac, v_frac=v_frac, hidden_frac=hidden_frac,
                      freq_exp_frac=FREQ_EXP_FRAC, **extra)


def smooth(ck: Checkpoint, st: Stats, alpha: float) -> None:
    """SmoothQuant, folded into the float model in place: for a linear layer fed by
    activations X, divide input channel j by s_j = max|X_j|**alpha / max|W_j|**(1-alpha)
    where X is produced (RMSNorm gain, v projection, up projection) and multiply the
    weights' column j by s_j. The function is unchanged; outlier channels move from the
    per-token int8 activations into the per-channel int8 weights."""
    import torch

    G = ck.config.num_attention_heads // ck.n_kv_head
    with torch.no_grad():
        for i, layer in enumerate(ck.layers):
            a, m = layer.self_attn, layer.mlp
            s = _factors(st.channel[f"{i}.qkv"], [a.q_proj, a.k_proj, a.v_proj], alpha)
            layer.input_layernorm.weight.div_(s)
            for lin in (a.q_proj, a.k_proj, a.v_proj):
                lin.weight.mul_(s)
            s = _factors(st.channel[f"{i}.mlp"], [m.gate_proj, m.up_proj], alpha)
            layer.post_attention_layernorm.weight.div_(s)
            for lin in (m.gate_proj, m.up_proj):
                lin.weight.mul_(s)
            s = _factors(st.channel[f"{i}.down"], [m.down_proj], alpha)
            m.up_proj.weight.div_(s[:, None])
            m.down_proj.weight.mul_(s)
            # the attention output of query head h is a mix of kv head h // G's values:
            # one factor per kv channel, the largest over the group's query heads
            s = _factors(st.channel[f"{i}.o"], [a.o_proj], alpha)
            s = s.view(ck.n_kv_head, G, ck.head_dim).amax(1)  # (Hkv, hs)
            a.v_proj.weight.div_(s.reshape(-1, 1))
            if a.v_proj.bias is not None:
                a.v_proj.bias.div_(s.reshape(-1))
            a.o_proj.weight.mul_(s[:, None, :].expand(-1, G, -1).reshape(1, -1))
        if not ck.tied:  # a tied head is the embedding: leave both alone
            head = ck.model.get_output_embeddings()
            s = _factors(st.channel["head"], [head], alpha)
            ck.model.model.norm.weight.div_(s)
            head.weight.mul_(s)


def _factors(x_max: np.ndarray, linears, alpha: float):
    import torch

    w_max = torch.stack([lin.weight.detach().abs().amax(0) for lin in linears]).amax(0)
    x = torch.from_numpy(x_max).to(w_max.dtype).clamp(min=1e-5)
    s = x.pow(alpha) / w_max.clamp(min=1e-5).pow(1 - alpha)
    return s.clamp(min=1e-5)
