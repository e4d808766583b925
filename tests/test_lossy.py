"""Lossy mode: every level's archive decodes with the normal decoder to the reported
reconstruction, which keeps the level's bound and the protected spans; quality 100 is
the lossless archive byte for byte."""

import argparse

import pytest

from lmpress.codec import Compressor, Decompressor
from lmpress.codec import compress as one_shot
from lmpress.lossy import LADDER, ProtectError, QualityError, compress, level_for
from lmpress.lossy.command import add_arguments, transform
from lmpress.lossy.distortion import bound_problems, chrf, semantic_similarity
from lmpress.lossy.report import render_report
from lmpress.lossy.units import KINDS, compile_protect, layout, protected_spans, to_text

PROSE = (b"The decoder must compute exactly the same probabilities as the encoder, bit for "
         b"bit, on every machine, or the message turns into noise after a few hundred "
         b"characters. When the model is surprised, the file grows; when it knows what "
         b"comes next, the file shrinks.  This is why people say that compression is a "
         b"form of intelligence,\tand why a language model can be used as a compressor.\n")
PROTECTED = ["3.14159", "2026-11-29", "https://example.org/a?b=1", "/usr/share/doc",
             "x = read_lines(path)", "    return 42"]
MIXED = (b"Version 3.14159 was released on 2026-11-29; see https://example.org/a?b=1 and "
         b"the files in /usr/share/doc for the notes. The model reads the text.\n\n"
         b"```\nx = read_lines(path)\n```\n\ndef f():\n    return 42\n\n" + PROSE)
TEXTS = {
    "prose": PROSE * 2,
    "code": b"def add(self, key, n=1):\n    self.counts[key] = self.counts.get(key, 0) + n\n"
            b"for i in range(10):\n  print(i, 'is even')\n",
    "mixed": MIXED,
    "chinese": "压缩就是智能。模型预测下一个字，编码器只为意外付出比特。".encode() * 3,
    "crlf": PROSE.replace(b"\n", b"\r\n") +
    "second   line \u2014 with\r\n\r\n\r\n\r\nend\r\n".encode(),
    "invalid": b"the model \xff\xfe reads \xc3( bytes and the text \x80 ends here.\n" * 3,
    "typographic": "\u201cQuoted\u201d text \u2014 with dashes\u2026 and \u2018ticks\u2019."
                   .encode() * 4,
    "empty": b"",
    "one": b"a",
}


@pytest.fixture(scope="module")
def comp(tiny_model):
    return Compressor(tiny_model)


@pytest.fixture(scope="module")
def dec(tiny_model):
    return Decompressor(tiny_model)


@pytest.mark.parametrize("quality", [lv.quality for lv in LADDER])
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_level_decodes_to_the_reconstruction_within_bound(comp, dec, quality, name):
    data = TEXTS[name]
    res = compress(data, quality, compressor=comp, semantic=False)
    assert dec.decompress(res.archive) == res.reconstruction
    text, rec = to_text(data), to_text(res.reconstruction)
    prot = [text[a:b] for a, b in protected_spans(text)]
    assert bound_problems(text, rec, res.level, prot) == []
    assert res.normalised_edit_distance <= res.level.edit_budget * max(1, len(text))
    if quality == 100:
        assert res.reconstruction == data


def test_quality_100_is_bit_identical_to_lossless(comp, tiny_model):
    for data in TEXTS.values():
        lossless = Compressor(tiny_model).compress(data)
        assert compress(data, 100, compressor=comp).archive == lossless
        assert one_shot(data, model=tiny_model, quality=100) == lossless
        assert one_shot(data, model=tiny_model) == lossless


def test_protected_spans_come_back_exactly(comp, dec):
    for quality in (50, 10, 0):
        res = compress(MIXED, quality, compressor=comp, semantic=False)
        rec = dec.decompress(res.archive).decode()
        pos = 0
        for span in PROTECTED:
            pos = rec.index(span, pos) + len(span)  # present, unchanged, in order


def test_low_quality_changes_prose_and_saves_bits(comp):
    res = compress(PROSE * 3, 0, compressor=comp, semantic=False)
    assert res.reconstruction != PROSE * 3
    assert res.n_substitutions + res.n_deletions + res.n_case_changes > 0
    assert b"\t" not in res.reconstruction and b"  " not in res.reconstruction  # layout
    assert res.lossy_bytes < res.lossless_bytes


def test_user_protect_pattern_and_unprotect(comp):
    data = PROSE * 3
    res = compress(data, 0, compressor=comp, protect=(r"[^.]*\.",), semantic=False)
    assert to_text(res.reconstruction).count("The decoder must compute exactly the same "
                                             "probabilities as the encoder,") == 3
    spans = protected_spans("Call GitHub on 2026-11-29", kinds=("names",))
    assert spans == [(5, 11)]
    with pytest.raises(ProtectError, match="not a valid regular expression"):
        compile_protect(["[unclosed"])
    with pytest.raises(ProtectError, match="matches the empty string"):
        compile_protect(["x*"])
    with pytest.raises(ProtectError, match="unknown protected kind"):
        protected_spans("x", kinds=("everything",))


def test_checker_detects_violations():
    lv = level_for(90)
    o = "The quick brown fox jumps over the lazy dog near 42 lanes."
    assert bound_problems(o, o.upper().replace("42", "42"), lv, ["42"]) == []  # case free
    assert bound_problems(o, o.replace("  ", " "), lv, ["42"]) == []
    bad = o.replace("quick brown", "slow red")
    assert any("exceeds the budget" in p for p in bound_problems(o, bad, lv, ["42"]))
    assert any("protected" in p for p in bound_problems(o, o.replace("42", "43"), lv, ["42"]))
    assert bound_problems(o, o + " ", level_for(100), []) != []


