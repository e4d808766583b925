"""File plumbing for the command line: output names, inputs opened with messages that name
the fix, outputs written to a temporary file and renamed only on success, progress bars.

Only the CLI uses this module; like cli.py it imports nothing heavy at module level, so
thread settings made before the first model is loaded still take effect.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

SUFFIX = ".lmp"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class CliError(Exception):
    """A problem with one FILE; printed as `lmpress: FILE: message`, then the next FILE."""


def set_threads(n_threads: int) -> None:
    """Limit BLAS / OpenMP threads (0 = all cores); effective for libraries loaded later."""
    n = n_threads or os.cpu_count() or 1
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)
    if "torch" in sys.modules:  # already loaded: its variable was read at import
        sys.modules["torch"].set_num_threads(n)


def describe_os_error(e: OSError) -> str:
    """One line for an OSError met while reading or writing, with what to do."""
    if e.errno == errno.ENOSPC:
        return "no space left on the device; free some space or write elsewhere with -o"
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied ({e.filename or 'file'}); check its permissions"
    return f"{e.strerror or e}" + (f" ({e.filename})" if e.filename else "")


def output_path(name: str, *, decompress: bool, output: str | None, force: bool) -> str:
    """The file to write for input `name` (not for stdout)."""
    if output is not None:
        return output
    if decompress:
        if name.endswith(SUFFIX) and len(os.path.basename(name)) > len(SUFFIX):
            return name[:-len(SUFFIX)]
        raise CliError(f"unknown suffix (expected {SUFFIX}); name the output with "
                       "-o OUTPUT or write to stdout with -c")
    if name.endswith(SUFFIX) and not force:
        raise CliError(f"already has the {SUFFIX} suffix, so it is probably compressed; "
                       "use -f to compress it again")
    return name + SUFFIX


@contextlib.contextmanager
def open_input(name: str) -> Iterator[tuple[BinaryIO, os.stat_result | None]]:
    """Yield (binary file, its stat) for a FILE; `-` is standard input (stat None)."""
    if name == "-":
        yield sys.stdin.buffer, None
        return
    if os.path.isdir(name):
        raise CliError("is a directory; use -r to process each file in it, or archive it "
                       f"with tar -I lmpress -cf {name.rstrip('/')}.tar{SUFFIX} {name}")
    try:
        f = open(name, "rb")  # noqa: SIM115  (closed by the with below)
    except FileNotFoundError:
        raise CliError("no such file or directory; check the name") from None
    except PermissionError:
        raise CliError("cannot read it: permission denied; check its permissions") from None
    except OSError as e:
        raise CliError(f"cannot read it: {describe_os_error(e)}") from None
    with f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISFIFO(info.st_mode):
            raise CliError("is not a regular file; give a file, or pipe it in with -")
        yield f, info


@contextlib.contextmanager
def atomic_output(path: str, *, force: bool, source: str | None,
                  like: os.stat_result | None) -> Iterator[BinaryIO]:
    """Write to a temporary file beside `path`, rename it to `path` only when the body
    succeeds; on any failure (Ctrl-C included) the temporary file is removed."""
    if os.path.isdir(path):
        raise CliError(f"output {path} is a directory; name a file with -o OUTPUT")
    if os.path.exists(path) and not os.path.isfile(path):
        raise CliError(f"output {path} is not a regular file; write to stdout with -c")
    if os.path.lexists(path):
        if not force:
            raise CliError(f"output {path} already exists; use -f to overwrite it")
        if source and os.path.exists(source) and os.path.samefile(source, path):
            raise CliError(f"output {path} is the input itself; choose another with -o")
    directory = os.path.dirname(os.path.abspath(path))
    hint = "write elsewhere with -o OUTPUT or to stdout with -c"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=directory)
    except PermissionError:
        raise CliError(f"cannot write {path}: permission denied in {directory}; "
                       f"{hint}") from None
    except FileNotFoundError:
        raise CliError(f"cannot write {path}: directory {directory} does not exist; "
                       f"create it or {hint}") from None
    except OSError as e:
        raise CliError(f"cannot write {path}: {describe_os_error(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        if like is not None:
            os.chmod(tmp, stat.S_IMODE(like.st_mode))
            os.utime(tmp, ns=(like.st_atime_ns, like.st_mtime_ns))
        if not force and os.path.lexists(path):
            raise CliError(f"output {path} appeared while working; use -f to overwrite it")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int | None,
                 desc: str) -> Iterator[Callable[[int], None] | None]:
    """A tqdm bar on stderr counting input bytes; None (no bar) unless `enabled`."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
              file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
        yield bar.update


@contextlib.contextmanager
def stdout_sink() -> Iterator[BinaryIO]:
    """Standard output as a binary sink, flushed at the end."""
    yield sys.stdout.buffer
    sys.stdout.buffer.flush()


class CountingReader:
    """Passes reads through and counts the bytes (an archive's size read from a pipe)."""

    def __init__(self, fp: BinaryIO):
        self.fp, self.n_bytes = fp, 0

    def read(self, n_bytes: int = -1) -> bytes:
        data = self.fp.read(n_bytes)
        self.n_bytes += len(data)
        return data


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type accepting whole numbers >= minimum (usage error otherwise)."""

    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, "
                                             f"not {text!r}")
        return int(text)

    return parse


def human_size(n_bytes: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n_bytes < 1024:
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} GiB"
