"""The shipped models' recipes: corpus -> tokenizer -> training -> integer export, as one
command. `python -m lmpress.train.recipe small-v1 --minutes 55` rebuilds the default model
(resuming if the run directory already holds a checkpoint)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..model.config import ModelConfig
from .data import prepare
from .trainer import TrainConfig, train

# manual pages in languages other than English and Chinese are left out of the small
# models to spend their capacity on the validation languages
_OTHER_LANGUAGE_MANPAGES = ("manpages-ja", "manpages-ru", "manpages-pl", "manpages-de",
                            "manpages-fr", "manpages-es", "manpages-it")

# the default model's shape, shared by small-v1 and the runs that train it on
_SMALL = ModelConfig(vocab_size=4096, n_layer=5, n_head=6, n_embd=192, n_hidden=512,
                     window=256, max_positions=4096)

# the largest shape, levels 7-9 (max-v1 and the runs that train it on; level 9 mixes it
# with small-v5, model/mix.py)
_MAX = ModelConfig(vocab_size=4096, n_layer=8, n_head=6, n_embd=384, n_hidden=1024,
                   window=512, max_positions=4096)

# the fast level's shape (fast-v1 and the runs that train it on)
_FAST = ModelConfig(vocab_size=4096, n_layer=2, n_head=4, n_embd=128, n_hidden=384,
                    window=128, max_positions=4096)


def _trained_on(start: str, seen_steps: int, lr: float, max_steps: int,
                model: ModelConfig = _SMALL, batch_size: int = 16,
                max_mb_per_source: float = 6.0, ckpt_every: int = 200,
                sets: tuple[str, ...] = ("train",)) -> dict:
    """A recipe that trains the shipped model `start` (of shape `model`) on: the same
    tokenizer and training sample, going on with the chunks after the `seen_steps` batches
    of `batch_size` (same seeded order) the earlier runs saw, so its first pass sees only
    new chunks. A larger `max_mb_per_source` makes a larger sample (holding the smaller
    one's documents, in a new order); `max_steps=0` spreads the cosine over the wall-clock
    budget. `sets` are the corpus folders read (train: the base set the shipped models
    before max-v2 saw; train-extra: the extra set)."""
    return {
        "model": model,
        "train": TrainConfig(batch_size=batch_size, lr=lr, warmup_steps=100,
                             max_steps=max_steps, data_offset_steps=seen_steps,
                             ckpt_every=ckpt_every),
        "init_from": start,
        "tokenizer_from": "lmpress-small-v1",
        "tokenizer_mb": 1.5,
        "max_mb_per_source": max_mb_per_source,
        "exclude": _OTHER_LANGUAGE_MANPAGES,
        "sets": sets,
    }


# the v2 sample: the base and extra sets, at most V2_MB per source (the extra set's large
# sources -- kernel, LLVM, Java, GHC, Rust, Qt docs -- would otherwise outweigh the rest);
# max-v2 and small-v6 read the same sample, so one token pack serves both
V2_SETS = ("train", "train-extra")
V2_MB = 8.0

RECIPES = {
    "small-v1": {
        "model": _SMALL,
        "train": TrainConfig(batch_size=16, lr=2e-3, warmup_steps=150, max_steps=2400),
        "tokenizer_mb": 1.5,  # per source, for BPE training
        "max_mb_per_source": 6.0,  # keeps the mix balanced
        "exclude": _OTHER_LANGUAGE_MANPAGES,
    },
    # each run at a lower peak learning rate than the one before
    "small-v2": _trained_on("lmpress-small-v1", seen_steps=2400, lr=1e-3, max_steps=2400),
    "small-v3": _trained_on("lmpress-small-v2", seen_steps=4800, lr=7e-4, max_steps=2200),
    # small-v3 saw 0.83 epoch of the 6 MB-per-source sample: a 12 MB-per-source one (the
    # same documents and 43 MB more, about 43% of its chunks never seen), the cosine over
    # the wall clock. Tried 2026-11-30 (88 min, 6.4 M tokens): no better than small-v3
    # on held-out text, so not shipped (docs/TRAINING.md)
    "small-v4": _trained_on("lmpress-small-v3", seen_steps=0, lr=5e-4, max_steps=0,
                            max_mb_per_source=12.0),
    # small-v3 on a GPU (benchmarks/device_train.sh): the 12 MB-per-source sample in
    # batches of 64, a few epochs in one short sitting
    "small-v5": _trained_on("lmpress-small-v3", seen_steps=0, lr=1e-3, max_steps=0,
                            batch_size=64, max_mb_per_source=12.0, ckpt_every=2000),
    # fast-v1 saw 1400 batches of 16, so batches of 32 from chunk 22,400 on; half its peak
    # lr, as small-v2 took half of small-v1's
    "fast-v2": _trained_on("lmpress-fast-v1", seen_steps=700, lr=1.5e-3, max_steps=5000,
                           model=_FAST, batch_size=32),
    "max-v1": {
        # levels 7-9: a larger model for a GPU (docs/TRAINING.md, "On a GPU"): one
        # sitting of a few minutes (benchmarks/device_train.sh), the cosine schedule
        # spread over the wall-clock budget (max_steps = 0), bf16 autocast
        "model": _MAX,
        # checkpoints (190 MB with the optimizer) only every 1000 steps: on an H200
        # a step took 40 ms (docs/TRAINING.md)
        "train": TrainConfig(batch_size=64, lr=1.5e-3, warmup_steps=200, max_steps=0,
                             ckpt_every=1000),
        "tokenizer_from": "lmpress-small-v1",
        "tokenizer_mb": 1.5,
        "max_mb_per_source": 12.0,  # about 50 M tokens: a few epochs in one sitting
        "exclude": _OTHER_LANGUAGE_MANPAGES,
    },
    # max-v1 memorized its 51 M-token sample (5.8 epochs): the same shape on a sample
    # about 2.4 times larger, most of it text max-v1 never saw. It starts from max-v1's
    # weights: a device sitting is a few minutes, and continuing spends them past what
    # max-v1 already learnt (same tokenizer and shape); the re-warmed, lower peak lr lets
    # the new text reshape it. A fresh run would be this recipe without init_from.
    "max-v2": _trained_on("lmpress-max-v1", seen_steps=0, lr=1e-3, max_steps=0,
                          model=_MAX, batch_size=64, max_mb_per_source=V2_MB,
                          ckpt_every=1000, sets=V2_SETS),
    # small-v5 on the v2 sample (the same tokens as max-v2), batches of 64 on a GPU
    "small-v6": _trained_on("lmpress-small-v5", seen_steps=0, lr=7e-4, max_steps=0,
                            batch_size=64, max_mb_per_source=V2_MB, ckpt_every=2000,
                            sets=V2_SETS),
    # small-v6 sized for a CPU session: the same start and sample, batches of 32 at a
    # lower peak lr (a short run re-warms less), the cosine over the wall clock,
    # checkpoints every 200 steps
    "small-v7": _trained_on("lmpress-small-v5", seen_steps=0, lr=4e-4, max_steps=0,
                            batch_size=32, max_mb_per_source=V2_MB, sets=V2_SETS),
    "fast-v1": {
        # the fast level: two narrow layers and a short window, so that a decoding step
        # costs little more than the frequency table; shares small-v1's tokenizer, so the
        # two models can score each other's text (lmpress rank)
        "model": _FAST,
        "train": TrainConfig(batch_size=16, lr=3e-3, warmup_steps=100, max_steps=1400),
        "tokenizer_from": "lmpress-small-v1",
        "tokenizer_mb": 1.5,
        "max_mb_per_source": 6.0,
        "exclude": _OTHER_LANGUAGE_MANPAGES,
    },
}


def main(argv: list[str] | None = None, echo: Callable[[str], None] = lambda s: None) -> int:
    """Run a recipe; progress lines go to RUN/train.log and to `echo` (the CLI prints)."""
    p = argparse.ArgumentParser(prog="python -m lmpress.train.recipe", description=__doc__)
    p.add_argument("recipe", choices=sorted(RECIPES))
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--runs", type=Path, default=Path("runs"))
    p.add_argument("--minutes", type=float, default=55.0, help="wall-clock training budget")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16 autocast for the forward pass; auto: bf16 on a GPU, else fp32")
    p.add_argument("--export", type=Path, metavar="DIR",
                   help="after training, write the integer model lmpress-RECIPE.safetensors "
                        "into DIR (src/lmpress/models to ship it) and print its sha256")
    p.add_argument("--report", type=Path, metavar="FILE",
                   help="with --export: bits per byte of the float and integer models on FILE")
    p.add_argument("--skip-training", action="store_true", help="export the checkpoint as is")
    p.add_argument("--prepare-only", action="store_true",
                   help="stop after the tokenizer and the token array (RUN/tokens.npy)")
    args = p.parse_args(argv)
    r = RECIPES[args.recipe]
    run_dir = args.runs / args.recipe

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        echo(line)
        with (run_dir / "train.log").open("a") as f:
            f.write(line + "\n")

    run_dir.mkdir(parents=True, exist_ok=True)
    need_corpus = not (run_dir / "tokens.npy").exists()  # a carried run needs none
    sets = r.get("sets", ("train",))  # corpus folders: train (base), train-extra
    manifests = ["manifest.json"] + (["manifest-extra.json"] if "train-extra" in sets else [])
    if need_corpus and not all((args.corpus / m).exists() for m in manifests):
        from .corpus import main as corpus_main

        corpus_main(["build", "--out", str(args.corpus)], echo)
    if "tokenizer_from" in r and not (run_dir / "tokenizer.json").exists():
        from ..model.registry import load_model

        tokenizer_json = load_model(r["tokenizer_from"]).tokenizer_json
        (run_dir / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    if need_corpus:
        prepare(args.corpus, run_dir, r["model"].vocab_size, r["tokenizer_mb"],
                r["max_mb_per_source"], r["exclude"], log, sets)
    if args.prepare_only:
        return 0
    if not args.skip_training:
        init = None
        if "init_from" in r and not (run_dir / "checkpoint.safetensors").exists():
            from ..model.quantize import dequantize_model
            from ..model.registry import load_model

            init = dequantize_model(load_model(r["init_from"]))
            log(f"starting from the weights of {r['init_from']}")
        precision = args.precision if args.precision != "auto" else \
            "bf16" if args.device.startswith("cuda") else "fp32"
        state = train(run_dir, r["model"], r["train"], args.minutes, args.device, log, init,
                      precision)
        summary = {k: v for k, v in state.items() if k != "history"}
        log("done: " + json.dumps(summary))
    if args.export:
        from .export import export, quantization_report
        from .trainer import load_trained

        name = f"lmpress-{args.recipe}"
        args.export.mkdir(parents=True, exist_ok=True)
        out = args.export / f"{name}.safetensors"
        model = load_trained(run_dir)
        tokenizer_json = (run_dir / "tokenizer.json").read_text(encoding="utf-8")
        weights = export(model, tokenizer_json, name, out)
        log(f"exported {out} ({out.stat().st_size} bytes) sha256 {weights.digest}")
        if args.report:
            rep = quantization_report(model, weights, args.report.read_bytes())
            log(f"quantization on {args.report.name}: " + json.dumps(rep))
    return 0


if __name__ == "__main__":  # same as `lmpress train ...`; the CLI does the talking
    from ..cli import main as cli_main

    sys.exit(cli_main(["train", *sys.argv[1:]]))
