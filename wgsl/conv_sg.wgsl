// Convolutions for CPU adapters with subgroups of at least 8 lanes, weights shared over the subgroup: every
// lane of a subgroup needs the same weights (the 8-output-channel block is workgroup-uniform), and on lavapipe
// a load whose address is not a compile-time uniform runs once per lane, so each lane loads one weight word
// and subgroupBroadcast hands the words out (in llvmpipe an extract and a splat each). All lanes of a
// subgroup with work stay active through the loop (inputs outside the image read as zeros, lanes past the
// last pixel compute and do not store), so every broadcast has its source lane; subgroups with no pixel
// leave together.
//   conv3x3: stride 1, padding 1; conv3x3.wgsl's register blocking (8 output channels x 4 adjacent columns
//            per thread); per (c, ky) a lane loads 6 inputs and one word per tap (f32: 3 loads) or per two
//            taps (f16 pairs: 2 loads). With ROW_SHUFFLE (set when ceil(W / 4) divides 8, so every image row
//            starts at an 8-lane boundary of the subgroup) a lane loads only its own 4 inputs and takes the
//            column left of them from the previous lane and the one right of them from the next lane
//            (subgroupShuffleUp/Down): 14 % fewer instructions per dispatch on lavapipe (callgrind). This
//            relies on lanes of a subgroup being consecutive local invocations, as on lavapipe; where they
//            are not, the outputs are NaN instead of silently wrong. With VEC4_X (W % 4 == 0) the 4 inputs
//            are one vec4 load through binding 7 (the input again, as vec4s) instead of 4 loads with
//            bounds checks: 20-30 % faster per 3x3 dispatch on lavapipe (64->64 at 32x32 .. 64x64).
//   conv1x1: stride 1, no padding; 8 output channels x 4 consecutive pixels of H*W per thread; per c a lane
//            loads 4 inputs (one vec4 with VEC4_X, set when H * W % 4 == 0) and 1 weight word for 32 FMAs
//            (conv.wgsl: 4 inputs and 4 weights for 16).
// Workgroup g = (n * pixel blocks of 64 threads + pixel block) * Mp/8 + channel block.
// Weights packed by conv_pack.wgsl (A[k][m], k = c * K * K + ky * K + kx, rows of Mp entries; f32 bit
// patterns, or f16 pairs with WF16 = true). Parameters, epilogue and bindings as conv3x3.wgsl.
// (wgpu accepts subgroup builtins without `enable subgroups;` when the device has SUBGROUP.)

override WF16: bool = false;
override ROW_SHUFFLE: bool = false;
override VEC4_X: bool = false;

struct P {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    mp: u32,
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
// The input again, four floats per element (VEC4_X: rows of whole vec4s).
@group(0) @binding(7) var<storage, read> xq: array<vec4<f32>>;

fn ld(row: u32, ix: i32, ok: bool) -> f32 {
    if (!ok || ix < 0 || ix >= i32(p.w)) { return 0.0; }
    return x[row + u32(ix)];
}

fn epilogue(n: u32, m: u32, idx: u32, acc: f32) -> f32 {
    var v = acc;
    if ((p.flags & 1u) != 0u) { v += bias[m]; }
    if ((p.flags & 2u) != 0u) { v += addv[n * p.add_stride + p.add_off + m]; }
    v *= p.alpha;
    if ((p.flags & 4u) != 0u) { v += p.beta * res[idx]; }
    return v;
}

// Output channels 0-3 (lo) and 4-7 (hi) of one tap, from the words the subgroup loaded: f32, tap kx in
// word lanes 0..7 of register `r`; f16, tap kx in lanes 4 * (kx % 2) .. + 3 of `r`.
fn lo32(r: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(subgroupBroadcast(r, 0u), subgroupBroadcast(r, 1u), subgroupBroadcast(r, 2u), subgroupBroadcast(r, 3u)));
}
fn hi32(r: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(subgroupBroadcast(r, 4u), subgroupBroadcast(r, 5u), subgroupBroadcast(r, 6u), subgroupBroadcast(r, 7u)));
}
fn lo16(r: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(subgroupBroadcast(r, 0u)), unpack2x16float(subgroupBroadcast(r, 1u)));
}
fn hi16(r: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(subgroupBroadcast(r, 2u)), unpack2x16float(subgroupBroadcast(r, 3u)));
}
fn lo16b(r: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(subgroupBroadcast(r, 4u)), unpack2x16float(subgroupBroadcast(r, 5u)));
}
fn hi16b(r: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(subgroupBroadcast(r, 6u)), unpack2x16float(subgroupBroadcast(r, 7u)));
}

