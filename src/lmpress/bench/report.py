"""Writing results: JSON (also the resume record), CSV, Markdown and a rich table.

Nothing here prints; the table is a `rich.table.Table` for the CLI to show."""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from .inputs import BenchError
from .measure import Row
from .run import ALL, BenchResult, Done, Total

FORMAT = "lmpress-bench/1"


def _atomic_write(path: str | os.PathLike, text: str) -> None:
    """Write text to path via a temporary file in the same directory, so an interrupted
    run never leaves a half-written results file (the resume record must stay valid)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _clean(value):
    """JSON has no NaN or infinity: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(result: BenchResult | None, rows: list[Row] | None = None) -> str:
    """The results as JSON; with only `rows` it is a partial record for resuming."""
    rows = result.rows if result is not None else (rows or [])
    doc: dict = {"format": FORMAT, "complete": result is not None,
                 "rows": [{k: _clean(v) for k, v in r.to_dict().items()} for r in rows]}
    if result is not None:
        doc["totals"] = [{k: _clean(v) for k, v in asdict(t).items()} for t in result.totals]
        doc.update(notes=result.notes, machine=result.machine, n_empty=result.n_empty,
                   n_skipped=result.n_skipped)
        if result.estimates is not None:
            est = result.estimates
            doc["estimates"] = [{k: _clean(v) for k, v in r.to_dict().items()}
                                for r in est.rows]
            doc["estimate_totals"] = [{k: _clean(v) for k, v in asdict(t).items()}
                                      for t in est.totals]
            doc["loss_by_position"] = [asdict(p) for p in est.positions]
    return json.dumps(doc, indent=1) + "\n"


def write_json(path: str | os.PathLike, result: BenchResult | None,
               rows: list[Row] | None = None) -> None:
    _atomic_write(path, to_json(result, rows))


