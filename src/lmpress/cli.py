"""The `lmpress` command, in the manner of gzip / xz / zstd: `main(argv=None) -> int`.

The only module that prints, exits or draws progress. Heavy modules (numpy, the codec)
are imported inside functions, after `-T` has set the thread variables.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable

from .cli_io import (
    SUFFIX,
    CliError,
    CountingReader,
    atomic_output,
    describe_os_error,
    human_size,
    open_input,
    output_path,
    progress_bar,
    set_threads,
    stdout_sink,
    whole_number,
)

PROG = "lmpress"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_COPY_BYTES = 1 << 20


def _error(name: str | None, message: str) -> None:
    print(f"{PROG}: {name}: {message}" if name else f"{PROG}: {message}", file=sys.stderr)


def _echo(line: str) -> None:
    print(line, file=sys.stderr)


def _label(name: str) -> str:
    return "(stdin)" if name == "-" else name


# -- subcommands: name -> function(argv) -> exit status; the docstring's first line is the
# summary shown by --help. Other modules add theirs here (bench, train, corpus, ...).

def cmd_models(argv: list[str]) -> int:
    """list the shipped and converted models: name, levels, size, sha256 prefix, summary"""
    argparse.ArgumentParser(prog=f"{PROG} models", description=cmd_models.__doc__
                            ).parse_args(argv)
    from .model.registry import DEFAULT_MODEL, SHIPPED, user_models

    converted = user_models()  # `lmpress convert` installs them (levels column: "user")
    if not SHIPPED and not converted:
        print("no models are shipped with this installation; "
              "pass a model file with -m PATH.safetensors")
        return EXIT_OK
    print(f"  {'name':<24} {'levels':<11} {'size':>10}  {'sha256':<12}  summary")
    for m in SHIPPED.values():
        files = m.files()  # a mix's size is its parts'
        size = human_size(sum(p.stat().st_size for p in files)) \
            if all(p.is_file() for p in files) else "missing"
        mark = "*" if m.name == DEFAULT_MODEL else " "
        levels = ",".join(map(str, m.levels)) or "-"
        print(f"{mark} {m.name:<24} {levels:<11} {size:>10}  {m.sha256[:12]:<12}  {m.summary}")
    for name, path, summary in converted:
        size = human_size(path.stat().st_size)
        print(f"  {name:<24} {'user':<11} {size:>10}  {'-':<12}  {summary} [{path}]")
    print("(* = default model)")
    return EXIT_OK


def cmd_corpus(argv: list[str]) -> int:
    """build the training corpus from the allowed sources (needs apt-get and dpkg)"""
    from .train.corpus import main as corpus_main

    return corpus_main(argv, echo=lambda line: print(line, file=sys.stderr, flush=True))


def cmd_train(argv: list[str]) -> int:
    """train a shipped model's recipe: tokenizer, model, checkpoints (needs torch)"""
    try:
        from .train.recipe import main as recipe_main
    except ImportError as e:
        _error(None, f"training needs PyTorch ({e.name} is missing); "
                     "install it with: pip install 'lmpress[train]'")
        return EXIT_ERROR
    return recipe_main(argv, echo=lambda line: print(line, flush=True))


def cmd_bench(argv: list[str]) -> int:
    """bits per byte of lmpress levels and models beside gzip/xz/zstd/brotli/PPMd/zpaq"""
    from .bench.command import main as bench_main

    return bench_main(argv, stdin=sys.stdin.buffer, stdout=sys.stdout, stderr=sys.stderr,
                      prog=f"{PROG} bench")


def cmd_rank(argv: list[str]) -> int:
    """per-document bits/byte, memorization, LLM-likeness, near-duplicates; filter a corpus"""
    from .inspect.rank_command import main as rank_main

    return rank_main(argv, stdout=sys.stdout, stderr=sys.stderr, prog=f"{PROG} rank")


def cmd_sample(argv: list[str]) -> int:
    """seeded text sampled from a built-in model"""
    from .inspect.sample_command import main as sample_main

    return sample_main(argv, stdout=sys.stdout.buffer, stderr=sys.stderr,
                       prog=f"{PROG} sample")


def cmd_serve(argv: list[str]) -> int:
    """a local web page: heatmaps, bits/byte beside classical codecs, (de)compression"""
    from .web.command import main as serve_main

    return serve_main(argv, stdout=sys.stdout, stderr=sys.stderr, prog=f"{PROG} serve")


