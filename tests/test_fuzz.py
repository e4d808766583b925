"""Hostile archives: random and mutated bytes raise only LmpressError, quickly, and never
allocate beyond max_output_size."""

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmpress.codec import Compressor, Decompressor
from lmpress.container import MAGIC
from lmpress.errors import LmpressError

LIMIT = 1 << 16


@pytest.fixture(scope="module")
def seed_archive(tiny_model):
    return Compressor(tiny_model, fallback=False).compress(b"fuzz seed text, fuzz seed text!")


def _decode(tiny_model, data):
    start = time.monotonic()
    try:
        out = Decompressor(tiny_model).decompress(data, max_output_size=LIMIT)
        assert len(out) <= LIMIT
    except LmpressError:
        pass
    assert time.monotonic() - start < 10


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300))
def test_random_bytes(tiny_model, data):
    _decode(tiny_model, data)
    _decode(tiny_model, MAGIC + data)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_archives(tiny_model, seed_archive, data):
    buf = bytearray(seed_archive)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        i = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del buf[i:i + data.draw(st.integers(1, 8))]
        elif op == "insert":
            buf[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif buf:
            buf[i] = data.draw(st.integers(0, 255))
    _decode(tiny_model, bytes(buf))


def test_huge_declared_size_is_refused_before_allocating(tiny_model, seed_archive):
    # a valid archive whose header claims far more output than allowed
    big = Compressor(tiny_model).compress(b"\x00" * (LIMIT + 1))
    with pytest.raises(LmpressError, match="max_output_size"):
        Decompressor(tiny_model).decompress(big, max_output_size=LIMIT)
