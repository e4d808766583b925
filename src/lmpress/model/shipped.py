"""Entries of the shipped models. The sha256 is recorded when a model is exported
(docs/TRAINING.md) and verified every time the file is loaded."""

from .registry import ShippedModel, register

register(ShippedModel(
    name="lmpress-small-v1",
    file="lmpress-small-v1.safetensors",
    sha256="def5d517c5a2b46432cf9d4d76faa86f038973c30062554d1e64dffc68e8a3e8",
    levels=(1, 2, 3, 4, 5, 6, 7, 8, 9),  # the only model so far: every level uses it
    summary="d=192, 5 layers, 4096-token BPE; Debian docs + Python stdlib; int8",
))
