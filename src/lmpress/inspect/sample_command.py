"""`lmpress sample`: seeded text from a built-in model (see sample.py for what is exact).

Writes the prompt and its continuation as bytes to `stdout` (or -o FILE); with -n N > 1,
JSONL lines {"id", "seed", "index", "text"} that `lmpress rank` reads directly."""

from __future__ import annotations

import argparse
import json
from typing import BinaryIO, TextIO

from ..cli_io import CliError, atomic_output, whole_number
from ..errors import LmpressError

EXIT_OK, EXIT_ERROR = 0, 1


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Sample text from a built-in model with a seeded PCG64 "
        "generator; the same seed, model and options give the same bytes.")
    p.add_argument("-m", "--model", metavar="NAME_OR_PATH",
                   help="shipped model name or .safetensors file (default: the default model)")
    for level in range(1, 10):
        p.add_argument(f"-{level}", dest="level", action="store_const", const=level,
                       help=argparse.SUPPRESS)
    p.add_argument("--seed", type=whole_number(0), default=0, metavar="N",
                   help="random seed (default 0)")
    p.add_argument("--tokens", type=whole_number(0), default=200, metavar="N",
                   help="tokens to draw at most (default 200)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="1 = the model's distribution, exact on every machine (default); "
                        "0 = greedy")
    p.add_argument("--top-k", type=whole_number(0), default=0, metavar="K",
                   help="draw only from the K most likely tokens (0 = all)")
    p.add_argument("--top-p", type=float, default=1.0, metavar="P",
                   help="draw only from the most likely tokens holding mass P (default 1)")
    p.add_argument("--prompt", default="", metavar="TEXT", help="text to continue")
    p.add_argument("--no-eos", action="store_true",
                   help="never end early: the end-of-text (BOS) token is not drawn")
    p.add_argument("-n", "--samples", type=whole_number(1), default=1, metavar="N",
                   help="number of samples; more than one are written as JSONL")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("-f", "--force", action="store_true", help="overwrite FILE")
    p.add_argument("--backend", choices=("numpy", "torch-cpu", "torch-cuda"),
                   help="compute backend")
    p.usage = f"{prog} [-m MODEL | -1..-9] [--seed N] [--tokens N] [--temperature T] " \
              "[--top-k K] [--top-p P] [--prompt TEXT] [--no-eos] [-n N] [-o FILE]"
    return p


def main(argv: list[str], *, stdout: BinaryIO, stderr: TextIO, prog: str = "lmpress sample"
         ) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        body = _run(args)
        if args.output:
            with atomic_output(args.output, force=args.force, source=None, like=None) as f:
                f.write(body)
        else:
            stdout.write(body)
            stdout.flush()
    except (LmpressError, CliError) as e:
        print(f"{prog}: {e}", file=stderr)
        return EXIT_ERROR
    return EXIT_OK


def _run(args: argparse.Namespace) -> bytes:
    from ..codec import _Engine
    from ..model.registry import model_for_level
    from .sample import SampleOptions, sample

    options = SampleOptions(args.temperature, args.top_k, args.top_p, not args.no_eos)
    engine = _Engine(args.model or model_for_level(args.level), args.backend, args.samples)
    prompt = args.prompt.encode("utf-8", "surrogateescape")
    texts = sample(engine, args.tokens, args.seed, prompt, options, args.samples)
    if args.samples == 1:
        return prompt + texts[0]
    return b"".join(json.dumps({
        "id": f"sample-{args.seed}-{i}", "seed": args.seed, "index": i,
        "text": (prompt + t).decode("utf-8", "surrogateescape")}).encode() + b"\n"
        for i, t in enumerate(texts))
