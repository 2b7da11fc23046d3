// The explorer's page. It computes nothing itself: every number comes from
// the engine through the JSON API (cnn/explorer/server.py); this script draws.
// Everything from the server (a layer's name from a model file above all) is
// put on the page as text (textContent, text nodes), never parsed as HTML.
// What the page has done is also written on the page, in data- attributes
// (document.body.dataset.predictions, #panel's data-cell, #t-status's
// data-running...), which is what the browser tests read.
"use strict";

const state = { model: null, input: null, layers: [], explain: null, history: {}, predictions: 0, inflight: 0 };

// el("td", { className: "pad" }, "text", child, ...): an element with properties set and children
// appended, strings as text nodes
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  node.append(...children.filter(c => c !== null && c !== undefined));  // a string becomes a text node
  return node;
}

function progress() {  // the counters the tests wait on
  document.body.dataset.predictions = state.predictions;
  document.body.dataset.inflight = state.inflight;
}

async function api(path, body) {
  const options = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
                                              body: JSON.stringify(body) };
  const response = await fetch("/api/" + path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function fmt(v) {
  if (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.001)) return v.toExponential(2);
  return (Math.round(v * 10000) / 10000).toString();
}

// ------------------------------------------------------------ colour scales
function viridis(t) {  // a few stops of matplotlib's viridis, interpolated
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i;
  return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
}

function drawGrid(canvas, values, low, high, scale, colour) {
  const h = values.length, w = values[0].length;
  canvas.width = w * scale; canvas.height = h * scale;
  const ctx = canvas.getContext("2d");
  const span = high > low ? high - low : 1;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const [r, g, b] = colour((values[y][x] - low) / span);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x * scale, y * scale, scale, scale);
  }
}

function cellAt(canvas, event, h, w) {  // the [row, col] of an h x w map that a click on its canvas hit
  const box = canvas.getBoundingClientRect();
  return [Math.floor((event.clientY - box.top) / box.height * h), Math.floor((event.clientX - box.left) / box.width * w)];
}

const gray = t => { const v = Math.round(255 * t); return [v, v, v]; };

function drawInput(canvas, input) {  // the image the model sees: gray (h, w) or colour (h, w, 3), 0..255
  const h = input.length, w = input[0].length, scale = Math.max(1, Math.floor(168 / Math.max(h, w)));
  if (!Array.isArray(input[0][0])) { drawGrid(canvas, input, 0, 255, scale, gray); return; }
  canvas.width = w * scale; canvas.height = h * scale;
  const ctx = canvas.getContext("2d");
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const [r, g, b] = input[y][x];
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x * scale, y * scale, scale, scale);
  }
}
const diverging = t => t < 0.5 ? [Math.round(255 * 2 * t), Math.round(255 * 2 * t), 255]
                               : [255, Math.round(255 * 2 * (1 - t)), Math.round(255 * 2 * (1 - t))];

function legend(low, high) {
  const box = document.createElement("div");
  box.className = "legend";
  const bar = document.createElement("canvas");
  drawGrid(bar, [Array.from({ length: 40 }, (_, i) => i / 39)], 0, 1, 3, viridis);
  bar.style.height = "10px";
  box.append(fmt(low), bar, fmt(high));
  return box;
}

// ------------------------------------------------------------ 1. draw and predict
const pad = document.getElementById("pad");
const pen = pad.getContext("2d");
function clearPad() { pen.fillStyle = "#fff"; pen.fillRect(0, 0, pad.width, pad.height); }
clearPad();
let drawing = false, last = null, pending = null;

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}
pad.addEventListener("pointerdown", e => { drawing = true; last = point(e); pad.setPointerCapture(e.pointerId); stroke(e); });
pad.addEventListener("pointermove", e => { if (drawing) stroke(e); });
pad.addEventListener("pointerup", () => {
  drawing = false;
  if (pending) { clearTimeout(pending); pending = null; }  // the stroke is done: one prediction for it
  predictDrawing();
});
pad.addEventListener("pointercancel", () => { drawing = false; });

function stroke(event) {
  const p = point(event);
  pen.strokeStyle = "#000"; pen.lineWidth = 18; pen.lineCap = "round"; pen.lineJoin = "round";
  pen.beginPath(); pen.moveTo(last[0], last[1]); pen.lineTo(p[0], p[1]); pen.stroke();
  last = p;
  if (!pending) pending = setTimeout(() => { pending = null; predictDrawing(); }, 150);  // update as one draws
}

