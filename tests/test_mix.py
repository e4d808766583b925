"""Mixes (model/mix.py, engine/mix.py): two integer models whose logits are averaged with
integer shares; the same integers on every backend, bound into archives by a digest."""

import pickle

import numpy as np
import pytest
from conftest import TEXT

from lmpress.codec import Compressor, Decompressor
from lmpress.engine.backends import NumpyBackend
from lmpress.engine.mix import MixedLM
from lmpress.engine.transformer import IntegerLM
from lmpress.errors import LmpressError, ModelFileError
from lmpress.model.config import ModelConfig
from lmpress.model.mix import MixedWeights
from lmpress.model.quantize import quantize_model, seeded_float_weights
from lmpress.model.registry import SHIPPED, load_model, model_for_level
from lmpress.model.weights import IntegerWeights


@pytest.fixture(scope="module")
def other_model(tiny_model) -> IntegerWeights:
    """Another seeded model with the tiny model's tokenizer: one layer, a shorter window."""
    cfg = ModelConfig(vocab_size=tiny_model.config.vocab_size, n_layer=1, n_head=2,
                      n_embd=32, n_hidden=48, window=8, max_positions=192)
    w = quantize_model(seeded_float_weights(cfg, 11), cfg, tiny_model.tokenizer_json,
                       "tiny-other")
    return IntegerWeights.from_bytes(w.to_bytes())


@pytest.fixture(scope="module")
def mix(tiny_model, other_model) -> MixedWeights:
    return MixedWeights("tiny-mix", (tiny_model, other_model), (160, 96))


def test_mixed_logits_are_the_shared_integer_average(mix, tiny_model, other_model):
    xp = NumpyBackend()
    lms = [IntegerLM(w, xp) for w in (tiny_model, other_model)]
    m = MixedLM(mix, xp)
    tokens = np.array([[0, 5, 9, 17, 3, 40, 2, 8]] * 2)
    states, st = [lm.new_state(2) for lm in lms], m.new_state(2)
    for c in range(0, tokens.shape[1], 4):  # chunks no longer than the shorter window
        x = tokens[:, c:c + 4]
        want = (lms[0].forward(states[0], x) * 160 + lms[1].forward(states[1], x) * 96) >> 8
        assert np.array_equal(m.forward(st, x), want)
    assert st.pos == 8
    assert (mix.config.window, mix.config.max_positions) == (8, 192)


def test_round_trip_and_the_archive_names_the_mix(mix):
    data = TEXT.encode() * 2
    for adapt in (True, False):
        archive = Compressor(mix, adapt=adapt).compress(data)
        assert Decompressor(mix).decompress(archive) == data
    one = Compressor(mix.parts[0]).compress(data)
    assert one != archive
    with pytest.raises(LmpressError, match="needs model 'tiny-mix'.*without -m"):
        Decompressor(mix.parts[0]).decompress(archive)


def test_torch_backend_gives_the_same_archive(mix):
    pytest.importorskip("torch")
    data = TEXT.encode()
    by_numpy = Compressor(mix, backend="numpy").compress(data)
    assert Compressor(mix, backend="torch-cpu").compress(data) == by_numpy
    assert Decompressor(mix, backend="torch-cpu").decompress(by_numpy) == data


def test_digest_binds_parts_shares_and_order(mix, tiny_model, other_model):
    same = MixedWeights("renamed", (tiny_model, other_model), (160, 96))
    assert same.digest == mix.digest
    others = [MixedWeights("m", (tiny_model, other_model), (128, 128)),
              MixedWeights("m", (other_model, tiny_model), (96, 160))]
    assert len({mix.digest, *(m.digest for m in others)}) == 3


def test_a_mismatched_archive_is_refused_by_digest(mix, tiny_model, other_model):
    archive = Compressor(mix).compress(TEXT.encode())
    wrong = MixedWeights("tiny-mix", (tiny_model, other_model), (128, 128))
    with pytest.raises(LmpressError, match="weights digest"):
        Decompressor(wrong).decompress(archive)


def test_parts_must_share_tokenizer_and_shares_must_add_up(tiny_model, other_model):
    with pytest.raises(ModelFileError, match="sum"):
        MixedWeights("m", (tiny_model, other_model), (100, 100))
    with pytest.raises(ModelFileError, match="two or more"):
        MixedWeights("m", (tiny_model,), (256,))
    cfg = other_model.config
    alien = quantize_model(seeded_float_weights(cfg, 3), cfg,
                           tiny_model.tokenizer_json.replace("merges", "merges "), "alien")
    with pytest.raises(ModelFileError, match="tokenizer"):
        MixedWeights("m", (tiny_model, alien), (128, 128))


def test_a_mix_pickles_by_value_and_a_shipped_one_by_name(mix):
    back = pickle.loads(pickle.dumps(mix))
    assert back.digest == mix.digest and back.name == "tiny-mix"
    entry = next(m for m in SHIPPED.values() if m.parts)
    shipped = load_model(entry.name)
    assert shipped.digest == entry.sha256  # the recorded digest is the computed one
    assert len(pickle.dumps(shipped)) < 1000  # the name, not 20 MB of weights
    assert pickle.loads(pickle.dumps(shipped)) is shipped  # the registry's cached load


def test_level_9_is_the_shipped_mix():
    entry = SHIPPED[model_for_level(9)]
    assert entry.parts and all(p in SHIPPED for p in entry.parts)
    assert sum(entry.shares) == 256
