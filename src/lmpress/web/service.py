"""The work behind the web page, without any web code: the models (each loaded once and
reused), one lock around coding (the numpy engine is not thread-safe, and two cores gain
nothing from running two codings at once), size limits, and the classical codecs the page
shows beside lmpress. Only models listed here can be asked for by name: a request never
names a file."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..bench.codecs import classical_codecs
from ..codec import CodingStats, Compressor, Decompressor
from ..container import Header
from ..errors import FormatError, LmpressError, OutputLimitError
from ..model.registry import SHIPPED, load_model, model_for_level
from ..model.weights import IntegerWeights

DEFAULT_MAX_BYTES = 64 * 1024  # a few KB/s of coding on a laptop core: seconds, not hours
# Classical codecs that run inside this process: the page writes nothing to disk, and
# zpaq (and the zstd binary, when the zstandard package is absent) work through temp files.
WEB_CODECS = ("gzip", "bzip2", "xz", "zstd-19", "brotli", "ppmd")


class WebInputError(LmpressError):
    """A request the person can correct: unknown model, empty or oversized input."""

    status = 400


class TooLargeError(WebInputError):
    status = 413


def too_large(n_bytes: int | None, max_bytes: int, what: str = "the upload") -> TooLargeError:
    size = f"{n_bytes} bytes" if n_bytes is not None else "more than that"
    return TooLargeError(f"{what} is {size}; this server accepts at most {max_bytes} bytes "
                         "per request — restart it with a larger --max-bytes, or use the "
                         "lmpress command line for large files")


@dataclass(frozen=True)
class ModelChoice:
    name: str
    summary: str
    is_default: bool


class Service:
    """Models by name, loaded on first use; `compress`, `decompress`, `inspect`.

    `model` is the default model (a shipped name, a .safetensors path or loaded weights);
    the shipped models are offered beside it."""

    def __init__(self, model: str | IntegerWeights | None = None, *, level: int | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, backend: str | None = None):
        if max_bytes < 1:
            raise WebInputError(f"max_bytes must be at least 1, not {max_bytes}")
        default = load_model(model if model is not None else model_for_level(level))
        self.max_bytes = max_bytes
        self.backend = backend
        self.default_name = default.name
        self._weights: dict[str, IntegerWeights] = {default.name: default}
        shipped = SHIPPED.get(default.name)
        summary = shipped.summary if shipped else "the model file this server was started with"
        self.choices = [ModelChoice(default.name, summary, True)]
        self.choices += [ModelChoice(m.name, f"{m.summary} (levels "
                                     f"{','.join(map(str, m.levels))})", False)
                         for m in SHIPPED.values() if m.name != default.name]
        self._lock = threading.Lock()
        self._compressors: dict[tuple[str, bool], Compressor] = {}
        self._decompressors: dict[str, Decompressor] = {}
        self.codecs, self.codec_notes = classical_codecs(WEB_CODECS, which=lambda name: None)

    def weights(self, name: str | None) -> IntegerWeights:
        """The model called `name` (None: the default), loaded once."""
        name = name or self.default_name
        if name not in self._weights:
            if name not in {c.name for c in self.choices}:
                known = ", ".join(c.name for c in self.choices)
                raise WebInputError(f"unknown model {name!r}; this server offers: {known}")
            self._weights[name] = load_model(name)
        return self._weights[name]

    def check_size(self, data: bytes) -> None:
        if len(data) > self.max_bytes:
            raise too_large(len(data), self.max_bytes)

    def compress(self, data: bytes, *, model: str | None = None, adapt: bool = True
                 ) -> tuple[bytes, CodingStats]:
        """The .lmp archive of `data` and the figures of that run."""
        self.check_size(data)
        with self._lock:
            weights = self.weights(model)
            key = (weights.name, adapt)
            if key not in self._compressors:
                self._compressors[key] = Compressor(weights, backend=self.backend, adapt=adapt)
            comp = self._compressors[key]
            archive = comp.compress(data)
            return archive, comp.stats

    def decompress(self, archive: bytes) -> tuple[bytes, list[str]]:
        """The original bytes of every member of `archive`, and the models that made them.
        Each member's size is checked against the limit before anything is decoded."""
        self.check_size(archive)
        if not archive:
            raise FormatError("empty input is not an lmpress archive; choose a .lmp file")
        out, names, pos = bytearray(), [], 0
        with self._lock:
            while pos < len(archive):
                header, offset = Header.unpack(archive[pos:])
                end = pos + offset + header.payload_bytes + 4
                if len(out) + header.original_size > self.max_bytes:
                    raise OutputLimitError(
                        f"the archive decodes to more than {self.max_bytes} bytes, the most "
                        "this server returns; decompress it with the lmpress command line, "
                        "or restart the server with a larger --max-bytes")
                out += self._decompressor(header.model_name).decompress(archive[pos:end])
                names.append(header.model_name)
                pos = end
        return bytes(out), names

    def _decompressor(self, name: str) -> Decompressor:
        if name not in self._decompressors:
            if name not in {c.name for c in self.choices}:
                known = ", ".join(c.name for c in self.choices)
                raise WebInputError(
                    f"this archive was made with model {name!r}, which this server does not "
                    f"have (it offers: {known}); decompress it with the lmpress command line "
                    "where that model is installed")
            self._decompressors[name] = Decompressor(self.weights(name), backend=self.backend)
        return self._decompressors[name]

    def inspect(self, data: bytes, *, model: str | None = None, adapt: bool = True) -> dict:
        """Per-token records of `data` (lmpress.inspect) and the classical codecs' sizes."""
        from ..inspect.records import inspect_bytes

        self.check_size(data)
        if not data:
            raise WebInputError("nothing to inspect: paste some text or choose a file")
        with self._lock:
            weights = self.weights(model)
            started = time.perf_counter()
            result = inspect_bytes(data, model=weights, adapt=adapt, backend=self.backend)
            seconds = time.perf_counter() - started
        return {"model": weights.name, "adapt": adapt, "seconds": round(seconds, 3),
                "inspection": result.to_json(), "classical": self.classical_sizes(data),
                "notes": self.codec_notes}

    def classical_sizes(self, data: bytes) -> list[dict]:
        """Each classical codec's output size and bits per byte on the same bytes."""
        rows = []
        for codec in self.codecs:
            n = len(codec.compress(data))
            rows.append({"name": codec.name, "n_bytes": n,
                         "bits_per_byte": 8 * n / len(data) if data else None})
        return rows
