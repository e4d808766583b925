"""`lmpress rank` without the command line: read documents, score them, sort, keep or
drop by thresholds, and write the table and the filtered corpus.

Inputs: a directory (every regular file below it, recursively, in sorted order; id = the
path relative to the directory; dot-files and dot-directories skipped) or a JSONL file
(one JSON object per line with the text in "text" and the id in "id", else "path", else
"line N"; blank lines skipped).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .scores import RankError, compressor, lm_scores, ncd_clusters, xz_size, zlib_size

# the table's columns, in order; every one but id can be sorted and thresholded
COLUMNS = ("id", "n_bytes", "n_tokens", "bpb", "lm_bits", "zlib_bits", "xz_bits", "lm_zlib",
           "lm_xz", "log_ppl", "log_xppl", "binoculars", "cluster", "cluster_size", "kept")
NUMERIC = COLUMNS[1:]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b, "<": lambda a, b: a < b, ">": lambda a, b: a > b}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_EXPR = re.compile(rf"^\s*([a-z_]+)\s*(<=|>=|==|!=|<|>)\s*({_NUMBER})\s*$")


@dataclass
class Document:
    id: str
    data: bytes
    path: Path | None = None  # the file, for directory inputs
    line: str | None = None  # the JSON line as read, for JSONL inputs


def read_documents(path: str | os.PathLike, text_field: str = "text",
                   id_field: str | None = None) -> list[Document]:
    """Documents of a directory or a JSONL file (see the module docstring)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and not any(
            part.startswith(".") for part in f.relative_to(p).parts))
        try:
            return [Document(f.relative_to(p).as_posix(), f.read_bytes(), path=f)
                    for f in files]
        except OSError as e:
            raise RankError(f"cannot read {e.filename}: {e.strerror}; check its "
                            "permissions") from None
    if not p.exists():
        raise RankError(f"{p}: no such file or directory; give a directory of documents or "
                        "a JSONL file")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise RankError(f"{p}: cannot read it as UTF-8 JSONL ({e}); give a directory of "
                        "documents or a JSONL file") from None
    docs = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            docs.append(_jsonl_document(p, n, line, text_field, id_field))
    return docs


def _jsonl_document(p: Path, n: int, line: str, text_field: str,
                    id_field: str | None) -> Document:
    where = f"{p} line {n}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise RankError(f"{where}: not valid JSON ({e.msg}); each line must be one object "
                        f'like {{"id": ..., "{text_field}": ...}}') from None
    if not isinstance(obj, dict) or not isinstance(obj.get(text_field), str):
        raise RankError(f'{where}: expected an object with a string "{text_field}" field; '
                        "fix the line or name the field with --text-field")
    keys = (id_field,) if id_field else ("id", "path")
    ident = next((obj[k] for k in keys if k in obj), f"line {n}")
    try:
        data = obj[text_field].encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise RankError(f"{where}: the text holds an unpaired surrogate that is no byte; "
                        "fix the line") from None
    return Document(str(ident), data, line=line)


@dataclass(frozen=True)
class Threshold:
    """`COLUMN OP NUMBER`, e.g. `bpb>0.5`; a missing (nan) value satisfies nothing."""

    column: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Threshold:
        m = _EXPR.match(text)
        if not m or m.group(1) not in NUMERIC:
            raise RankError(f"bad threshold {text!r}: expected COLUMN OP NUMBER, e.g. "
                            f"'bpb>0.5', with OP one of < <= > >= == != and COLUMN one of "
                            f"{', '.join(NUMERIC)}")
        return cls(m.group(1), m.group(2), float(m.group(3)))

    def holds(self, row: dict) -> bool:
        v = row[self.column]
        return v is not None and not (isinstance(v, float) and math.isnan(v)) and \
            _OPS[self.op](v, self.value)


