"""`LmpressFile` and `open()`: archives as file objects, in the manner of `gzip.open`.

Writing buffers the input and emits one complete archive member each time `member_bytes`
have accumulated, on `flush()` and on `close()`; reading decodes member by member, so
memory stays bounded by one member whatever the size of the file. A file is a plain
concatenation of members, so appending ("a") adds members and `cat a.lmp b.lmp` is valid.

With a `pool` (cluster/: worker processes or a Ray cluster) members are coded elsewhere,
up to two per worker in flight, and written in input order: the same bytes as without.
"""

from __future__ import annotations

import builtins
import io
import os
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO

from .codec import CodingStats, Compressor, Decompressor, Progress
from .container import MAGIC, Header
from .errors import FormatError, OutputLimitError

# input bytes per archive member when writing: the unit of parallel work. 512 KiB gives
# a 2 MB file four members, enough for two workers to share evenly (text varies in cost);
# each member starts its online adaptation afresh, which costs ratio mainly on inputs
# that repeat across megabytes (benchmarks/parallel.py: +1.0% against 1 MiB members)
DEFAULT_MEMBER_BYTES = 1 << 19
_READ_CHUNK = 1 << 16
_MODES = {"r": "rb", "rb": "rb", "w": "wb", "wb": "wb", "x": "xb", "xb": "xb",
          "a": "ab", "ab": "ab"}


def iter_members(fp: BinaryIO) -> Iterator[tuple[Header, bytes]]:
    """Yield `(header, member_bytes)` for each archive member in `fp`, reading only as far
    as the member ends. Raises FormatError on empty, foreign, truncated or corrupt input;
    members are parsed but not decoded (the caller checks the CRC or decodes)."""
    buf, at_eof, n_members = bytearray(), False, 0

    def fill(n_wanted: int) -> None:
        nonlocal at_eof
        while len(buf) < n_wanted and not at_eof:
            chunk = fp.read(max(_READ_CHUNK, n_wanted - len(buf)))
            at_eof = not chunk
            buf.extend(chunk or b"")

    while True:
        fill(_READ_CHUNK)
        if not buf:
            if n_members == 0:
                raise FormatError("empty input is not an lmpress archive; check the file name")
            return
        if n_members and buf[:len(MAGIC)] != MAGIC[:len(buf)]:
            raise FormatError(f"unexpected bytes after archive member {n_members}: not an "
                              "lmpress member; the file is damaged or has data appended")
        while True:  # grow the buffer until the header and its payload are all present
            try:
                header, offset = Header.unpack(bytes(buf))
                break
            except FormatError:
                if at_eof or buf[:len(MAGIC)] != MAGIC[:len(buf)]:
                    raise
                fill(2 * len(buf))
        size = offset + header.payload_bytes + 4
        member = bytes(buf[:size])
        del buf[:size]
        n_members += 1
        yield header, member


