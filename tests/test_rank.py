"""lmpress rank: score formulas against a direct computation, windows, NCD clusters,
thresholds, inputs, and the command on a directory and on JSONL (tiny seeded models)."""

import csv
import io
import json
import lzma
import math
import zlib

import numpy as np
import pytest
from conftest import CODE, PROSE, TEXT

from lmpress import cli
from lmpress.codec import _Engine
from lmpress.inspect.rank import (
    Document,
    Threshold,
    read_documents,
    score_rows,
    select,
    sort_order,
)
from lmpress.inspect.rank_command import main as rank_main
from lmpress.inspect.scores import (
    RankError,
    lm_scores,
    ncd,
    ncd_clusters,
    xz_size,
    zlib_size,
)
from lmpress.model.config import ModelConfig
from lmpress.model.quantize import quantize_model, seeded_float_weights
from lmpress.model.tokenizer import train_tokenizer
from lmpress.model.weights import IntegerWeights

DOCS = [PROSE.encode()[:300], CODE.encode()[:400], b"x", "naïve caf\u00e9 \u4e2d\u6587".encode(),
        " ".join(reversed(PROSE.split())).encode()[:350]]


@pytest.fixture(scope="module")
def observer_model(tiny_model):
    """A second tiny model with the same tokenizer and other weights (the observer)."""
    w = quantize_model(seeded_float_weights(tiny_model.config, 11), tiny_model.config,
                       tiny_model.tokenizer_json, "tiny-observer")
    return IntegerWeights.from_bytes(w.to_bytes())


@pytest.fixture(scope="module")
def engines(tiny_model, observer_model):
    return _Engine(tiny_model, "numpy", 4), _Engine(observer_model, "numpy", 4)


def _direct(model, observer, performer, ids):
    """Σ −ln p(x_i) of `model` and of `performer`, and Σ of the observer/performer
    cross-entropy, for one stream read in one window, straight from the integer tables."""
    engines = {id(e): e for e in (model, observer, performer)}
    states = {k: e.lm.new_state(1) for k, e in engines.items()}
    inp = np.concatenate([[model.cfg.bos_id], ids[:-1]])[None]
    nll = perf_nll = cross = 0.0
    for c in range(0, inp.shape[1], model.cfg.window):
        probs = {k: e.tables(states[k], inp[:, c:c + model.cfg.window])[0].astype(float)
                 for k, e in engines.items()}
        for t in range(inp[:, c:c + model.cfg.window].shape[1]):
            p, q, own = (probs[id(e)][t] / probs[id(e)][t].sum()
                         for e in (observer, performer, model))
            nll -= math.log(own[ids[c + t]])
            perf_nll -= math.log(q[ids[c + t]])
            cross -= float((p * np.log(q)).sum())
    return nll, perf_nll, cross


@pytest.mark.parametrize("roles", ["model observes", "model performs", "third model"])
def test_scores_match_a_direct_computation(engines, roles):
    a, b = engines
    model, observer, performer = {"model observes": (a, a, b), "model performs": (a, b, a),
                                  "third model": (a, b, b)}[roles]
    got = lm_scores(model, DOCS, (observer, performer))
    for data, s in zip(DOCS, got):
        ids = model.tok.encode(data)
        assert len(ids) <= model.cfg.max_positions  # one window
        nll, perf_nll, cross = _direct(model, observer, performer, ids)
        assert s.n_tokens == len(ids)
        assert s.nll == pytest.approx(nll, rel=1e-9)
        assert s.performer_nll == pytest.approx(perf_nll, rel=1e-9)
        assert s.cross_nll == pytest.approx(cross, rel=1e-9)
        assert s.bits == pytest.approx(nll / math.log(2))
        assert s.binoculars == pytest.approx((perf_nll / len(ids)) / (cross / len(ids)))


def test_without_a_pair_and_empty_documents(engines):
    a, b = engines
    alone, both = lm_scores(a, DOCS + [b""]), lm_scores(a, DOCS + [b""], (b, a))
    assert [x.nll for x in alone] == pytest.approx([y.nll for y in both], rel=1e-12)
    assert [y.nll for y in both] == pytest.approx([y.performer_nll for y in both], rel=1e-12)
    assert all(math.isnan(x.binoculars) and math.isnan(x.log_ppl) for x in alone)
    assert both[-1].n_tokens == 0 and math.isnan(both[-1].log_ppl)


