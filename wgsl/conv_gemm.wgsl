// Implicit-GEMM 2-D convolution for GPUs, NCHW, any kernel size (KS), stride and padding:
//   out[m][p] = sum_k A[k][m] * B[k][p],  m = output channel, p = (n, oy, ox), k = (c * KS + ky) * KS + kx,
//   B[k][p] = x[n][c][oy * stride - pad + ky][ox * stride - pad + kx] (0 outside the image), gathered on the fly.
// A is packed by conv_pack.wgsl (rows of Mp entries, f32 bit patterns or f16 pairs when WF16).
// A workgroup of 256 threads (16 x 16) computes a BM x BN = (16 TM) x (16 TN) output tile, staging BK = 16
// rows of A and B per step in workgroup memory; thread (ty, tx) owns channels m0 + ty + 16 i (i < TM) and
// pixels p0 + tx + 16 j (j < TN), so stores of neighbouring threads are contiguous. TM, TN in {1, 2, 4, 8}.
// Epilogue as conv3x3.wgsl: v = acc + bias[m] + add[n * add_stride + add_off + m]; out = alpha * v + beta * res.
// Bindings: 1 x, 2 w (words), 3 bias, 4 add, 5 res (read), 6 out (read_write).

override KS: u32 = 3u;
override TM: u32 = 4u;
override TN: u32 = 4u;
override WF16: bool = false;

const BK: u32 = 16u;
const MAXT: u32 = 8u;

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
    tiles: u32,     // tiles_m * ceil(npix / BN)
    flags: u32,
    add_off: u32,
    add_stride: u32,
    alpha: f32,
    beta: f32,
    kchunk: u32,    // conv_gemm4: k per split, a multiple of BK (kt when splits = 1); conv_gemm: unused
    splits: u32,    // conv_gemm4: slices of k (tiles = tiles_m * ceil(npix / BN) * splits); conv_gemm: 1
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> addv: array<f32>;
@group(0) @binding(5) var<storage, read> res: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> sa: array<f32, 2048>;   // [BK][BM], BM <= 128
var<workgroup> sb: array<f32, 2048>;   // [BK][BN], BN <= 128

fn weight(k: u32, m: u32) -> f32 {
    let i = k * p.mp + m;
    if (WF16) {
        let pair = unpack2x16float(wt[i / 2u]);
        return select(pair.x, pair.y, (i & 1u) == 1u);
    }
    return bitcast<f32>(wt[i]);
}

fn epilogue(n: u32, m: u32, idx: u32, acc: f32) -> f32 {
    var v = acc;
    if ((p.flags & 1u) != 0u) { v += bias[m]; }
    if ((p.flags & 2u) != 0u) { v += addv[n * p.add_stride + p.add_off + m]; }
    v *= p.alpha;
    if ((p.flags & 4u) != 0u) { v += p.beta * res[idx]; }
    return v;
}

@compute @workgroup_size(256)
fn conv_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let bm = 16u * TM;
    let bn = 16u * TN;
    let g = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: every thread takes the same branch, so the barriers below stay uniform.
    let valid = g < p.tiles;
    let gg = select(0u, g, valid);
    let m0 = (gg % p.tiles_m) * bm;
    let p0 = (gg / p.tiles_m) * bn;
    let ty = li / 16u;
    let tx = li % 16u;
    let kk2 = KS * KS;
    let howo = p.ho * p.wo;
    let hw = p.h * p.w;

    // The B column this thread stages (fixed for the whole loop since BN divides 256).
    let jj = li % bn;
    let pc = p0 + jj;
    let pin = pc < p.npix;
    let pcc = min(pc, p.npix - 1u);
    let bn_img = pcc / howo;
    let bq = pcc % howo;
    let iy0 = i32((bq / p.wo) * p.stride) - i32(p.pad);
    let ix0 = i32((bq % p.wo) * p.stride) - i32(p.pad);
    let xbase = bn_img * p.cin * hw;

    var acc: array<f32, 64>;
    for (var i = 0u; i < TM * TN; i++) { acc[i] = 0.0; }

    for (var k0 = 0u; k0 < p.kt; k0 += BK) {
        // Stage A: BK x BM weights, contiguous along m.
        for (var e = li; e < BK * bm; e += 256u) {
            let kr = e / bm;
            let mm = e % bm;
            let k = k0 + kr;
            var v = 0.0;
            if (k < p.kt && m0 + mm < p.mp) { v = weight(k, m0 + mm); }
            sa[kr * bm + mm] = v;
        }
        // Stage B: BK x BN gathered inputs; this thread's rows are li / BN + r * (256 / BN).
        for (var kr = li / bn; kr < BK; kr += 256u / bn) {
            let k = k0 + kr;
            var v = 0.0;
            if (k < p.kt && pin) {
                let c = k / kk2;
                let t = k % kk2;
                let iy = iy0 + i32(t / KS);
                let ix = ix0 + i32(t % KS);
                if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
                    v = x[xbase + c * hw + u32(iy) * p.w + u32(ix)];
                }
            }
            sb[kr * bn + jj] = v;
        }
        workgroupBarrier();
        for (var kr = 0u; kr < BK; kr++) {
            var av: array<f32, MAXT>;
            var bv: array<f32, MAXT>;
            for (var i = 0u; i < TM; i++) { av[i] = sa[kr * bm + ty + 16u * i]; }
            for (var j = 0u; j < TN; j++) { bv[j] = sb[kr * bn + tx + 16u * j]; }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(av[i], bv[j], acc[i * TN + j]); }
            }
        }
        workgroupBarrier();
    }
    if (!valid) { return; }
    for (var j = 0u; j < TN; j++) {
        let pp = p0 + tx + 16u * j;
        if (pp >= p.npix) { break; }
        let n = pp / howo;
        let q = pp % howo;
        for (var i = 0u; i < TM; i++) {
            let m = m0 + ty + 16u * i;
            if (m < p.cout) {
                let idx = (n * p.cout + m) * howo + q;
                out[idx] = epilogue(n, m, idx, acc[i * TN + j]);
            }
        }
    }
}

