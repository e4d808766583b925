"""`lmpress inspect FILE`: the text coloured by each token's code length, a legend and a
summary in the terminal; `--html` writes the heatmap page, `--json` the per-token records.

cli.py hands in the streams; errors come back as one line on `stderr` and exit status 1,
and an output file is written whole or not at all (cli_io.atomic_output)."""

from __future__ import annotations

import argparse
import json
import os
from typing import TextIO

from ..cli_io import (
    CliError,
    atomic_output,
    describe_os_error,
    open_input,
    progress_bar,
    set_threads,
    whole_number,
)
from ..errors import LmpressError

EXIT_OK, EXIT_ERROR = 0, 1


def build_parser(prog: str) -> argparse.ArgumentParser:
    from .records import DEFAULT_MAX_BYTES

    p = argparse.ArgumentParser(
        prog=prog, description="Compress FILE and show what each token cost: the text "
        "coloured by bits per token, a legend and a summary (bits per byte, the most "
        "surprising spans, what online adaptation saved). See docs/INSPECT.md.")
    p.add_argument("file", metavar="FILE", help="the file to inspect ('-' = stdin)")
    p.add_argument("--html", metavar="OUT.html",
                   help="write a self-contained heatmap page (hover: bits, rank, alternatives)")
    p.add_argument("--json", metavar="OUT.json",
                   help="write the per-token records (offset, bytes, token, bits, rank, "
                        "entropy, alternatives) as JSON")
    p.add_argument("-m", "--model", metavar="NAME_OR_PATH",
                   help="shipped model name or .safetensors file (see `lmpress models`)")
    for level in range(1, 10):
        p.add_argument(f"-{level}", dest="level", action="store_const", const=level,
                       help=argparse.SUPPRESS)
    p.add_argument("--no-adapt", dest="adapt", action="store_false",
                   help="the language model alone, without online adaptation")
    p.add_argument("--top", type=whole_number(0), default=5, metavar="K",
                   help="alternatives to keep per token (default 5)")
    p.add_argument("--spans", type=whole_number(0), default=5, metavar="N",
                   help="most surprising spans to list (default 5)")
    p.add_argument("-s", "--summary-only", action="store_true",
                   help="print only the summary, not the coloured text")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the terminal output (auto: when it is a terminal and "
                        "NO_COLOR is not set)")
    p.add_argument("--max-bytes", type=whole_number(1), default=DEFAULT_MAX_BYTES,
                   metavar="N", help=f"refuse larger inputs (default {DEFAULT_MAX_BYTES})")
    p.add_argument("-f", "--force", action="store_true", help="overwrite --html/--json files")
    p.add_argument("--backend", choices=("numpy", "torch-cpu", "torch-cuda"),
                   help="compute backend (the costs are identical on all of them)")
    p.add_argument("--blas-threads", type=whole_number(0), default=None, metavar="N",
                   help="BLAS/OpenMP threads (default 1; 0 = all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.usage = f"{prog} [-m MODEL | -1..-9] [--no-adapt] [--html OUT] [--json OUT] FILE"
    return p


def main(argv: list[str], *, stdout: TextIO, stderr: TextIO, prog: str = "lmpress inspect"
         ) -> int:
    """Inspect one file; 0 on success, 1 (one line on stderr) on an error."""
    args = build_parser(prog).parse_args(argv)
    label = "(stdin)" if args.file == "-" else args.file
    try:
        return _run(args, label, stdout, stderr)
    except CliError as e:
        print(f"{prog}: {label}: {e}", file=stderr)
    except LmpressError as e:
        print(f"{prog}: {label}: {e}", file=stderr)
    except OSError as e:
        print(f"{prog}: {label}: {describe_os_error(e)}", file=stderr)
    return EXIT_ERROR


def _run(args: argparse.Namespace, label: str, stdout: TextIO, stderr: TextIO) -> int:
    for out in (args.html, args.json):  # fail before minutes of coding, not after
        if out is not None and os.path.lexists(out) and not args.force:
            raise CliError(f"output {out} already exists; use -f to overwrite it")
    with open_input(args.file) as (src, _):
        data = src.read(args.max_bytes + 1)
    if len(data) > args.max_bytes:
        raise CliError(f"is larger than inspect's limit of {args.max_bytes} bytes (every "
                       "token becomes a record and a span on the page); raise it with "
                       f"--max-bytes, or inspect a part: head -c {args.max_bytes} FILE | "
                       "lmpress inspect -")
    set_threads(1 if args.blas_threads is None else args.blas_threads)
    from .records import inspect_bytes

    show_bar = not args.quiet and stderr.isatty()
    with progress_bar(show_bar, len(data) or None, label) as progress:
        ins = inspect_bytes(data, model=args.model, level=args.level, adapt=args.adapt,
                            top_k=args.top, backend=args.backend, progress=progress)
    if args.html is not None:
        from .html import render_page

        page = render_page(ins, f"lmpress inspect — {os.path.basename(label)}")
        _write(args.html, page.encode("utf-8"), args)
    if args.json is not None:
        text = json.dumps(ins.to_json(), ensure_ascii=False, separators=(",", ":"))
        _write(args.json, text.encode("utf-8") + b"\n", args)
    from rich.console import Console

    from .terminal import show

    system = "auto"
    if args.color == "always" and os.environ.get("COLORTERM") not in ("truecolor", "24bit"):
        system = "256"  # forced colour without a terminal to ask: 256 is near universal
    console = Console(file=stdout, force_terminal={"auto": None, "always": True,
                                                   "never": False}[args.color],
                      highlight=False, color_system=system)
    show(console, ins, label, text=not args.summary_only, n_spans=args.spans)
    for out in (args.html, args.json):
        if out is not None:
            print(f"{label}: wrote {out}", file=stderr)
    return EXIT_OK


def _write(path: str, data: bytes, args: argparse.Namespace) -> None:
    """Write a report whole or not at all, readable as the umask allows (not 0600)."""
    with atomic_output(path, force=args.force, source=args.file, like=None) as f:
        f.write(data)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
