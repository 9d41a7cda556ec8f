// reddiff browser demo: drives the wasm-bindgen API in ./pkg/reddiff.js (built by web/build.sh).
//
// Flow: check WebGPU → load the wasm → Reddiff.create() → fetch + load the built-in model → pick an image and a
// task → restore() with live progress/preview → show input, measurement, H+y and result with PSNRs.
// Every failure is shown in #error and leaves the buttons usable.

const MODEL_URL = '../models/emoji32/';
const SAMPLES_URL = '../assets/samples/';
const PREVIEW_EVERY = 5;
const BUILTIN_LABEL = 'the built-in model (emoji32)';

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------------------
// State

const state = {
  reddiff: null,      // the Reddiff instance once created
  size: 32,           // model resolution (imageSize()); 32 until a model says otherwise
  source: null,       // the picked image (ImageBitmap), kept to re-derive it when the model size or the fit changes
  sourceName: '',     // sample file name or uploaded file name (for the download)
  image: null,        // RGBA Uint8Array, width*height*4, what restore() gets
  width: 32,          // state.image's size in pixels (the model's size unless the fit is "whole")
  height: 32,
  imageLoading: Promise.resolve(), // settles when the last image pick is done (run waits for it)
  mask: null,         // Uint8Array width*height, 1 = missing (painted)
  builtin: null,      // {config, weights: Uint8Array, recommended: string|null} of the built-in model, kept to reload it
  busy: null,         // null | 'run' | 'model'
  ready: false,       // a model is loaded and the GPU is up
};

// ---------------------------------------------------------------------------------------------------------
// Messages

function errorMessage(e) {
  if (e instanceof Error) return e.message || String(e);
  if (typeof e === 'string') return e;
  if (e && typeof e.message === 'string') return e.message;
  try { return JSON.stringify(e); } catch { return String(e); }
}

/** Shows a message in the page's #error box (and the console). */
function showError(msg) {
  console.error(msg);
  const el = $('error');
  el.textContent = msg;
  el.hidden = false;
}

function clearError() {
  const el = $('error');
  el.textContent = '';
  el.hidden = true;
}

function setStatus(text) {
  $('status').textContent = text;
}

// ---------------------------------------------------------------------------------------------------------
// Buttons: one place decides what is enabled.

function setBusy(what) {
  state.busy = what;
  const idle = what === null;
  $('run').disabled = !(idle && state.ready);
  $('cancel').disabled = what !== 'run';
  $('load-model').disabled = !(idle && state.reddiff);
  $('builtin-model').disabled = !(idle && state.reddiff);
  $('upload').disabled = !idle;
  $('sample').disabled = !idle;
  $('task').disabled = !idle;
  for (const id of ['fit', 'max-side', 'measured']) $(id).disabled = !idle;
  for (const id of ['method', 'steps', 'lambda', 'lr']) $(id).disabled = !idle;
}

// ---------------------------------------------------------------------------------------------------------
// Canvases

/** Draws width*height RGBA bytes into a canvas (its pixel size becomes width×height; CSS enlarges it,
 *  pixelated). */
function drawRGBA(canvas, rgba, width, height) {
  canvas.width = width;
  canvas.height = height;
  const data = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, width * height * 4);
  canvas.getContext('2d').putImageData(new ImageData(data, width, height), 0, 0);
}

function clearCanvas(canvas, size) {
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#eee';
  ctx.fillRect(0, 0, size, size);
}

/**
 * Resizes an image to width×height (with `crop`: its centre square only) and composites it on white (as
 * the model was trained). Returns RGBA bytes with alpha 255.
 */
function resample(bitmap, width, height, crop) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  const side = Math.min(bitmap.width, bitmap.height);
  const [sw, sh] = crop ? [side, side] : [bitmap.width, bitmap.height];
  const sx = Math.floor((bitmap.width - sw) / 2);
  const sy = Math.floor((bitmap.height - sh) / 2);
  // A same-size copy must be exact; anything else gets the browser's best filtering.
  ctx.imageSmoothingEnabled = sw !== width || sh !== height;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, sx, sy, sw, sh, 0, 0, width, height);
  const rgba = new Uint8Array(ctx.getImageData(0, 0, width, height).data.buffer);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  return rgba;
}

