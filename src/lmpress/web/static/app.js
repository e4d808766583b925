// The lmpress page: tabs, requests to the local server, result tables and downloads.
// The heatmap itself is drawn by renderHeatmap() from /heatmap.js (lmpress.inspect).
"use strict";

const $ = (id) => document.getElementById(id);
let info = { max_bytes: Infinity, models: [] };

// -- talking to the server ---------------------------------------------------------------

function fmtBytes(n) {
  return n.toLocaleString("en-US") + " byte" + (n === 1 ? "" : "s");
}

function sizeProblem(n) {
  return n > info.max_bytes
    ? `the upload is ${n} bytes; this server accepts at most ${info.max_bytes} bytes per ` +
      "request — restart it with a larger --max-bytes, or use the lmpress command line " +
      "for large files"
    : null;
}

// POST a body; resolve to the Response, or throw an Error whose message is for people.
async function post(path, params, body) {
  const problem = sizeProblem(body.size);
  if (problem) throw new Error(problem);
  const query = new URLSearchParams(params).toString();
  let response;
  try {
    response = await fetch(`${path}?${query}`, { method: "POST", body });
  } catch (e) {
    throw new Error("could not reach the lmpress server; is `lmpress serve` still running?");
  }
  if (!response.ok) {
    let message = `the server answered HTTP ${response.status}`;
    try {
      message = (await response.json()).error || message;
    } catch (e) { /* not JSON: keep the status line */ }
    throw new Error(message);
  }
  return response;
}

