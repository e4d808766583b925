"""Per-token costs of a real compression, for `lmpress inspect` and the web page.

`inspect_bytes` compresses the data with the ordinary `Compressor`, with a recorder
attached (streams.py): the archive is byte for byte the one `compress` makes, and each
token's `bits` is what the range coder actually paid for it, adaptation included. From
the same pass the recorder reads the language model's integer table at every position,
giving the LM-only cost (−log2 f/total), the rank of the true token, the entropy of the
table and the top alternatives; no second model run.

Segments stored raw or as LZMA have no per-token cost: their payload bits are spread over
their bytes. What is left, header + stream table + checksum + seal (`container_bits`) and
the range coders' final bytes (`flush_bits`), is reported on its own lines, so that
Σ record bits + flush + container = 8 × archive bytes exactly.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..codec import Compressor
from ..container import KIND_LM, KIND_NAMES, Header
from ..errors import LmpressError

DEFAULT_MAX_BYTES = 256 * 1024  # the CLI's limit: ~1-2 min of CPU coding, ~70k page spans
JSON_VERSION = 1
# Colour scale of the heatmaps, one entry per bucket: (upper bound in bits, background,
# ink). Cheap tokens are pale, expensive ones deep red; the terminal and the page share it.
SCALE: tuple[tuple[float, str, str], ...] = (
    (1.0, "#f4f9ee", "#000000"), (2.0, "#d9efc2", "#000000"), (4.0, "#ffe08a", "#000000"),
    (8.0, "#fda55c", "#000000"), (16.0, "#e8453c", "#ffffff"),
    (float("inf"), "#8b0f2e", "#ffffff"))


class InspectError(LmpressError):
    """Input or options that `lmpress inspect` cannot work with."""


def bucket(bits: float) -> int:
    """Index into SCALE of a cost in bits."""
    return next(i for i, (upper, _, _) in enumerate(SCALE) if bits < upper)


@dataclass
class TokenRecord:
    """One token (or, in a stored segment, one token's worth of stored bytes)."""

    offset: int  # byte offset in the input
    n_bytes: int
    text: str  # the characters completed by this token's bytes (UTF-8, errors replaced)
    raw: bytes
    bits: float  # the coder's cost; stored segments: their payload bits spread per byte
    kind: str  # "lm", or "raw" / "lzma" for tokens of segments stored without the model
    lm_bits: float | None = None  # −log2 f/total of the LM alone; None if never modelled
    rank: int | None = None  # 1 + tokens with a larger frequency in the LM's table
    entropy: float | None = None  # of the LM's table, bits
    top: list[tuple[str, float]] = field(default_factory=list)  # LM's best (text, p)

    def to_json(self) -> dict:
        return {"offset": self.offset, "n_bytes": self.n_bytes, "token": self.text,
                "hex": self.raw.hex(), "bits": round(self.bits, 4), "kind": self.kind,
                "lm_bits": _round(self.lm_bits), "rank": self.rank,
                "entropy": _round(self.entropy),
                "top": [[t, round(p, 5)] for t, p in self.top]}


@dataclass(frozen=True)
class Span:
    """A run of consecutive LM-coded tokens with a large total cost."""

    start: int  # byte offsets [start, end)
    end: int
    first: int  # index of its first record
    n_tokens: int
    bits: float
    text: str

    def to_json(self) -> dict:
        return {"start": self.start, "end": self.end, "first": self.first,
                "n_tokens": self.n_tokens, "bits": round(self.bits, 3), "text": self.text}


@dataclass
class Inspection:
    """Per-token records of one compression and the archive's bit budget."""

    records: list[TokenRecord] = field(repr=False)
    n_bytes: int
    archive_bytes: int
    model: str
    level: int | None
    adapt: bool
    segments: list[dict]  # offset, n_bytes, kind, payload_bytes, in archive order
    container_bits: int  # header, stream table, checksum, seal
    flush_bits: float  # LM payload bits − Σ coded token bits: the coders' final bytes
    data: bytes = field(default=b"", repr=False)  # the input
    archive: bytes = field(default=b"", repr=False)  # what `compress` returns for it

    @property
    def token_bits(self) -> float:
        return sum(r.bits for r in self.records if r.kind == "lm")

    @property
    def stored_bits(self) -> int:
        return 8 * sum(s["payload_bytes"] for s in self.segments if s["kind"] != "lm")

    def total_bits(self) -> float:
        """Σ record bits + flush + container; equals 8 × archive bytes."""
        return sum(r.bits for r in self.records) + self.flush_bits + self.container_bits

    def bits_per_byte(self) -> float | None:
        """Σ record bits / input bytes: the content's cost without container or flush."""
        return sum(r.bits for r in self.records) / self.n_bytes if self.n_bytes else None

    def archive_bits_per_byte(self) -> float | None:
        return 8 * self.archive_bytes / self.n_bytes if self.n_bytes else None

    def adaptation_saved_bits(self) -> float:
        """Σ (LM-only bits − coded bits) over LM-coded tokens (0 without adaptation)."""
        return sum(r.lm_bits - r.bits for r in self.records
                   if r.kind == "lm" and r.lm_bits is not None)

    def surprising_spans(self, k: int = 5, n_tokens: int = 8) -> list[Span]:
        """The k non-overlapping windows of `n_tokens` LM-coded tokens costing most."""
        recs = self.records
        n = min(n_tokens, len(recs))
        if n == 0:
            return []
        bits = np.array([r.bits for r in recs])
        stored = np.array([r.kind != "lm" for r in recs])
        cb, cs = np.concatenate([[0], np.cumsum(bits)]), np.concatenate([[0], np.cumsum(stored)])
        score = cb[n:] - cb[:-n]
        ok = (cs[n:] - cs[:-n]) == 0
        taken = np.zeros(len(recs), dtype=bool)
        spans: list[Span] = []
        for i in np.argsort(-score, kind="stable"):
            if len(spans) == k:
                break
            if ok[i] and not taken[i:i + n].any():
                taken[i:i + n] = True
                a, b = recs[i].offset, recs[i + n - 1].offset + recs[i + n - 1].n_bytes
                spans.append(Span(a, b, int(i), n, float(score[i]),
                                  self.data[a:b].decode("utf-8", "replace")))
        return spans

    def to_json(self) -> dict:
        """Everything the heatmap page needs, as JSON-ready values."""
        lm_bits = sum(r.lm_bits for r in self.records
                      if r.kind == "lm" and r.lm_bits is not None)
        return {
            "version": JSON_VERSION, "model": self.model, "level": self.level,
            "adapt": self.adapt, "n_bytes": self.n_bytes, "archive_bytes": self.archive_bytes,
            "n_tokens": len(self.records),
            "bits_per_byte": _round(self.bits_per_byte(), 6),
            "archive_bits_per_byte": _round(self.archive_bits_per_byte(), 6),
            "totals": {"token_bits": round(self.token_bits, 3),
                       "lm_only_bits": round(lm_bits, 3),
                       "stored_bits": self.stored_bits,
                       "flush_bits": round(self.flush_bits, 3),
                       "container_bits": self.container_bits,
                       "total_bits": round(self.total_bits(), 3),
                       "adaptation_saved_bits": round(self.adaptation_saved_bits(), 3)},
            "scale": [{"max_bits": None if u == float("inf") else u, "color": c, "ink": i}
                      for u, c, i in SCALE],
            "segments": self.segments,
            "spans": [s.to_json() for s in self.surprising_spans()],
            "records": [r.to_json() for r in self.records],
        }


def _token_name(raw: bytes) -> str:
    """A vocabulary entry as text; bytes that are not whole UTF-8 characters as \\xNN."""
    return raw.decode("utf-8", "backslashreplace") if raw else "<|bos|>"


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


class _Recorder:
    """Collects, batch by batch, the LM statistics and the coder's costs (streams.py)."""

    def __init__(self, top_k: int):
        self.top_k = top_k
        self.batches: list[tuple[list[int], list[dict], list[np.ndarray]]] = []

    def batch(self, positions: list[int]) -> Callable[[np.ndarray, np.ndarray], None]:
        chunks: list[dict] = []
        self.batches.append((positions, chunks, []))
        return lambda f, want: chunks.append(_table_stats(f, want[..., 0], self.top_k))

    def costs(self, bits: np.ndarray) -> None:
        self.batches[-1][2].append(bits)

    def by_position(self) -> dict[int, dict]:
        """LM-stream position -> per-token arrays (bits, lm_bits, rank, entropy, top...)."""
        out = {}
        for positions, chunks, costs in self.batches:
            cols = {k: np.concatenate([c[k] for c in chunks], 1) for k in chunks[0]}
            cols["bits"] = costs[-1]
            for b, p in enumerate(positions):
                out[p] = {k: v[b] for k, v in cols.items()}
        return out


def _table_stats(f: np.ndarray, true: np.ndarray, top_k: int) -> dict:
    """LM-only bits, rank, entropy and top-k (ids, p) of the true tokens in tables f."""
    total = f.sum(-1)  # (B, l)
    ft = np.take_along_axis(f, true[..., None], -1)[..., 0]
    rank = 1 + (f > ft[..., None]).sum(-1)
    ff = f.astype(np.float64)
    entropy = np.log2(total) - (ff * np.log2(ff)).sum(-1) / total
    k = min(top_k, f.shape[-1])
    top = np.argpartition(-f, k - 1, -1)[..., :k] if k else np.zeros(f.shape[:2] + (0,), int)
    ftop = np.take_along_axis(f, top, -1)
    order = np.argsort(-ftop, -1, kind="stable")
    top, ftop = np.take_along_axis(top, order, -1), np.take_along_axis(ftop, order, -1)
    return {"lm_bits": np.log2(total / ft), "rank": rank, "entropy": entropy,
            "top_ids": top, "top_p": ftop / total[..., None]}


def inspect_bytes(data: bytes, *, model=None, level: int | None = None, adapt: bool = True,
                  top_k: int = 5, backend: str | None = None,
                  progress: Callable[[int], None] | None = None) -> Inspection:
    """Compress `data` as `Compressor(model, level=level, adapt=adapt).compress` does and
    return each token's cost, rank, entropy and top-k alternatives."""
    if top_k < 0:
        raise InspectError(f"top_k must be 0 or more, not {top_k}")
    data = bytes(data)
    comp = Compressor(model, level=level, backend=backend, adapt=adapt, progress=progress)
    comp.recorder = rec = _Recorder(top_k)
    archive = comp.compress(data)
    header, _ = Header.unpack(archive)
    pieces, _ = comp._plan(data)
    if len(pieces) != len(header.streams):
        raise InspectError("internal error: the archive's streams do not match the segments")
    tok = comp.engine.tok
    names = [_token_name(b) for b in tok.token_bytes]
    stats = rec.by_position()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    records: list[TokenRecord] = []
    segments: list[dict] = []
    offset, lm_pos, lm_payload = 0, 0, 0
    for (seg, ids), entry in zip(pieces, header.streams):
        kind = KIND_NAMES[entry.kind]
        segments.append({"offset": offset, "n_bytes": len(seg), "kind": kind,
                         "payload_bytes": entry.n_coded})
        st = None
        if ids is not None:
            st, lm_pos = stats[lm_pos], lm_pos + 1
        if entry.kind == KIND_LM:
            lm_payload += entry.n_coded
        else:
            ids = tok.encode(seg) if ids is None else ids  # tokens only to show the bytes
        # a float engine's tokenizer may not spell a stored segment: show it by lines
        raws = _line_pieces(seg) if ids is None else [tok.token_bytes[t] for t in ids.tolist()]
        for j, raw in enumerate(raws):
            nb = len(raw)
            r = TokenRecord(offset, nb, decoder.decode(raw), raw,
                            8 * entry.n_coded * nb / len(seg), kind)
            if st is not None:
                r.lm_bits, r.rank = float(st["lm_bits"][j]), int(st["rank"][j])
                r.entropy = float(st["entropy"][j])
                r.top = [(names[i], float(p)) for i, p in
                         zip(st["top_ids"][j].tolist(), st["top_p"][j].tolist())]
                if entry.kind == KIND_LM:
                    r.bits = float(st["bits"][j])
            records.append(r)
            offset += nb
    if records:
        records[-1].text += decoder.decode(b"", final=True)
    container_bytes = len(archive) - header.payload_bytes
    token_bits = sum(r.bits for r in records if r.kind == "lm")
    level = level if model is None else None  # -m wins over a level, as in the CLI
    return Inspection(records, len(data), len(archive), comp.engine.weights.name, level,
                      adapt, segments, 8 * container_bytes, 8 * lm_payload - token_bits,
                      data, archive)


def _line_pieces(seg: bytes, most: int = 64) -> list[bytes]:
    """A segment without tokens, cut after each newline and every `most` bytes."""
    out: list[bytes] = []
    for line in seg.splitlines(keepends=True):
        out += [line[i:i + most] for i in range(0, len(line), most)]
    return out
