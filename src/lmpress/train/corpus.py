"""Build the lmpress text corpus from pinned Debian packages (see ``sources.json``).

Usage: ``python -m lmpress.train.corpus build --out data/corpus [--max-mb-per-source N]``.
Each package is fetched with ``apt-get download`` into a cache (the version recorded in the
committed manifest when there is one), unpacked with ``dpkg -x``, and its text files are
extracted (``extract.py``), deduplicated by sha256 and capped per source.

Sources belong to a set. The base set's train sources go to ``train/<source>.jsonl`` and its
held-out (valid) sources are packed into a few files under ``valid/<genre>/``, with
``manifest.json``; the extra set's go to ``train-extra/<source>.jsonl``, with
``manifest-extra.json``. The base set is built by builder 1.0's rules, so that its files
(the shipped models' training samples) stay byte-identical; the extra set also decodes
non-UTF-8 HTML, drops page furniture, near-duplicate renderings and documents overlapping
validation text. Standard library only.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .debs import deb_version, fetch_package, load_pins, sha256_file
from .extract import BASE_RULES, MIN_DOC_BYTES, Rules, extract_text, strip_furniture, text_lines

Log = Callable[[str], None]
SOURCES_JSON = Path(__file__).with_name("sources.json")
MANIFEST_COPY = Path(__file__).with_name("corpus_manifest.json")
MANIFEST_EXTRA_COPY = Path(__file__).with_name("corpus_manifest_extra.json")
CHUNK_BYTES = 1 << 20  # split huge documents (dictionaries) into ~1 MiB jsonl records
VALID_MIN, VALID_MAX = 50_000, 400_000


@dataclass(frozen=True)
class CorpusSet:
    """A group of train sources with its own folder, manifest and extraction rules."""

    train_dir: str  # folder of the set's <source>.jsonl under the corpus
    manifest: str  # the set's manifest under the corpus
    copy: Path  # the committed copy of that manifest (also the versions to fetch)
    rules: Rules
    builder_version: str  # the rules' version, written into the manifest


SETS = {
    # the shipped models' corpus: builder 1.0, unchanged (valid sources belong here)
    "base": CorpusSet("train", "manifest.json", MANIFEST_COPY, BASE_RULES, "1.0"),
    # more distinct text for larger models: a document is dropped when 80% of its text
    # lines were seen (in base, valid or earlier extra text), or 20% are validation text
    "extra": CorpusSet("train-extra", "manifest-extra.json", MANIFEST_EXTRA_COPY,
                       Rules(charset=True, bible=True, furniture=True, near_dup=0.8,
                             valid_overlap=0.2),
                       "2.0"),
}


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
    set: str = "base"  # a key of SETS; valid sources are always base

    def wants(self, rel: str) -> bool:
        if self.include and not any(fnmatch.fnmatch(rel, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatch(rel, g) for g in self.exclude)


def load_sources(path: Path = SOURCES_JSON) -> list[Source]:
    """Read the sources spec; names must be unique, valid sources belong to the base set."""
    sources = [Source(**{"name": e["package"], **e}) for e in json.loads(path.read_text())]
    names = [s.name for s in sources]
    if len(names) != len(set(names)):
        raise ValueError("duplicate source names in sources spec")
    if any(s.role not in ("train", "valid") for s in sources):
        raise ValueError("role must be 'train' or 'valid'")
    if any(s.set not in SETS for s in sources):
        raise ValueError(f"set must be one of {sorted(SETS)}")
    if any(s.role == "valid" and s.set != "base" for s in sources):
        raise ValueError("valid sources belong to the base set")
    return sources


def iter_documents(deb: Path, src: Source, rules: Rules = BASE_RULES) -> Iterator[tuple[str, str]]:
    """Yield (path, text) for the text files of ``deb`` wanted by ``src``, in sorted order."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg", "-x", str(deb), tmp], check=True)
        root = Path(tmp)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        for p in files:
            rel = p.relative_to(root).as_posix()
            if src.wants(rel):
                text = extract_text(rel, p.read_bytes(), rules)
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


@dataclass
class _Seen:
    """What the sources built so far hold: documents (sha256) and text lines (hashes)."""

    docs: set[str] = field(default_factory=set)
    lines: set[int] = field(default_factory=set)  # kept train and valid text
    valid: set[int] = field(default_factory=set)  # validation text only
    track_lines: bool = False  # only a set with near_dup or valid_overlap needs the lines


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