function predictDrawing() {
  const data = pen.getImageData(0, 0, pad.width, pad.height).data;
  const pixels = new Array(pad.width * pad.height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.round((data[4 * i] + data[4 * i + 1] + data[4 * i + 2]) / 3);
  return predict({ image: { width: pad.width, height: pad.height, pixels } });
}

async function predict(body) {
  let result;
  state.inflight += 1;
  progress();
  try { result = await api("predict", body); }
  catch (err) { document.getElementById("notes").textContent = err.message; return; }
  finally { state.inflight -= 1; progress(); }
  state.input = result.input;
  state.layers = result.layers;
  state.probabilities = result.probabilities;
  state.prediction = result.prediction;
  drawInput(document.getElementById("seen"), result.input);
  document.getElementById("notes").textContent = result.notes.join("; ");
  document.getElementById("prediction").textContent =
    `${result.prediction} (probability ${result.probabilities[result.prediction].toFixed(3)})`;
  const bars = document.getElementById("probabilities");
  bars.replaceChildren(...result.probabilities.map((p, k) => {
    const fill = el("span", { className: "fill" });
    fill.style.width = `${Math.max(1, 200 * p)}px`;
    const bar = el("div", { className: "bar", title: "how this probability was made" }, el("b", {}, String(k)), fill,
                   p.toFixed(3));
    bar.dataset.unit = k;
    bar.addEventListener("click", () => explainDense(k));
    return bar;
  }));
  drawLayers();
  labelChoices();
  state.predictions += 1;
  progress();
}

document.getElementById("clear").addEventListener("click", () => { clearPad(); });
document.getElementById("samples").addEventListener("change", e => {
  if (e.target.value === "") return;
  state.sampleLabel = state.sampleLabels[Number(e.target.value)];  // the backward pass's label by default
  predict({ sample: Number(e.target.value) });
});
pad.addEventListener("pointerdown", () => { state.sampleLabel = null; });

document.getElementById("photo").addEventListener("change", e => {  // a picture file: sent as the model's channels
  const file = e.target.files[0];
  if (!file) return;
  const picture = new Image();
  picture.onload = () => {
    const shrink = Math.min(1, 280 / Math.max(picture.width, picture.height));
    const w = Math.max(1, Math.round(picture.width * shrink)), h = Math.max(1, Math.round(picture.height * shrink));
    const canvas = el("canvas", { width: w, height: h }), ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, h); ctx.drawImage(picture, 0, 0, w, h);
    URL.revokeObjectURL(picture.src);
    const data = ctx.getImageData(0, 0, w, h).data, colour = state.model.input_shape[2] === 3, pixels = [];
    for (let i = 0; i < w * h; i++) {
      if (colour) pixels.push(data[4 * i], data[4 * i + 1], data[4 * i + 2]);
      else pixels.push(Math.round((data[4 * i] + data[4 * i + 1] + data[4 * i + 2]) / 3));
    }
    state.sampleLabel = null;
    predict({ image: { width: w, height: h, channels: colour ? 3 : 1, pixels } });
  };
  picture.src = URL.createObjectURL(file);
});

// ------------------------------------------------------------ 2. feature maps, and one cell explained
function drawLayers() {
  const root = document.getElementById("layers");
  root.replaceChildren();
  for (const layer of state.layers) {
    const box = el("div", { className: "layer" });
    box.dataset.index = layer.index;
    const [h, w, c] = layer.shape;
    box.append(el("h3", {}, `${layer.name} (${layer.type}) ${h}x${w}x${c}${layer.note ? " - " + layer.note : ""}`));
    const reads = readsText(layer.index);
    if (reads) box.append(el("p", { className: "small reads" }, reads));
    box.append(legend(layer.min, layer.max));
    const maps = document.createElement("div");
    maps.className = "maps";
    const scale = Math.max(2, Math.floor(56 / h));
    layer.maps.forEach((values, channel) => {
      const canvas = document.createElement("canvas");
      canvas.className = "map";
      canvas.dataset.layer = layer.index;
      canvas.dataset.channel = channel;
      canvas.title = `${layer.name} channel ${channel}`;
      drawGrid(canvas, values, layer.min, layer.max, scale, viridis);
      canvas.addEventListener("click", e => explain(layer.index, ...cellAt(canvas, e, h, w), channel));
      maps.append(canvas);
    });
    box.append(maps);
    root.append(box);
  }
  drawLinks();
}

