"""Every compressor the benchmark runs, as a pair of `bytes -> bytes` functions.

Classical codecs come from the standard library, optional Python packages or binaries on
PATH; one that is missing is left out with a note, never an error. lmpress rows are one
per distinct model (levels that share a model would give identical figures)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .inputs import BenchError

Which = Callable[[str], "str | None"]


@dataclass
class Codec:
    """A compressor and its decompressor, with the identity used by reports and resume."""

    name: str  # shown in tables: "xz -9e"
    key: str  # stable id for resume; for models it includes the weights digest
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]
    fast: bool = True  # included in --quick runs
    model_bytes: int = 0  # size of the model file a decoder needs (size-adjusted rate)
    is_model: bool = False
    extras: Callable[[], dict] = dict  # figures of the last compress call (the estimate)
    child_peak_kb: int = 0  # peak RSS of helper processes in the last call (binaries)
    # Called with the number of input bytes just finished, by codecs slow enough to report
    # within one call (lmpress); the CLI points it at a progress bar.
    progress: Callable[[int], None] = lambda n_bytes: None
    # integer models: what a worker needs to measure this codec's rows (bench/remote.py)
    remote: tuple | None = None


# The classical codecs by the name given to --codecs, in table order.
CLASSICAL = ("gzip", "bzip2", "xz", "zstd-19", "zstd-22", "brotli", "ppmd", "zpaq")
ALL_CODECS = (*CLASSICAL, "lmpress")


def parse_codec_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in ALL_CODECS]
    if unknown or not names:
        raise BenchError(f"unknown codec {', '.join(unknown) or '(none)'} in --codecs; "
                         f"choose from {','.join(ALL_CODECS)}")
    return names


def classical_codecs(names: Iterable[str] = CLASSICAL, *, which: Which = shutil.which
                     ) -> tuple[list[Codec], list[str]]:
    """The classical codecs among `names` that are installed here, and notes on the rest."""
    codecs: list[Codec] = []
    notes: list[str] = []
    for name in names:
        if name == "lmpress":
            continue
        made = _MAKERS[name](which)
        if isinstance(made, str):
            notes.append(made)
        else:
            codecs.append(made)
    return codecs, notes


def _gzip(which: Which) -> Codec:
    return Codec("gzip -9", "gzip-9", lambda d: gzip.compress(d, compresslevel=9, mtime=0),
                 gzip.decompress)


def _bzip2(which: Which) -> Codec:
    return Codec("bzip2 -9", "bzip2-9", lambda d: bz2.compress(d, 9), bz2.decompress)


def _xz(which: Which) -> Codec:
    return Codec("xz -9e", "xz-9e", lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME),
                 lzma.decompress)


def _zstd(level: int) -> Callable[[Which], Codec | str]:
    name = f"zstd --ultra -{level}" if level > 19 else f"zstd -{level}"

    def make(which: Which) -> Codec | str:
        try:
            import zstandard
        except ImportError:
            zstandard = None
        if zstandard is not None:
            return Codec(name, f"zstd-{level}",
                         zstandard.ZstdCompressor(level=level).compress,
                         zstandard.ZstdDecompressor().decompress, fast=level <= 19)
        binary = which("zstd")
        if binary is None:
            return (f"{name}: skipped, neither the zstandard package nor the zstd binary is "
                    "installed (pip install 'lmpress[bench]')")
        flags = ["--ultra"] if level > 19 else []
        codec = Codec(name, f"zstd-{level}", bytes, bytes, fast=level <= 19)
        codec.compress = lambda d: _pipe(codec, [binary, "-q", "-c", *flags, f"-{level}"], d)
        codec.decompress = lambda d: _pipe(codec, [binary, "-q", "-d", "-c"], d)
        return codec
    return make


def _brotli(which: Which) -> Codec | str:
    try:
        import brotli
    except ImportError:
        return "brotli -q 11: skipped, the brotli package is not installed " \
               "(pip install 'lmpress[bench]')"
    return Codec("brotli -q 11", "brotli-11", lambda d: brotli.compress(d, quality=11),
                 brotli.decompress, fast=False)


PPMD_ORDER, PPMD_MEM_BYTES = 6, 16 << 20  # pyppmd's defaults (7-Zip's PPMd order 6, 16 MB)


def _ppmd(which: Which) -> Codec | str:
    try:
        import pyppmd
    except ImportError:
        return "ppmd: skipped, the pyppmd package is not installed (pip install 'lmpress[bench]')"
    kw = {"max_order": PPMD_ORDER, "mem_size": PPMD_MEM_BYTES}
    return Codec(f"ppmd -o{PPMD_ORDER}", f"ppmd-o{PPMD_ORDER}",
                 lambda d: pyppmd.compress(d, **kw), lambda d: pyppmd.decompress(d, **kw))


def _zpaq(which: Which) -> Codec | str:
    binary = which("zpaq")
    if binary is None:
        return "zpaq -m5: skipped, the zpaq binary is not on PATH (apt-get install zpaq)"
    codec = Codec("zpaq -m5", "zpaq-m5", bytes, bytes, fast=False)

    def compress(data: bytes) -> bytes:
        # zpaq archives files, not streams: the archive stores the name "f" and a date.
        with tempfile.TemporaryDirectory(prefix="lmpress-zpaq-") as tmp:
            Path(tmp, "f").write_bytes(data)
            _pipe(codec, [binary, "a", "a.zpaq", "f", "-m5"], b"", cwd=tmp)
            return Path(tmp, "a.zpaq").read_bytes()

    def decompress(archive: bytes) -> bytes:
        with tempfile.TemporaryDirectory(prefix="lmpress-zpaq-") as tmp:
            Path(tmp, "a.zpaq").write_bytes(archive)
            _pipe(codec, [binary, "x", "a.zpaq"], b"", cwd=tmp)
            return Path(tmp, "f").read_bytes()

    codec.compress, codec.decompress = compress, decompress
    return codec


_MAKERS: dict[str, Callable[[Which], Codec | str]] = {
    "gzip": _gzip, "bzip2": _bzip2, "xz": _xz, "zstd-19": _zstd(19), "zstd-22": _zstd(22),
    "brotli": _brotli, "ppmd": _ppmd, "zpaq": _zpaq}


def _pipe(codec: Codec, args: list[str], data: bytes, cwd: str | None = None) -> bytes:
    """Run a binary on `data` (stdin) and return its stdout. Its peak RSS, taken from
    wait4's rusage for this one child, is kept in codec.child_peak_kb."""
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, \
            tempfile.TemporaryFile() as ferr:
        fin.write(data)
        fin.seek(0)
        proc = subprocess.Popen(args, stdin=fin, stdout=fout, stderr=ferr, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        codec.child_peak_kb = max(codec.child_peak_kb, usage.ru_maxrss)
        if proc.returncode != 0:
            ferr.seek(0)
            message = ferr.read().decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"{Path(args[0]).name} exited with status {proc.returncode}"
                               + (f": {message[-1]}" if message else ""))
        fout.seek(0)
        return fout.read()


