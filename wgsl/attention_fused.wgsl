// Fused self-attention, never storing the T x T scores (online softmax, Milakov & Gimelshein 2018):
// out[bh, c, t] = sum_s softmax_s(scale * q(bh, :, t) . k(bh, :, s)) v(bh, c, s), out contiguous [BH, CH, T].
// q, k, v live in one or more tensors addressed by MatView-style strides (see ops::attention): element
// (bh, c, t) of view X is at X.off + (bh / X.inner) * X.hi + (bh % X.inner) * X.lo + c * X.row + t * X.col.
// CH (channels per head, <= 64) is an override so the per-query arrays stay in registers.
//   attn_rows:  one invocation per (bh, query); keys read straight from memory (the same address in every
//               lane of a subgroup: CPU adapters broadcast them cheaply).
//   attn_tiled: 64 queries per workgroup, keys and values staged 32 at a time in workgroup memory (GPUs).
// Bindings: 1 q, 2 k, 3 v (read), 4 out (read_write).

override CH: u32 = 32u;

struct A {
    bh: u32,
    t: u32,
    scale: f32,
    pad: u32,
    q_off: u32, q_inner: u32, q_hi: u32, q_lo: u32, q_row: u32, q_col: u32,
    k_off: u32, k_inner: u32, k_hi: u32, k_lo: u32, k_row: u32, k_col: u32,
    v_off: u32, v_inner: u32, v_hi: u32, v_lo: u32, v_row: u32, v_col: u32,
}

@group(0) @binding(0) var<uniform> pa: A;
@group(0) @binding(1) var<storage, read> qb: array<f32>;
@group(0) @binding(2) var<storage, read> kb: array<f32>;
@group(0) @binding(3) var<storage, read> vb: array<f32>;
@group(0) @binding(4) var<storage, read_write> ob: array<f32>;

fn qbase(bh: u32) -> u32 { return pa.q_off + (bh / pa.q_inner) * pa.q_hi + (bh % pa.q_inner) * pa.q_lo; }
fn kbase(bh: u32) -> u32 { return pa.k_off + (bh / pa.k_inner) * pa.k_hi + (bh % pa.k_inner) * pa.k_lo; }
fn vbase(bh: u32) -> u32 { return pa.v_off + (bh / pa.v_inner) * pa.v_hi + (bh % pa.v_inner) * pa.v_lo; }

@compute @workgroup_size(64)
fn attn_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let g = (wid.x + wid.y * nwg.x) * 64u + li;
    if (g >= pa.bh * pa.t) { return; }
    let bh = g / pa.t;
    let t = g % pa.t;
    let qo = qbase(bh) + t * pa.q_col;
    let ko = kbase(bh);
    let vo = vbase(bh);
    var q: array<f32, 64>;
    var acc: array<f32, 64>;
    for (var c = 0u; c < CH; c++) {
        q[c] = qb[qo + c * pa.q_row] * pa.scale;
        acc[c] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var s = 0u; s < pa.t; s++) {
        let kso = ko + s * pa.k_col;
        var sc = 0.0;
        for (var c = 0u; c < CH; c++) { sc += q[c] * kb[kso + c * pa.k_row]; }
        let mn = max(m, sc);
        let corr = exp(m - mn);
        let pw = exp(sc - mn);
        l = l * corr + pw;
        m = mn;
        let vso = vo + s * pa.v_col;
        for (var c = 0u; c < CH; c++) { acc[c] = acc[c] * corr + pw * vb[vso + c * pa.v_row]; }
    }
    let inv = 1.0 / l;
    for (var c = 0u; c < CH; c++) { ob[(bh * CH + c) * pa.t + t] = acc[c] * inv; }
}

var<workgroup> ks: array<f32, 2048>;   // [32 keys][CH]
var<workgroup> vs: array<f32, 2048>;

@compute @workgroup_size(64)
fn attn_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let qblocks = (pa.t + 63u) / 64u;
    let g = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below are reached by every thread or none.
    if (g >= pa.bh * qblocks) { return; }
    let bh = g / qblocks;
    let t = (g % qblocks) * 64u + li;
    let live = t < pa.t;
    let tc = min(t, pa.t - 1u);
    let qo = qbase(bh) + tc * pa.q_col;
    let ko = kbase(bh);
    let vo = vbase(bh);
    var q: array<f32, 64>;
    var acc: array<f32, 64>;
    for (var c = 0u; c < CH; c++) {
        q[c] = qb[qo + c * pa.q_row] * pa.scale;
        acc[c] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var s0 = 0u; s0 < pa.t; s0 += 32u) {
        for (var e = li; e < 32u * CH; e += 64u) {
            let sj = e / CH;
            let c = e % CH;
            let s = min(s0 + sj, pa.t - 1u);
            ks[sj * CH + c] = kb[ko + s * pa.k_col + c * pa.k_row];
            vs[sj * CH + c] = vb[vo + s * pa.v_col + c * pa.v_row];
        }
        workgroupBarrier();
        let kn = min(32u, pa.t - s0);
        for (var sj = 0u; sj < kn; sj++) {
            var sc = 0.0;
            for (var c = 0u; c < CH; c++) { sc += q[c] * ks[sj * CH + c]; }
            let mn = max(m, sc);
            let corr = exp(m - mn);
            let pw = exp(sc - mn);
            l = l * corr + pw;
            m = mn;
            for (var c = 0u; c < CH; c++) { acc[c] = acc[c] * corr + pw * vs[sj * CH + c]; }
        }
        workgroupBarrier();
    }
    if (!live) { return; }
    let inv = 1.0 / l;
    for (var c = 0u; c < CH; c++) { ob[(bh * CH + c) * pa.t + t] = acc[c] * inv; }
}