def _collect_filtered(deb: Path, src: Source, cap: int, seen: _Seen,
                      rules: Rules) -> tuple[list, int, dict]:
    """As `_collect`, then the set's filters: furniture, near duplicates, validation text.
    Returns the documents, their bytes, and what each filter took (for the manifest)."""
    docs = []
    for rel, text in iter_documents(deb, src, rules):
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest not in seen.docs:
            seen.docs.add(digest)
            docs.append((rel, text))
    stats = {"n_furniture_bytes": 0, "n_near_dup_docs": 0, "n_valid_overlap_docs": 0,
             "n_valid_lines": 0}
    if rules.furniture:
        docs, stats["n_furniture_bytes"] = strip_furniture(docs)
    kept: list[tuple[str, str]] = []
    n_bytes, stripped = 0, set()
    for rel, text in docs:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest in stripped or len(text.encode("utf-8")) < MIN_DOC_BYTES:
            continue  # pages left equal (or empty) once their furniture is gone
        stripped.add(digest)
        hashes = text_lines(text)
        n_valid = sum(h in seen.valid for h in hashes)
        if hashes and rules.valid_overlap and n_valid >= rules.valid_overlap * len(hashes):
            stats["n_valid_overlap_docs"] += 1
            continue
        if hashes and rules.near_dup and \
                sum(h in seen.lines for h in hashes) >= rules.near_dup * len(hashes):
            stats["n_near_dup_docs"] += 1
            continue
        cut = truncate_bytes(text, cap - n_bytes)
        if not cut:
            break
        if cut != text:
            hashes = text_lines(cut)
            n_valid = sum(h in seen.valid for h in hashes)
        kept.append((rel, cut))
        n_bytes += len(cut.encode("utf-8"))
        stats["n_valid_lines"] += n_valid
        seen.lines.update(hashes)
    return kept, n_bytes, stats


def _build_order(sources: list[Source]) -> list[Source]:
    """Base train, then valid (so valid documents duplicating base text are dropped, as in
    builder 1.0), then the other sets (checked against both)."""
    rank = {name: i for i, name in enumerate(SETS)}
    return sorted(sources, key=lambda s: (rank[s.set], s.role != "train"))


def _outputs(src: Source, train_dir: str, docs: list[tuple[str, str]], log: Log) -> dict:
    outputs: dict[str, bytes] = {}
    if src.role == "train":
        lines = [json.dumps({"text": part, "path": f"{src.package}:{rel}"}, ensure_ascii=False)
                 for rel, text in docs for part in chunks(text)]
        outputs[f"{train_dir}/{src.name}.jsonl"] = "".join(ln + "\n" for ln in lines).encode()
    for pick in src.picks:
        body = pack_pick(docs, pick).encode("utf-8")
        if len(body) < VALID_MIN:
            log(f"warning: valid pick {src.name}/{pick['short']} is only {len(body)} B")
        genre = pick.get("genre", src.genre)
        outputs[f"valid/{genre}/{src.name}__{pick['short']}.txt"] = body
    return outputs


