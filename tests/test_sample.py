"""Seeded sampling: the same seed gives the same text, streams do not depend on each
other, the table cuts (top-k, top-p, temperature 0, no EOS) behave, the command works."""

import io
import json

import numpy as np
import pytest

from lmpress import cli
from lmpress.codec import _Engine
from lmpress.inspect.sample import SampleError, SampleOptions, draw, sample, sample_tokens
from lmpress.inspect.sample_command import main as sample_main


@pytest.fixture(scope="module")
def engine(tiny_model):
    return _Engine(tiny_model, "numpy", 4)


def _one_stream(engine, seed, index, n_streams, n_tokens, prompt):
    """Reference: a single stream stepped alone with the index-th spawned generator."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed).spawn(n_streams)[
        index]))
    st = engine.lm.new_state(1)
    f = engine.tables(st, np.array([[engine.cfg.bos_id, *prompt]]))[0, -1]
    out = []
    for _ in range(n_tokens):
        tok = draw(f, rng, SampleOptions(), engine.cfg.bos_id)
        if tok == engine.cfg.bos_id:
            break
        out.append(tok)
        f = engine.tables(st, np.array([[tok]]))[0, 0]
    return out


def test_same_seed_same_text_other_seed_other_text(engine):
    a = sample(engine, 40, seed=5, prompt=b"The model", n_samples=2)
    assert a == sample(engine, 40, seed=5, prompt=b"The model", n_samples=2)
    assert a != sample(engine, 40, seed=6, prompt=b"The model", n_samples=2)
    assert a[0] != a[1]
    assert sample(engine, 15, seed=5, n_samples=5, group=2) == sample(engine, 15, seed=5,
                                                                       n_samples=5)


def test_streams_are_independent_of_batching(engine):
    prompt = engine.tok.encode(b"def ")
    batch = sample_tokens(engine, [30, 30, 30], seed=9, prompt=prompt)
    short = sample_tokens(engine, [3, 30, 1], seed=9, prompt=prompt)
    assert short[1].tolist() == batch[1].tolist()
    assert short[0].tolist() == batch[0][:3].tolist()
    for i in range(3):
        assert batch[i].tolist() == _one_stream(engine, 9, i, 3, 30, prompt)
    prompts = np.stack([engine.tok.encode(b"def ")[:2], engine.tok.encode(b"The ")[:2]])
    own = sample_tokens(engine, [20, 20], seed=3, prompt=prompts)
    for i in range(2):
        assert own[i].tolist() == _one_stream(engine, 3, i, 2, 20, prompts[i])
    with pytest.raises(SampleError, match="3 prompts for 2 streams"):
        sample_tokens(engine, [5, 5], seed=3, prompt=np.zeros((3, 2), dtype=np.int64))


def _table(*freqs):
    return np.array(freqs, dtype=np.int64)


def test_draw_follows_the_integer_table():
    rng = np.random.Generator(np.random.PCG64(0))
    f = _table(5, 0, 1000, 3000, 0)
    got = np.bincount([draw(f, rng, SampleOptions(), 0) for _ in range(4000)], minlength=5)
    assert got[1] == got[4] == 0
    assert 0.72 < got[3] / 4000 < 0.78 and got[0] < 30


@pytest.mark.parametrize("options, allowed", [
    (SampleOptions(temperature=0), {3}),
    (SampleOptions(top_k=1), {3}),
    (SampleOptions(top_k=2), {2, 3}),
    (SampleOptions(top_p=0.7), {3}),
    (SampleOptions(top_p=0.8), {2, 3}),
    (SampleOptions(temperature=0.3, top_k=3), {0, 2, 3}),
    (SampleOptions(stop_at_eos=False), {2, 3}),
])
def test_draw_cuts(options, allowed):
    rng = np.random.Generator(np.random.PCG64(1))
    f = _table(40, 0, 1000, 3000, 0)  # token 0 plays BOS / end of text
    got = {draw(f, rng, options, 0) for _ in range(300)}
    assert got <= allowed and (len(got) > 1 or len(allowed) == 1)


def test_low_temperature_sharpens():
    f = _table(1000, 3000)
    for t, lo, hi in ((1.0, 0.70, 0.80), (0.5, 0.87, 0.93), (3.0, 0.55, 0.65)):
        rng = np.random.Generator(np.random.PCG64(2))
        share = np.mean([draw(f, rng, SampleOptions(temperature=t), 5) for _ in range(4000)])
        assert lo < share < hi, (t, share)


def test_end_of_text_stops_a_stream(engine):
    class EndsAtStep3:
        """The tiny engine, except that BOS takes all the mass from the 4th table on."""

        def __init__(self, e):
            self.cfg, self.lm, self.tok, self.n = e.cfg, e.lm, e.tok, 0
            self.e = e

        def tables(self, st, tokens):
            f = self.e.tables(st, tokens)
            self.n += 1
            if self.n > 3:
                f[..., self.cfg.bos_id] = 1 << 40
            return f

    toks = sample_tokens(EndsAtStep3(engine), [10, 10], seed=1)
    assert [len(t) for t in toks] == [3, 3]
    toks = sample_tokens(EndsAtStep3(engine), [10], seed=1,
                         options=SampleOptions(stop_at_eos=False))
    assert len(toks[0]) == 10 and engine.cfg.bos_id not in toks[0]


def test_bad_requests(engine):
    with pytest.raises(SampleError, match="reads at most 256"):
        sample(engine, 300, seed=0)
    for bad in ({"temperature": -1}, {"temperature": float("nan")}, {"top_k": -2},
                {"top_p": 0}, {"top_p": 1.5}):
        with pytest.raises(SampleError):
            SampleOptions(**bad)
    assert sample(engine, 0, seed=0) == [b""] and sample(engine, 5, 0, n_samples=0) == []


def _run(*argv):
    out, err = io.BytesIO(), io.StringIO()
    rc = sample_main(list(argv), stdout=out, stderr=err, prog="lmpress sample")
    return rc, out.getvalue(), err.getvalue()


def test_command(tiny_model_path, engine, tmp_path):
    rc, out, err = _run("-m", tiny_model_path, "--seed", "4", "--tokens", "25",
                        "--prompt", "A compressor")
    assert (rc, err) == (0, "")
    assert out == b"A compressor" + sample(engine, 25, 4, b"A compressor")[0]
    assert _run("-m", tiny_model_path, "--seed", "4", "--tokens", "25", "--prompt",
                "A compressor")[1] == out
    rc, out, _ = _run("-m", tiny_model_path, "-n", "3", "--tokens", "10", "-o",
                      str(tmp_path / "s.jsonl"))
    lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert rc == 0 and out == b"" and [x["index"] for x in lines] == [0, 1, 2]
    assert lines[1]["text"].encode("utf-8", "surrogateescape") == sample(
        engine, 10, 0, n_samples=3)[1]


def test_command_errors_are_one_line(tiny_model_path, tmp_path):
    for argv, message in ((["--temperature=-1"], "temperature must be"),
                          (["--tokens", "999"], "reads at most"),
                          (["-o", str(tmp_path)], "is a directory")):
        rc, out, err = _run("-m", tiny_model_path, *argv)
        assert rc == 1 and out == b"" and err.count("\n") == 1 and message in err, err


def test_wired_into_the_cli(tiny_model_path, tmp_path):
    out = tmp_path / "o.txt"
    assert cli.main(["sample", "-m", tiny_model_path, "--tokens", "5", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
