// A JavaScript STAND-IN for the wasm-bindgen module (web/pkg/reddiff.js), for working on the page and on
// e2e.mjs without a wasm build. It is not the real thing: it fakes restore() (centre box blanked, result =
// clean image ± 2). NEVER copy it into web/pkg/ of the real tree — use a scratch copy, e.g.:
//   T=$(mktemp -d) && cp -r assets models web "$T"/ && mkdir -p "$T/web/pkg" && cp web/test/mock-reddiff.js "$T/web/pkg/reddiff.js"
//   node "$T/web/test/e2e.mjs"
export default async function init() {}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function psnr(a, b) { let s = 0, n = 0; for (let i = 0; i < a.length; i++) { if (i % 4 === 3) continue; const d = a[i] - b[i]; s += d * d; n++; } return 10 * Math.log10(255 * 255 / (s / n)); }
export class Reddiff {
  static async create() {
    if (!navigator.gpu) throw new Error('WebGPU is not available (navigator.gpu missing)');
    const a = await navigator.gpu.requestAdapter();
    if (!a) throw new Error('no WebGPU adapter');
    const r = new Reddiff(); r.adapter = a; r.size = 0; return r;
  }
  adapterInfo() { return `${this.adapter.info.description} (mock)`; }
  loadModel(cfg, w) {
    const c = JSON.parse(cfg);
    const len = Number(new DataView(w.buffer, w.byteOffset).getBigUint64(0, true));
    if (len > w.length - 8) throw new Error(`corrupt safetensors: header length ${len} exceeds the file (${w.length} bytes)`);
    const hdr = JSON.parse(new TextDecoder().decode(w.subarray(8, 8 + len)));
    this.size = c.image_size;
    return `ADM UNet, ${c.image_size}x${c.image_size}\n${Object.keys(hdr).length} tensors (mock)`;
  }
  imageSize() { return this.size; }
  cancel() { this.cancelled = true; }
  async restore(task, image, mask, opts, onProgress, onPreview) {
    const n = this.size; this.cancelled = false;
    if (image.length !== n * n * 4) throw new Error(`image must be ${n}x${n} RGBA`);
    const meas = new Uint8Array(image);
    for (let y = n / 4; y < 3 * n / 4; y++) for (let x = n / 4; x < 3 * n / 4; x++) for (let c = 0; c < 3; c++) meas[(y * n + x) * 4 + c] = 0;
    const res = new Uint8Array(image);
    for (let i = 0; i < res.length; i++) if (i % 4 !== 3) res[i] = Math.max(0, Math.min(255, res[i] + ((i * 7) % 5) - 2));
    const t0 = performance.now();
    for (let s = 1; s <= opts.steps; s++) {
      await sleep(20);
      if (this.cancelled) throw new Error('cancelled at step ' + s);
      onProgress(s, opts.steps, Math.round(1000 * (1 - s / opts.steps)));
      if (s % opts.previewEvery === 0) onPreview(s === opts.steps ? res : meas);
    }
    return { result: res, measurement: meas, pinv: meas, psnrMeasurement: psnr(meas, image), psnrResult: psnr(res, image), msPerStep: (performance.now() - t0) / opts.steps };
  }
}