function drawLinks() {
  // a graph's connections drawn in the left margin: a line from each layer to every layer that reads it,
  // wherever it is not simply the next one drawn (skip connections, a branch's two ends)
  const root = document.getElementById("layers"), column = document.getElementById("layers-col");
  const old = document.getElementById("links");  // beside the maps, not among them: #layers holds text only
  if (old) old.remove();
  const boxes = new Map([...root.querySelectorAll(".layer")].map(b => [Number(b.dataset.index), b]));
  const order = [...boxes.keys()];
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.id = "links";
  svg.setAttribute("width", "40");
  svg.setAttribute("height", String(column.scrollHeight));
  const top = column.getBoundingClientRect().top;
  let count = 0;
  for (const [k, index] of order.entries()) {
    for (const source of state.model.layers[index].inputs) {
      if (!boxes.has(source) || order[k - 1] === source) continue;
      const y1 = boxes.get(source).querySelector("h3").getBoundingClientRect().top - top + 9;
      const y2 = boxes.get(index).querySelector("h3").getBoundingClientRect().top - top + 9;
      const x = 34 - 7 * (count % 4);  // nested links side by side
      const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      path.setAttribute("d", `M 38 ${y1} C ${x - 20} ${y1}, ${x - 20} ${y2}, 38 ${y2}`);
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "#d08b00");
      path.setAttribute("stroke-width", "2");
      path.dataset.from = source;
      path.dataset.to = index;
      svg.append(path);
      count += 1;
    }
  }
  svg.dataset.links = count;
  column.prepend(svg);
}

const MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"];

function readsText(index) {
  // in a graph, which tensors a layer reads, when that is not just the layer listed before it
  const inputs = state.model.layers[index].inputs;
  if (inputs.length === 1 && inputs[0] === index - 1) return null;
  return "reads " + inputs.map(j => j < 0 ? "the input" : state.model.layers[j].name).join(" and ");
}

function table(values, cls) {  // a 2-D array as a small table; cls(i, j) gives a cell's class
  return el("table", { className: "grid" }, ...values.map((row, i) =>
    el("tr", {}, ...row.map((v, j) => el("td", { className: cls ? cls(i, j) : "" }, fmt(v))))));
}

async function explain(layerIndex, row, col, channel) {
  const layer = state.model.layers[layerIndex];
  const merging = MERGES.includes(layer.type);
  if (layer.type !== "Conv2D" && layer.type !== "MaxPooling2D" && !merging) {
    showPanel(`${layer.name} (${layer.type})`,
              [el("p", {}, "This layer has no windows to explain: choose a Conv2D, MaxPooling2D or merge layer's output.")]);
    return;
  }
  let e;
  const input = state.input;
  try { e = await api("explain", { input, layer: layerIndex, row, col, channel }); }
  catch (err) { showPanel("error", [el("p", {}, err.message)]); return; }
  state.explain = { ...e, input };  // with the input it is about
  if (e.kind === "merge") { explainMerge(e, input); return; }
  highlight(e.receptive, layerIndex, row, col, channel);
  const pad = (i, j) => e.inside[i][j] ? "" : "pad";
  const nodes = [el("p", {}, `Output cell [${row}, ${col}] of channel ${channel}; its window in the layer below is rows
    ${e.receptive.rows[0]}..${e.receptive.rows[1]}, columns ${e.receptive.cols[0]}..${e.receptive.cols[1]}
    (gray cells: padding, read as ${e.kind === "max" ? "-infinity" : "0"}).`)];
  if (e.kind === "conv") {
    const partial = e.products.map(p => p.flat().reduce((a, b) => a + b, 0));
    nodes.push(el("p", { id: "panel-sum" }, "sum of the products = ", el("b", {}, fmt(e.sum)),
      `, + bias ${fmt(e.bias)} = ${fmt(e.pre_activation)}; ${e.activation}(${fmt(e.pre_activation)}) = `,
      el("b", { id: "panel-value" }, fmt(e.value))));
    nodes.push(el("p", { className: "small" },
      `the sum, channel by channel: ${partial.map((v, k) => `${k}: ${fmt(v)}`).join(", ")}`));
    nodes.push(el("div", { className: "grids" }, ...e.window.map((w, k) => el("div", {},
      el("b", {}, `input channel ${k}`), ": window", table(w, pad), "weights", table(e.weights[k]),
      "products", table(e.products[k], pad)))));
  } else {
    nodes.push(table(e.window, (i, j) => (i === e.winner[0] && j === e.winner[1]) ? "win" : pad(i, j)));
    nodes.push(el("p", {}, "the largest value wins: ", el("b", { id: "panel-value" }, fmt(e.value)),
      ` at window cell [${e.winner}] (the first one, on ties); its gradient goes back to that cell alone.`));
  }
  nodes.push(el("p", {}, "the engine computed ", el("b", { id: "panel-engine" }, fmt(e.engine)),
    ` for this cell: ${e.equal ? "the same number" : "A DIFFERENT NUMBER"}.`));
  showPanel(`${e.name}: how one cell was computed`, nodes);
  const panel = document.getElementById("panel");  // what was explained, for the tests
  panel.dataset.cell = JSON.stringify(e.cell);
  panel.dataset.layer = e.layer;
  panel.dataset.input = JSON.stringify(input);
}