// Run `work` with the section's buttons disabled and an elapsed-time line; show its
// result line, or its error, in the status element.
async function busy(section, statusEl, work) {
  const buttons = section.querySelectorAll("button.primary, button[id$=download]");
  buttons.forEach((b) => { b.disabled = true; });
  statusEl.className = "status working";
  const started = Date.now();
  const tick = () => {
    statusEl.textContent = `working… ${Math.round((Date.now() - started) / 1000)} s ` +
      "(the model codes a few KB per second)";
  };
  tick();
  const timer = setInterval(tick, 1000);
  try {
    const message = await work();
    statusEl.className = "status ok";
    statusEl.textContent = message || "";
  } catch (e) {
    statusEl.className = "status error";
    statusEl.textContent = e.message;
  } finally {
    clearInterval(timer);
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function saveBlob(blob, filename) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}

function filenameOf(response, fallback) {
  const m = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
  return m ? m[1] : fallback;
}

// -- results -----------------------------------------------------------------------------

function fillCodecTable(table, result) {
  // lmpress's archive size comes from the inspection (the very archive compress makes)
  const n = result.inspection.n_bytes;
  const archive = result.inspection.archive_bytes;
  const rows = [{ name: `lmpress (${result.model}${result.adapt ? "" : ", no adaptation"})`,
                  bytes: archive, bpb: 8 * archive / n, ours: true }];
  for (const c of result.classical) {
    rows.push({ name: c.name, bytes: c.n_bytes, bpb: c.bits_per_byte });
  }
  rows.sort((a, b) => a.bpb - b.bpb);
  const worst = Math.max(...rows.map((r) => r.bpb), 8);
  table.replaceChildren();
  const head = table.insertRow();
  for (const text of ["codec", "bytes", "bits/byte", ""]) {
    const th = document.createElement("th");
    th.textContent = text;
    head.appendChild(th);
  }
  for (const r of rows) {
    const tr = table.insertRow();
    tr.className = r.ours ? "ours" : "";
    tr.insertCell().textContent = r.name;
    tr.insertCell().textContent = r.bytes.toLocaleString("en-US");
    tr.insertCell().textContent = r.bpb.toFixed(3);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${(100 * r.bpb / worst).toFixed(1)}%`;
    tr.insertCell().appendChild(bar);
  }
  table.createCaption().textContent = `${fmtBytes(n)} in, every codec on the same ` +
    `bytes; lmpress took ${result.seconds.toFixed(1)} s. Sizes include headers.`;
}

function showResult(box, result) {
  fillCodecTable(box.querySelector("table.codecs"), result);
  const heat = box.querySelector(".heatmap-box");
  heat.replaceChildren();
  renderHeatmap(heat, result.inspection);
  box.hidden = false;
}

// -- the three panels --------------------------------------------------------------------

function inspectBody() {
  const file = $("inspect-file").files[0];
  if (file) return { body: file, name: file.name };
  const text = $("inspect-text").value;
  if (!text) throw new Error("paste some text or choose a file first");
  return { body: new Blob([text], { type: "text/plain" }), name: "text.txt" };
}

async function runInspect() {
  const { body, name } = inspectBody();
  const params = { model: $("inspect-model").value, adapt: $("inspect-adapt").checked };
  const result = await (await post("/api/inspect", params, body)).json();
  showResult($("inspect-result"), result);
  return `${name}: done`;
}

async function compressAndSave(body, name, model, adapt) {
  const response = await post("/api/compress", { model, adapt, name }, body);
  const blob = await response.blob();
  const nIn = Number(response.headers.get("x-lmpress-original-bytes"));
  const filename = filenameOf(response, "text.lmp");
  saveBlob(blob, filename);
  const bpb = nIn ? `, ${(8 * blob.size / nIn).toFixed(3)} bits/byte` : "";
  return `${filename}: ${fmtBytes(nIn)} → ${fmtBytes(blob.size)}${bpb}; downloaded`;
}

async function runInspectDownload() {
  const { body, name } = inspectBody();
  return compressAndSave(body, name, $("inspect-model").value, $("inspect-adapt").checked);
}

async function runCompress() {
  const file = $("compress-file").files[0];
  if (!file) throw new Error("choose a file to compress first");
  return compressAndSave(file, file.name, $("compress-model").value, $("compress-adapt").checked);
}

async function runDecompress() {
  const file = $("decompress-file").files[0];
  if (!file) throw new Error("choose a .lmp archive to decompress first");
  const response = await post("/api/decompress", { name: file.name }, file);
  const blob = await response.blob();
  const filename = filenameOf(response, "decompressed.out");
  saveBlob(blob, filename);
  return `${filename}: ${fmtBytes(file.size)} → ${fmtBytes(blob.size)} ` +
    `(model ${response.headers.get("x-lmpress-models")}); downloaded`;
}

async function runCompare() {
  const textA = $("compare-text-a").value;
  const textB = $("compare-text-b").value || textA;
  if (!textA) throw new Error("paste a text on the left first");
  const adapt = $("compare-adapt").checked;
  for (const [side, text] of [["a", textA], ["b", textB]]) {
    const params = { model: $(`compare-model-${side}`).value, adapt };
    const body = new Blob([text], { type: "text/plain" });
    const result = await (await post("/api/inspect", params, body)).json();
    showResult($(`compare-result-${side}`), result);
  }
  return "done";
}

// -- wiring ------------------------------------------------------------------------------

function selectTab(tab) {
  for (const t of document.querySelectorAll("[role=tab]")) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
}

function on(buttonId, sectionId, statusId, work) {
  $(buttonId).addEventListener("click", () => busy($(sectionId), $(statusId), work));
}

async function start() {
  for (const t of document.querySelectorAll("[role=tab]")) {
    t.addEventListener("click", () => selectTab(t));
  }
  on("inspect-run", "inspect", "inspect-status", runInspect);
  on("inspect-download", "inspect", "inspect-status", runInspectDownload);
  on("compress-run", "codec", "compress-status", runCompress);
  on("decompress-run", "codec", "decompress-status", runDecompress);
  on("compare-run", "compare", "compare-status", runCompare);
  $("inspect-clear").addEventListener("click", () => { $("inspect-file").value = ""; });
  try {
    info = await (await fetch("/api/info")).json();
  } catch (e) {
    $("limits").textContent = "could not reach the lmpress server; reload the page";
    return;
  }
  for (const select of document.querySelectorAll("select.model")) {
    for (const m of info.models) {
      const option = new Option(m.name + (m.default ? " (default)" : ""), m.name,
                                m.default, m.default);
      option.title = m.summary;
      select.add(option);
    }
  }
  $("limits").textContent = `Uploads up to ${fmtBytes(info.max_bytes)}; ` +
    `classical codecs: ${info.codecs.join(", ") || "none"}. ` +
    "Everything runs on this machine; nothing is stored.";
  document.body.dataset.ready = "1";
}

start();
