"""Pools of workers that code archive members: `LocalPool` (processes on this machine)
and `RayPool` (tasks on a Ray cluster). Both hand out jobs whose `result()` is what
`work.compress_member` / `work.decompress_member` return, so `LmpressFile(pool=...)`
treats them alike and writes results in input order.

Failures: a Ray task whose worker dies is run again elsewhere (`max_retries`), and only a
finished member's bytes are ever written; when retries run out, or a local worker dies,
the job raises PoolError and the CLI keeps no output file.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import socket
import tempfile
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ..errors import LmpressError
from ..model.registry import SHIPPED, load_model
from ..model.weights import IntegerWeights
from . import work
from .work import DEFAULT_SETTINGS, Settings

_BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class PoolError(LmpressError):
    """A worker or the cluster failed; nothing half-made is written."""


class Job:
    """One member in flight; `result()` waits and translates a lost worker into
    PoolError (errors of the codec itself, such as a damaged archive, pass through)."""

    def __init__(self, wait: Callable[[], object], lost: tuple[type[BaseException], ...]):
        self._wait, self._lost = wait, lost

    def result(self):
        try:
            return self._wait()
        except LmpressError:
            raise
        except self._lost as e:
            raise PoolError(f"a worker was lost while coding a member ({type(e).__name__}) "
                            "and could not be replaced; nothing was written — run again, "
                            "or with fewer workers") from None


def _check_model(model) -> None:
    from ..float_engine import is_float_model

    if is_float_model(model):
        raise PoolError("hf:/gguf: models run in one process (their archives are tied to "
                        "this machine's engine); drop -T/--ray")


class LocalPool:
    """`n_workers` processes on this machine, each with one BLAS thread and the model
    loaded once (`-T N`)."""

    def __init__(self, model, n_workers: int, settings: Settings = DEFAULT_SETTINGS):
        _check_model(model)
        for name in _BLAS_VARIABLES:  # read by numpy/torch when a worker imports them
            os.environ.setdefault(name, "1")
        self.n_workers = n_workers
        self._files = tempfile.TemporaryDirectory(prefix="lmpress-pool-")
        self._shared: dict[str, work.SharedWeights] = {}  # weights digest -> its file
        self._executor = cf.ProcessPoolExecutor(
            n_workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=work.init_local, initargs=(model, settings))

    def compress(self, data: bytes) -> Job:
        return self.submit(work.local_compress, data)

    def decompress(self, member: bytes) -> Job:
        return self.submit(work.local_decompress, member)

    def submit(self, fn: Callable, *args) -> Job:
        """`fn(*args)` on a worker (`fn` a module-level function, the args picklable);
        loaded weights among the args are saved once and read once per worker."""
        args = tuple(self._share(a) if isinstance(a, IntegerWeights) else a for a in args)
        return Job(self._executor.submit(fn, *args).result, (BrokenProcessPool,))

    def _share(self, weights: IntegerWeights) -> work.SharedWeights:
        weights = load_model(weights)  # gives weights made in memory their digest
        if weights.digest not in self._shared:
            path = os.path.join(self._files.name, f"{weights.digest}.safetensors")
            Path(path).write_bytes(weights.to_bytes())
            self._shared[weights.digest] = work.SharedWeights(path, weights.digest)
        return self._shared[weights.digest]

    def close(self) -> None:
        if getattr(self._executor, "_broken", False):
            # a worker killed while it held the task queue's lock leaves the others
            # waiting on that lock for ever, and shutdown(wait=True) with them (CPython
            # before 3.12 does not end them): end them first
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.terminate()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._files.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RayPool:
    """Tasks on a Ray cluster (`--ray ADDRESS`, or `auto` for the cluster `ray start`
    made here). The model travels once through the object store; each worker process
    keeps its loaded copy for later members. A task whose worker dies is retried up to
    `max_retries` times on any node."""

    def __init__(self, model, address: str, settings: Settings = DEFAULT_SETTINGS,
                 max_retries: int = 3):
        _check_model(model)
        try:
            import ray
        except ImportError:
            raise PoolError("--ray needs Ray; install it with: pip install "
                            "'lmpress[cluster]'") from None
        self._ray, self._owns = ray, not ray.is_initialized()
        if self._owns:
            _check_reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            except (ConnectionError, ValueError, RuntimeError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise PoolError(f"cannot join the Ray cluster at {address} ({first}); start "
                                "one with `ray start --head` or pass its address") from None
        self.n_workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        if model is not None and not (isinstance(model, str) and model in SHIPPED):
            model = load_model(model)  # sent by value: nodes need not share a file system
        self._options = {"num_cpus": 1, "max_retries": max_retries}
        self._remote: dict[Callable, object] = {}  # function -> its Ray remote function
        self._shared: dict[str, object] = {}  # weights digest -> object store reference
        self._model, self._settings = model, settings
        from ray.exceptions import RayError, RayTaskError

        self._lost = (RayError,)
        self._task_error = RayTaskError

    def compress(self, data: bytes) -> Job:
        return self.submit(work.compress_member, self._model, self._settings, data)

    def decompress(self, member: bytes) -> Job:
        return self.submit(work.decompress_member, self._model, self._settings, member)

    def submit(self, fn: Callable, *args) -> Job:
        """`fn(*args)` as a Ray task (`fn` importable on every node); loaded weights among
        the args go to the object store once and are shared by every later task."""
        if fn not in self._remote:
            self._remote[fn] = self._ray.remote(**self._options)(fn)
        args = tuple(self._put(a) if isinstance(a, IntegerWeights) else a for a in args)
        ref = self._remote[fn].remote(*args)

        def wait():
            try:
                return self._ray.get(ref)
            except self._task_error as e:  # the task ran and raised: not a lost worker
                if isinstance(e.cause, LmpressError):
                    raise e.cause from None  # a damaged archive, a missing model, ...
                raise RuntimeError(f"a worker failed: {e.cause!r}") from None

        return Job(wait, self._lost)

    def _put(self, weights: IntegerWeights):
        if weights.digest not in self._shared:
            self._shared[weights.digest] = self._ray.put(weights)
        return self._shared[weights.digest]

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with one line, where `ray.init` would retry for minutes."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout_s).close()
    except (OSError, ValueError):
        raise PoolError(f"cannot reach a Ray cluster at {address}; start one with `ray start "
                        "--head` and pass the address it prints (host:port), or auto") from None


def make_pool(model, *, n_workers: int = 1, ray_address: str | None = None,
              settings: Settings = DEFAULT_SETTINGS):
    """The pool the command line asks for: Ray when an address is given, local processes
    when `n_workers` > 1 (0 = one per core), else None (code in this process)."""
    if ray_address:
        return RayPool(model, ray_address, settings)
    n_workers = n_workers or os.cpu_count() or 1
    if n_workers > 1:
        return LocalPool(model, n_workers, settings)
    return None
