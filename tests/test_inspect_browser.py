"""The heatmap page in headless Chromium: one span per record, the hover tooltip shows the
token's bits, and the page's bits per byte (computed in the page from the records plus the
flush and container lines) agrees with the codec's archive. Skipped without Chromium,
except under LMPRESS_REQUIRE_BROWSER=1 (see tests/browser.py)."""

import json
import re

from browser import launch_chromium
from conftest import TEXT

from lmpress.codec import Compressor
from lmpress.inspect.html import heatmap_js, render_page
from lmpress.inspect.records import inspect_bytes

# Real prose and code, with markup that must stay text, a non-UTF-8 byte and CJK.
DATA = (TEXT.encode() * 2 + b"<script>window.pwned = 1</script> &amp; <b>bold</b>\n"
        + b"<img src=x onerror='window.pwned = 2'>\n"
        + b"caf\xc3\xa9 \xff \xe4\xb8\xad\xe6\x96\x87\n" + TEXT.encode()[:1500])


def _errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_heatmap_page(tiny_model, tmp_path):
    ins = inspect_bytes(DATA, model=tiny_model)
    codec_bpb = 8 * len(Compressor(tiny_model).compress(DATA)) / len(DATA)
    path = tmp_path / "page.html"
    path.write_text(render_page(ins, title="test page"), encoding="utf-8")
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        errors = _errors(page)
        page.goto(path.as_uri())
        spans = page.locator(".lmp-text .lmp-tok")
        assert spans.count() == len(ins.records)
        shown = page.locator(".lmp-text").evaluate("e => e.textContent").replace("\u21b5", "")
        assert shown == DATA.decode("utf-8", "replace")  # markup stayed text, nothing lost
        assert page.evaluate("window.pwned === undefined")
        assert page.locator("svg.lmp-chart path.area").count() == 1
        assert page.locator(".lmp-legend .sw").count() == 7  # six buckets and "stored"

        i = max(range(len(ins.records)), key=lambda j: ins.records[j].bits)
        target = page.locator(f'.lmp-tok[data-i="{i}"]')
        target.scroll_into_view_if_needed()
        target.hover()
        tip = page.locator(".lmp-tip")
        assert tip.is_visible()
        text = tip.inner_text()
        assert f"{ins.records[i].bits:.2f} bits" in text
        assert f"rank {ins.records[i].rank}" in text and "top alternatives" in text

        bpb = float(page.locator('[data-field="archive-bpb"]').inner_text())
        assert abs(bpb - codec_bpb) / codec_bpb < 0.005
        assert errors == []


def test_render_heatmap_from_a_served_script(tiny_model):
    """The web page's way: heatmap.js as its own script, data from `to_json()`."""
    ins = inspect_bytes(b"tiny text\n\n\tand a tab\x01\x7f", model=tiny_model, adapt=False)
    with launch_chromium() as browser:
        page = browser.new_page()
        errors = _errors(page)
        page.set_content("<!doctype html><meta charset=utf-8><div id=c></div>")
        page.add_script_tag(content=heatmap_js())
        page.evaluate("d => renderHeatmap(document.getElementById('c'), d)",
                      json.loads(json.dumps(ins.to_json())))
        assert page.locator("#c .lmp-tok").count() == len(ins.records)
        shown = page.locator("#c .lmp-text").evaluate("e => e.textContent")
        assert shown == "tiny text\u21b5\n\u21b5\n\tand a tab\u2401\u2421"
        assert re.fullmatch(r"\d+\.\d{3}", page.locator('[data-field="archive-bpb"]')
                            .inner_text())
        page.evaluate("renderHeatmap(document.getElementById('c'), {})")  # no data: no crash
        assert "empty input" in page.locator("#c .lmp-text").inner_text()
        assert errors == []
