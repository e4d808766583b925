"""The models an estimate can score: built-in integer models, Hugging Face causal LMs
(`hf:DIR`, transformers + torch, fp32) and GGUF files (`gguf:FILE`, llama-cpp-python).

Start token: built-in models use their tokenizer's BOS; hf and gguf models use the BOS
token, or EOS where there is none (lm-evaluation-harness's `prefix_token_id` rule).
Built-in models are scored with the coder's own integer frequency tables, so −log2(f/total)
is exactly what the range coder pays for that token without adaptation."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .estimate import EstimateError, Scorer
from .inputs import BenchError

HF_PREFIX, GGUF_PREFIX = "hf:", "gguf:"


def is_float_model(spec: object) -> bool:
    """hf: and gguf: models run in float (transformers, llama.cpp), not the integer engine."""
    return isinstance(spec, str) and spec.startswith((HF_PREFIX, GGUF_PREFIX))


@contextmanager
def _as_bench_error():
    """float_engine's loaders (shared with the codec) raise their own error class."""
    from ..float_engine import FloatEngineError

    try:
        yield
    except FloatEngineError as e:
        raise BenchError(str(e)) from None


def load_scorer(spec: object, backend: str | None = None) -> Scorer:
    """A scorer for `hf:DIR`, `gguf:FILE`, or a built-in model name / .safetensors path."""
    if isinstance(spec, str) and spec.startswith(HF_PREFIX):
        return HFScorer(spec[len(HF_PREFIX):])
    if isinstance(spec, str) and spec.startswith(GGUF_PREFIX):
        return GGUFScorer(spec[len(GGUF_PREFIX):])
    return IntegerScorer(spec, backend)


def _round_trip(name: str, data: bytes, back: bytes) -> None:
    if back != data:
        at = next((i for i, (x, y) in enumerate(zip(data, back)) if x != y),
                  min(len(data), len(back)))
        raise EstimateError(f"{name}: the tokenizer does not give the text back "
                            f"(decode(encode(x)) differs at byte {at}); it cannot be scored")


class IntegerScorer:
    """A built-in model through the coder's path from tokens to frequency tables."""

    def __init__(self, spec: object, backend: str | None = None, batch_size: int = 16):
        from ..codec import _Engine  # the coder's one path to the integer tables

        self.engine = _Engine(spec, backend, batch_size)
        w = self.engine.weights
        self.name, self.key = w.name, f"lmpress:{w.name}:{w.digest[:16]}"
        self.max_len = self.engine.cfg.max_positions
        self.start_id = self.engine.tok.bos_id

    def tokenize(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        tok = self.engine.tok
        ids = tok.encode(data)
        _round_trip(self.name, data, tok.decode(ids.tolist()))
        return ids, tok.n_bytes[ids]

    def score(self, inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray]
              ) -> list[np.ndarray]:
        from ..streams import chunked_tables

        e, B = self.engine, len(inputs)
        L = max(len(x) for x in inputs)
        inp = np.zeros((B, L), dtype=np.int64)
        tgt = np.zeros((B, L), dtype=np.int64)
        for b, (x, y) in enumerate(zip(inputs, targets)):  # padding after: causal, unread
            inp[b, :len(x)], tgt[b, :len(y)] = x, y
        e.prepare(4 * int(inp.size))  # about 4 bytes per token
        _, freq, total = chunked_tables(e, inp, tgt[..., None])
        nll = -np.log(freq[..., 0] / total)
        return [nll[b, :len(x)] for b, x in enumerate(inputs)]


class HFScorer:
    """A causal LM saved with `save_pretrained` in a local directory, run in float32."""

    def __init__(self, path: str):
        from ..float_engine.hf import load_hf  # the codec's hf: engine loads the same way

        with _as_bench_error():
            loaded = load_hf(path)
        import torch

        self.torch, self.tok, self.model = torch, loaded.tok, loaded.model
        self.name, self.key = f"hf:{Path(path).name}", f"hf:{Path(path).resolve()}"
        self.start_id, self.max_len = loaded.start_id, loaded.max_len

    def tokenize(self, data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise EstimateError(f"{self.name} scores text; byte {e.start} is not UTF-8"
                                ) from None
        fast = getattr(self.tok, "is_fast", False)
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=fast)
        ids = list(enc["input_ids"])
        back = self.tok.decode(ids, skip_special_tokens=False,
                               clean_up_tokenization_spaces=False)
        _round_trip(self.name, data, back.encode("utf-8", "surrogateescape"))
        sizes = None
        if fast and ids:  # a character split over tokens counts for the first of them
            sizes, done = [], 0
            for _, end in enc["offset_mapping"]:
                end = max(done, end)
                sizes.append(len(text[done:end].encode("utf-8")))
                done = end
            sizes[-1] += len(text[done:].encode("utf-8"))
            sizes = np.array(sizes, dtype=np.int64)
        return np.array(ids, dtype=np.int64), sizes

    def score(self, inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray]
              ) -> list[np.ndarray]:
        torch, out = self.torch, []
        with torch.no_grad():
            for x, y in zip(inputs, targets):
                logits = self.model(torch.from_numpy(x)[None]).logits[0].float()
                logp = torch.log_softmax(logits, -1)  # fp32, as lm-eval
                picked = logp.gather(-1, torch.from_numpy(y)[:, None])[:, 0]
                out.append(-picked.double().numpy())
        return out


class GGUFScorer:
    """A GGUF file through llama-cpp-python (CPU here; untested in this repository's CI)."""

    def __init__(self, path: str):
        from ..float_engine.gguf import open_gguf, start_token  # shared with the codec

        with _as_bench_error():
            self.llm = open_gguf(path, n_ctx=0, logits_all=True)
        self.name, self.key = f"gguf:{Path(path).name}", f"gguf:{Path(path).resolve()}"
        self.start_id = start_token(self.llm)
        self.max_len = self.llm.n_ctx()

    def tokenize(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        ids = self.llm.tokenize(data, add_bos=False, special=False)
        _round_trip(self.name, data, self.llm.detokenize(ids))
        sizes = np.array([len(self.llm.detokenize([t])) for t in ids], dtype=np.int64)
        if int(sizes.sum()) != len(data):
            sizes = None  # pieces that only decode in context: no per-token byte lengths
        return np.array(ids, dtype=np.int64), sizes

    def score(self, inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray]
              ) -> list[np.ndarray]:
        out = []
        for x, y in zip(inputs, targets):
            self.llm.reset()
            self.llm.eval(x.tolist())
            logits = np.asarray(self.llm.scores[:len(x)], dtype=np.float32)
            top = logits.max(-1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(logits - top).sum(-1, dtype=np.float32))
            picked = logits[np.arange(len(x)), y]
            out.append((lse - picked).astype(np.float64))  # fp32 log-softmax
        return out

