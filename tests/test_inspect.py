"""`lmpress inspect`: per-token costs that add up to the real archive, the JSON records, the
terminal view and the command's errors. All on the tiny seeded model (conftest)."""

import io
import json
import math
import random

import pytest
from conftest import TEXT

from lmpress.codec import Compressor
from lmpress.inspect.command import main
from lmpress.inspect.html import render_page
from lmpress.inspect.records import SCALE, bucket, inspect_bytes

# Prose and code (some of it repeated, so adaptation has something to find), a stretch of
# random bytes that is stored without the model, invalid UTF-8, and a character that BPE
# splits across tokens.
DATA = (TEXT.encode() * 2 + random.Random(5).randbytes(1500) + b"\n\xff\xfe caf\xc3\xa9 "
        + "中文 ✓\n".encode() + TEXT.encode()[:2000])


@pytest.fixture(scope="module", params=[True, False], ids=["adapt", "no-adapt"])
def case(request, tiny_model):
    adapt = request.param
    comp = Compressor(tiny_model, adapt=adapt)
    archive = comp.compress(DATA)
    ins = inspect_bytes(DATA, model=tiny_model, adapt=adapt, top_k=4)
    return adapt, ins, archive, comp.stats


def test_recording_changes_no_byte(case):
    _, ins, archive, _ = case
    assert ins.archive == archive
    assert ins.archive_bytes == len(archive)


def test_token_bits_are_the_coders_costs(case):
    adapt, ins, archive, stats = case
    lm = [r for r in ins.records if r.kind == "lm"]
    stored = [r for r in ins.records if r.kind != "lm"]
    assert lm and stored  # both kinds are exercised
    # the coder's own running total of the same costs
    assert sum(r.bits for r in lm) == pytest.approx(stats.estimate_bits, rel=1e-9)
    n_streams = sum(s["kind"] == "lm" for s in ins.segments)
    assert -8 * n_streams <= ins.flush_bits <= 72 * n_streams  # the coders' final bytes
    stored_bytes = sum(s["payload_bytes"] for s in ins.segments if s["kind"] != "lm")
    assert sum(r.bits for r in stored) == pytest.approx(8 * stored_bytes)
    lm_payload = sum(s["payload_bytes"] for s in ins.segments if s["kind"] == "lm")
    assert ins.container_bits == 8 * (len(archive) - lm_payload - stored_bytes)
    assert ins.total_bits() == pytest.approx(8 * len(archive))
    assert abs(sum(r.bits for r in ins.records) + ins.container_bits - 8 * len(archive)) \
        <= 72 * n_streams
    if adapt:
        assert ins.adaptation_saved_bits() > 100  # the repeated text was matched
        assert any(abs(r.bits - r.lm_bits) > 1e-6 for r in lm)
    else:
        assert ins.adaptation_saved_bits() == 0
        assert all(r.bits == pytest.approx(r.lm_bits) for r in lm)


def test_records_cover_the_input_exactly(case):
    _, ins, _, _ = case
    offset = 0
    for r in ins.records:
        assert r.offset == offset and r.n_bytes == len(r.raw) > 0
        offset += r.n_bytes
    assert offset == len(DATA) == ins.n_bytes
    assert b"".join(r.raw for r in ins.records) == DATA
    assert "".join(r.text for r in ins.records) == DATA.decode("utf-8", "replace")


def test_rank_entropy_and_alternatives_agree(case):
    _, ins, _, _ = case
    modelled = [r for r in ins.records if r.lm_bits is not None]
    assert len(modelled) > 1000
    log_v = math.log2(320)
    for r in modelled:
        p_true = 2 ** -r.lm_bits
        assert len(r.top) == 4 and r.rank >= 1
        assert 0 < r.entropy <= log_v + 1e-9
        ps = [p for _, p in r.top]
        assert ps == sorted(ps, reverse=True)
        above = sum(p > p_true * (1 + 1e-9) for p in ps)
        assert above == min(r.rank - 1, 4)  # rank = 1 + tokens more likely than the truth
        if r.rank == 1:
            assert ps[0] == pytest.approx(p_true)


def test_surprising_spans_are_costly_and_disjoint(case):
    _, ins, _, _ = case
    spans = ins.surprising_spans(4, n_tokens=6)
    assert len(spans) == 4
    assert [s.bits for s in spans] == sorted((s.bits for s in spans), reverse=True)
    covered = set()
    for s in spans:
        recs = ins.records[s.first:s.first + s.n_tokens]
        assert all(r.kind == "lm" for r in recs)
        assert s.bits == pytest.approx(sum(r.bits for r in recs))
        assert s.text == DATA[s.start:s.end].decode("utf-8", "replace")
        assert covered.isdisjoint(range(s.first, s.first + s.n_tokens))
        covered.update(range(s.first, s.first + s.n_tokens))
    window_bits = [sum(r.bits for r in ins.records[i:i + 6]) for i in
                   range(len(ins.records) - 5) if all(r.kind == "lm" for r in
                                                      ins.records[i:i + 6])]
    assert spans[0].bits == pytest.approx(max(window_bits))


