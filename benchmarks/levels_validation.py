"""Every shipped level on the held-out validation set, beside xz -9e and zpaq -m5.

    python benchmarks/levels_validation.py [--corpus data/corpus] [--levels 1,6] [--json F]
        [--no-adapt] [--jobs N]

Compresses each file of data/corpus/valid/<genre>/ (sources never used in training; see
docs/TRAINING.md) with each level (with online adaptation unless --no-adapt), and
records archive bytes and compress speed; xz -9e by Python's lzma module, zpaq -m5 by
the zpaq binary when present. Prints a Markdown table per file and the totals with the
ratios the issue asks about.
Decoding is not timed here (see `lmpress bench`); the test suite checks round trips.
With `--jobs N`, N files are compressed at once in separate processes (same bytes; the
speeds then share the machine).
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

from lmpress.codec import Compressor
from lmpress.model.registry import model_for_level


def zpaq_size(data: bytes) -> int | None:
    if shutil.which("zpaq") is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "f", Path(d) / "f.zpaq"
        src.write_bytes(data)
        subprocess.run(["zpaq", "a", str(out), str(src), "-m5"], check=True,
                       capture_output=True)
        return out.stat().st_size


@cache
def _compressor(level: int, adapt: bool) -> Compressor:
    return Compressor(level=level, adapt=adapt)


def measure(path: Path, levels: tuple[int, ...], adapt: bool) -> dict:
    """One file's row: its sizes under xz, zpaq and each level, and each level's time."""
    data = path.read_bytes()
    row = {"genre": path.parent.name, "file": path.name, "bytes": len(data),
           "xz": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
           "zpaq": zpaq_size(data)}
    for lv in levels:
        comp = _compressor(lv, adapt)
        t = time.perf_counter()
        row[f"L{lv}"] = len(comp.compress(data))
        row[f"L{lv}_s"] = time.perf_counter() - t
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--levels", default="1,6")
    p.add_argument("--json", type=Path)
    p.add_argument("--no-adapt", action="store_true", help="language model alone")
    p.add_argument("--jobs", type=int, default=1, help="files compressed at once")
    args = p.parse_args()
    levels = tuple(int(x) for x in args.levels.split(","))
    files = sorted((args.corpus / "valid").glob("*/*.txt"))
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(measure, files, [levels] * len(files),
                            [not args.no_adapt] * len(files)):
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    names = {lv: model_for_level(lv) for lv in levels}
    head = "| genre | file | bytes | xz -9e | zpaq -m5 | " + " | ".join(
        f"-{lv} ({names[lv]})" for lv in levels) + " |"
    print(head)
    print("|---|---|" + "---:|" * (3 + len(levels)))
    for r in rows:
        cells = [f"{r[f'L{lv}']:,} ({8 * r[f'L{lv}'] / r['bytes']:.3f})" for lv in levels]
        print(f"| {r['genre']} | {r['file']} | {r['bytes']:,} | {r['xz']:,} | "
              f"{r['zpaq'] or '-':,} | " + " | ".join(cells) + " |")
    total = {k: sum(r[k] or 0 for r in rows) for k in ("bytes", "xz", "zpaq")}
    for lv in levels:
        size = sum(r[f"L{lv}"] for r in rows)
        secs = sum(r[f"L{lv}_s"] for r in rows)
        worse = [r["file"] for r in rows if r[f"L{lv}"] >= r["xz"]]
        print(f"level {lv} ({names[lv]}): {size:,} bytes = {8 * size / total['bytes']:.3f} "
              f"bits/B; {size / total['xz']:.3f} x xz -9e ({total['xz']:,}); "
              + (f"{size / total['zpaq']:.3f} x zpaq -m5 ({total['zpaq']:,}); "
                 if total["zpaq"] else "")
              + f"compress {total['bytes'] / 1000 / secs:.1f} KB/s; "
              f"files not smaller than xz: {worse or 'none'}")


if __name__ == "__main__":
    main()
