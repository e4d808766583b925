"""Compressor and Decompressor: where the model, the coder and the container meet.

The input is cut into segments; each is stored raw, as LZMA, or coded by the language
model as an independent stream (BOS + tokens), whichever is smallest. LM streams advance
together in batches; the encoder evaluates whole chunks in parallel, the decoder steps
token by token, and both take their frequency tables from `IntegerLM.freqs`.

Float engines (`hf:DIR`, `gguf:FILE`; float_engine/) plug in behind the same surface;
they are `stepwise`: the encoder feeds them the decoder's exact inputs and batches, and
their archives (format version 3) record the engine's fingerprint.
"""

from __future__ import annotations

import hashlib
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .coding import counts
from .coding.adapt import Adaptation
from .container import (
    ADAPT_MIX1,
    ADAPT_MIX2,
    ADAPT_NONE,
    KIND_LM,
    KIND_LZMA,
    KIND_NAMES,
    KIND_RAW,
    VERSION_FLOAT,
    Header,
    StreamEntry,
    check_seal,
    seal,
)
from .engine.mix import make_lm
from .errors import (
    ChecksumError,
    FormatError,
    LmpressError,
    ModelNotFoundError,
    OutputLimitError,
)
from .float_engine import is_float_model
from .model.mix import MixedWeights
from .model.registry import load_model, model_for_level
from .model.tokenizer import ByteTokenizer
from .model.weights import IntegerWeights
from .segments import (
    auto_segment_bytes,
    balanced_segments,
    byte_segments,
    group_size,
    most_streams,
)
from .streams import (
    AdaptiveEncoder,
    RemappedRecorder,
    decode_adaptive,
    decode_plain,
    encode_plain,
    table_numbers,
)

Progress = Callable[[int], None]  # called with the number of input bytes just finished
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME,
                  "dict_size": 1 << 20}]
_INCOMPRESSIBLE = 0.97  # zlib ratio above which a segment is stored without the model


class VerifyError(LmpressError):
    """`verify=True`: the archive just made does not decode to the input."""


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
    adapt_hits: tuple[int, ...] = ()  # tokens coded by a match / n-gram hit


class _SplitState:
    """Stream states of a batch cut into row groups, one per thread (`_Engine.threads`)."""

    def __init__(self, parts: list, rows: list[slice]):
        self.parts, self.rows = parts, rows


