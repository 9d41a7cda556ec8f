// Implicit-GEMM 2-D convolution on cooperative matrices (tensor cores), NCHW, any kernel size (KS), stride
// and padding — the same product as conv_gemm.wgsl:
//   out[m][p] = sum_k A[k][m] * B[k][p],  m = output channel, p = (n, oy, ox), k = (c * KS + ky) * KS + kx,
//   B[k][p] = x[n][c][oy * stride - pad + ky][ox * stride - pad + kx] (0 outside the image).
// Operands are rounded to f16 (weights stored as F16 are exact), products accumulate in f32.
// A workgroup is SGM x 2 subgroups of 32 invocations and computes a BM x 64 output tile (BM = 32 SGM); each
// subgroup a 32 x 32 block as 2 x 2 coop_mat16x16 accumulators. Per step of BK = 32 along k, the workgroup
// stages A ([BK][BM] f16: column-major fragments) and B ([BK][64] f16: row-major fragments) in workgroup
// memory; the next step's values are loaded into registers while the tensor cores work on this one.
// Split-K (splits > 1, for layers with few output tiles, e.g. 512 channels at 8 x 8): the workgroups of split s
// sum k in [s kchunk, (s + 1) kchunk) and store raw sums to out[s * total + idx] (a scratch tensor); then
// conv_splitk.wgsl adds the splits and applies the epilogue.
// The host runs this kernel only on adapters whose subgroups are exactly 32 wide and that report a
// 16x16x16 f16 x f16 -> f32 configuration, and only after a self-check against conv_gemm.wgsl.
// Epilogue as conv_gemm.wgsl: v = acc + bias[m] + add[n * add_stride + add_off + m]; out = alpha * v + beta * res.
// Bindings: 1 x, 2 w (words), 3 bias, 4 add, 5 res (read), 6 out (read_write).
// The `coop:*-begin/end` markers delimit the only cooperative-matrix code: a test swaps it for scalar code
// with the same memory layouts, so everything else runs on adapters without tensor cores (lavapipe).
enable f16;
enable wgpu_cooperative_matrix;

override KS: u32 = 3u;
override WF16: bool = false;
override SGM: u32 = 2u;          // subgroups along M: 2 (BM 64, 128 invocations) or 4 (BM 128, 256)

const BN: u32 = 64u;
const BK: u32 = 32u;
const BM_MAX: u32 = 128u;
// Per invocation and step: BK * BM / 2 weight words / (64 SGM) = 8, and BK * BN / (64 SGM) <= 16 inputs.
const A_WORDS: u32 = 8u;
const B_MAX: u32 = 16u;

struct P {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    ho: u32,
    wo: u32,
    stride: u32,
    pad: u32,
    mp: u32,
    kt: u32,        // Cin * KS * KS
    npix: u32,      // N * Ho * Wo
    tiles_m: u32,   // ceil(Mp / BM)
    tiles: u32,     // tiles_m * ceil(npix / BN) * splits
    flags: u32,
    add_off: u32,
    add_stride: u32,
    alpha: f32,
    beta: f32,
    kchunk: u32,    // k per split, a multiple of BK (kt when splits = 1)
    splits: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> addv: array<f32>;
@group(0) @binding(5) var<storage, read> res: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> sa: array<f16, 4096>;   // [BK][BM]: element (m, k) at k * BM + m
var<workgroup> sb: array<f16, 2048>;   // [BK][BN]: element (k, p) at k * BN + p
var<workgroup> stage: array<f32, 2048>; // one 16 x 16 fragment per subgroup, for the epilogue

// Weights (k, m) and (k, m + 1) as one word of two f16 (m even; rows of Mp entries, Mp a multiple of 8).
fn weight_pair(k: u32, m: u32) -> u32 {
    let i = k * p.mp + m;
    if (WF16) {
        return wt[i / 2u];
    }
    return pack2x16float(vec2<f32>(bitcast<f32>(wt[i]), bitcast<f32>(wt[i + 1u])));
}

fn epilogue(n: u32, m: u32, idx: u32, acc: f32) -> f32 {
    var v = acc;
    if ((p.flags & 1u) != 0u) { v += bias[m]; }
    if ((p.flags & 2u) != 0u) { v += addv[n * p.add_stride + p.add_off + m]; }
    v *= p.alpha;
    if ((p.flags & 4u) != 0u) { v += p.beta * res[idx]; }
    return v;
}

// Loads one step's operands into this invocation's registers: A words e = li + threads * i (i < A_WORDS) of
// BK rows x bm / 2 words; B values of column li % 64, rows li / 64 + (threads / 64) * i; zero past kend, past
// the weights' rows and outside the image.
fn load_step(k0: u32, kend: u32, li: u32, m0: u32, pin: bool, iy0: i32, ix0: i32, xbase: u32,
             ra: ptr<function, array<u32, A_WORDS>>, rb: ptr<function, array<f32, B_MAX>>) {
    let bm = 32u * SGM;
    let threads = 64u * SGM;
    for (var i = 0u; i < A_WORDS; i++) {
        let e = li + threads * i;
        let k = k0 + e / (bm / 2u);
        let mm = 2u * (e % (bm / 2u));
        var v = 0u;
        if (k < kend && m0 + mm < p.mp) { v = weight_pair(k, m0 + mm); }
        (*ra)[i] = v;
    }
    for (var i = 0u; i < BK * BN / threads; i++) {
        let k = k0 + li / BN + (threads / BN) * i;
        var v = 0.0;
        if (k < kend && pin) {
            let c = k / (KS * KS);
            let t = k % (KS * KS);
            let iy = iy0 + i32(t / KS);
            let ix = ix0 + i32(t % KS);
            if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
                v = x[xbase + c * p.h * p.w + u32(iy) * p.w + u32(ix)];
            }
        }
        (*rb)[i] = v;
    }
}