@compute @workgroup_size(64)
fn conv3x3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32) {
    let wblocks = (p.w + 3u) / 4u;
    let cblocks = p.mp / 8u;
    let pix = p.h * wblocks;
    let gpb = (pix + 63u) / 64u;
    let g = wid.x + wid.y * nwg.x;
    let cb = g % cblocks;
    let r = g / cblocks;
    let n = r / gpb;
    if (n >= p.n) { return; }
    let t = (r % gpb) * 64u + li;
    let live = t < pix;
    // Subgroups with no pixel leave (the whole subgroup at once, so broadcasts keep their sources).
    if (!subgroupAny(live)) { return; }
    let tc = min(t, pix - 1u);
    let bx = tc % wblocks;
    let oy = tc / wblocks;
    let ox0 = i32(bx * 4u);
    let lane = sl % 8u;
    // ROW_SHUFFLE: the previous (next) lane holds the block left (right) of this one unless this block
    // starts (ends) its row, where the padding is zero; a lane mapping that breaks this poisons the output.
    let first = bx == 0u;
    let last = bx + 1u == wblocks;
    var poison = 0.0;
    if (ROW_SHUFFLE) {
        let prev = subgroupShuffleUp(tc, 1u);
        let next = subgroupShuffleDown(tc, 1u);
        if ((!first && prev + 1u != tc) || (!last && next != tc + 1u)) { poison = bitcast<f32>(0x7fc00000u); }
    }
    var a0 = vec4<f32>(poison); var a1 = vec4<f32>(poison); var a2 = vec4<f32>(poison); var a3 = vec4<f32>(poison);
    var b0 = vec4<f32>(poison); var b1 = vec4<f32>(poison); var b2 = vec4<f32>(poison); var b3 = vec4<f32>(poison);
    let hw = p.h * p.w;
    for (var c = 0u; c < p.cin; c++) {
        let xb = (n * p.cin + c) * hw;
        for (var ky = 0u; ky < 3u; ky++) {
            let iy = i32(oy + ky) - 1;
            let ok = iy >= 0 && iy < i32(p.h);
            let row = xb + u32(clamp(iy, 0, i32(p.h) - 1)) * p.w;
            var x1: f32; var x2: f32; var x3: f32; var x4: f32;
            if (VEC4_X) {
                let v = select(vec4<f32>(0.0), xq[(row + u32(ox0)) / 4u], ok);
                x1 = v.x; x2 = v.y; x3 = v.z; x4 = v.w;
            } else {
                x1 = ld(row, ox0, ok); x2 = ld(row, ox0 + 1, ok); x3 = ld(row, ox0 + 2, ok); x4 = ld(row, ox0 + 3, ok);
            }
            var x0: f32;
            var x5: f32;
            if (ROW_SHUFFLE) {
                x0 = select(subgroupShuffleUp(x4, 1u), 0.0, first);
                x5 = select(subgroupShuffleDown(x1, 1u), 0.0, last);
            } else {
                x0 = ld(row, ox0 - 1, ok);
                x5 = ld(row, ox0 + 4, ok);
            }
            let e0 = (c * 9u + ky * 3u) * p.mp + cb * 8u;   // entry of (kx = 0, output channel 0)
            var wa0: vec4<f32>; var wb0: vec4<f32>; var wa1: vec4<f32>; var wb1: vec4<f32>;
            var wa2: vec4<f32>; var wb2: vec4<f32>;
            if (WF16) {
                // Taps 0 and 1: 8 words, lane l -> tap l / 4, word l % 4; tap 2: lanes 0..3 (4..7 repeat).
                let r01 = wt[(e0 + (lane / 4u) * p.mp) / 2u + lane % 4u];
                let r2 = wt[(e0 + 2u * p.mp) / 2u + lane % 4u];
                wa0 = lo16(r01); wb0 = hi16(r01); wa1 = lo16b(r01); wb1 = hi16b(r01);
                wa2 = lo16(r2); wb2 = hi16(r2);
            } else {
                let r0 = wt[e0 + lane];
                let r1 = wt[e0 + p.mp + lane];
                let r2 = wt[e0 + 2u * p.mp + lane];
                wa0 = lo32(r0); wb0 = hi32(r0); wa1 = lo32(r1); wb1 = hi32(r1); wa2 = lo32(r2); wb2 = hi32(r2);
            }
            a0 += wa0 * x0; a1 += wa0 * x1; a2 += wa0 * x2; a3 += wa0 * x3;
            b0 += wb0 * x0; b1 += wb0 * x1; b2 += wb0 * x2; b3 += wb0 * x3;
            a0 += wa1 * x1; a1 += wa1 * x2; a2 += wa1 * x3; a3 += wa1 * x4;
            b0 += wb1 * x1; b1 += wb1 * x2; b2 += wb1 * x3; b3 += wb1 * x4;
            a0 += wa2 * x2; a1 += wa2 * x3; a2 += wa2 * x4; a3 += wa2 * x5;
            b0 += wb2 * x2; b1 += wb2 * x3; b2 += wb2 * x4; b3 += wb2 * x5;
        }
    }
    if (!live) { return; }
    let oc0 = cb * 8u;
    let px = array<vec4<f32>, 4>(a0, a1, a2, a3);
    let py = array<vec4<f32>, 4>(b0, b1, b2, b3);
    for (var rr = 0u; rr < 8u; rr++) {
        let oc = oc0 + rr;
        if (oc >= p.cout) { break; }
        let ob = ((n * p.cout + oc) * p.h + oy) * p.w;
        for (var j = 0u; j < 4u; j++) {
            if (u32(ox0) + j < p.w) {
                var v: f32;
                if (rr < 4u) { v = px[j][rr]; } else { v = py[j][rr - 4u]; }
                let idx = ob + u32(ox0) + j;
                out[idx] = epilogue(n, oc, idx, v);
            }
        }
    }
}

