"""The .lmp archive container: header, stream table, payloads, archive CRC (docs/FORMAT.md).

Everything here treats its input as hostile: lengths are checked against the bytes that
are actually present before anything is allocated.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from .errors import FormatError

MAGIC = b"\x89LMP"
VERSION = 2  # 2 added online adaptation (adapt, group); 1 is still read
VERSION_FLOAT = 3  # 2 + an engine record; written only by float engines (hf:, gguf:)
ENGINE_INTEGER = 0  # the built-in integer engine (versions 1 and 2)
ENGINE_KINDS = {1: "hf", 2: "gguf"}  # version 3's engine byte (float_engine/__init__.py)
MAX_FINGERPRINT = 4096  # bytes of the engine fingerprint (UTF-8 JSON)
# how LM streams are coded (docs/FORMAT.md): alone, mixed with online adaptive models, and
# these with order-1 counts mixed into the LM's tables
ADAPT_NONE, ADAPT_MIX1, ADAPT_MIX2 = 0, 1, 2
KIND_RAW, KIND_LM, KIND_LZMA = 0, 1, 2
KIND_NAMES = {KIND_RAW: "raw", KIND_LM: "lm", KIND_LZMA: "lzma"}
DIGEST_BYTES = 16


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = data, pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError("truncated archive: it ends inside its header; "
                              "the file is incomplete — copy it again")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def varint(self) -> int:
        n = shift = 0
        for _ in range(10):
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n
        raise FormatError("corrupt archive: a length field is too long; the file is damaged")


@dataclass(frozen=True)
class StreamEntry:
    kind: int  # KIND_RAW, KIND_LM or KIND_LZMA
    n_bytes: int  # original bytes this stream decodes to
    n_tokens: int  # tokens of LM streams and of adaptive streams stored otherwise, else 0
    n_coded: int  # payload bytes in the archive


@dataclass(frozen=True)
class Header:
    model_name: str
    weights_digest: bytes  # first 16 bytes of the model file's sha256
    tokenizer_digest: bytes  # first 16 bytes of the tokenizer's sha256
    original_size: int
    checksum: bytes  # blake2b-128 of the original bytes
    streams: tuple[StreamEntry, ...]
    adapt: int = ADAPT_NONE  # ADAPT_MIX1/2: LM streams mixed with online adaptive models
    group: int = 0  # adaptive streams advance in lockstep groups of this many
    version: int = VERSION
    engine: int = ENGINE_INTEGER  # version 3: ENGINE_KINDS key of the float engine
    fingerprint: bytes = b""  # version 3: the float engine's fingerprint, UTF-8 JSON

    def pack(self) -> bytes:
        name = self.model_name.encode("utf-8")
        out = bytearray(MAGIC + bytes([self.version, 0]))
        out += bytes([len(name)]) + name + self.weights_digest + self.tokenizer_digest
        out += struct.pack("<Q", self.original_size) + self.checksum
        if self.version >= 2:
            out += bytes([self.adapt]) + _varint(self.group)
        if self.version >= 3:
            out += bytes([self.engine]) + _varint(len(self.fingerprint)) + self.fingerprint
        out += _varint(len(self.streams))
        for s in self.streams:
            out += bytes([s.kind]) + _varint(s.n_bytes) + _varint(s.n_tokens) + _varint(s.n_coded)
        return bytes(out)

    @classmethod
    def unpack(cls, data: bytes) -> tuple[Header, int]:
        """Parse and validate; returns the header and the offset of the first payload."""
        if len(data) < 4 or data[:4] != MAGIC:
            raise FormatError("not an lmpress archive (bad magic bytes); "
                              "check the file name, or compress it first")
        r = _Reader(data, 4)
        version, _flags = r.take(2)
        if not 1 <= version <= VERSION_FLOAT:
            raise FormatError(f"archive format version {version} is newer than this lmpress "
                              f"(reads up to {VERSION_FLOAT}); upgrade lmpress")
        name_len = r.take(1)[0]
        try:
            name = r.take(name_len).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError("corrupt archive: the model name is not text") from e
        wd, td = r.take(DIGEST_BYTES), r.take(DIGEST_BYTES)
        (size,) = struct.unpack("<Q", r.take(8))
        checksum = r.take(16)
        adapt, group = (r.take(1)[0], r.varint()) if version >= 2 else (ADAPT_NONE, 0)
        if adapt not in (ADAPT_NONE, ADAPT_MIX1, ADAPT_MIX2):
            raise FormatError(f"archive uses adaptation method {adapt}, unknown to this "
                              "lmpress; upgrade lmpress")
        if (adapt or version >= 3) and not 1 <= group <= 4096:
            raise FormatError("corrupt archive: impossible stream group size")
        engine, fingerprint = ENGINE_INTEGER, b""
        if version >= 3:
            engine, n_fp = r.take(1)[0], r.varint()
            if engine not in ENGINE_KINDS:
                raise FormatError(f"archive was coded by engine kind {engine}, unknown to "
                                  "this lmpress; upgrade lmpress")
            if n_fp > MAX_FINGERPRINT:
                raise FormatError("corrupt archive: its engine fingerprint is too long")
            fingerprint = r.take(n_fp)
        n_streams = r.varint()
        if n_streams > (len(data) - r.pos) // 4 or n_streams > size:
            raise FormatError(f"truncated or corrupt archive: its table lists {n_streams} "
                              "streams that cannot fit in the file; copy it again")
        streams = []
        for _ in range(n_streams):
            kind = r.take(1)[0]
            if kind not in KIND_NAMES:
                raise FormatError(f"corrupt archive: unknown stream kind {kind}")
            streams.append(StreamEntry(kind, r.varint(), r.varint(), r.varint()))
        header = cls(name, wd, td, size, checksum, tuple(streams), adapt, group, version,
                     engine, fingerprint)
        header._validate(len(data) - r.pos - 4)
        return header, r.pos

    @property
    def payload_bytes(self) -> int:
        return sum(s.n_coded for s in self.streams)

    def _validate(self, available: int) -> None:
        if sum(s.n_bytes for s in self.streams) != self.original_size:
            raise FormatError("corrupt archive: stream sizes do not add up to the original "
                              "size; the file is damaged")
        if self.payload_bytes > available:
            raise FormatError("truncated archive: the payload is shorter than its stream "
                              "table says; the file is incomplete — copy it again")
        for s in self.streams:
            if s.n_bytes == 0 or s.n_tokens > s.n_bytes:
                raise FormatError("corrupt archive: impossible stream table entry")
            if s.kind != KIND_LM and s.n_tokens and not self.adapt:
                raise FormatError("corrupt archive: impossible stream table entry")
            if s.kind == KIND_RAW and s.n_coded != s.n_bytes:
                raise FormatError("corrupt archive: stored stream has the wrong length")


def seal(body: bytes) -> bytes:
    """Append the CRC-32 of everything before it."""
    return body + struct.pack("<I", zlib.crc32(body))


def check_seal(member: bytes) -> None:
    """Verify the CRC-32 that ends one archive member."""
    (crc,) = struct.unpack("<I", member[-4:])
    if zlib.crc32(member[:-4]) != crc:
        raise FormatError("corrupt archive: CRC mismatch (the file was truncated or "
                          "damaged); restore it from a good copy")
