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
