"""GGUF files (`gguf:FILE`) through llama-cpp-python: loading (shared with bench's
GGUFScorer), the exact tokenizer, and one decoding step. A llama.cpp context holds one
sequence here, so GGUF codes one stream at a time (batch size 1)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from . import ENGINE_GGUF, FloatEngineError
from .tables import FloatTokenizer, files_digest

MAX_CONTEXT = 8192  # positions asked of llama.cpp: its KV cache is allocated up front


def _require(path: str):
    """The llama_cpp module, or the one-line error naming the fix; and the file exists."""
    try:
        import llama_cpp
    except ImportError:
        raise FloatEngineError(f"gguf:{path} needs llama-cpp-python; install it with: "
                               "pip install 'lmpress[gguf]'") from None
    if not Path(path).is_file():
        raise FloatEngineError(f"gguf:{path}: no such file")
    return llama_cpp


def open_gguf(path: str, **kwargs):
    """A `llama_cpp.Llama` for the file, quiet, or the one-line error naming the fix."""
    llama_cpp = _require(path)
    try:
        return llama_cpp.Llama(model_path=path, verbose=False, **kwargs)
    except (ValueError, RuntimeError, OSError) as e:
        raise FloatEngineError(f"gguf:{path}: llama.cpp cannot load it ({e}); give a GGUF "
                               "model file") from None


def train_context(path: str) -> int:
    """The context length the GGUF file declares (0 if none), read from its metadata
    without loading the weights or making a context."""
    import llama_cpp
    from llama_cpp import _internals

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    try:
        model = _internals.LlamaModel(path_model=path, params=params, verbose=False)
    except (ValueError, RuntimeError, OSError) as e:
        raise FloatEngineError(f"gguf:{path}: llama.cpp cannot load it ({e}); give a GGUF "
                               "model file") from None
    try:
        meta = model.metadata()
    finally:
        model.close()
    arch = meta.get("general.architecture", "")
    try:
        return int(meta.get(f"{arch}.context_length", 0))
    except ValueError:
        return 0


def start_token(llm) -> int:
    """BOS, else EOS (lm-evaluation-harness's prefix token rule)."""
    bos = llm.token_bos()
    return bos if bos is not None and bos >= 0 else llm.token_eos()


def token_piece(llm, token: int) -> bytes:
    """The bytes of one token as llama.cpp spells it (no leading-space stripping, special
    tokens empty), with a buffer as long as the piece needs."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, False)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def last_logits(llm) -> np.ndarray:
    """The logits (V,) float32 after the last `eval`ed token (a copy)."""
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()


class GGUFModel:
    """A loaded `gguf:FILE` model: its exact tokenizer, fingerprint, and `step`."""

    engine_kind = ENGINE_GGUF

    def __init__(self, path: str, backend: str | None = None):
        if backend not in (None, "torch-cpu", "torch-cuda"):
            raise FloatEngineError(f"gguf models run in llama.cpp; --backend {backend} is "
                                   "not for them (leave it out, or torch-cuda to offload "
                                   "every layer to the GPU)")
        gpu = backend == "torch-cuda"
        llama_cpp = _require(path)
        n_threads = max(1, (os.cpu_count() or 2) // 2)  # llama-cpp-python's default
        n_ctx = min(train_context(path) or MAX_CONTEXT, MAX_CONTEXT)
        self.llm = open_gguf(path, n_ctx=n_ctx, n_batch=512, logits_all=False,
                             n_gpu_layers=-1 if gpu else 0, n_threads=n_threads)
        self.vocab_size = int(self.llm.n_vocab())
        self.max_positions = min(n_ctx, int(self.llm.n_ctx()))  # llama.cpp may round up
        self.start_id = int(start_token(self.llm))
        file = Path(path)
        self.name = f"gguf:{file.name}"
        self.digest = files_digest([file])
        self.n_file_bytes = file.stat().st_size
        llm = self.llm
        pieces = [token_piece(llm, i) for i in range(self.vocab_size)]

        def encode_texts(texts: list[str]) -> list[list[int]]:
            return [list(llm.tokenize(t.encode("utf-8"), add_bos=False, special=False))
                    if t else [] for t in texts]

        self.tok = FloatTokenizer(pieces, encode_texts, self.start_id, self.digest)
        self.fingerprint = {
            "engine": "gguf", "model": file.name, "digest": self.digest,
            "libs": {"numpy": np.__version__, "llama_cpp": llama_cpp.__version__},
            "device": "gpu" if gpu else "cpu", "dtype": "gguf", "threads": n_threads}

    def new_state(self, batch: int) -> dict:
        if batch != 1:
            raise FloatEngineError(f"gguf models code one stream at a time, not {batch}; "
                                   "the archive's stream group is damaged")
        self.llm.reset()  # one llama.cpp context: a new state empties its KV cache
        return {"batch": 1}

    def step(self, state: dict, ids: np.ndarray) -> np.ndarray:
        """Read one token (B = 1); returns the next-token logits (1, V) float32."""
        self.llm.eval([int(ids[0])])
        return last_logits(self.llm)[None]
