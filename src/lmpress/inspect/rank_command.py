"""`lmpress rank`: per-document scores of a directory or JSONL file, sorted, as CSV or
JSONL, with thresholds that keep or drop documents into a filtered corpus.

cli.py hands in the streams; the table goes to `stdout` (or files), notes and progress to
`stderr`; problems are raised as LmpressError / CliError for one line on stderr."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from collections.abc import Iterator
from typing import TextIO

from ..cli_io import CliError, atomic_output, progress_bar, whole_number
from ..errors import LmpressError
from .rank import (
    COLUMNS,
    Threshold,
    copy_kept,
    read_documents,
    score_rows,
    select,
    sort_order,
    write_csv,
    write_jsonl,
    write_kept_jsonl,
)
from .scores import NCD_COMPRESSORS

EXIT_OK, EXIT_ERROR = 0, 1
MAX_NCD_DOCS = 5000  # all-pairs NCD beyond this takes hours; --no-ncd skips it
ZLIB_NCD_BYTES = 16 << 10  # a concatenation beyond zlib's 32 KiB window hides the copy
DEFAULT_PERFORMER = "lmpress-fast-v1"  # with the default model as observer: best measured


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Score every document of a directory or JSONL file: bits per "
        "byte, LM bits / zlib and / xz bits (memorization), Binoculars (LLM-likeness), "
        "near-duplicate clusters; sort, keep or drop by thresholds, write a filtered "
        "corpus. Formulas in docs/INSPECT.md.")
    p.add_argument("path", metavar="DIR|JSONL",
                   help='a directory (every file below it) or a JSONL file of {"id", "text"}')
    p.add_argument("--text-field", default="text", metavar="KEY",
                   help="JSONL key holding the text (default: text)")
    p.add_argument("--id-field", metavar="KEY",
                   help="JSONL key holding the id (default: id, else path, else line N)")
    p.add_argument("-m", "--model", metavar="NAME_OR_PATH",
                   help="the model behind bits/byte and the ratios (default: the default "
                        "model)")
    p.add_argument("--observer", metavar="NAME_OR_PATH",
                   help="Binoculars' observer (default: the -m model)")
    p.add_argument("--performer", default=DEFAULT_PERFORMER, metavar="NAME_OR_PATH",
                   help=f"Binoculars' performer (default {DEFAULT_PERFORMER}); all models "
                        "must share the tokenizer")
    p.add_argument("--no-binoculars", action="store_true",
                   help="skip Binoculars (faster: the -m model alone)")
    p.add_argument("--ncd-compressor", choices=NCD_COMPRESSORS, default="zlib",
                   help="compressor C of the normalized compression distance (default zlib)")
    p.add_argument("--ncd-threshold", type=float, default=0.3, metavar="D",
                   help="documents closer than D (NCD) share a cluster (default 0.3)")
    p.add_argument("--no-ncd", action="store_true", help="skip near-duplicate clustering")
    p.add_argument("--sort", default="bpb", metavar="COLUMN",
                   help=f"sort by one of {', '.join(COLUMNS)} (default bpb, ascending)")
    p.add_argument("-r", "--reverse", action="store_true", help="sort descending")
    p.add_argument("--keep", action="append", default=[], metavar="EXPR",
                   help="keep only documents where EXPR holds, e.g. 'bpb>0.5' (repeatable)")
    p.add_argument("--drop", action="append", default=[], metavar="EXPR",
                   help="drop documents where EXPR holds, e.g. 'binoculars<0.9' (repeatable)")
    p.add_argument("--dedup", action="store_true",
                   help="keep only the first (in sort order) kept document of each cluster")
    p.add_argument("--csv", metavar="PATH", help="write the table as CSV (- = stdout; the "
                   "default when neither --csv nor --jsonl is given)")
    p.add_argument("--jsonl", metavar="PATH", help="write the table as JSONL (- = stdout)")
    p.add_argument("--keep-dir", metavar="DIR",
                   help="copy the kept files of a directory input into the new DIR")
    p.add_argument("--keep-jsonl", metavar="PATH",
                   help="write the kept documents as JSONL (input lines as they were)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite output files")
    p.add_argument("--backend", choices=("numpy", "torch-cpu", "torch-cuda"),
                   help="compute backend for the models")
    p.add_argument("--batch-size", type=whole_number(1), default=16, metavar="N",
                   help="windows scored together (default 16)")
    p.add_argument("-T", "--threads", type=whole_number(0), default=1, metavar="N",
                   help="score in N worker processes (0 = one per core); same numbers")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="score on a Ray cluster (host:port or auto); same numbers")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    return p


@contextlib.contextmanager
def _text_output(path: str, stdout: TextIO, force: bool) -> Iterator[TextIO]:
    if path == "-":
        yield stdout
        return
    with atomic_output(path, force=force, source=None, like=None) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()


def main(argv: list[str], *, stdout: TextIO, stderr: TextIO, prog: str = "lmpress rank"
         ) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        return _run(args, stdout, stderr, prog)
    except (LmpressError, CliError) as e:
        print(f"{prog}: {e}", file=stderr)
        return EXIT_ERROR


def _load_models(args: argparse.Namespace):
    """The scoring model and the Binoculars (observer, performer), or None; a role played
    by the scoring model's own weights reuses its engine, so it runs once."""
    from ..codec import _Engine

    model = _Engine(args.model, args.backend, args.batch_size)
    if args.no_binoculars:
        return model, None

    def load(spec: str | None) -> _Engine:
        if spec is None:
            return model
        e = _Engine(spec, args.backend, args.batch_size)
        return model if e.weights.digest == model.weights.digest else e

    return model, (load(args.observer), load(args.performer))


