"""Online adaptation: integer tables, exact round trips, lockstep groups, format fields."""

import random

import numpy as np
import pytest
from conftest import TEXT

from lmpress import codec
from lmpress.codec import Compressor, Decompressor
from lmpress.coding.adapt import SQUASH, STRETCH, Adaptation, squash
from lmpress.container import Header
from lmpress.errors import FormatError


def test_squash_and_stretch_are_monotone_inverses():
    assert all(a <= b for a, b in zip(SQUASH, SQUASH[1:]))
    assert all(a <= b for a, b in zip(STRETCH, STRETCH[1:]))
    assert squash(0) == 2047 and squash(-5000) == 1 and squash(5000) == 4094  # PAQ knots
    for p in range(1, 4096, 7):
        assert abs(squash(STRETCH[p]) - p) <= max(2, p // 40, (4096 - p) // 40)


def test_match_model_follows_a_repeat_in_another_group():
    seq = np.array([5, 9, 17, 3, 8, 21, 2, 40, 7, 11])
    ad = Adaptation(bos_id=0, n_tokens=2 * len(seq))
    first, second = ad.group([len(seq)]), ad.group([len(seq)])
    for n in range(len(seq)):
        first.push(n, np.array([0]), seq[n:n + 1], first.candidates(n, np.array([0])))
    guesses = []
    for n in range(len(seq)):
        cands = second.candidates(n, np.array([0]))
        guesses.append(int(cands[0][0]))
        second.push(n, np.array([0]), seq[n:n + 1], cands)
    # after MIN_MATCH tokens of context the match model predicts every following token
    assert guesses[4:] == seq[4:].tolist()


def test_streams_of_one_group_see_each_other_one_step_late():
    seq = np.array([5, 9, 17, 3, 8, 21, 2, 40, 7, 11, 12, 13])
    ad = Adaptation(bos_id=0, n_tokens=2 * len(seq))
    grp = ad.group([len(seq), len(seq)])
    both = np.array([0, 1])
    guesses = []
    for n in range(len(seq)):
        cands = grp.candidates(n, both)
        guesses.append(cands[0].tolist())
        grp.push(n, both, np.array([seq[n], seq[n]]), cands)
    # each stream's context also occurs in the other stream, but there its successor is
    # the token being coded in this very step, which is not visible yet
    assert guesses == [[-1, -1]] * len(seq)


def _repetitive(n_copies=6):
    rnd = random.Random(3)
    base = TEXT.encode()[:1500]
    out = bytearray()
    for _ in range(n_copies):
        copy = bytearray(base)
        for _ in range(5):
            copy[rnd.randrange(len(copy))] = rnd.choice(b"0123456789")
        out += copy
    return bytes(out)


@pytest.mark.parametrize("fallback", [True, False])
def test_adaptive_round_trip_and_gain(tiny_model, fallback):
    data = _repetitive()
    plain = Compressor(tiny_model, adapt=False, fallback=fallback, segment_bytes=600,
                       batch_size=4).compress(data)
    c = Compressor(tiny_model, fallback=fallback, segment_bytes=600, batch_size=4)
    archive = c.compress(data)
    assert Header.unpack(archive)[0].adapt == 2  # with order-1 counts (tests/test_counts.py)
    assert sum(c.stats.adapt_hits) > 0
    assert len(archive) < 0.6 * len(plain)
    # the decoder follows the archive's group size, whatever its own batch size
    assert Decompressor(tiny_model, batch_size=3).decompress(archive) == data


def test_streams_stored_otherwise_still_feed_the_history(tiny_model, monkeypatch):
    """Streams that LZMA or raw storage beat are decoded first, re-tokenized, and replayed
    into the lockstep history, so later streams predict the same way on both sides."""
    # Random bytes, which no model beats raw storage on, are tokenized when the zlib
    # pre-check that stores them without the model is lifted. (Random "ab" runs, which
    # LZMA used to win, are now learned by the successor counts.)
    monkeypatch.setattr(codec, "_INCOMPRESSIBLE", 2.0)
    rnd = random.Random(5)
    data = _repetitive(2) + bytes(rnd.randrange(256) for _ in range(700)) + _repetitive(2)
    c = Compressor(tiny_model, segment_bytes=300, batch_size=4)
    archive = c.compress(data)
    header = Header.unpack(archive)[0]
    assert any(s.kind != 1 and s.n_tokens for s in header.streams)
    assert Decompressor(tiny_model).decompress(archive) == data


def test_adaptation_is_off_on_request(tiny_model):
    data = _repetitive(2)
    archive = Compressor(tiny_model, adapt=False, segment_bytes=600).compress(data)
    header = Header.unpack(archive)[0]
    assert (header.adapt, header.group) == (0, 0)
    assert Decompressor(tiny_model).decompress(archive) == data


def test_unknown_adaptation_method_is_refused(tiny_model):
    archive = bytearray(Compressor(tiny_model, segment_bytes=600).compress(b"hello " * 50))
    pos = 4 + 2 + 1 + archive[6] + 16 + 16 + 8 + 16  # the adaptation byte
    assert archive[pos] == 2
    archive[pos] = 9
    with pytest.raises(FormatError, match="adaptation method 9"):
        Header.unpack(bytes(archive))


def test_many_streams_pushing_one_context_stay_in_range():
    """Updates of one step are summed; 64 streams hitting the same context must not push
    the hit rate past 1 or the weights out of their range."""
    from lmpress.coding.adapt import Mixer

    m = Mixer(2, 1 << 14)
    ctx = np.zeros(64, dtype=np.int64)
    for y in (1, 0, 1):
        p, saved = m.predict(ctx, np.full(64, 4000, dtype=np.int64))
        m.update(saved, np.full(64, y), np.ones(64, dtype=bool))
        assert 0 <= m.hit.min() and m.hit.max() < 1 << 16
        assert np.abs(m.w).max() <= 1 << 22
