""""Bring your own model": float engines that code with a Hugging Face causal LM
(`hf:DIR`, transformers + torch) or a GGUF file (`gguf:FILE`, llama-cpp-python).

Float inference is exact only on the same machine and software (docs/FLOAT_ENGINES.md),
so these archives record the engine's fingerprint and decoding elsewhere is refused
unless forced; a checksum failure is always an error. Nothing here imports torch or
llama_cpp until a model is loaded, so the base install stays torch-free.
"""

from __future__ import annotations

from ..errors import LmpressError

HF_PREFIX, GGUF_PREFIX = "hf:", "gguf:"
ENGINE_HF, ENGINE_GGUF = 1, 2  # the archive's engine byte (container.py, version 3)
ENGINE_NAMES = {ENGINE_HF: "hf", ENGINE_GGUF: "gguf"}


class FloatEngineError(LmpressError):
    """A float model cannot be loaded or used here (missing extra, not a causal LM...)."""


class FingerprintError(FloatEngineError):
    """The archive was made by a float engine whose fingerprint differs from this one."""


def is_float_spec(spec: object) -> bool:
    """True for the `hf:DIR` and `gguf:FILE` model specifications."""
    return isinstance(spec, str) and spec.startswith((HF_PREFIX, GGUF_PREFIX))


def load_float_model(spec: str, backend: str | None = None):
    """Load `hf:DIR` or `gguf:FILE` once; Compressor/Decompressor wrap it in a FloatEngine.
    `backend`: None (CUDA when torch sees a GPU, else CPU), "torch-cpu" or "torch-cuda"."""
    if spec.startswith(HF_PREFIX):
        from .hf import HFModel

        return HFModel(spec[len(HF_PREFIX):], backend)
    if spec.startswith(GGUF_PREFIX):
        from .gguf import GGUFModel

        return GGUFModel(spec[len(GGUF_PREFIX):], backend)
    raise FloatEngineError(f"{spec!r} is not a float model; write hf:DIR or gguf:FILE")


def is_float_model(model: object) -> bool:
    """A loaded float model (HFModel, GGUFModel) or a spec naming one."""
    return is_float_spec(model) or getattr(model, "engine_kind", None) in ENGINE_NAMES