function explainMerge(e, input) {
  // a merge layer's cell: the cells of its inputs it was made from, each outlined on its own map
  const [row, col, channel] = e.cell;
  const ops = { Add: " + ", Subtract: " - ", Multiply: " x ", Maximum: ", ", Minimum: ", ", Average: " + " };
  const terms = e.inputs.map(i => `${i.name}[${i.cell.join(", ")}] = ${fmt(i.value)}`);
  const values = e.inputs.map(i => fmt(i.value)).join(ops[e.op] || ", ");
  const formula = e.op === "Concatenate" ? `a copy of ${terms[0]}`
    : e.op === "Maximum" || e.op === "Minimum" ? `${e.op.toLowerCase()}(${values})`
    : e.op === "Average" ? `(${values}) / ${e.inputs.length}` : values;
  const nodes = [el("p", {}, `Output cell [${row}, ${col}] of channel ${channel} is made from `,
                    e.inputs.length === 1 ? "one cell of one input" : `${e.inputs.length} cells, one of each input`,
                    e.op === "Concatenate" ? " (the channels of the inputs follow each other)." : "."),
                 el("ul", {}, ...terms.map(t => el("li", {}, t))),
                 el("p", {}, `${e.op}: ${formula} = `, el("b", { id: "panel-value" }, fmt(e.value))),
                 el("p", {}, "the engine computed ", el("b", { id: "panel-engine" }, fmt(e.engine)),
                    ` for this cell: ${e.equal ? "the same number" : "A DIFFERENT NUMBER"}.`)];
  showPanel(`${e.name}: how one cell was computed`, nodes);
  drawLayers();
  for (const i of e.inputs) {  // each source cell in red, on its map (or on the input)
    const canvas = i.layer < 0 ? document.getElementById("seen")
      : document.querySelector(`canvas.map[data-layer="${i.layer}"][data-channel="${i.cell[2]}"]`);
    if (!canvas) continue;
    if (i.layer < 0) drawInput(canvas, state.input);
    const [h, w] = i.layer < 0 ? state.model.input_shape : state.model.layers[i.layer].output_shape,
      ctx = canvas.getContext("2d");
    ctx.strokeStyle = "#ff2d00"; ctx.lineWidth = 2;
    ctx.strokeRect(i.cell[1] * canvas.width / w, i.cell[0] * canvas.height / h, canvas.width / w, canvas.height / h);
  }
  const panel = document.getElementById("panel");
  panel.dataset.cell = JSON.stringify(e.cell);
  panel.dataset.layer = e.layer;
  panel.dataset.input = JSON.stringify(input);
}

function showPanel(title, nodes) {
  document.getElementById("panel").hidden = false;
  document.getElementById("panel-title").textContent = title;
  document.getElementById("panel-body").replaceChildren(...nodes);
}

function highlight(field, layerIndex, row, col, channel) {
  // the receptive field, outlined on every map of the layer below (or on the input); the cell itself in blue
  drawLayers();
  const own = document.querySelector(`canvas.map[data-layer="${layerIndex}"][data-channel="${channel}"]`);
  if (own) {
    const [oh, ow] = state.model.layers[layerIndex].output_shape, ctx = own.getContext("2d");
    ctx.strokeStyle = "#00a2ff"; ctx.lineWidth = 2;
    ctx.strokeRect(col * own.width / ow, row * own.height / oh, own.width / ow, own.height / oh);
  }
  const targets = field.layer < 0 ? [document.getElementById("seen")]
    : [...document.querySelectorAll(`canvas.map[data-layer="${field.layer}"]`)];
  if (field.layer < 0) drawInput(targets[0], state.input);
  for (const canvas of targets) {
    const ctx = canvas.getContext("2d"), sy = canvas.height / field.height, sx = canvas.width / field.width;
    ctx.strokeStyle = "#ff2d00"; ctx.lineWidth = 2;
    ctx.strokeRect(field.cols[0] * sx, field.rows[0] * sy, (field.cols[1] - field.cols[0] + 1) * sx,
                   (field.rows[1] - field.rows[0] + 1) * sy);
  }
}

