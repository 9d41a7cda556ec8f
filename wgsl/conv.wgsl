// 2-D convolution, NCHW, cross-correlation as torch.nn.Conv2d (groups = 1, dilation 1).
// x [N, Cin, H, W], w [Cout, Cin, K, K], bias [Cout], out [N, Cout, Ho, Wo].
// Register-blocked: each thread computes 4 output channels x 4 adjacent output columns (16 accumulators,
// no workgroup memory). Override KS = 3 or 1 specialises the kernel size so loops unroll (fast paths);
// KS = 0 reads the size from the parameters (any K, stride, padding).
// Bindings: 1 x, 2 w, 3 bias (read), 4 out (read_write). 64 threads per workgroup, 1-D grid folded to 2-D.

override KS: u32 = 0u;

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
    has_bias: u32,
    threads: u32,   // N * ceil(Cout/4) * Ho * ceil(Wo/4)
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn conv2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let tid = (wid.x + wid.y * nwg.x) * 64u + li;
    if (tid >= p.threads) { return; }
    let k = select(p.k, KS, KS > 0u);
    let kk = k * k;
    let wblocks = (p.wo + 3u) / 4u;
    let cblocks = (p.cout + 3u) / 4u;
    let bx = tid % wblocks;
    let oy = (tid / wblocks) % p.ho;
    let cb = (tid / (wblocks * p.ho)) % cblocks;
    let n = tid / (wblocks * p.ho * cblocks);
    let ox0 = bx * 4u;
    let oc0 = cb * 4u;
    // Output channel rows, clamped so loads stay in bounds (their results are not stored).
    let r0 = min(oc0, p.cout - 1u) * p.cin * kk;
    let r1 = min(oc0 + 1u, p.cout - 1u) * p.cin * kk;
    let r2 = min(oc0 + 2u, p.cout - 1u) * p.cin * kk;
    let r3 = min(oc0 + 3u, p.cout - 1u) * p.cin * kk;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let iy0 = i32(oy * p.stride) - i32(p.pad);
    let ix0 = i32(ox0 * p.stride) - i32(p.pad);
    let s = i32(p.stride);
    let hw = p.h * p.w;
    for (var c = 0u; c < p.cin; c++) {
        let xb = (n * p.cin + c) * hw;
        let wc = c * kk;
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
                let wo = wc + ky * k + kx;
                acc0 += wt[r0 + wo] * xv;
                acc1 += wt[r1 + wo] * xv;
                acc2 += wt[r2 + wo] * xv;
                acc3 += wt[r3 + wo] * xv;
            }
        }
    }
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < 4u; r++) {
        let oc = oc0 + r;
        if (oc >= p.cout) { break; }
        var bv = 0.0;
        if (p.has_bias != 0u) { bv = bias[oc]; }
        let ob = ((n * p.cout + oc) * p.ho + oy) * p.wo;
        for (var j = 0u; j < 4u; j++) {
            if (ox0 + j < p.wo) { out[ob + ox0 + j] = accs[r][j] + bv; }
        }
    }
}

// Packs w [Cout, Cin, 3, 3] (binding 2) into out[(c*9 + k) * CoutP + oc] (binding 4), zero for oc >= Cout,
// for conv3x3.wgsl. Parameters: cin, cout as above, k = CoutP, threads = Cin * 9 * CoutP.
@compute @workgroup_size(64)
fn pack3x3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.threads) { return; }
    let coutp = p.k;
    let oc = i % coutp;
    let ck = i / coutp;          // c * 9 + k
    if (oc >= p.cout) {
        out[i] = 0.0;
    } else {
        out[i] = wt[oc * p.cin * 9u + ck];
    }
}
