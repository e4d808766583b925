"""Round trips, fallback bounds and bad archives through the public API."""

import os
import pydoc
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lmpress
from lmpress.codec import Compressor, Decompressor
from lmpress.errors import LmpressError, ModelNotFoundError, OutputLimitError

SAMPLES = {
    "empty": b"",
    "one_byte": b"x",
    "invalid_utf8": b"abc\xff\xfe\xc3(\xa0\xa1 \xe2\x28\xa1 ok \xf0\x90\x28\xbc end",
    "nul_heavy": b"\x00" * 3000 + b"a\x00b\x00" * 500 + b"\x00" * 100,
    "chinese_emoji": ("压缩就是智能。模型预测得越好，文件就越小 😀🚀 "
                      "mixed with English 🎉\n").encode() * 30,
    "source_code": open(pydoc.__file__, "rb").read()[:30000],
}


def english_text(n_bytes: int) -> bytes:
    """Real English prose from the standard library's docstrings, about n_bytes long."""
    import email
    import http.client
    import json
    import logging
    import pathlib
    import subprocess
    import typing

    parts, size = [], 0
    for mod in (typing, logging, subprocess, pathlib, json, email, http.client, os, random):
        for name in sorted(n for n in dir(mod) if n not in ("io", "re")):
            doc = getattr(getattr(mod, name, None), "__doc__", None)
            if isinstance(doc, str) and len(doc) > 200:
                parts.append(doc.encode())
                size += len(doc)
    text = b"\n\n".join(parts)
    return (text * (n_bytes // max(1, len(text)) + 1))[:n_bytes]


@pytest.fixture(scope="module")
def comp(tiny_model):
    return Compressor(tiny_model, fallback=False, batch_size=64)


@pytest.fixture(scope="module")
def decomp(tiny_model):
    return Decompressor(tiny_model, batch_size=64)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_roundtrip_lm_path(name, comp, decomp):
    data = SAMPLES[name]
    archive = comp.compress(data)
    assert decomp.decompress(archive) == data
    if data:
        assert comp.stats.kinds.get("lm", 0) > 0


def test_special_token_text_is_ordinary_bytes(comp, decomp, tiny_model):
    data = b"a <|bos|> in the text, <|bos|><|bos|> twice, and <|endoftext|>\n"
    assert decomp.decompress(comp.compress(data)) == data
    assert tiny_model.tokenizer_json and comp.engine.cfg.bos_id not in \
        comp.engine.tok.encode(data).tolist()


def test_all_single_bytes(comp, decomp):
    for b in range(256):
        assert decomp.decompress(comp.compress(bytes([b]))) == bytes([b])


def test_english_megabyte(tiny_model):
    data = english_text(1 << 20)
    archive = Compressor(tiny_model, batch_size=64).compress(data)
    assert Decompressor(tiny_model).decompress(archive) == data


def test_random_5mb_grows_at_most_half_percent(tiny_model):
    data = random.Random(0).randbytes(5 << 20)
    archive = Compressor(tiny_model).compress(data)
    assert len(archive) <= len(data) * 1.005 + 1024
    assert Decompressor(tiny_model).decompress(archive) == data


def test_estimate_matches_archive(tiny_model):
    data = english_text(20000)
    c = Compressor(tiny_model, fallback=False)
    archive = c.compress(data)
    assert c.stats.lm_bytes_out <= c.stats.estimate_bits / 8 * 1.001 + 2 * c.stats.kinds["lm"]
    assert Decompressor(tiny_model).decompress(archive) == data


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=600))
def test_hypothesis_roundtrip(tiny_model, data):
    c = Compressor(tiny_model, fallback=False, segment_bytes=97)
    assert Decompressor(tiny_model).decompress(c.compress(data)) == data


def test_every_flipped_byte_is_detected(comp, tiny_model):
    archive = comp.compress(SAMPLES["source_code"][:400])
    d = Decompressor(tiny_model)
    for i in range(len(archive)):
        bad = bytearray(archive)
        bad[i] ^= 0x10
        with pytest.raises(LmpressError):
            d.decompress(bytes(bad))


def test_truncated_archive(comp, decomp):
    archive = comp.compress(b"hello hello hello")
    for n in range(len(archive)):
        with pytest.raises(LmpressError):
            decomp.decompress(archive[:n])


def test_concatenated_members(comp, decomp):
    a, b = b"first member ", b"second member"
    assert decomp.decompress(comp.compress(a) + comp.compress(b)) == a + b


def test_output_limit(comp, decomp):
    archive = comp.compress(b"y" * 5000)
    with pytest.raises(OutputLimitError, match="raise max_output_size"):
        decomp.decompress(archive, max_output_size=4999)
    assert decomp.decompress(archive, max_output_size=5000) == b"y" * 5000


def test_foreign_file_message(decomp):
    with pytest.raises(LmpressError, match="not an lmpress archive"):
        decomp.decompress(b"PK\x03\x04 this is a zip file")


def test_wrong_model_names_the_model_and_digest(comp, tiny_model):
    archive = comp.compress(b"some text that the model codes")
    with pytest.raises(ModelNotFoundError, match="tiny-test.*not installed"):
        lmpress.decompress(archive)  # the default search cannot find 'tiny-test'


def test_weights_made_in_memory_get_their_file_digest(tiny_model):
    """Freshly quantized weights have no digest yet; their archives must still carry the
    16-byte digest (an empty one shifted the header and made archives unreadable)."""
    import dataclasses

    from conftest import TEXT

    data = TEXT.encode()[:300]
    fresh = dataclasses.replace(tiny_model, digest="")
    archive = Compressor(fresh).compress(data)
    assert archive == Compressor(tiny_model).compress(data)
    assert Decompressor(tiny_model).decompress(archive) == data


def test_archives_of_every_shipped_model_decode_without_naming_it():
    """The header names the model, so archives made with an earlier default (or any
    shipped model) decode with a plain decompress, whatever the default is now."""
    from lmpress.model.registry import DEFAULT_MODEL, SHIPPED

    text = "Compression is prediction: a model that knows what comes next pays little.\n"
    for name in SHIPPED:
        archive = Compressor(name).compress(text.encode())
        assert name.encode() in archive[:64]
        assert Decompressor().decompress(archive) == text.encode()
    if SHIPPED:
        assert DEFAULT_MODEL in SHIPPED
