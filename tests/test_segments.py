"""How the encoder cuts its input into streams: balanced by tokens, sized groups, and
archives that decode whatever the cut."""

import os
import random

import pytest
from conftest import CODE, PROSE

from lmpress.codec import Compressor, Decompressor
from lmpress.model.tokenizer import ByteTokenizer
from lmpress.segments import (
    auto_segment_bytes,
    balanced_segments,
    byte_segments,
    group_size,
    most_streams,
)


def _mixed(n_bytes: int, seed: int = 0) -> bytes:
    """Prose, code and Chinese in runs of uneven length: a text whose tokens per byte
    vary along it, as real files' do."""
    rng = random.Random(seed)
    parts, size = [], 0
    zh = "压缩就是理解：模型越懂文本，归档越小。".encode()
    while size < n_bytes:
        part = rng.choice([PROSE.encode(), CODE.encode(), zh * 20]) * rng.randint(1, 6)
        parts.append(part)
        size += len(part)
    return b"".join(parts)[:n_bytes].decode("utf-8", "ignore").encode()  # whole characters


@pytest.fixture(scope="module")
def tok(tiny_model):
    return ByteTokenizer(tiny_model.tokenizer_json)


def _spread(segments, tok):
    counts = [len(tok.encode(s)) for s in segments]
    return max(counts) / (sum(counts) / len(counts)), counts


@pytest.mark.parametrize("n_bytes", [1, 100, 5000, 70_000, 300_000])
def test_balanced_cut_covers_the_input(tiny_model, tok, n_bytes):
    data = _mixed(n_bytes)
    segs = balanced_segments(data, tok, tiny_model.config.max_positions, 8)
    assert b"".join(segs) == data
    assert all(segs)
    for s in segs:  # never inside a UTF-8 sequence
        s.decode("utf-8")


def test_balanced_cut_evens_out_tokens(tiny_model, tok):
    cfg = tiny_model.config
    data = _mixed(300_000, seed=3)
    balanced, counts = _spread(balanced_segments(data, tok, cfg.max_positions, 8), tok)
    by_bytes, _ = _spread(list(byte_segments(data, auto_segment_bytes(len(data), 8))), tok)
    assert balanced < 1.1 < by_bytes
    assert max(counts) <= cfg.max_positions


def test_dense_text_makes_more_streams_to_fit_positions(tiny_model, tok):
    """Chinese takes several tokens per character under this tiny tokenizer: the cut adds
    streams until each fits the model's 256 positions, instead of halving later."""
    cfg = tiny_model.config
    data = "模型越懂文本，归档越小。".encode() * 2000
    segs = balanced_segments(data, tok, cfg.max_positions, 8)
    assert len(segs) > -(-len(data) // auto_segment_bytes(len(data), 8))
    assert max(len(tok.encode(s)) for s in segs) <= cfg.max_positions


@pytest.mark.parametrize("n_streams, batch, expected", [
    (1, 8, 1), (8, 8, 8), (9, 8, 9), (16, 8, 16), (17, 8, 9), (33, 8, 11), (100, 16, 25),
])
def test_group_size(n_streams, batch, expected):
    g = group_size(n_streams, batch)
    assert g == expected and g <= 2 * batch
    n_groups = -(-n_streams // g)
    assert n_groups == max(1, -(-n_streams // (2 * batch)))


def test_models_with_large_rings_get_smaller_groups():
    from lmpress.model.config import ModelConfig

    small = ModelConfig(vocab_size=4096, n_layer=5, n_head=6, n_embd=192, n_hidden=512,
                        window=256, max_positions=4096)  # the default model's shape
    large = ModelConfig(vocab_size=4096, n_layer=8, n_head=6, n_embd=384, n_hidden=1024,
                        window=512, max_positions=4096)  # max-v1's
    huge = ModelConfig(vocab_size=4096, n_layer=32, n_head=32, n_embd=4096,
                       n_hidden=11008, window=4096, max_positions=4096)
    assert most_streams([small], 32) == 64
    assert most_streams([large], 32) == 42  # 42 x 6.3 MB of int16 rings: 264 MB
    assert most_streams([huge], 32) == 32  # never fewer than the batch
    assert most_streams([large, small], 32) == 36  # a mix: both parts' rings, 262 MB
    assert group_size(61, 32, most_streams([large], 32)) == 31
    assert group_size(61, 32) == 61


@pytest.mark.parametrize("n_bytes", [0, 1, 4095, 40_000, 200_000])
def test_round_trip_whatever_the_cut(tiny_model, n_bytes):
    data = _mixed(n_bytes, seed=n_bytes)
    archive = Compressor(tiny_model).compress(data)
    assert Decompressor(tiny_model).decompress(archive) == data


def test_incompressible_part_keeps_the_byte_cut(tiny_model):
    """Random bytes inside text are stored without the model segment by segment, so
    such input is cut by bytes, and still round-trips."""
    data = _mixed(60_000) + os.urandom(20_000) + _mixed(30_000, seed=1)
    c = Compressor(tiny_model)
    pieces, group = c._plan(data)
    assert group == c.engine.batch_size
    assert any(ids is None for _, ids in pieces)
    assert Decompressor(tiny_model).decompress(c.compress(data)) == data


def test_explicit_segment_bytes_keeps_the_byte_cut(tiny_model):
    data = _mixed(50_000)
    c = Compressor(tiny_model, segment_bytes=256)  # a token has a byte or more: fits
    pieces, group = c._plan(data)
    assert [seg for seg, _ in pieces] == list(byte_segments(data, 256))
    assert group == c.engine.batch_size
