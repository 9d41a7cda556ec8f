// 2-D convolution, NCHW, cross-correlation as torch.nn.Conv2d (groups = 1, dilation 1), any kernel size,
// stride and padding, for CPU adapters (register-blocked, no workgroup memory). Each thread computes 4
// output channels x 4 adjacent output columns. Weights packed by conv_pack.wgsl: A[k][m],
// k = (c * K + ky) * K + kx, rows of Mp (a multiple of 8) entries, f32 bit patterns or f16 pairs (WF16).
// Override KS = 3 or 1 fixes the kernel size so loops unroll; KS = 0 reads it from the parameters.
// Epilogue as conv3x3.wgsl: v = acc + bias[m] + add[n * add_stride + add_off + m]; out = alpha * v + beta * res.
// Bindings: 1 x, 2 w (words), 3 bias, 4 add, 5 res (read), 6 out (read_write).

override KS: u32 = 0u;
override WF16: bool = false;

struct P {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    ho: u32,
    wo: u32,
    k: u32,
    stride: u32,
    pad: u32,
    mp: u32,
    threads: u32,   // N * ceil(Cout/4) * Ho * ceil(Wo/4)
    flags: u32,
    add_off: u32,
    add_stride: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> addv: array<f32>;
@group(0) @binding(5) var<storage, read> res: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

// Packed entries 4i .. 4i+3.
fn w4(i: u32) -> vec4<f32> {
    if (WF16) {
        return vec4<f32>(unpack2x16float(wt[2u * i]), unpack2x16float(wt[2u * i + 1u]));
    }
    return bitcast<vec4<f32>>(vec4<u32>(wt[4u * i], wt[4u * i + 1u], wt[4u * i + 2u], wt[4u * i + 3u]));
}

fn epilogue(n: u32, m: u32, idx: u32, acc: f32) -> f32 {
    var v = acc;
    if ((p.flags & 1u) != 0u) { v += bias[m]; }
    if ((p.flags & 2u) != 0u) { v += addv[n * p.add_stride + p.add_off + m]; }
    v *= p.alpha;
    if ((p.flags & 4u) != 0u) { v += p.beta * res[idx]; }
    return v;
}

@compute @workgroup_size(64)
fn conv2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let tid = (wid.x + wid.y * nwg.x) * 64u + li;
    if (tid >= p.threads) { return; }
    let k = select(p.k, KS, KS > 0u);
    let wblocks = (p.wo + 3u) / 4u;
    let cblocks = (p.cout + 3u) / 4u;
    let bx = tid % wblocks;
    let oy = (tid / wblocks) % p.ho;
    let cb = (tid / (wblocks * p.ho)) % cblocks;
    let n = tid / (wblocks * p.ho * cblocks);
    let ox0 = bx * 4u;
    let q = p.mp / 4u;
    var acc: array<vec4<f32>, 4>;
    let iy0 = i32(oy * p.stride) - i32(p.pad);
    let ix0 = i32(ox0 * p.stride) - i32(p.pad);
    let s = i32(p.stride);
    let hw = p.h * p.w;
    for (var c = 0u; c < p.cin; c++) {
        let xb = (n * p.cin + c) * hw;
        for (var ky = 0u; ky < k; ky++) {
            let iy = iy0 + i32(ky);
            if (iy < 0 || iy >= i32(p.h)) { continue; }
            let xrow = xb + u32(iy) * p.w;
            for (var kx = 0u; kx < k; kx++) {
                let ix = ix0 + i32(kx);
                var xv = vec4<f32>(0.0);
                for (var j = 0; j < 4; j++) {
                    let xx = ix + j * s;
                    if (xx >= 0 && xx < i32(p.w)) { xv[j] = x[xrow + u32(xx)]; }
                }
                // Four output channels' weights for this tap: [m0 .. m0+3] of row (c*K + ky)*K + kx.
                let wv = w4(((c * k + ky) * k + kx) * q + cb);
                acc[0] += wv.x * xv;
                acc[1] += wv.y * xv;
                acc[2] += wv.z * xv;
                acc[3] += wv.w * xv;
            }
        }
    }
    for (var r = 0u; r < 4u; r++) {
        let oc = cb * 4u + r;
        if (oc >= p.cout) { break; }
        let ob = ((n * p.cout + oc) * p.ho + oy) * p.wo;
        for (var j = 0u; j < 4u; j++) {
            if (ox0 + j < p.wo) { out[ob + ox0 + j] = epilogue(n, oc, ob + ox0 + j, acc[r][j]); }
        }
    }
}