class LmpressFile(io.BufferedIOBase):
    """A file object that compresses on write and decompresses on read.

    `filename` is a path or an existing binary file object (not closed by `close()`).
    `model`, `level` and `backend` are passed to Compressor / Decompressor;
    `max_output_size` bounds the total decoded bytes (OutputLimitError beyond it).
    `verify` (writing) decodes each member right after coding it (codec.VerifyError if it
    differs); `force` (reading) decodes a float engine's archive despite a different
    engine fingerprint (docs/FLOAT_ENGINES.md). `pool` (cluster.LocalPool or RayPool)
    codes the members on its workers instead; it was made with the model and settings,
    so `model`, `level`, `backend`, `adapt`, `verify` and `force` are not used then.
    `threads` (without a pool) run the model on shares of each batch of streams.
    """

    def __init__(self, filename: str | bytes | os.PathLike | BinaryIO, mode: str = "rb", *,
                 model=None, level: int | None = None, backend: str | None = None,
                 max_output_size: int | None = None,
                 member_bytes: int = DEFAULT_MEMBER_BYTES, progress: Progress | None = None,
                 adapt: bool = True, verify: bool = False, force: bool = False,
                 pool=None, threads: int = 1):
        self._fp: BinaryIO | None = None  # set first: close() may run on a failed init
        if mode not in _MODES:
            raise ValueError(f"invalid mode {mode!r}; use 'r', 'w', 'x' or 'a' (+'b')")
        if member_bytes < 1:
            raise ValueError(f"member_bytes must be at least 1, not {member_bytes}")
        self.mode = _MODES[mode]
        self._pos = 0  # position in the uncompressed data
        self.stats = CodingStats()  # summed over the members written so far
        self._pool, self._jobs = pool, deque()  # (input bytes, job) in flight, in order
        self._progress = progress or (lambda n: None)
        if self.mode == "rb":
            if pool is None:
                self._decomp = Decompressor(model, backend=backend, progress=progress,
                                            force=force, threads=threads)
            self._max_output_size = max_output_size
            self._buffer, self._offset, self._n_decoded = b"", 0, 0
        else:  # load the model before touching the file, so a bad model leaves none
            if pool is None:
                self._comp = Compressor(model, level=level, backend=backend,
                                        progress=progress, adapt=adapt, verify=verify,
                                        threads=threads)
            self._member_bytes = member_bytes
            self._pending = bytearray()
            self._n_members = 0
        if isinstance(filename, (str, bytes, os.PathLike)):
            self._fp = builtins.open(filename, self.mode)
            self._own_fp = True
        elif hasattr(filename, "read") or hasattr(filename, "write"):
            self._fp, self._own_fp = filename, False
        else:
            raise TypeError("filename must be a str, bytes or os.PathLike, or a file object")
        if self.mode == "rb":
            self._members = iter_members(self._fp)

    # -- state -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._fp is None

    def readable(self) -> bool:
        self._check_open()
        return self.mode == "rb"

    def writable(self) -> bool:
        self._check_open()
        return self.mode != "rb"

    def seekable(self) -> bool:
        return False

    def fileno(self) -> int:
        self._check_open()
        return self._fp.fileno()

    def tell(self) -> int:
        """Position in the uncompressed data."""
        self._check_open()
        return self._pos

    def _check_open(self) -> None:
        if self._fp is None:
            raise ValueError("I/O operation on closed file")

    def _check_mode(self, reading: bool) -> None:
        self._check_open()
        if (self.mode == "rb") != reading:
            raise io.UnsupportedOperation(f"not open for {'reading' if reading else 'writing'}")

    def close(self) -> None:
        if self._fp is None:
            return
        try:
            if self.mode != "rb":
                self._emit(force=self._n_members == 0)  # an empty file is an empty member
                self._collect(0)
        finally:
            fp, self._fp = self._fp, None
            self._buffer = b""
            if self._own_fp:
                fp.close()

    # -- writing -----------------------------------------------------------------------
    def write(self, data) -> int:
        self._check_mode(reading=False)
        with memoryview(data) as view, view.cast("B") as octets:
            n_bytes, pos = len(octets), 0
            while pos < n_bytes:
                take = min(n_bytes - pos, self._member_bytes - len(self._pending))
                self._pending += octets[pos:pos + take]
                pos += take
                if len(self._pending) >= self._member_bytes:
                    self._emit()
        self._pos += n_bytes
        return n_bytes

    def flush(self) -> None:
        """Write what is buffered as a complete member (readable at once); a no-op when
        reading. Frequent flushes cost ratio: each member starts its model afresh."""
        self._check_open()
        if self.mode != "rb":
            self._emit()
            self._collect(0)
            self._fp.flush()

    def _emit(self, force: bool = False) -> None:
        if not self._pending and not force:
            return
        data = bytes(self._pending)
        self._pending.clear()  # cleared first: a failed member is not retried on close
        self._n_members += 1
        if self._pool is None:
            self._fp.write(self._comp.compress(data))
            _add_stats(self.stats, self._comp.stats)
            return
        self._jobs.append((len(data), self._pool.compress(data)))
        self._collect(2 * self._pool.n_workers)

    def _collect(self, n_kept: int) -> None:
        """Write finished members in order until at most `n_kept` are in flight."""
        while len(self._jobs) > n_kept:
            n_bytes, job = self._jobs.popleft()
            archive, stats = job.result()
            self._fp.write(archive)
            _add_stats(self.stats, stats)
            self._progress(n_bytes)

    # -- reading -----------------------------------------------------------------------
    def _fill(self) -> bool:
        """Make unread decoded bytes available; False at the end of the archive."""
        while self._offset >= len(self._buffer):
            n_ahead = 1 if self._pool is None else 2 * self._pool.n_workers
            while len(self._jobs) < n_ahead:
                header, member = next(self._members, (None, b""))
                if header is None:
                    break
                limit = self._max_output_size
                if limit is not None and self._n_decoded + header.original_size > limit:
                    raise OutputLimitError(
                        f"archive decodes to at least {self._n_decoded + header.original_size}"
                        f" bytes, more than the allowed {limit}; raise the limit if you "
                        "trust it")
                self._n_decoded += header.original_size
                self._jobs.append((header.original_size, member if self._pool is None
                                   else self._pool.decompress(member)))
            if not self._jobs:
                return False
            n_bytes, job = self._jobs.popleft()
            if self._pool is None:
                self._buffer = self._decomp.decompress(job)
            else:
                self._buffer = job.result()
                self._progress(n_bytes)
            self._offset = 0
        return True

    def _take(self, n_bytes: int) -> bytes:
        chunk = self._buffer[self._offset:self._offset + n_bytes]
        self._offset += len(chunk)
        self._pos += len(chunk)
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        self._check_mode(reading=True)
        size = -1 if size is None else size
        chunks, n_read = [], 0
        while (size < 0 or n_read < size) and self._fill():
            chunks.append(self._take(len(self._buffer) if size < 0 else size - n_read))
            n_read += len(chunks[-1])
        return b"".join(chunks)

    def read1(self, size: int = -1) -> bytes:
        self._check_mode(reading=True)
        if size == 0 or not self._fill():
            return b""
        return self._take(len(self._buffer) if size < 0 else size)

    def peek(self, size: int = 0) -> bytes:
        self._check_mode(reading=True)
        if not self._fill():
            return b""
        return self._buffer[self._offset:]

    def readline(self, size: int | None = -1) -> bytes:
        self._check_mode(reading=True)
        size = -1 if size is None else size
        chunks, n_read = [], 0
        while (size < 0 or n_read < size) and self._fill():
            end = self._buffer.find(b"\n", self._offset)
            n_bytes = len(self._buffer) - self._offset if end < 0 else end + 1 - self._offset
            if size >= 0:
                n_bytes = min(n_bytes, size - n_read)
            chunks.append(self._take(n_bytes))
            n_read += n_bytes
            if chunks[-1].endswith(b"\n"):
                break
        return b"".join(chunks)


