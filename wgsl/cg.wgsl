// Conjugate gradients on a batch of independent systems, one per image, with every scalar kept on the GPU
// (no readback per iteration). Vectors are [N, M] (M = elements per image); scalars are [N].
//   dot_rows:     out[n] = sum_i a[n, i] * b[n, i]        (one 256-thread workgroup per image)
//   cg_step:      alpha = rr[n] / pAp[n] (0 when pAp <= 0); x += alpha p; r -= alpha Ap
//   cg_direction: beta = rr_new[n] / rr_old[n] (0 when rr_old <= 0); p = r + beta p, or p = 0 once
//                 rr_new <= TOL² rr_0 (converged to f32 round-off: then alpha = 0 and x stays put, since
//                 further steps at that level only amplify rounding — alpha = rr / pAp of two round-off
//                 values — and can throw x far off)

struct P {
    n: u32,   // elements (all images)
    m: u32,   // elements per image
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> s1: array<f32>;
@group(0) @binding(4) var<storage, read> s2: array<f32>;
@group(0) @binding(5) var<storage, read_write> u: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;

var<workgroup> acc: array<f32, 256>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + li;
}

// a, b: vectors; u: out [N]. Workgroup n reduces image n.
@compute @workgroup_size(256)
fn dot_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let img = wid.x + wid.y * nwg.x;
    var s = 0.0;
    for (var i = li; i < p.m; i += 256u) {
        let k = img * p.m + i;
        s += a[k] * b[k];
    }
    acc[li] = s;
    workgroupBarrier();
    for (var off = 128u; off > 0u; off >>= 1u) {
        if (li < off) { acc[li] += acc[li + off]; }
        workgroupBarrier();
    }
    if (li == 0u) { u[img] = acc[0]; }
}

// a = p, b = Ap, s1 = rr, s2 = pAp; u = x, v = r (updated in place).
@compute @workgroup_size(256)
fn cg_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let img = i / p.m;
    let alpha = select(0.0, s1[img] / s2[img], s2[img] > 0.0);
    u[i] += alpha * a[i];
    v[i] -= alpha * b[i];
}

const TOL2: f32 = 1e-12; // relative residual 1e-6

// a = r, b = rr_0 ([N]), s1 = rr_new, s2 = rr_old; u = p (updated in place). v is not read or written.
@compute @workgroup_size(256)
fn cg_direction(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let img = i / p.m;
    let beta = select(0.0, s1[img] / s2[img], s2[img] > 0.0);
    u[i] = select(a[i] + beta * u[i], 0.0, s1[img] <= TOL2 * b[img]);
}