def cmd_inspect(argv: list[str]) -> int:
    """the text coloured by each token's code length; --html heatmap page, --json records"""
    from .inspect.command import main as inspect_main

    return inspect_main(argv, stdout=sys.stdout, stderr=sys.stderr, prog=f"{PROG} inspect")


def cmd_convert(argv: list[str]) -> int:
    """convert a Hugging Face causal LM (hf:DIR) into an integer model (needs transformers)"""
    from .convert.command import main as convert_main

    return convert_main(argv, stdout=sys.stdout, stderr=sys.stderr, prog=f"{PROG} convert")


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "models": cmd_models, "corpus": cmd_corpus, "train": cmd_train, "bench": cmd_bench,
    "rank": cmd_rank, "sample": cmd_sample, "serve": cmd_serve, "inspect": cmd_inspect,
    "convert": cmd_convert}


_EPILOG = """\
With no FILE, or when FILE is -, read standard input and write standard output
(so pipes and `tar -I {prog}` work). -1..-9 pick a shipped model by level; -m
overrides them. Decompressing needs the model named in the archive (see -l).

subcommands (must come first; write a file with such a name as ./NAME):
{subcommands}

exit status: 0 ok, 1 error, 2 usage error, 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    subcommands = "\n".join(f"  {PROG} {name:<8} {(fn.__doc__ or '').splitlines()[0]}"
                            for name, fn in SUBCOMMANDS.items())
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Lossless compression driven by a small language model. Compresses "
                    f"each FILE to FILE{SUFFIX}, keeping FILE.",
        epilog=_EPILOG.format(prog=PROG, subcommands=subcommands))
    p.add_argument("files", nargs="*", metavar="FILE", help="files to process ('-' = stdin)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-z", "--compress", action="store_true", help="compress (the default)")
    mode.add_argument("-d", "--decompress", "--uncompress", action="store_true",
                      help="decompress")
    mode.add_argument("-t", "--test", action="store_true",
                      help="decode fully and verify checksums; write nothing")
    mode.add_argument("-l", "--list", action="store_true",
                      help="show each archive's header (model, sizes, streams) without decoding")
    p.add_argument("-c", "--stdout", "--to-stdout", action="store_true",
                   help="write to standard output; keep input files")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (one input only)")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("-k", "--keep", action="store_true", help="keep input files (default)")
    keep.add_argument("--rm", action="store_true", help="remove input files after success")
    p.add_argument("-f", "--force", action="store_true",
                   help="overwrite outputs; write compressed data to a terminal; decode an "
                        "hf:/gguf: archive despite a different engine fingerprint")
    p.add_argument("-m", "--model", metavar="NAME_OR_PATH",
                   help="shipped model name or .safetensors file (see `lmpress models`), "
                        "or your own: hf:DIR (transformers) or gguf:FILE (llama.cpp); "
                        "decoding their archives needs the same -m")
    p.add_argument("--verify", action="store_true",
                   help="decode each archive right after making it; fail (writing "
                        "nothing) unless it gives the input back exactly")
    for level in range(1, 10):
        p.add_argument(f"-{level}", dest="level", action="store_const", const=level,
                       help=argparse.SUPPRESS)
    p.add_argument("--no-adapt", dest="adapt", action="store_false",
                   help="code with the language model alone, without online adaptation")
    p.add_argument("--backend", choices=("numpy", "torch-cpu", "torch-cuda"),
                   help="compute backend (archives are identical on all of them)")
    p.add_argument("-T", "--threads", type=whole_number(0), default=1, metavar="N",
                   help="worker processes, each coding whole archive members (default 1; "
                        "0 = one per core); a single file of one member is coded by N "
                        "threads instead; the archive is the same for every N")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="code the members on a Ray cluster: its head's host:port, or auto "
                        "(the cluster `ray start` made here); the archive is the same")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="process every file under each directory FILE, one archive per "
                        f"file (FILE{SUFFIX}, like gzip -r)")
    p.add_argument("--member-bytes", type=whole_number(1), default=1 << 19, metavar="N",
                   help="input bytes per archive member (default 512 KiB): the unit of "
                        "parallel work; larger members let adaptation reach further back")
    p.add_argument("--blas-threads", type=whole_number(0), default=1, metavar="N",
                   help="BLAS/OpenMP threads per process (default 1, the fastest for these "
                        "small matrices; 0 = all cores); the archive is the same")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="report ratio, bits/byte, the model's estimate and speed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or reports")
    p.add_argument("-V", "--version", action="store_true", help="print the version")
    from .lossy.command import add_arguments as add_lossy_arguments

    add_lossy_arguments(p)
    p.usage = f"{PROG} [OPTIONS] [-1..-9] [FILE ...]\n       {PROG} SUBCOMMAND [...]"
    return p


class _Session:
    """One run over the FILEs: the options, the model (loaded once), rows for -l."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self._weights = None
        self.listed: list[tuple] = []  # rows for -l, printed after the last FILE
        self.progress_ok = sys.stderr.isatty() and not args.quiet
        self.verbose = args.verbose and not args.quiet
        self.shared_progress = None  # one bar for FILEs coded together (_run_files)
        self._pool, self._pool_made = None, False
        self.lm_threads = 1  # threads of this process's model (-T N on one member)

    def use_threads_for(self, files: list[str]) -> None:
        """-T N on a single FILE of one archive member: no worker process would have a
        second member to code, so this process runs the model in N threads instead."""
        a = self.args
        if a.threads == 1 or a.ray or len(files) != 1 or not os.path.isfile(files[0]):
            return
        n = a.threads or os.cpu_count() or 1
        if a.compress_mode:
            single = os.path.getsize(files[0]) <= a.member_bytes
        else:
            from .errors import LmpressError
            from .fileobj import iter_members

            try:  # a bad archive is reported by the normal path
                with open(files[0], "rb") as f:
                    single = sum(1 for _, _ in zip(range(2), iter_members(f))) == 1
            except (LmpressError, OSError):
                return
        if single:
            self.lm_threads = n

    def pool(self):
        """The workers of -T N / --ray (made once, on first use), or None: this process."""
        a = self.args
        if (a.threads == 1 or self.lm_threads > 1) and not a.ray:
            return None
        if not self._pool_made:
            from .cluster import Settings, make_pool

            self._pool_made = True
            settings = Settings(adapt=a.adapt, verify=a.verify, backend=a.backend,
                                force=a.force)
            self._pool = make_pool(self.model(a.compress_mode), n_workers=a.threads,
                                   ray_address=a.ray, settings=settings)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def model(self, compressing: bool):
        """What to hand the codec: the loaded model (once), or None to use the archive's."""
        if not compressing and self.args.model is None:
            return None
        if self._weights is None:
            from .float_engine import is_float_spec, load_float_model
            from .model.registry import load_model, model_for_level

            spec = self.args.model or model_for_level(self.args.level)
            self._weights = (load_float_model(spec, self.args.backend) if is_float_spec(spec)
                             else load_model(spec))
        return self._weights

    def to_stdout(self, name: str) -> bool:
        return self.args.stdout or (name == "-" and self.args.output is None)

    def run(self, name: str) -> None:
        a = self.args
        if name == "-" and sys.stdin.isatty() and not a.force and not a.compress_mode:
            raise CliError("compressed data not read from a terminal; pipe an archive in "
                           "or name a file (-f to force)")
        if a.list:
            return self.list(name)
        with open_input(name) as (src, info):
            target = None
            if not a.test and not self.to_stdout(name):
                target = output_path(name, decompress=a.decompress, output=a.output,
                                     force=a.force)
            elif a.compress_mode and sys.stdout.isatty() and not a.force:
                raise CliError("compressed data not written to a terminal; redirect "
                               "stdout, or use -f to force")
            total = info.st_size if info is not None and info.st_size else None
            with progress_bar(self.progress_ok, total, _label(name)) as progress:
                progress = progress or self.shared_progress
                started = time.perf_counter()
                n_in, n_out, stats = self.transfer(name, src, target, info, progress)
                seconds = time.perf_counter() - started
        if self.verbose:
            _report(_label(name), n_in, n_out, stats, seconds, a.compress_mode, a.test)
        if a.rm and target is not None:
            try:
                os.remove(name)
            except OSError as e:
                raise CliError(f"wrote {target} but could not remove the input: "
                               f"{describe_os_error(e)}") from None

    def transfer(self, name, src, target, info, progress):
        """Stream src through the codec into target (None: stdout, or nothing with -t)."""
        from .fileobj import LmpressFile

        a = self.args
        if target is not None:
            sink = atomic_output(target, force=a.force, source=name, like=info)
        else:
            sink = contextlib.nullcontext() if a.test else stdout_sink()
        with sink as dst:
            if a.compress_mode:
                if a.quality < 100 or a.lossy_report:  # lossy: docs/LOSSY.md
                    from .lossy.command import transform

                    src = io.BytesIO(transform(a, src.read(), self.model(True), _echo))
                pool = self.pool()
                with LmpressFile(dst, "wb", model=None if pool else self.model(True),
                                 backend=a.backend, member_bytes=a.member_bytes,
                                 progress=progress, adapt=a.adapt, verify=a.verify,
                                 pool=pool, threads=self.lm_threads) as f:
                    shutil.copyfileobj(src, f, _COPY_BYTES)
                return f.stats.n_bytes_in, f.stats.n_bytes_out, f.stats
            counted = CountingReader(src)
            with LmpressFile(counted, "rb", model=self.model(False), backend=a.backend,
                             progress=progress, force=a.force, pool=self.pool(),
                             threads=self.lm_threads) as f:
                n_out = 0
                while chunk := f.read1(_COPY_BYTES):
                    n_out += len(chunk)
                    if dst is not None:
                        dst.write(chunk)
            return counted.n_bytes, n_out, None

    def list(self, name: str) -> None:
        from .container import KIND_NAMES, check_seal
        from .fileobj import iter_members

        n_orig = n_arch = n_members = 0
        kinds: Counter[str] = Counter()
        models: dict[tuple[str, bytes, bytes], None] = {}
        with open_input(name) as (src, _):
            for header, member in iter_members(src):
                check_seal(member)
                n_orig, n_arch = n_orig + header.original_size, n_arch + len(member)
                n_members += 1
                kinds.update(KIND_NAMES[s.kind] for s in header.streams)
                models[(header.model_name, header.weights_digest, header.tokenizer_digest)] = None
        self.listed.append((_label(name), n_orig, n_arch, n_members, kinds, list(models)))


