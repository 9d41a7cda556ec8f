// JPEG compression as a measurement operator, on [N, 3, H, W] RGB images (H, W multiples of 16):
// JFIF YCbCr, chroma subsampled by F = 2 (4:2:0, FxF mean) or kept (F = 1, 4:4:4), 8x8 orthonormal DCT, division by the quantisation table, rounding
// (half away from zero), multiplication back, inverse DCT, nearest chroma upsampling, RGB, 8-bit pixels.
// Values are in pixel units [0, 255] between the kernels, [-1, 1] at the ends. H, W: multiples of 8F.

struct P {
    n: u32,      // invocations: blocks (jpeg_blocks) or pixels (the others)
    h: u32,
    w: u32,
    round: u32,  // 1: quantise and round (the real codec); 0: skip both (the linear part alone)
    scale: f32,  // jpeg_grad: 1 / (elements of y)
    f: u32,      // chroma subsampling factor F (1 or 2)
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const PI: f32 = 3.14159265358979;

// Orthonormal DCT-II basis: C[k][n] = a(k) cos((2n + 1) k pi / 16).
fn basis(k: u32, n: u32) -> f32 {
    let a = select(0.5, 0.35355339059327373, k == 0u);
    return a * cos(f32(2u * n + 1u) * f32(k) * PI / 16.0);
}

fn px(img: u32, c: u32, y: u32, x: u32) -> f32 {
    return (a[((img * 3u + c) * p.h + y) * p.w + x] + 1.0) * 127.5;
}

// Component `c` (0 Y, 1 Cb, 2 Cr) of pixel (y, x), JFIF.
fn ycc(img: u32, c: u32, y: u32, x: u32) -> f32 {
    let r = px(img, 0u, y, x);
    let g = px(img, 1u, y, x);
    let bl = px(img, 2u, y, x);
    if (c == 0u) { return 0.299 * r + 0.587 * g + 0.114 * bl; }
    if (c == 1u) { return -0.168736 * r - 0.331264 * g + 0.5 * bl + 128.0; }
    return 0.5 * r - 0.418688 * g - 0.081312 * bl + 128.0;
}

// a = RGB images in [-1, 1]; b = quantisation tables [luma 64, chroma 64]; out = YCbCr after the codec,
// [N, 3, H, W] in [0, 255] (chroma repeated FxF). One invocation per 8x8 block of one component.
@compute @workgroup_size(64)
fn jpeg_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.n) { return; }
    let lbw = p.w / 8u;
    let luma = (p.h / 8u) * lbw;
    let cbw = p.w / (8u * p.f);
    let chroma = (p.h / (8u * p.f)) * cbw;
    let per = luma + 2u * chroma;
    let img = i / per;
    var r = i % per;
    var c = 0u;
    var bw = lbw;
    if (r >= luma) {
        c = 1u + (r - luma) / chroma;
        r = (r - luma) % chroma;
        bw = cbw;
    }
    let by = r / bw;
    let bx = r % bw;
    var s: array<f32, 64>;
    for (var y = 0u; y < 8u; y++) {
        for (var x = 0u; x < 8u; x++) {
            var v = 0.0;
            if (c == 0u) {
                v = ycc(img, 0u, by * 8u + y, bx * 8u + x);
            } else {
                let yy = p.f * (by * 8u + y);
                let xx = p.f * (bx * 8u + x);
                for (var dy = 0u; dy < p.f; dy++) {
                    for (var dx = 0u; dx < p.f; dx++) { v += ycc(img, c, yy + dy, xx + dx); }
                }
                v /= f32(p.f * p.f);
            }
            s[y * 8u + x] = v - 128.0;
        }
    }
    // Forward DCT (rows of the basis along y, then x), quantise, round, dequantise.
    var t: array<f32, 64>;
    for (var u = 0u; u < 8u; u++) {
        for (var x = 0u; x < 8u; x++) {
            var acc = 0.0;
            for (var y = 0u; y < 8u; y++) { acc += basis(u, y) * s[y * 8u + x]; }
            t[u * 8u + x] = acc;
        }
    }
    let qoff = select(64u, 0u, c == 0u);
    for (var u = 0u; u < 8u; u++) {
        for (var v = 0u; v < 8u; v++) {
            var acc = 0.0;
            for (var x = 0u; x < 8u; x++) { acc += basis(v, x) * t[u * 8u + x]; }
            if (p.round == 1u) {
                let q = b[qoff + u * 8u + v];
                let z = acc / q;
                acc = sign(z) * floor(abs(z) + 0.5) * q;
            }
            s[u * 8u + v] = acc;
        }
    }
    // Inverse DCT.
    for (var y = 0u; y < 8u; y++) {
        for (var v = 0u; v < 8u; v++) {
            var acc = 0.0;
            for (var u = 0u; u < 8u; u++) { acc += basis(u, y) * s[u * 8u + v]; }
            t[y * 8u + v] = acc;
        }
    }
    for (var y = 0u; y < 8u; y++) {
        for (var x = 0u; x < 8u; x++) {
            var acc = 128.0;
            for (var v = 0u; v < 8u; v++) { acc += basis(v, x) * t[y * 8u + v]; }
            if (c == 0u) {
                out[((img * 3u) * p.h + by * 8u + y) * p.w + bx * 8u + x] = acc;
            } else {
                let yy = p.f * (by * 8u + y);
                let xx = p.f * (bx * 8u + x);
                let base = ((img * 3u + c) * p.h + yy) * p.w + xx;
                for (var dy = 0u; dy < p.f; dy++) {
                    for (var dx = 0u; dx < p.f; dx++) { out[base + dy * p.w + dx] = acc; }
                }
            }
        }
    }
}

