"""Byte-level BPE on Hugging Face `tokenizers`, extended so that *any* byte string
round-trips: valid UTF-8 runs go through the BPE model, and each byte of an invalid
sequence becomes its single-byte token."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tokenizers.pre_tokenizers import ByteLevel

BOS_TOKEN = "<|bos|>"
_INVALID_RUN = re.compile("[\udc80-\udcff]+")


def _byte_alphabet() -> dict[str, int]:
    """The GPT-2 byte <-> printable-character map used by ByteLevel, char -> byte."""
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


class ByteTokenizer:
    """Wraps a HF byte-level BPE tokenizer; `encode(bytes) -> ids`, `decode(ids) -> bytes`."""

    def __init__(self, json_text: str):
        self.json_text = json_text
        self.hf = Tokenizer.from_str(json_text)
        # the text "<|bos|>" in the input is ordinary bytes, not the start token (the
        # flag is not saved in the JSON, so it is set on every load)
        self.hf.encode_special_tokens = True
        self.digest = hashlib.sha256(json_text.encode()).hexdigest()
        char_to_byte = _byte_alphabet()
        vocab = self.hf.get_vocab()
        self.vocab_size = max(vocab.values()) + 1
        self.token_bytes: list[bytes] = [b""] * self.vocab_size
        for piece, idx in vocab.items():
            if piece == BOS_TOKEN:
                continue
            self.token_bytes[idx] = bytes(char_to_byte[c] for c in piece)
        self.byte_ids = np.array([vocab[c] for c, _ in sorted(char_to_byte.items(),
                                                               key=lambda kv: kv[1])])
        self.bos_id = vocab[BOS_TOKEN]
        self.n_bytes = np.array([len(b) for b in self.token_bytes], dtype=np.int64)

    def encode(self, data: bytes) -> np.ndarray:
        """Token ids (int64) whose concatenated bytes are exactly `data`; no BOS."""
        text = data.decode("utf-8", "surrogateescape")
        pieces: list[str] = []
        gaps: list[bytes] = []
        pos = 0
        for m in _INVALID_RUN.finditer(text):
            pieces.append(text[pos:m.start()])
            gaps.append(m.group().encode("utf-8", "surrogateescape"))
            pos = m.end()
        pieces.append(text[pos:])
        encoded = self.hf.encode_batch(pieces, add_special_tokens=False) if pieces else []
        parts: list[np.ndarray] = []
        for i, enc in enumerate(encoded):
            parts.append(np.asarray(enc.ids, dtype=np.int64))
            if i < len(gaps):
                parts.append(self.byte_ids[np.frombuffer(gaps[i], dtype=np.uint8)])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> bytes:
        tb = self.token_bytes
        return b"".join(tb[i] for i in ids)


def train_tokenizer(texts: Iterator[str], vocab_size: int) -> str:
    """Train a byte-level BPE with BOS as id 0; returns the tokenizer JSON."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS_TOKEN],
        initial_alphabet=ByteLevel.alphabet(),
        show_progress=False,
        max_token_length=16,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok.to_str()
