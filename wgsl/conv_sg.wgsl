// Convolutions for CPU adapters with subgroups of at least 8 lanes, weights shared over the subgroup: every
// lane of a subgroup needs the same weights (the 8-output-channel block is workgroup-uniform), and on lavapipe
// a load whose address is not a compile-time uniform runs once per lane, so each lane loads one weight word
// and subgroupBroadcast hands the words out (in llvmpipe an extract and a splat each). All lanes of a
// subgroup with work stay active through the loop (inputs outside the image read as zeros, lanes past the
// last pixel compute and do not store), so every broadcast has its source lane; subgroups with no pixel
// leave together.
//   conv3x3: stride 1, padding 1; conv3x3.wgsl's register blocking (8 output channels x 4 adjacent columns)
//            for two rows per thread (row oy and oy + 1: each weight word loaded and broadcast serves both,
//            ~12 % less CPU time per dispatch on lavapipe than one row; three or four rows were slower);
//            per c a lane loads the 4 input rows oy - 1 .. oy + 2 once (6 inputs each) and per ky one word
//            per tap (f32: 3 loads) or per two taps (f16 pairs: 2 loads). A lane loads only its own 4
//            inputs of a row and takes the column left of them from the previous lane and the one right of
//            them from the next lane (subgroupShuffleUp/Down): 14 % fewer instructions per dispatch on
//            lavapipe (callgrind) for rows of at most 8 blocks. Where a row's blocks do not fill whole
//            subgroups (ROW_EDGES: ceil(W / 4) does not divide 8), the first and last lane of a subgroup
//            load the column their neighbour outside it would hold: 5-14 % faster per dispatch than two
//            loads in every lane (interleaved on lavapipe, 24x24 .. 256x256). This relies on lanes of a
//            subgroup being consecutive local invocations, as on lavapipe; where they are not, the
//            outputs are NaN instead of silently wrong. With VEC4_X (W % 4 == 0) the 4 inputs
//            are one vec4 load through binding 7 (the input again, as vec4s) instead of 4 loads with
//            bounds checks: 20-30 % faster per 3x3 dispatch on lavapipe (64->64 at 32x32 .. 64x64).
//   conv1x1: stride 1, no padding; 16 output channels x 4 consecutive pixels of H*W per thread; per c a
//            lane loads 4 inputs (one vec4 with VEC4_X, set when H * W % 4 == 0) and 1 weight word (f16
//            pairs; f32: 2) for 64 FMAs (conv.wgsl: 4 inputs and 4 weights for 16). 16 channels instead of
//            8: 15-25 % less CPU time per 1x1 dispatch on lavapipe; 8 channels x 8 pixels gained nothing.
// Workgroup g = (n * pixel blocks of 64 threads + pixel block) * channel blocks + channel block (conv3x3:
// blocks of 8 channels, and a thread's pixels are a 4-column block of a row pair; conv1x1: 16 channels).
// Weights packed by conv_pack.wgsl (A[k][m], k = c * K * K + ky * K + kx, rows of Mp entries; f32 bit
// patterns, or f16 pairs with WF16 = true). Parameters, epilogue and bindings as conv3x3.wgsl.
// (wgpu accepts subgroup builtins without `enable subgroups;` when the device has SUBGROUP.)

override WF16: bool = false;
override ROW_EDGES: bool = false;
override VEC4_X: bool = false;
// conv1x1: image n has its own weights, starting at word n * Cin * Mp (f32 only; winograd.wgsl's 36
// transformed kernels, one per "image").
override W_PER_IMAGE: bool = false;

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

// The six inputs of one 4-column block of row iy (zeros outside the image): x0 and x5 are the columns left
// and right of the block.
struct Row6 { x0: f32, x1: f32, x2: f32, x3: f32, x4: f32, x5: f32 }

// Where a lane's block sits: first / last block of its image row, and (ROW_EDGES) whether its left / right
// neighbour block is outside its subgroup, so that column is loaded instead of shuffled.
struct Edges { first: bool, last: bool, load_l: bool, load_r: bool }

fn row6(xb: u32, iy: i32, ox0: i32, e: Edges) -> Row6 {
    let ok = iy >= 0 && iy < i32(p.h);
    let row = xb + u32(clamp(iy, 0, i32(p.h) - 1)) * p.w;
    var r: Row6;
    if (VEC4_X) {
        let v = select(vec4<f32>(0.0), xq[(row + u32(ox0)) / 4u], ok);
        r.x1 = v.x; r.x2 = v.y; r.x3 = v.z; r.x4 = v.w;
    } else {
        r.x1 = ld(row, ox0, ok); r.x2 = ld(row, ox0 + 1, ok); r.x3 = ld(row, ox0 + 2, ok); r.x4 = ld(row, ox0 + 3, ok);
    }
    var xl = subgroupShuffleUp(r.x4, 1u);
    var xr = subgroupShuffleDown(r.x1, 1u);
    if (ROW_EDGES) {
        if (e.load_l) { xl = ld(row, ox0 - 1, ok); }
        if (e.load_r) { xr = ld(row, ox0 + 4, ok); }
    }
    r.x0 = select(xl, 0.0, e.first);
    r.x5 = select(xr, 0.0, e.last);
    return r;
}

