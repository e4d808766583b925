"""Figures (matplotlib, PNG and SVG): bits per byte per category and compressor, the
Pareto front of bits per byte against compress and decompress speed, bits per byte
against model size ("the intelligence curve"), and (with --estimate) the loss by
position in the context window."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .inputs import BenchError
from .run import ALL, BenchResult, Total


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise BenchError("--plots needs matplotlib; install it with: "
                         "pip install 'lmpress[bench]'") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def write_plots(directory: str | os.PathLike, result: BenchResult) -> list[Path]:
    """Write bpb_by_category.{png,svg}, pareto.{png,svg} and, when estimates exist,
    loss_by_position.{png,svg}; returns the paths."""
    plt = _pyplot()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    figures = [("bpb_by_category", _bars), ("pareto", _pareto)] if result.rows else []
    if any(r.model_bytes for r in result.rows):
        figures.append(("intelligence_curve", _intelligence))
    if result.estimates is not None and any(sum(p.count) for p in result.estimates.positions):
        figures.append(("loss_by_position", _positions))
    for stem, draw in figures:
        fig = draw(plt, result)
        for ext in ("png", "svg"):
            path = out / f"{stem}.{ext}"
            fig.savefig(path, dpi=120, bbox_inches="tight")
            paths.append(path)
        plt.close(fig)
    return paths


def _bars(plt, result: BenchResult):
    """Grouped bars: one group per category, one bar per compressor."""
    totals = [t for t in result.totals if t.n_files]
    categories = list(dict.fromkeys(t.category for t in totals))
    codecs = list(dict.fromkeys(t.codec for t in totals))
    width = 0.8 / max(len(codecs), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(categories) * max(len(codecs), 3) / 3),
                                    4.5))
    for i, codec in enumerate(codecs):
        xs, ys, errs = [], [], [[], []]
        for j, cat in enumerate(categories):
            t = next((t for t in totals if t.codec == codec and t.category == cat), None)
            if t is None:
                continue
            xs.append(j + (i - (len(codecs) - 1) / 2) * width)
            ys.append(t.bits_per_byte)
            errs[0].append(max(t.bits_per_byte - t.ci_low, 0))
            errs[1].append(max(t.ci_high - t.bits_per_byte, 0))
        ax.bar(xs, ys, width, yerr=errs, capsize=2, label=codec)
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(["all" if c == ALL else c for c in categories])
    ax.set_ylabel("bits per byte (lower is better)")
    ax.set_title("Bits per byte by category (95% bootstrap CI over files)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _overall(result: BenchResult) -> list[Total]:
    cats = {t.category for t in result.totals}
    key = ALL if ALL in cats else next(iter(cats), ALL)
    return [t for t in result.totals if t.category == key and t.n_files]


def _front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten on both speed (higher) and bits/byte (lower), by speed."""
    front, best = [], float("inf")
    for speed, bpb in sorted(points, key=lambda p: -p[0]):
        if bpb < best:
            front.append((speed, bpb))
            best = bpb
    return sorted(front)


def _pareto(plt, result: BenchResult):
    """Two panels: bits/byte against compress KB/s and against decompress KB/s."""
    totals = _overall(result)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, attr, label in ((axes[0], "compress_kb_s", "compress KB/s"),
                            (axes[1], "decompress_kb_s", "decompress KB/s")):
        points = [(getattr(t, attr), t.bits_per_byte) for t in totals]
        for t, (x, y) in zip(totals, points):
            is_model = t.estimate_bits_per_byte is not None or t.adjusted_bits_per_byte
            ax.scatter([x], [y], marker="*" if is_model else "o", s=80 if is_model else 30,
                       color="tab:red" if is_model else "tab:blue")
            ax.annotate(t.codec, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        front = _front(points)
        if front:
            ax.plot(*zip(*front), "--", color="gray", lw=1, label="Pareto front")
            ax.legend(fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} (log scale)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("bits per byte (lower is better)")
    fig.suptitle("Compression against speed (stars: lmpress models)")
    return fig


def _intelligence(plt, result: BenchResult):
    """Bits per byte of each model's real archives against the size of its model file,
    with the best classical codec as a reference line."""
    totals = _overall(result)
    size = {r.codec: r.model_bytes for r in result.rows if r.model_bytes}
    models = sorted((size[t.codec], t.bits_per_byte, t.codec) for t in totals
                    if t.codec in size)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot([m[0] for m in models], [m[1] for m in models], "-*", color="tab:red", ms=10)
    for x, y, name in models:
        ax.annotate(name, (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    classical = [t for t in totals if t.codec not in size]
    if classical:
        best = min(classical, key=lambda t: t.bits_per_byte)
        ax.axhline(best.bits_per_byte, ls="--", color="gray", lw=1,
                   label=f"best classical: {best.codec}")
        ax.legend(fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("model file bytes (log scale)")
    ax.set_ylabel("bits per byte (lower is better)")
    ax.set_title("The intelligence curve: compression against model size")
    ax.grid(True, alpha=0.3)
    return fig


def _positions(plt, result: BenchResult, n_bins: int = 64):
    """Mean bits per token against the token's position in the window the model read,
    positions grouped into at most `n_bins` equal bins."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in result.estimates.positions:
        bits, count = np.array(p.bits_sum), np.array(p.count)
        if not count.sum():
            continue
        edges = np.unique(np.linspace(0, len(count), n_bins + 1).astype(int))
        b_sum, c_sum = np.add.reduceat(bits, edges[:-1]), np.add.reduceat(count, edges[:-1])
        keep = c_sum > 0
        centres = (edges[:-1] + edges[1:] - 1) / 2
        ax.plot(centres[keep], b_sum[keep] / c_sum[keep], marker=".",
                label=f"{p.model} ({p.context})")
    ax.set_xlabel("position in the window the model read (0: predicted from its first token)")
    ax.set_ylabel("mean bits per token")
    ax.set_title("Loss by position in the context")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return fig