def test_levels_map_the_whole_scale():
    assert level_for(100).lossless and level_for(95).quality == 90
    assert level_for(42).quality == 30 and level_for(0).quality == 10
    budgets = [lv.edit_budget for lv in LADDER]
    assert budgets == sorted(budgets)
    for bad in (-1, 101, 50.5, True):
        with pytest.raises(QualityError, match="0 to 100"):
            level_for(bad)


def test_layout_normalisation():
    assert layout("a  b\t\tc \r\nd\r\n\r\n\r\n\r\ne\u2019s \u201cx\u201d\u2026") == \
        "a b c\nd\n\ne's \"x\"..."
    assert layout(layout("x \n\n\n y")) == layout("x \n\n\n y")


@pytest.mark.parametrize("hyp,ref", [
    ("the cat sat on the mat", "the cat sat on a mat"),
    ("A compressor that predicts well.", "A compressor which predicts the next word well."),
    ("完全不同", "压缩就是智能"), ("short", "a much longer reference text here"),
    ("", "x"), ("same text", "same text")])
def test_chrf_matches_sacrebleu(hyp, ref):
    sacrebleu = pytest.importorskip("sacrebleu")
    want = sacrebleu.metrics.CHRF().sentence_score(hyp, [ref]).score
    assert chrf(hyp, ref) == pytest.approx(want, abs=1e-6)


def test_semantic_similarity(comp):
    e = comp.engine
    assert semantic_similarity(e, PROSE, PROSE) == 1.0
    s = semantic_similarity(e, PROSE, PROSE.replace(b"model", b"machine"))
    far = semantic_similarity(e, PROSE, TEXTS["chinese"])
    assert -1 <= far < s < 1


def test_cli_options_and_transform(comp):
    p = argparse.ArgumentParser()
    add_arguments(p)
    assert p.parse_args([]).quality == 100
    with pytest.raises(SystemExit):
        p.parse_args(["--quality", "101"])
    args = p.parse_args(["--quality", "10", "--protect", "model", "--unprotect", "names"])
    args.verbose = True
    said = []
    rec = transform(args, PROSE, comp, said.append)
    assert rec == compress(PROSE, 10, compressor=comp, protect=("model",),
                           kinds=tuple(k for k in KINDS if k != "names"),
                           semantic=False).reconstruction
    assert to_text(rec).count("model") == PROSE.count(b"model")
    assert len(said) == 1 and "quality 10" in said[0]
    args100 = p.parse_args([])
    assert transform(args100, PROSE, comp, said.append) is PROSE


def test_report_page_is_self_contained(comp, tiny_model, tmp_path):
    from lmpress.inspect.records import inspect_bytes

    res = compress(PROSE * 2, 10, compressor=comp)
    page = render_report(res, inspect_bytes(res.reconstruction, model=tiny_model), "t")
    assert "lmp-filled" in page and "renderHeatmap" in page and "<script src" not in page
    assert f"{res.lossy_bytes} bytes" in page and "chrF" in page
    p = argparse.ArgumentParser()
    add_arguments(p)
    out = tmp_path / "r.html"
    args = p.parse_args(["--quality", "10", "--lossy-report", str(out)])
    transform(args, PROSE, comp, lambda s: None)
    assert out.read_text().startswith("<!doctype html>")


def test_lookahead_prices_rows_as_a_fresh_pass_would(comp):
    import numpy as np

    from lmpress.lossy.lookahead import Row, fork, price

    e = comp.engine
    prefix = e.tok.encode(b"The model reads").tolist()
    rows = [Row(0, e.tok.encode(b" the text and").tolist(), 1),
            Row(1, e.tok.encode(b" a file, then").tolist(), 2)]
    st = e.lm.new_state(2)
    for t in [e.cfg.bos_id] + prefix:
        f = e.tables(st, np.array([[t], [t]]))[:, -1]
    keys = [k.copy() for k in st.keys]
    price(e, st, f, rows, np.ones(e.cfg.vocab_size, bool))
    assert all((a == b).all() for a, b in zip(keys, st.keys))  # the state is untouched
    assert fork(e.lm, st, [1, 1]).keys[0].shape[0] == 2
    for r in rows:  # the same bits as one fresh pass over BOS + prefix + row
        fresh, want = e.lm.new_state(1), 0.0
        for i, tok in enumerate([e.cfg.bos_id] + prefix + r.tokens[:-1]):
            t = e.tables(fresh, np.array([[tok]]))[0, 0]
            if i >= len(prefix):
                want += np.log2(t.sum() / t[r.tokens[i - len(prefix)]])
        assert r.bits == pytest.approx(want, abs=1e-9)
        assert r.p_continue == pytest.approx(1.0)  # every token counted as continuing


def test_decide_goes_by_window_prices_and_skips_fragments(comp):
    from lmpress.lossy.lookahead import Row
    from lmpress.lossy.search import Option, Search

    search = Search(comp.engine, level_for(30), 1.0)

    def options(sub_bits, p_continue):
        keep, sub = Option(" cat", "keep", 0, [1]), Option(" dog", "sub", 3, [2])
        keep.row = Row(0, [1, 5], 1, bits=20.0)
        sub.row = Row(0, [2, 5], 1, bits=sub_bits, p_continue=p_continue)
        return [keep, sub]

    choice, tokens = search._decide(options(10.0, 0.1))
    assert (choice.kind, choice.chosen, tokens, choice.saved_bits) == ("sub", " dog", [2], 10.0)
    assert search._decide(options(10.0, 0.9))[0].kind == "keep"  # a word fragment
    assert search._decide(options(18.0, 0.1))[0].kind == "keep"  # 2 bits < 0.8 x 3 edits
