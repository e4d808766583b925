"""lmpress bench: classical figures equal the stdlib's, categories, outputs, resume, bad
inputs, missing codecs as notes, and the model's estimate beside the real archive."""

import bz2
import csv
import gzip
import io
import json
import lzma
import os
import sys

import pytest
from conftest import CODE, PROSE

from lmpress import cli
from lmpress.bench import (
    BenchError,
    Codec,
    InputOptions,
    classical_codecs,
    collect_inputs,
    lmpress_codecs,
    run_bench,
)
from lmpress.bench import command as bench_command
from lmpress.bench import run as bench_run
from lmpress.bench.run import ALL, bootstrap_interval

FAST = "gzip,bzip2,xz"


@pytest.fixture
def corpus(tmp_path):
    """prose/{a,b}.txt, code/c.py, top.txt and an empty file: a small mixed directory."""
    root = tmp_path / "corpus"
    (root / "prose").mkdir(parents=True)
    (root / "code").mkdir()
    (root / "prose" / "a.txt").write_text(PROSE)
    (root / "prose" / "b.txt").write_text(PROSE[::-1] + PROSE[:200])
    (root / "code" / "c.py").write_text(CODE)
    (root / "top.txt").write_text(PROSE[:300])
    (root / "empty.txt").write_bytes(b"")
    return root


@pytest.fixture
def bench(capsys):
    """bench(*argv, stdin=b"") -> (status, stdout, stderr) through the real CLI entry."""

    def invoke(*argv, stdin=b""):
        rc = bench_command.main(list(argv), stdin=io.BytesIO(stdin), stdout=sys.stdout,
                                stderr=sys.stderr)
        out, err = capsys.readouterr()
        return rc, out, err

    return invoke


def test_classical_sizes_equal_the_stdlib_modules(corpus):
    inputs = collect_inputs([str(corpus)])
    codecs, notes = classical_codecs(["gzip", "bzip2", "xz"])
    result = run_bench(inputs, codecs)
    expected = {"gzip -9": lambda d: gzip.compress(d, compresslevel=9),
                "bzip2 -9": lambda d: bz2.compress(d, 9),
                "xz -9e": lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME)}
    data = {item.name: item.data for item in inputs.items}
    assert len(result.rows) == 3 * 4 and not notes
    for row in result.rows:
        assert row.status == "ok"
        assert row.n_bytes_out == len(expected[row.codec](data[row.name]))
        assert row.bits_per_byte == 8 * row.n_bytes_out / len(data[row.name])
        assert row.peak_mem_bytes is None or row.peak_mem_bytes >= 0


def test_directory_categories_globs_and_totals(corpus):
    inputs = collect_inputs([str(corpus)], InputOptions(exclude=("*.py",)))
    assert sorted((i.category, os.path.basename(i.name)) for i in inputs.items) == [
        ("(top)", "top.txt"), ("prose", "a.txt"), ("prose", "b.txt")]
    assert [os.path.basename(i.name) for i in inputs.empty] == ["empty.txt"]
    inputs = collect_inputs([str(corpus)], InputOptions(
        include=("*.txt",), categories=(("first", "prose/a.*"), ("first", "top.txt"))))
    assert sorted(i.category for i in inputs.items) == ["first", "first", "prose"]
    result = run_bench(inputs, classical_codecs(["gzip"])[0])
    by_cat = {t.category: t for t in result.totals}
    assert set(by_cat) == {"first", "prose", ALL}
    rows = result.rows
    assert by_cat[ALL].bits_per_byte == pytest.approx(
        8 * sum(r.n_bytes_out for r in rows) / sum(r.n_bytes_in for r in rows))
    assert by_cat[ALL].n_files == 3 and by_cat["first"].n_files == 2