// a = YCbCr [N, 3, H, W] in [0, 255] -> out = RGB in [-1, 1], clamped to [0, 255] and (round = 1) rounded
// to 8 bits, as a decoder writes pixels. One invocation per pixel.
@compute @workgroup_size(256)
fn ycc_to_rgb(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= p.n) { return; }
    let hw = p.h * p.w;
    let img = i / hw;
    let q = i % hw;
    let y = a[(img * 3u) * hw + q];
    let cb = a[(img * 3u + 1u) * hw + q] - 128.0;
    let cr = a[(img * 3u + 2u) * hw + q] - 128.0;
    var rgb = vec3<f32>(y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb);
    rgb = clamp(rgb, vec3<f32>(0.0), vec3<f32>(255.0));
    if (p.round == 1u) { rgb = floor(rgb + 0.5); }
    for (var c = 0u; c < 3u; c++) {
        out[(img * 3u + c) * hw + q] = rgb[c] / 127.5 - 1.0;
    }
}

// Residual r = scale * (H(x) - y) at pixel (y, x) pulled back to YCbCr through the transpose of the
// YCbCr -> RGB matrix.
fn back_ycc(img: u32, c: u32, yy: u32, xx: u32) -> f32 {
    let hw = p.h * p.w;
    let q = yy * p.w + xx;
    let rr = p.scale * (a[(img * 3u) * hw + q] - b[(img * 3u) * hw + q]);
    let rg = p.scale * (a[(img * 3u + 1u) * hw + q] - b[(img * 3u + 1u) * hw + q]);
    let rb = p.scale * (a[(img * 3u + 2u) * hw + q] - b[(img * 3u + 2u) * hw + q]);
    if (c == 0u) { return rr + rg + rb; }
    if (c == 1u) { return -0.344136 * rg + 1.772 * rb; }
    return 1.402 * rr - 0.714136 * rg;
}

// ∇ₓ ½·mean((y − H(x))²) with a straight-through rounding: the transpose of the codec's linear part
// (RGB -> YCbCr, chroma FxF mean then repeat, which is symmetric, YCbCr -> RGB; the DCT pair is the
// identity) applied to the residual. a = H(x), b = y, both [N, 3, H, W]; one invocation per pixel.
@compute @workgroup_size(256)
fn jpeg_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= p.n) { return; }
    let hw = p.h * p.w;
    let img = i / hw;
    let q = i % hw;
    let y = q / p.w;
    let x = q % p.w;
    let y0 = y - y % p.f;
    let x0 = x - x % p.f;
    let vy = back_ycc(img, 0u, y, x);
    var vc = vec2<f32>(0.0);
    for (var c = 1u; c < 3u; c++) {
        var acc = 0.0;
        for (var dy = 0u; dy < p.f; dy++) {
            for (var dx = 0u; dx < p.f; dx++) { acc += back_ycc(img, c, y0 + dy, x0 + dx); }
        }
        vc[c - 1u] = acc / f32(p.f * p.f);
    }
    out[(img * 3u) * hw + q] = 0.299 * vy - 0.168736 * vc.x + 0.5 * vc.y;
    out[(img * 3u + 1u) * hw + q] = 0.587 * vy - 0.331264 * vc.x - 0.418688 * vc.y;
    out[(img * 3u + 2u) * hw + q] = 0.114 * vy + 0.5 * vc.x - 0.081312 * vc.y;
}
