"""Hugging Face causal LMs (`hf:DIR`): loading (shared with bench's HFScorer), the exact
tokenizer, and one decoding step for B streams with a KV cache (transformers'
DynamicCache). fp32, eager attention, CUDA when present unless told otherwise."""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ENGINE_HF, FloatEngineError
from .tables import FloatTokenizer, files_digest

DEFAULT_MAX_LEN = 2048  # lm-eval's HFLM default when the config names no length
MAX_POSITIONS = 8192  # bounds the KV cache (32 streams); longer segments are halved
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model")
_WEIGHT_FILE = re.compile(r".*\.(safetensors|bin)$|.*\.safetensors\.index\.json$")
_SP_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@dataclass
class LoadedHF:
    tok: object  # transformers tokenizer
    model: object  # transformers causal LM, eval mode, fp32
    start_id: int  # BOS, else EOS
    max_len: int  # positions the model reads


def load_hf(path: str, device: str = "cpu", attn: str | None = None) -> LoadedHF:
    """Load tokenizer and causal LM from a `save_pretrained` directory, fp32, offline."""
    torch, transformers = _require(path)
    if not Path(path, "config.json").is_file():
        raise FloatEngineError(f"hf:{path}: no config.json there; give a directory written "
                               "by save_pretrained")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FloatEngineError(f"hf:{path}: no tokenizer transformers can load there "
                               f"({_first_line(e)})") from None
    kwargs = {"attn_implementation": attn} if attn else {}
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # library code draws nothing
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=torch.float32, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FloatEngineError(f"hf:{path} is not a causal language model transformers can "
                               f"load ({_first_line(e)}); give a directory saved from an "
                               "AutoModelForCausalLM") from None
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    model = model.float().eval().to(device)
    start = tok.bos_token_id
    start = start if start is not None else tok.eos_token_id
    if start is None:
        raise FloatEngineError(f"hf:{path}: the tokenizer has neither a BOS nor an EOS token "
                               "to start from")
    cfg = model.config
    lengths = [getattr(cfg, a, None) for a in ("n_positions", "max_position_embeddings",
                                                "n_ctx")]
    length = next((n for n in lengths if n), None) or tok.model_max_length
    max_len = int(length) if length and length < 1e9 else DEFAULT_MAX_LEN
    return LoadedHF(tok, model, int(start), max_len)


def _require(path: str):
    """(torch, transformers), or the one-line error that names the pip command."""
    try:
        import torch
        import transformers
    except ImportError:
        raise FloatEngineError(f"hf:{path} needs transformers and torch; install them "
                               "with: pip install 'lmpress[hf]'") from None
    return torch, transformers


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def _device(backend: str | None) -> str:
    import torch

    if backend in (None, "torch-cuda"):
        if torch.cuda.is_available():
            return "cuda"
        if backend == "torch-cuda":
            raise FloatEngineError("--backend torch-cuda: torch sees no CUDA device here")
        return "cpu"
    if backend == "torch-cpu":
        return "cpu"
    raise FloatEngineError(f"hf models run in torch; --backend {backend} is not for them "
                           "(use torch-cpu or torch-cuda)")


class HFModel:
    """A loaded `hf:DIR` model: its exact tokenizer, fingerprint, and `step`."""

    engine_kind = ENGINE_HF

    def __init__(self, path: str, backend: str | None = None):
        torch, transformers = _require(path)
        self.torch = torch
        device = _device(backend)
        loaded = load_hf(path, device, attn="eager")
        self.model, self.device = loaded.model, device
        params = inspect.signature(self.model.forward).parameters  # transformers 5 renamed
        self._cache_arg = "cache" if "cache" in params else "past_key_values"  # the cache
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self.max_positions = min(loaded.max_len, MAX_POSITIONS)
        self.start_id = loaded.start_id
        root = Path(path)
        self.name = f"hf:{root.resolve().name}"
        files = [p for p in root.iterdir() if p.is_file()]
        tok_files = [p for p in files if p.name in _TOKENIZER_FILES]
        model_files = [p for p in files if p.name == "config.json"
                       or _WEIGHT_FILE.match(p.name)] + tok_files
        self.digest = files_digest(model_files)
        self.n_file_bytes = sum(p.stat().st_size for p in model_files)
        self.tok = hf_tokenizer(loaded.tok, self.vocab_size, self.start_id,
                                files_digest(tok_files), path)
        dev = "cpu" if device == "cpu" else f"cuda:{torch.cuda.get_device_name()}"
        libs = {"numpy": np.__version__, "torch": torch.__version__,
                "transformers": transformers.__version__}
        self._fingerprint = {"engine": "hf", "model": root.resolve().name,
                             "digest": self.digest, "libs": libs, "device": dev,
                             "dtype": "float32", "attn": "eager"}
        if device != "cpu":
            libs["cuda"] = torch.version.cuda

    @property
    def fingerprint(self) -> dict:
        """The setup as it is now (thread count and TF32 can change after loading)."""
        fp = dict(self._fingerprint)
        if self.device == "cpu":
            fp["threads"] = self.torch.get_num_threads()
        else:
            fp["tf32"] = bool(self.torch.backends.cuda.matmul.allow_tf32)
        return fp

    def new_state(self, batch: int) -> dict:
        return {"cache": None, "batch": batch}

    def step(self, state: dict, ids: np.ndarray) -> np.ndarray:
        """Read one token per stream (B,); returns the next-token logits (B, V) float32."""
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)[:, None]).to(self.device)
        with torch.inference_mode():
            out = self.model(input_ids=x, use_cache=True, **{self._cache_arg: state["cache"]})
        cache = getattr(out, "cache", None)
        state["cache"] = out.past_key_values if cache is None else cache
        return out.logits[:, -1].float().cpu().numpy()


def hf_tokenizer(tok, vocab_size: int, start_id: int, digest: str, path: str
                 ) -> FloatTokenizer:
    """The exact tokenizer of a fast (tokenizer.json) HF tokenizer: byte-level BPE tokens
    spell bytes through GPT-2's byte alphabet, SentencePiece ones '▁' as a space and
    <0xNN> as that byte, added tokens their text."""
    from ..model.tokenizer import _byte_alphabet

    backend = getattr(tok, "backend_tokenizer", None)
    if not getattr(tok, "is_fast", False) or backend is None:
        raise FloatEngineError(f"hf:{path}: the tokenizer has no tokenizer.json (a fast "
                               "tokenizer); save it with a recent transformers")
    vocab = backend.get_vocab(with_added_tokens=True)
    added = {t.content for t in backend.get_added_tokens_decoder().values()}
    alphabet = _byte_alphabet()
    byte_level = "ByteLevel" in json.dumps(json.loads(backend.to_str()).get("decoder"))
    token_bytes = [b""] * vocab_size  # ids the model cannot read stay empty: never coded
    for piece, idx in vocab.items():
        if idx >= vocab_size:
            continue
        if piece in added:
            raw = piece.encode("utf-8")
        elif byte_level and all(c in alphabet for c in piece):
            raw = bytes(alphabet[c] for c in piece)
        elif m := _SP_BYTE.match(piece):
            raw = bytes([int(m.group(1), 16)])
        else:
            raw = piece.replace("\u2581", " ").encode("utf-8")
        token_bytes[idx] = raw

    def encode_texts(pieces: list[str]) -> list[list[int]]:
        return [e.ids for e in backend.encode_batch(pieces, add_special_tokens=False)]

    return FloatTokenizer(token_bytes, encode_texts, start_id, digest)