def _report(name, n_in, n_out, stats, seconds, compressing: bool, testing: bool) -> None:
    n_orig, n_arch = (n_in, n_out) if compressing else (n_out, n_in)
    kb_per_s = n_orig / 1000 / max(seconds, 1e-9)
    bpb = f"{8 * n_arch / n_orig:.3f} bits/B" if n_orig else "n/a bits/B (empty)"
    line = f"{name}: {n_in} -> {n_out} bytes, {bpb}"
    if stats is not None and stats.lm_bytes_in:
        line += (f"; LM streams {8 * stats.lm_bytes_out / stats.lm_bytes_in:.3f} bits/B, "
                 f"model estimate {stats.estimate_bits / stats.lm_bytes_in:.3f}")
        if stats.adapt_hits:
            line += (f"; adaptation hits {stats.adapt_hits[0]} match + "
                     f"{stats.adapt_hits[1]} n-gram of {stats.n_tokens} tokens")
    elif stats is not None:
        line += "; no LM streams (stored or LZMA)"
    line += f"; {kb_per_s:.1f} KB/s" + (" — OK" if testing else "")
    print(line, file=sys.stderr)


def _print_listing(rows: list, verbose: bool) -> None:
    print(f"{'original':>12} {'archive':>12} {'ratio':>7} {'bits/B':>7}  {'streams':<22} "
          f"{'model (weights, tokenizer digest)':<40} name")
    for name, n_orig, n_arch, n_members, kinds, models in rows:
        ratio = f"{n_arch / n_orig:.1%}" if n_orig else "-"
        bpb = f"{8 * n_arch / n_orig:.3f}" if n_orig else "-"
        streams = " ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
        if verbose:
            streams += f" ({n_members} member{'s' * (n_members != 1)})"
        digits = 32 if verbose else 8
        model = "; ".join(f"{m} ({w.hex()[:digits]}, {t.hex()[:digits]})"
                          for m, w, t in models)
        print(f"{n_orig:>12} {n_arch:>12} {ratio:>7} {bpb:>7}  {streams:<22} {model:<40} {name}")
    if len(rows) > 1:
        n_orig, n_arch = sum(r[1] for r in rows), sum(r[2] for r in rows)
        ratio = f"{n_arch / n_orig:.1%}" if n_orig else "-"
        print(f"{n_orig:>12} {n_arch:>12} {ratio:>7} {'':>7}  {'':<22} {'':<40} (totals)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return SUBCOMMANDS[argv[0]](argv[1:])
        return _main(argv)
    except SystemExit as e:  # argparse: 2 for usage errors, 0 for --help
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        _error(None, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`lmpress -dc x.lmp | head`)
        _silence_stdout()
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001  (the CLI never shows a traceback)
        from .errors import LmpressError

        _error(None, str(e) if isinstance(e, LmpressError) else f"internal error: {e!r}")
        return EXIT_ERROR


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"{PROG} {__version__}")
        return EXIT_OK
    if os.path.basename(sys.argv[0]).startswith("un" + PROG) and not (
            args.compress or args.list or args.test):
        args.decompress = True
    args.compress_mode = not (args.decompress or args.test or args.list)
    files = args.files or ["-"]
    if not args.compress_mode and (args.quality < 100 or args.lossy_report):
        parser.error("--quality and --lossy-report apply when compressing; decoding a lossy "
                     "archive needs no option")
    if args.output is not None and (len(files) > 1 or args.stdout or args.test or args.list):
        parser.error("-o/--output takes exactly one input and no -c, -t or -l")
    # the engine's matrices are small: one BLAS thread is faster than a pool that waits
    # for a busy second core (measured 33 ms against 73 ms per decoding step)
    set_threads(args.blas_threads)
    if args.recursive:
        files = _expand_directories(files, compressing=args.compress_mode)
    session = _Session(args)
    try:
        status = _run_files(session, files)
    finally:
        session.close()
    if args.list and session.listed:
        _print_listing(session.listed, session.verbose)
    return status


