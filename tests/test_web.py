"""`lmpress serve` without a browser: the API through FastAPI's TestClient, the limits and
guards, and the command's own errors. The browser tests are in test_web_browser.py."""

import io
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from lmpress.codec import Compressor, decompress  # noqa: E402
from lmpress.web import command  # noqa: E402
from lmpress.web.app import LOOPBACK_HOSTS, create_app, safe_name  # noqa: E402

MAX_BYTES = 4096
TEXT = ("The decoder must compute exactly the same probabilities as the encoder.\n" * 8
        ).encode()


@pytest.fixture(scope="module")
def client(tiny_model_path):
    return TestClient(create_app(model=tiny_model_path, max_bytes=MAX_BYTES))


def test_info_lists_models_limits_and_codecs(client):
    info = client.get("/api/info").json()
    names = [m["name"] for m in info["models"]]
    assert names[0] == "tiny-test" and info["models"][0]["default"]
    assert "lmpress-small-v1" in names and "lmpress-fast-v1" in names
    assert info["max_bytes"] == MAX_BYTES
    assert {"gzip -9", "bzip2 -9", "xz -9e"} <= set(info["codecs"])
    assert not any(c.startswith("zpaq") for c in info["codecs"])  # zpaq writes temp files


def test_static_files_are_served_from_the_package_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for route, needle in [("/app.js", "renderHeatmap"), ("/heatmap.js", "renderHeatmap"),
                          ("/style.css", ".heatmap-box")]:
        r = client.get(route)
        assert r.status_code == 200 and needle in r.text, route
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from elsewhere
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/etc/passwd").status_code == 404


def test_compress_then_decompress_gives_the_original_bytes(client, tiny_model):
    data = TEXT[:500] + bytes(range(256))  # not UTF-8
    r = client.post("/api/compress?name=../../notes%20v2.txt&adapt=1", content=data)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="notes_v2.txt.lmp"'
    assert r.headers["x-lmpress-original-bytes"] == str(len(data))
    assert r.content == Compressor(tiny_model).compress(data)  # the same archive as the CLI
    back = client.post("/api/decompress?name=notes_v2.txt.lmp", content=r.content)
    assert back.status_code == 200, back.text
    assert back.content == data == decompress(r.content, model=tiny_model)
    assert back.headers["content-disposition"] == 'attachment; filename="notes_v2.txt"'
    assert back.headers["x-lmpress-models"] == "tiny-test"


def test_compress_without_adaptation_and_of_empty_input(client, tiny_model):
    r = client.post("/api/compress?adapt=0", content=TEXT[:300])
    assert r.content == Compressor(tiny_model, adapt=False).compress(TEXT[:300])
    assert r.headers["content-disposition"] == 'attachment; filename="text.lmp"'
    empty = client.post("/api/compress", content=b"")
    assert client.post("/api/decompress", content=empty.content).content == b""


def test_oversized_bodies_are_refused_and_the_server_keeps_serving(client):
    r = client.post("/api/compress", content=b"x" * (MAX_BYTES + 1))
    assert r.status_code == 413
    assert r.json()["error"] == (f"the upload is {MAX_BYTES + 1} bytes; this server accepts "
                                 f"at most {MAX_BYTES} bytes per request — restart it with a "
                                 "larger --max-bytes, or use the lmpress command line for "
                                 "large files")
    chunked = client.post("/api/inspect", content=iter([b"y" * 3000] * 3))  # no length
    assert chunked.status_code == 413 and "at most 4096 bytes" in chunked.json()["error"]
    assert client.post("/api/decompress", content=b"z" * 10**6).status_code == 413
    assert client.post("/api/compress", content=b"x" * MAX_BYTES).status_code == 200


def test_archive_decoding_past_the_limit_is_refused_before_decoding(tiny_model):
    small = TestClient(create_app(model=tiny_model, max_bytes=1000))
    archive = Compressor(tiny_model).compress(b"abc\n" * 2000)  # 8000 bytes, LZMA-stored
    assert len(archive) < 1000
    r = small.post("/api/decompress", content=archive)
    assert r.status_code == 413
    assert r.json()["error"].startswith("the archive decodes to more than 1000 bytes")


@pytest.mark.parametrize("body, message", [
    (b"hello, not an archive", "not an lmpress archive (bad magic bytes)"),
    (b"", "empty input is not an lmpress archive"),
])
def test_malformed_archives_give_the_codec_message(client, body, message):
    r = client.post("/api/decompress", content=body)
    assert r.status_code == 400 and r.json()["error"].startswith(message)


def test_damaged_and_foreign_archives_are_explained(client, tiny_model):
    archive = Compressor(tiny_model).compress(TEXT)
    r = client.post("/api/decompress", content=archive[:-20])
    assert r.status_code == 400 and "truncated archive" in r.json()["error"]
    flipped = bytearray(archive)
    flipped[-10] ^= 0xFF
    r = client.post("/api/decompress", content=bytes(flipped))
    assert r.status_code == 400 and "archive" in r.json()["error"]
    foreign = archive.replace(b"tiny-test", b"tiny-fake", 1)
    r = client.post("/api/decompress", content=foreign)
    assert r.status_code == 400
    assert r.json()["error"].startswith("this archive was made with model 'tiny-fake', which "
                                        "this server does not have")
    assert client.get("/api/info").status_code == 200


