"""Fast, offline tests of the corpus builder: caps, chunks, deduplication, the sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmpress.train import corpus


def test_truncate_and_chunks_keep_utf8_and_lines() -> None:
    text = "\u4e2d\u6587\n" * 100
    cut = corpus.truncate_bytes(text, 50)
    assert cut.endswith("\n") and len(cut.encode()) <= 50 and text.startswith(cut)
    assert "".join(corpus.chunks(text, 64)) == text


def test_source_globs_and_dedup_build(tmp_path: Path, monkeypatch) -> None:
    src = corpus.Source("s", "pkg", "train", "docs", exclude=["usr/lib/py/email/*"])
    assert src.wants("usr/lib/py/os.py") and not src.wants("usr/lib/py/email/x.py")
    doc = "the same document text, repeated in two files of the package\n"
    docs = [("a.txt", doc), ("b.txt", doc), ("c.txt", doc.upper())]
    deb = tmp_path / "pkg_1.0_all.deb"
    deb.write_bytes(b"fake deb")
    monkeypatch.setattr(corpus, "fetch_package", lambda *a: deb)
    monkeypatch.setattr(corpus, "iter_documents", lambda *a: iter(docs))
    monkeypatch.setattr(corpus, "deb_version", lambda d: "1.0")
    manifest = corpus.build(tmp_path / "out", [src], 40.0, tmp_path, lambda m: None)["base"]
    lines = (tmp_path / "out/train/s.jsonl").read_text().splitlines()
    assert [json.loads(x)["path"] for x in lines] == ["pkg:a.txt", "pkg:c.txt"]
    entry = manifest["packages"][0]
    assert set(entry) >= {"package", "version", "sha256", "filename", "role", "n_docs", "n_bytes"}
    assert entry["n_docs"] == 2 and entry["n_bytes"] == 2 * len(doc)
    assert manifest["totals"]["train"]["n_docs"] == 2
    assert json.loads((tmp_path / "out/manifest.json").read_text()) == manifest


def _fake_build(tmp_path, monkeypatch, sources, texts) -> dict:
    deb = tmp_path / "pkg_1.0_all.deb"
    deb.write_bytes(b"fake deb")
    monkeypatch.setattr(corpus, "fetch_package", lambda *a: deb)
    monkeypatch.setattr(corpus, "iter_documents", lambda d, src, *r: iter(texts[src.name]))
    monkeypatch.setattr(corpus, "deb_version", lambda d: "1.0")
    return corpus.build(tmp_path / "out", sources, 40.0, tmp_path, lambda m: None)


def test_the_extra_set_leaves_base_alone_and_keeps_validation_text_out(tmp_path,
                                                                       monkeypatch) -> None:
    line = "a line of validation text, long enough to be compared: number {}\n"
    held_out = "".join(line.format(i) for i in range(20))
    texts = {"b": [("b.txt", "base text that is long enough to be kept as a document\n")],
             "v": [("v.txt", held_out)],
             "e": [("new.txt", "".join(f"fresh text, line {i} of a new manual page, long enough\n"
                                       for i in range(9)) + line.format(3)),  # 10% valid
                   ("copy.txt", held_out.replace("20", "twenty") + "tail\n" * 20),
                   ("dup.txt", "".join(f"an earlier rendering of a manual, line {i}\n"
                                       for i in range(10))),
                   ("dup.html", "".join(f"an earlier rendering of a manual, line {i}\n"
                                        for i in range(9)) + "and a new last line\n"),
                   ("new2.txt", "different text " * 8 + "\n")]}
    base = corpus.Source("b", "pkg", "train", "docs")
    valid = corpus.Source("v", "pkg", "valid", "docs",
                          picks=[{"short": "all", "include": ["*"]}])
    only_base = _fake_build(tmp_path, monkeypatch, [base, valid], texts)
    before = {p: p.read_bytes() for p in sorted((tmp_path / "out").rglob("*")) if p.is_file()}
    extra = corpus.Source("e", "pkg", "train", "docs", set="extra")
    both = _fake_build(tmp_path, monkeypatch, [extra, base, valid], texts)
    assert both["base"] == only_base["base"]
    assert {p: p.read_bytes() for p in before} == before
    rows = [json.loads(x) for x in (tmp_path / "out/train-extra/e.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows] == ["pkg:new.txt", "pkg:dup.txt", "pkg:new2.txt"]
    (entry,) = both["extra"]["packages"]
    assert (entry["n_valid_overlap_docs"], entry["n_near_dup_docs"]) == (1, 1)
    assert entry["n_valid_lines"] == 1 and entry["deb_bytes"] == 8
    assert both["extra"]["builder_version"] == "2.0"
    assert json.loads((tmp_path / "out/manifest-extra.json").read_text()) == both["extra"]
    with pytest.raises(ValueError, match="valid sources belong to the base set"):
        spec = tmp_path / "s.json"
        spec.write_text(json.dumps([{"package": "x", "role": "valid", "genre": "g",
                                     "set": "extra"}]))
        corpus.load_sources(spec)
