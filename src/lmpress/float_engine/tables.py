"""The float engines' one path from logits to the coder's integer frequency table, their
exact tokenizer wrapper, and the fingerprint that archives record.

`freq_table` is used by the encoder and the decoder alike, on float64 numpy arrays on the
CPU after the model's output, so both directions turn the same logits into the same
integers. Whether the logits themselves are the same is the fingerprint's business.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from . import FingerprintError, FloatEngineError

FREQ_BITS = 28
FREQ_TOTAL = 1 << FREQ_BITS  # every table sums to exactly this
MAX_VOCAB = 1 << 24  # leaves every token a frequency of at least 1 and 15 to spare
_INVALID_RUN = re.compile("[\udc80-\udcff]+")  # bytes that are not UTF-8, escaped


def freq_table(logits: np.ndarray) -> np.ndarray:
    """Integer frequencies (..., V), each ≥ 1, summing to FREQ_TOTAL, from logits (..., V):
    softmax in float64, f = 1 + floor(p · (FREQ_TOTAL − V)), and what the floors leave
    over goes to the most likely token (the first one on ties)."""
    x = np.asarray(logits, dtype=np.float64)
    V = x.shape[-1]
    if V > MAX_VOCAB:
        raise FloatEngineError(f"a vocabulary of {V} tokens is more than the coder's "
                               f"{MAX_VOCAB}")
    if not np.isfinite(x).all():
        raise FloatEngineError("the model produced NaN or infinite logits; it cannot code "
                               "(try float32, or check the model files)")
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    f = np.floor(p * (FREQ_TOTAL - V)).astype(np.int64) + 1
    top = np.argmax(f, -1)[..., None]
    rest = FREQ_TOTAL - f.sum(-1, keepdims=True)
    np.put_along_axis(f, top, np.take_along_axis(f, top, -1) + rest, -1)
    return f


class FloatTokenizer:
    """Token ids <-> bytes for a float model's own tokenizer. `encode` gives ids whose
    bytes spell the input exactly, or None (the codec then stores that segment raw or as
    LZMA); `decode` joins the tokens' bytes, so it never depends on the library's
    decoder (no space clean-up, no dropped prefix). `encode_texts` tokenizes valid UTF-8
    pieces; bytes that are not UTF-8 become single-byte tokens when the vocabulary has
    all 256 (byte-level BPE, SentencePiece byte fallback), else the segment is None."""

    def __init__(self, token_bytes: list[bytes],
                 encode_texts: Callable[[list[str]], list[list[int]]], bos_id: int,
                 digest: str):
        self.token_bytes = token_bytes
        self.vocab_size = len(token_bytes)
        self.n_bytes = np.array([len(b) for b in token_bytes], dtype=np.int64)
        self.bos_id = bos_id
        self.digest = digest  # sha256 hex of the tokenizer's files
        self._encode_texts = encode_texts
        singles: dict[int, int] = {}
        for idx in range(self.vocab_size - 1, -1, -1):  # the lowest id wins
            if len(token_bytes[idx]) == 1:
                singles[token_bytes[idx][0]] = idx
        self.byte_ids = [singles[b] for b in range(256)] if len(singles) == 256 else None

    def encode(self, data: bytes) -> np.ndarray | None:
        text = data.decode("utf-8", "surrogateescape")
        pieces, gaps, pos = [], [], 0
        for m in _INVALID_RUN.finditer(text):
            pieces.append(text[pos:m.start()])
            gaps.append(m.group().encode("utf-8", "surrogateescape"))
            pos = m.end()
        pieces.append(text[pos:])
        if gaps and self.byte_ids is None:
            return None
        ids: list[int] = []
        for i, part in enumerate(self._encode_texts(pieces) if data else []):
            ids += part
            if i < len(gaps):
                ids += [self.byte_ids[b] for b in gaps[i]]  # type: ignore[index]
        if any(not 0 <= i < self.vocab_size for i in ids):
            return None
        out = np.asarray(ids, dtype=np.int64)
        if (self.n_bytes[out] == 0).any() or self.decode(ids) != data:
            return None
        return out

    def decode(self, ids: Iterable[int]) -> bytes:
        tb, n = self.token_bytes, self.vocab_size
        return b"".join(tb[i] if 0 <= i < n else b"" for i in ids)


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over (name, size, content) of each file, in name order."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode() + b"\0" + str(p.stat().st_size).encode() + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def pack_fingerprint(fp: dict) -> bytes:
    """The fingerprint as the archive stores it: compact UTF-8 JSON, keys sorted."""
    return json.dumps(fp, sort_keys=True, separators=(",", ":")).encode("utf-8")


def unpack_fingerprint(raw: bytes) -> dict:
    try:
        fp = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        fp = None
    if not isinstance(fp, dict):
        from ..errors import FormatError

        raise FormatError("corrupt archive: its engine fingerprint is not a JSON object")
    return fp


def _flat(fp: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in fp.items():
        out.update(_flat(v, f"{k} ") if isinstance(v, dict) else {prefix + k: v})
    return out


def describe(fp: dict) -> str:
    """One line for messages: 'hf:tiny (transformers 5.2, torch 2.9, cpu, float32)'."""
    libs = ", ".join(f"{k} {v}" for k, v in sorted(fp.get("libs", {}).items()))
    return (f"{fp.get('engine', '?')}:{fp.get('model', '?')} ({libs}; "
            f"{fp.get('device', '?')}, {fp.get('dtype', '?')})")


def check_fingerprint(recorded: dict, here: dict, force: bool) -> None:
    """Refuse (FingerprintError) when the engine setup differs, unless `force`."""
    a, b = _flat(recorded), _flat(here)
    a.pop("model", None)  # the directory or file name: only for messages
    b.pop("model", None)
    diffs = [f"{k} {_short(a.get(k))} in the archive, {_short(b.get(k))} here"
             for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if diffs and not force:
        raise FingerprintError(
            f"engine fingerprint differs: {'; '.join(diffs)}. Float models decode exactly "
            "only with the setup that coded; use it, or pass --force to try anyway (a "
            "checksum failure is still an error)")


def _short(v: object) -> str:
    s = "none" if v is None else str(v)
    return s[:16] + "…" if len(s) == 64 else s  # sha256 digests: the first 16 digits
