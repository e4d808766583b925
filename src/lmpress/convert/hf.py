"""Reading a Hugging Face checkpoint directory: checks, the float model (transformers,
float32), and its weights under the names `model.quantize` expects."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import ConvertError

# model_type -> what it covers. All are Llama-shaped: RMSNorm, rotary (rotate-half),
# SwiGLU; they differ in grouped-query attention, QKV biases, q/k norms and tying.
SUPPORTED = {
    "llama": "Llama 2/3, SmolLM, SmolLM2, TinyLlama",
    "mistral": "Mistral (a sliding window no smaller than --window)",
    "qwen2": "Qwen2, Qwen2.5 (QKV biases)",
    "qwen3": "Qwen3 dense (per-head q/k RMSNorm)",
}
HF_EXTRA = "pip install 'lmpress[hf]'"


def supported_list() -> str:
    return ", ".join(f"{k} ({v})" for k, v in SUPPORTED.items())


def check_directory(path: Path) -> dict:
    """The raw config.json of a checkpoint that convert supports, else a ConvertError that
    names the problem: not a directory, not a causal LM, an unsupported architecture."""
    if not path.is_dir():
        raise ConvertError(f"{path} is not a directory; give a Hugging Face model directory "
                           "(config.json, weights, tokenizer.json), e.g. hf:./SmolLM2-135M")
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise ConvertError(f"{path} has no config.json; give a directory written by "
                           "save_pretrained or downloaded from the Hugging Face Hub")
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{cfg_path} is not readable JSON ({e})") from None
    model_type = raw.get("model_type")
    archs = raw.get("architectures") or []
    if archs and not any(str(a).endswith("ForCausalLM") for a in archs):
        raise ConvertError(f"{path} is not a causal language model (architectures: "
                           f"{', '.join(map(str, archs))}); convert needs a *ForCausalLM "
                           f"checkpoint of: {supported_list()}")
    if model_type not in SUPPORTED:
        raise ConvertError(f"architecture {model_type!r} is not supported by convert; "
                           f"supported: {supported_list()}")
    return raw


def import_torch_transformers():
    try:
        import torch
        import transformers
    except ImportError as e:
        raise ConvertError(f"convert needs transformers and torch ({e.name} is missing); "
                           f"install them with: {HF_EXTRA}") from None
    return torch, transformers


@dataclass
class Checkpoint:
    """A loaded float model and what the conversion needs to know about it."""

    path: Path
    model_type: str
    model: Any  # transformers *ForCausalLM, float32, eval mode
    hf_tokenizer: Any  # transformers fast tokenizer
    start_id: int  # BOS, else EOS (lm-evaluation-harness's prefix token rule)
    tied: bool  # lm_head shares the embedding

    @property
    def config(self):
        return self.model.config

    @property
    def layers(self):
        return self.model.model.layers

    @property
    def head_dim(self) -> int:
        c = self.config
        return getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads

    @property
    def n_kv_head(self) -> int:
        c = self.config
        return getattr(c, "num_key_value_heads", None) or c.num_attention_heads

    def rotary(self) -> tuple[list[float], float]:
        """The rotary frequencies and cos/sin factor the float model itself uses (covers
        default, linear, Llama 3 and YaRN scaling)."""
        emb = self.model.model.rotary_emb
        return [float(f) for f in emb.inv_freq.double()], float(emb.attention_scaling)


def load_checkpoint(path: Path, window: int) -> Checkpoint:
    """Load a supported checkpoint in float32; refuse features the engine lacks."""
    raw = check_directory(path)
    torch, transformers = import_torch_transformers()
    try:
        with _quiet(transformers):
            model = transformers.AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=torch.float32).float().eval()
    except (OSError, ValueError, KeyError) as e:
        raise ConvertError(f"transformers cannot load {path}: {str(e).splitlines()[0]}"
                           ) from None
    _check_features(model.config, raw, window)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ConvertError(f"cannot load the tokenizer of {path} ({str(e).splitlines()[0]}); "
                           "convert needs its byte-level BPE tokenizer (tokenizer.json)"
                           ) from None
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if start is None:
        raise ConvertError(f"{path}: the tokenizer has neither a BOS nor an EOS token to "
                           "start each stream with")
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    tied = emb.data_ptr() == head.data_ptr()
    return Checkpoint(path, raw["model_type"], model, tok, int(start), tied)


@contextmanager
def _quiet(transformers):
    """Library code does not draw: transformers' loading bar and notes are off meanwhile."""
    log = transformers.utils.logging
    bar, level = log.is_progress_bar_enabled(), log.get_verbosity()
    log.disable_progress_bar()
    log.set_verbosity_error()
    try:
        yield
    finally:
        log.set_verbosity(level)
        if bar:
            log.enable_progress_bar()


def _check_features(cfg, raw: dict, window: int) -> None:
    name = raw["model_type"]
    act = getattr(cfg, "hidden_act", "silu")
    if act != "silu":
        raise ConvertError(f"{name} with hidden_act={act!r} is not supported; the engine's "
                           "MLP is SwiGLU (silu)")
    for flag in ("attention_bias", "mlp_bias"):
        if getattr(cfg, flag, False) and name == "llama":
            raise ConvertError(f"llama with {flag}=true is not supported (the engine has "
                               "biases on q, k, v only, as Qwen2)")
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) == "longrope":
        raise ConvertError("longrope rotary scaling is not supported (its frequencies "
                           "depend on the sequence length)")
    sliding = getattr(cfg, "sliding_window", None)
    uses_sliding = sliding and (name == "mistral" or getattr(cfg, "use_sliding_window", False))
    if uses_sliding and window > sliding:
        raise ConvertError(f"{name} attends to a sliding window of {sliding} tokens; choose "
                           f"--window {sliding} or less")


def float_weights(ck: Checkpoint, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The float weights under lmpress names; embedding and head keep `rows` (the ids the
    byte-level tokenizer can produce, then the start token)."""
    sd = {k: v.detach().float().numpy() for k, v in ck.model.state_dict().items()}
    out = {"wte.weight": sd["model.embed_tokens.weight"][rows],
           "norm_out.weight": sd["model.norm.weight"]}
    if not ck.tied:
        out["head.weight"] = sd["lm_head.weight"][rows]
    names = {"attn.wq": "self_attn.q_proj", "attn.wk": "self_attn.k_proj",
             "attn.wv": "self_attn.v_proj", "attn.wo": "self_attn.o_proj",
             "mlp.w_gate": "mlp.gate_proj", "mlp.w_up": "mlp.up_proj",
             "mlp.w_down": "mlp.down_proj"}
    for i in range(len(ck.layers)):
        src, dst = f"model.layers.{i}.", f"blocks.{i}."
        for ours, theirs in names.items():
            out[dst + ours + ".weight"] = sd[src + theirs + ".weight"]
        for n in ("q", "k", "v"):
            if src + f"self_attn.{n}_proj.bias" in sd:
                out[dst + f"attn.b{n}"] = sd[src + f"self_attn.{n}_proj.bias"]
        for n in ("q_norm", "k_norm"):
            if src + f"self_attn.{n}.weight" in sd:
                out[dst + f"attn.{n}.weight"] = sd[src + f"self_attn.{n}.weight"]
        out[dst + "norm_attn.weight"] = sd[src + "input_layernorm.weight"]
        out[dst + "norm_mlp.weight"] = sd[src + "post_attention_layernorm.weight"]
    return out
