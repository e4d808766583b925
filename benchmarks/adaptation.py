"""Online adaptation on and off: sizes on repetitive input and on ordinary text.

    python benchmarks/adaptation.py [--corpus data/corpus] [--kb 100] [--verify]
        [--member-bytes 1048576 -T 2]

The repetitive input is the first 100 KB of a held-out changelog (a log of releases)
copied 20 times to 2 MB, each copy with 30 seeded edits (changed digits, a line dropped,
a line from elsewhere inserted). Ordinary input: the first `--kb` KB of one held-out file
per genre. Prints a Markdown table of archive sizes with and without adaptation.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from lmpress.codec import Compressor, Decompressor
from lmpress.model.registry import model_for_level


def repeated_log(base: bytes, total: int, seed: int = 0) -> bytes:
    """Copies of `base` with small seeded edits, up to `total` bytes."""
    rnd = random.Random(seed)
    lines = base.splitlines(keepends=True)
    out = bytearray()
    while len(out) < total:
        copy = list(lines)
        for _ in range(30):
            i = rnd.randrange(len(copy))
            what = rnd.random()
            if what < 0.5:  # change the digits of a line
                copy[i] = bytes(48 + rnd.randrange(10) if 48 <= c < 58 else c
                                for c in copy[i])
            elif what < 0.75:
                del copy[i]
            else:
                copy.insert(i, lines[rnd.randrange(len(lines))])
        out += b"".join(copy)
    return bytes(out[:total])


def _members(data: bytes, adapt: bool, member_bytes: int, workers: int):
    """The archive the command makes (`--member-bytes`, `-T workers`), and its stats."""
    import io

    import lmpress
    from lmpress.cluster import LocalPool, Settings

    out = io.BytesIO()
    with LocalPool(model_for_level(None), workers, Settings(adapt=adapt)) as pool, \
            lmpress.open(out, "wb", member_bytes=member_bytes, pool=pool) as f:
        f.write(data)
    return out.getvalue(), f.stats


def measure(name: str, data: bytes, verify: bool, member_bytes: int = 0,
            workers: int = 2) -> str:
    sizes = []
    for adapt in (False, True):
        t = time.perf_counter()
        if member_bytes:
            archive, stats = _members(data, adapt, member_bytes, workers)
        else:
            c = Compressor(adapt=adapt)
            archive = c.compress(data)
            stats = c.stats
        dt = time.perf_counter() - t
        if verify:
            assert Decompressor().decompress(archive) == data
        sizes.append((len(archive), dt, stats.adapt_hits))
    (off, t_off, _), (on, t_on, hits) = sizes
    return (f"| {name} | {len(data):,} | {off:,} | {on:,} | {off / on:.3f} | "
            f"{100 * (on - off) / off:+.2f}% | {t_off:.0f} / {t_on:.0f} s | {hits} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--kb", type=int, default=100)
    p.add_argument("--log-mb", type=float, default=2.0)
    p.add_argument("--only", choices=("log", "text"))
    p.add_argument("--verify", action="store_true")
    p.add_argument("--member-bytes", type=int, default=0,
                   help="code as the command does, in members of this many bytes (0: one "
                        "member, as Compressor.compress does)")
    p.add_argument("-T", "--workers", type=int, default=2,
                   help="worker processes for --member-bytes (same bytes for any number)")
    args = p.parse_args()
    valid = args.corpus / "valid"
    rows = ["| input | bytes | no adaptation | adaptation | ratio | change | time | hits |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    if args.only != "log":
        for genre in ("prose", "docs", "code", "changelog", "chinese"):
            path = sorted((valid / genre).glob("*.txt"))[0]
            rows.append(measure(f"{genre}: {path.name}",
                                path.read_bytes()[:args.kb * 1000], args.verify))
            print(rows[-1], flush=True)
    if args.only != "text":
        base = (valid / "changelog" / "binutils-doc__changelog-debian.txt").read_bytes()
        data = repeated_log(base[:100_000], int(args.log_mb * 1e6))
        rows.append(measure(f"changelog 100 KB x{args.log_mb * 10:.0f} with edits", data,
                            args.verify, args.member_bytes, args.workers))
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
