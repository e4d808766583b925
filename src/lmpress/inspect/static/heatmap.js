/* lmpress inspect: the heatmap of an inspection, drawn from `Inspection.to_json()`.
 *
 *   renderHeatmap(containerElement, data)
 *
 * draws into the container: a summary (bits per byte, the archive's bit budget), a legend,
 * a chart of bits per byte along the text, the most surprising spans, and the text with
 * one <span class="lmp-tok"> per record coloured by its bits; hovering a token shows its
 * bits, rank, entropy and the model's top alternatives. Self-contained: no libraries, no
 * network; it adds its own <style> once. Token text is inserted as text, never as HTML.
 */
(function (global) {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var CSS = [
    ".lmp-heatmap{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d1d1f}",
    ".lmp-heatmap h2{font-size:15px;margin:18px 0 6px}",
    ".lmp-summary p{margin:2px 0}",
    ".lmp-big{font-size:22px;font-weight:650}",
    ".lmp-budget{border-collapse:collapse;margin:6px 0}",
    ".lmp-budget td{padding:1px 10px 1px 0}",
    ".lmp-budget td.num{text-align:right;font-variant-numeric:tabular-nums}",
    ".lmp-budget tr.total td{border-top:1px solid #bbb;font-weight:600}",
    ".lmp-legend{display:flex;flex-wrap:wrap;gap:4px;align-items:center;margin:8px 0}",
    ".lmp-legend span.sw{padding:1px 8px;border-radius:3px;font-size:12px}",
    ".lmp-chart{width:100%;height:150px;display:block;cursor:crosshair}",
    ".lmp-chart .area{fill:#e8453c33;stroke:#c0392b;stroke-width:1}",
    ".lmp-chart .mean{stroke:#333;stroke-dasharray:4 3;stroke-width:1}",
    ".lmp-chart .stored{fill:#9993}",
    ".lmp-chart text{font-size:11px;fill:#555}",
    ".lmp-spans{margin:4px 0;padding-left:22px}",
    ".lmp-spans a{cursor:pointer;color:#0645ad}",
    ".lmp-spans code{background:#f3f3f3;padding:0 3px;white-space:pre-wrap}",
    ".lmp-text{font:13px/1.6 ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;",
    "white-space:pre-wrap;word-break:break-all;border:1px solid #ddd;padding:10px;",
    "border-radius:4px;background:#fff}",
    ".lmp-tok{border-radius:2px}",
    ".lmp-tok:empty{padding-left:2px}",
    ".lmp-tok:hover,.lmp-flash{outline:2px solid #1d1d1f;outline-offset:0}",
    ".lmp-stored{background-image:repeating-linear-gradient(135deg,rgba(0,0,0,.16) 0 2px,",
    "transparent 2px 5px)}",
    ".lmp-nl{opacity:.45}",
    ".lmp-tip{position:fixed;z-index:1000;display:none;max-width:360px;background:#1d1d1f;",
    "color:#f5f5f7;padding:8px 10px;border-radius:6px;font-size:12.5px;line-height:1.4;",
    "pointer-events:none;box-shadow:0 4px 16px rgba(0,0,0,.25)}",
    ".lmp-tip .tok{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:14px;",
    "white-space:pre;background:#ffffff22;padding:0 3px;border-radius:3px}",
    ".lmp-tip table{border-collapse:collapse;margin-top:4px;width:100%}",
    ".lmp-tip td{padding:0 6px 0 0;white-space:pre;font-family:ui-monospace,Menlo,monospace}",
    ".lmp-tip td.p{text-align:right}",
    ".lmp-tip .bar{display:inline-block;height:8px;background:#7fb3ff;border-radius:2px}",
    ".lmp-tip tr.hit td{color:#ffd54f}"
  ];
  for (var b = 0; b < 10; b++) {
    CSS.push(".lmp-b" + b + "{background-color:var(--lmp-b" + b + ");color:var(--lmp-i" + b +
             ")}");
  }

  function injectStyle(doc) {
    if (doc.getElementById("lmp-heatmap-style")) return;
    var s = doc.createElement("style");
    s.id = "lmp-heatmap-style";
    s.textContent = CSS.join("");
    (doc.head || doc.documentElement).appendChild(s);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function num(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    return Number(x).toLocaleString("en-US", {minimumFractionDigits: digits,
                                              maximumFractionDigits: digits});
  }

  // Controls other than tab and newline as their Unicode pictures, so that every byte
  // shows; a newline as a visible ↵ before the line break.
  function visible(text) {
    return String(text).replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, function (c) {
      var n = c.charCodeAt(0);
      return n === 0x7f ? "\u2421" : String.fromCharCode(0x2400 + n);
    }).replace(/[\u0080-\u009f]/g, "\ufffd");
  }

  function bucketOf(bits, scale) {
    for (var i = 0; i < scale.length; i++) {
      var m = scale[i].max_bits;
      if (m === null || m === undefined || bits < m) return i;
    }
    return scale.length - 1;
  }

  function defaultScale() {
    return [{max_bits: 1, color: "#f4f9ee", ink: "#000"}, {max_bits: 2, color: "#d9efc2", ink: "#000"},
            {max_bits: 4, color: "#ffe08a", ink: "#000"}, {max_bits: 8, color: "#fda55c", ink: "#000"},
            {max_bits: 16, color: "#e8453c", ink: "#fff"}, {max_bits: null, color: "#8b0f2e", ink: "#fff"}];
  }

  function summary(root, data, recordBits) {
    var t = data.totals || {};
    var n = data.n_bytes || 0;
    var box = el("section", "lmp-summary");
    var total = recordBits + (t.flush_bits || 0) + (t.container_bits || 0);
    var head = el("p");
    head.appendChild(el("span", "lmp-big", n ? num(total / n, 3) : "–"))
      .setAttribute("data-field", "archive-bpb");
    head.appendChild(document.createTextNode(
      " bits/byte for the whole archive (" + num(n, 0) + " bytes → " +
      num(data.archive_bytes, 0) + " bytes); " + (n ? num(recordBits / n, 3) : "–") +
      " bits/byte for the tokens and stored segments alone."));
    box.appendChild(head);
    var level = data.level === null || data.level === undefined ? "" : ", level " + data.level;
    box.appendChild(el("p", null, "model " + data.model + level + ", adaptation " +
                       (data.adapt ? "on" : "off") + ", " + num(data.n_tokens, 0) + " tokens"));
    var rows = [
      ["tokens coded by the model", t.token_bits, "−log2 p of the coder's probability"],
      ["segments stored raw/LZMA", t.stored_bits, "payload bits, spread over their bytes"],
      ["range coder flush", t.flush_bits, "the coders' final bytes"],
      ["container overhead", t.container_bits, "header, stream table, checksum, seal"],
      ["total", total, "= 8 × " + num(data.archive_bytes, 0) + " archive bytes"]];
    var table = el("table", "lmp-budget");
    rows.forEach(function (r, i) {
      var tr = el("tr", i === rows.length - 1 ? "total" : null);
      tr.appendChild(el("td", null, r[0]));
      tr.appendChild(el("td", "num", num(r[1], 1) + " bits"));
      tr.appendChild(el("td", null, r[2]));
      table.appendChild(tr);
    });
    box.appendChild(table);
    if (data.adapt && t.lm_only_bits) {
      var saved = t.adaptation_saved_bits || 0;
      box.appendChild(el("p", null, "online adaptation saved " + num(saved, 1) + " bits (" +
                         num(100 * saved / t.lm_only_bits, 1) + "% of the language model alone)"));
    }
    root.appendChild(box);
  }

  function legend(root, scale) {
    var box = el("div", "lmp-legend");
    box.appendChild(el("span", null, "bits per token:"));
    var lower = 0;
    scale.forEach(function (s, i) {
      var label = s.max_bits === null ? "≥" + lower : lower + "–" + s.max_bits;
      box.appendChild(el("span", "sw lmp-b" + i, label));
      lower = s.max_bits;
    });
    box.appendChild(el("span", "sw lmp-stored", "stored raw/LZMA"));
    root.appendChild(box);
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  function chart(root, data, records, onPick) {
    var n = data.n_bytes || 0;
    if (!n || !records.length) return;
    var W = 1000, H = 150, left = 40, bottom = 18, top = 8;
    var bins = Math.max(1, Math.min(250, Math.ceil(records.length / 6)));
    var bits = new Float64Array(bins), bytes = new Float64Array(bins);
    records.forEach(function (r) {
      var i = Math.min(bins - 1, Math.floor(r.offset * bins / n));
      bits[i] += r.bits; bytes[i] += r.n_bytes;
    });
    var ys = [], ymax = 1;
    for (var i = 0; i < bins; i++) {
      ys.push(bytes[i] ? bits[i] / bytes[i] : 0);
      ymax = Math.max(ymax, ys[i]);
    }
    ymax = Math.ceil(ymax);
    var s = svg("svg", {"class": "lmp-chart", viewBox: "0 0 " + W + " " + H,
                        preserveAspectRatio: "none", role: "img"});
    s.appendChild(svg("title", {})).textContent =
      "bits per byte along the text (click to jump there)";
    var x = function (off) { return left + (W - left - 4) * off / n; };
    var y = function (v) { return top + (H - top - bottom) * (1 - v / ymax); };
    (data.segments || []).forEach(function (g) {
      if (g.kind !== "lm") {
        s.appendChild(svg("rect", {"class": "stored", x: x(g.offset), y: top,
                                   width: Math.max(1, x(g.offset + g.n_bytes) - x(g.offset)),
                                   height: H - top - bottom}));
      }
    });
    var d = "M" + x(0) + "," + y(0);
    ys.forEach(function (v, i) {
      d += "L" + x(i * n / bins) + "," + y(v) + "L" + x((i + 1) * n / bins) + "," + y(v);
    });
    d += "L" + x(n) + "," + y(0) + "Z";
    s.appendChild(svg("path", {"class": "area", d: d}));
    var mean = records.reduce(function (a, r) { return a + r.bits; }, 0) / n;
    s.appendChild(svg("line", {"class": "mean", x1: x(0), x2: x(n), y1: y(mean), y2: y(mean)}));
    [[ymax, y(ymax) + 10], [0, y(0)]].forEach(function (t) {
      s.appendChild(svg("text", {x: 2, y: t[1]})).textContent = t[0];
    });
    s.appendChild(svg("text", {x: x(0) + 4, y: top + 10})).textContent =
      "bits per byte (dashed: mean " + num(mean, 2) + ")";
    s.appendChild(svg("text", {x: x(n) - 110, y: H - 4})).textContent =
      "byte " + num(n, 0) + " →";
    s.addEventListener("click", function (ev) {
      var box = s.getBoundingClientRect();
      var fx = (ev.clientX - box.left) / box.width * W;
      onPick(Math.max(0, Math.min(n - 1, Math.floor((fx - left) / (W - left - 4) * n))));
    });
    root.appendChild(s);
  }

  function spansList(root, data, onPick) {
    var spans = data.spans || [];
    if (!spans.length) return;
    root.appendChild(el("h2", null, "Most surprising spans"));
    var ol = el("ol", "lmp-spans");
    spans.forEach(function (sp) {
      var li = el("li");
      var a = el("a", null, "bytes " + num(sp.start, 0) + "–" + num(sp.end, 0));
      a.addEventListener("click", function () { onPick(sp.start); });
      li.appendChild(a);
      li.appendChild(document.createTextNode(" " + num(sp.bits, 1) + " bits in " +
                                             sp.n_tokens + " tokens: "));
      li.appendChild(el("code", null, visible(sp.text).replace(/\n/g, "↵")));
      ol.appendChild(li);
    });
    root.appendChild(ol);
  }

  function tooltipFill(tip, r) {
    tip.textContent = "";
    var p = el("div");
    p.appendChild(el("span", "tok", visible(r.token).replace(/\n/g, "↵")));
    var hex = String(r.hex || "").replace(/(..)(?!$)/g, "$1 ");
    p.appendChild(document.createTextNode("  bytes " + (hex.length > 36 ? hex.slice(0, 35) +
                                                          "…" : hex)));
    tip.appendChild(p);
    var line = el("div", "lmp-tip-bits");
    line.style.fontWeight = "600";
    line.textContent = r.kind === "lm"
      ? num(r.bits, 2) + " bits" + (r.lm_bits !== null && r.lm_bits !== undefined &&
          Math.abs(r.lm_bits - r.bits) > 5e-3 ? " (language model alone " + num(r.lm_bits, 2) +
          ")" : "")
      : num(r.bits, 2) + " bits, stored as " + r.kind + " (spread per byte)";
    tip.appendChild(line);
    var facts = [];
    if (r.rank !== null && r.rank !== undefined) facts.push("rank " + r.rank);
    if (r.entropy !== null && r.entropy !== undefined)
      facts.push("entropy " + num(r.entropy, 2) + " bits");
    facts.push("offset " + num(r.offset, 0));
    tip.appendChild(el("div", null, facts.join(" · ")));
    var top = r.top || [];
    var pmax = top.reduce(function (a, t) { return Math.max(a, t[1]); }, 0) || 1;
    if (top.length) {
      tip.appendChild(el("div", null, "the model's top alternatives:"));
      var table = el("table");
      top.forEach(function (t) {
        var tr = el("tr", t[0] === r.token ? "hit" : null);
        tr.appendChild(el("td", null, JSON.stringify(visible(t[0]))));
        var bar = el("td");
        var sp = el("span", "bar");
        sp.style.width = Math.max(1, Math.round(80 * t[1] / pmax)) + "px";
        bar.appendChild(sp);
        tr.appendChild(bar);
        tr.appendChild(el("td", "p", num(100 * t[1], 1) + "%"));
        table.appendChild(tr);
      });
      tip.appendChild(table);
    }
  }

  function renderHeatmap(container, data) {
    injectStyle(container.ownerDocument || document);
    data = data || {};
    var records = data.records || [];
    var scale = data.scale && data.scale.length ? data.scale : defaultScale();
    container.textContent = "";
    container.classList.add("lmp-heatmap");
    scale.forEach(function (s, i) {
      container.style.setProperty("--lmp-b" + i, s.color);
      container.style.setProperty("--lmp-i" + i, s.ink);
    });
    var recordBits = records.reduce(function (a, r) { return a + (+r.bits || 0); }, 0);
    summary(container, data, recordBits);
    legend(container, scale);
    var text = el("div", "lmp-text");
    var spans = [];
    var pick = function (offset) {
      var lo = 0, hi = records.length - 1;
      while (lo < hi) {  // the last record starting at or before `offset`
        var mid = (lo + hi + 1) >> 1;
        if (records[mid].offset <= offset) lo = mid; else hi = mid - 1;
      }
      var s = spans[lo];
      if (!s) return;
      s.scrollIntoView({block: "center"});
      s.classList.add("lmp-flash");
      setTimeout(function () { s.classList.remove("lmp-flash"); }, 1500);
    };
    chart(container, data, records, pick);
    spansList(container, data, pick);
    container.appendChild(el("h2", null, "Text"));
    if (!records.length) text.textContent = "(empty input)";
    var frag = document.createDocumentFragment();
    records.forEach(function (r, i) {
      var s = el("span", "lmp-tok lmp-b" + bucketOf(+r.bits || 0, scale) +
                 (r.kind && r.kind !== "lm" ? " lmp-stored" : ""));
      s.setAttribute("data-i", i);
      var parts = visible(r.token || "").split("\n");
      parts.forEach(function (part, j) {
        if (j) {
          s.appendChild(el("span", "lmp-nl", "↵"));
          s.appendChild(document.createTextNode("\n"));
        }
        if (part) s.appendChild(document.createTextNode(part));
      });
      spans.push(s);
      frag.appendChild(s);
    });
    text.appendChild(frag);
    container.appendChild(text);
    var tip = el("div", "lmp-tip");
    tip.setAttribute("role", "tooltip");
    container.appendChild(tip);
    var place = function (ev) {
      var w = tip.offsetWidth, h = tip.offsetHeight;
      var x = ev.clientX + 14, y = ev.clientY + 16;
      if (x + w > window.innerWidth - 4) x = Math.max(4, ev.clientX - w - 14);
      if (y + h > window.innerHeight - 4) y = Math.max(4, ev.clientY - h - 16);
      tip.style.left = x + "px";
      tip.style.top = y + "px";
    };
    text.addEventListener("mouseover", function (ev) {
      var t = ev.target.closest ? ev.target.closest(".lmp-tok") : null;
      if (!t) return;
      tooltipFill(tip, records[+t.getAttribute("data-i")]);
      tip.style.display = "block";
      place(ev);
    });
    text.addEventListener("mousemove", function (ev) {
      if (tip.style.display === "block") place(ev);
    });
    text.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    return {jumpTo: pick};
  }

  global.renderHeatmap = renderHeatmap;
})(typeof window !== "undefined" ? window : this);
