"""`lmpress serve` end to end in a real headless Chromium (Debian chromium + Playwright):
paste -> heatmap; upload -> archive download -> archive upload -> the original bytes;
oversized and malformed uploads -> a clear message, and the server keeps serving.

One uvicorn server (tiny seeded model) and one browser serve the whole module."""

from pathlib import Path

import pytest
from browser import launch_chromium, live_server, require_browser

from lmpress.codec import decompress

MAX_BYTES = 3000
SAMPLE = ("A compressor that predicts the next word well spends few bits on it.\n" * 6
          ).encode() + bytes([0, 255, 128, 10])  # ends in bytes that are not UTF-8
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def base_url(tiny_model_path):
    require_browser()
    pytest.importorskip("uvicorn")
    from lmpress.web.app import LOOPBACK_HOSTS, create_app

    app = create_app(model=tiny_model_path, max_bytes=MAX_BYTES, allowed_hosts=LOOPBACK_HOSTS)
    with live_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:
        yield b


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(base_url)
    page.wait_for_selector("body[data-ready='1']")
    yield page
    context.close()
    assert errors == []  # no script errors, nothing fetched that failed


def wait_status(page, element_id: str) -> tuple[str, str]:
    """Wait until a status line leaves the 'working' state; (class, text)."""
    # arrow functions, not bare expressions: the page's CSP forbids eval, which Playwright
    # would use for a bare expression
    page.wait_for_function(f"""() => {{
        const e = document.getElementById('{element_id}');
        return !e.classList.contains('working') && e.textContent !== ''; }}""")
    el = page.locator(f"#{element_id}")
    return el.get_attribute("class"), el.inner_text()


def codec_rows(page, table: str) -> dict[str, float]:
    rows = page.locator(f"{table} tr").all()[1:]
    return {r.locator("td").nth(0).inner_text(): float(r.locator("td").nth(2).inner_text())
            for r in rows}


def heatmap_tokens(page, box: str) -> int:
    """Token spans drawn by renderHeatmap (lmpress/inspect/static/heatmap.js)."""
    return page.locator(f"{box} .lmp-tok").count()


def test_pasted_text_shows_a_heatmap_beside_classical_codecs(page, tiny_model):
    page.fill("#inspect-text", SAMPLE[:-4].decode())
    page.click("#inspect-run")
    kind, text = wait_status(page, "inspect-status")
    assert kind == "status ok", text
    assert heatmap_tokens(page, "#inspect-heatmap") > 10
    rows = codec_rows(page, "#inspect-codecs")
    ours = [name for name in rows if name.startswith("lmpress (tiny-test")]
    assert ours and rows[ours[0]] > 0
    assert {"gzip -9", "xz -9e"} <= set(rows)
    assert page.locator("#inspect-codecs caption").inner_text().startswith(
        f"{len(SAMPLE) - 4} bytes in")
    with page.expect_download() as download:
        page.click("#inspect-download")
    assert download.value.suggested_filename == "text.txt.lmp"
    archive = Path(download.value.path()).read_bytes()
    assert decompress(archive, model=tiny_model) == SAMPLE[:-4]


def test_upload_download_archive_upload_it_gives_the_original_bytes(page, tmp_path):
    page.click("#tab-codec")
    page.set_input_files("#compress-file", files=[
        {"name": "sample.txt", "mimeType": "text/plain", "buffer": SAMPLE}])
    with page.expect_download() as compressed:
        page.click("#compress-run")
    assert compressed.value.suggested_filename == "sample.txt.lmp"
    archive = tmp_path / "sample.txt.lmp"
    compressed.value.save_as(archive)
    kind, text = wait_status(page, "compress-status")
    assert kind == "status ok" and f"{len(SAMPLE)} bytes →" in text, text

    page.set_input_files("#decompress-file", str(archive))
    with page.expect_download() as restored:
        page.click("#decompress-run")
    assert restored.value.suggested_filename == "sample.txt"
    assert Path(restored.value.path()).read_bytes() == SAMPLE
    kind, text = wait_status(page, "decompress-status")
    assert kind == "status ok" and "tiny-test" in text, text


def test_oversized_and_malformed_uploads_say_why_and_the_server_goes_on(page):
    page.click("#tab-codec")
    too_big = {"name": "big.txt", "mimeType": "text/plain", "buffer": b"x" * (MAX_BYTES + 1)}
    page.set_input_files("#compress-file", files=[too_big])
    page.click("#compress-run")
    kind, text = wait_status(page, "compress-status")
    assert kind == "status error"
    assert text.startswith(f"the upload is {MAX_BYTES + 1} bytes; this server accepts at most "
                           f"{MAX_BYTES} bytes per request")

    # the same upload with the page's own check switched off: the server refuses it (413)
    page.evaluate("info.max_bytes = Infinity")
    page.click("#compress-run")
    page.wait_for_function(
        "() => document.getElementById('compress-status').className === 'status error'")
    assert page.locator("#compress-status").inner_text() == text

    page.set_input_files("#decompress-file", files=[
        {"name": "fake.lmp", "mimeType": "application/octet-stream",
         "buffer": b"this is not an archive"}])
    page.click("#decompress-run")
    kind, text = wait_status(page, "decompress-status")
    assert kind == "status error"
    assert text.startswith("not an lmpress archive (bad magic bytes)")

    page.set_input_files("#compress-file", files=[
        {"name": "ok.txt", "mimeType": "text/plain", "buffer": SAMPLE}])
    with page.expect_download() as again:
        page.click("#compress-run")
    assert again.value.suggested_filename == "ok.txt.lmp"


def test_compare_shows_two_texts_side_by_side(page):
    page.click("#tab-compare")
    page.fill("#compare-text-a", "the the the the the the the the the the")
    page.fill("#compare-text-b", "zq xv kj wp qz vx jk pw zq xv kj wp")
    page.click("#compare-run")
    kind, text = wait_status(page, "compare-status")
    assert kind == "status ok", text
    for side in "ab":
        assert heatmap_tokens(page, f"#compare-result-{side} .heatmap-box") > 5
        assert any(n.startswith("lmpress (tiny-test") for n in
                   codec_rows(page, f"#compare-result-{side} table.codecs"))