// One kernel row's weights: taps kx = 0, 1, 2 for output channels 0-3 (a) and 4-7 (b).
struct Taps { a0: vec4<f32>, b0: vec4<f32>, a1: vec4<f32>, b1: vec4<f32>, a2: vec4<f32>, b2: vec4<f32> }

// e0: packed entry of (kx = 0, output channel 0) of this kernel row and channel block.
fn taps(e0: u32, lane: u32) -> Taps {
    var w: Taps;
    if (WF16) {
        // Taps 0 and 1: 8 words, lane l -> tap l / 4, word l % 4; tap 2: lanes 0..3 (4..7 repeat).
        let r01 = wt[(e0 + (lane / 4u) * p.mp) / 2u + lane % 4u];
        let r2 = wt[(e0 + 2u * p.mp) / 2u + lane % 4u];
        w.a0 = lo16(r01); w.b0 = hi16(r01); w.a1 = lo16b(r01); w.b1 = hi16b(r01);
        w.a2 = lo16(r2); w.b2 = hi16(r2);
    } else {
        let r0 = wt[e0 + lane];
        let r1 = wt[e0 + p.mp + lane];
        let r2 = wt[e0 + 2u * p.mp + lane];
        w.a0 = lo32(r0); w.b0 = hi32(r0); w.a1 = lo32(r1); w.b1 = hi32(r1); w.a2 = lo32(r2); w.b2 = hi32(r2);
    }
    return w;
}

// 8 output channels x 4 columns of one output row: a* channels 0-3, b* channels 4-7, *j column j.
struct Acc { a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32> }

fn acc_init(v: f32) -> Acc {
    let z = vec4<f32>(v);
    return Acc(z, z, z, z, z, z, z, z);
}

fn acc_row(s: Acc, w: Taps, x: Row6) -> Acc {
    var o = s;
    o.a0 += w.a0 * x.x0; o.a1 += w.a0 * x.x1; o.a2 += w.a0 * x.x2; o.a3 += w.a0 * x.x3;
    o.b0 += w.b0 * x.x0; o.b1 += w.b0 * x.x1; o.b2 += w.b0 * x.x2; o.b3 += w.b0 * x.x3;
    o.a0 += w.a1 * x.x1; o.a1 += w.a1 * x.x2; o.a2 += w.a1 * x.x3; o.a3 += w.a1 * x.x4;
    o.b0 += w.b1 * x.x1; o.b1 += w.b1 * x.x2; o.b2 += w.b1 * x.x3; o.b3 += w.b1 * x.x4;
    o.a0 += w.a2 * x.x2; o.a1 += w.a2 * x.x3; o.a2 += w.a2 * x.x4; o.a3 += w.a2 * x.x5;
    o.b0 += w.b2 * x.x2; o.b1 += w.b2 * x.x3; o.b2 += w.b2 * x.x4; o.b3 += w.b2 * x.x5;
    return o;
}

// Stores a lane's sums for output-plane offsets off .. off + 3 of image n, channels cb * 8 .. + 7, the first
// `valid` (1..4) of them.
fn store4(s: Acc, n: u32, cb: u32, off: u32, valid: u32) {
    let px = array<vec4<f32>, 4>(s.a0, s.a1, s.a2, s.a3);
    let py = array<vec4<f32>, 4>(s.b0, s.b1, s.b2, s.b3);
    let hw = p.h * p.w;
    for (var rr = 0u; rr < 8u; rr++) {
        let oc = cb * 8u + rr;
        if (oc >= p.cout) { break; }
        let ob = (n * p.cout + oc) * hw + off;
        for (var j = 0u; j < min(valid, 4u); j++) {
            var v: f32;
            if (rr < 4u) { v = px[j][rr]; } else { v = py[j][rr - 4u]; }
            out[ob + j] = epilogue(n, oc, ob + j, v);
        }
    }
}

