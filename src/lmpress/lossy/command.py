"""CLI glue for lossy mode: `lmpress --quality Q [--protect REGEX] [--unprotect KIND]
[--lossy-report OUT.html] FILE`. cli.py adds the options with `add_arguments` and passes
the input through `transform` before its ordinary lossless compression."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .units import KINDS


def _quality(text: str) -> int:
    try:
        q = int(text)
    except ValueError:
        q = -1
    if not 0 <= q <= 100:
        raise argparse.ArgumentTypeError(f"quality must be a whole number from 0 to 100 "
                                         f"(100 = lossless), not {text!r}")
    return q


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("lossy mode (docs/LOSSY.md)")
    g.add_argument("--quality", type=_quality, default=100, metavar="Q",
                   help="0..100; below 100 the model may rewrite the text within the "
                        "level's bound (90 mild, 30 strong); 100 = lossless (default)")
    g.add_argument("--protect", action="append", default=[], metavar="REGEX",
                   help="keep matches of REGEX exactly (repeatable); numbers, URLs, code "
                        "and names are kept by default")
    g.add_argument("--unprotect", action="append", default=[], choices=KINDS,
                   metavar="KIND", help=f"lift a default protection: {', '.join(KINDS)}")
    g.add_argument("--lossy-report", metavar="OUT.html",
                   help="write a page showing what the model filled in")


def transform(args: argparse.Namespace, data: bytes, model,
              echo: Callable[[str], None]) -> bytes:
    """The reconstruction to compress losslessly (the input itself at quality 100).
    `model` is a loaded Compressor's engine source: a Compressor, or a model name/path
    (None = the default). Echoes a one-paragraph report when `args.verbose`; writes
    `args.lossy_report` when given (whole or not at all)."""
    quality = getattr(args, "quality", 100)
    if quality == 100 and not getattr(args, "lossy_report", None):
        return data
    from ..codec import Compressor
    from .api import compress

    comp = model if isinstance(model, Compressor) else Compressor(
        model, level=getattr(args, "level", None))
    kinds = tuple(k for k in KINDS if k not in (getattr(args, "unprotect", None) or []))
    report_path = getattr(args, "lossy_report", None)
    res = compress(data, quality, protect=tuple(getattr(args, "protect", None) or ()),
                   kinds=kinds, compressor=comp, lossless=bool(report_path),
                   semantic=bool(report_path))
    if getattr(args, "verbose", False):
        echo(res.summary())
    if report_path:
        from ..cli_io import atomic_output
        from ..inspect.records import inspect_bytes
        from .report import render_report

        ins = inspect_bytes(res.reconstruction, model=comp.engine.weights)
        page = render_report(res, ins, f"lmpress lossy — quality {quality}")
        with atomic_output(report_path, force=getattr(args, "force", False),
                           source=getattr(args, "file", None), like=None) as f:
            f.write(page.encode("utf-8"))
    return res.reconstruction
