"""The terminal view of an inspection: the text with each token's background coloured by
its cost (records.SCALE), a legend, and the summary. Rich decides whether colour is used:
none when the output is not a terminal or NO_COLOR is set, forced by FORCE_COLOR."""

from __future__ import annotations

from rich.console import Console, Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

from .records import SCALE, Inspection, bucket

_STYLES = [Style(bgcolor=bg, color=ink) for _, bg, ink in SCALE]
_STORED = Style(underline=True)
# C0 controls (but tab and newline), DEL and C1 controls would move the cursor or change
# the terminal's state: shown as their Unicode control pictures, or as U+FFFD.
_VISIBLE = {c: chr(0x2400 + c) for c in range(32) if c not in (9, 10)}
_VISIBLE.update({0x7F: "\u2421"} | {c: "\ufffd" for c in range(0x80, 0xA0)})


def visible(text: str) -> str:
    """The text with control characters replaced by visible stand-ins."""
    return text.translate(_VISIBLE)


def heatmap(ins: Inspection) -> Text:
    """The input text, one styled run per token; a newline shows as ↵ in the token's
    colour, then breaks the line."""
    out = Text()
    for r in ins.records:
        style = _STYLES[bucket(r.bits)]
        if r.kind != "lm":
            style = style + _STORED
        lines = visible(r.text).split("\n")
        for j, part in enumerate(lines):
            if j:
                out.append("\u21b5", style)
                out.append("\n")
            if part:
                out.append(part, style)
    return out


def legend() -> Text:
    out = Text("bits/token: ")
    lower = 0.0
    for (upper, _, _), style in zip(SCALE, _STYLES):
        label = f"≥{lower:g}" if upper == float("inf") else f"{lower:g}–{upper:g}"
        out.append(f" {label} ", style)
        out.append(" ")
        lower = upper
    out.append(" underlined: stored (raw/LZMA)")
    return out


def summary(ins: Inspection, name: str, n_spans: int = 5) -> Group:
    """The figures: bits per byte, the archive's bit budget, adaptation, surprises."""
    n_lm = sum(r.kind == "lm" for r in ins.records)
    lm_bytes = sum(s["n_bytes"] for s in ins.segments if s["kind"] == "lm")
    n_stored = sum(s["kind"] != "lm" for s in ins.segments)
    stored_bytes = ins.n_bytes - lm_bytes
    level = f", level {ins.level}" if ins.level is not None else ""
    n_tok = len(ins.records)
    head = Text.assemble(
        (name, "bold"), f": {ins.n_bytes:,} bytes, {n_tok:,} token{'s' * (n_tok != 1)} → "
        f"{ins.archive_bytes:,}-byte archive\nmodel {ins.model}{level}, adaptation "
        f"{'on' if ins.adapt else 'off'}")
    if not ins.n_bytes:
        return Group(head, Text("empty input: nothing to colour"))
    rates = Text.assemble(
        ("archive ", "bold"), (f"{ins.archive_bits_per_byte():.3f} bits/byte", "bold"),
        " (8 × archive bytes / input bytes)\ncontent "
        f"{ins.bits_per_byte():.3f} bits/byte (token and stored bits / input bytes)")
    n_streams = sum(s["kind"] == "lm" for s in ins.segments)
    budget = Table.grid(padding=(0, 1))
    for justify in ("left", "right", "left"):
        budget.add_column(justify=justify, no_wrap=True)
    budget.add_row("  LM-coded tokens", f"{ins.token_bits:,.1f} bits",
                   f"{n_lm:,} tokens in {lm_bytes:,} bytes"
                   + (f" ({ins.token_bits / lm_bytes:.3f} bits/byte)" if lm_bytes else ""))
    budget.add_row("  stored raw/LZMA", f"{ins.stored_bits:,} bits",
                   f"{n_stored} segment{'s' * (n_stored != 1)}, {stored_bytes:,} bytes")
    budget.add_row("  coder flush", f"{ins.flush_bits:,.1f} bits",
                   f"final bytes of {n_streams} LM stream{'s' * (n_streams != 1)}")
    budget.add_row("  container", f"{ins.container_bits:,} bits",
                   "header, stream table, checksum, seal")
    budget.add_row(Text("  total", "bold"), f"{ins.total_bits():,.1f} bits",
                   f"= 8 × {ins.archive_bytes:,} archive bytes")
    parts: list = [head, rates, budget]
    if ins.adapt:
        saved = ins.adaptation_saved_bits()
        lm_only = saved + ins.token_bits
        share = f" ({saved / lm_only:.1%} of the LM alone, {lm_only:,.1f} bits)" if lm_only else ""
        parts.append(Text(f"adaptation saved {saved:,.1f} bits{share}"))
    spans = ins.surprising_spans(n_spans)
    if spans:
        parts.append(Text(f"most surprising spans ({spans[0].n_tokens} tokens each):"))
        for i, s in enumerate(spans, 1):
            snippet = visible(s.text).replace("\n", "\u21b5")
            line = Text(f"  {i}. bytes {f'{s.start:,}–{s.end:,}':<15} {s.bits:6.1f} bits "
                        f"({s.bits / max(1, s.end - s.start):.2f} bits/byte)  ",
                        no_wrap=True, overflow="ellipsis")
            line.append(snippet if len(snippet) <= 40 else snippet[:39] + "…",
                        _STYLES[bucket(s.bits / s.n_tokens)])
            parts.append(line)
    return Group(*parts)


def show(console: Console, ins: Inspection, name: str, *, text: bool = True,
         n_spans: int = 5) -> None:
    """Print the heatmap (unless `text` is False), the legend and the summary."""
    if text and ins.records:
        body = heatmap(ins)
        console.print(body, soft_wrap=True, end="" if body.plain.endswith("\n") else "\n")
        console.line()
        console.print(legend())
        console.line()
    console.print(summary(ins, name, n_spans))
