"""Archive sizes of a mix of two models (default: level 9's, lmpress-max-v1 with
lmpress-small-v5) at several shares, on held-out files, beside the first model alone
(share 256) and the second alone (share 0):

    python benchmarks/mix_shares.py [--shares 256,160,128,192] [--parts A,B]
        [--corpus data/corpus] [--all | FILE ...]

A and B are shipped model names or .safetensors paths. FILE names a file of
data/corpus/valid/<genre>/ (default: four of them, one per genre but docs; --all: every
one). Online adaptation is on, as in the codec. Prints one line per file and share and
the total per share."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lmpress.codec import Compressor
from lmpress.model.mix import MixedWeights
from lmpress.model.registry import load_model

FILES = ("git-doc__user-manual.txt", "libssh-doc__examples-c.txt",
         "debian-reference-zh-cn__ch01-tutorial.txt", "binutils-doc__changelog-debian.txt")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shares", default="256,160,128,192",
                   help="the first model's shares in 1/256 (256, 0: one model alone)")
    p.add_argument("--parts", default="lmpress-max-v1,lmpress-small-v5")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--all", action="store_true", help="every validation file")
    p.add_argument("files", nargs="*", default=list(FILES))
    args = p.parse_args()
    parts = tuple(load_model(x) for x in args.parts.split(","))
    paths = sorted((args.corpus / "valid").glob("*/*.txt")) if args.all else \
        [next((args.corpus / "valid").glob(f"*/{name}")) for name in args.files]
    for a in map(int, args.shares.split(",")):
        model = parts[0] if a == 256 else parts[1] if a == 0 else \
            MixedWeights(f"mix@{a}", parts, (a, 256 - a))
        comp, total = Compressor(model), 0
        for path in paths:
            name, data = path.name, path.read_bytes()
            t = time.perf_counter()
            n = len(comp.compress(data))
            total += n
            print(f"share {a}  {name}  {len(data):,} B -> {n:,} B  "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)
        print(f"share {a}  total {total:,} B", flush=True)


if __name__ == "__main__":
    main()
