"""Text out of packaged files: HTML stripped, roff/POD/Info/dictd kept as text, compressed
files opened, the bible program's compressed data file decoded; and the filters a corpus set
may apply to a whole source (page furniture, near-duplicate renderings).

The base set keeps builder 1.0's rules (`Rules()`), so that its files, and so the shipped
models' training samples, stay byte-identical; later sets switch the fixes on.
Standard library only.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import hashlib
import lzma
import os
import re
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser

MIN_DOC_BYTES = 64
HTML_EXTS = {".html", ".htm", ".xhtml"}
TEXT_EXTS = {".txt", ".rst", ".pod", ".py", ".c", ".h", ".md"}
DOC_NAME_RE = re.compile(r"^(changelog|changes|news|readme|copyright)([.-].*)?$", re.I)
MAN_RE = re.compile(r"(^|/)man/.*\.[0-9][a-z0-9]*$")
NAV_CLASS_RE = re.compile(r"\b(navheader|navfooter|sphinxsidebar|related|breadcrumbs?)\b")
COMPRESSED = {".gz": gzip.decompress, ".dz": gzip.decompress, ".xz": lzma.decompress,
              ".bz2": bz2.decompress}
CHARSET_RE = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.I)
XML_ENCODING_RE = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.-]+)""", re.I)
# labels that browsers read as windows-1252 or gb18030 (WHATWG Encoding): latin-1 pages
# routinely hold cp1252 quotes in 0x80-0x9f, and gb2312 pages GBK characters
CHARSET_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
                   "us-ascii": "cp1252", "ascii": "cp1252", "iso8859-1": "cp1252",
                   "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030"}
CDF_MAGIC = b"EC02Compressed Data File"  # bible-kjv-text's usr/lib/bible.data
WORD_RE = re.compile(r"\w")


@dataclass(frozen=True)
class Rules:
    """What a corpus set does beyond builder 1.0 (all off: the base set's rules)."""

    # decode HTML that is not UTF-8 by its declared charset (cp1252 when undeclared);
    # 1.0 dropped such pages
    charset: bool = False
    # decode the bible program's compressed data file (bible-kjv-text); 1.0 skipped it
    bible: bool = False
    # drop lines repeated over a source's HTML pages: menus, footers, sidebars
    furniture: bool = False
    # drop a document when this share of its text lines was already seen (another
    # rendering of the same manual, an earlier version, a duplicate of base text); 0: off
    near_dup: float = 0.0
    # drop a document when this share of its text lines appears in validation text; 0: off
    valid_overlap: float = 0.0


BASE_RULES = Rules()  # builder 1.0


