"""Golden archives from a fixed tiny seeded model: their bytes must never change unless
the format version or the adaptation method changes, and archives of earlier versions and
methods keep decoding. Regenerate only on purpose: LMPRESS_REGEN_GOLDEN=1 pytest."""

import hashlib
import os
from pathlib import Path

import pytest

from lmpress.codec import Compressor, Decompressor
from lmpress.container import ADAPT_MIX2, VERSION
from lmpress.model.config import ModelConfig
from lmpress.model.quantize import quantize_model, seeded_float_weights
from lmpress.model.tokenizer import train_tokenizer
from lmpress.model.weights import IntegerWeights

GOLDEN = Path(__file__).parent / "golden"
MODEL = GOLDEN / "golden-tiny.safetensors"
CASES = {
    "english": b"Compression is prediction: a model that guesses the next word well "
               b"needs few bits for it. " * 3,
    "bytes": bytes(range(256)) + b"\x00\xff" * 20,
    "chinese": "语言模型就是压缩器。".encode() * 4,
}
REGEN = os.environ.get("LMPRESS_REGEN_GOLDEN") == "1"


def _build_model() -> None:
    text = " ".join(v.decode("utf-8", "replace") for v in CASES.values()) * 3
    tj = train_tokenizer(iter([text]), 300)
    cfg = ModelConfig(vocab_size=300, n_layer=2, n_head=2, n_embd=32, n_hidden=64, window=16,
                      max_positions=128)
    from lmpress.model.tokenizer import ByteTokenizer

    cfg = ModelConfig(**{**cfg.__dict__, "vocab_size": ByteTokenizer(tj).vocab_size})
    quantize_model(seeded_float_weights(cfg, 2026), cfg, tj, "golden-tiny").save(MODEL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_archive(name):
    if REGEN and not MODEL.exists():  # the model itself is never rebuilt on purpose
        _build_model()
    model = IntegerWeights.load(MODEL)
    path = GOLDEN / f"{name}.v{VERSION}-adapt{ADAPT_MIX2}.lmp"
    archive = Compressor(model, fallback=False, segment_bytes=200).compress(CASES[name])
    if REGEN:
        path.write_bytes(archive)
    golden = path.read_bytes()
    assert hashlib.sha256(archive).hexdigest() == hashlib.sha256(golden).hexdigest(), \
        ("archive bytes changed: a format change needs a new VERSION or adaptation method "
         "and new golden files")
    assert Decompressor(model).decompress(golden) == CASES[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_version_1_archives_still_decode(name):
    """Format 1 (no adaptation) archives made by earlier releases keep decoding."""
    model = IntegerWeights.load(MODEL)
    assert Decompressor(model).decompress((GOLDEN / f"{name}.v1.lmp").read_bytes()) \
        == CASES[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_adaptation_1_archives_still_decode(name):
    """Version 2 archives with adaptation 1 (no order-1 counts), made by earlier releases."""
    model = IntegerWeights.load(MODEL)
    assert Decompressor(model).decompress((GOLDEN / f"{name}.v2-adapt1.lmp").read_bytes()) \
        == CASES[name]
