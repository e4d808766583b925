"""Rate-distortion of lossy mode (issue 7) on the held-out English prose.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/lossy_rd.py [--bytes N]
        [--offset K] [--qualities 100,90,30] [--out PNG or '']

For each prose validation file (N bytes from byte K, default the first 12000; the first
6000 bytes of these files are mostly tables of contents), compresses losslessly
and at each lossy level of the ladder with the default model, and classically with
xz -9e, zstd -19 and bzip2 -9 on the same bytes. Prints a Markdown table (sizes summed
over the files, savings against lossless, distortion figures averaged per file) and
writes docs/figures/lossy_rd.png: bits per byte against 100 - chrF.
"""

from __future__ import annotations

import argparse
import bz2
import lzma
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", type=int, default=12000)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--qualities", help="a subset of the ladder, e.g. 100,90,30 "
                                        "(must include 100, the lossless reference)")
    ap.add_argument("--out", default=str(ROOT / "docs/figures/lossy_rd.png"),
                    help="the figure ('' for none)")
    args = ap.parse_args()
    import zstandard

    from lmpress.codec import Compressor
    from lmpress.lossy import LADDER, compress

    files = sorted((ROOT / "data/corpus/valid/prose").glob("*.txt"))
    datas = [f.read_bytes()[args.offset:args.offset + args.bytes] for f in files]
    ladder = [lv for lv in LADDER if args.qualities is None
              or str(lv.quality) in args.qualities.split(",")]
    n_bytes = sum(map(len, datas))
    comp = Compressor()
    classical = {
        "xz -9e": lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME),
        "zstd -19": lambda d: zstandard.ZstdCompressor(level=19).compress(d),
        "bzip2 -9": lambda d: bz2.compress(d, 9)}
    rows = []
    t0 = time.time()
    for lv in ladder:
        res = [compress(d, lv.quality, compressor=comp, lossless=False) for d in datas]
        rows.append((lv, sum(r.lossy_bytes for r in res),
                     sum(r.edit_distance for r in res) / sum(r.n_chars for r in res),
                     sum(r.chrf for r in res) / len(res),
                     sum(r.semantic for r in res) / len(res),
                     sum(r.n_substitutions for r in res), sum(r.n_deletions for r in res),
                     sum(r.n_case_changes for r in res), res))
    lossless = rows[0][1]
    print(f"{len(files)} files x {args.bytes} bytes from byte {args.offset} = {n_bytes} "
          f"bytes; model "
          f"{comp.engine.weights.name}; {time.time() - t0:.0f} s\n")
    print("| quality | level | archive bytes | bits/byte | saves vs lossless | edit dist. "
          "(chars) | chrF | semantic sim. | subst. / left out / case |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lv, size, ed, cf, sem, ns, nd, nc, _ in rows:
        print(f"| {lv.quality} | {lv.name} | {size} | {8 * size / n_bytes:.3f} | "
              f"{1 - size / lossless:.1%} | {ed:.1%} | {cf:.1f} | {sem:.4f} | "
              f"{ns} / {nd} / {nc} |")
    sizes = {name: sum(len(f(d)) for d in datas) for name, f in classical.items()}
    for name, size in sizes.items():
        print(f"| — | {name} | {size} | {8 * size / n_bytes:.3f} | "
              f"{1 - size / lossless:.1%} | 0 | 100 | 1 | — |")
    if args.out:
        _plot(rows, sizes, n_bytes, args.out)
    q30 = [row for row in rows if row[0].quality == 30]
    if q30:  # quality 30 on the first file: a worked example
        r = q30[0][-1][0]
        print("\nexample (quality 30, first file, characters 0..600 of the reconstruction):")
        print(r.reconstruction.decode("utf-8", "replace")[:600])


def _plot(rows, sizes, n_bytes, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = [100 - r[3] for r in rows]
    ys = [8 * r[1] / n_bytes for r in rows]
    ax.plot(xs, ys, "o-", color="#c0392b", label="lmpress lossy (small-v1)")
    for r, x, y in zip(rows, xs, ys):
        ax.annotate(f"Q{r[0].quality}", (x, y), textcoords="offset points", xytext=(5, 4),
                    fontsize=9)
    ax.plot([xs[0]], [ys[0]], "s", color="#1d1d1f", label="lmpress lossless")
    for (name, size), m in zip(sizes.items(), ("^", "v", "D")):
        ax.plot([0], [8 * size / n_bytes], m, label=name)
    ax.set_xlabel("distortion: 100 − chrF")
    ax.set_ylabel("bits per byte (archive, headers included)")
    ax.set_title("Rate–distortion on held-out English prose")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