class _HTMLText(HTMLParser):
    SKIP = {"script", "style", "head", "nav", "noscript", "template", "svg"}
    BLOCK = {"p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "pre", "hr",
             "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "section", "article", "header",
             "footer", "title", "caption", "figure", "form", "body"}
    PARA = {"p", "pre", "table", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
    VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip: tuple[str, int] | None = None  # (tag, nesting depth) while dropping
        self.pre = 0
        self.nl = 2  # trailing newlines of the text emitted so far (2 = start of a paragraph)

    def _break(self, n: int) -> None:
        if self.nl < n:
            self.parts.append("\n" * (n - self.nl))
            self.nl = n

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip:
            if tag == self.skip[0] and tag not in self.VOID:
                self.skip = (tag, self.skip[1] + 1)
            return
        attr = dict(attrs)
        if (tag in self.SKIP or attr.get("role") == "navigation"
                or NAV_CLASS_RE.search(attr.get("class") or "")):
            if tag not in self.VOID:
                self.skip = (tag, 1)
            return
        if tag == "pre":
            self.pre += 1
        if tag in self.BLOCK:
            self._break(2 if tag in self.PARA else 1)
        elif tag in ("td", "th") and self.nl == 0:
            self.parts.append("\t")  # separate table cells

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag == self.skip[0]:
                depth = self.skip[1] - 1
                self.skip = (tag, depth) if depth else None
            return
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in self.BLOCK:
            self._break(2 if tag in self.PARA else 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
            if self.nl:
                data = data.lstrip(" ")
        if data:
            self.parts.append(data)
            stripped = data.rstrip("\n")
            self.nl = len(data) - len(stripped) if stripped else self.nl + len(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page, without script/style/navigation, keeping paragraphs."""
    parser = _HTMLText()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    lines = [ln.rstrip() for ln in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def decompress(name: str, data: bytes) -> tuple[str, bytes]:
    """Undo .gz/.dz/.xz/.bz2 compression; returns the inner name and bytes."""
    stem, ext = os.path.splitext(name)
    if ext in COMPRESSED:
        return stem, COMPRESSED[ext](data)
    return name, data


def classify(rel: str) -> str | None:
    """Kind of a (decompressed) path: 'html', 'roff', 'dict', 'info', 'text' or None (skip)."""
    base = rel.rsplit("/", 1)[-1]
    ext = os.path.splitext(base)[1].lower()
    if base.endswith(".dict"):
        return "dict"
    if MAN_RE.search(rel):
        return "roff"
    if ext in HTML_EXTS:
        return "html"
    if ext == ".info" or re.search(r"\.info-[0-9]+$", base):
        return "info"
    if ext in TEXT_EXTS or DOC_NAME_RE.match(base):
        return "text"
    return None


def kind_of(rel: str) -> str | None:
    """`classify` of a packaged path, looking through a compression suffix."""
    stem, ext = os.path.splitext(rel)
    return classify(stem if ext in COMPRESSED else rel)


def html_charset(data: bytes) -> str | None:
    """The Python codec for the charset an HTML page declares (meta or XML declaration)."""
    head = data[:4096]
    found = CHARSET_RE.search(head) or XML_ENCODING_RE.search(head)
    if not found:
        return None
    label = found.group(1).decode("ascii").lower()
    label = CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_text(data: bytes, kind: str, charset: bool = False) -> str | None:
    """Strict UTF-8 decode; roff may fall back to latin-1. None for binary/undecodable data.

    Info files keep their NUL index markers; dictionaries drop the rare lines that are not
    UTF-8 (gcide has three stray cp1252 bytes in 40 MB) instead of losing the whole file.
    With `charset`, HTML that is not UTF-8 is decoded by its declared charset, or as
    windows-1252 when it declares none (what browsers do).
    """
    if b"\x00" in data and kind != "info":
        return None
    if kind == "dict":
        lines = data.split(b"\n")
        good = [ln for ln in lines if _is_utf8(ln)]
        return b"\n".join(good).decode("utf-8") if len(good) * 1000 >= len(lines) * 999 else None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if kind == "html" and charset:
            try:
                return data.decode(html_charset(data) or "cp1252")
            except (UnicodeDecodeError, LookupError):
                return None
        if kind != "roff":
            return None
    text = data.decode("latin-1")
    return None if re.search("[\x80-\x9f]", text) else text  # C1 controls: not latin-1


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _lzw_block(data: bytes, limit: int) -> bytes:
    """One block of the bible program's LZW: codes of 9 to 16 bits read LSB first, the
    first free code 257, widening when the table fills the current width."""
    table = [bytes([i]) for i in range(256)] + [b""]
    out = bytearray()
    n_bits, pos, prev, end = 9, 0, b"", len(data) * 8
    while pos + n_bits <= end and len(out) < limit:
        i = pos >> 3
        code = (int.from_bytes(data[i:i + 4], "little") >> (pos & 7)) & ((1 << n_bits) - 1)
        pos += n_bits
        if code < len(table) and code != 256:
            entry = table[code]
        elif code == len(table) and prev:
            entry = prev + prev[:1]
        else:
            raise ValueError(f"bad LZW code {code} after {len(out)} bytes")
        out += entry
        if prev:
            table.append(prev + entry[:1])
        prev = entry
        if len(table) >= 1 << n_bits and n_bits < 16:
            n_bits += 1
    return bytes(out)


def decode_cdf(data: bytes) -> str:
    """Text of a "Compressed Data File" (bible-kjv-text's bible.data): a header, the
    uncompressed block size and block count (big-endian), the blocks' file offsets, then
    each block compressed on its own."""
    if not data.startswith(CDF_MAGIC) or len(data) < 0x60:
        raise ValueError("not a compressed data file")
    block, n_blocks = int.from_bytes(data[0x54:0x58], "big"), int.from_bytes(data[0x58:0x5c], "big")
    offsets = [int.from_bytes(data[0x5c + 4 * i:0x60 + 4 * i], "big") for i in range(n_blocks + 1)]
    if not 0 < block <= 1 << 20 or offsets != sorted(offsets) or offsets[-1] > len(data):
        raise ValueError("corrupt compressed data file index")
    parts = [_lzw_block(data[a:b], block) for a, b in zip(offsets, offsets[1:], strict=False)]
    return b"".join(parts).decode("utf-8")


def extract_text(rel: str, data: bytes, rules: Rules = BASE_RULES) -> str | None:
    """Plain text of one packaged file, or None if it is not a text document we keep."""
    if rules.bible and data.startswith(CDF_MAGIC):
        try:
            return decode_cdf(data)
        except (ValueError, UnicodeDecodeError):
            return None
    inner, raw = rel, data
    if os.path.splitext(rel)[1] in COMPRESSED and not rel.endswith((".tar.gz", ".tar.xz")):
        try:
            inner, raw = decompress(rel, data)
        except (OSError, EOFError, lzma.LZMAError, ValueError):
            return None
    kind = classify(inner)
    if kind is None:
        return None
    text = decode_text(raw, kind, rules.charset)
    if text is None:
        return None
    if kind == "html":
        text = html_to_text(text)
    return text if len(text.encode("utf-8")) >= MIN_DOC_BYTES else None


def _wordy(line: str) -> bool:
    return any(ch.isalpha() for ch in line)


def strip_furniture(docs: list[tuple[str, str]], min_share: float = 0.05,
                    alone_share: float = 0.8, run: int = 3,
                    min_pages: int = 4) -> tuple[list[tuple[str, str]], int]:
    """Drop the page furniture of one source's HTML pages; returns (docs, bytes dropped).

    A line is frequent when it stands (stripped) in at least `min_share` of the pages
    (and in `min_pages`). Furniture is a frequent line in a run of `run` or more frequent
    lines (a menu, a sidebar, a footer block; blank lines do not break a run, a line with
    no letter does), or one standing in `alone_share` of the pages (a copyright footer).
    Headings such as "Parameters" stand alone and in fewer pages, so they stay.
    """
    pages = [i for i, (rel, _) in enumerate(docs) if kind_of(rel) == "html"]
    if len(pages) < min_pages:
        return docs, 0
    freq: Counter[str] = Counter()
    for i in pages:
        freq.update({ln.strip() for ln in docs[i][1].split("\n") if _wordy(ln)})
    need = max(min_pages, min_share * len(pages))
    frequent = {ln for ln, n in freq.items() if n >= need}
    if not frequent:
        return docs, 0
    out, dropped = list(docs), 0
    for i in pages:
        rel, text = docs[i]
        lines = text.split("\n")
        drop = [False] * len(lines)
        streak: list[int] = []  # indices of the current run of frequent lines
        for j, ln in enumerate([*lines, "\x00"]):  # a sentinel closes the last run
            key = ln.strip()
            if not key:
                continue
            if key in frequent:
                streak.append(j)
                drop[j] = freq[key] >= alone_share * len(pages)
                continue
            if len(streak) >= run:
                for k in streak:
                    drop[k] = True
            streak = []
        kept = "\n".join(ln for ln, d in zip(lines, drop, strict=True) if not d)
        kept = re.sub(r"\n{3,}", "\n\n", kept).strip("\n") + "\n"
        dropped += len(text.encode("utf-8")) - len(kept.encode("utf-8"))
        out[i] = (rel, kept)
    return out, dropped


def text_lines(text: str) -> list[int]:
    """64-bit hashes of the lines that can show overlap: 40+ characters stripped, 20+ of
    them word characters (rulers and tables of dashes say nothing)."""
    out = []
    for ln in text.split("\n"):
        s = ln.strip()
        if len(s) >= 40 and len(WORD_RE.findall(s)) >= 20:
            digest = hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest()
            out.append(int.from_bytes(digest, "little"))
    return out
