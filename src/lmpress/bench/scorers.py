"""The models an estimate can score: built-in integer models, Hugging Face causal LMs
(`hf:DIR`, transformers + torch, fp32) and GGUF files (`gguf:FILE`, llama-cpp-python).

Start token: built-in models use their tokenizer's BOS; hf and gguf models use the BOS
token, or EOS where there is none (lm-evaluation-harness's `prefix_token_id` rule).
Built-in models are scored with the coder's own integer frequency tables, so −log2(f/total)
is exactly what the range coder pays for that token without adaptation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .estimate import EstimateError, Scorer
from .inputs import BenchError

HF_PREFIX, GGUF_PREFIX = "hf:", "gguf:"
DEFAULT_MAX_LEN = 2048  # lm-eval's HFLM default when the config names no length


def is_float_model(spec: object) -> bool:
    """hf: and gguf: models have no coder: they are measured by the estimate only."""
    return isinstance(spec, str) and spec.startswith((HF_PREFIX, GGUF_PREFIX))


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
        _, freq, total = chunked_tables(e, inp, tgt[..., None])
        nll = -np.log(freq[..., 0] / total)
        return [nll[b, :len(x)] for b, x in enumerate(inputs)]


class HFScorer:
    """A causal LM saved with `save_pretrained` in a local directory, run in float32."""

    def __init__(self, path: str):
        try:
            import torch
            import transformers
        except ImportError:
            raise BenchError(f"hf:{path} needs transformers and torch; install them with: "
                             "pip install 'lmpress[hf]'") from None
        if not Path(path, "config.json").is_file():
            raise BenchError(f"hf:{path}: no config.json there; give a directory written by "
                             "save_pretrained")
        self.torch = torch
        self.tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=torch.float32).float().eval()
        self.name, self.key = f"hf:{Path(path).name}", f"hf:{Path(path).resolve()}"
        start = self.tok.bos_token_id
        self.start_id = start if start is not None else self.tok.eos_token_id
        if self.start_id is None:
            raise BenchError(f"hf:{path}: the tokenizer has neither a BOS nor an EOS token "
                             "to start from")
        cfg = self.model.config
        lengths = [getattr(cfg, a, None) for a in ("n_positions", "max_position_embeddings",
                                                    "n_ctx")]
        length = next((n for n in lengths if n), None) or self.tok.model_max_length
        self.max_len = int(length) if length and length < 1e9 else DEFAULT_MAX_LEN

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
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BenchError(f"gguf:{path} needs llama-cpp-python; install it with: "
                             "pip install 'lmpress[gguf]'") from None
        if not Path(path).is_file():
            raise BenchError(f"gguf:{path}: no such file")
        self.llm = Llama(model_path=path, n_ctx=0, logits_all=True, verbose=False)
        self.name, self.key = f"gguf:{Path(path).name}", f"gguf:{Path(path).resolve()}"
        bos = self.llm.token_bos()
        self.start_id = bos if bos is not None and bos >= 0 else self.llm.token_eos()
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

