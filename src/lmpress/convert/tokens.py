"""The checkpoint's tokenizer as an lmpress tokenizer: the same byte-level BPE (vocabulary,
merges, pre-tokenizer), made to round-trip every byte string, with the start token
under lmpress's name `<|bos|>`.

What changes, and why: the normalizer is dropped (Qwen2's NFC would rewrite text, so
decode(encode(x)) != x); added and special tokens are dropped (they would be matched in
the input text and lose its bytes), except the start token; a ByteLevel pre-tokenizer
adds no prefix space. On NFC text without special-token strings the ids equal the
original tokenizer's (checked on the calibration text)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..model.tokenizer import BOS_TOKEN, ByteTokenizer, _byte_alphabet
from . import ConvertError

# A few byte strings every converted tokenizer must give back unchanged.
ROUND_TRIP_SAMPLES = (
    b"", b"Hello, world!\n", "naïve café — 東京 😀".encode(), b"\x00\xff\xfe\x80 bytes\r\n",
    "e\u0301 not NFC".encode(), b"<|endoftext|><|im_start|>user\n<s></s>[INST]",
    bytes(range(256)),
)


def convert_tokenizer(hf_tokenizer, path: Path, start_id: int) -> tuple[str, np.ndarray, int]:
    """(lmpress tokenizer JSON, `rows`, bos_id) from the checkpoint's transformers fast
    tokenizer (its backend, which is what the float model is used with; transformers 5
    may rebuild it differently from the directory's tokenizer.json). `rows` lists the
    checkpoint's token ids the converted model keeps, in order: every BPE piece, and the
    start token (appended when it lies outside the BPE vocabulary); bos_id is its id."""
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConvertError(f"the tokenizer of {path} is not a fast (Hugging Face tokenizers) "
                           "tokenizer; convert needs tokenizer.json with byte-level BPE")
    tj = json.loads(backend.to_str())
    model = tj.get("model") or {}
    if model.get("type") != "BPE" or not _has_byte_level(tj.get("pre_tokenizer")):
        kind = model.get("type") or "unknown"
        raise ConvertError(f"the tokenizer of {path} is not byte-level BPE (model {kind}, "
                           f"pre-tokenizer {_kind(tj.get('pre_tokenizer'))}); convert "
                           "supports byte-level BPE tokenizers (Llama 3, Qwen2/3, SmolLM), "
                           "not SentencePiece-style ones (Llama 2, Mistral v0.1)")
    if model.get("byte_fallback"):
        raise ConvertError(f"the tokenizer of {path} uses byte fallback (SentencePiece "
                           "style); convert supports byte-level BPE tokenizers")
    vocab: dict[str, int] = dict(model["vocab"])
    alphabet = _byte_alphabet()
    missing = [c for c in alphabet if c not in vocab]
    if missing:
        raise ConvertError(f"the tokenizer of {path} lacks {len(missing)} of the 256 "
                           "single-byte tokens, so some bytes could not be coded")
    start_piece = next((p for p, i in vocab.items() if i == start_id), None)
    odd = [p for p in vocab if p != start_piece and any(c not in alphabet for c in p)]
    if odd:
        raise ConvertError(f"the tokenizer of {path} has pieces that are not byte-level "
                           f"strings, e.g. {odd[0]!r}; they could not be decoded to bytes")
    n_bpe = max(vocab.values()) + 1
    if start_piece is not None:  # inside the vocabulary (SmolLM): rename it in place
        if any(_merged(m) == start_piece for m in model.get("merges", [])):
            raise ConvertError(f"the start token {start_piece!r} is also built by a BPE "
                               "merge; it cannot be given lmpress's name")
        del vocab[start_piece]
        vocab[BOS_TOKEN] = start_id
        rows, bos_id = np.arange(n_bpe), start_id
    else:  # an added token (Qwen2's <|endoftext|>, Llama 3's <|begin_of_text|>): append
        rows, bos_id = np.append(np.arange(n_bpe), start_id), n_bpe
    model["vocab"] = vocab
    tj.update(model=model, normalizer=None, post_processor=None,
              pre_tokenizer=_no_prefix_space(tj["pre_tokenizer"]),
              decoder={"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                       "use_regex": True},
              added_tokens=[{"id": bos_id, "content": BOS_TOKEN, "single_word": False,
                             "lstrip": False, "rstrip": False, "normalized": False,
                             "special": True}])
    text = json.dumps(tj, ensure_ascii=False, sort_keys=True)
    _check(text, bos_id, len(rows))
    return text, rows, bos_id


def check_same_ids(tokenizer_json: str, hf_tokenizer, text: str) -> None:
    """The converted tokenizer must split `text` exactly as the original does (on its NFC
    form, without the original's added-token strings, which only it treats specially)."""
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    added = getattr(hf_tokenizer, "added_tokens_decoder", {}) or {}
    for token in sorted((str(t) for t in added.values()), key=len, reverse=True):
        if token:
            text = text.replace(token, " ")
    ours = ByteTokenizer(tokenizer_json).encode(text.encode()).tolist()
    theirs = hf_tokenizer(text, add_special_tokens=False)["input_ids"]
    if ours != theirs:
        at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
                  min(len(ours), len(theirs)))
        raise ConvertError(f"the converted tokenizer splits the calibration text unlike the "
                           f"original (first difference at token {at}); this tokenizer is "
                           "not supported")


def _check(text: str, bos_id: int, n_tok: int) -> None:
    try:
        tok = ByteTokenizer(text)
    except Exception as e:  # tokenizers raises its own exception types
        raise ConvertError(f"the converted tokenizer does not load ({e})") from None
    if tok.bos_id != bos_id or tok.vocab_size != n_tok:
        raise ConvertError("the converted tokenizer does not keep the token ids "
                           f"(start {tok.bos_id} != {bos_id} or size {tok.vocab_size} != "
                           f"{n_tok}); this tokenizer is not supported")
    for data in ROUND_TRIP_SAMPLES:
        if tok.decode(tok.encode(data).tolist()) != data:
            raise ConvertError(f"the converted tokenizer does not give {data[:20]!r} back; "
                               "this tokenizer is not supported")


def _merged(merge) -> str:
    return "".join(merge) if isinstance(merge, list) else merge.replace(" ", "", 1)


def _kind(pre) -> str:
    return "none" if not pre else pre.get("type", "?")


def _has_byte_level(pre) -> bool:
    if not pre:
        return False
    if pre.get("type") == "ByteLevel":
        return True
    return any(_has_byte_level(p) for p in pre.get("pretokenizers", []))


def _no_prefix_space(pre: dict) -> dict:
    pre = dict(pre)
    if pre.get("type") == "ByteLevel":
        pre["add_prefix_space"] = False
    if "pretokenizers" in pre:
        pre["pretokenizers"] = [_no_prefix_space(p) for p in pre["pretokenizers"]]
    return pre
