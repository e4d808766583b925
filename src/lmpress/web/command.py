"""`lmpress serve`: arguments, the listening socket and uvicorn around `create_app`.

cli.py hands in the streams to talk to. The socket is bound here, before uvicorn starts,
so that a port in use is one clear line rather than a server log; `--port 0` picks a free
port and the line printed names it."""

from __future__ import annotations

import argparse
import ipaddress
import socket
from typing import TextIO

from ..cli_io import set_threads, whole_number
from ..errors import LmpressError

EXIT_OK, EXIT_ERROR = 0, 1
DEFAULT_PORT = 8765
MISSING_EXTRA = ("lmpress serve needs FastAPI and uvicorn; install them with: "
                 "pip install 'lmpress[web]'")


def build_parser(prog: str = "lmpress serve") -> argparse.ArgumentParser:
    from .service import DEFAULT_MAX_BYTES

    p = argparse.ArgumentParser(
        prog=prog, description="A local web page: paste or upload text to see the model's "
        "per-token heatmap and bits per byte beside classical codecs; compress and "
        "decompress files; compare two texts or two models. See docs/WEB.md.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT,
                   help=f"TCP port (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument("-m", "--model", metavar="NAME_OR_PATH",
                   help="default model: shipped name or .safetensors file (the shipped "
                        "models are offered beside it)")
    for level in range(1, 10):
        p.add_argument(f"-{level}", dest="level", action="store_const", const=level,
                       help=argparse.SUPPRESS)
    p.add_argument("--max-bytes", type=whole_number(1), default=DEFAULT_MAX_BYTES,
                   metavar="N", help="largest upload and largest decompressed result, in "
                   f"bytes (default {DEFAULT_MAX_BYTES})")
    p.add_argument("--backend", choices=("numpy", "torch-cpu", "torch-cuda"),
                   help="compute backend (archives are identical on all of them)")
    p.add_argument("--blas-threads", type=whole_number(0), default=1, metavar="N",
                   help="BLAS/OpenMP threads (default 1; 0 = all cores)")
    return p


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, not {text!r}")
    return int(text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port; OSError (in use, bad address) for the caller."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def make_server(app):
    """A quiet uvicorn server for `app`; start it with `server.run(sockets=[bound])`."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def main(argv: list[str], *, stdout: TextIO, stderr: TextIO,
         prog: str = "lmpress serve") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print(f"{prog}: {MISSING_EXTRA}", file=stderr)
        return EXIT_ERROR
    set_threads(args.blas_threads)
    from .app import LOOPBACK_HOSTS, create_app

    try:
        app = create_app(model=args.model, level=args.level, max_bytes=args.max_bytes,
                         backend=args.backend,
                         allowed_hosts=LOOPBACK_HOSTS if is_loopback(args.host) else None)
    except LmpressError as e:
        print(f"{prog}: {e}", file=stderr)
        return EXIT_ERROR
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        print(f"{prog}: cannot listen on {args.host}:{args.port}: {e.strerror or e}; "
              "pick another address or port with --host / --port", file=stderr)
        return EXIT_ERROR
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    service = app.state.service
    print(f"lmpress serve: http://{shown}:{port}/  (default model {service.default_name}, "
          f"uploads up to {service.max_bytes} bytes; Ctrl-C stops)", file=stdout, flush=True)
    if not is_loopback(args.host):
        print(f"{prog}: warning: listening on {args.host}, not only this machine; anyone who "
              "can reach it can make it compute", file=stderr)
    with sock:
        try:
            make_server(app).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after a graceful shutdown
            pass
    print(f"{prog}: stopped", file=stderr)
    return EXIT_OK
