"""Training data: a balanced sample of the corpus, a tokenizer, and token arrays on disk."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..model.tokenizer import ByteTokenizer, train_tokenizer

Log = Callable[[str], None]


def iter_documents(corpus_dir: Path, max_mb_per_source: float, seed: int = 0,
                   exclude: tuple[str, ...] = (),
                   sets: tuple[str, ...] = ("train",)) -> Iterator[str]:
    """Documents of every source in the corpus folders `sets` (train: the base set,
    train-extra: the extra set) not in `exclude`, at most `max_mb_per_source` MB each,
    shuffled. The default reads the base set alone, as every recipe before max-v2 did."""
    docs: list[str] = []
    paths = [p for folder in sets for p in sorted((corpus_dir / folder).glob("*.jsonl"))]
    if not paths:
        raise FileNotFoundError(f"no sources under {corpus_dir} in {', '.join(sets)}: "
                                "build the corpus (python -m lmpress.train.corpus build)")
    for path in paths:
        if path.stem in exclude:
            continue
        budget = int(max_mb_per_source * 1e6)
        with path.open(encoding="utf-8") as f:
            for line in f:
                text = json.loads(line)["text"]
                if budget <= 0:
                    break
                docs.append(text[:budget])
                budget -= len(text.encode())
    random.Random(seed).shuffle(docs)
    yield from docs


def prepare(corpus_dir: Path, run_dir: Path, vocab_size: int, tokenizer_mb: float,
            max_mb_per_source: float, exclude: tuple[str, ...] = (),
            log: Log = lambda s: None, sets: tuple[str, ...] = ("train",)) -> None:
    """Train the tokenizer on a small sample, then tokenize the training documents into
    `tokens.npy` (uint16), each document preceded by BOS."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tok_path = run_dir / "tokenizer.json"
    if not tok_path.exists():
        log(f"training tokenizer (vocab {vocab_size}) on {tokenizer_mb} MB per source")
        sample = iter_documents(corpus_dir, tokenizer_mb, seed=1, exclude=exclude, sets=sets)
        tok_path.write_text(train_tokenizer(sample, vocab_size), encoding="utf-8")
    tok = ByteTokenizer(tok_path.read_text(encoding="utf-8"))
    log("tokenizing training documents")
    parts, n_bytes = [], 0
    for doc in iter_documents(corpus_dir, max_mb_per_source, exclude=exclude, sets=sets):
        data = doc.encode("utf-8")
        n_bytes += len(data)
        parts.append(np.concatenate([[tok.bos_id], tok.encode(data)]).astype(np.uint16))
    tokens = np.concatenate(parts)
    np.save(run_dir / "tokens.npy", tokens)
    meta = {"n_tokens": int(tokens.size), "n_bytes": n_bytes, "vocab_size": tok.vocab_size}
    (run_dir / "data.json").write_text(json.dumps(meta, indent=1))
    log(f"{n_bytes / 1e6:.1f} MB -> {tokens.size / 1e6:.2f} M tokens "
        f"({n_bytes / tokens.size:.2f} bytes/token)")
