// Batched, strided matrix product for CPU adapters with subgroups of at least 8 lanes, A shared over the
// subgroup: out[b, i, j] = alpha * sum_k A[b, i, k] * B[b, k, j] (+ bias), with matmul.wgsl's parameters,
// views, bias modes and bindings (1 a, 2 b, 3 bias read; 4 out read_write).
// Workgroup g = (b * ceil(M / 8) + row block) * ceil(N / 256) + column block: its 64 threads share the same
// 8 rows of A and each computes those 8 rows x 4 adjacent columns. On lavapipe a load whose address is not a
// compile-time uniform runs once per lane, so instead of every lane loading the 8 A values per k (matmul_rb),
// lane l loads row l % 8 and subgroupBroadcast hands the 8 values out (an extract and a splat each in
// llvmpipe): per k a lane loads 4 B values and 1 A value for 32 FMAs (matmul_rb: 4 + 8). Lanes past the
// last column compute on clamped indices and do not store; subgroups with no column leave together, so every
// broadcast has its source lane.
// Where the layout allows, fewer and wider loads through vec4 views of A and B (bindings 5, 6):
//   VEC4_N: B's rows are contiguous (b_cs = 1), N % 4 == 0, all aligned: a lane's 4 B values are one vec4
//           (attention's scores product q^T k);
//   VEC4_K: A's rows and B's columns are contiguous along k, K % 4 == 0, all aligned: per 4 k a lane loads
//           one vec4 of A and one of each of its 4 B columns instead of 4 + 16 scalars (the values product
//           v P^T).
// (wgpu accepts subgroup builtins without `enable subgroups;` when the device has SUBGROUP.)

override VEC4_N: bool = false;
override VEC4_K: bool = false;

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
@group(0) @binding(5) var<storage, read> aq: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> bq: array<vec4<f32>>;

fn store(bt: u32, i: u32, j: u32, v: f32) {
    if (i >= p.m || j >= p.n) { return; }
    var r = p.alpha * v;
    if (p.bias_mode == 1u) { r += bias[i]; }
    if (p.bias_mode == 2u) { r += bias[j]; }
    out[(bt * p.m + i) * p.n + j] = r;
}

// A lane's 8 rows x 4 columns of sums (named fields, not an array indexed in a loop).
struct Rows8 { r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>, r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32> }

// s + (A column, from lane r's value `av` of row r) x (B row `bv` of this lane's 4 columns).
fn rank1(s: Rows8, av: f32, bv: vec4<f32>) -> Rows8 {
    var o = s;
    o.r0 += subgroupBroadcast(av, 0u) * bv;
    o.r1 += subgroupBroadcast(av, 1u) * bv;
    o.r2 += subgroupBroadcast(av, 2u) * bv;
    o.r3 += subgroupBroadcast(av, 3u) * bv;
    o.r4 += subgroupBroadcast(av, 4u) * bv;
    o.r5 += subgroupBroadcast(av, 5u) * bv;
    o.r6 += subgroupBroadcast(av, 6u) * bv;
    o.r7 += subgroupBroadcast(av, 7u) * bv;
    return o;
}

@compute @workgroup_size(64)
fn matmul_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32) {
    let g = wid.x + wid.y * nwg.x;
    let tm = (p.m + 7u) / 8u;
    let tn = (p.n + 255u) / 256u;
    if (g >= tm * tn * p.batch) { return; }
    let bt = g / (tm * tn);
    let tile = g % (tm * tn);
    let i0 = (tile / tn) * 8u;
    let j0 = (tile % tn) * 256u + li * 4u;
    // Subgroups with no column leave (the whole subgroup at once, so broadcasts keep their sources).
    if (!subgroupAny(j0 < p.n)) { return; }
    let ab = p.a_off + (bt / p.a_inner) * p.a_bs_hi + (bt % p.a_inner) * p.a_bs_lo;
    let bb = p.b_off + (bt / p.b_inner) * p.b_bs_hi + (bt % p.b_inner) * p.b_bs_lo;
    // This lane's A row; clamped row and column indices keep loads in bounds.
    let ar = ab + min(i0 + sl % 8u, p.m - 1u) * p.a_rs;
    let c0 = bb + min(j0, p.n - 1u) * p.b_cs;
    let c1 = bb + min(j0 + 1u, p.n - 1u) * p.b_cs;
    let c2 = bb + min(j0 + 2u, p.n - 1u) * p.b_cs;
    let c3 = bb + min(j0 + 3u, p.n - 1u) * p.b_cs;
    var acc = Rows8(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0),
                    vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    if (VEC4_K) {
        for (var kk = 0u; kk < p.k; kk += 4u) {
            let av = aq[(ar + kk) / 4u];
            let q0 = bq[(c0 + kk) / 4u];
            let q1 = bq[(c1 + kk) / 4u];
            let q2 = bq[(c2 + kk) / 4u];
            let q3 = bq[(c3 + kk) / 4u];
            for (var e = 0u; e < 4u; e++) {
                acc = rank1(acc, av[e], vec4<f32>(q0[e], q1[e], q2[e], q3[e]));
            }
        }
    } else {
        // VEC4_N: lanes past the last column read the last aligned vec4 (N % 4 == 0) and do not store.
        let cq = (bb + min(j0, p.n - 4u)) / 4u;
        for (var kk = 0u; kk < p.k; kk++) {
            let ko = kk * p.b_rs;
            var bv: vec4<f32>;
            if (VEC4_N) {
                bv = bq[cq + ko / 4u];
            } else {
                bv = vec4<f32>(b[c0 + ko], b[c1 + ko], b[c2 + ko], b[c3 + ko]);
            }
            acc = rank1(acc, a[ar + kk * p.a_cs], bv);
        }
    }
    let rows = array<vec4<f32>, 8>(acc.r0, acc.r1, acc.r2, acc.r3, acc.r4, acc.r5, acc.r6, acc.r7);
    for (var r = 0u; r < 8u; r++) {
        for (var c = 0u; c < 4u; c++) { store(bt, i0 + r, j0 + c, rows[r][c]); }
    }
}
