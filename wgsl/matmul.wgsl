// Batched, strided matrix product: out[b, i, j] = alpha * sum_k A[b, i, k] * B[b, k, j] (+ bias).
// A element (b, i, k) lives at a_off + (b / a_inner) * a_bs_hi + (b % a_inner) * a_bs_lo + i * a_rs + k * a_cs,
// B likewise; transposes and head-interleaved attention layouts are just strides. out is contiguous
// [batch, M, N]. bias_mode: 0 none, 1 bias[i] (per row), 2 bias[j] (per column).
// Two variants, same bindings (1 a, 2 b, 3 bias read; 4 out read_write):
//   matmul_rb:    register-blocked, 8 rows x 4 columns per thread, no workgroup memory (CPU adapters);
//   matmul_tiled: 64x64 tiles through workgroup memory, 4x4 per thread (GPUs).

struct P {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_inner: u32,
    a_off: u32,
    a_bs_hi: u32,
    a_bs_lo: u32,
    a_rs: u32,
    a_cs: u32,
    b_inner: u32,
    b_off: u32,
    b_bs_hi: u32,
    b_bs_lo: u32,
    b_rs: u32,
    b_cs: u32,
    bias_mode: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
// matmul_rows only: A and B again, four floats per element (VEC4_K).
@group(0) @binding(5) var<storage, read> aq: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> bq: array<vec4<f32>>;

// matmul_rows: the number of rows (M, 1..8), fixed per pipeline so the row loops unroll; VEC4_K: A's rows
// and B's columns are contiguous along k, k % 4 == 0 and every offset and stride is a multiple of 4, so
// each lane reads four k at once.
override M_ROWS: u32 = 8u;
override VEC4_K: bool = false;

fn a_base(bt: u32) -> u32 { return p.a_off + (bt / p.a_inner) * p.a_bs_hi + (bt % p.a_inner) * p.a_bs_lo; }
fn b_base(bt: u32) -> u32 { return p.b_off + (bt / p.b_inner) * p.b_bs_hi + (bt % p.b_inner) * p.b_bs_lo; }

fn store(bt: u32, i: u32, j: u32, v: f32) {
    if (i >= p.m || j >= p.n) { return; }
    var r = p.alpha * v;
    if (p.bias_mode == 1u) { r += bias[i]; }
    if (p.bias_mode == 2u) { r += bias[j]; }
    out[(bt * p.m + i) * p.n + j] = r;
}

// Workgroup 8x8 threads covers 64 rows x 32 columns.
@compute @workgroup_size(64)
fn matmul_rb(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let g = wid.x + wid.y * nwg.x;
    let tm = (p.m + 63u) / 64u;
    let tn = (p.n + 31u) / 32u;
    if (g >= tm * tn * p.batch) { return; }
    let bt = g / (tm * tn);
    let tile = g % (tm * tn);
    let i0 = (tile / tn) * 64u + (li / 8u) * 8u;
    let j0 = (tile % tn) * 32u + (li % 8u) * 4u;
    let ab = a_base(bt);
    let bb = b_base(bt);
    // Clamped row/column indices keep loads in bounds; out-of-range results are never stored. Rows and
    // accumulators are plain variables, not arrays indexed in the loop: SwiftShader keeps such arrays in
    // memory and gathers every access lane by lane.
    let r0 = ab + min(i0, p.m - 1u) * p.a_rs;
    let r1 = ab + min(i0 + 1u, p.m - 1u) * p.a_rs;
    let r2 = ab + min(i0 + 2u, p.m - 1u) * p.a_rs;
    let r3 = ab + min(i0 + 3u, p.m - 1u) * p.a_rs;
    let r4 = ab + min(i0 + 4u, p.m - 1u) * p.a_rs;
    let r5 = ab + min(i0 + 5u, p.m - 1u) * p.a_rs;
    let r6 = ab + min(i0 + 6u, p.m - 1u) * p.a_rs;
    let r7 = ab + min(i0 + 7u, p.m - 1u) * p.a_rs;
    let c0 = bb + min(j0, p.n - 1u) * p.b_cs;
    let c1 = bb + min(j0 + 1u, p.n - 1u) * p.b_cs;
    let c2 = bb + min(j0 + 2u, p.n - 1u) * p.b_cs;
    let c3 = bb + min(j0 + 3u, p.n - 1u) * p.b_cs;
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.k; kk++) {
        let ko = kk * p.b_rs;
        let bv = vec4<f32>(b[c0 + ko], b[c1 + ko], b[c2 + ko], b[c3 + ko]);
        let ka = kk * p.a_cs;
        a0 += a[r0 + ka] * bv; a1 += a[r1 + ka] * bv; a2 += a[r2 + ka] * bv; a3 += a[r3 + ka] * bv;
        a4 += a[r4 + ka] * bv; a5 += a[r5 + ka] * bv; a6 += a[r6 + ka] * bv; a7 += a[r7 + ka] * bv;
    }
    let acc = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    for (var r = 0u; r < 8u; r++) {
        for (var c = 0u; c < 4u; c++) { store(bt, i0 + r, j0 + c, acc[r][c]); }
    }
}

