"""Fast, offline tests of text extraction: builder 1.0's rules (the base set) and the
fixes the extra set switches on."""

from __future__ import annotations

import gzip

import pytest

from lmpress.train import corpus, extract

EXTRA = corpus.SETS["extra"].rules

def test_html_to_text_drops_script_style_and_nav() -> None:
    page = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<div role='navigation'><div>next | prev</div></div>"
        "<h1>Title</h1><p>Hello   <b>big</b>\n world.</p><ul><li>a</li><li>b</li></ul>"
        "<pre>  code\n    indented</pre><script>evil()</script><p>x &amp; y</p>"
        "<table><tr><td>k</td><td>v</td></tr></table></body></html>"
    )
    text = extract.html_to_text(page)
    assert text == "Title\n\nHello big world.\n\na\nb\n\n  code\n    indented\n\nx & y\n\nk\tv\n"


def test_classify_and_extract_compressed() -> None:
    roff = b".TH LS 1\n.SH NAME\nls \\- list directory contents, a fairly long description\n"
    assert extract.classify("usr/share/man/man1/ls.1") == "roff"
    assert extract.extract_text("usr/share/man/man1/ls.1.gz", gzip.compress(roff)) == roff.decode()
    log = "pkg (1.0) unstable; urgency=low\n\n  * Initial release with many changes.\n"
    got = extract.extract_text("usr/share/doc/pkg/changelog.Debian.gz", gzip.compress(log.encode()))
    assert got == log
    words = "headword\n   a definition that is long enough to be kept as a document\n" * 2
    dz = gzip.compress(words.encode())  # .dict.dz is gzip-compatible
    assert extract.extract_text("usr/share/dictd/x.dict.dz", dz) == words
    assert extract.classify("usr/share/doc/x/logo.png") is None


def test_decoding_rules() -> None:
    latin = "caf\xe9 ".encode("latin-1") * 20
    assert extract.extract_text("usr/share/doc/x/notes.txt", latin) is None  # text: UTF-8 only
    assert extract.extract_text("usr/share/man/man1/x.1", latin) == latin.decode("latin-1")
    assert extract.extract_text("usr/share/doc/x/a.txt", b"binary\x00" * 20) is None
    assert extract.extract_text("usr/share/doc/x/a.txt", b"short") is None
    info = b"Index\n\x00\x08[index\x00\x08]\n* Menu:\n" * 5
    assert extract.extract_text("usr/share/info/as.info.gz", gzip.compress(info)) == info.decode()
    dic = b"good line of a dictionary entry\n" * 2000 + b"stray \x92 byte\n"
    got = extract.extract_text("usr/share/dictd/d.dict.dz", gzip.compress(dic))
    assert got is not None and "stray" not in got and got.count("good line") == 2000


def test_non_utf8_html_is_decoded_by_its_charset_in_the_extra_set() -> None:
    body = "<p>Caf\u00e9 cr\u00e8me \u2014 \u201cquoted\u201d text that is long enough to keep.</p>"
    declared = ("<html><head><meta http-equiv='Content-Type' content='text/html; "
                "charset=ISO-8859-1'></head><body>" + body + "</body></html>").encode("cp1252")
    undeclared = ("<html><body>" + body + "</body></html>").encode("cp1252")
    xml = ("<?xml version='1.0' encoding='euc-jp'?><html><body><p>" + "\u65e5\u672c\u8a9e " * 20
           + "</p></body></html>").encode("euc-jp")
    want = "Caf\u00e9 cr\u00e8me \u2014 \u201cquoted\u201d text that is long enough to keep.\n"
    for page in (declared, undeclared):
        assert extract.extract_text("doc/a.html", page) is None  # builder 1.0: dropped
        assert extract.extract_text("doc/a.html", page, EXTRA) == want
    assert extract.html_charset(declared) == "cp1252"  # latin-1 is read as cp1252
    assert extract.extract_text("doc/j.html", xml, EXTRA).startswith("\u65e5\u672c\u8a9e")
    assert extract.extract_text("doc/a.txt", undeclared, EXTRA) is None  # only HTML


def _page(n: int) -> tuple[str, str]:
    menu = "Home\nTutorial\nLibrary reference\n\nIndex\n\n"  # a run of 4 frequent lines
    heading = f"Parameters\nx{n}\n\n" if n < 6 else ""  # frequent, but alone and in 60%
    return (f"html/p{n}.html", f"{menu}Page {n} says something of its own.\n\n{heading}"
                               "\u00a9 2020 Someone. All rights reserved.\n")  # in every page


def test_page_furniture_is_dropped_and_headings_stay() -> None:
    docs = [_page(n) for n in range(10)]
    docs.append(("notes.txt", "Home\nTutorial\nLibrary reference\nIndex\n"))  # not HTML
    out, dropped = extract.strip_furniture(docs)
    assert out[1] == ("html/p1.html", "Page 1 says something of its own.\n\nParameters\nx1\n")
    assert out[8] == ("html/p8.html", "Page 8 says something of its own.\n")
    assert out[-1] == docs[-1]
    assert dropped == sum(len(a[1].encode()) - len(b[1].encode()) for a, b in zip(docs, out))
    assert extract.strip_furniture(docs[:3]) == (docs[:3], 0)  # too few pages to tell


def _lzw_encode(data: bytes) -> bytes:
    """The bible program's LZW, as the decoder reads it (for tests only)."""
    table = {bytes([i]): i for i in range(256)}
    size, n_bits, acc, n_acc, out, w = 257, 9, 0, 0, bytearray(), b""

    def emit(code: int) -> None:
        nonlocal acc, n_acc, size, n_bits
        acc |= code << n_acc
        n_acc += n_bits
        while n_acc >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            n_acc -= 8

    for byte in data:
        wc = w + bytes([byte])
        if wc in table:
            w = wc
            continue
        emit(table[w])
        table[wc] = size
        size += 1
        if size - 1 >= 1 << n_bits and n_bits < 16:
            n_bits += 1
        w = bytes([byte])
    emit(table[w])
    return bytes(out) + (bytes([acc]) if n_acc else b"")


def test_the_bible_programs_data_file_is_decoded() -> None:
    text = "".join(f"Ge1:{i} And the earth was without form, and void; verse {i}.\n"
                   for i in range(1, 400))
    block = 4096
    blocks = [_lzw_encode(text[i:i + block].encode()) for i in range(0, len(text), block)]
    head = extract.CDF_MAGIC.ljust(0x54, b"\0") + block.to_bytes(4, "big")
    head += len(blocks).to_bytes(4, "big")
    offsets = [len(head) + 4 * (len(blocks) + 1)]
    for b in blocks:
        offsets.append(offsets[-1] + len(b))
    data = head + b"".join(o.to_bytes(4, "big") for o in offsets) + b"".join(blocks)
    assert extract.decode_cdf(data) == text
    assert extract.extract_text("usr/lib/bible.data", data, EXTRA) == text
    assert extract.extract_text("usr/lib/bible.data", data) is None  # builder 1.0: skipped
    assert extract.extract_text("usr/lib/bible.data", data[:200], EXTRA) is None  # truncated
    with pytest.raises(ValueError):
        extract.decode_cdf(b"not one")