// conv_gemm4: the same product with vec4 register tiles, for TM, TN in {4, 8}. Thread (ty, tx) owns channels
// m0 + 4 ty + 64 iv + r (iv < TM / 4, r < 4) and pixels p0 + 4 tx + 64 jv + c (jv < TN / 4, c < 4), so per
// k it reads TM / 4 + TN / 4 vec4s of workgroup memory (conv_gemm: TM + TN floats) for TM * TN sums, and
// neighbouring threads read neighbouring vec4s. The sums are up to four named blocks of 4 channels x 4
// pixels (structs passed by value, no array indexed by a loop counter), so a shader compiler keeps them in
// registers whether or not it unrolls loops; conv_gemm indexes its sums through loop counters. A thread
// stages whole vec4s: 4 channels of one weight row (BM / 4 x BK of them) and 4 pixels of one row of B.
// Split-K as conv_coop.wgsl (for layers with few output tiles): with splits > 1 the workgroups of split s sum
// k in [s kchunk, (s + 1) kchunk) and store raw sums to out[s * total + idx] (a scratch tensor), and
// conv_splitk.wgsl adds them and applies the epilogue.

var<workgroup> sa4: array<vec4<f32>, 512>;   // [BK][BM / 4]
var<workgroup> sb4: array<vec4<f32>, 512>;   // [BK][BN / 4]

// 4 output channels (r0 .. r3) x 4 pixels (the vec4 lanes).
struct Blk { r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32> }

// s + a (channels) outer b (pixels).
fn mac(s: Blk, a: vec4<f32>, b: vec4<f32>) -> Blk {
    return Blk(fma(vec4<f32>(a.x), b, s.r0), fma(vec4<f32>(a.y), b, s.r1), fma(vec4<f32>(a.z), b, s.r2), fma(vec4<f32>(a.w), b, s.r3));
}

// Stores a block: channels m_first .. + 3, pixels p_first .. + 3 (those inside the output); with split-K the
// raw sums of split `split`.
fn store_block(s: Blk, m_first: u32, p_first: u32, split: u32) {
    let howo = p.ho * p.wo;
    let rows = array<vec4<f32>, 4>(s.r0, s.r1, s.r2, s.r3);
    for (var c = 0u; c < 4u; c++) {
        let pp = p_first + c;
        if (pp >= p.npix) { break; }
        let n = pp / howo;
        let q = pp % howo;
        for (var r = 0u; r < 4u; r++) {
            let m = m_first + r;
            if (m < p.cout) {
                let idx = (n * p.cout + m) * howo + q;
                if (p.splits == 1u) {
                    out[idx] = epilogue(n, m, idx, rows[r][c]);
                } else {
                    out[split * p.n * p.cout * howo + idx] = rows[r][c];
                }
            }
        }
    }
}

