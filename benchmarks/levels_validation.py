"""Every shipped level on the held-out validation set, beside xz -9e and zpaq -m5.

    python benchmarks/levels_validation.py [--corpus data/corpus] [--levels 1,6] [--json F]
        [--models NAME,...] [--no-adapt] [--jobs N]

Compresses each file of data/corpus/valid/<genre>/ (sources never used in training; see
docs/TRAINING.md) with each level and each named model (`--models`, e.g. an earlier
shipped one), with online adaptation unless --no-adapt, and
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
def _compressor(spec: int | str, adapt: bool) -> Compressor:
    if isinstance(spec, int):
        return Compressor(level=spec, adapt=adapt)
    return Compressor(spec, adapt=adapt)


def _key(spec: int | str) -> str:
    return f"L{spec}" if isinstance(spec, int) else spec


def measure(path: Path, specs: tuple[int | str, ...], adapt: bool) -> dict:
    """One file's row: its sizes under xz, zpaq and each level or model (`specs`), and
    each one's time."""
    data = path.read_bytes()
    row = {"genre": path.parent.name, "file": path.name, "bytes": len(data),
           "xz": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
           "zpaq": zpaq_size(data)}
    for spec in specs:
        comp = _compressor(spec, adapt)
        t = time.perf_counter()
        row[_key(spec)] = len(comp.compress(data))
        row[f"{_key(spec)}_s"] = time.perf_counter() - t
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--levels", default="1,6", help="levels to measure ('' = none)")
    p.add_argument("--models", default="", help="shipped model names to measure as well")
    p.add_argument("--json", type=Path)
    p.add_argument("--no-adapt", action="store_true", help="language model alone")
    p.add_argument("--jobs", type=int, default=1, help="files compressed at once")
    args = p.parse_args()
    specs = tuple(int(x) for x in args.levels.split(",") if x) + \
        tuple(x for x in args.models.split(",") if x)
    if not specs:
        p.error("nothing to measure: give --levels or --models")
    files = sorted((args.corpus / "valid").glob("*/*.txt"))
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(measure, files, [specs] * len(files),
                            [not args.no_adapt] * len(files)):
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    names = {s: f"-{s} ({model_for_level(s)})" if isinstance(s, int) else s for s in specs}
    head = "| genre | file | bytes | xz -9e | zpaq -m5 | " + " | ".join(
        names[s] for s in specs) + " |"
    print(head)
    print("|---|---|" + "---:|" * (3 + len(specs)))
    for r in rows:
        cells = [f"{r[_key(s)]:,} ({8 * r[_key(s)] / r['bytes']:.3f})" for s in specs]
        print(f"| {r['genre']} | {r['file']} | {r['bytes']:,} | {r['xz']:,} | "
              f"{format(r['zpaq'], ',') if r['zpaq'] else '-'} | " + " | ".join(cells) + " |")
    total = {k: sum(r[k] or 0 for r in rows) for k in ("bytes", "xz", "zpaq")}
    for spec in specs:
        size = sum(r[_key(spec)] for r in rows)
        secs = sum(r[f"{_key(spec)}_s"] for r in rows)
        worse = [r["file"] for r in rows if r[_key(spec)] >= r["xz"]]
        print(f"{names[spec]}: {size:,} bytes = {8 * size / total['bytes']:.3f} "
              f"bits/B; {size / total['xz']:.3f} x xz -9e ({total['xz']:,}); "
              + (f"{size / total['zpaq']:.3f} x zpaq -m5 ({total['zpaq']:,}); "
                 if total["zpaq"] else "")
              + f"compress {total['bytes'] / 1000 / secs:.1f} KB/s; "
              f"files not smaller than xz: {worse or 'none'}")


if __name__ == "__main__":
    main()
