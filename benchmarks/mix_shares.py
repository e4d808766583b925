"""Archive sizes of the level-9 mix (lmpress-max-v1 with lmpress-small-v5) at several
shares, on held-out files, beside max-v1 alone (share 256):

    python benchmarks/mix_shares.py [--shares 256,160,128,192] [--corpus data/corpus]
        [FILE ...]

FILE names a file of data/corpus/valid/<genre>/ (default: four of them, one per genre but
docs). Online adaptation is on, as at level 9. Prints one line per file and share and
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
                   help="max-v1's shares in 1/256 (256: max-v1 alone)")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("files", nargs="*", default=list(FILES))
    args = p.parse_args()
    parts = (load_model("lmpress-max-v1"), load_model("lmpress-small-v5"))
    for a in map(int, args.shares.split(",")):
        model = parts[0] if a == 256 else MixedWeights(f"max-v1+small-v5@{a}", parts,
                                                        (a, 256 - a))
        comp, total = Compressor(model), 0
        for name in args.files:
            data = next((args.corpus / "valid").glob(f"*/{name}")).read_bytes()
            t = time.perf_counter()
            n = len(comp.compress(data))
            total += n
            print(f"share {a}  {name}  {len(data):,} B -> {n:,} B  "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)
        print(f"share {a}  total {total:,} B", flush=True)


if __name__ == "__main__":
    main()