/** What a run makes of a width×height image with the current task and mode ({width, height, tiles}, from
 *  the wasm API), or null before a model is loaded. Throws the API's message for an image it refuses. */
function plan(width, height) {
  if (!state.ready) return null;
  return state.reddiff.plan($('task').value, width, height, $('measured').checked);
}

/** The size state.image gets from a bw×bh picture: the model's square (1/f of it for the measurement of ×f
 *  super-resolution), or with the "whole" fit the picture's own size, scaled down so that the result's
 *  longest side is at most #max-side (a side shorter than the model's is reflected out to it for the run
 *  and cut back, so the result keeps the picture's size). */
function targetSize(bw, bh) {
  const n = state.size;
  let f = 1;
  try {
    const p = $('measured').checked ? plan(n, n) : null;
    if (p) f = Math.max(1, Math.round(p.width / n));
  } catch { /* the run reports it */ }
  if ($('fit').value === 'square') {
    const s = Math.max(1, Math.round(n / f));
    return { width: s, height: s, crop: true };
  }
  const maxSide = Math.max(8, Number($('max-side').value) || n);
  const scale = Math.min(1, maxSide / (f * Math.max(bw, bh)));
  return { width: Math.max(1, Math.round(bw * scale)), height: Math.max(1, Math.round(bh * scale)), crop: false };
}

/** Decodes an image Blob without colour-space conversion, so that PNG bytes arrive unchanged. */
function decode(blob) {
  return createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
}

// ---------------------------------------------------------------------------------------------------------
// Images: samples and uploads

/** Makes state.image from state.source at the size the model, the fit and the mode give, and redraws
 *  everything that shows it. */
function deriveImage() {
  $('max-side-label').hidden = $('fit').value !== 'whole';
  $('input-caption').textContent = $('measured').checked ? 'input (the measurement y)' : 'input (clean)';
  if (!state.source) return;
  const t = targetSize(state.source.width, state.source.height);
  const resized = t.width !== state.width || t.height !== state.height;
  state.width = t.width;
  state.height = t.height;
  state.image = resample(state.source, t.width, t.height, t.crop);
  drawRGBA($('input-canvas'), state.image, t.width, t.height);
  if (!state.mask || resized || state.mask.length !== t.width * t.height) state.mask = new Uint8Array(t.width * t.height);
  document.body.dataset.imageSize = `${t.width}x${t.height}`;
  drawMaskEditor();
  showSizeHint();
}

/** Says under the image what a run will restore (size, tiles). */
function showSizeHint() {
  const el = $('size-hint');
  if (!state.image) { el.textContent = ''; return; }
  const given = $('measured').checked ? 'measurement' : 'image';
  let p;
  try {
    p = plan(state.width, state.height);
  } catch (e) {
    el.textContent = `${given} ${state.width}×${state.height}: ${errorMessage(e)}`;
    return;
  }
  if (!p) { el.textContent = `${given} ${state.width}×${state.height}`; return; }
  const n = state.size;
  const tiles = p.tiles > 1 ? `, on ${p.tiles} overlapping ${n}×${n} tiles per step (about ${p.tiles}× the time of one)` : '';
  const padded = p.workingWidth !== p.width || p.workingHeight !== p.height
    ? ` (reflected out to ${p.workingWidth}×${p.workingHeight} for the run, smaller than the model)` : '';
  el.textContent = `${given} ${state.width}×${state.height} → result ${p.width}×${p.height}${padded}${tiles}.`;
}

/** Runs an image pick (async) and records it so that run() can wait for it. */
function pickImage(load) {
  const p = (async () => {
    try {
      const { bitmap, name } = await load();
      if (state.source && state.source.close) state.source.close();
      state.source = bitmap;
      state.sourceName = name;
      deriveImage();
      document.body.dataset.image = name;
    } catch (e) {
      showError(`Could not load the image: ${errorMessage(e)}`);
    }
  })();
  state.imageLoading = p;
  return p;
}

async function fetchOk(url) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`could not fetch ${url}: ${errorMessage(e)}`);
  }
  if (!res.ok) throw new Error(`could not fetch ${url}: HTTP ${res.status} ${res.statusText}`);
  return res;
}

