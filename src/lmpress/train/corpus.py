"""Build the lmpress text corpus from pinned Debian packages (see ``sources.json``).

Usage: ``python -m lmpress.train.corpus build --out data/corpus [--max-mb-per-source N]``.
Each package is fetched with ``apt-get download`` into a cache, unpacked with ``dpkg -x``,
and its text files are extracted, deduplicated by sha256 and capped per source. Train sources
go to ``train/<source>.jsonl``; held-out (valid) sources are packed into a few files under
``valid/<genre>/``. ``manifest.json`` pins every .deb by version and sha256.
Standard library only.
"""

from __future__ import annotations

import argparse
import bz2
import fnmatch
import gzip
import hashlib
import json
import lzma
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

BUILDER_VERSION = "1.0"
Log = Callable[[str], None]
SOURCES_JSON = Path(__file__).with_name("sources.json")
MANIFEST_COPY = Path(__file__).with_name("corpus_manifest.json")
MIN_DOC_BYTES = 64
CHUNK_BYTES = 1 << 20  # split huge documents (dictionaries) into ~1 MiB jsonl records
VALID_MIN, VALID_MAX = 50_000, 400_000

HTML_EXTS = {".html", ".htm", ".xhtml"}
TEXT_EXTS = {".txt", ".rst", ".pod", ".py", ".c", ".h", ".md"}
DOC_NAME_RE = re.compile(r"^(changelog|changes|news|readme|copyright)([.-].*)?$", re.I)
MAN_RE = re.compile(r"(^|/)man/.*\.[0-9][a-z0-9]*$")
NAV_CLASS_RE = re.compile(r"\b(navheader|navfooter|sphinxsidebar|related|breadcrumbs?)\b")
COMPRESSED = {".gz": gzip.decompress, ".dz": gzip.decompress, ".xz": lzma.decompress,
              ".bz2": bz2.decompress}


@dataclass
class Source:
    """One entry of sources.json: a package (or a glob-filtered part of one) and its role."""

    name: str
    package: str
    role: str
    genre: str
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    max_mb: float | None = None
    picks: list[dict] = field(default_factory=list)
    note: str = ""

    def wants(self, rel: str) -> bool:
        if self.include and not any(fnmatch.fnmatch(rel, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatch(rel, g) for g in self.exclude)


def load_sources(path: Path = SOURCES_JSON) -> list[Source]:
    """Read the sources spec; train and valid names must be unique."""
    sources = [Source(**{"name": e["package"], **e}) for e in json.loads(path.read_text())]
    names = [s.name for s in sources]
    if len(names) != len(set(names)):
        raise ValueError("duplicate source names in sources spec")
    if any(s.role not in ("train", "valid") for s in sources):
        raise ValueError("role must be 'train' or 'valid'")
    return sources


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


def decode_text(data: bytes, kind: str) -> str | None:
    """Strict UTF-8 decode; roff may fall back to latin-1. None for binary/undecodable data.

    Info files keep their NUL index markers; dictionaries drop the rare lines that are not
    UTF-8 (gcide has three stray cp1252 bytes in 40 MB) instead of losing the whole file.
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


def extract_text(rel: str, data: bytes) -> str | None:
    """Plain text of one packaged file, or None if it is not a text document we keep."""
    inner, raw = rel, data
    if os.path.splitext(rel)[1] in COMPRESSED and not rel.endswith((".tar.gz", ".tar.xz")):
        try:
            inner, raw = decompress(rel, data)
        except (OSError, EOFError, lzma.LZMAError, ValueError):
            return None
    kind = classify(inner)
    if kind is None:
        return None
    text = decode_text(raw, kind)
    if text is None:
        return None
    if kind == "html":
        text = html_to_text(text)
    return text if len(text.encode("utf-8")) >= MIN_DOC_BYTES else None


def fetch_package(package: str, cache: Path, log: Log) -> Path:
    """Return the cached .deb of ``package``, downloading it with apt-get if absent."""
    cache.mkdir(parents=True, exist_ok=True)
    cached = sorted(cache.glob(f"{package}_*.deb"))
    if cached:
        if len(cached) > 1:
            log(f"warning: several cached debs for {package}, using {cached[-1].name}")
        return cached[-1]
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, check=True,
                       capture_output=True)
        (deb,) = Path(tmp).glob("*.deb")
        return deb.replace(cache / deb.name)


def deb_version(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                          capture_output=True, text=True).stdout.strip()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def iter_documents(deb: Path, src: Source) -> Iterator[tuple[str, str]]:
    """Yield (path, text) for the text files of ``deb`` wanted by ``src``, in sorted order."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg", "-x", str(deb), tmp], check=True)
        root = Path(tmp)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        for p in files:
            rel = p.relative_to(root).as_posix()
            if src.wants(rel):
                text = extract_text(rel, p.read_bytes())
                if text is not None:
                    yield rel, text