// ------------------------------------------------------------ the backward pass, one weight, one step
const backward = { result: null, weight: null };

function labelChoices() {
  const select = document.getElementById("b-label");
  const classes = state.probabilities ? state.probabilities.length : 10;
  const chosen = state.sampleLabel !== undefined && state.sampleLabel !== null ? state.sampleLabel : state.prediction;
  select.replaceChildren(...Array.from({ length: classes }, (_, k) =>
    el("option", { value: String(k), textContent: String(k), selected: k === chosen })));
}

function backwardPanel(title, nodes, e) {
  const panel = document.getElementById("b-panel");
  panel.hidden = false;
  document.getElementById("b-title").textContent = title;
  document.getElementById("b-body").replaceChildren(...nodes);
  for (const key of ["kind", "engine", "sum", "equal", "after", "computed", "layer"])
    if (e && e[key] !== undefined && e[key] !== null) panel.dataset[key] = String(e[key]);
  if (e && e.position) panel.dataset.position = JSON.stringify(e.position);
  if (e && e.cell) panel.dataset.cell = JSON.stringify(e.cell);
}

function sameNumber(e) {
  return el("p", {}, "the engine computed ", el("b", { className: "b-engine" }, fmt(e.engine)),
            `: ${e.equal ? "the same number" : "A DIFFERENT NUMBER"}.`);
}

async function runBackward() {
  if (!state.input) return;
  const label = Number(document.getElementById("b-label").value);
  let r;
  try { r = await api("backward", { input: state.input, label }); }
  catch (err) { document.getElementById("b-loss").textContent = err.message; return; }
  backward.result = { ...r, input: state.input };
  document.getElementById("b-loss").textContent =
    `loss ${fmt(r.loss)} for label ${r.label} (the model gives it probability ${fmt(r.probabilities[r.label])})`;
  const root = document.getElementById("b-maps");
  root.replaceChildren();
  const maps = [];
  if (r.input_gradient) maps.push({ index: -1, name: "the input", type: "image", shape: state.model.input_shape,
                                    limit: r.input_limit, grads: r.input_gradient });
  maps.push(...r.layers);
  for (const layer of maps) {
    const box = el("div", { className: "layer" });
    const [h, w, c] = layer.shape;
    box.append(el("h3", {}, `dL/d(${layer.name}) ${h}x${w}x${c}${c > 16 ? ", its first 16 channels" : ""}; ` +
                            `largest |gradient| ${fmt(layer.limit)}`));
    const row = el("div", { className: "maps" });
    const scale = Math.max(2, Math.floor(56 / h));
    layer.grads.slice(0, 16).forEach((values, channel) => {
      const canvas = el("canvas", { className: "map gradmap", title: `${layer.name} channel ${channel}` });
      canvas.dataset.layer = layer.index;
      canvas.dataset.channel = channel;
      drawGrid(canvas, values, -layer.limit || -1, layer.limit || 1, scale, diverging);
      canvas.addEventListener("click", e => explainInputGradient(layer.index, ...cellAt(canvas, e, h, w), channel));
      row.append(canvas);
    });
    box.append(row);
    root.append(box);
  }
  const layerSelect = document.getElementById("b-layer");
  const keep = layerSelect.value;
  layerSelect.replaceChildren(...r.weights.filter(w => w.type === "Conv2D").map(w =>
    el("option", { value: String(w.index), textContent: `${w.name} ${w.weights.kernel.join("x")}` })));
  if (keep && [...layerSelect.options].some(o => o.value === keep)) layerSelect.value = keep;
  drawKernel();
  document.body.dataset.backwards = String(Number(document.body.dataset.backwards || 0) + 1);
}

function consumerOf(index) {  // the layer that reads this layer's output (the first, in a graph)
  return state.model.layers.findIndex(l => l.inputs.includes(index));
}