function selectSample(name) {
  $('sample').value = name;
  for (const t of $('thumbs').children) t.classList.toggle('selected', t.dataset.name === name);
  return pickImage(async () => {
    const blob = await (await fetchOk(SAMPLES_URL + encodeURIComponent(name))).blob();
    return { bitmap: await decode(blob), name };
  });
}

async function loadSampleList() {
  const names = await (await fetchOk('samples.json')).json();
  if (!Array.isArray(names) || names.length === 0) throw new Error('samples.json lists no samples');
  const select = $('sample');
  const thumbs = $('thumbs');
  for (const name of names) {
    const opt = document.createElement('option');
    opt.value = name;
    opt.textContent = name.replace(/\.png$/, '');
    select.append(opt);
    const img = document.createElement('img');
    img.src = SAMPLES_URL + encodeURIComponent(name);
    img.alt = name;
    img.title = name;
    img.dataset.name = name;
    img.loading = 'lazy';
    img.addEventListener('click', () => { if (!state.busy) selectSample(name); });
    thumbs.append(img);
  }
  return names;
}

function onUpload() {
  const file = $('upload').files[0];
  if (!file) return;
  clearError();
  pickImage(async () => {
    let bitmap;
    try {
      bitmap = await decode(file);
    } catch (e) {
      throw new Error(`${file.name} is not an image the browser can decode (${errorMessage(e)})`);
    }
    // Show the upload in the sample picker as a pseudo-entry, so the select tells what is loaded.
    let opt = $('sample').querySelector('option[value=""]');
    if (!opt) {
      opt = document.createElement('option');
      opt.value = '';
      $('sample').prepend(opt);
    }
    opt.textContent = `uploaded: ${file.name}`;
    $('sample').value = '';
    for (const t of $('thumbs').children) t.classList.remove('selected');
    return { bitmap, name: file.name };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Mask painting (task inpaint-mask). The mask is kept at model resolution; the canvas shows the image with
// painted (missing) pixels tinted, enlarged by CSS.

const paint = { down: false, last: null };

function drawMaskEditor() {
  const canvas = $('mask-canvas');
  if (!state.image) { clearCanvas(canvas, state.size); return; }
  const rgba = new Uint8Array(state.image);
  for (let i = 0; i < state.width * state.height; i++) {
    if (state.mask[i]) {
      // Tint missing pixels magenta over a darkened image so the hole is obvious but the context stays visible.
      rgba[4 * i] = 0.4 * rgba[4 * i] + 0.6 * 255;
      rgba[4 * i + 1] = 0.4 * rgba[4 * i + 1];
      rgba[4 * i + 2] = 0.4 * rgba[4 * i + 2] + 0.6 * 200;
    }
  }
  drawRGBA(canvas, rgba, state.width, state.height);
}

/** Canvas pixel under a pointer event (fractional, in image pixels; the canvas is letterboxed by CSS
 *  object-fit: contain). */
function pointerPixel(e) {
  const canvas = e.currentTarget;
  const r = canvas.getBoundingClientRect();
  const scale = Math.min(r.width / canvas.width, r.height / canvas.height);
  const left = r.left + (r.width - canvas.width * scale) / 2;
  const top = r.top + (r.height - canvas.height * scale) / 2;
  return { x: (e.clientX - left) / scale, y: (e.clientY - top) / scale };
}

/** Stamps a round brush of the chosen diameter (in image pixels) centred at (x, y). */
function stamp(x, y) {
  const [w, h] = [state.width, state.height];
  const d = Number($('brush').value);
  const value = $('erase').checked ? 0 : 1;
  if (d <= 1) {
    const px = Math.floor(x);
    const py = Math.floor(y);
    if (px >= 0 && py >= 0 && px < w && py < h) state.mask[py * w + px] = value;
    return;
  }
  const r = d / 2;
  for (let py = Math.max(0, Math.floor(y - r)); py <= Math.min(h - 1, Math.ceil(y + r)); py++) {
    for (let px = Math.max(0, Math.floor(x - r)); px <= Math.min(w - 1, Math.ceil(x + r)); px++) {
      const dx = px + 0.5 - x;
      const dy = py + 0.5 - y;
      if (dx * dx + dy * dy <= r * r) state.mask[py * w + px] = value;
    }
  }
}

/** Paints along the segment from the last pointer position, so fast strokes have no gaps. */
function strokeTo(p) {
  const from = paint.last || p;
  const steps = Math.max(1, Math.ceil(Math.hypot(p.x - from.x, p.y - from.y) * 2));
  for (let i = 1; i <= steps; i++) stamp(from.x + ((p.x - from.x) * i) / steps, from.y + ((p.y - from.y) * i) / steps);
  paint.last = p;
  drawMaskEditor();
}

function setupMaskEditor() {
  const canvas = $('mask-canvas');
  canvas.addEventListener('pointerdown', (e) => {
    if (!state.image || state.busy) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    paint.down = true;
    paint.last = null;
    strokeTo(pointerPixel(e));
  });
  canvas.addEventListener('pointermove', (e) => {
    if (paint.down) strokeTo(pointerPixel(e));
  });
  const end = () => { paint.down = false; paint.last = null; };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  canvas.addEventListener('contextmenu', (e) => e.preventDefault());
  $('mask-clear').addEventListener('click', () => { state.mask.fill(0); drawMaskEditor(); });
  $('mask-invert').addEventListener('click', () => {
    for (let i = 0; i < state.mask.length; i++) state.mask[i] ^= 1;
    drawMaskEditor();
  });
  $('brush').addEventListener('input', () => { $('brush-text').textContent = $('brush').value; });
}

/** The mask as the API wants it: RGBA, white = keep, black = missing. */
function maskRGBA() {
  const hw = state.width * state.height;
  const out = new Uint8Array(hw * 4);
  for (let i = 0; i < hw; i++) {
    const v = state.mask[i] ? 0 : 255;
    out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = v;
    out[4 * i + 3] = 255;
  }
  return out;
}

function onTaskChange() {
  const task = $('task').value;
  $('mask-editor').hidden = task !== 'inpaint-mask';
  if (task === 'denoise' && Number($('sigma-y').value) === 0) $('sigma-y').value = '0.1';
  // The measurement of x4 super-resolution is a quarter of the result's size.
  deriveImage();
  showSettings();
}

/** Shows what a run will use (the model's recommendation fills the empty fields) under the parameters. */
function showSettings() {
  const el = $('settings-text');
  if (!state.ready) { el.textContent = ''; return; }
  let params;
  try {
    params = readParams();
  } catch (e) {
    el.textContent = errorMessage(e);
    return;
  }
  try {
    const s = state.reddiff.settingsFor($('task').value, params);
    const redDiff = s.method === 'reddiff' ? `, λ ${s.lambda}, lr ${s.lr}` : '';
    const why = s.recommended ? ` — recommended for this model (${Number(s.psnr).toFixed(2)} dB mean on ${s.images} held-out images)` : '';
    el.textContent = `Runs ${s.label}, ${s.steps} steps${redDiff}${why}.`;
  } catch (e) {
    el.textContent = errorMessage(e);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Models

function modelLoaded(info, label) {
  state.size = state.reddiff.imageSize();
  document.body.dataset.modelSize = String(state.size);
  state.ready = state.size > 0;
  $('model-info').textContent = `${label}\n${info}`;
  $('fit-square').textContent = `Crop to a square at the model's size (${state.size}×${state.size})`;
  // The cap on the result's side follows the model (3 tiles across) until the user sets it.
  if (!$('max-side').dataset.edited) $('max-side').value = String(3 * state.size);
  for (const id of ['preview', 'measurement-canvas', 'pinv-canvas', 'result-canvas']) clearCanvas($(id), state.size);
  $('result-psnr').textContent = '';
  $('measurement-psnr').textContent = '';
  $('download').disabled = true;
  deriveImage();
}

/** Reads a byte stream to its end into one Uint8Array, reporting the fraction received (`total` bytes
 *  expected; 0 = unknown) to `onFraction`. */
async function readAll(stream, total, onFraction) {
  const reader = stream.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    if (total > 0) onFraction(Math.min(1, received / total));
  }
  const out = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

function modelProgress(fraction, text) {
  $('model-progress').value = fraction;
  $('model-progress-text').textContent = text;
}

const mb = (bytes) => `${(bytes / 1048576).toFixed(0)} MiB`;

/** loadModel with the page's error handling; afterwards the page still has a usable model if it had one.
 *  The load is asynchronous: the page stays responsive and #model-progress shows how far it got. */
async function loadModel(config, weights, recommended, label) {
  setBusy('model');
  setStatus(`Loading ${label}…`);
  const t0 = performance.now();
  try {
    const info = await state.reddiff.loadModel(config, weights, recommended, (f) => modelProgress(f, `checking weights ${(100 * f).toFixed(0)} %`));
    const m = state.reddiff.memory();
    const secs = (performance.now() - t0) / 1000;
    modelProgress(1, `loaded in ${secs.toFixed(1)} s · GPU ${mb(m.gpu)} (peak ${mb(m.gpuPeak)}) · wasm memory ${mb(m.wasm)}`);
    window.__modelLoad = { label, secs, ...m };
    modelLoaded(info + (recommended ? '\nrecommended.json: yes' : ''), label);
    setStatus(`Ready: ${label}, ${state.size}×${state.size}.`);
    return true;
  } catch (e) {
    modelProgress(0, '');
    showError(`Could not load ${label}: ${errorMessage(e)}`);
    // If the failed load left no model behind, fall back to the built-in one so the page stays usable.
    let size = 0;
    try { size = state.reddiff.imageSize(); } catch { /* treat as none */ }
    if (size === 0 && state.builtin && label !== BUILTIN_LABEL) {
      try {
        const b = state.builtin;
        modelLoaded(await state.reddiff.loadModel(b.config, b.weights, b.recommended, null), BUILTIN_LABEL);
      } catch (e2) {
        showError(`Could not load ${label}: ${errorMessage(e)}; reloading the built-in model failed too: ${errorMessage(e2)}`);
        state.ready = false;
      }
    } else {
      state.ready = size > 0;
      document.body.dataset.modelSize = String(size);
    }
    setStatus(state.ready ? `Ready (model unchanged: ${state.size}×${state.size}).` : 'No model loaded.');
    return false;
  } finally {
    setBusy(null);
    showSettings();
  }
}

async function loadUserModel() {
  clearError();
  const cfgFile = $('model-config').files[0];
  const wFile = $('model-weights').files[0];
  const recFile = $('model-recommended').files[0];
  if (!cfgFile || !wFile) {
    showError('Choose both files of your model: its config.json and its .safetensors weights.');
    return;
  }
  let config, weights, recommended = null;
  setBusy('model');
  try {
    config = await cfgFile.text();
    if (recFile) recommended = await recFile.text();
    weights = await readAll(wFile.stream(), wFile.size, (f) => modelProgress(f, `reading ${wFile.name} ${(100 * f).toFixed(0)} %`));
  } catch (e) {
    showError(`Could not read the model files: ${errorMessage(e)}`);
    return;
  } finally {
    setBusy(null);
  }
  await loadModel(config, weights, recommended, `${wFile.name} (${(weights.length / 1e6).toFixed(1)} MB)`);
}

/** Downloads `url` with progress in #model-progress. */
async function download_(url, what) {
  const res = await fetchOk(url);
  const total = Number(res.headers.get('content-length') || 0);
  return readAll(res.body, total, (f) => modelProgress(f, `downloading ${what} ${(100 * f).toFixed(0)} %`));
}

async function loadBuiltinModel() {
  clearError();
  if (!state.builtin) {
    setBusy('model');
    setStatus('Downloading the built-in model…');
    try {
      const [config, weights, recommended] = await Promise.all([
        fetchOk(MODEL_URL + 'config.json').then((r) => r.text()),
        download_(MODEL_URL + 'model.safetensors', 'the built-in model'),
        // Optional: settings chosen for the model on held-out images (reddiff eval --sweep).
        fetch(MODEL_URL + 'recommended.json').then((r) => (r.ok ? r.text() : null)).catch(() => null),
      ]);
      state.builtin = { config, weights, recommended };
    } finally {
      setBusy(null);
    }
  }
  return loadModel(state.builtin.config, state.builtin.weights, state.builtin.recommended, BUILTIN_LABEL);
}

// ---------------------------------------------------------------------------------------------------------
// Running a restoration

/** A problem with what the user chose (shown as is, not as a failed restoration). */
class InputError extends Error {}

function readParams() {
  const num = (id, name, { int = false, min = -Infinity, max = Infinity } = {}) => {
    const raw = $(id).value.trim();
    const v = Number(raw);
    if (raw === '' || !Number.isFinite(v) || (int && !Number.isInteger(v)) || v < min || v > max) {
      throw new Error(`${name} must be ${int ? 'an integer' : 'a number'}${min > -Infinity ? ` ≥ ${min}` : ''}${max < Infinity ? ` and ≤ ${max}` : ''} (got "${raw}")`);
    }
    return v;
  };
  // Empty = not given: the model's recommendation (else the paper's default) fills it.
  const optional = (id, name, limits) => ($(id).value.trim() === '' ? null : num(id, name, limits));
  return {
    method: $('method').value,
    steps: optional('steps', 'Steps', { int: true, min: 1, max: 1000 }),
    lambda: optional('lambda', 'λ', { min: 0 }),
    lr: optional('lr', 'lr', { min: 1e-9 }),
    seed: num('seed', 'Seed', { int: true, min: 0, max: Number.MAX_SAFE_INTEGER }),
    sigmaY: num('sigma-y', 'σy', { min: 0 }),
    previewEvery: PREVIEW_EVERY,
    width: state.width,
    height: state.height,
    measured: $('measured').checked,
    // The noise is keyed by the image's file name, as in the CLI: the same image gives the same result here
    // and in `reddiff restore`.
    imageName: state.sourceName || '',
  };
}

async function run() {
  if (state.busy || !state.ready) return;
  clearError();
  let opts;
  try {
    opts = readParams();
  } catch (e) {
    showError(errorMessage(e));
    return;
  }
  const task = $('task').value;
  setBusy('run');
  try {
    await state.imageLoading;
    if (!state.image) throw new InputError('No image: pick a sample or upload an image first.');
    let mask = null;
    if (task === 'inpaint-mask') {
      if (!state.mask.some((v) => v)) throw new InputError('Paint the region to fill in on the image first (task "paint your own mask").');
      mask = maskRGBA();
    }
    $('result-psnr').textContent = '';
    $('measurement-psnr').textContent = '';
    $('ms-per-step').textContent = '';
    $('download').disabled = true;
    const settings = state.reddiff.settingsFor(task, opts);
    $('progress').max = settings.steps;
    $('progress').value = 0;
    $('progress-text').textContent = '';
    clearCanvas($('preview'), state.size);
    setStatus(`Running ${task}: ${settings.label}, ${settings.steps} steps…`);

    const onProgress = (step, steps, t) => {
      $('progress').max = steps;
      $('progress').value = step;
      const tt = Number.isInteger(t) ? String(t) : Number(t).toFixed(3);
      $('progress-text').textContent = `step ${step} / ${steps} · t = ${tt}`;
    };
    const onPreview = (rgba, width, height) => drawRGBA($('preview'), rgba, width, height);

    const t0 = performance.now();
    const out = await state.reddiff.restore(task, state.image, mask, opts, onProgress, onPreview);
    const secs = (performance.now() - t0) / 1000;

    const [w, h] = [out.width, out.height];
    drawRGBA($('input-canvas'), out.input, out.inputWidth, out.inputHeight);
    drawRGBA($('measurement-canvas'), out.measurement, w, h);
    drawRGBA($('pinv-canvas'), out.pinv, w, h);
    drawRGBA($('result-canvas'), out.result, w, h);
    drawRGBA($('preview'), out.result, w, h);
    // A measured image has no clean original to compare with.
    const db = (v) => (v === null || v === undefined ? '—' : Number(v).toFixed(2));
    $('measurement-psnr').textContent = db(out.psnrMeasurement);
    $('result-psnr').textContent = db(out.psnrResult);
    $('result-label').textContent = `${out.settings.label} result`;
    $('ms-per-step').textContent = Number(out.msPerStep).toFixed(1);
    $('download').disabled = false;
    window.__lastResult = { ...opts, task, result: out.result, width: w, height: h, settings: out.settings, out };
    const where = out.tiles > 1 ? ` on ${out.tiles} tiles` : '';
    const quality = out.psnrResult === null ? 'No clean image to compare with (the input was the measurement)' : `PSNR ${db(out.psnrMeasurement)} dB → ${db(out.psnrResult)} dB`;
    setStatus(`Done: ${task}, ${out.settings.label}, ${out.settings.steps} steps in ${secs.toFixed(1)} s, ${w}×${h}${where}. ${quality}.`);
  } catch (e) {
    const msg = errorMessage(e);
    if (msg.startsWith('cancelled')) {
      setStatus(`Cancelled (${msg}).`);
    } else if (e instanceof InputError) {
      showError(msg);
    } else {
      showError(`Restoration failed: ${msg}`);
      setStatus('Restoration failed.');
    }
  } finally {
    setBusy(null);
  }
}

function cancel() {
  if (state.busy !== 'run') return;
  try {
    state.reddiff.cancel();
    setStatus('Cancelling…');
  } catch (e) {
    showError(`Cancel failed: ${errorMessage(e)}`);
  }
}

function download() {
  const canvas = $('result-canvas');
  canvas.toBlob((blob) => {
    if (!blob) { showError('Could not encode the result as PNG.'); return; }
    const a = document.createElement('a');
    const base = state.sourceName.replace(/\.[^.]*$/, '') || 'image';
    a.href = URL.createObjectURL(blob);
    a.download = `reddiff-${$('task').value}-${base}.png`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, 'image/png');
}

// ---------------------------------------------------------------------------------------------------------
// Start-up

async function start() {
  // Wire the UI first so that the page works as far as it can even without WebGPU.
  $('sample').addEventListener('change', () => { clearError(); if ($('sample').value) selectSample($('sample').value); });
  $('upload').addEventListener('change', onUpload);
  $('task').addEventListener('change', onTaskChange);
  for (const id of ['fit', 'max-side', 'measured']) $(id).addEventListener('change', () => { clearError(); deriveImage(); });
  $('max-side').addEventListener('input', () => { $('max-side').dataset.edited = '1'; });
  for (const id of ['method', 'steps', 'lambda', 'lr', 'sigma-y']) $(id).addEventListener('input', showSettings);
  $('run').addEventListener('click', run);
  $('cancel').addEventListener('click', cancel);
  $('download').addEventListener('click', download);
  $('load-model').addEventListener('click', loadUserModel);
  $('builtin-model').addEventListener('click', () => loadBuiltinModel().catch((e) => showError(errorMessage(e))));
  setupMaskEditor();
  onTaskChange();
  setBusy(null);
  for (const id of ['input-canvas', 'mask-canvas', 'preview', 'measurement-canvas', 'pinv-canvas', 'result-canvas']) clearCanvas($(id), state.size);

  // Samples do not need the GPU: show them right away.
  try {
    const names = await loadSampleList();
    selectSample(names[0]);
  } catch (e) {
    showError(`Could not load the samples: ${errorMessage(e)}`);
  }

  if (!navigator.gpu) {
    $('webgpu-help').hidden = false;
    setStatus('WebGPU is not available in this browser.');
    showError(window.isSecureContext
      ? 'WebGPU is not available in this browser (navigator.gpu is missing). See below for how to enable it.'
      : 'WebGPU needs a secure context: open the page via http://127.0.0.1 / http://localhost or https.');
    return;
  }

  let wasm;
  setStatus('Loading the wasm module…');
  try {
    wasm = await import('./pkg/reddiff.js');
    await wasm.default();
  } catch (e) {
    setStatus('The wasm module is missing.');
    showError(`Could not load the wasm module web/pkg/reddiff.js (build it with: bash web/build.sh): ${errorMessage(e)}`);
    return;
  }

  setStatus('Starting the GPU…');
  try {
    // ?kernels=gpu|cpu forces a kernel family (for comparisons); default: by device type.
    state.reddiff = await wasm.Reddiff.create(new URLSearchParams(location.search).get('kernels'));
  } catch (e) {
    $('webgpu-help').hidden = false;
    setStatus('No WebGPU device.');
    showError(`Could not start WebGPU: ${errorMessage(e)}`);
    return;
  }
  window.__reddiff = state.reddiff; // for the console
  $('adapter-info').textContent = state.reddiff.adapterInfo();
  setBusy(null);

  try {
    if (await loadBuiltinModel()) document.body.dataset.ready = '1';
  } catch (e) {
    showError(`Could not load the built-in model: ${errorMessage(e)}`);
    setStatus('No model loaded.');
    setBusy(null);
  }
}

start().catch((e) => {
  showError(`Start-up failed: ${errorMessage(e)}`);
  setBusy(null);
});
