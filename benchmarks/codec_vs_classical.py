"""Default model vs classical codecs on held-out validation files, in one run.

    python benchmarks/codec_vs_classical.py data/corpus/valid/prose/*.txt [--model NAME]

Bits per byte count every archive byte (headers included); the model's own estimate
(sum of -log2 p) is printed beside it. Speeds are wall-clock KB/s (1 KB = 1000 bytes)
on this machine, one process; peak memory is the process's max RSS.
"""

from __future__ import annotations

import argparse
import lzma
import platform
import resource
import shutil
import subprocess
import time
from pathlib import Path

from lmpress.codec import Compressor, Decompressor


def classical(data: bytes) -> dict[str, int]:
    out = {"xz -9e": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))}
    if shutil.which("zstd"):
        out["zstd -19"] = len(subprocess.run(["zstd", "-19", "-c", "-q"], input=data,
                                             capture_output=True, check=True).stdout)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--model", default=None)
    p.add_argument("--backend", default=None)
    args = p.parse_args()
    comp = Compressor(args.model, backend=args.backend)
    decomp = Decompressor(args.model, backend=args.backend)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"python {platform.python_version()}, model {comp.engine.weights.name}")
    print("| file | bytes | lmpress bpb | model estimate bpb | xz -9e bpb | zstd -19 bpb "
          "| lmpress/xz | compress KB/s | decompress KB/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    tot = {"n": 0, "lmp": 0, "xz": 0, "zstd": 0}
    for path in args.files:
        data = path.read_bytes()
        t0 = time.perf_counter()
        archive = comp.compress(data)
        t1 = time.perf_counter()
        back = decomp.decompress(archive)
        t2 = time.perf_counter()
        assert back == data, f"round trip failed on {path}"
        cl = classical(data)
        n = len(data)
        print(f"| {path.name} | {n} | {8 * len(archive) / n:.3f} | "
              f"{comp.stats.estimate_bits / n:.3f} | {8 * cl['xz -9e'] / n:.3f} | "
              f"{8 * cl.get('zstd -19', 0) / n:.3f} | {len(archive) / cl['xz -9e']:.3f} | "
              f"{n / 1000 / (t1 - t0):.1f} | {n / 1000 / (t2 - t1):.1f} |")
        tot["n"] += n
        tot["lmp"] += len(archive)
        tot["xz"] += cl["xz -9e"]
        tot["zstd"] += cl.get("zstd -19", 0)
    n = tot["n"]
    print(f"| **total** | {n} | {8 * tot['lmp'] / n:.3f} | | {8 * tot['xz'] / n:.3f} | "
          f"{8 * tot['zstd'] / n:.3f} | {tot['lmp'] / tot['xz']:.3f} | | |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {rss:.0f} MB")


if __name__ == "__main__":
    main()