@compute @workgroup_size(64 * SGM)
fn conv_coop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let bm = 32u * SGM;
    let threads = 64u * SGM;
    let g = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: every invocation takes the same branch, so barriers stay uniform.
    let valid = g < p.tiles;
    let per_split = p.tiles / p.splits;
    let split = select(0u, g, valid) / per_split;
    let gg = select(0u, g, valid) % per_split;
    let m0 = (gg % p.tiles_m) * bm;
    let p0 = (gg / p.tiles_m) * BN;
    let kbeg = split * p.kchunk;
    let kend = min(p.kt, kbeg + p.kchunk);
    let sg = li / 32u;                 // this subgroup's block: rows (sg / 2) * 32, columns (sg % 2) * 32
    let lane = li % 32u;
    let fm = (sg / 2u) * 32u;
    let fp = (sg % 2u) * 32u;
    let howo = p.ho * p.wo;
    let hw = p.h * p.w;

    // This invocation's B column (fixed for the whole loop); see load_step for what it stages.
    let b_count = BK * BN / threads;
    let jj = li % BN;
    let pc = p0 + jj;
    let pin = pc < p.npix;
    let pcc = min(pc, p.npix - 1u);
    let bq = pcc % howo;
    let iy0 = i32((bq / p.wo) * p.stride) - i32(p.pad);
    let ix0 = i32((bq % p.wo) * p.stride) - i32(p.pad);
    let xbase = (pcc / howo) * p.cin * hw;

    var ra: array<u32, A_WORDS>;
    var rb: array<f32, B_MAX>;
    // coop:acc-begin
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    // coop:acc-end

    var k0 = kbeg;
    load_step(k0, kend, li, m0, pin, iy0, ix0, xbase, &ra, &rb);

    loop {
        if (k0 >= kend) { break; }
        for (var i = 0u; i < A_WORDS; i++) {
            let e = li + threads * i;
            let kr = e / (bm / 2u);
            let mm = 2u * (e % (bm / 2u));
            let v = unpack2x16float(ra[i]);
            sa[kr * bm + mm] = f16(v.x);
            sa[kr * bm + mm + 1u] = f16(v.y);
        }
        for (var i = 0u; i < b_count; i++) {
            sb[(li / BN + (threads / BN) * i) * BN + jj] = f16(rb[i]);
        }
        workgroupBarrier();
        let k1 = k0 + BK;
        if (k1 < kend) { load_step(k1, kend, li, m0, pin, iy0, ix0, xbase, &ra, &rb); }
        // coop:mma-begin
        for (var kf = 0u; kf < BK; kf += 16u) {
            let a0 = coopLoad<coop_mat16x16<f16, A>>(&sa[kf * bm + fm], bm);
            let a1 = coopLoad<coop_mat16x16<f16, A>>(&sa[kf * bm + fm + 16u], bm);
            let b0 = coopLoadT<coop_mat16x16<f16, B>>(&sb[kf * BN + fp], BN);
            let b1 = coopLoadT<coop_mat16x16<f16, B>>(&sb[kf * BN + fp + 16u], BN);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
        }
        // coop:mma-end
        workgroupBarrier();
        k0 = k1;
    }

    // Epilogue, one fragment at a time through this subgroup's 16 x 16 staging area.
    let so = sg * 256u;
    for (var f = 0u; f < 4u; f++) {
        // coop:store-begin
        switch f {
            case 0u: { coopStoreT(c00, &stage[so], 16u); }
            case 1u: { coopStoreT(c01, &stage[so], 16u); }
            case 2u: { coopStoreT(c10, &stage[so], 16u); }
            default: { coopStoreT(c11, &stage[so], 16u); }
        }
        // coop:store-end
        workgroupBarrier();
        let mb = m0 + fm + (f / 2u) * 16u;
        let pb = p0 + fp + (f % 2u) * 16u;
        for (var e = lane; e < 256u; e += 32u) {
            let m = mb + e / 16u;
            let pp = pb + e % 16u;
            if (valid && m < p.cout && pp < p.npix) {
                let n = pp / howo;
                let q = pp % howo;
                let idx = (n * p.cout + m) * howo + q;
                if (p.splits == 1u) {
                    out[idx] = epilogue(n, m, idx, stage[so + e]);
                } else {
                    out[split * p.n * p.cout * howo + idx] = stage[so + e];
                }
            }
        }
        workgroupBarrier();
    }
}