def test_outputs_written_and_parseable(bench, corpus, tmp_path, tiny_model_path):
    small = tmp_path / "small"
    (small / "prose").mkdir(parents=True)
    (small / "prose" / "a.txt").write_text(PROSE[:400])
    (small / "code").mkdir()
    (small / "code" / "c.py").write_text(CODE[:300])
    out = tmp_path / "out"
    rc, stdout, err = bench(str(small), "--codecs", FAST + ",lmpress", "-m", tiny_model_path,
                            "--json", str(out / "r.json"), "--csv", str(out / "r.csv"),
                            "--markdown", str(out / "r.md"), "--plots", str(out / "plots"))
    assert rc == 0, err
    assert "xz -9e" in stdout and "lmpress (tiny-test)" in stdout and "Traceback" not in err
    doc = json.loads((out / "r.json").read_text())
    assert doc["complete"] and len(doc["rows"]) == 4 * 2
    model_rows = [r for r in doc["rows"] if r["model_bytes"]]
    assert model_rows and all(r["estimate_bits"] > 0 for r in model_rows)
    assert all(r["adjusted_bits_per_byte"] > r["bits_per_byte"] for r in model_rows)
    totals = {(t["codec"], t["category"]) for t in doc["totals"]}
    assert ("gzip -9", ALL) in totals and ("gzip -9", "code") in totals
    lines = list(csv.DictReader((out / "r.csv").open()))
    assert {r["kind"] for r in lines} == {"file", "total"}
    assert float(lines[0]["bits_per_byte"]) == doc["rows"][0]["bits_per_byte"]
    md = (out / "r.md").read_text().splitlines()
    assert md[0].startswith("| compressor |") and all(line.count("|") == md[0].count("|")
                                                      for line in md[1:len(doc["totals"]) + 2])
    for stem in ("bpb_by_category", "pareto", "intelligence_curve"):
        for ext in ("png", "svg"):
            assert (out / "plots" / f"{stem}.{ext}").stat().st_size > 1000
    assert (out / "plots" / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_skips_done_rows(bench, corpus, tmp_path, monkeypatch):
    record = tmp_path / "r.json"
    assert bench(str(corpus), "--codecs", "gzip", "--json", str(record))[0] == 0
    first = json.loads(record.read_text())["rows"]
    (corpus / "code" / "new.py").write_text(CODE * 2)
    measured = []
    real = bench_run.measure
    monkeypatch.setattr(bench_run, "measure", lambda c, i: measured.append(i.name) or real(c, i))
    assert bench(str(corpus), "--codecs", "gzip", "--resume", str(record))[0] == 0
    assert [os.path.basename(n) for n in measured] == ["new.py"]
    again = {r["name"]: r for r in json.loads(record.read_text())["rows"]}
    assert all(again[r["name"]]["n_bytes_out"] == r["n_bytes_out"] for r in first)
    record.write_text("not json")
    with pytest.raises(BenchError, match="not an lmpress bench results file"):
        bench(str(corpus), "--codecs", "gzip", "--json", str(record))


def test_bad_inputs_through_cli(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    rc = cli.main(["bench", str(tmp_path / "missing"), "--codecs", "gzip"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "no such file or directory" in err
    os.symlink(tmp_path / "nowhere", corpus / "prose" / "broken.txt")  # unreadable, even as root
    rc = cli.main(["bench", str(corpus), "--codecs", "gzip"])
    out, err = capsys.readouterr()
    assert rc == 0 and "broken.txt: cannot be read" in err and "Traceback" not in err
    assert "1 empty item(s) counted but kept out of the ratios" in err
    (tmp_path / "e").write_bytes(b"")
    rc = cli.main(["bench", str(tmp_path / "e"), "--codecs", "gzip"])
    err = capsys.readouterr().err
    assert rc == 1 and "nothing to measure" in err and "Traceback" not in err
    rc = cli.main(["bench", str(corpus), "--codecs", "gzip,rar"])
    assert rc == 1 and "unknown codec rar" in capsys.readouterr().err


def test_missing_codecs_are_notes(monkeypatch):
    codecs, notes = classical_codecs(["gzip", "zpaq"], which=lambda name: None)
    assert [c.name for c in codecs] == ["gzip -9"]
    assert len(notes) == 1 and "zpaq" in notes[0] and "skipped" in notes[0]
    for module in ("zstandard", "brotli", "pyppmd"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    codecs, notes = classical_codecs(["zstd-19", "brotli", "ppmd"], which=lambda name: None)
    assert codecs == [] and len(notes) == 3
    assert all("pip install 'lmpress[bench]'" in n for n in notes)


def test_binaries_round_trip_and_report_memory(monkeypatch):
    import shutil

    if not (shutil.which("zstd") and shutil.which("zpaq")):
        pytest.skip("zstd and zpaq binaries are not installed")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # force the zstd binary
    codecs, notes = classical_codecs(["zstd-19", "zpaq"])
    assert not notes
    inputs = collect_inputs([__file__])
    for row in run_bench(inputs, codecs).rows:
        assert row.status == "ok" and row.n_bytes_out < row.n_bytes_in
        assert row.peak_mem_bytes and row.peak_mem_bytes > 100_000  # the child's own RSS


def test_round_trip_mismatch_is_an_error_row(corpus, bench):
    broken = Codec("broken", "broken", lambda d: d[:1], lambda d: d)
    result = run_bench(collect_inputs([str(corpus / "top.txt")]), [broken])
    (row,) = result.rows
    assert row.status == "error" and "round trip mismatch" in row.error
    assert result.totals[0].n_errors == 1 and "failed" in " ".join(result.notes)


def test_jsonl_stdin_and_quick(bench, tmp_path):
    records = tmp_path / "docs.jsonl"
    records.write_text(json.dumps({"text": PROSE}) + "\n" + "{broken\n"
                       + json.dumps({"text": CODE * 40}) + "\n")
    inputs = collect_inputs([str(records)], InputOptions(jsonl_field="text", max_bytes=1000))
    assert [len(i.data) for i in inputs.items] == [len(PROSE), 1000]
    assert {i.category for i in inputs.items} == {"docs"}
    assert len(inputs.skipped) == 1 and "docs.jsonl:2" in inputs.skipped[0]
    rc, out, err = bench("-", "--quick", "--codecs", "gzip,zpaq,xz", "--json",
                         str(tmp_path / "q.json"), stdin=CODE.encode() * 50)
    assert rc == 0, err
    rows = json.loads((tmp_path / "q.json").read_text())["rows"]
    assert [r["codec"] for r in rows] == ["gzip -9", "xz -9e"]  # zpaq is not a fast codec
    assert rows[0]["n_bytes_in"] == bench_command.QUICK_KB * 1000
    assert rows[0]["category"] == "(stdin)"


def test_plots_without_matplotlib_is_one_line(bench, corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    rc = cli.main(["bench", str(corpus), "--codecs", "gzip", "--plots", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "pip install 'lmpress[bench]'" in err
    assert not (tmp_path / "p").exists()


def test_bootstrap_is_seeded_and_brackets_the_total():
    import numpy as np

    n_in, n_out = np.array([100.0, 200.0, 300.0, 50.0]), np.array([40.0, 90.0, 100.0, 30.0])
    low, high = bootstrap_interval(n_in, n_out)
    assert (low, high) == bootstrap_interval(n_in, n_out)
    assert low <= 8 * n_out.sum() / n_in.sum() <= high
    assert bootstrap_interval(np.array([10.0]), np.array([5.0])) == (4.0, 4.0)


@pytest.mark.parametrize("adapt", [True, False])
def test_estimate_matches_archive_for_tiny_model(tmp_path, tiny_model_path, adapt):
    (tmp_path / "a.txt").write_text(PROSE[:500])
    (tmp_path / "b.py").write_text(CODE[:400])
    (tmp_path / "c.bin").write_bytes(bytes(range(256)) * 2)
    codecs, _ = lmpress_codecs(levels=[], models=[tiny_model_path], fallback=False,
                               adapt=adapt)
    result = run_bench(collect_inputs([str(tmp_path)]), codecs)
    assert len(result.rows) == 3
    for row in result.rows:
        assert row.status == "ok" and row.lm_bytes_in == row.n_bytes_in
        real_bits = 8 * row.lm_bytes_out
        assert abs(real_bits - row.estimate_bits) <= 0.005 * row.estimate_bits + 8 * 64, row
        overhead_bytes = row.n_bytes_out - row.lm_bytes_out  # the container's header
        assert 0 < overhead_bytes < 200


def test_levels_sharing_a_model_are_measured_once():
    from lmpress.model.registry import SHIPPED

    if not SHIPPED:
        pytest.skip("no shipped model")
    codecs, notes = lmpress_codecs(levels=[1, 6, 9])
    assert len(codecs) == len({c.key for c in codecs}) <= len(SHIPPED)
    assert all(c.model_bytes > 0 for c in codecs)


def test_bad_levels_and_categories_are_bench_errors():
    with pytest.raises(BenchError, match="--lmpress-levels"):
        bench_command._levels("0,12", [])
    from lmpress.bench.inputs import parse_category

    with pytest.raises(BenchError, match="NAME=GLOB"):
        parse_category("prose")


class _TtyText(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal(tmp_path, tiny_model_path, monkeypatch):
    (tmp_path / "a.txt").write_text(PROSE[:300])
    reported = []
    real = lmpress_codecs

    def spying(**kw):
        codecs, notes = real(**kw)
        for c in codecs:
            c.progress = reported.append  # replaced by the bar's callback in on_start
        return codecs, notes

    monkeypatch.setattr(bench_command, "lmpress_codecs", spying)
    err, out = _TtyText(), io.StringIO()
    rc = bench_command.main([str(tmp_path), "--codecs", "gzip,lmpress", "-m", tiny_model_path],
                            stdin=io.BytesIO(), stdout=out, stderr=err)
    assert rc == 0 and "lmpress (tiny-test)" in out.getvalue()
    assert reported == []  # every progress report went to the bar, not the default


def test_paired_comparison(bench, corpus):
    from lmpress.bench.compare import paired
    from lmpress.bench.measure import Row

    rows = [Row("A", "a", "c", f"f{i}", str(i), 100, out) for i, out in enumerate((40, 50, 60))]
    rows += [Row("B", "b", "c", f"f{i}", str(i), 100, out) for i, out in enumerate((50, 50, 70))]
    c = paired(rows, "A", "B")
    assert c.n_files == 3 and (c.a_wins, c.b_wins) == (2, 0)
    assert c.delta_bits_per_byte == pytest.approx(8 * -20 / 300)
    assert c.ci_low <= c.delta_bits_per_byte <= c.ci_high <= 0
    rc, stdout, err = bench(str(corpus), "--codecs", "gzip,xz", "--compare", "xz,gzip")
    assert rc == 0, err
    assert "xz -9e vs gzip -9:" in stdout and "files; smaller on" in stdout
    with pytest.raises(BenchError, match="--compare: 'zz' matches 0"):
        bench(str(corpus), "--codecs", "gzip,xz", "--compare", "zz,gzip")
