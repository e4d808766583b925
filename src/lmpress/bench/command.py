"""`lmpress bench`: arguments, progress and output files around `run_bench`.

cli.py hands in the streams to talk to; this module writes the table to `stdout`, notes
and progress to `stderr`, and raises BenchError (an LmpressError) for the CLI to report
in one line."""

from __future__ import annotations

import argparse
from typing import BinaryIO, TextIO

from .codecs import (
    ALL_CODECS,
    CLASSICAL,
    Codec,
    classical_codecs,
    lmpress_codecs,
    parse_codec_names,
)
from .estimate import CONTEXT_KINDS, ContextRule
from .inputs import BenchError, InputOptions, collect_inputs, parse_category
from .measure import Row
from .run import BenchResult, run_bench

EXIT_OK, EXIT_ERROR = 0, 1
QUICK_KB = 16


def build_parser(prog: str = "lmpress bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Bits per byte of lmpress models beside classical codecs on "
        "files, directories, JSONL or stdin; every row is round-tripped. See docs/BENCH.md.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="files, directories (recursive; category = top-level subdirectory), "
                        "*.jsonl with --jsonl-field, or - for stdin")
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="only files matching GLOB inside directories (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files matching GLOB inside directories (repeatable)")
    p.add_argument("--jsonl-field", metavar="FIELD",
                   help="read *.jsonl files as one item per line, text in FIELD")
    p.add_argument("--category", action="append", default=[], metavar="NAME=GLOB",
                   help="put files matching GLOB in category NAME (first match wins)")
    p.add_argument("--codecs", default=",".join(ALL_CODECS), metavar="LIST",
                   help=f"comma-separated subset of {','.join(ALL_CODECS)} (default: all)")
    p.add_argument("--lmpress-levels", metavar="LIST",
                   help="levels to measure, e.g. 1,6,9 (default: the distinct models behind "
                        "1..9, or none when -m is given)")
    p.add_argument("-m", "--model", action="append", default=[], metavar="NAME_OR_PATH",
                   help="also measure this shipped model or .safetensors file, or hf:DIR "
                        "(transformers) or gguf:FILE (llama.cpp), coded by a float engine "
                        "(repeatable)")
    p.add_argument("--estimate", action="store_true",
                   help="also score every model without coding: bits/byte, byte and word "
                        "perplexity as lm-evaluation-harness computes them")
    p.add_argument("--context", choices=CONTEXT_KINDS, default="disjoint",
                   help="--estimate context rule (default: disjoint windows)")
    p.add_argument("--window", type=int, metavar="N",
                   help="--estimate: tokens one pass reads (default: the model's maximum)")
    p.add_argument("--stride", type=int, metavar="N",
                   help="--context sliding: tokens scored per window (default: window/2)")
    p.add_argument("--no-fallback", action="store_true",
                   help="code everything with the model (no raw/LZMA segments)")
    p.add_argument("--no-adapt", action="store_true",
                   help="the language model alone, without the online adaptive models")
    p.add_argument("--backend", choices=("numpy", "torch-cpu", "torch-cuda"),
                   help="lmpress compute backend")
    p.add_argument("-T", "--threads", type=int, default=1, metavar="N",
                   help="measure the model rows in N worker processes, several files at "
                        "once (same bytes; speeds are then per worker; 0 = one per core)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="measure the model rows on a Ray cluster (host:port or auto)")
    p.add_argument("--json", metavar="PATH", help="write results as JSON (also the resume "
                   "record: a rerun skips rows already done)")
    p.add_argument("--resume", metavar="PATH", help="resume record to read and update "
                   "(default: the --json file)")
    p.add_argument("--csv", metavar="PATH", help="write per-file rows and totals as CSV")
    p.add_argument("--markdown", metavar="PATH", help="write the totals as a Markdown table")
    p.add_argument("--plots", metavar="DIR", help="write PNG and SVG figures into DIR")
    p.add_argument("--compare", metavar="A,B",
                   help="paired comparison of two measured compressors (a part of each "
                        "name), with a bootstrap interval over files")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: first --quick-kb KB of each item (default {QUICK_KB}), "
                        "fast codecs and the lowest lmpress level only")
    p.add_argument("--quick-kb", type=int, default=QUICK_KB, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _levels(text: str | None, models: list[str]) -> list[int]:
    if text is None:
        return [] if models else list(range(1, 10))
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        levels = []
    if not levels or any(not 1 <= n <= 9 for n in levels):
        raise BenchError(f"--lmpress-levels expects levels 1..9 separated by commas, "
                         f"got {text!r}")
    return levels


def make_scorers(args: argparse.Namespace) -> list:
    """--estimate: a scorer per -m model and per built-in model behind the levels."""
    from ..model.registry import model_for_level
    from .scorers import load_scorer

    if not args.estimate:
        return []
    specs = list(args.model)
    if "lmpress" in parse_codec_names(args.codecs):
        levels = _levels(args.lmpress_levels, args.model)
        levels = [min(levels)] if args.quick and levels else levels
        specs = list(dict.fromkeys(model_for_level(n) for n in levels)) + specs
    scorers, keys = [], set()
    for spec in specs:
        scorer = load_scorer(spec, args.backend)
        if scorer.key not in keys:
            keys.add(scorer.key)
            scorers.append(scorer)
    return scorers


def make_codecs(args: argparse.Namespace) -> tuple[list[Codec], list[str]]:
    names = parse_codec_names(args.codecs)
    classical, notes = classical_codecs([n for n in names if n in CLASSICAL])
    if args.quick:
        classical = [c for c in classical if c.fast]
    codecs: list[Codec] = list(classical)
    if "lmpress" in names:
        levels = _levels(args.lmpress_levels, args.model)
        if args.quick and levels:
            levels = [min(levels)]
        models, more = lmpress_codecs(levels=levels, models=args.model, backend=args.backend,
                                      fallback=not args.no_fallback, adapt=not args.no_adapt)
        codecs += models
        notes += more
    if not codecs and not args.estimate:
        raise BenchError("no codec to run: none of --codecs is installed here")
    return codecs, notes


def main(argv: list[str], *, stdin: BinaryIO, stdout: TextIO, stderr: TextIO,
         prog: str = "lmpress bench") -> int:
    """Run the benchmark; returns 0, or 1 when a row failed (outputs are still written)."""
    args = build_parser(prog).parse_args(argv)
    if args.quick_kb < 1:
        raise BenchError("--quick-kb must be at least 1")
    if args.plots:
        from .plots import _pyplot

        _pyplot()  # fail before measuring, not after
    options = InputOptions(tuple(args.include), tuple(args.exclude), args.jsonl_field,
                           tuple(parse_category(c) for c in args.category),
                           args.quick_kb * 1000 if args.quick else None)
    rule = ContextRule(args.context, args.window, args.stride)
    inputs = collect_inputs(args.paths, options, read_stdin=stdin.read)
    scorers = make_scorers(args)  # loads hf/gguf models: fail before measuring
    for scorer in scorers:
        rule.describe(scorer.max_len)  # a --window the model cannot read fails here
    codecs, notes = make_codecs(args)
    inputs.notes[:0] = notes
    record = args.resume or args.json
    done = {}
    if record:
        from .report import load_done

        done = load_done(record)
    if not inputs.items:
        for line in inputs.notes + inputs.skipped:
            print(f"{prog}: note: {line}", file=stderr)
        raise BenchError("nothing to measure: no readable, non-empty input")
    pool = _pool(args)
    try:
        result = _run_with_progress(inputs, codecs, done, record, stderr, not args.quiet,
                                    pool)
    finally:
        if pool is not None:
            pool.close()
    if scorers:
        result.estimates = _estimate_with_progress(inputs, scorers, rule, stderr,
                                                   not args.quiet)
    _write_outputs(args, result, record)
    _show(result, stdout, stderr, prog)
    if args.compare:
        _compare(args.compare, result, stdout)
    failed = [r for r in result.estimates.rows if r.status != "ok"] if scorers else []
    return EXIT_ERROR if failed or any(r.status != "ok" for r in result.rows) else EXIT_OK


def _pool(args: argparse.Namespace):
    """Workers for the model rows (-T / --ray), or None."""
    if args.threads < 0:
        raise BenchError(f"-T must be a whole number >= 0, not {args.threads}")
    from ..cluster import PoolError, make_pool

    try:
        return make_pool(None, n_workers=args.threads, ray_address=args.ray)
    except PoolError as e:
        raise BenchError(str(e)) from None


def _run_with_progress(inputs, codecs, done, record, stderr: TextIO, progress: bool,
                       pool=None) -> BenchResult:
    from .report import write_json

    finished: list[Row] = []
    keys_now = {(c.key, i.sha256) for c in codecs for i in inputs.items}

    def save(row: Row, reused: bool) -> None:
        finished.append(row)
        if record:  # the rows so far plus older rows still to come: a valid resume record
            have = {(r.codec_key, r.sha256) for r in finished}
            later = [r for k, r in done.items() if k in keys_now and k not in have]
            write_json(record, None, finished + later)

    total = len(codecs) * len(inputs.items)
    if not (progress and stderr.isatty()):
        return run_bench(inputs, codecs, done=done, on_row=save, pool=pool)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(file=stderr), transient=True) as bar:
        task = bar.add_task("bench", total=total)
        row_task = bar.add_task("", total=None, visible=False)

        def on_start(codec: Codec, item) -> None:
            # compress + decompress each report the input once: 2 × bytes in all
            bar.reset(row_task, total=2 * len(item.data), visible=codec.is_model,
                      description=f"  {codec.name}: {item.name}"[-60:])
            codec.progress = lambda n: bar.advance(row_task, n)

        def on_row(row: Row, reused: bool) -> None:
            save(row, reused)
            bar.update(row_task, visible=False)
            bar.update(task, advance=1, description=f"{row.codec}: {row.name}"[-60:])

        return run_bench(inputs, codecs, done=done, on_row=on_row, on_start=on_start,
                         pool=pool)