def truncate_bytes(text: str, limit: int) -> str:
    """Longest prefix of ``text`` within ``limit`` UTF-8 bytes, cut after a newline if any."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    cut = raw.rfind(b"\n", 0, limit)
    cut = cut + 1 if cut > 0 else limit
    return raw[:cut].decode("utf-8", errors="ignore")


def chunks(text: str, size: int = CHUNK_BYTES) -> Iterator[str]:
    while text:
        part = truncate_bytes(text, size)
        yield part
        text = text[len(part):]


def manifest_entry(src: Source, deb: Path, n_docs: int, n_bytes: int) -> dict:
    return {"source": src.name, "package": src.package, "version": deb_version(deb),
            "sha256": sha256_file(deb), "filename": deb.name, "role": src.role,
            "genre": src.genre, "n_docs": n_docs, "n_bytes": n_bytes}


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def pack_pick(docs: list[tuple[str, str]], pick: dict) -> str:
    """Join the documents matching a valid pick's globs, capped at VALID_MAX bytes."""
    texts = [t for rel, t in docs if any(fnmatch.fnmatch(rel, g) for g in pick["include"])]
    return truncate_bytes("\n\n".join(t.strip("\n") for t in texts) + "\n", VALID_MAX)


def _collect(deb: Path, src: Source, cap: int, seen: set[str]) -> tuple[list, int]:
    """Documents of one source not seen before (sha256 of text), within ``cap`` bytes."""
    docs: list[tuple[str, str]] = []
    n_bytes = 0
    for rel, text in iter_documents(deb, src):
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        text = truncate_bytes(text, cap - n_bytes)
        if not text:
            break
        docs.append((rel, text))
        n_bytes += len(text.encode("utf-8"))
    return docs, n_bytes


def build(out: Path, sources: list[Source], max_mb: float, cache: Path, log: Log) -> dict:
    """Build the corpus under ``out`` and return the manifest (also written there)."""
    seen: set[str] = set()
    entries: list[dict] = []
    files: dict[str, dict] = {}
    # train first so that valid documents duplicating train text are dropped (no leakage)
    for src in sorted(sources, key=lambda s: s.role != "train"):
        try:
            deb = fetch_package(src.package, cache, log)
            docs, n_bytes = _collect(deb, src, int((src.max_mb or max_mb) * 1e6), seen)
        except (subprocess.CalledProcessError, ValueError, OSError) as exc:
            log(f"FAILED {src.name}: {exc}")
            continue
        entries.append(manifest_entry(src, deb, len(docs), n_bytes))
        log(f"{src.role:5} {src.name:28} {len(docs):6d} docs {n_bytes / 1e6:8.2f} MB")
        outputs: dict[str, bytes] = {}
        if src.role == "train":
            lines = [json.dumps({"text": part, "path": f"{src.package}:{rel}"},
                                ensure_ascii=False)
                     for rel, text in docs for part in chunks(text)]
            outputs[f"train/{src.name}.jsonl"] = "".join(ln + "\n" for ln in lines).encode()
        for pick in src.picks:
            body = pack_pick(docs, pick).encode("utf-8")
            if len(body) < VALID_MIN:
                log(f"warning: valid pick {src.name}/{pick['short']} is only {len(body)} B")
            genre = pick.get("genre", src.genre)
            outputs[f"valid/{genre}/{src.name}__{pick['short']}.txt"] = body
        for rel, data in outputs.items():
            write_atomic(out / rel, data)
            files[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    totals = {role: {"n_docs": sum(e["n_docs"] for e in entries if e["role"] == role),
                     "n_bytes": sum(e["n_bytes"] for e in entries if e["role"] == role)}
              for role in ("train", "valid")}
    manifest = {"builder_version": BUILDER_VERSION, "max_mb_per_source": max_mb,
                "packages": entries, "totals": totals, "files": dict(sorted(files.items()))}
    write_atomic(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    for stale in sorted(out.glob("train/*")) + sorted(out.glob("valid/*/*")):
        if stale.is_file() and stale.relative_to(out).as_posix() not in files:
            log(f"removing stale {stale}")
            stale.unlink()
    return manifest


def main(argv: list[str] | None = None, echo: Callable[[str], None] = lambda s: None) -> int:
    """Parse `build ...` and build; progress lines go to `echo` (the CLI prints them)."""
    ap = argparse.ArgumentParser(prog="python -m lmpress.train.corpus", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="fetch packages and build the corpus")
    b.add_argument("--out", type=Path, default=Path("data/corpus"))
    b.add_argument("--max-mb-per-source", type=float, default=40.0)
    b.add_argument("--cache", type=Path, default=Path("data/debs"))
    b.add_argument("--sources", type=Path, default=SOURCES_JSON)
    b.add_argument("--no-manifest-copy", action="store_true",
                   help=f"do not update the committed {MANIFEST_COPY.name}")
    args = ap.parse_args(argv)
    manifest = build(args.out, load_sources(args.sources), args.max_mb_per_source, args.cache,
                     echo)
    if not args.no_manifest_copy:
        write_atomic(MANIFEST_COPY, (json.dumps(manifest, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":  # same as `lmpress corpus ...`; the CLI does the talking
    from ..cli import main as cli_main

    sys.exit(cli_main(["corpus", *sys.argv[1:]]))
