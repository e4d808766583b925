"""`-T N` scaling on one machine: compress and decompress a 2 MB text with the `lmpress`
command at 1 and N worker processes, check the archives are byte-identical, and print a
Markdown table of seconds, KB/s, speed-up and peak memory.

    python benchmarks/parallel.py [--level 1] [--workers 2] [--bytes 2000000]
        [--member-bytes N]

The text is the held-out validation set (data/corpus/valid/*/*, sorted by path),
concatenated and cut to --bytes, so it mixes prose, docs, code, changelogs and Chinese.
"Peak MB" is the largest resident set of any one process (the command or a worker); with
N workers the machine holds about N such processes. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_WRAP = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
         "sys.exit(r.returncode)")


def _timed(args: list[str]) -> tuple[float, int]:
    """Seconds of one `python -m lmpress ARGS` run, and the largest resident set in MB of
    any one process of it (the command or one worker): ru_maxrss of a fresh parent."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _WRAP, sys.executable, "-m", "lmpress",
                          *args], capture_output=True)
    seconds = time.perf_counter() - t0
    if out.returncode:
        raise SystemExit(out.stderr.decode())
    return seconds, int(out.stderr.decode().split()[-1]) // 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="data/corpus")
    p.add_argument("--level", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--bytes", type=int, default=2_000_000)
    p.add_argument("--member-bytes", type=int, help="passed to lmpress (default: its own)")
    args = p.parse_args()
    files = sorted((Path(args.corpus) / "valid").glob("*/*"))
    data = b"".join(f.read_bytes() for f in files)[:args.bytes]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "text"
        src.write_bytes(data)
        digests = {}
        for n in (1, args.workers):
            arc = Path(d) / f"text.{n}.lmp"
            member = ["--member-bytes", str(args.member_bytes)] if args.member_bytes else []
            c_s, c_mb = _timed([f"-{args.level}", "-T", str(n), "-q", *member, "-o",
                                str(arc), str(src)])
            back = Path(d) / f"back.{n}"
            d_s, d_mb = _timed(["-d", "-T", str(n), "-q", "-o", str(back), str(arc)])
            assert back.read_bytes() == data, "round trip failed"
            digests[n] = hashlib.sha256(arc.read_bytes()).hexdigest()
            rows.append((n, arc.stat().st_size, c_s, d_s, max(c_mb, d_mb)))
    same = len(set(digests.values())) == 1
    print(f"{len(data):,} bytes from {len(files)} validation files, level -{args.level}, "
          f"member bytes {args.member_bytes or 'default'}; "
          f"archives identical: {same} (sha256 {digests[1][:16]})\n")
    print("| -T | archive bytes | compress s | KB/s | speed-up | decompress s | KB/s | "
          "speed-up | peak MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = rows[0]
    for n, size, c_s, d_s, mb in rows:
        print(f"| {n} | {size:,} | {c_s:.1f} | {len(data) / 1000 / c_s:.1f} | "
              f"{base[2] / c_s:.2f}× | {d_s:.1f} | {len(data) / 1000 / d_s:.1f} | "
              f"{base[3] / d_s:.2f}× | {mb} |")
    if not same:
        raise SystemExit("archives differ between worker counts")


if __name__ == "__main__":
    main()