def test_json_schema(case):
    adapt, ins, archive, _ = case
    doc = json.loads(json.dumps(ins.to_json(), allow_nan=False))
    assert doc["version"] == 1 and doc["model"] == "tiny-test" and doc["adapt"] is adapt
    assert doc["n_bytes"] == len(DATA) and doc["archive_bytes"] == len(archive)
    assert doc["n_tokens"] == len(doc["records"]) == len(ins.records)
    assert doc["archive_bits_per_byte"] == pytest.approx(8 * len(archive) / len(DATA))
    t = doc["totals"]
    total = sum(r["bits"] for r in doc["records"]) + t["flush_bits"] + t["container_bits"]
    assert total == pytest.approx(8 * len(archive), rel=1e-5)
    assert t["total_bits"] == pytest.approx(8 * len(archive), abs=0.01)
    assert len(doc["scale"]) == len(SCALE) and doc["scale"][-1]["max_bits"] is None
    assert {s["kind"] for s in doc["segments"]} >= {"lm"}
    for r in doc["records"]:
        assert set(r) == {"offset", "n_bytes", "token", "hex", "bits", "kind", "lm_bits",
                          "rank", "entropy", "top"}
        assert bytes.fromhex(r["hex"]) == DATA[r["offset"]:r["offset"] + r["n_bytes"]]
        assert r["kind"] in ("lm", "raw", "lzma") and r["bits"] >= 0
        if r["rank"] is not None:
            assert isinstance(r["rank"], int) and len(r["top"]) == 4
            assert all(isinstance(a, str) and 0 < p <= 1 for a, p in r["top"])
        else:
            assert r["kind"] != "lm" and r["top"] == [] and r["lm_bits"] is None
    assert doc["spans"] and doc["spans"][0]["bits"] > 0


def test_empty_input(tiny_model):
    ins = inspect_bytes(b"", model=tiny_model)
    assert ins.records == [] and ins.bits_per_byte() is None
    assert ins.total_bits() == 8 * ins.archive_bytes == 8 * len(ins.archive)
    assert json.loads(json.dumps(ins.to_json()))["records"] == []
    assert "renderHeatmap" in render_page(ins)


def test_bucket_follows_the_scale():
    assert [bucket(b) for b in (0, 0.99, 1, 3.9, 4, 15.9, 16, 1e9)] == [0, 0, 1, 2, 3, 4, 5, 5]


def test_page_inlines_data_that_cannot_break_out(tiny_model):
    data = b"</script><script>alert(1)</script> & <!-- \xe2\x80\xa8 done"
    page = render_page(inspect_bytes(data, model=tiny_model), title="<b>x</b>")
    assert page.count("</script>") == 3  # the page's own three script elements
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")


# -- the command ---------------------------------------------------------------------------


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, stdout=out, stderr=err, prog="lmpress inspect")
    return status, out.getvalue(), err.getvalue()


def test_command_colours_the_text_and_writes_reports(tiny_model_path, tmp_path):
    src = tmp_path / "text.txt"
    src.write_bytes(TEXT.encode()[:1500])
    page, records = tmp_path / "out.html", tmp_path / "out.json"
    status, out, err = run([str(src), "-m", tiny_model_path, "--color", "always",
                            "--html", str(page), "--json", str(records), "--top", "3"])
    assert status == 0, err
    assert "\x1b[" in out and "48;5;" in out  # background colours
    assert "bits/token" in out and "archive" in out and "most surprising" in out
    archive = Compressor(tiny_model_path).compress(TEXT.encode()[:1500])
    assert f"{8 * len(archive) / 1500:.3f} bits/byte" in out
    doc = json.loads(records.read_text())
    assert doc["archive_bytes"] == len(archive) and len(doc["records"][0]["top"]) == 3
    assert "renderHeatmap(" in page.read_text()
    assert f"wrote {page}" in err
    status, out, err = run([str(src), "-m", tiny_model_path, "--color", "never", "-s",
                            "--no-adapt"])
    assert status == 0 and "\x1b[" not in out and "adaptation off" in out
    assert TEXT[:40] not in out  # -s: the summary without the text


def test_missing_file_is_one_line(tmp_path):
    status, out, err = run([str(tmp_path / "nope.txt")])
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "no such file" in err and "Traceback" not in err


def test_too_large_names_max_bytes(tmp_path, tiny_model_path):
    src = tmp_path / "big.txt"
    src.write_bytes(b"x" * 101)
    status, _, err = run([str(src), "-m", tiny_model_path, "--max-bytes", "100"])
    assert status == 1 and err.count("\n") == 1 and "--max-bytes" in err


def test_existing_output_is_kept_without_force(tmp_path, tiny_model_path):
    src, page = tmp_path / "a.txt", tmp_path / "a.html"
    src.write_bytes(b"hello world\n")
    page.write_text("keep me")
    status, _, err = run([str(src), "-m", tiny_model_path, "--html", str(page)])
    assert status == 1 and "-f" in err and page.read_text() == "keep me"
    assert set(tmp_path.iterdir()) == {src, page}  # nothing half-written


def test_unknown_model_is_one_line(tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello")
    status, _, err = run([str(src), "-m", "no-such-model"])
    assert status == 1 and err.count("\n") == 1 and "no-such-model" in err


def test_registered_in_the_main_cli(capsys, tmp_path, tiny_model_path):
    from lmpress.cli import main as cli_main

    src = tmp_path / "a.txt"
    src.write_bytes(b"hello hello hello\n")
    assert cli_main(["inspect", str(src), "-m", tiny_model_path, "-s"]) == 0
    assert "bits/byte" in capsys.readouterr().out