def load_done(path: str | os.PathLike) -> Done:
    """Finished rows of an earlier run, by (codec key, sha256); {} if the file is absent."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise BenchError(f"cannot read results file {path}: {e.strerror}") from None
    try:
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError
        rows = [Row.from_dict(d) for d in doc["rows"]]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise BenchError(f"{path} is not an lmpress bench results file; choose another "
                         "path for --json/--resume or delete it") from None
    return {(r.codec_key, r.sha256): r for r in rows if r.status == "ok"}


CSV_COLUMNS = ("kind", "codec", "category", "name", "n_files", "n_bytes_in", "n_bytes_out",
               "bits_per_byte", "ci_low", "ci_high", "ratio", "compress_kb_s",
               "decompress_kb_s", "peak_mem_bytes", "estimate_bits_per_byte",
               "lm_bits_per_byte", "adjusted_bits_per_byte", "delta_vs_best_classical",
               "estimate_bits", "lm_bytes_in", "lm_bytes_out", "model_bytes", "sha256",
               "status", "error", "context", "n_tokens", "n_words", "nll",
               "byte_perplexity", "word_perplexity")


def write_csv(path: str | os.PathLike, result: BenchResult) -> None:
    """One line per (codec, file) with kind=file, then one per total with kind=total."""
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in result.rows:
        w.writerow({"kind": "file", "n_files": 1, **r.to_dict()})
    for t in result.totals:
        w.writerow({"kind": "total", "name": "", **asdict(t)})
    if result.estimates is not None:  # models scored without coding: no archive columns
        for r in result.estimates.rows:
            w.writerow({"kind": "estimate", "codec": r.model, "n_files": 1,
                        "n_bytes_in": r.n_bytes, **r.to_dict()})
        for t in result.estimates.totals:
            w.writerow({"kind": "estimate_total", "codec": t.model, "name": "",
                        "n_bytes_in": t.n_bytes, **asdict(t)})
    _atomic_write(path, buf.getvalue())


def _f(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _mb(n_bytes: int | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 1e6:.1f}"


TABLE_HEADER = ("compressor", "category", "files", "bytes in", "bytes out", "bits/B",
                "95% CI", "ratio", "comp KB/s", "dec KB/s", "peak MB", "estimate bits/B",
                "LM bits/B", "adjusted bits/B", "Δ best classical")


def table_cells(t: Total) -> list[str]:
    ratio = t.n_bytes_in / t.n_bytes_out if t.n_bytes_out else None
    delta = None if t.delta_vs_best_classical is None else f"{t.delta_vs_best_classical:+.3f}"
    return [t.codec, t.category, str(t.n_files) + (f" ({t.n_errors} failed)" * bool(t.n_errors)),
            str(t.n_bytes_in), str(t.n_bytes_out), _f(t.bits_per_byte),
            f"{_f(t.ci_low)}–{_f(t.ci_high)}", _f(ratio, 2), _f(t.compress_kb_s, 1),
            _f(t.decompress_kb_s, 1), _mb(t.peak_mem_bytes), _f(t.estimate_bits_per_byte),
            _f(t.lm_bits_per_byte), _f(t.adjusted_bits_per_byte), delta or "-"]


def to_markdown(result: BenchResult) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(TABLE_HEADER))) + "|"]
    for t in result.totals:
        cells = [c.replace("|", "\\|") for c in table_cells(t)]
        if t.category == ALL:
            cells[1] = "**all**"
        lines.append("| " + " | ".join(cells) + " |")
    m = result.machine
    lines += ["", f"bits/B = 8 × archive bytes (headers included) / original bytes; totals "
              f"are Σ bits / Σ bytes. Machine: {m.get('processor', '?')}, "
              f"{m.get('cpu_count', '?')} CPUs, {m.get('platform', '?')}."]
    if result.estimates is not None and result.estimates.totals:
        lines += ["", "Models measured without coding (the estimate: Σ −log2 p / bytes, "
                  "no archive; formulas as lm-evaluation-harness):", "",
                  "| " + " | ".join(ESTIMATE_HEADER) + " |",
                  "|---|---|---|" + "---:|" * (len(ESTIMATE_HEADER) - 3)]
        for t in result.estimates.totals:
            cells = [c.replace("|", "\\|") for c in estimate_cells(t)]
            if t.category == ALL:
                cells[1] = "**all**"
            lines.append("| " + " | ".join(cells) + " |")
    lines += [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def write_markdown(path: str | os.PathLike, result: BenchResult) -> None:
    _atomic_write(path, to_markdown(result))


ESTIMATE_HEADER = ("model", "category", "context", "files", "bytes", "tokens",
                   "bits/B", "byte ppl", "word ppl")


def estimate_cells(t) -> list[str]:
    return [t.model, t.category, t.context,
            str(t.n_files) + (f" ({t.n_errors} failed)" * bool(t.n_errors)),
            str(t.n_bytes), str(t.n_tokens), _f(t.bits_per_byte), _ppl(t.byte_perplexity),
            _ppl(t.word_perplexity)]


def _ppl(value: float) -> str:
    """A perplexity: two decimals, or three significant digits once it is huge."""
    if value == math.inf:
        return "inf"
    return f"{value:.3g}" if math.isfinite(value) and value >= 1e6 else _f(value, 2)


def rich_estimate_table(result: BenchResult):
    """A rich Table of the estimate totals (models measured without coding)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="models measured without coding (estimate, lower is better)")
    for i, h in enumerate(ESTIMATE_HEADER):
        table.add_column(h, justify="left" if i < 3 else "right", no_wrap=i == 0)
    for t in result.estimates.totals if result.estimates else []:
        table.add_row(*map(escape, estimate_cells(t)),
                      style="bold" if t.category == ALL else None)
    return table


def rich_table(result: BenchResult):
    """A rich Table of the totals, grouped by category (overall totals last)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="lmpress bench: bits per byte (lower is better)", show_lines=False)
    for i, h in enumerate(TABLE_HEADER):
        table.add_column(h, justify="left" if i < 2 else "right", no_wrap=i == 0)
    previous = None
    for t in result.totals:
        if previous is not None and t.category != previous:
            table.add_section()
        previous = t.category
        style = "bold" if t.category == ALL else None
        table.add_row(*map(escape, table_cells(t)), style=style)
    return table
