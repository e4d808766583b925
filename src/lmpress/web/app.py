"""The FastAPI application of `lmpress serve`: one page, its static files, and four JSON or
download endpoints over `Service`.

Requests carry their bytes as the raw body (the page sends a pasted text or a chosen file
as is) and their options in the query string, so nothing is parsed into temporary files;
bodies are read in chunks and refused with 413 as soon as they pass the limit. There are
no path parameters: the static files are a fixed list read from the package at start-up.
"""

from __future__ import annotations

import importlib.resources
import re
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import LmpressError, OutputLimitError
from ..model.weights import IntegerWeights
from .service import DEFAULT_MAX_BYTES, Service, WebInputError, too_large

# (package, file name) -> served at "/" + name ("/" for index.html)
_STATIC = {"/": ("lmpress.web", "index.html"), "/app.js": ("lmpress.web", "app.js"),
           "/style.css": ("lmpress.web", "style.css"),
           "/heatmap.js": ("lmpress.inspect", "heatmap.js")}
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8"}
_SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
     b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def create_app(*, model: str | IntegerWeights | None = None, level: int | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES, backend: str | None = None,
               allowed_hosts: tuple[str, ...] | None = None) -> FastAPI:
    """The application. `model` is the default model (the shipped ones are offered beside
    it); `max_bytes` limits every request body and every decompressed result;
    `allowed_hosts` (None: any) guards a loopback server against DNS rebinding."""
    service = Service(model, level=level, max_bytes=max_bytes, backend=backend)
    static = {route: _read_static(package, name) for route, (package, name) in _STATIC.items()}
    app = FastAPI(title="lmpress", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.add_middleware(LocalGuard, allowed_hosts=allowed_hosts)

    @app.exception_handler(LmpressError)
    async def lmpress_error(request: Request, e: LmpressError) -> JSONResponse:
        status = 413 if isinstance(e, OutputLimitError) else getattr(e, "status", 400)
        return JSONResponse({"error": str(e)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, e: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'][1:]))}: {err['msg']}"
                             for err in e.errors())
        return JSONResponse({"error": f"bad request parameter ({problems})"}, status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, e: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error: {e!r}; the server keeps running"},
                            status_code=500)

    def page(route: str):
        body, media_type = static[route]

        async def serve() -> Response:
            return Response(body, media_type=media_type)
        return serve

    for route in static:
        app.add_api_route(route, page(route), methods=["GET"], include_in_schema=False)

    @app.get("/api/info")
    async def info() -> JSONResponse:
        return _json({"models": [{"name": c.name, "summary": c.summary,
                                  "default": c.is_default} for c in service.choices],
                      "max_bytes": service.max_bytes,
                      "codecs": [c.name for c in service.codecs],
                      "notes": service.codec_notes})

    @app.post("/api/inspect")
    async def inspect(request: Request, model: str | None = None,
                      adapt: bool = True) -> JSONResponse:
        data = await read_body(request, service.max_bytes)
        return _json(await run_in_threadpool(service.inspect, data, model=model, adapt=adapt))

    @app.post("/api/compress")
    async def compress(request: Request, model: str | None = None, adapt: bool = True,
                       name: str | None = None) -> Response:
        data = await read_body(request, service.max_bytes)
        archive, _ = await run_in_threadpool(service.compress, data, model=model,
                                                 adapt=adapt)
        return _download(archive, safe_name(name, "text") + ".lmp", {
            "x-lmpress-original-bytes": str(len(data)),
            "x-lmpress-archive-bytes": str(len(archive))})

    @app.post("/api/decompress")
    async def decompress(request: Request, name: str | None = None) -> Response:
        archive = await read_body(request, service.max_bytes)
        data, models = await run_in_threadpool(service.decompress, archive)
        base = safe_name(name, "archive.lmp")
        base = base[:-4] if base.endswith(".lmp") and len(base) > 4 else base + ".out"
        return _download(data, base, {"x-lmpress-original-bytes": str(len(data)),
                                      "x-lmpress-archive-bytes": str(len(archive)),
                                      "x-lmpress-models": ",".join(dict.fromkeys(models))})

    return app


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) as soon as it is known to pass `max_bytes`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(int(declared), max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large(None, max_bytes)
    return bytes(body)


def safe_name(name: str | None, default: str) -> str:
    """A download name made only of [A-Za-z0-9._-], without any directory part."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")[:100]
    return base or default


def _download(data: bytes, filename: str, headers: dict[str, str]) -> Response:
    headers = {"content-disposition": f'attachment; filename="{filename}"',
               "cache-control": "no-store", **headers}
    return Response(data, media_type="application/octet-stream", headers=headers)


def _json(payload: dict) -> JSONResponse:
    return JSONResponse(payload, headers={"cache-control": "no-store"})


def _read_static(package: str, name: str) -> tuple[bytes, str]:
    path = importlib.resources.files(package).joinpath("static", name)
    try:
        body = path.read_bytes()
    except OSError as e:
        raise WebInputError(f"the page file {package}/static/{name} is missing from this "
                            "installation; reinstall lmpress") from e
    return body, _TYPES[name[name.rfind("."):]]


class LocalGuard:
    """ASGI middleware: refuse Host headers outside `allowed_hosts` (DNS rebinding),
    refuse cross-origin POSTs (another site driving this server), add security headers."""

    def __init__(self, app, allowed_hosts: tuple[str, ...] | None):
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        problem = None
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            problem = f"host {host!r} is not served here; open the address lmpress serve printed"
        origin = headers.get(b"origin")
        if scope["method"] not in ("GET", "HEAD") and origin is not None \
                and urlsplit(origin.decode("latin-1")).netloc != host:
            problem = "requests from other web sites are refused; use the lmpress page itself"
        if problem is not None:
            return await JSONResponse({"error": problem}, status_code=403)(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _hostname(host: str) -> str:
    """'127.0.0.1:8765' -> '127.0.0.1'; '[::1]:8765' -> '::1'."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
