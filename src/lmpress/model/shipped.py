"""Entries of the shipped models. The sha256 is recorded when a model is exported
(docs/TRAINING.md) and verified every time the file is loaded."""

from .registry import ShippedModel, register

register(ShippedModel(
    name="lmpress-small-v1",
    file="lmpress-small-v1.safetensors",
    sha256="28560469fdbe4313c54f4f4ba15c031910cd937e9da5837bb477e1ba1c6ad83e",
    levels=(1, 2, 3, 4, 5, 6, 7, 8, 9),  # the only model so far: every level uses it
    summary="d=192, 5 layers, 4096-token BPE; Debian docs + Python stdlib; int8",
))