async function explainInputGradient(mapIndex, row, col, channel) {
  const reader = consumerOf(mapIndex);
  const layer = state.model.layers[reader];
  if (reader < 0 || (layer.type !== "Conv2D" && layer.type !== "MaxPooling2D")) {
    backwardPanel("no windows here", [el("p", {}, `This gradient came back through ${layer ? layer.name + " (" +
      layer.type + ")" : "no layer"}; the explorer explains the ones a Conv2D or a MaxPooling2D sends back.`)]);
    return;
  }
  let e;
  try { e = await api("input_gradient", { input: backward.result.input, label: backward.result.label, layer: reader,
                                          row, col, channel }); }
  catch (err) { backwardPanel("error", [el("p", {}, err.message)]); return; }
  const nodes = [el("p", {}, `dL/d(input of ${e.name}) at [${e.cell.join(", ")}]: ${e.rule}.`),
                 el("p", {}, `${e.count} term(s)${e.count > e.terms.length ? `, the ${e.terms.length} largest:` : ":"}`)];
  nodes.push(el("ul", {}, ...e.terms.map(t => el("li", {}, t.tap
    ? `window [${t.window.join(", ")}], weight [${t.tap.join(", ")}]: ${fmt(t.weight)} x ${fmt(t.grad)} = ${fmt(t.product)}`
    : `window [${t.window.join(", ")}]: ${t.won ? "won, gets" : "lost, gets 0 of"} dL/dout ${fmt(t.grad)}`))));
  nodes.push(el("p", {}, "sum = ", el("b", {}, fmt(e.sum))), sameNumber(e));
  backwardPanel(`${e.name}: how one input gradient was made`, nodes, e);
}

function drawKernel() {
  const r = backward.result, root = document.getElementById("b-kernel");
  const index = Number(document.getElementById("b-layer").value);
  const info = r && r.weights.find(w => w.index === index);
  if (!info) { root.replaceChildren(); return; }
  const [kh, kw, cin, filters] = info.weights.kernel;
  const f = Math.min(filters - 1, Math.max(0, Number(document.getElementById("b-filter").value)));
  const c = Math.min(cin - 1, Math.max(0, Number(document.getElementById("b-channel").value)));
  const grid = el("table", { className: "grid kernel" });
  for (let a = 0; a < kh; a++) {
    const tr = el("tr");
    for (let b = 0; b < kw; b++) {
      const td = el("td", { className: "weight", textContent: `${a},${b}` });
      td.dataset.position = JSON.stringify([a, b, c, f]);
      td.addEventListener("click", () => explainWeight(index, [a, b, c, f]));
      tr.append(td);
    }
    grid.append(tr);
  }
  root.replaceChildren(el("p", { className: "small" },
    `${info.name}: the ${kh}x${kw} weights of filter ${f} on input channel ${c}; click one`), grid);
}

async function explainWeight(layer, position) {
  const r = backward.result;
  let e;
  try { e = await api("gradient", { input: r.input, label: r.label, layer, weight: "kernel", index: position }); }
  catch (err) { backwardPanel("error", [el("p", {}, err.message)]); return; }
  backward.weight = { layer, position };
  const nodes = [el("p", {}, `dL/dW${JSON.stringify(e.position)} of ${e.name}: ${e.rule}.`),
                 el("p", {}, `${e.count} terms; the ${e.terms.length} largest:`),
                 el("ul", {}, ...e.terms.map(t => el("li", {},
                   `at output [${t.at.join(", ")}]: input ${fmt(t.input)} x dL/dz ${fmt(t.grad)} = ${fmt(t.product)}`))),
                 el("p", {}, "sum = ", el("b", {}, fmt(e.sum))), sameNumber(e)];
  backwardPanel(`${e.name}: one weight's gradient`, nodes, e);
}

async function takeStep() {
  const r = backward.result;
  if (!r || !backward.weight) return;
  let e;
  try { e = await api("step", { input: r.input, label: r.label, layer: backward.weight.layer, weight: "kernel",
                                index: backward.weight.position }); }
  catch (err) { backwardPanel("error", [el("p", {}, err.message)]); return; }
  const nodes = [el("p", {}, `${e.optimizer}, step ${e.iteration}, learning rate ${fmt(e.learning_rate)} (${e.note}).`),
                 el("p", {}, `weight ${JSON.stringify(e.index)} before: ${fmt(e.before)}; its gradient in this step ${fmt(e.gradient)}`)];
  if (e.rule) nodes.push(el("ul", {}, ...e.rule.map(line => el("li", {}, line))));
  nodes.push(el("p", {}, "after: ", el("b", { className: "b-after" }, fmt(e.after)),
    e.computed === null ? " (this optimizer's rule is not written out here)"
      : `; the rule gives ${fmt(e.computed)}: ${e.equal ? "the same number" : "A DIFFERENT NUMBER"}.`),
    el("p", {}, `loss on this image ${fmt(e.loss_before)} -> ${fmt(e.loss_after)}; the prediction is now ${e.prediction}.`));
  backwardPanel(`${e.name}: one optimizer step`, nodes, e);
  document.body.dataset.steps = String(Number(document.body.dataset.steps || 0) + 1);
  await runBackward();  // the gradients of the stepped model
}