def build(out: Path, sources: list[Source], max_mb: float, cache: Path, log: Log,
          pins: dict[str, dict] | None = None) -> dict[str, dict]:
    """Build the corpus under ``out``; returns each set's manifest (also written there).
    ``pins`` (source name -> manifest entry) gives the package versions to fetch."""
    pins = pins or {}
    seen = _Seen(track_lines=any(SETS[s.set].rules.near_dup or SETS[s.set].rules.valid_overlap
                                 for s in sources))
    entries: dict[str, list[dict]] = {s.set: [] for s in sources}
    files: dict[str, dict[str, dict]] = {name: {} for name in entries}
    for src in _build_order(sources):
        cset, pin = SETS[src.set], pins.get(src.name, {})
        cap = int((src.max_mb or max_mb) * 1e6)
        try:
            deb = fetch_package(src.package, cache, log, pin.get("version"))
            if cset.rules == BASE_RULES:
                docs, n_bytes = _collect(deb, src, cap, seen.docs)
                stats = {}
            else:
                docs, n_bytes, stats = _collect_filtered(deb, src, cap, seen, cset.rules)
        except (subprocess.CalledProcessError, ValueError, OSError) as exc:
            log(f"FAILED {src.name}: {exc}")
            continue
        if seen.track_lines and cset.rules == BASE_RULES:
            for _, text in docs:
                hashes = text_lines(text)
                seen.lines.update(hashes)
                if src.role == "valid":
                    seen.valid.update(hashes)
        entry = manifest_entry(src, deb, len(docs), n_bytes)
        if cset.rules != BASE_RULES:
            entry = {**entry, "deb_bytes": deb.stat().st_size, **stats}
        if pin and (entry["version"], entry["sha256"]) != (pin["version"], pin["sha256"]):
            log(f"warning: {src.name} is {entry['version']} {entry['sha256'][:12]}, the "
                f"manifest records {pin['version']} {pin['sha256'][:12]}")
        entries[src.set].append(entry)
        extra = "".join(f", {k[2:]} {v}" for k, v in stats.items())
        log(f"{src.set:5} {src.role:5} {src.name:28} {len(docs):6d} docs "
            f"{n_bytes / 1e6:8.2f} MB{extra}")
        for rel, data in _outputs(src, cset.train_dir, docs, log).items():
            write_atomic(out / rel, data)
            files[src.set][rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifests = {}
    for name, set_entries in entries.items():
        cset = SETS[name]
        totals = {role: {"n_docs": sum(e["n_docs"] for e in set_entries if e["role"] == role),
                         "n_bytes": sum(e["n_bytes"] for e in set_entries if e["role"] == role)}
                  for role in ("train", "valid")}
        manifest = {"builder_version": cset.builder_version, "max_mb_per_source": max_mb,
                    "packages": set_entries, "totals": totals,
                    "files": dict(sorted(files[name].items()))}
        write_atomic(out / cset.manifest, (json.dumps(manifest, indent=1) + "\n").encode())
        stale = sorted(out.glob(f"{cset.train_dir}/*"))
        if name == "base":
            stale += sorted(out.glob("valid/*/*"))
        for path in stale:
            if path.is_file() and path.relative_to(out).as_posix() not in files[name]:
                log(f"removing stale {path}")
                path.unlink()
        manifests[name] = manifest
    return manifests


def _copy_manifest(name: str, manifest: dict, replace: bool, log: Log) -> None:
    """Record a set's manifest in the package, unless that would replace a recorded build
    whose files differ (the shipped models' recipes read those files)."""
    copy = SETS[name].copy
    if copy.exists() and not replace:
        old = json.loads(copy.read_text())
        if old["files"] != manifest["files"]:
            n = len(set(old["files"].items() ^ manifest["files"].items()))
            log(f"warning: the {name} set's files differ from {copy.name} ({n} entries); "
                "not overwriting it (--replace-manifest-copy does)")
            return
    write_atomic(copy, (json.dumps(manifest, indent=1) + "\n").encode())


def main(argv: list[str] | None = None, echo: Callable[[str], None] = lambda s: None) -> int:
    """Parse `build ...` and build; progress lines go to `echo` (the CLI prints them)."""
    ap = argparse.ArgumentParser(prog="python -m lmpress.train.corpus", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="fetch packages and build the corpus")
    b.add_argument("--out", type=Path, default=Path("data/corpus"))
    b.add_argument("--max-mb-per-source", type=float, default=40.0)
    b.add_argument("--cache", type=Path, default=Path("data/debs"))
    b.add_argument("--sources", type=Path, default=SOURCES_JSON)
    b.add_argument("--no-pins", action="store_true",
                   help="fetch the current package versions, not the recorded ones")
    b.add_argument("--no-manifest-copy", action="store_true",
                   help=f"do not update the committed {MANIFEST_COPY.name} and "
                        f"{MANIFEST_EXTRA_COPY.name}")
    b.add_argument("--replace-manifest-copy", action="store_true",
                   help="update them even when a set's files differ from the recorded build")
    args = ap.parse_args(argv)
    pins = {} if args.no_pins else load_pins([s.copy for s in SETS.values()])
    manifests = build(args.out, load_sources(args.sources), args.max_mb_per_source,
                      args.cache, echo, pins)
    if not args.no_manifest_copy:
        for name, manifest in manifests.items():
            _copy_manifest(name, manifest, args.replace_manifest_copy, echo)
    return 0


if __name__ == "__main__":  # same as `lmpress corpus ...`; the CLI does the talking
    from ..cli import main as cli_main

    sys.exit(cli_main(["corpus", *sys.argv[1:]]))
