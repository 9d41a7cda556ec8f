// Fast path for 3x3 convolutions with stride 1 and padding 1 (the bulk of a UNet), NCHW.
// Weights are pre-packed by conv.wgsl's `pack3x3` into wp[(c*9 + ky*3 + kx) * CoutP + oc] (CoutP = Cout
// rounded up to 8, zero-filled) and read as vec4 over output channels. Each thread computes 8 output
// channels x 4 adjacent columns: per (c, ky) it loads 6 inputs and 6 weight vectors for 96 FMAs.
// Bindings: 1 x, 2 wp (vec4), 3 bias (read), 4 out (read_write). 64 threads per workgroup.

struct P {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    coutp: u32,
    has_bias: u32,
    threads: u32,   // N * CoutP/8 * H * ceil(W/4)
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wp: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn ld(row: u32, ix: i32) -> f32 {
    if (ix < 0 || ix >= i32(p.w)) { return 0.0; }
    return x[row + u32(ix)];
}

@compute @workgroup_size(64)
fn conv3x3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let tid = (wid.x + wid.y * nwg.x) * 64u + li;
    if (tid >= p.threads) { return; }
    let wblocks = (p.w + 3u) / 4u;
    let cblocks = p.coutp / 8u;
    let bx = tid % wblocks;
    let oy = (tid / wblocks) % p.h;
    let cb = (tid / (wblocks * p.h)) % cblocks;
    let n = tid / (wblocks * p.h * cblocks);
    let ox0 = i32(bx * 4u);
    let q = p.coutp / 4u;           // vec4s per (c, ky, kx) row of packed weights
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    let hw = p.h * p.w;
    for (var c = 0u; c < p.cin; c++) {
        let xb = (n * p.cin + c) * hw;
        for (var ky = 0u; ky < 3u; ky++) {
            let iy = i32(oy + ky) - 1;
            if (iy < 0 || iy >= i32(p.h)) { continue; }
            let row = xb + u32(iy) * p.w;
            let x0 = ld(row, ox0 - 1);
            let x1 = ld(row, ox0);
            let x2 = ld(row, ox0 + 1);
            let x3 = ld(row, ox0 + 2);
            let x4 = ld(row, ox0 + 3);
            let x5 = ld(row, ox0 + 4);
            let base = (c * 9u + ky * 3u) * q + cb * 2u;
            var wa = wp[base];
            var wb = wp[base + 1u];
            a0 += wa * x0; a1 += wa * x1; a2 += wa * x2; a3 += wa * x3;
            b0 += wb * x0; b1 += wb * x1; b2 += wb * x2; b3 += wb * x3;
            wa = wp[base + q];
            wb = wp[base + q + 1u];
            a0 += wa * x1; a1 += wa * x2; a2 += wa * x3; a3 += wa * x4;
            b0 += wb * x1; b1 += wb * x2; b2 += wb * x3; b3 += wb * x4;
            wa = wp[base + 2u * q];
            wb = wp[base + 2u * q + 1u];
            a0 += wa * x2; a1 += wa * x3; a2 += wa * x4; a3 += wa * x5;
            b0 += wb * x2; b1 += wb * x3; b2 += wb * x4; b3 += wb * x5;
        }
    }
    let oc0 = cb * 8u;
    let px = array<vec4<f32>, 4>(a0, a1, a2, a3);
    let py = array<vec4<f32>, 4>(b0, b1, b2, b3);
    for (var r = 0u; r < 8u; r++) {
        let oc = oc0 + r;
        if (oc >= p.cout) { break; }
        var bv = 0.0;
        if (p.has_bias != 0u) { bv = bias[oc]; }
        let ob = ((n * p.cout + oc) * p.h + oy) * p.w;
        for (var j = 0u; j < 4u; j++) {
            if (u32(ox0) + j < p.w) {
                var v: f32;
                if (r < 4u) { v = px[j][r]; } else { v = py[j][r - 4u]; }
                out[ob + u32(ox0) + j] = v + bv;
            }
        }
    }
}
