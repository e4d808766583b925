"""`lmpress convert`: Hugging Face causal LMs (Llama, SmolLM, Mistral, Qwen2, Qwen3) into
the integer engine's model file, calibrated on a text sample, with the quality cost
measured on the same text (docs/CONVERT.md).

hf.py reads a checkpoint directory, tokens.py its tokenizer, calibrate.py chooses the
fixed-point layout (and smooths activation outliers), report.py compares bits, build.py
puts them together, command.py is the CLI."""

from ..errors import LmpressError


class ConvertError(LmpressError):
    """The checkpoint cannot be converted (not a causal LM, unsupported, missing extra)."""
