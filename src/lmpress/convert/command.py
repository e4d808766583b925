"""`lmpress convert hf:DIR -o NAME`: convert, install under the user's models directory
(or write a .safetensors path), and report the quality cost. cli.py hands in the
streams to talk to; progress goes to `stderr`, the report to `stdout`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from ..errors import LmpressError
from .build import DEFAULT_MAX_POSITIONS, DEFAULT_SMOOTH, DEFAULT_WINDOW

EXIT_OK, EXIT_ERROR = 0, 1


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Convert a Hugging Face causal LM (llama, mistral, qwen2, "
        "qwen3; byte-level BPE tokenizer) into an integer lmpress model, and report bits "
        "per byte of the float and the converted model on the same text. See "
        "docs/CONVERT.md.")
    p.add_argument("source", metavar="hf:DIR", help="checkpoint directory (save_pretrained)")
    p.add_argument("-o", "--output", required=True, metavar="NAME",
                   help="model name, installed in the user's models directory (usable as "
                        "-m NAME), or a path ending in .safetensors")
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW, metavar="N",
                   help=f"attention window in tokens (default {DEFAULT_WINDOW})")
    p.add_argument("--max-positions", type=int, default=DEFAULT_MAX_POSITIONS, metavar="N",
                   help=f"longest stream in tokens (default {DEFAULT_MAX_POSITIONS}, at most "
                        "the checkpoint's own)")
    p.add_argument("--calibrate", metavar="FILE",
                   help="calibration text (default: a built-in multilingual sample)")
    p.add_argument("--eval", metavar="FILE",
                   help="text for the quality report (default: the calibration text)")
    p.add_argument("--smooth", type=float, default=DEFAULT_SMOOTH, metavar="ALPHA",
                   help=f"SmoothQuant strength 0..1, 0 = off (default {DEFAULT_SMOOTH})")
    p.add_argument("--backend", choices=("numpy", "torch-cpu", "torch-cuda"),
                   help="backend for scoring the converted model (same numbers on all)")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing model")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress lines (they are shown only on a terminal anyway)")
    return p


def main(argv: list[str], *, stdout: TextIO, stderr: TextIO,
         prog: str = "lmpress convert") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        report = _run(args, stderr)
    except LmpressError as e:
        print(f"{prog}: {e}", file=stderr)
        return EXIT_ERROR
    print(report, file=stdout)
    return EXIT_OK


def _run(args: argparse.Namespace, stderr: TextIO) -> str:
    from . import ConvertError
    from .build import convert

    src = args.source
    if ":" in src.split("/")[0] and not src.startswith("hf:"):
        raise ConvertError(f"{src!r}: convert reads Hugging Face directories, written "
                           "hf:DIR (or a plain directory path)")
    src = src[3:] if src.startswith("hf:") else src
    name, target = _target(args.output)
    if target.exists() and not args.force:
        raise ConvertError(f"{target} exists; use -f to replace it")
    texts = [_read(f) if f else None for f in (args.calibrate, args.eval)]
    show = stderr.isatty() and not args.quiet
    result = convert(src, name, window=args.window, max_positions=args.max_positions,
                     calibration=texts[0], evaluation=texts[1], smooth_alpha=args.smooth,
                     backend=args.backend,
                     progress=(lambda line: print(f"convert: {line}", file=stderr, flush=True))
                     if show else None)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = result.weights.save(target)  # written to a temporary name, then renamed
    except OSError as e:
        raise ConvertError(f"cannot write {target}: {e.strerror}") from None
    q, w = result.quality, result.weights
    on = f"{args.eval or args.calibrate or 'the built-in sample'}"
    return "\n".join([
        f"{name}: {result.source} -> {target} ({target.stat().st_size:,} bytes, "
        f"sha256 {digest[:16]})",
        f"  {w.config.n_layer} layers, d={w.config.n_embd}, heads {w.config.n_head}/"
        f"{w.config.kv_heads}, vocabulary {w.config.vocab_size}, window "
        f"{w.config.window}, max positions {w.config.max_positions}",
        f"  quality on {on}: {q.n_bytes:,} bytes, {q.n_tokens:,} tokens",
        f"    float model     {q.float_bpb:.4f} bits/byte  "
        f"({q.float_bits / max(q.n_tokens, 1):.4f} bits/token)",
        f"    integer model   {q.int_bpb:.4f} bits/byte  "
        f"({q.int_bits / max(q.n_tokens, 1):.4f} bits/token, {q.cost:+.2%}; per token "
        f"{q.deviation:.2%} apart on average)",
        f"  use it with: lmpress -m {target if args.output.endswith('.safetensors') else name}"
        " FILE",
    ])


def _target(output: str) -> tuple[str, Path]:
    from ..model.registry import SHIPPED, user_model_path

    if output.endswith(".safetensors"):
        path = Path(output)
        name = path.stem
    else:
        name, path = output, user_model_path(output)
    from . import ConvertError

    if name in SHIPPED:
        raise ConvertError(f"{name!r} is the name of a shipped model; choose another name")
    if len(name.encode()) > 255:
        raise ConvertError("model names are at most 255 bytes (the archive header's limit)")
    return name, path


def _read(path: str) -> bytes:
    from . import ConvertError

    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConvertError(f"cannot read {path}: {e.strerror}") from None