def _estimate_with_progress(inputs, scorers, rule, stderr: TextIO, progress: bool):
    from .estimate_run import run_estimates

    if not (progress and stderr.isatty()):
        return run_estimates(inputs, scorers, rule)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(file=stderr), transient=True) as bar:
        task = bar.add_task("estimate", total=len(scorers) * len(inputs.items))
        return run_estimates(inputs, scorers, rule, on_row=lambda r: bar.update(
            task, advance=1, description=f"estimate {r.model}: {r.name}"[-60:]))


def _write_outputs(args, result: BenchResult, record: str | None) -> None:
    from .report import write_csv, write_json, write_markdown

    for path in dict.fromkeys(p for p in (args.json, record) if p):
        write_json(path, result)
    if args.csv:
        write_csv(args.csv, result)
    if args.markdown:
        write_markdown(args.markdown, result)
    if args.plots:
        from .plots import write_plots

        write_plots(args.plots, result)


def _show(result: BenchResult, stdout: TextIO, stderr: TextIO, prog: str) -> None:
    from rich.console import Console

    from .report import rich_estimate_table, rich_table

    width = None if stdout.isatty() else 200
    console = Console(file=stdout, width=width)
    if result.rows:
        console.print(rich_table(result))
    if result.estimates is not None:
        console.print(rich_estimate_table(result))
        for e in result.estimates.rows:
            if e.status != "ok":
                print(f"{prog}: estimate of {e.model} on {e.name}: {e.error}", file=stderr)
    for r in result.rows:
        if r.status != "ok":
            print(f"{prog}: {r.codec} on {r.name}: {r.error}", file=stderr)
    m = result.machine
    names = {r.name for r in result.rows + (result.estimates.rows if result.estimates else [])}
    print(f"{prog}: measured on {m['processor']}, {m['cpu_count']} CPUs; "
          f"{len(names)} item(s), {result.n_empty} empty, "
          f"{result.n_skipped} skipped", file=stderr)
    for line in result.notes:
        print(f"{prog}: note: {line}", file=stderr)


def _compare(spec: str, result: BenchResult, stdout: TextIO) -> None:
    from .compare import paired, pick

    parts = spec.split(",")
    if len(parts) != 2:
        raise BenchError("--compare takes two names separated by a comma, e.g. "
                         "--compare 'lmpress -1,lmpress -6'")
    a, b = (pick(result.rows, p.strip()) for p in parts)
    print(paired(result.rows, a, b).line(), file=stdout)
