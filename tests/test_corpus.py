"""Fast, offline tests of the corpus builder's extraction helpers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from lmpress.train import corpus


def test_html_to_text_drops_script_style_and_nav() -> None:
    page = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<div role='navigation'><div>next | prev</div></div>"
        "<h1>Title</h1><p>Hello   <b>big</b>\n world.</p><ul><li>a</li><li>b</li></ul>"
        "<pre>  code\n    indented</pre><script>evil()</script><p>x &amp; y</p>"
        "<table><tr><td>k</td><td>v</td></tr></table></body></html>"
    )
    text = corpus.html_to_text(page)
    assert text == "Title\n\nHello big world.\n\na\nb\n\n  code\n    indented\n\nx & y\n\nk\tv\n"


def test_classify_and_extract_compressed() -> None:
    roff = b".TH LS 1\n.SH NAME\nls \\- list directory contents, a fairly long description\n"
    assert corpus.classify("usr/share/man/man1/ls.1") == "roff"
    assert corpus.extract_text("usr/share/man/man1/ls.1.gz", gzip.compress(roff)) == roff.decode()
    log = "pkg (1.0) unstable; urgency=low\n\n  * Initial release with many changes.\n"
    got = corpus.extract_text("usr/share/doc/pkg/changelog.Debian.gz", gzip.compress(log.encode()))
    assert got == log
    words = "headword\n   a definition that is long enough to be kept as a document\n" * 2
    dz = gzip.compress(words.encode())  # .dict.dz is gzip-compatible
    assert corpus.extract_text("usr/share/dictd/x.dict.dz", dz) == words
    assert corpus.classify("usr/share/doc/x/logo.png") is None


def test_decoding_rules() -> None:
    latin = "caf\xe9 ".encode("latin-1") * 20
    assert corpus.extract_text("usr/share/doc/x/notes.txt", latin) is None  # text: UTF-8 only
    assert corpus.extract_text("usr/share/man/man1/x.1", latin) == latin.decode("latin-1")
    assert corpus.extract_text("usr/share/doc/x/a.txt", b"binary\x00" * 20) is None
    assert corpus.extract_text("usr/share/doc/x/a.txt", b"short") is None
    info = b"Index\n\x00\x08[index\x00\x08]\n* Menu:\n" * 5
    assert corpus.extract_text("usr/share/info/as.info.gz", gzip.compress(info)) == info.decode()
    dic = b"good line of a dictionary entry\n" * 2000 + b"stray \x92 byte\n"
    got = corpus.extract_text("usr/share/dictd/d.dict.dz", gzip.compress(dic))
    assert got is not None and "stray" not in got and got.count("good line") == 2000


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
    manifest = corpus.build(tmp_path / "out", [src], 40.0, tmp_path, lambda m: None)
    lines = (tmp_path / "out/train/s.jsonl").read_text().splitlines()
    assert [json.loads(x)["path"] for x in lines] == ["pkg:a.txt", "pkg:c.txt"]
    entry = manifest["packages"][0]
    assert set(entry) >= {"package", "version", "sha256", "filename", "role", "n_docs", "n_bytes"}
    assert entry["n_docs"] == 2 and entry["n_bytes"] == 2 * len(doc)
    assert manifest["totals"]["train"]["n_docs"] == 2
    assert json.loads((tmp_path / "out/manifest.json").read_text()) == manifest
