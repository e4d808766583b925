"""Training from a shipped model: dequantizing integer weights, and a run that starts from
them and goes on with the chunks after the ones the first model saw."""

import numpy as np
import pytest
from conftest import TEXT

from lmpress.model.quantize import dequantize_model, quantize_model
from lmpress.model.tokenizer import ByteTokenizer


def _same_tensors(a, b) -> list[str]:
    return [k for k in a.tensors if not np.array_equal(np.asarray(a.tensors[k]),
                                                       np.asarray(b.tensors[k]))]


def test_dequantized_weights_quantize_back_to_the_same_model(tiny_model):
    floats = dequantize_model(tiny_model)
    again = quantize_model(floats, tiny_model.config, tiny_model.tokenizer_json,
                           tiny_model.name, tiny_model.fixed)
    assert set(again.tensors) == set(tiny_model.tensors)
    assert _same_tensors(tiny_model, again) == []


def _run_dir(tmp_path, model):
    (tmp_path / "tokenizer.json").write_text(model.tokenizer_json, encoding="utf-8")
    ids = ByteTokenizer(model.tokenizer_json).encode(TEXT.encode() * 4)
    np.save(tmp_path / "tokens.npy", ids.astype(np.uint16))
    return tmp_path


def test_a_run_starts_from_the_given_weights(tiny_model, tmp_path):
    pytest.importorskip("torch")
    from lmpress.train.export import export
    from lmpress.train.trainer import TrainConfig, load_trained, train

    run = _run_dir(tmp_path, tiny_model)
    tc = TrainConfig(batch_size=2, warmup_steps=1)
    train(run, tiny_model.config, tc, 0.0, init=dequantize_model(tiny_model))  # no step
    out = export(load_trained(run), tiny_model.tokenizer_json, tiny_model.name,
                 tmp_path / "again.safetensors")
    assert _same_tensors(tiny_model, out) == []


class _Stop(Exception):
    pass


def test_the_data_offset_moves_on_through_the_chunk_order(tiny_model, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from lmpress.train import trainer

    run, seen = _run_dir(tmp_path, tiny_model), []

    def first_batch_only(self, idx):
        seen.append(idx)
        raise _Stop

    monkeypatch.setattr(trainer.LlamaLM, "forward", first_batch_only)
    for offset in (0, 3):
        tc = trainer.TrainConfig(batch_size=2, max_steps=1, data_offset_steps=offset)
        with pytest.raises(_Stop):
            trainer.train(run, tiny_model.config, tc, 1.0, init=dequantize_model(tiny_model))
    T = tiny_model.config.window
    tokens = torch.from_numpy(np.load(run / "tokens.npy").astype(np.int64))
    order = torch.randperm((tokens.numel() - 1) // T,
                           generator=torch.Generator().manual_seed(1234))
    for offset, idx in zip((0, 3), seen):
        chunks = order[offset * 2:offset * 2 + 2]
        # position 0 may have been replaced by BOS; the rest is the chunk as stored
        expect = tokens[chunks[:, None] * T + torch.arange(1, T)[None, :]]
        assert torch.equal(idx[:, 1:], expect)


def test_a_wall_clock_schedule_decays_over_the_budget():
    pytest.importorskip("torch")
    from lmpress.train.trainer import TrainConfig, lr_at

    tc = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=0, min_lr_frac=0.1)
    assert lr_at(4, tc, frac=0.9) == pytest.approx(5e-4)  # warmup counts steps
    assert lr_at(50, tc, frac=0.0) == pytest.approx(1e-3)
    assert lr_at(50, tc, frac=0.5) == pytest.approx(5.5e-4)
    assert lr_at(50, tc, frac=1.5) == pytest.approx(1e-4)


def test_a_bf16_run_on_a_time_budget_trains(tiny_model, tmp_path):
    pytest.importorskip("torch")
    from lmpress.train.trainer import TrainConfig, train

    run = _run_dir(tmp_path, tiny_model)
    tc = TrainConfig(batch_size=2, warmup_steps=1, max_steps=0)
    state = train(run, tiny_model.config, tc, 0.05, init=dequantize_model(tiny_model),
                  precision="bf16")
    assert state["step"] >= 2
    # prequential: the steps of the first pass over the data (an idle machine gets past it)
    T = tiny_model.config.window
    first_pass = -(-((len(np.load(run / "tokens.npy")) - 1) // T) // 2)  # batches of 2
    assert state["prequential_tokens"] == min(state["step"], first_pass) * 2 * T
    assert 0 < state["prequential_bits"] / state["prequential_bytes"] < 16
