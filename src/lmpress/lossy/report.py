"""The lossy run's HTML page: inspect's heatmap of the reconstruction (what the decoder
will pay for each token), with the units the model filled in outlined and the original
text on hover, plus a table of the run's figures. One self-contained file, no network."""

from __future__ import annotations

import html
import json

from .api import LossyResult
from .units import to_bytes

_EXTRA = """<style>
.lmp-filled{outline:2px solid #1f5fbf;outline-offset:-1px;background-image:none}
.lmp-lossy{font:14px/1.45 system-ui,sans-serif;margin:0 0 12px}
.lmp-lossy td{padding:1px 12px 1px 0}.lmp-lossy td.num{text-align:right}
.lmp-edits code{background:#eef3fb;padding:0 3px;white-space:pre-wrap}
.lmp-edits del{color:#8b0f2e}
</style>
<script id="lmp-lossy" type="application/json">@EDITS@</script>
<script>(function () {
  var edits = JSON.parse(document.getElementById("lmp-lossy").textContent);
  var toks = document.querySelectorAll(".lmp-tok");
  var data = JSON.parse(document.getElementById("lmp-data").textContent);
  var k = 0;
  for (var i = 0; i < toks.length && k < edits.length; i++) {
    var r = data.records[+toks[i].getAttribute("data-i")];
    while (k < edits.length && edits[k][1] <= r.offset) k++;
    if (k < edits.length && r.offset < edits[k][1] && r.offset + r.n_bytes > edits[k][0]) {
      toks[i].classList.add("lmp-filled");
      toks[i].title = "original: " + JSON.stringify(edits[k][2]) + " (" + edits[k][3] + ")";
    }
  }
})();</script>
"""


def edits_in_reconstruction(result: LossyResult) -> list[tuple[int, int, str, str]]:
    """(byte start, byte end in R, original text, kind) of every changed unit; a left-out
    word is an empty range at the place it was."""
    out, pos = [], 0
    for c in result.choices:
        n = len(to_bytes(c.chosen))
        if c.kind != "keep":
            out.append((pos, pos + n, c.original, c.kind))
        pos += n
    return out


def render_report(result: LossyResult, inspection, title: str) -> str:
    """The page for `result`; `inspection` is `inspect_bytes(result.reconstruction)`."""
    from ..inspect.html import _script_safe, render_page

    page = render_page(inspection, title)
    rows = [("original", f"{result.original_bytes} bytes"),
            ("lossless archive", "not measured" if result.lossless_bytes is None
             else f"{result.lossless_bytes} bytes"),
            ("lossy archive", f"{result.lossy_bytes} bytes"),
            ("savings", "—" if result.savings is None else f"{result.savings:.1%}"),
            ("edit distance", f"{result.edit_distance} characters "
             f"({result.edit_distance / max(1, result.n_chars):.2%}); "
             f"{result.normalised_edit_distance} after the level's normalisation "
             f"(bound {result.level.edit_budget:.0%})"),
            ("chrF", f"{result.chrf:.2f}"),
            ("semantic similarity", "not measured" if result.semantic is None
             else f"{result.semantic:.4f}"),
            ("filled in", f"{result.n_substitutions} substituted, {result.n_deletions} "
             f"left out, {result.n_case_changes} case changes")]
    table = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>"
                    for a, b in rows)
    edits = edits_in_reconstruction(result)
    listing = "".join(
        f"<li><del>{html.escape(o)}</del> → <code>{html.escape(c.chosen)}</code> ({k})</li>"
        for (_, _, o, k), c in zip(edits[:200], [c for c in result.choices
                                                 if c.kind != "keep"][:200]))
    head = (f'<section class="lmp-lossy"><p>Quality {result.quality} '
            f'({html.escape(result.level.name)}). Outlined tokens are what the model filled '
            f'in; hover for the original.</p><table>{table}</table>'
            f'<details class="lmp-edits"><summary>changes ({len(edits)})</summary>'
            f"<ul>{listing}</ul></details></section>")
    data = _script_safe(json.dumps([[a, b, o, k] for a, b, o, k in edits if b > a],
                                   ensure_ascii=False))
    page = page.replace('<main id="lmp-root">', head + '<main id="lmp-root">', 1)
    return page.replace("</body>", _EXTRA.replace("@EDITS@", data) + "</body>", 1)