async function explainDense(unit) {
  const dense = state.model.layers.map((l, i) => ({ ...l, i })).filter(l => l.type === "Dense");
  if (!dense.length || !state.input) return;
  let e;
  try { e = await api("dense", { input: state.input, layer: dense[dense.length - 1].i, unit }); }
  catch (err) { backwardPanel("error", [el("p", {}, err.message)]); return; }
  const nodes = [el("p", {}, `Class ${unit}: its logit is the sum of ${e.count} products weight x input, plus the bias.
    The ${e.terms.length} largest:`),
    el("ul", {}, ...e.terms.map(t => el("li", {}, `input ${t.input}${t.from ? ` (map cell [${t.from.join(", ")}])` : ""}:
      ${fmt(t.x)} x ${fmt(t.w)} = ${fmt(t.product)}`))),
    el("p", {}, `sum ${fmt(e.sum)} + bias ${fmt(e.bias)} = logit ${fmt(e.z)}`)];
  if (e.softmax) nodes.push(el("p", {}, `softmax: exp(${fmt(e.z)} - ${fmt(e.softmax.max)}) / ${fmt(e.softmax.total)}
    (the sum of every class's exp(logit - max)) = `, el("b", {}, fmt(e.softmax.value))));
  nodes.push(el("p", {}, `the engine's output: ${fmt(e.value)}: ${e.equal ? "the same number" : "A DIFFERENT NUMBER"}.`));
  backwardPanel(`${e.name}: how a class probability was made`, nodes, { ...e, engine: e.value, sum: e.computed });
}

document.getElementById("b-run").addEventListener("click", runBackward);
document.getElementById("b-step").addEventListener("click", takeStep);
for (const id of ["b-layer", "b-filter", "b-channel"]) document.getElementById(id).addEventListener("change", drawKernel);

// ------------------------------------------------------------ 3. convolution arithmetic
let geometryTimer = null;
async function geometry() {
  const get = id => document.getElementById(id);
  const body = { size: Number(get("g-size").value), kernel: Number(get("g-kernel").value),
                 stride: Number(get("g-stride").value), dilation: Number(get("g-dilation").value),
                 padding: get("g-padding").value };
  let g;
  try { g = await api("geometry", body); } catch (err) { get("g-result").textContent = err.message; return; }
  state.geometry = g;
  get("g-result").textContent = `output ${g.output}x${g.output}; padding ${g.pad_before} before (top/left) and
    ${g.pad_after} after (bottom/right)${g.pad_before !== g.pad_after ? " - Keras puts the odd one at the end" : ""};
    the kernel spans ${g.span} cells.`;
  const canvas = get("g-canvas"), ctx = canvas.getContext("2d");
  const total = body.size + g.pad_before + g.pad_after, cell = Math.min(28, Math.floor(280 / Math.max(total, 1)));
  clearInterval(geometryTimer);
  let step = 0;
  const frame = () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    for (let y = 0; y < total; y++) for (let x = 0; x < total; x++) {
      const padded = y < g.pad_before || x < g.pad_before || y >= g.pad_before + body.size || x >= g.pad_before + body.size;
      ctx.fillStyle = padded ? "#eee" : "#cfe0ff"; ctx.fillRect(x * cell, y * cell, cell - 1, cell - 1);
    }
    if (g.output > 0) {
      const i = Math.floor(step / g.output) % g.output, j = step % g.output;
      ctx.fillStyle = "rgba(255,120,0,0.7)";
      for (const y of g.windows[i]) for (const x of g.windows[j])
        ctx.fillRect((x + g.pad_before) * cell, (y + g.pad_before) * cell, cell - 1, cell - 1);
      const ox = total * cell + 30;
      for (let y = 0; y < g.output; y++) for (let x = 0; x < g.output; x++) {
        ctx.fillStyle = (y === i && x === j) ? "#ff7800" : "#ddd";
        ctx.fillRect(ox + x * cell, y * cell, cell - 1, cell - 1);
      }
    }
    step = (step + 1) % Math.max(1, g.output * g.output);
  };
  frame();
  geometryTimer = setInterval(frame, 600);
}
for (const id of ["g-size", "g-kernel", "g-stride", "g-dilation", "g-padding"])
  document.getElementById(id).addEventListener("change", geometry);

