"""The conversion: checkpoint -> tokenizer -> float bits -> smoothing -> calibration ->
integer model -> integer bits. Library code: no printing; `progress` gets a line per
step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..model.config import ModelConfig
from ..model.quantize import quantize_model
from ..model.tokenizer import ByteTokenizer
from ..model.weights import IntegerWeights
from . import ConvertError
from .calibrate import choose_fixed_point, collect, smooth
from .hf import Checkpoint, check_directory, float_weights, load_checkpoint
from .report import Quality, float_bits, integer_bits, token_streams
from .sample import SAMPLE
from .tokens import check_same_ids, convert_tokenizer

DEFAULT_WINDOW = 1024  # attention window of the converted model, in tokens
DEFAULT_MAX_POSITIONS = 4096  # longest stream (the codec cuts ~16 KiB segments)
DEFAULT_SMOOTH = 0.5  # SmoothQuant's migration strength; 0 turns smoothing off


@dataclass
class Conversion:
    weights: IntegerWeights
    quality: Quality
    source: str  # e.g. "qwen2 from ./Qwen2.5-0.5B"


def convert(path: str | Path, name: str, *, window: int = DEFAULT_WINDOW,
            max_positions: int = DEFAULT_MAX_POSITIONS, calibration: bytes | None = None,
            evaluation: bytes | None = None, smooth_alpha: float = DEFAULT_SMOOTH,
            backend: str | None = None,
            progress: Callable[[str], None] | None = None) -> Conversion:
    """Convert the Hugging Face checkpoint at `path` into an integer model called `name`,
    and measure float and integer bits on `evaluation` (default: the calibration text)."""
    say = progress or (lambda line: None)
    path = Path(path)
    if window < 1 or max_positions < 1 or not 0 <= smooth_alpha <= 1:
        raise ConvertError("window and max positions must be positive and the smoothing "
                           "strength within 0..1")
    calibration = SAMPLE.encode() if calibration is None else calibration
    evaluation = calibration if evaluation is None else evaluation
    if not calibration.strip():
        raise ConvertError("the calibration text is empty; give a few kilobytes of text")
    check_directory(path)  # the cheap checks before loading anything
    say(f"loading {path}")
    ck = load_checkpoint(path, window)
    tokenizer_json, rows, bos_id = convert_tokenizer(ck.hf_tokenizer, path, ck.start_id)
    check_same_ids(tokenizer_json, ck.hf_tokenizer, calibration.decode("utf-8", "replace"))
    tok = ByteTokenizer(tokenizer_json)
    max_positions = min(max_positions, ck.config.max_position_embeddings)
    window = min(window, max_positions)
    ev = token_streams(tok, evaluation, max_positions)
    say(f"float model: scoring {len(evaluation)} bytes")
    f_bits = float_bits(ck, ev, rows, window)
    cal = [_with_start(ck, rows[s]) for s in token_streams(tok, calibration, window)]
    if smooth_alpha > 0:
        say(f"smoothing activation outliers (alpha {smooth_alpha})")
        smooth(ck, collect(ck, cal), smooth_alpha)
    say("calibrating fixed-point positions")
    cfg = model_config(ck, len(rows), bos_id, window, max_positions)
    fp = choose_fixed_point(collect(ck, cal), cfg.n_embd, cfg.qk_norm)
    inv_freq, rope_scale = ck.rotary()
    source = f"{ck.model_type} from {path}"
    summary = (f"converted {ck.model_type} ({path.name}): {cfg.n_layer} layers, "
               f"d={cfg.n_embd}, {cfg.n_head}/{cfg.kv_heads} heads, "
               f"{cfg.vocab_size}-token BPE; int8")
    weights = quantize_model(float_weights(ck, rows), cfg, tokenizer_json, name, fp,
                             inv_freq, rope_scale, summary)
    weights = IntegerWeights.from_bytes(weights.to_bytes())  # sets the digest
    say(f"integer model: scoring {len(evaluation)} bytes")
    i_bits = integer_bits(weights, ev, backend)
    quality = Quality(len(evaluation), len(f_bits), float(f_bits.sum()),
                      float(i_bits.sum()), float(abs(i_bits - f_bits).sum()))
    return Conversion(weights, quality, source)


def model_config(ck: Checkpoint, vocab_size: int, bos_id: int, window: int,
                 max_positions: int) -> ModelConfig:
    c = ck.config
    rope = getattr(c, "rope_parameters", None) or {}
    attn = c.num_attention_heads
    has_bias = getattr(ck.layers[0].self_attn.q_proj, "bias", None) is not None
    return ModelConfig(
        vocab_size=vocab_size, n_layer=c.num_hidden_layers, n_head=attn,
        n_embd=c.hidden_size, n_hidden=c.intermediate_size, window=window,
        max_positions=max_positions,
        rope_theta=float(rope.get("rope_theta", getattr(c, "rope_theta", 10000.0))),
        norm_eps=float(c.rms_norm_eps), bos_id=bos_id,
        n_kv_head=ck.n_kv_head if ck.n_kv_head != attn else 0,
        head_dim=ck.head_dim if ck.head_dim * attn != c.hidden_size else 0,
        qkv_bias=has_bias, qk_norm=hasattr(ck.layers[0].self_attn, "q_norm"),
        tie_embeddings=ck.tied)


def _with_start(ck: Checkpoint, ids):
    import numpy as np

    return np.concatenate([[ck.start_id], ids]).astype(np.int64)