def _add_stats(total: CodingStats, part: CodingStats) -> None:
    for name in ("n_bytes_in", "n_bytes_out", "estimate_bits", "lm_bytes_in",
                 "lm_bytes_out", "n_tokens"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    for kind, count in part.kinds.items():
        total.kinds[kind] = total.kinds.get(kind, 0) + count
    if part.adapt_hits:
        old = total.adapt_hits or (0,) * len(part.adapt_hits)
        total.adapt_hits = tuple(a + b for a, b in zip(old, part.adapt_hits))


def open(filename: str | bytes | os.PathLike | BinaryIO, mode: str = "rb", *, model=None,
         level: int | None = None, backend: str | None = None,
         max_output_size: int | None = None, member_bytes: int = DEFAULT_MEMBER_BYTES,
         progress: Progress | None = None, encoding: str | None = None,
         errors: str | None = None, newline: str | None = None, pool=None):
    """Open an .lmp archive in binary ("rb", "wb", "xb", "ab") or text ("rt", "wt", "xt",
    "at") mode; text mode wraps the LmpressFile in io.TextIOWrapper like gzip.open.
    `pool` (lmpress.cluster) codes the members on worker processes or a Ray cluster."""
    if "t" in mode:
        if "b" in mode:
            raise ValueError(f"invalid mode {mode!r}: both text and binary")
    elif (encoding, errors, newline) != (None, None, None):
        raise ValueError("encoding, errors and newline are only for text modes ('rt', 'wt')")
    binary = LmpressFile(filename, mode.replace("t", ""), model=model, level=level,
                         backend=backend, max_output_size=max_output_size,
                         member_bytes=member_bytes, progress=progress, pool=pool)
    if "t" in mode:
        return io.TextIOWrapper(binary, io.text_encoding(encoding), errors, newline)
    return binary