def lmpress_codecs(*, levels: Iterable[int] = range(1, 10), models: Iterable[object] = (),
                   backend: str | None = None, fallback: bool = True, adapt: bool = True
                   ) -> tuple[list[Codec], list[str]]:
    """One codec per distinct model behind `levels`, plus one per model in `models`
    (shipped names, .safetensors paths, loaded IntegerWeights, or hf:DIR / gguf:FILE)."""
    from ..model.registry import model_for_level

    by_model: dict[str, list[int]] = {}
    for level in levels:
        by_model.setdefault(model_for_level(level), []).append(level)
    specs: list[tuple[object, list[int]]] = [(m, lv) for m, lv in by_model.items()]
    specs += [(m, []) for m in models]
    codecs: list[Codec] = []
    notes: list[str] = []
    seen: set[str] = set()
    for spec, lv in specs:
        codec = _lmpress_codec(spec, lv, backend, fallback, adapt)
        if codec.key in seen:
            notes.append(f"{codec.name}: same model as an earlier row; measured once")
            continue
        seen.add(codec.key)
        codecs.append(codec)
    return codecs, notes


def _lmpress_codec(spec: object, levels: list[int], backend: str | None,
                   fallback: bool, adapt: bool) -> Codec:
    from ..float_engine import is_float_spec
    from ..model.registry import SHIPPED, load_model

    if is_float_spec(spec):
        return _float_codec(str(spec), backend, fallback, adapt)
    weights = load_model(spec)  # type: ignore[arg-type]
    if isinstance(spec, str) and spec in SHIPPED:
        model_bytes = sum(p.stat().st_size for p in SHIPPED[spec].files())
    elif isinstance(spec, (str, os.PathLike)):
        model_bytes = Path(spec).stat().st_size
    else:
        model_bytes = sum(len(w.to_bytes()) for w in getattr(weights, "parts", [weights]))
    label = _levels_label(levels)
    label = f"lmpress{' ' + label if label else ''} ({weights.name})"
    codec = _coding_codec(weights, weights.name, weights.digest, model_bytes, label,
                          backend, fallback, adapt)
    codec.remote = (weights, weights.name, model_bytes, label, backend, fallback, adapt)
    return codec


def _float_codec(spec: str, backend: str | None, fallback: bool, adapt: bool) -> Codec:
    """hf:DIR / gguf:FILE coded by a float engine (docs/FLOAT_ENGINES.md): same-machine
    archives; the model size is that of the files its digest covers."""
    from ..errors import LmpressError
    from ..float_engine import load_float_model

    try:
        model = load_float_model(spec, backend)
    except LmpressError as e:
        raise BenchError(str(e)) from None
    return _coding_codec(model, model.name, model.digest, model.n_file_bytes,
                         f"lmpress ({model.name})", None, fallback, adapt)


def _coding_codec(model, name: str, digest: str, model_bytes: int, label: str,
                  backend: str | None, fallback: bool, adapt: bool) -> Codec:
    """A row that codes with lmpress: the compressor and decompressor of one model."""
    from ..codec import Compressor, Decompressor

    comp = Compressor(model, backend=backend, fallback=fallback, adapt=adapt,
                      progress=lambda n: codec.progress(n))
    decomp = Decompressor(model, backend=backend, progress=lambda n: codec.progress(n))
    label += " no-fallback" * (not fallback) + " no-adapt" * (not adapt)
    key = f"lmpress:{name}:{digest[:16]}:fallback={int(fallback)}:adapt={int(adapt)}"

    def extras() -> dict:
        s = comp.stats
        return {"estimate_bits": s.estimate_bits, "lm_bytes_in": s.lm_bytes_in,
                "lm_bytes_out": s.lm_bytes_out, "n_tokens": s.n_tokens}

    codec = Codec(label, key, comp.compress, decomp.decompress,
                  model_bytes=model_bytes, is_model=True, extras=extras)
    return codec


def _levels_label(levels: list[int]) -> str:
    if not levels:
        return ""
    lv = sorted(levels)
    if len(lv) > 2 and lv == list(range(lv[0], lv[-1] + 1)):
        return f"-{lv[0]}..-{lv[-1]}"
    return ",".join(f"-{n}" for n in lv)