@compute @workgroup_size(256)
fn conv_gemm4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let bm4 = 4u * TM;   // vec4s per row of A in a tile
    let bn4 = 4u * TN;
    let g = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: every thread takes the same branch, so the barriers below stay uniform.
    let valid = g < p.tiles;
    let per_split = p.tiles / p.splits;
    let split = select(0u, g, valid) / per_split;
    let gg = select(0u, g, valid) % per_split;
    let m0 = (gg % p.tiles_m) * 16u * TM;
    let p0 = (gg / p.tiles_m) * 16u * TN;
    let kbeg = split * p.kchunk;
    let kend = min(p.kt, kbeg + p.kchunk);
    let ty = li / 16u;
    let tx = li % 16u;
    let kk2 = KS * KS;
    let howo = p.ho * p.wo;
    let hw = p.h * p.w;

    // The 4 pixels of B this thread stages (fixed for the whole loop since BN / 4 divides 256): their first
    // input row and column, image offset, and whether they exist.
    let j4 = li % bn4;
    var iy0 = vec4<i32>(0);
    var ix0 = vec4<i32>(0);
    var xb = vec4<u32>(0u);
    var pin = vec4<bool>(false);
    for (var c = 0u; c < 4u; c++) {
        let pc = p0 + 4u * j4 + c;
        pin[c] = pc < p.npix;
        let pcc = min(pc, p.npix - 1u);
        let q = pcc % howo;
        iy0[c] = i32((q / p.wo) * p.stride) - i32(p.pad);
        ix0[c] = i32((q % p.wo) * p.stride) - i32(p.pad);
        xb[c] = (pcc / howo) * p.cin * hw;
    }
    // The 4 channels of A this thread stages.
    let i4 = li % bm4;
    let ma = m0 + 4u * i4;

    let z = vec4<f32>(0.0);
    var s00 = Blk(z, z, z, z);   // channel block 0 x pixel block 0
    var s01 = s00;               // channel block 0 x pixel block 1 (TN = 8)
    var s10 = s00;               // channel block 1 (TM = 8) x pixel block 0
    var s11 = s00;
    for (var k0 = kbeg; k0 < kend; k0 += BK) {
        for (var kr = li / bm4; kr < BK; kr += 256u / bm4) {
            let k = k0 + kr;
            var v = z;
            // Mp is a multiple of 8, so a vec4 of channels is inside it whole or not at all.
            if (k < kend && ma < p.mp) {
                v = vec4<f32>(weight(k, ma), weight(k, ma + 1u), weight(k, ma + 2u), weight(k, ma + 3u));
            }
            sa4[kr * bm4 + i4] = v;
        }
        for (var kr = li / bn4; kr < BK; kr += 256u / bn4) {
            let k = k0 + kr;
            var v = z;
            if (k < kend) {
                let ch = k / kk2;
                let t = k % kk2;
                let iy = iy0 + vec4<i32>(i32(t / KS));
                let ix = ix0 + vec4<i32>(i32(t % KS));
                let ok = pin & (iy >= vec4<i32>(0)) & (iy < vec4<i32>(i32(p.h))) & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(p.w)));
                for (var c = 0u; c < 4u; c++) {
                    if (ok[c]) { v[c] = x[xb[c] + ch * hw + u32(iy[c]) * p.w + u32(ix[c])]; }
                }
            }
            sb4[kr * bn4 + j4] = v;
        }
        workgroupBarrier();
        for (var kr = 0u; kr < BK; kr++) {
            let a0 = sa4[kr * bm4 + ty];
            let b0 = sb4[kr * bn4 + tx];
            s00 = mac(s00, a0, b0);
            if (TN == 8u) {
                let b1 = sb4[kr * bn4 + tx + 16u];
                s01 = mac(s01, a0, b1);
                if (TM == 8u) {
                    let a1 = sa4[kr * bm4 + ty + 16u];
                    s10 = mac(s10, a1, b0);
                    s11 = mac(s11, a1, b1);
                }
            } else if (TM == 8u) {
                s10 = mac(s10, sa4[kr * bm4 + ty + 16u], b0);
            }
        }
        workgroupBarrier();
    }
    if (!valid) { return; }
    store_block(s00, m0 + 4u * ty, p0 + 4u * tx, split);
    if (TN == 8u) { store_block(s01, m0 + 4u * ty, p0 + 4u * tx + 64u, split); }
    if (TM == 8u) { store_block(s10, m0 + 4u * ty + 64u, p0 + 4u * tx, split); }
    if (TM == 8u && TN == 8u) { store_block(s11, m0 + 4u * ty + 64u, p0 + 4u * tx + 64u, split); }
}
