"""Shared helpers of the browser tests: Debian's Chromium driven by Playwright (headless),
and a real uvicorn server on a free localhost port in a thread.

A missing Chromium or Playwright skips the test, except under LMPRESS_REQUIRE_BROWSER=1
(CI sets it), where it fails instead, so that a broken install cannot pass as green.
Never `playwright install`: there is no internet; the system Chromium is used."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

CHROMIUM = os.environ.get("LMPRESS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def require_browser() -> None:
    """Skip (or fail under LMPRESS_REQUIRE_BROWSER=1) when the browser cannot run."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (pip install 'lmpress[test]')"
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = (f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                   "LMPRESS_CHROMIUM to its path)")
    if problem is not None:
        if os.environ.get("LMPRESS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required but {problem}")
        pytest.skip(problem)


@contextlib.contextmanager
def launch_chromium() -> Iterator:
    """A headless Chromium (playwright Browser), closed afterwards."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                    headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def live_server(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