// ------------------------------------------------------------ 4. train live
let trainTimer = null;
async function startTraining() {
  const body = { arch: document.getElementById("t-arch").value, epochs: Number(document.getElementById("t-epochs").value),
                 n_train: Number(document.getElementById("t-n").value) };
  try { await api("train", body); } catch (err) { document.getElementById("t-status").textContent = err.message; return; }
  document.getElementById("t-start").disabled = true;
  document.getElementById("t-stop").disabled = false;
  clearInterval(trainTimer);
  trainTimer = setInterval(pollTraining, 700);
}

async function pollTraining() {
  const s = await api("train");
  state.history = s.history;
  state.training = s;
  const status = document.getElementById("t-status");
  status.textContent = s.error ? `error: ${s.error}`
    : `${s.running ? "training" : "done"}: ${s.epoch} of ${s.epochs} epochs`;
  status.dataset.running = s.running;
  status.dataset.losses = (s.history.loss || []).length;
  drawCurves(s.history);
  if (s.filters) drawFilters(s.filters);
  if (!s.running) {
    clearInterval(trainTimer);
    document.getElementById("t-start").disabled = false;
    document.getElementById("t-stop").disabled = true;
    loadModel();  // the page now explores the model just trained
  }
}

function drawCurves(history) {
  const canvas = document.getElementById("t-curves"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#222"; ctx.font = "12px sans-serif";
  ctx.fillText("loss (solid) and accuracy (dashed) per epoch; blue training, orange validation", 8, 14);
  const loss = history.loss || [];
  if (!loss.length) return;
  const n = Math.max(2, loss.length), top = Math.max(...loss, ...(history.val_loss || []), 1);
  const x = i => 40 + i * (canvas.width - 60) / (n - 1), y = (v, m) => canvas.height - 25 - v / m * (canvas.height - 50);
  const line = (values, colour, max, dash) => {
    if (!values) return;
    ctx.strokeStyle = colour; ctx.setLineDash(dash); ctx.beginPath();
    values.forEach((v, i) => i ? ctx.lineTo(x(i), y(v, max)) : ctx.moveTo(x(i), y(v, max)));
    ctx.stroke(); values.forEach((v, i) => { ctx.fillStyle = colour; ctx.fillRect(x(i) - 2, y(v, max) - 2, 4, 4); });
  };
  const acc = Object.keys(history).find(k => !k.startsWith("val_") && k !== "loss" && k !== "learning_rate");
  line(loss, "#1f77b4", top, []); line(history.val_loss, "#ff7f0e", top, []);
  if (acc) { line(history[acc], "#1f77b4", 1, [5, 3]); line(history["val_" + acc], "#ff7f0e", 1, [5, 3]); }
  ctx.setLineDash([]); ctx.fillStyle = "#222";
  ctx.fillText("epoch", canvas.width / 2, canvas.height - 6);
  ctx.fillText(`loss 0..${top.toFixed(2)}, accuracy 0..1`, 40, 28);
}

function drawFilters(f) {
  const root = document.getElementById("t-filters");
  root.replaceChildren(el("p", { className: "small" },
    `${f.layer}: channel 0 of each filter, one scale (blue -${fmt(f.limit)}, red +${fmt(f.limit)})`));
  for (const k of f.filters) {
    const canvas = document.createElement("canvas");
    drawGrid(canvas, k, -f.limit, f.limit, Math.max(4, Math.floor(36 / k.length)), diverging);
    canvas.style.margin = "2px";
    root.append(canvas);
  }
}

document.getElementById("t-start").addEventListener("click", startTraining);
document.getElementById("t-stop").addEventListener("click", () => api("train/stop", {}).catch(() => {}));

// ------------------------------------------------------------ start
async function loadModel() {
  state.model = await api("model");
  document.getElementById("model-line").textContent =
    `${state.model.name}: ${state.model.layers.map(l => l.type).join(" → ")} (${state.model.parameters.toLocaleString()} parameters), computed by this engine.`;
}

(async function start() {
  await loadModel();
  const samples = await api("samples");
  const select = document.getElementById("samples");
  state.sampleLabels = samples.labels;
  samples.labels.forEach((label, i) => { const o = document.createElement("option"); o.value = i; o.textContent = `test image ${i} (a ${label})`; select.append(o); });
  geometry();
  pollTraining();
  progress();
  document.body.dataset.ready = "yes";
})();