@compute @workgroup_size(64)
fn conv3x3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32,
           @builtin(subgroup_size) sgsize: u32) {
    let wblocks = (p.w + 3u) / 4u;
    let cblocks = p.mp / 8u;
    let pix = ((p.h + 1u) / 2u) * wblocks;   // lanes: 4-column blocks of row pairs
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
    let oy = (tc / wblocks) * 2u;
    let ox0 = i32(bx * 4u);
    let lane = sl % 8u;
    // The previous (next) lane holds the block left (right) of this one unless this block starts (ends) its
    // row, where the padding is zero, or (ROW_EDGES) the lane starts (ends) its subgroup; a lane mapping
    // that breaks this poisons the output.
    let first = bx == 0u;
    let last = bx + 1u == wblocks;
    let e = Edges(first, last, ROW_EDGES && sl == 0u && !first, ROW_EDGES && sl + 1u == sgsize && !last);
    var poison = 0.0;
    let prev = subgroupShuffleUp(tc, 1u);
    let next = subgroupShuffleDown(tc, 1u);
    if ((!first && !e.load_l && prev + 1u != tc) || (!last && !e.load_r && next != tc + 1u)) { poison = bitcast<f32>(0x7fc00000u); }
    var top = acc_init(poison);
    var bottom = acc_init(poison);
    let hw = p.h * p.w;
    for (var c = 0u; c < p.cin; c++) {
        let xb = (n * p.cin + c) * hw;
        // Input rows oy - 1 .. oy + 2, each loaded once: kernel row ky takes rows ky (top) and ky + 1 (bottom).
        let r0 = row6(xb, i32(oy) - 1, ox0, e);
        let r1 = row6(xb, i32(oy), ox0, e);
        let r2 = row6(xb, i32(oy) + 1, ox0, e);
        let r3 = row6(xb, i32(oy) + 2, ox0, e);
        let e0 = c * 9u * p.mp + cb * 8u;
        let w0 = taps(e0, lane);
        top = acc_row(top, w0, r0);
        bottom = acc_row(bottom, w0, r1);
        let w1 = taps(e0 + 3u * p.mp, lane);
        top = acc_row(top, w1, r1);
        bottom = acc_row(bottom, w1, r2);
        let w2 = taps(e0 + 6u * p.mp, lane);
        top = acc_row(top, w2, r2);
        bottom = acc_row(bottom, w2, r3);
    }
    if (!live) { return; }
    let cols = p.w - u32(ox0);
    store4(top, n, cb, oy * p.w + u32(ox0), cols);
    if (oy + 1u < p.h) { store4(bottom, n, cb, (oy + 1u) * p.w + u32(ox0), cols); }
}

// Pixels p0 .. p0 + 3 of one input plane starting at xb (zeros at and past hw).
fn px4(xb: u32, p0: u32, hw: u32) -> vec4<f32> {
    if (VEC4_X) {
        return select(vec4<f32>(0.0), xq[(xb + min(p0, hw - 4u)) / 4u], p0 < hw);
    }
    var v: vec4<f32>;
    for (var j = 0u; j < 4u; j++) {
        v[j] = select(0.0, x[xb + min(p0 + j, hw - 1u)], p0 + j < hw);
    }
    return v;
}

fn acc_px(s: Acc, wa: vec4<f32>, wb: vec4<f32>, xv: vec4<f32>) -> Acc {
    var o = s;
    o.a0 += wa * xv.x; o.a1 += wa * xv.y; o.a2 += wa * xv.z; o.a3 += wa * xv.w;
    o.b0 += wb * xv.x; o.b1 += wb * xv.y; o.b2 += wb * xv.z; o.b3 += wb * xv.w;
    return o;
}

@compute @workgroup_size(64)
fn conv1x1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32) {
    let hw = p.h * p.w;
    let blocks = (hw + 3u) / 4u;
    let cblocks = (p.mp + 15u) / 16u;   // 16 output channels per lane
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
    var s0 = acc_init(0.0);
    var s1 = acc_init(0.0);
    for (var c = 0u; c < p.cin; c++) {
        let xv = px4((n * p.cin + c) * hw, p0, hw);
        let e0 = (select(0u, n * p.cin, W_PER_IMAGE) + c) * p.mp + cb * 16u;
        if (WF16) {
            // Lanes 0-3: words of channels 0-7, lanes 4-7: channels 8-15 (past Mp: never stored).
            let rw = wt[e0 / 2u + lane];
            s0 = acc_px(s0, lo16(rw), hi16(rw), xv);
            s1 = acc_px(s1, lo16b(rw), hi16b(rw), xv);
        } else {
            let r0 = wt[e0 + lane];
            let r1 = wt[e0 + 8u + lane];
            s0 = acc_px(s0, lo32(r0), hi32(r0), xv);
            s1 = acc_px(s1, lo32(r1), hi32(r1), xv);
        }
    }
    if (!live) { return; }
    store4(s0, n, 2u * cb, p0, hw - p0);
    store4(s1, n, 2u * cb + 1u, p0, hw - p0);
}