def score_rows(docs: Sequence[Document], model, pair: tuple | None = None, *,
               ncd: str | None = "zlib", ncd_threshold: float = 0.3, progress=None,
               pool=None) -> list[dict]:
    """One row (COLUMNS, "kept" still True) per document, in input order: `model` scores
    bits per byte and the ratios, `pair` = (observer, performer) Binoculars; `pool`
    (lmpress.cluster) scores on its workers, with the same numbers."""
    data = [d.data for d in docs]
    lm = lm_scores(model, data, pair, progress, pool)
    zs = [zlib_size(x) for x in data]
    clusters = list(range(len(docs)))
    if ncd is not None:
        size = compressor(ncd)
        clusters = ncd_clusters(data, ncd_threshold, size,
                                sizes=zs if size is zlib_size else None)
    counts: dict[int, int] = {}
    for c in clusters:
        counts[c] = counts.get(c, 0) + 1
    rows = []
    for d, s, z, c in zip(docs, lm, zs, clusters):
        n, xz = len(d.data), xz_size(d.data)
        bits = s.bits if n else math.nan  # an empty document has no scores
        rows.append({
            "id": d.id, "n_bytes": n, "n_tokens": s.n_tokens,
            "bpb": bits / n if n else math.nan, "lm_bits": s.bits,
            "zlib_bits": 8 * z, "xz_bits": 8 * xz, "lm_zlib": bits / (8 * z),
            "lm_xz": bits / (8 * xz), "log_ppl": s.log_ppl, "log_xppl": s.log_xppl,
            "binoculars": s.binoculars,
            "cluster": c if ncd is not None else None,
            "cluster_size": counts[c] if ncd is not None else None, "kept": True})
    return rows


def sort_order(rows: Sequence[dict], column: str, descending: bool = False) -> list[int]:
    """Row indices sorted by `column` (missing values last, ties in input order)."""
    if column not in COLUMNS:
        raise RankError(f"cannot sort by {column!r}; use one of {', '.join(COLUMNS)}")

    def missing(v) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v))

    have = [i for i, r in enumerate(rows) if not missing(r[column])]
    have.sort(key=lambda i: rows[i][column], reverse=descending)  # stable both ways
    return have + [i for i, r in enumerate(rows) if missing(r[column])]


def select(rows: Sequence[dict], order: Sequence[int], keep: Sequence[Threshold] = (),
           drop: Sequence[Threshold] = (), dedup: bool = False) -> None:
    """Set each row's "kept": every --keep holds and no --drop holds; with `dedup`, only
    the first such row of each NCD cluster in `order` stays."""
    seen: set[int] = set()
    for i in order:
        r = rows[i]
        r["kept"] = all(t.holds(r) for t in keep) and not any(t.holds(r) for t in drop)
        if dedup and r["kept"] and r["cluster"] is not None:
            r["kept"] = r["cluster"] not in seen
            seen.add(r["cluster"])


def _cell(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    return v


def write_csv(rows: Sequence[dict], order: Sequence[int], out: TextIO) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for i in order:
        w.writerow(["" if (c := _cell(rows[i][k])) is None else c for k in COLUMNS])


def write_jsonl(rows: Sequence[dict], order: Sequence[int], out: TextIO) -> None:
    for i in order:
        out.write(json.dumps({k: _cell(rows[i][k]) for k in COLUMNS}) + "\n")


def write_kept_jsonl(docs: Sequence[Document], rows: Sequence[dict], order: Sequence[int],
                     out: TextIO) -> None:
    """Kept documents in `order`: JSONL lines as read, or {"id", "text"} for files."""
    for i in order:
        if rows[i]["kept"]:
            d = docs[i]
            out.write((d.line if d.line is not None else json.dumps(
                {"id": d.id, "text": d.data.decode("utf-8", "surrogateescape")})) + "\n")


def copy_kept(docs: Sequence[Document], rows: Sequence[dict], out_dir: str | os.PathLike
              ) -> int:
    """Copy kept files of a directory input into the new directory `out_dir`, keeping
    their relative paths; built beside it and renamed only when complete."""
    if any(d.path is None for d in docs):
        raise RankError("--keep-dir copies the files of a directory input; for JSONL input "
                        "write the kept lines with --keep-jsonl")
    target = Path(out_dir)
    if target.exists():
        raise RankError(f"{target} already exists; --keep-dir makes a new directory, so name "
                        "one that does not exist")
    tmp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    n = 0
    try:
        for d, r in zip(docs, rows):
            if r["kept"]:
                dst = tmp / d.id
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(d.path, dst)
                n += 1
        tmp.mkdir(parents=True, exist_ok=True)  # an empty result is an empty directory
        os.replace(tmp, target)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RankError(f"cannot write {target}: {e.strerror or e}; check the path and its "
                        "permissions") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n