@compute @workgroup_size(64)
fn conv1x1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32) {
    let hw = p.h * p.w;
    let blocks = (hw + 3u) / 4u;
    let cblocks = p.mp / 8u;
    let gpb = (blocks + 63u) / 64u;
    let g = wid.x + wid.y * nwg.x;
    let cb = g % cblocks;
    let r = g / cblocks;
    let n = r / gpb;
    if (n >= p.n) { return; }
    let t = (r % gpb) * 64u + li;
    let live = t < blocks;
    // Subgroups with no pixel leave (the whole subgroup at once, so broadcasts keep their sources).
    if (!subgroupAny(live)) { return; }
    let p0 = min(t, blocks - 1u) * 4u;
    let lane = sl % 8u;
    var a = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var b = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var c = 0u; c < p.cin; c++) {
        let xb = (n * p.cin + c) * hw + p0;
        var xv = vec4<f32>(0.0);
        if (VEC4_X) {
            xv = xq[xb / 4u];
        } else {
            for (var j = 0u; j < 4u; j++) {
                if (p0 + j < hw) { xv[j] = x[xb + j]; }
            }
        }
        let e0 = c * p.mp + cb * 8u;
        var wa: vec4<f32>;
        var wb: vec4<f32>;
        if (WF16) {
            let rw = wt[e0 / 2u + lane % 4u];
            wa = lo16(rw); wb = hi16(rw);
        } else {
            let rw = wt[e0 + lane];
            wa = lo32(rw); wb = hi32(rw);
        }
        a[0] += wa * xv.x; a[1] += wa * xv.y; a[2] += wa * xv.z; a[3] += wa * xv.w;
        b[0] += wb * xv.x; b[1] += wb * xv.y; b[2] += wb * xv.z; b[3] += wb * xv.w;
    }
    if (!live) { return; }
    for (var rr = 0u; rr < 8u; rr++) {
        let oc = cb * 8u + rr;
        if (oc >= p.cout) { break; }
        let ob = (n * p.cout + oc) * hw;
        for (var j = 0u; j < 4u; j++) {
            if (p0 + j < hw) {
                var v: f32;
                if (rr < 4u) { v = a[j][rr]; } else { v = b[j][rr - 4u]; }
                out[ob + p0 + j] = epilogue(n, oc, ob + p0 + j, v);
            }
        }
    }
}
