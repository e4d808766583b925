"""Adaptation 2: order-1 counts mixed into the LM's integer tables (coding/counts.py)."""

import numpy as np
import pytest
from conftest import TEXT

from lmpress.codec import Compressor, Decompressor
from lmpress.coding import counts
from lmpress.coding.counts import Counts
from lmpress.container import Header
from lmpress.streams import table_numbers


def _filled(rng, V=50, pairs=600):
    c = Counts(V, 10_000)
    for _ in range(pairs // 30):  # steps of 30 streams
        c.add(rng.integers(0, 4, 30), rng.integers(0, V, 30), rng.integers(0, V, 30))
    c.add(np.full(30, 1), np.full(30, 3), np.full(30, 7))  # a context seen often
    return c


@pytest.mark.parametrize("block", [64, 8])  # one block (V = 50), and several
def test_encoder_numbers_are_those_of_the_decoders_table(block, monkeypatch):
    monkeypatch.setattr(counts, "BLOCK", block)
    rng = np.random.default_rng(1)
    V, B = 50, 12
    c = _filled(rng, V)
    f = rng.integers(1, 1 << 22, (B, V))
    prev1, prev2 = rng.integers(0, V, B), rng.integers(0, 4, B)
    prev2[:3], prev1[:3] = (1, 1, 40), (3, V - 1, V - 1)
    c.n[V - 1], c.blocks[V - 1] = 0, 0  # never seen: the LM's table
    want = rng.integers(0, V, (B, 3))
    want[0, 0] = 7
    s, fr, tot = table_numbers(f, want)
    mixed, cum = c.mix_table(prev2, prev1, f)
    assert np.array_equal(cum, np.cumsum(mixed, 1))
    assert (mixed[2] == f[2]).all() and (mixed[1] != f[1]).any()  # order 2 alone
    assert (mixed > f).sum() > B  # the counts added something
    assert [a.tolist() for a in c.mix_numbers(prev2, prev1, want, s, fr, tot)] == \
        [a.tolist() for a in table_numbers(mixed, want)]


def test_the_counts_share_grows_with_the_context_to_its_limit():
    total = np.array([1 << 28])
    for w_max, k in ((counts._W1, counts._K1), (counts._W2, counts._K2)):
        shares = []
        for m in (1, k, 100, 5000):
            mult = int(counts._multiplier(w_max, k, np.array([m]), total)[0])
            shares.append(mult * m / (total[0] + mult * m))
        assert shares == sorted(shares) and shares[0] > 0
        assert shares[1] == pytest.approx(w_max / 2 / 65536, abs=1e-6)  # half at m = k
        assert shares[-1] == pytest.approx(w_max / 65536, abs=1e-3)
    assert counts._multiplier(counts._W1, counts._K1, np.array([0]), total)[0] == 0


def test_a_full_context_replaces_its_least_counted_successor(monkeypatch):
    monkeypatch.setattr(counts, "ORDER2_BITS", 3)  # 8 slots: contexts collide
    c = Counts(50, 1000)
    one = np.array([1])
    for t in [5, 5] + list(range(10, 17)) + [10, 20]:  # 9th successor, then 10 and 20
        c.add(one, one, np.array([t]))
    succ, cnt = c._order2(one, one)
    assert succ[0].tolist() == [5, 10, 20, 12, 13, 14, 15, 16]  # 11 went, then 20 came
    assert cnt[0].tolist() == [2, 2, 1, 1, 1, 1, 1, 1]
    key, slot = c._slots(np.arange(50), np.full(50, 1))
    other = int(np.flatnonzero((slot == slot[1]) & (key != key[1]))[0])
    c.add(np.array([other]), one, np.array([9]))  # another context in the same slot
    assert c._order2(one, one)[0][0].tolist() == [-1] * 8
    assert c._order2(np.array([other]), one)[0][0].tolist() == [9] + [-1] * 7


def test_rewind_restores_the_counts():
    rng = np.random.default_rng(2)
    c = _filled(rng)
    state = ("n", "blocks", "tag", "succ", "cnt")
    before = [getattr(c, k).copy() for k in state]
    prev2, prev1, tok = (rng.integers(0, 50, 64) for _ in range(3))
    mark = c.mark(prev2, prev1, tok)
    for i in range(0, 64, 16):
        c.add(prev2[i:i + 16], prev1[i:i + 16], tok[i:i + 16])
    c.rewind(mark)
    assert all((a == getattr(c, k)).all() for a, k in zip(before, state))


def _varied():
    """Text whose word pairs recur far beyond the tiny model's 16-token window."""
    rng = np.random.default_rng(3)
    words = TEXT.split()[:60]
    return " ".join(words[i] for i in rng.integers(0, len(words), 1500)).encode()


def test_counts_shrink_archives_and_adaptation_1_archives_still_decode(tiny_model,
                                                                       monkeypatch):
    data = _varied()
    two = Compressor(tiny_model, segment_bytes=500, batch_size=4).compress(data)
    monkeypatch.setattr(counts, "MAX_VOCAB", 0)  # the encoder falls back to adaptation 1
    one = Compressor(tiny_model, segment_bytes=500, batch_size=4).compress(data)
    assert (Header.unpack(two)[0].adapt, Header.unpack(one)[0].adapt) == (2, 1)
    assert len(two) < 0.97 * len(one)
    assert Decompressor(tiny_model).decompress(one) == data
    with pytest.raises(Exception, match="adaptation 2 with a vocabulary"):
        Decompressor(tiny_model).decompress(two)  # a V x V table would not fit
    monkeypatch.undo()
    assert Decompressor(tiny_model, batch_size=3).decompress(two) == data


def _count2_one_by_one(c, prev2, prev1, tok):
    """docs/FORMAT.md's order-2 rule, stream by stream in table order."""
    key, slot = c._slots(prev2, prev1)
    for k, s, t in zip(key.tolist(), slot.tolist(), tok.tolist()):
        if c.tag[s] != k:
            c.tag[s], c.succ[s], c.cnt[s] = k, -1, 0
        hit = np.flatnonzero(c.succ[s] == t)
        e = hit[0] if len(hit) else int(np.argmin(c.cnt[s]))
        if not len(hit):
            c.succ[s, e], c.cnt[s, e] = t, 0
        c.cnt[s, e] += 1


def test_vectorized_order2_counting_follows_the_rule_stream_by_stream(monkeypatch):
    monkeypatch.setattr(counts, "ORDER2_BITS", 4)  # 16 slots: collisions in every step
    rng = np.random.default_rng(5)
    fast, slow = Counts(12, 10_000), Counts(12, 10_000)
    for _ in range(60):
        prev2, prev1, tok = (rng.integers(0, k, 24) for k in (3, 6, 12))
        fast.add(prev2, prev1, tok)
        _count2_one_by_one(slow, prev2, prev1, tok)
    assert (fast.tag == slow.tag).all() and (fast.succ == slow.succ).all()
    assert (fast.cnt == slow.cnt).all() and (fast.cnt > 1).any()
