"""What a benchmark reads: files, directory trees, JSONL records and stdin, each item
tagged with a category. Bad items are expected: unreadable files and broken JSONL lines
become notes, empty items are counted and kept out of the ratios."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LmpressError

STDIN = "-"
FILES_CATEGORY = "(files)"  # plain file arguments
TOP_CATEGORY = "(top)"  # files directly inside a directory argument
STDIN_CATEGORY = "(stdin)"


class BenchError(LmpressError):
    """A benchmark cannot start: a missing path, a bad option, an unreadable results file."""


@dataclass(frozen=True)
class BenchInput:
    """One item to measure: its name in reports, its category and its bytes."""

    name: str
    category: str
    data: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class InputSet:
    """The items to measure plus what was left out and why."""

    items: list[BenchInput] = field(default_factory=list)
    empty: list[BenchInput] = field(default_factory=list)  # counted, kept out of ratios
    skipped: list[str] = field(default_factory=list)  # "NAME: reason" lines
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InputOptions:
    """How arguments turn into items."""

    include: tuple[str, ...] = ()  # globs on the path relative to its directory argument
    exclude: tuple[str, ...] = ()
    jsonl_field: str | None = None  # read *.jsonl files as records with this text field
    categories: tuple[tuple[str, str], ...] = ()  # (NAME, GLOB): first match wins
    max_bytes: int | None = None  # keep only the first N bytes of each item (--quick)


def parse_category(text: str) -> tuple[str, str]:
    """'NAME=GLOB' -> (NAME, GLOB), as given to --category."""
    name, sep, glob = text.partition("=")
    if not sep or not name or not glob:
        raise BenchError(f"--category expects NAME=GLOB, got {text!r}; "
                         "for example --category code='*.py'")
    return name, glob


def collect_inputs(paths: Iterable[str], options: InputOptions = InputOptions(),
                   read_stdin: Callable[[], bytes] | None = None) -> InputSet:
    """Every item named by `paths` ('-' reads `read_stdin()`), in a stable order.

    A path that does not exist is a usage error (BenchError): it is almost always a typo.
    A file that exists but cannot be read is skipped with a note.
    """
    paths = list(paths)
    for p in paths:
        if p != STDIN and not os.path.lexists(p):
            raise BenchError(f"no such file or directory: {p}; "
                             "name files, directories or '-' for standard input")
    found = InputSet()
    for p in paths:
        if p == STDIN:
            if read_stdin is None:
                raise BenchError("'-' (standard input) is not available here")
            _add(found, options, "(stdin)", STDIN_CATEGORY, read_stdin(), "(stdin)")
        elif os.path.isdir(p):
            for rel in _walk(p, options):
                top = rel.split("/", 1)[0] if "/" in rel else TOP_CATEGORY
                _add_file(found, options, os.path.join(p, rel), top, rel)
        else:
            _add_file(found, options, p, FILES_CATEGORY, os.path.basename(p))
    if found.empty:
        found.notes.append(f"{len(found.empty)} empty item(s) counted but kept out of the "
                           "ratios: " + ", ".join(i.name for i in found.empty[:5])
                           + (" ..." if len(found.empty) > 5 else ""))
    return found


def _walk(root: str, options: InputOptions) -> list[str]:
    """Relative paths ('/'-separated) of the files under root that pass the globs."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            if options.include and not _matches(rel, options.include):
                continue
            if _matches(rel, options.exclude):
                continue
            out.append(rel)
    return out


def _matches(rel: str, globs: Iterable[str]) -> bool:
    base = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, g) or fnmatch.fnmatchcase(base, g) for g in globs)


def _add_file(found: InputSet, options: InputOptions, path: str, category: str,
              rel: str) -> None:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        found.skipped.append(f"{path}: cannot be read ({e.strerror or e}); skipped")
        return
    if options.jsonl_field is not None and path.endswith(".jsonl"):
        _add_jsonl(found, options, path, data, rel)
    else:
        _add(found, options, path, category, data, rel)


def _add_jsonl(found: InputSet, options: InputOptions, path: str, data: bytes,
               rel: str) -> None:
    """Each line of a JSONL file is one item: its text field encoded as UTF-8."""
    category = Path(path).stem
    key = options.jsonl_field
    for n_line, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        name = f"{path}:{n_line}"
        try:
            record = json.loads(line)
            text = record[key]
        except (ValueError, TypeError, KeyError):
            found.skipped.append(f"{name}: not a JSON object with a {key!r} field; skipped")
            continue
        if not isinstance(text, str):
            found.skipped.append(f"{name}: field {key!r} is not a string; skipped")
            continue
        _add(found, options, name, category, text.encode("utf-8"), f"{rel}:{n_line}")


def _add(found: InputSet, options: InputOptions, name: str, category: str, data: bytes,
         rel: str) -> None:
    for cat, glob in options.categories:
        if _matches(rel, [glob]):
            category = cat
            break
    if options.max_bytes is not None:
        data = data[:options.max_bytes]
    item = BenchInput(name, category, data)
    (found.items if data else found.empty).append(item)
