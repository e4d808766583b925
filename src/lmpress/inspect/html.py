"""The self-contained heatmap page: one HTML file with the script (static/heatmap.js, which
brings its own CSS) and the inspection's JSON inlined, so it opens anywhere offline."""

from __future__ import annotations

import html
import json
from importlib.resources import files

from .records import Inspection

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{margin:24px auto;max-width:1100px;padding:0 16px;background:#fafafa}}
h1{{font:600 20px system-ui,sans-serif;margin:0 0 8px}}</style>
</head>
<body>
<h1>{title}</h1>
<main id="lmp-root"></main>
<script>{script}</script>
<script id="lmp-data" type="application/json">{data}</script>
<script>renderHeatmap(document.getElementById("lmp-root"),
  JSON.parse(document.getElementById("lmp-data").textContent));</script>
</body>
</html>
"""


def heatmap_js() -> str:
    """The page's script; the web server serves the same file."""
    return files(__package__).joinpath("static/heatmap.js").read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    """JSON that cannot end its <script> element: <, > and & as \\u escapes (valid JSON
    inside strings, the only place they can occur)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(inspection: Inspection, title: str | None = None) -> str:
    """A complete HTML page showing `inspection` as a heatmap."""
    title = title or f"lmpress inspect — {inspection.model}"
    data = json.dumps(inspection.to_json(), ensure_ascii=False, separators=(",", ":"))
    script = heatmap_js().replace("</script", "<\\/script")
    return _PAGE.format(title=html.escape(title), script=script, data=_script_safe(data))