def _run_files(session: _Session, files: list[str]) -> int:
    """Each FILE in turn; with a pool (-T/--ray) and several outputs, as many FILEs at
    once as there are workers, so that small files keep every worker busy."""
    if not session.args.list:
        session.use_threads_for(files)
    pool = session.pool() if files and not session.args.list else None
    together = pool is not None and len(files) > 1 and not session.args.stdout
    if not together:
        status = EXIT_OK
        for name in files:
            status = max(status, _run_one(session, name))
            if status == EXIT_INTERRUPTED:
                break
        return status
    from concurrent.futures import ThreadPoolExecutor

    sizes = [os.path.getsize(n) if os.path.isfile(n) else 0 for n in files]
    with progress_bar(session.progress_ok, sum(sizes) or None, f"{len(files)} files") as bar:
        session.shared_progress, session.progress_ok = bar or (lambda n: None), False
        with ThreadPoolExecutor(max(1, pool.n_workers)) as threads:
            statuses = list(threads.map(lambda name: _run_one(session, name), files))
    if EXIT_INTERRUPTED in statuses:
        return EXIT_INTERRUPTED
    return max(statuses, default=EXIT_OK)


def _run_one(session: _Session, name: str) -> int:
    try:
        session.run(name)
    except KeyboardInterrupt:
        _error(_label(name), "interrupted (Ctrl-C); no unfinished output file was kept")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise
    except CliError as e:
        _error(_label(name), str(e))
        return EXIT_ERROR
    except OSError as e:
        _error(_label(name), describe_os_error(e))
        return EXIT_ERROR
    except Exception as e:
        from .errors import LmpressError

        if not isinstance(e, LmpressError):
            raise
        _error(_label(name), str(e))
        return EXIT_ERROR
    return EXIT_OK


def _expand_directories(files: list[str], *, compressing: bool) -> list[str]:
    """-r: every regular file under each directory (sorted, symlinks not followed);
    compressing skips FILE{SUFFIX} archives, decompressing and listing take only them."""
    out = []
    for name in files:
        if name == "-" or not os.path.isdir(name):
            out.append(name)
            continue
        for root, dirs, names in os.walk(name):
            dirs.sort()
            for leaf in sorted(names):
                path = os.path.join(root, leaf)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                if path.endswith(SUFFIX) != compressing:
                    out.append(path)
    return out


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
