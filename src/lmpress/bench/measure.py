"""Measuring one codec on one item: sizes, speeds, peak memory, and the round trip.

Peak memory is the process's resident-set high-water mark: before each codec call we
reset it (Linux: write 5 to /proc/self/clear_refs), and after it we read VmHWM. The
figure is VmHWM minus the resident size before the call, so it counts everything the
codec touched (numpy buffers, C libraries) and not what was already resident (the
interpreter, a model loaded once before the first file). For binaries (zstd, zpaq) the
child's own peak comes from wait4's rusage. tracemalloc would miss numpy and C
allocations, so it is not used. Where /proc is not writable the figure is left empty.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields

from .codecs import Codec
from .inputs import BenchInput

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


@dataclass
class Row:
    """The figures of one (codec, item) pair; an error row has status 'error' and no sizes."""

    codec: str
    codec_key: str
    category: str
    name: str
    sha256: str
    n_bytes_in: int
    n_bytes_out: int = 0
    compress_s: float = 0.0
    decompress_s: float = 0.0
    peak_mem_bytes: int | None = None
    status: str = "ok"  # "ok" or "error"
    error: str = ""
    model_bytes: int = 0  # the decoder's model file (0 for classical codecs)
    estimate_bits: float | None = None  # model's own Σ -log2 p over its LM-coded tokens
    lm_bytes_in: int | None = None  # original bytes coded by the model
    lm_bytes_out: int | None = None  # their share of the archive

    @property
    def bits_per_byte(self) -> float:
        return 8 * self.n_bytes_out / self.n_bytes_in

    @property
    def ratio(self) -> float:
        """original / compressed: how many times smaller."""
        return self.n_bytes_in / self.n_bytes_out if self.n_bytes_out else float("inf")

    @property
    def compress_kb_s(self) -> float:
        return self.n_bytes_in / 1000 / max(self.compress_s, 1e-9)

    @property
    def decompress_kb_s(self) -> float:
        return self.n_bytes_in / 1000 / max(self.decompress_s, 1e-9)

    @property
    def estimate_bits_per_byte(self) -> float | None:
        """The model's estimate per LM-coded byte (compare with lm_bits_per_byte)."""
        if self.estimate_bits is None or not self.lm_bytes_in:
            return None
        return self.estimate_bits / self.lm_bytes_in

    @property
    def lm_bits_per_byte(self) -> float | None:
        """Real coded bits per LM-coded byte; the gap to the estimate is the coder's cost."""
        if self.lm_bytes_out is None or not self.lm_bytes_in:
            return None
        return 8 * self.lm_bytes_out / self.lm_bytes_in

    @property
    def adjusted_bits_per_byte(self) -> float | None:
        """(archive + model file) bits per original byte: the size-adjusted rate."""
        if not self.model_bytes:
            return None
        return 8 * (self.n_bytes_out + self.model_bytes) / self.n_bytes_in

    def to_dict(self) -> dict:
        """Stored fields plus the derived figures (ok rows), for JSON and CSV."""
        d = asdict(self)
        if self.status == "ok":
            for name in ("bits_per_byte", "ratio", "compress_kb_s", "decompress_kb_s",
                         "estimate_bits_per_byte", "lm_bits_per_byte",
                         "adjusted_bits_per_byte"):
                d[name] = getattr(self, name)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Row:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def measure(codec: Codec, item: BenchInput) -> Row:
    """Compress, decompress and compare. Any failure or mismatch is an error row."""
    row = Row(codec.name, codec.key, item.category, item.name, item.sha256,
              len(item.data), model_bytes=codec.model_bytes)
    codec.child_peak_kb = 0
    base = _reset_peak()
    try:
        t0 = time.perf_counter()
        archive = codec.compress(item.data)
        t1 = time.perf_counter()
        extras = codec.extras()
        t2 = time.perf_counter()
        restored = codec.decompress(archive)
        t3 = time.perf_counter()
    except Exception as e:  # noqa: BLE001  (a failing codec is a row, not a crash)
        row.status, row.error = "error", f"{type(e).__name__}: {e}"
        return row
    row.peak_mem_bytes = _peak_since(base, codec.child_peak_kb * 1024)
    if restored != item.data:
        row.status = "error"
        row.error = (f"round trip mismatch: {len(item.data)} bytes in, "
                     f"{len(restored)} bytes back")
        return row
    row.n_bytes_out, row.compress_s, row.decompress_s = len(archive), t1 - t0, t3 - t2
    for k, v in extras.items():
        if k in ("estimate_bits", "lm_bytes_in", "lm_bytes_out"):
            setattr(row, k, v)
    return row


def _read_status_kb(key: str) -> int | None:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> int | None:
    """Reset the RSS high-water mark; returns the current RSS in KB (None: unsupported)."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        return None
    return _read_status_kb("VmRSS")


def _peak_since(base_kb: int | None, child_bytes: int) -> int | None:
    if base_kb is None:
        return child_bytes or None
    peak_kb = _read_status_kb("VmHWM")
    if peak_kb is None:
        return child_bytes or None
    return max((peak_kb - base_kb) * 1024, child_bytes)