class _Engine:
    """A loaded model, its tokenizer and engine; shared by Compressor and Decompressor."""

    stepwise = False  # exact integers: any batching, any chunking gives the same tables

    def __init__(self, model, backend: str | None, batch_size: int, threads: int = 1):
        self.weights: IntegerWeights | MixedWeights = load_model(model)
        self.lm = make_lm(self.weights, backend)  # IntegerLM, or MixedLM for a mix
        self.tok = ByteTokenizer(self.weights.tokenizer_json)
        self.cfg = self.weights.config
        self.batch_size = batch_size
        self.weights_digest = bytes.fromhex(self.weights.digest)[:16]
        self.tokenizer_digest = bytes.fromhex(self.tok.digest)[:16]
        # Threads that each run the model on a share of a batch's streams. The tables are
        # the same integers for any split (batch grouping does not matter); numpy's BLAS
        # and the compiled kernels release the GIL, so the shares run side by side.
        self.threads, self._pool = max(1, threads), None

    def new_state(self, batch: int):
        """The state of `batch` streams, split across the threads when there are several."""
        n = min(self.threads, batch)
        if n == 1:
            return self.lm.new_state(batch)
        cuts = [batch * i // n for i in range(n + 1)]
        rows = [slice(a, b) for a, b in zip(cuts, cuts[1:])]
        return _SplitState([self.lm.new_state(r.stop - r.start) for r in rows], rows)

    @property
    def kernels(self):
        """The compiled kernels (engine/kernels.py) when the backend has loaded them."""
        return getattr(self.lm.xp, "kernels", None)

    @property
    def compiled_coding(self) -> bool:
        """Whether the backend asks for the adaptive coder's compiled passes."""
        return self.lm.xp.compiled_coding

    def prepare(self, n_bytes: int) -> None:
        """About `n_bytes` are about to be coded: the backend may load faster kernels."""
        self.lm.xp.prepare(n_bytes)

    def tables(self, st, tokens) -> np.ndarray:
        """THE path from tokens to integer frequency tables, for both directions."""
        if isinstance(st, _SplitState):
            return np.concatenate(self._shares(self.tables, st, tokens), 0)
        return self.lm.xp.to_numpy(self.lm.freqs(self.lm.forward(st, tokens)))

    def numbers(self, st, tokens, want):
        """What the encoder needs of `tables` (streams.table_numbers): the (start, freq)
        of the `want` ids (B, l, k) and the totals; the same integers, by a kernel that
        skips the tables when the engine has one."""
        if isinstance(st, _SplitState):
            shares = self._shares(self.numbers, st, tokens, want)
            return tuple(np.concatenate(a, 0) for a in zip(*shares))
        lm = self.lm
        logits = lm.forward(st, tokens)
        fused = lm.numbers(logits, want)
        if fused is not None:
            return fused
        return table_numbers(lm.xp.to_numpy(lm.freqs(logits)), want)

    def _shares(self, fn, st: _SplitState, *arrays) -> list:
        """fn(part, *rows of arrays) for each thread's share of the streams, side by side."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads, "lmpress-lm")
        jobs = [self._pool.submit(fn, part, *(a[rows] for a in arrays))
                for part, rows in zip(st.parts, st.rows)]
        return [j.result() for j in jobs]


def make_engine(model, backend: str | None, batch_size: int, threads: int = 1):
    """The engine for a model: `hf:DIR`, `gguf:FILE` or a loaded float model give a
    FloatEngine (one thread: its float tables depend on the batch); names, paths and
    IntegerWeights the integer `_Engine`."""
    if is_float_model(model):
        from .float_engine.engine import FloatEngine

        return FloatEngine(model, backend, batch_size)
    return _Engine(model, backend, batch_size, threads)


class Compressor:
    """Reusable compressor: loads the model once, `compress(data)` returns an archive.
    `threads` run the model on shares of each batch of streams side by side; the archive
    is the same for any number.

    >>> from lmpress.model.registry import SHIPPED  # doctest: +SKIP
    """

    def __init__(self, model: str | IntegerWeights | None = None, *, level: int | None = None,
                 backend: str | None = None, batch_size: int = 32,
                 segment_bytes: int | None = None, fallback: bool = True,
                 adapt: bool = True, progress: Progress | None = None,
                 verify: bool = False, threads: int = 1):
        self.engine = make_engine(model if model is not None else model_for_level(level),
                                  backend, batch_size, threads)
        self.verify = verify  # decode every archive right away; VerifyError if it differs
        self.segment_bytes = segment_bytes
        self.fallback = fallback  # False: always code with the model (tests, measurements)
        self.adapt = adapt  # mix the LM with online adaptive models (coding/adapt.py)
        self.progress = progress or (lambda n: None)
        self.stats = CodingStats()
        self.recorder = None  # `lmpress inspect` sets one to see per-token costs (streams.py)

    def compress(self, data: bytes) -> bytes:
        data = bytes(data)
        self.stats = CodingStats(n_bytes_in=len(data))
        e = self.engine
        e.prepare(len(data))
        pieces, group = self._plan(data)
        stored = [self._stored(seg) for seg, _ in pieces]  # (kind, payload) without the LM
        lm_idx = [i for i, (_, ids) in enumerate(pieces) if ids is not None]
        coded: dict[int, tuple[bytes, float] | None] = {}
        adapt = ADAPT_NONE
        if self.adapt:  # with successor counts where the vocabulary allows their table
            adapt = ADAPT_MIX2 if e.cfg.vocab_size <= counts.MAX_VOCAB else ADAPT_MIX1
            ae = AdaptiveEncoder(e, group, sum(len(pieces[i][1]) for i in lm_idx),
                                 self.progress, self.recorder, adapt == ADAPT_MIX2)
            for g in range(0, len(lm_idx), group):
                members = lm_idx[g:g + group]
                res = ae.encode_group([pieces[i][1] for i in members],
                                      [len(stored[i][1]) for i in members], self.fallback)
                coded.update(zip(members, res))
            self.stats.adapt_hits = tuple(int(h) for h in ae.ad.hits)
        else:
            coded = dict(zip(lm_idx, encode_plain(e, [pieces[i][1] for i in lm_idx],
                                                  self.progress, self.recorder)))
            if e.stepwise:
                coded = self._recode_final_batches(pieces, stored, lm_idx, coded)
        entries, payloads = [], []
        for i, (seg, ids) in enumerate(pieces):
            (kind, payload), n_tokens = stored[i], 0
            lm = coded.get(i)
            forced = lm is not None and len(lm) > 2  # must stay LM (stepwise batches)
            if lm is not None and (len(lm[0]) < len(payload) or not self.fallback or forced):
                kind, payload, n_tokens = KIND_LM, lm[0], len(ids)
                self.stats.estimate_bits += lm[1]
                self.stats.lm_bytes_in += len(seg)
                self.stats.lm_bytes_out += len(payload)
                self.stats.n_tokens += n_tokens
            elif ids is not None and self.adapt:
                n_tokens = len(ids)  # stored otherwise, but part of the adaptive history
            if ids is None:
                self.progress(len(seg))
            name = KIND_NAMES[kind]
            self.stats.kinds[name] = self.stats.kinds.get(name, 0) + 1
            entries.append(StreamEntry(kind, len(seg), n_tokens, len(payload)))
            payloads.append(payload)
        float_record = {}  # float engines: format version 3 with the engine's fingerprint
        if e.stepwise:
            float_record = {"version": VERSION_FLOAT, "engine": e.kind,
                            "fingerprint": e.fingerprint_bytes}
        header = Header(e.weights.name, e.weights_digest, e.tokenizer_digest, len(data),
                        checksum(data), tuple(entries), adapt,
                        group if self.adapt or e.stepwise else 0, **float_record)
        out = seal(header.pack() + b"".join(payloads))
        self.stats.n_bytes_out = len(out)
        if self.verify:
            self._verify(data, out)
        return out

    def _recode_final_batches(self, pieces, stored, lm_idx, coded):
        """Plain streams of a stepwise engine: the decoder batches only the streams kept
        as LM, so when fallback dropped some, code the kept ones again in those very
        batches; they stay LM whatever their new size (marked by a third element)."""
        keep = [i for i in lm_idx if len(coded[i][0]) < len(stored[i][1]) or not self.fallback]
        if keep == lm_idx:
            return coded
        rec = None
        if self.recorder is not None:
            rec = RemappedRecorder(self.recorder, [lm_idx.index(i) for i in keep])
        again = encode_plain(self.engine, [pieces[i][1] for i in keep], lambda n: None, rec)
        return {i: (*res, "forced") for i, res in zip(keep, again)}

    def _verify(self, data: bytes, archive: bytes) -> None:
        dec = Decompressor(batch_size=self.engine.batch_size)
        dec.engine = self.engine  # the loaded model, not a second copy
        try:
            back = dec.decompress(archive)
        except FormatError as err:
            raise VerifyError(f"round trip failed: the archive just made does not decode "
                              f"({err}); it was not written") from None
        if back != data:
            at = next((k for k, (x, y) in enumerate(zip(data, back)) if x != y),
                      min(len(data), len(back)))
            raise VerifyError(f"round trip failed: the archive just made decodes to other "
                              f"bytes (first difference at byte {at}); it was not written")

    def _plan(self, data: bytes) -> tuple[list[tuple[bytes, np.ndarray | None]], int]:
        """The segments with their token ids (None: stored without the model), and the
        streams per lockstep group. Text is cut into segments of balanced token counts
        (segments.py); an explicit `segment_bytes`, float engines (whose decoders batch
        like their encoders) and input with incompressible parts are cut by bytes, into
        groups of the batch size."""
        e = self.engine
        size = self.segment_bytes or auto_segment_bytes(len(data), e.batch_size)
        by_bytes = list(byte_segments(data, size))
        if self.segment_bytes or e.stepwise or any(map(self._incompressible, by_bytes)):
            return list(self._pieces(by_bytes)), e.batch_size
        pieces = list(self._pieces(balanced_segments(data, e.tok, e.cfg.max_positions,
                                                     e.batch_size)))
        configs = getattr(e.weights, "configs", [e.cfg])  # a mix's parts each keep rings
        return pieces, group_size(len(pieces), e.batch_size, most_streams(configs,
                                                                          e.batch_size))

    def _incompressible(self, seg: bytes) -> bool:
        return self.fallback and len(zlib.compress(seg, 1)) > _INCOMPRESSIBLE * len(seg)

    def _pieces(self, segments: list[bytes]):
        """(segment, token ids or None for segments stored without the model). A segment
        of more tokens than the model's positions is halved until it fits, so that every
        stream's tokens are `tokenizer.encode` of its own bytes."""
        todo = segments[::-1]
        while todo:
            seg = todo.pop()
            if self._incompressible(seg):
                yield seg, None
                continue
            ids = self.engine.tok.encode(seg)
            if ids is None:  # a float model's tokenizer cannot spell it exactly
                yield seg, None
            elif len(ids) <= self.engine.cfg.max_positions:
                yield seg, ids
            else:
                todo += [seg[len(seg) // 2:], seg[:len(seg) // 2]]

    def _stored(self, seg: bytes) -> tuple[int, bytes]:
        if len(seg) > 64 and self.fallback:
            packed = lzma.compress(seg, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
            if len(packed) < len(seg):
                return KIND_LZMA, packed
        return KIND_RAW, seg


class Decompressor:
    """Reusable decompressor; the model is loaded on first use from the archive's name
    (or given explicitly) and kept for later calls. Archives of float engines need the
    model given (`hf:DIR`, `gguf:FILE`, or a loaded one) and a matching engine
    fingerprint, unless `force`; a checksum failure is an error either way. `threads`:
    as for Compressor."""

    def __init__(self, model: str | IntegerWeights | None = None, *,
                 backend: str | None = None, batch_size: int = 32,
                 progress: Progress | None = None, force: bool = False, threads: int = 1):
        self.model, self.backend, self.batch_size = model, backend, batch_size
        self.threads = threads
        self.progress = progress or (lambda n: None)
        self.force = force
        self.engine = None  # _Engine or FloatEngine, loaded on first use

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

    def _engine_for(self, header: Header):
        if header.engine:
            from .float_engine.engine import engine_for_archive

            if self.engine is None or not self.engine.stepwise:
                self.engine = engine_for_archive(header, self.model, self.backend,
                                                 self.batch_size)
            self.engine.check(header, self.force)
            return self.engine
        if (self.engine is not None and self.engine.stepwise) or (
                self.engine is None and is_float_model(self.model)):
            raise ModelNotFoundError(
                f"this archive was coded by the built-in model {header.model_name!r}, not by "
                f"{getattr(self.model, 'name', self.model)}; decode it without -m, or with "
                "-m naming that model")
        if self.engine is None or self.engine.weights.name != header.model_name:
            try:
                self.engine = _Engine(self.model if self.model is not None
                                      else header.model_name, self.backend, self.batch_size,
                                      self.threads)
            except ModelNotFoundError as e:
                raise ModelNotFoundError(
                    f"this archive needs model {header.model_name!r} (weights digest "
                    f"{header.weights_digest.hex()}), which is not installed; install the "
                    "lmpress version that made it, or pass the model file with -m") from e
        e = self.engine
        if (e.weights_digest, e.tokenizer_digest) != (header.weights_digest,
                                                      header.tokenizer_digest):
            fix = ("decode it without -m, or with -m naming that model"
                   if e.weights.name != header.model_name else
                   "install the lmpress version that made the archive")
            raise ModelNotFoundError(
                f"this archive needs model {header.model_name!r} with weights digest "
                f"{header.weights_digest.hex()}, but the model here ({e.weights.name}) has "
                f"{e.weights_digest.hex()}; {fix}")
        return e

    def _decode_member(self, header: Header, payload: bytes) -> bytes:
        chunks: list[bytes | None] = []
        bodies: list[bytes] = []
        pos = 0
        for s in header.streams:
            body = payload[pos:pos + s.n_coded]
            pos += s.n_coded
            bodies.append(body)
            chunks.append(body if s.kind == KIND_RAW else _unlzma(body, s.n_bytes)
                          if s.kind == KIND_LZMA else None)
            if s.kind != KIND_LM:
                self.progress(s.n_bytes)
        coded = [i for i, s in enumerate(header.streams)
                 if s.kind == KIND_LM or (header.adapt and s.n_tokens)]
        if coded:
            e = self._engine_for(header)
            e.prepare(header.original_size)
            for i in coded:
                n = header.streams[i].n_tokens
                if n > e.cfg.max_positions or n == 0:
                    raise FormatError("corrupt archive: an LM stream has an impossible "
                                      "token count; the file is damaged")
            for i, toks in self._decode_streams(e, header, coded, chunks, bodies):
                text = e.tok.decode(toks.tolist())
                if len(text) != header.streams[i].n_bytes:
                    raise ChecksumError("decoded data fails the archive's stream table; "
                                        "the archive is damaged or was made by a "
                                        "different model")
                chunks[i] = text
        out = b"".join(chunks)  # type: ignore[arg-type]
        if len(out) != header.original_size or checksum(out) != header.checksum:
            raise ChecksumError("decoded data fails the archive's checksum; the archive is "
                                "damaged or was made by a different model — nothing was "
                                "written")
        return out

    def _decode_streams(self, e: _Engine, header: Header, coded: list[int],
                        chunks: list, bodies: list[bytes]):
        """Yield (stream index, tokens) of every LM-coded stream."""
        streams = header.streams
        if not header.adapt:
            yield from decode_plain(e, [(i, streams[i].n_tokens, bodies[i]) for i in coded],
                                    self.progress, header.group or e.batch_size)
            return
        vocab = None
        if header.adapt == ADAPT_MIX2:
            vocab = e.cfg.vocab_size
            if vocab > counts.MAX_VOCAB:
                raise FormatError(f"corrupt archive: adaptation 2 with a vocabulary of "
                                  f"{vocab} tokens (at most {counts.MAX_VOCAB})")
        ad = Adaptation(e.cfg.bos_id, sum(streams[i].n_tokens for i in coded), vocab)
        for g in range(0, len(coded), header.group):
            group = coded[g:g + header.group]
            jobs = []
            for i in group:
                known = None
                if streams[i].kind != KIND_LM:
                    known = e.tok.encode(chunks[i])
                    if known is None or len(known) != streams[i].n_tokens:
                        raise FormatError("corrupt archive: a stored stream's token count "
                                          "does not match its table entry")
                jobs.append((streams[i].n_tokens, known, bodies[i]))
            toks = decode_adaptive(e, ad, jobs, self.progress)
            for i, t in zip(group, toks):
                if streams[i].kind == KIND_LM:
                    yield i, t


def _unlzma(body: bytes, n_bytes: int) -> bytes:
    d = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS[:1])
    try:
        out = d.decompress(body, max_length=n_bytes + 1)
    except lzma.LZMAError as e:
        raise FormatError(f"corrupt archive: an LZMA stream fails to decode ({e})") from e
    if len(out) != n_bytes:
        raise FormatError("corrupt archive: an LZMA stream has the wrong length")
    return out


def compress(data: bytes, *, model=None, level: int | None = None,
             quality: int = 100) -> bytes:
    """One-shot shortcut for `Compressor(model, level=level).compress(data)`. A `quality`
    below 100 is lossy (docs/LOSSY.md): the archive decodes to a reconstruction that the
    model finds cheaper, within that quality's bound; `lmpress.lossy.compress` also
    returns the reconstruction and its distortion figures."""
    if quality != 100:
        from .lossy import compress as lossy_compress

        return lossy_compress(data, quality, model=model, level=level, lossless=False,
                              semantic=False).archive
    return Compressor(model, level=level).compress(data)


def decompress(data: bytes, *, model=None, max_output_size: int | None = None) -> bytes:
    """One-shot shortcut for `Decompressor(model).decompress(data, max_output_size)`."""
    return Decompressor(model).decompress(data, max_output_size)

