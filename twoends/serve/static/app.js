// The twoends web page: send one image (or audio clip, for an audio model) to /v1/predict, show the
// top classes, and recompute them at any temperature from the returned logits (no second request).
// An audio clip gets a player, and a timeline of its segments when the model gives them.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, pred: null, file: null, binary: false };

// ---- numerics (the same as twoends.head, in float64) ---------------------------------

function toNumber(x) {
  // Prediction.to_dict writes -inf logits (masked classes) as "-inf"
  if (x === "-inf") return -Infinity;
  if (x === "inf") return Infinity;
  return x === null ? NaN : x;
}

function softmax(logits, t) {
  const z = logits.map((x) => x / t);
  const m = Math.max(...z.filter(Number.isFinite));
  let sum = 0;
  for (const v of z) sum += Math.exp(v - m);
  const lse = m + Math.log(sum);
  const logp = z.map((v) => v - lse);
  return { p: logp.map(Math.exp), logp };
}

function sigmoid(x) {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

// probabilities, entropy (nats) and its maximum, at temperature t
function distribution(logits, activation, t) {
  if (activation === "softmax" || state.binary) {
    // a one-logit binary model comes back as [0, z]: softmax of that is [1 - sigmoid(z), sigmoid(z)]
    const { p, logp } = softmax(logits, t);
    let h = 0;
    p.forEach((pi, i) => { if (pi > 0) h -= pi * logp[i]; });
    return { p, entropy: h, maxEntropy: Math.log(p.length) };
  }
  const p = logits.map((x) => sigmoid(x / t));
  let h = 0;
  for (const pi of p) {
    if (pi > 0) h -= pi * Math.log(pi);
    if (pi < 1) h -= (1 - pi) * Math.log(1 - pi);
  }
  return { p, entropy: h, maxEntropy: p.length * Math.LN2 };
}

// ---- temperature slider: log scale, 0.1 .. 10 ------------------------------------------

function temperature() {
  return Math.pow(10, parseFloat($("temperature").value));
}

function setTemperature(t) {
  $("temperature").value = Math.log10(t).toFixed(3);
}

// ---- rendering ---------------------------------------------------------------------

const pct = (p) => (p >= 0.001 ? (100 * p).toFixed(1) : (100 * p).toPrecision(2)) + "%";

function render() {
  const pred = state.pred;
  if (!pred) return;
  const t = temperature();
  const logits = pred.logits.map(toNumber);
  const { p, entropy, maxEntropy } = distribution(logits, pred.activation, t);
  const k = Math.min(parseInt($("top-k").value, 10), pred.top_k.length);
  const top = pred.top_k.slice(0, k); // ranking does not change with temperature

  $("t-value").textContent = t.toFixed(2);
  $("t-value").dataset.t = String(t);
  // over the fitted out-of-distribution threshold: say so, and show the top class only as the closest
  const ood = pred.ood === true;
  $("top-label").textContent = ood ? "none of the above" : top[0].label;
  $("top-label").dataset.ood = String(ood);
  $("ood-note").textContent = ood
    ? `closest: ${top[0].label}; out-of-distribution score ${pred.ood_score.toFixed(2)} is over the fitted threshold`
    : "";
  $("top-prob").textContent = pct(p[top[0].index]);
  $("top-prob").dataset.probability = String(p[top[0].index]);

  const bars = $("bars");
  bars.replaceChildren(...top.map((c) => {
    const li = document.createElement("li");
    li.dataset.index = c.index;
    li.dataset.label = c.label;
    li.dataset.probability = String(p[c.index]);
    li.innerHTML = '<div class="track"><div class="fill"></div><div class="name"></div></div><div class="pct"></div>';
    li.querySelector(".fill").style.width = (100 * p[c.index]).toFixed(2) + "%";
    li.querySelector(".name").textContent = c.label;
    const idx = document.createElement("span");
    idx.className = "idx";
    idx.textContent = "#" + c.index;
    li.querySelector(".name").appendChild(idx);
    li.querySelector(".pct").textContent = pct(p[c.index]);
    return li;
  }));

  $("entropy").textContent = entropy.toFixed(3) + " nats";
  $("entropy").dataset.entropy = String(entropy);
  $("entropy-meter").style.width = (100 * entropy / maxEntropy).toFixed(1) + "%";
  $("entropy-meter").parentElement.title = `${(100 * entropy / maxEntropy).toFixed(1)}% of the maximum, ${maxEntropy.toFixed(2)} nats`;
  const sorted = top.map((c) => p[c.index]);
  $("margin").textContent = sorted.length > 1 ? (sorted[0] - sorted[1]).toFixed(3) : "1.000";
  $("activation").textContent = state.binary ? "sigmoid" : pred.activation;
  $("classes").textContent = `${state.binary ? 1 : logits.length} output${logits.length === 1 ? "" : "s"}`;
  renderSet(pred, t);
  renderGroups(pred, logits, p, t);
  renderSegments(pred);
}

// group probabilities at this temperature: softmax sums the classes; sigmoid, 1 - prod(1 - p) (independence)
function renderGroups(pred, logits, p, t) {
  const info = state.model && state.model.groups;
  $("groups-box").hidden = !info;
  if (!info) return;
  const sigmoidHead = pred.activation === "sigmoid" && !state.binary;
  const rows = Object.entries(info.groups).map(([label, members]) => {
    const prob = sigmoidHead
      ? 1 - members.reduce((q, i) => q * (1 - sigmoid(logits[i] / t)), 1)
      : members.reduce((s, i) => s + p[i], 0);
    return { label, prob };
  }).sort((a, b) => b.prob - a.prob);
  $("group-bars").replaceChildren(...rows.map(({ label, prob }) => {
    const li = document.createElement("li");
    li.dataset.label = label;
    li.dataset.probability = String(prob);
    li.innerHTML = '<div class="track"><div class="fill"></div><div class="name"></div></div><div class="pct"></div>';
    li.querySelector(".fill").style.width = (100 * prob).toFixed(2) + "%";
    li.querySelector(".name").textContent = label;
    li.querySelector(".pct").textContent = pct(prob);
    return li;
  }));
  $("group-note").textContent = info.rule;
}

function renderSegments(pred) {
  const box = $("timeline-box");
  const line = $("timeline");
  line.replaceChildren();
  if (!pred.segments) { box.classList.remove("shown"); return; }
  box.classList.add("shown");
  const player = $("player");
  const ends = pred.segments.map((s) => s.end);
  const length = Number.isFinite(player.duration) && player.duration > 0 ? player.duration : Math.max(1e-9, ...ends);
  for (const s of pred.segments) {
    const div = document.createElement("div");
    div.className = "seg";
    Object.assign(div.dataset, { start: s.start, end: s.end, label: s.label, probability: s.probability });
    div.style.left = (100 * s.start / length).toFixed(3) + "%";
    div.style.width = (100 * (s.end - s.start) / length).toFixed(3) + "%";
    div.textContent = s.label;
    div.title = `${s.label}: ${s.start.toFixed(2)}–${s.end.toFixed(2)} s, mean probability ${pct(s.probability)}`;
    div.addEventListener("click", () => { player.currentTime = s.start; player.play().catch(() => {}); });
    line.appendChild(div);
  }
  $("timeline-end").textContent = length.toFixed(2) + " s";
  $("timeline-note").textContent = pred.segments.length ? `${pred.segments.length} segment(s); click one to play it`
    : "no label holds anywhere in the clip";
}

function renderSet(pred, t) {
  const box = $("prediction-set");
  box.replaceChildren();
  if (!pred.prediction_set) {
    box.innerHTML = '<div class="note">No conformal calibration is loaded, so the server gives no prediction set. ' +
      "Serve with <code>--calibration FILE</code> (from <code>twoends calibrate</code>) to get sets with a coverage guarantee.</div>";
    return;
  }
  const chips = document.createElement("div");
  chips.className = "chips";
  for (const label of pred.prediction_set) {
    const span = document.createElement("span");
    span.className = "chip";
    span.textContent = label;
    chips.appendChild(span);
  }
  const note = document.createElement("div");
  note.className = "note";
  note.textContent = `${pred.prediction_set.length} class${pred.prediction_set.length === 1 ? "" : "es"}` +
    (pred.calibration ? ` · ${pred.calibration}` : "") +
    (Math.abs(t - pred.temperature) > 1e-9 ? ` · computed by the server at T = ${pred.temperature}` : "");
  box.append(chips, note);
}

function showError(title, message) {
  const box = $("error");
  box.replaceChildren();
  if (!title) { box.style.display = "none"; return; }
  const b = document.createElement("b");
  b.textContent = title;
  const m = document.createElement("div");
  m.textContent = message || "";
  box.append(b, m);
  box.style.display = "block";
}

// ---- talking to the server -----------------------------------------------------------

async function loadModel() {
  try {
    const r = await fetch("/v1/model");
    const m = await r.json();
    state.model = m;
    state.binary = m.num_outputs === 1;
    $("model-name").textContent = m.model;
    const labels = m.labels && m.labels.count ? `${m.labels.count} classes` : "";
    const batch = m.server ? `batches of up to ${m.server.max_batch_size}` : "";
    $("model-meta").textContent = [m.backend, labels, batch].filter(Boolean).join(" · ");
    $("model-path").textContent = m.model;
    if (m.temperature) setTemperature(m.temperature);
    if (m.takes === "audio") {
      document.body.classList.add("audio");
      $("input-kind").textContent = "Audio clip";
      $("hint").innerHTML = "<strong>Drop an audio clip here</strong>or click to choose a file<br>WAV, FLAC, OGG, MP3, M4A, Opus, video";
      $("file").accept = "audio/*,video/*";
      $("example-file").textContent = "clip.wav";
      $("empty-note").textContent = "No clip yet. The model's answer for the whole clip will show here.";
    }
  } catch (e) {
    $("model-meta").textContent = "cannot reach the server";
  }
}

async function predict(file) {
  state.file = file;
  $("filename").textContent = `${file.name} · ${(file.size / 1024).toFixed(0)} KB`;
  const audio = document.body.classList.contains("audio");
  const shown = audio ? $("player") : $("preview");
  if (shown.src) URL.revokeObjectURL(shown.src);
  shown.src = URL.createObjectURL(file);
  if (audio) shown.classList.add("loaded");
  $("drop").classList.add("has-image");
  $("result").classList.add("busy");
  showError(null);
  const form = new FormData();
  form.append("file", file, file.name);
  const started = performance.now();
  try {
    const r = await fetch("/v1/predict?include_logits=true&top_k=10", { method: "POST", body: form });
    const body = await r.json().catch(() => ({ error: { type: `HTTP ${r.status}`, message: "the server sent no JSON" } }));
    if (!r.ok || body.error) {
      state.pred = null;
      $("result").classList.add("empty");
      showError(body.error ? body.error.type : `HTTP ${r.status}`, body.error ? body.error.message : "");
      return;
    }
    state.pred = body;
    $("timing").textContent = `${(performance.now() - started).toFixed(0)} ms round trip · ${body.model}`;
    $("result").classList.remove("empty");
    render();
  } catch (e) {
    showError("Network error", String(e));
  } finally {
    $("result").classList.remove("busy");
  }
}

// ---- wiring --------------------------------------------------------------------------

function pick(files) {
  if (files && files.length) predict(files[0]);
}

const drop = $("drop");
drop.addEventListener("click", () => $("file").click());
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); pick(e.dataTransfer.files); });
$("file").addEventListener("change", (e) => pick(e.target.files));
$("temperature").addEventListener("input", render);
$("top-k").addEventListener("change", render);
$("t-value").addEventListener("dblclick", () => { setTemperature(state.pred ? state.pred.temperature : 1); render(); });
$("host").textContent = location.host;
loadModel();