def test_long_documents_are_scored_in_windows_after_bos(engines):
    a, b = engines
    data = TEXT.encode()
    ids = a.tok.encode(data)
    span = a.cfg.max_positions
    assert len(ids) > 2 * span
    (s,) = lm_scores(a, [data], (a, b))
    parts = np.array([_direct(a, a, b, ids[k:k + span]) for k in range(0, len(ids), span)])
    assert s.n_tokens == len(ids)
    assert [s.nll, s.performer_nll, s.cross_nll] == pytest.approx(parts.sum(0), rel=1e-9)


def test_binoculars_needs_one_tokenizer(tiny_model):
    other_tok = train_tokenizer(iter(["completely other text " * 50]), 280)
    cfg = ModelConfig(vocab_size=280, n_layer=1, n_head=2, n_embd=32, n_hidden=64,
                      window=16, max_positions=64)
    other = quantize_model(seeded_float_weights(cfg, 3), cfg, other_tok, "other")
    tiny = _Engine(tiny_model, "numpy", 2)
    with pytest.raises(RankError, match="same tokenizer"):
        lm_scores(tiny, [b"a"], (tiny, _Engine(other, "numpy", 2)))


def test_compressor_sizes():
    data = PROSE.encode()
    assert zlib_size(data) == len(zlib.compress(data, 9)) < len(data)
    preset_9e = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
    assert xz_size(data) == len(lzma.compress(data, format=lzma.FORMAT_RAW, filters=preset_9e))
    assert xz_size(b"") <= 2  # the raw payload: no container header


def test_ncd_identical_near_and_distinct():
    a, b = PROSE.encode(), CODE.encode()
    near = a.replace(b"compressor", b"compresser").replace(b"bits", b"bytes")
    assert ncd(a, a) < 0.1 and ncd(a, near) < 0.3
    assert ncd(a, b) > 0.6
    assert ncd_clusters([a, b, a, near, b"zzzz" * 3 + b"q"], 0.3) == [0, 1, 0, 0, 2]


def _root(parent, i):
    while parent[i] != i:
        i = parent[i]
    return i