const TILE: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> as_: array<f32, 1024>;   // [TK][TILE], k-major
var<workgroup> bs_: array<f32, 1024>;   // [TK][TILE]

// Workgroup 16x16 threads covers a 64x64 output tile, 4x4 per thread.
@compute @workgroup_size(256)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let g = wid.x + wid.y * nwg.x;
    let tm = (p.m + TILE - 1u) / TILE;
    let tn = (p.n + TILE - 1u) / TILE;
    // Every thread of a workgroup takes the same branch here, so barriers below stay uniform.
    let valid = g < tm * tn * p.batch;
    let gg = select(0u, g, valid);
    let bt = gg / (tm * tn);
    let tile = gg % (tm * tn);
    let ti = (tile / tn) * TILE;
    let tj = (tile % tn) * TILE;
    let ab = a_base(bt);
    let bb = b_base(bt);
    let ty = li / 16u;
    let tx = li % 16u;
    var acc: array<vec4<f32>, 4>;
    for (var r = 0u; r < 4u; r++) { acc[r] = vec4<f32>(0.0); }
    let ktiles = (p.k + TK - 1u) / TK;
    for (var kt = 0u; kt < ktiles; kt++) {
        let k0 = kt * TK;
        for (var e = li; e < TK * TILE; e += 256u) {
            let kk = e / TILE;
            let rr = e % TILE;
            let gk = k0 + kk;
            var av = 0.0;
            var bv = 0.0;
            if (gk < p.k && ti + rr < p.m) { av = a[ab + (ti + rr) * p.a_rs + gk * p.a_cs]; }
            if (gk < p.k && tj + rr < p.n) { bv = b[bb + gk * p.b_rs + (tj + rr) * p.b_cs]; }
            as_[e] = av;
            bs_[e] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let bv = vec4<f32>(bs_[kk * TILE + tx * 4u], bs_[kk * TILE + tx * 4u + 1u],
                               bs_[kk * TILE + tx * 4u + 2u], bs_[kk * TILE + tx * 4u + 3u]);
            for (var r = 0u; r < 4u; r++) { acc[r] += as_[kk * TILE + ty * 4u + r] * bv; }
        }
        workgroupBarrier();
    }
    if (!valid) { return; }
    for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) { store(bt, ti + ty * 4u + r, tj + tx * 4u + c, acc[r][c]); }
    }
}

// Few rows (M <= 8: linear layers on a handful of vectors, e.g. time embeddings). One invocation per output
// column j of one batch element computes all M rows; A's loads are shared by neighbouring invocations.
// Bindings 5 and 6 (vec4 views of A and B) are read with VEC4_K.
@compute @workgroup_size(64)
fn matmul_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let g = (wid.x + wid.y * nwg.x) * 64u + li;
    if (g >= p.n * p.batch) { return; }
    let bt = g / p.n;
    let j = g % p.n;
    let ab = a_base(bt);
    let bc = b_base(bt) + j * p.b_cs;
    var acc: array<f32, 8>;
    if (VEC4_K) {
        var acc4: array<vec4<f32>, 8>;
        for (var r = 0u; r < M_ROWS; r++) { acc4[r] = vec4<f32>(0.0); }
        for (var kk = 0u; kk < p.k; kk += 4u) {
            let bv = bq[(bc + kk) / 4u];
            for (var r = 0u; r < M_ROWS; r++) { acc4[r] += aq[(ab + r * p.a_rs + kk) / 4u] * bv; }
        }
        for (var r = 0u; r < M_ROWS; r++) { acc[r] = (acc4[r].x + acc4[r].y) + (acc4[r].z + acc4[r].w); }
    } else {
        for (var r = 0u; r < M_ROWS; r++) { acc[r] = 0.0; }
        for (var kk = 0u; kk < p.k; kk++) {
            let bv = b[bc + kk * p.b_rs];
            let ka = ab + kk * p.a_cs;
            for (var r = 0u; r < M_ROWS; r++) { acc[r] += a[ka + r * p.a_rs] * bv; }
        }
    }
    for (var r = 0u; r < M_ROWS; r++) { store(bt, r, j, acc[r]); }
}