def _check(args: argparse.Namespace) -> tuple[list[Threshold], list[Threshold], str | None]:
    """Every option problem, before any model is loaded: (keep, drop, CSV path)."""
    from .scores import RankError

    keep = [Threshold.parse(t) for t in args.keep]
    drop = [Threshold.parse(t) for t in args.drop]
    if args.sort not in COLUMNS:
        raise RankError(f"cannot sort by {args.sort!r}; use one of {', '.join(COLUMNS)}")
    if not 0 <= args.ncd_threshold < 1:
        raise RankError(f"--ncd-threshold must be in [0, 1), got {args.ncd_threshold}")
    csv_path = args.csv if args.csv or args.jsonl else "-"  # the default: CSV on stdout
    outputs = {"--csv": csv_path, "--jsonl": args.jsonl, "--keep-jsonl": args.keep_jsonl}
    to_stdout = [flag for flag, path in outputs.items() if path == "-"]
    if len(to_stdout) > 1:
        raise RankError(f"{' and '.join(to_stdout)} would both write to stdout (the table is "
                        "CSV on stdout by default); name a file for one of them")
    if args.dedup and args.no_ncd:
        raise RankError("--dedup needs the NCD clusters; drop --no-ncd")
    if args.keep_dir and os.path.lexists(args.keep_dir):
        raise RankError(f"{args.keep_dir} already exists; --keep-dir makes a new directory, "
                        "so name one that does not exist")
    return keep, drop, csv_path


def _run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, prog: str) -> int:
    from .scores import RankError

    keep, drop, csv_path = _check(args)
    docs = read_documents(args.path, args.text_field, args.id_field)
    if not docs:
        raise RankError(f"{args.path}: no documents found; give a directory with files or a "
                        "non-empty JSONL file")
    if args.keep_dir and docs[0].path is None:
        raise RankError("--keep-dir copies the files of a directory input; for JSONL input "
                        "write the kept lines with --keep-jsonl")
    ncd = None if args.no_ncd else args.ncd_compressor
    if ncd and len(docs) > MAX_NCD_DOCS:
        raise RankError(f"near-duplicate clustering compares all pairs; {len(docs)} documents "
                        f"are more than {MAX_NCD_DOCS}; pass --no-ncd or split the corpus")
    if ncd == "zlib" and max(len(d.data) for d in docs) > ZLIB_NCD_BYTES and not args.quiet:
        print(f"{prog}: note: documents over 16 KiB: zlib's 32 KiB window cannot see a whole "
              "earlier copy, so NCD misses such duplicates; use --ncd-compressor xz",
              file=stderr)
    model, pair = _load_models(args)
    total = sum(len(d.data) for d in docs)
    from ..cluster import make_pool

    pool = make_pool(None, n_workers=args.threads, ray_address=args.ray)
    try:
        with progress_bar(stderr.isatty() and not args.quiet, total, "scoring") as progress:
            rows = score_rows(docs, model, pair, ncd=ncd, ncd_threshold=args.ncd_threshold,
                              progress=progress, pool=pool)
    finally:
        if pool is not None:
            pool.close()
    order = sort_order(rows, args.sort, args.reverse)
    select(rows, order, keep, drop, args.dedup)
    if args.keep_dir:
        copy_kept(docs, rows, args.keep_dir)
    if args.keep_jsonl:
        with _text_output(args.keep_jsonl, stdout, args.force) as out:
            write_kept_jsonl(docs, rows, order, out)
    for path, write in ((csv_path, write_csv), (args.jsonl, write_jsonl)):
        if path:
            with _text_output(path, stdout, args.force) as out:
                write(rows, order, out)
    if not args.quiet:
        pairing = (f"; Binoculars observer {pair[0].weights.name}, performer "
                   f"{pair[1].weights.name}" if pair else "")
        print(f"{prog}: {len(rows)} documents ({total} bytes) scored with "
              f"{model.weights.name}{pairing}; {sum(r['kept'] for r in rows)} kept",
              file=stderr)
    return EXIT_OK