def test_inspect_returns_records_and_classical_codecs_on_the_same_bytes(client, tiny_model):
    r = client.post("/api/inspect?adapt=true", content=TEXT)
    assert r.status_code == 200, r.text
    out = r.json()
    ins = out["inspection"]
    assert out["model"] == "tiny-test" and out["adapt"] is True
    assert ins["n_bytes"] == len(TEXT)
    assert ins["archive_bytes"] == len(Compressor(tiny_model).compress(TEXT))
    assert sum(rec["n_bytes"] for rec in ins["records"]) == len(TEXT)
    import gzip
    rows = {row["name"]: row for row in out["classical"]}
    assert rows["gzip -9"]["n_bytes"] == len(gzip.compress(TEXT, 9, mtime=0))
    assert rows["gzip -9"]["bits_per_byte"] == pytest.approx(8 * rows["gzip -9"]["n_bytes"]
                                                              / len(TEXT))


@pytest.mark.parametrize("query, body, message", [
    ("", b"", "nothing to inspect: paste some text or choose a file"),
    ("?model=/etc/passwd", b"abc", "unknown model '/etc/passwd'; this server offers: tiny-test"),
    ("?model=lmpress-nope", b"abc", "unknown model 'lmpress-nope'"),
    ("?adapt=maybe", b"abc", "bad request parameter (adapt: Input should be a valid boolean"),
])
def test_bad_inspect_requests_say_what_to_do(client, query, body, message):
    r = client.post("/api/inspect" + query, content=body)
    assert r.status_code == 400 and r.json()["error"].startswith(message)


def test_unexpected_errors_answer_500_and_the_server_goes_on(tiny_model, monkeypatch):
    app = create_app(model=tiny_model)
    quiet = TestClient(app, raise_server_exceptions=False)
    monkeypatch.setattr(app.state.service, "compress",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    r = quiet.post("/api/compress", content=b"abc")
    assert r.status_code == 500 and "RuntimeError('boom')" in r.json()["error"]
    assert quiet.get("/api/info").status_code == 200


def test_loopback_server_refuses_other_hosts_and_cross_site_posts(tiny_model):
    guarded = TestClient(create_app(model=tiny_model, allowed_hosts=LOOPBACK_HOSTS))
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "localhost"):
        assert guarded.get("/api/info", headers={"host": host}).status_code == 200, host
    r = guarded.get("/", headers={"host": "attacker.example:8765"})
    assert r.status_code == 403 and "not served here" in r.json()["error"]
    local = {"host": "127.0.0.1:8765"}
    r = guarded.post("/api/compress", content=b"abc",
                     headers={**local, "origin": "http://attacker.example"})
    assert r.status_code == 403 and "other web sites" in r.json()["error"]
    r = guarded.post("/api/compress", content=b"abc",
                     headers={**local, "origin": "http://127.0.0.1:8765"})
    assert r.status_code == 200


def test_safe_name_keeps_no_directories_or_odd_characters():
    assert safe_name("../../etc/passwd", "x") == "passwd"
    assert safe_name("C:\\Users\\me\\a b\"c;.txt", "x") == "a_b_c_.txt"
    assert safe_name("...", "text") == "text" and safe_name(None, "text") == "text"
    assert len(safe_name("a" * 500, "x")) == 100


def run_serve(argv, **kw):
    out, err = io.StringIO(), io.StringIO()
    code = command.main(argv, stdout=out, stderr=err, prog="lmpress serve", **kw)
    return code, out.getvalue(), err.getvalue()


def test_serve_without_the_web_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    code, out, err = run_serve(["--port", "0"])
    assert code == 1 and out == ""
    assert err == ("lmpress serve: lmpress serve needs FastAPI and uvicorn; install them "
                   "with: pip install 'lmpress[web]'\n")


def test_serve_reports_a_busy_port_and_a_missing_model_in_one_line(tiny_model_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_serve(["-m", tiny_model_path, "--port", str(port)])
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"lmpress serve: cannot listen on 127.0.0.1:{port}: ")
    assert err.endswith("pick another address or port with --host / --port\n")
    code, _, err = run_serve(["-m", "no-such-model"])
    assert code == 1 and err.startswith("lmpress serve: model 'no-such-model' is not installed")
    with pytest.raises(SystemExit):
        command.build_parser().parse_args(["--port", "70000"])


def test_lmpress_serve_runs_as_a_real_process(tiny_model_path):
    proc = subprocess.Popen([sys.executable, "-m", "lmpress", "serve", "-m", tiny_model_path,
                             "--port", "0", "--max-bytes", "2000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("lmpress serve: http://127.0.0.1:"), proc.stderr.read()
        url = line.split()[2]
        assert "uploads up to 2000 bytes" in line
        for _ in range(100):  # the socket is bound before uvicorn starts listening
            try:
                with urllib.request.urlopen(url + "api/info", timeout=5) as r:
                    assert b'"max_bytes":2000' in r.read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("lmpress serve did not answer")
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a graceful stop, exit status 0
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0 and err == "lmpress serve: stopped\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