def test_ncd_prefilter_finds_what_all_pairs_find():
    rng = np.random.default_rng(1)
    words = PROSE.split()
    docs = [" ".join(rng.choice(words, int(rng.integers(20, 80)))).encode() for _ in range(12)]
    docs += [d + b" extra" for d in docs[:4]] + [docs[5][:len(docs[5]) // 2]]
    for threshold in (0.2, 0.4, 0.6):
        parent = list(range(len(docs)))
        for i in range(len(docs)):
            for j in range(i + 1, len(docs)):
                if ncd(docs[i], docs[j]) <= threshold:
                    parent[_root(parent, j)] = _root(parent, i)
        brute = [_root(parent, i) for i in range(len(docs))]
        got = ncd_clusters(docs, threshold)
        assert all((got[i] == got[j]) == (brute[i] == brute[j])
                   for i in range(len(docs)) for j in range(len(docs)))


def test_thresholds_parse_and_hold():
    t = Threshold.parse(" bpb >= 1.5e0 ")
    assert (t.column, t.op, t.value) == ("bpb", ">=", 1.5)
    assert t.holds({"bpb": 1.5}) and not t.holds({"bpb": 1.4})
    assert not t.holds({"bpb": math.nan}) and not Threshold.parse("bpb<1").holds({"bpb": None})
    for bad in ("bpb", "bpb >> 1", "id<3", "speed>1", "bpb>one", "bpb>1;"):
        with pytest.raises(RankError, match="bad threshold"):
            Threshold.parse(bad)


def test_sort_and_select():
    rows = [{"id": str(i), "bpb": v, "cluster": c, "kept": True}
            for i, (v, c) in enumerate([(2.0, 0), (math.nan, 1), (1.0, 0), (2.0, 2), (3.0, 1)])]
    assert sort_order(rows, "bpb") == [2, 0, 3, 4, 1]
    assert sort_order(rows, "bpb", descending=True) == [4, 0, 3, 2, 1]
    order = sort_order(rows, "bpb")
    select(rows, order, keep=[Threshold.parse("bpb<2.5")], dedup=True)
    assert [r["kept"] for r in rows] == [False, False, True, True, False]
    select(rows, order, drop=[Threshold.parse("bpb==2")])
    assert [r["kept"] for r in rows] == [False, True, True, False, True]


def test_read_directory_and_jsonl(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_bytes(b"bee")
    (tmp_path / "d" / "sub" / "a.txt").write_bytes(b"\xff\x00")
    (tmp_path / "d" / ".hidden").write_bytes(b"no")
    docs = read_documents(tmp_path / "d")
    assert [(d.id, d.data) for d in docs] == [("b.txt", b"bee"), ("sub/a.txt", b"\xff\x00")]
    lines = [{"id": "x", "text": "one"}, {"path": "p/q", "text": "two"}, {"text": "three"}]
    jl = tmp_path / "c.jsonl"
    jl.write_text("\n".join(json.dumps(o) for o in lines[:2]) + "\n\n" + json.dumps(lines[2]))
    assert [(d.id, d.data) for d in read_documents(jl)] == [
        ("x", b"one"), ("p/q", b"two"), ("line 4", b"three")]
    jl.write_text('{"id": 1, "body": "b"}\n')
    assert read_documents(jl, "body")[0].data == b"b"


@pytest.mark.parametrize("content, message", [
    ('{"text": "ok"}\n{"text": "bad"\n', "line 2: not valid JSON"),
    ('{"text": "ok"}\n["text"]\n', 'line 2: expected an object with a string "text"'),
    ('{"id": 3, "text": 5}\n', 'line 1: expected an object with a string "text"')])
def test_bad_jsonl_names_the_line(tmp_path, content, message):
    (tmp_path / "c.jsonl").write_text(content)
    with pytest.raises(RankError, match=message):
        read_documents(tmp_path / "c.jsonl")


def test_score_rows(engines):
    a, b = engines
    docs = [Document(str(i), d) for i, d in enumerate(DOCS + [DOCS[0]])]
    rows = score_rows(docs, a, (a, b))
    r = rows[0]
    assert r["bpb"] == pytest.approx(r["lm_bits"] / r["n_bytes"])
    assert r["lm_zlib"] == pytest.approx(r["lm_bits"] / r["zlib_bits"])
    assert r["lm_xz"] == pytest.approx(r["lm_bits"] / r["xz_bits"])
    assert r["binoculars"] == pytest.approx(r["log_ppl"] / r["log_xppl"])
    assert rows[0]["cluster"] == rows[-1]["cluster"] and rows[0]["cluster_size"] == 2
    assert rows[1]["cluster"] != rows[0]["cluster"]
    no_ncd = score_rows(docs + [Document("empty", b"")], a, None, ncd=None)
    assert no_ncd[0]["cluster"] is None and math.isnan(no_ncd[0]["binoculars"])
    empty = no_ncd[-1]
    assert empty["n_tokens"] == 0 and empty["lm_bits"] == 0
    assert all(math.isnan(empty[k]) for k in ("bpb", "lm_zlib", "lm_xz", "binoculars"))


# -- the command --------------------------------------------------------------------------

@pytest.fixture
def rank(tiny_model_path, observer_model, tmp_path):
    obs_path = tmp_path / "observer.safetensors"
    observer_model.save(obs_path)

    def invoke(*argv):
        out, err = io.StringIO(), io.StringIO()
        rc = rank_main(["-m", tiny_model_path, "--performer", str(obs_path), *argv],
                       stdout=out, stderr=err, prog="lmpress rank")
        return rc, out.getvalue(), err.getvalue()

    return invoke


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    for name, data in [("prose.txt", PROSE), ("code.py", CODE), ("copy.txt", PROSE),
                       ("short.txt", "tiny")]:
        (d / name).write_text(data)
    return d


def test_command_on_a_directory(rank, corpus, tmp_path):
    rc, out, err = rank(str(corpus), "--sort", "binoculars", "--drop", "n_bytes<10",
                        "--dedup", "--keep-dir", str(tmp_path / "kept"), "-q")
    assert (rc, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["id", "n_bytes", "n_tokens", "bpb", "lm_bits", "zlib_bits",
                             "xz_bits", "lm_zlib", "lm_xz", "log_ppl", "log_xppl",
                             "binoculars", "cluster", "cluster_size", "kept"]
    scores = [float(r["binoculars"]) for r in rows]
    assert scores == sorted(scores)
    kept = {r["id"] for r in rows if r["kept"] == "1"}
    copies = [r for r in rows if r["id"] in ("prose.txt", "copy.txt")]
    assert copies[0]["cluster"] == copies[1]["cluster"] and copies[0]["cluster_size"] == "2"
    assert kept == {"code.py", copies[0]["id"]}
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == sorted(kept)
    assert (tmp_path / "kept" / "code.py").read_text() == CODE


def test_command_on_jsonl(rank, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": t, "extra": i}) + "\n"
                           for i, t in enumerate([PROSE, CODE, PROSE[:200]])))
    rc, out, err = rank(str(src), "--jsonl", str(tmp_path / "s.jsonl"), "--sort", "bpb",
                        "-r", "--keep", "n_bytes>300", "--keep-jsonl",
                        str(tmp_path / "k.jsonl"), "--no-binoculars")
    assert rc == 0 and out == "" and "3 documents" in err and "1 kept" not in err
    table = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [t["bpb"] for t in table] == sorted((t["bpb"] for t in table), reverse=True)
    assert all(t["binoculars"] is None for t in table)
    kept = [json.loads(x) for x in (tmp_path / "k.jsonl").read_text().splitlines()]
    assert sorted(k["id"] for k in kept) == ["d0", "d1"] and "extra" in kept[0]


@pytest.mark.parametrize("argv, message", [
    (["{missing}"], "no such file or directory"),
    (["{docs}", "--keep", "bpb=>1"], "bad threshold 'bpb=>1'"),
    (["{docs}", "--sort", "speed"], "cannot sort by 'speed'"),
    (["{bad}"], "line 2: not valid JSON"),
    (["{bad_jsonl_ok}", "--keep-dir", "{tmp}/k"], "--keep-dir copies the files"),
    (["{docs}", "--keep-dir", "{docs}"], "already exists"),
    (["{docs}", "--dedup", "--no-ncd"], "--dedup needs"),
    (["{docs}", "--performer", "lmpress-fast-v1"], "same tokenizer"),
    (["{docs}", "--keep-jsonl", "-"], "--csv and --keep-jsonl would both write to stdout"),
])
def test_command_errors_are_one_line(rank, corpus, tmp_path, argv, message):
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{oops}\n')
    (tmp_path / "ok.jsonl").write_text('{"text": "a"}\n')
    names = {"missing": tmp_path / "nope", "docs": corpus, "bad": tmp_path / "bad.jsonl",
             "bad_jsonl_ok": tmp_path / "ok.jsonl", "tmp": tmp_path}
    rc, out, err = rank(*[a.format(**names) for a in argv])
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("lmpress rank: ") and message in err, err
    assert not (tmp_path / "k").exists()


def test_existing_output_is_not_overwritten(rank, corpus, tmp_path):
    (tmp_path / "t.csv").write_text("keep me")
    rc, _, err = rank(str(corpus), "--csv", str(tmp_path / "t.csv"), "-q")
    assert rc == 1 and "already exists" in err
    assert (tmp_path / "t.csv").read_text() == "keep me"
    assert rank(str(corpus), "--csv", str(tmp_path / "t.csv"), "-f", "-q")[0] == 0
    assert (tmp_path / "t.csv").read_text().startswith("id,n_bytes")


def test_wired_into_the_cli(tiny_model_path, corpus, capsys):
    assert cli.main(["rank", str(corpus), "-m", tiny_model_path, "--no-binoculars",
                     "-q", "--sort", "id"]) == 0
    out = capsys.readouterr().out
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == [
        "code.py", "copy.txt", "prose.txt", "short.txt"]
