"""Compressor and Decompressor: where the model, the coder and the container meet.

The input is cut into segments; each is stored raw, as LZMA, or coded by the language
model as an independent stream (BOS + tokens), whichever is smallest. LM streams advance
together in batches; the encoder evaluates whole chunks in parallel, the decoder steps
token by token, and both take their frequency tables from `IntegerLM.freqs`.
"""

from __future__ import annotations

import hashlib
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .coding.rangecoder import RangeDecoder, RangeEncoder
from .container import (
    KIND_LM,
    KIND_LZMA,
    KIND_NAMES,
    KIND_RAW,
    Header,
    StreamEntry,
    check_seal,
    seal,
)
from .engine.transformer import IntegerLM
from .errors import ChecksumError, FormatError, ModelNotFoundError, OutputLimitError
from .model.registry import load_model, model_for_level
from .model.tokenizer import ByteTokenizer
from .model.weights import IntegerWeights

Progress = Callable[[int], None]  # called with the number of input bytes just finished
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME,
                  "dict_size": 1 << 20}]
_INCOMPRESSIBLE = 0.97  # zlib ratio above which a segment is stored without the model


def checksum(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class CodingStats:
    """Figures of the last call: sizes, the model's own estimate, and stream kinds."""

    n_bytes_in: int = 0
    n_bytes_out: int = 0
    estimate_bits: float = 0.0  # sum of -log2 p over LM-coded tokens (model's estimate)
    lm_bytes_in: int = 0  # original bytes in LM streams
    lm_bytes_out: int = 0  # their coded bytes
    n_tokens: int = 0
    kinds: dict[str, int] = field(default_factory=dict)  # stream kind -> count


class _Engine:
    """A loaded model, its tokenizer and engine; shared by Compressor and Decompressor."""

    def __init__(self, model, backend: str | None, batch_size: int):
        self.weights: IntegerWeights = load_model(model)
        self.lm = IntegerLM(self.weights, backend)
        self.tok = ByteTokenizer(self.weights.tokenizer_json)
        self.cfg = self.weights.config
        self.batch_size = batch_size
        self.weights_digest = bytes.fromhex(self.weights.digest)[:16]
        self.tokenizer_digest = bytes.fromhex(self.tok.digest)[:16]

    def tables(self, st, tokens) -> np.ndarray:
        """THE path from tokens to integer frequency tables, for both directions."""
        return self.lm.xp.to_numpy(self.lm.freqs(self.lm.forward(st, tokens)))


class Compressor:
    """Reusable compressor: loads the model once, `compress(data)` returns an archive.

    >>> from lmpress.model.registry import SHIPPED  # doctest: +SKIP
    """

    def __init__(self, model: str | IntegerWeights | None = None, *, level: int | None = None,
                 backend: str | None = None, batch_size: int = 32,
                 segment_bytes: int | None = None, fallback: bool = True,
                 progress: Progress | None = None):
        self.engine = _Engine(model if model is not None else model_for_level(level),
                              backend, batch_size)
        self.segment_bytes = segment_bytes
        self.fallback = fallback  # False: always code with the model (tests, measurements)
        self.progress = progress or (lambda n: None)
        self.stats = CodingStats()

    def compress(self, data: bytes) -> bytes:
        data = bytes(data)
        self.stats = CodingStats(n_bytes_in=len(data))
        pieces: list[tuple[bytes, np.ndarray | None]] = []
        size = self.segment_bytes or _auto_segment_bytes(len(data), self.engine.batch_size)
        for seg in _segments(data, size):
            if self.fallback and len(zlib.compress(seg, 1)) > _INCOMPRESSIBLE * len(seg):
                pieces.append((seg, None))
                continue
            ids = self.engine.tok.encode(seg)
            n = self.engine.cfg.max_positions
            for i in range(0, len(ids), n):
                part = ids[i:i + n]
                pieces.append((self.engine.tok.decode(part), part))
        lm_idx = [i for i, (_, ids) in enumerate(pieces) if ids is not None]
        coded = self._encode_streams([pieces[i][1] for i in lm_idx])
        lm_payload = dict(zip(lm_idx, coded))
        entries, payloads = [], []
        for i, (seg, ids) in enumerate(pieces):
            kind, payload, n_tokens = KIND_RAW, seg, 0
            if len(seg) > 64 and self.fallback:
                packed = lzma.compress(seg, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
                if len(packed) < len(payload):
                    kind, payload = KIND_LZMA, packed
            lm_better = i in lm_payload and len(lm_payload[i][0]) < len(payload)
            if i in lm_payload and (lm_better or not self.fallback):
                kind, payload, n_tokens = KIND_LM, lm_payload[i][0], len(ids)
                self.stats.estimate_bits += lm_payload[i][1]
                self.stats.lm_bytes_in += len(seg)
                self.stats.lm_bytes_out += len(payload)
                self.stats.n_tokens += n_tokens
            if ids is None:
                self.progress(len(seg))
            name = KIND_NAMES[kind]
            self.stats.kinds[name] = self.stats.kinds.get(name, 0) + 1
            entries.append(StreamEntry(kind, len(seg), n_tokens, len(payload)))
            payloads.append(payload)
        e = self.engine
        header = Header(e.weights.name, e.weights_digest, e.tokenizer_digest, len(data),
                        checksum(data), tuple(entries))
        out = seal(header.pack() + b"".join(payloads))
        self.stats.n_bytes_out = len(out)
        return out

    def _encode_streams(self, streams: list[np.ndarray]) -> list[tuple[bytes, float]]:
        """Range-code each token array; returns (payload, estimated bits) per stream."""
        e, results = self.engine, [None] * len(streams)
        order = sorted(range(len(streams)), key=lambda i: -len(streams[i]))
        for g in range(0, len(order), e.batch_size):
            group = order[g:g + e.batch_size]
            B, L = len(group), len(streams[group[0]])
            tgt = np.zeros((B, L), dtype=np.int64)
            for b, i in enumerate(group):
                tgt[b, :len(streams[i])] = streams[i]
            inp = np.concatenate([np.full((B, 1), e.cfg.bos_id), tgt[:, :-1]], axis=1)
            chunk = max(1, min(e.cfg.window, (1 << 21) // (B * e.cfg.vocab_size)))
            st = e.lm.new_state(B)
            starts, freqs, totals = [], [], []
            for c in range(0, L, chunk):
                f = e.tables(st, inp[:, c:c + chunk])  # (B, l, V)
                t = tgt[:, c:c + chunk, None]
                fr = np.take_along_axis(f, t, -1)[..., 0]
                cum = np.cumsum(f, -1)
                starts.append(np.take_along_axis(cum, t, -1)[..., 0] - fr)
                freqs.append(fr)
                totals.append(cum[..., -1])
                self.progress(int(e.tok.n_bytes[tgt[:, c:c + chunk]].sum()))
            starts, freqs, totals = (np.concatenate(a, 1) for a in (starts, freqs, totals))
            for b, i in enumerate(group):
                n = len(streams[i])
                enc = RangeEncoder()
                for s, f_, t_ in zip(starts[b, :n].tolist(), freqs[b, :n].tolist(),
                                     totals[b, :n].tolist()):
                    enc.encode(s, f_, t_)
                bits = float(-np.log2(freqs[b, :n] / totals[b, :n]).sum())
                results[i] = (enc.finish(), bits)
        return results


class Decompressor:
    """Reusable decompressor; the model is loaded on first use from the archive's name
    (or given explicitly) and kept for later calls."""

    def __init__(self, model: str | IntegerWeights | None = None, *,
                 backend: str | None = None, batch_size: int = 32,
                 progress: Progress | None = None):
        self.model, self.backend, self.batch_size = model, backend, batch_size
        self.progress = progress or (lambda n: None)
        self.engine: _Engine | None = None

    def decompress(self, data: bytes, max_output_size: int | None = None) -> bytes:
        """Decode every archive member in `data`; verify each checksum before returning."""
        data, out, pos = bytes(data), bytearray(), 0
        if not data:
            raise FormatError("empty input is not an lmpress archive; check the file name")
        while pos < len(data):
            header, off = Header.unpack(data[pos:])
            end = pos + off + header.payload_bytes + 4
            check_seal(data[pos:end])
            if max_output_size is not None and len(out) + header.original_size > max_output_size:
                raise OutputLimitError(
                    f"archive decodes to {len(out) + header.original_size} bytes, more than "
                    f"the allowed {max_output_size}; raise max_output_size if you trust it")
            out += self._decode_member(header, data[pos + off:end - 4])
            pos = end
        return bytes(out)

    def _engine_for(self, header: Header) -> _Engine:
        if self.engine is None or self.engine.weights.name != header.model_name:
            try:
                self.engine = _Engine(self.model if self.model is not None
                                      else header.model_name, self.backend, self.batch_size)
            except ModelNotFoundError as e:
                raise ModelNotFoundError(
                    f"this archive needs model {header.model_name!r} (weights digest "
                    f"{header.weights_digest.hex()}), which is not installed; install the "
                    "lmpress version that made it, or pass the model file with -m") from e
        e = self.engine
        if (e.weights_digest, e.tokenizer_digest) != (header.weights_digest,
                                                      header.tokenizer_digest):
            raise ModelNotFoundError(
                f"this archive needs model {header.model_name!r} with weights digest "
                f"{header.weights_digest.hex()}, but the model here has "
                f"{e.weights_digest.hex()}; install the lmpress version that made the archive")
        return e

    def _decode_member(self, header: Header, payload: bytes) -> bytes:
        chunks: list[bytes | None] = []
        lm_jobs: list[tuple[int, StreamEntry, bytes]] = []
        pos = 0
        for s in header.streams:
            body = payload[pos:pos + s.n_coded]
            pos += s.n_coded
            if s.kind == KIND_RAW:
                chunks.append(body)
            elif s.kind == KIND_LZMA:
                chunks.append(_unlzma(body, s.n_bytes))
            else:
                lm_jobs.append((len(chunks), s, body))
                chunks.append(None)
            if s.kind != KIND_LM:
                self.progress(s.n_bytes)
        if lm_jobs:
            engine = self._engine_for(header)
            for idx, text in self._decode_streams(engine, lm_jobs):
                chunks[idx] = text
        out = b"".join(chunks)  # type: ignore[arg-type]
        if len(out) != header.original_size or checksum(out) != header.checksum:
            raise ChecksumError("decoded data fails the archive's checksum; the archive is "
                                "damaged or was made by a different model — nothing was "
                                "written")
        return out

    def _decode_streams(self, e: _Engine, jobs: list[tuple[int, StreamEntry, bytes]]):
        for s in (j[1] for j in jobs):
            if s.n_tokens > e.cfg.max_positions or s.n_tokens == 0:
                raise FormatError("corrupt archive: an LM stream has an impossible token "
                                  "count; the file is damaged")
        for g in range(0, len(jobs), e.batch_size):
            group = jobs[g:g + e.batch_size]
            B = len(group)
            n = [s.n_tokens for _, s, _ in group]
            decs = [RangeDecoder(body) for _, _, body in group]
            toks = np.zeros((B, max(n)), dtype=np.int64)
            cur = np.full((B, 1), e.cfg.bos_id, dtype=np.int64)
            st = e.lm.new_state(B)
            for t in range(max(n)):
                f = e.tables(st, cur)[:, 0]  # (B, V)
                cum = np.cumsum(f, -1)
                for b in range(B):
                    if t >= n[b]:
                        continue
                    v = decs[b].target(int(cum[b, -1]))
                    k = int(np.searchsorted(cum[b], v, side="right"))
                    decs[b].advance(int(cum[b, k] - f[b, k]), int(f[b, k]))
                    toks[b, t] = cur[b, 0] = k
                self.progress(int(e.tok.n_bytes[toks[:, t]].sum()))
            for b, (idx, s, _) in enumerate(group):
                text = e.tok.decode(toks[b, :n[b]].tolist())
                if len(text) != s.n_bytes or decs[b].overrun() > 16:
                    raise ChecksumError("decoded data fails the archive's stream table; the "
                                        "archive is damaged or was made by a different model")
                yield idx, text


def _unlzma(body: bytes, n_bytes: int) -> bytes:
    d = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS[:1])
    try:
        out = d.decompress(body, max_length=n_bytes + 1)
    except lzma.LZMAError as e:
        raise FormatError(f"corrupt archive: an LZMA stream fails to decode ({e})") from e
    if len(out) != n_bytes:
        raise FormatError("corrupt archive: an LZMA stream has the wrong length")
    return out


def _auto_segment_bytes(n_bytes: int, batch_size: int) -> int:
    """Segments of 16 KiB, made smaller (down to 4 KiB) for short inputs so that a batch
    of streams still advances together."""
    return max(4096, min(16384, -(-n_bytes // batch_size)))


def _segments(data: bytes, size: int):
    """Cut into pieces of about `size` bytes, preferring to end just after a newline."""
    pos = 0
    while pos < len(data):
        end = min(len(data), pos + size)
        if end < len(data):
            nl = data.rfind(b"\n", pos + size * 3 // 4, end)
            end = nl + 1 if nl >= 0 else end
        yield data[pos:end]
        pos = end


def compress(data: bytes, *, model=None, level: int | None = None) -> bytes:
    """One-shot shortcut for `Compressor(model, level=level).compress(data)`."""
    return Compressor(model, level=level).compress(data)


def decompress(data: bytes, *, model=None, max_output_size: int | None = None) -> bytes:
    """One-shot shortcut for `Decompressor(model).decompress(data, max_output_size)`."""
    return Decompressor(model).decompress(data, max_output_size)

