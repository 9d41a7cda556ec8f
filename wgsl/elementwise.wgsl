// Element-wise kernels over flat f32 arrays, plus channel broadcast, concat and channel slicing.
// Bindings (all entry points): 1 a (read), 2 b (read), 3 out (read_write); concat3_channels also 4 c (read).
// Unused inputs are bound to a dummy.
// Grid: 1-D, 256 threads per workgroup, folded to 2-D; each thread handles RUN elements (see `first`, and
// `run_start` in runs.wgsl, which src/shaders.rs prepends).

struct P {
    n: u32,       // elements of out
    alpha: f32,
    beta: f32,
    lo: f32,
    hi: f32,
    inner: u32,   // broadcast: b index = (i / inner) % bmod; concat/slice: spatial size S
    bmod: u32,    // broadcast modulus; concat: channels of a; slice: channels of a
    c1: u32,      // concat: channels of b; slice: first channel
    c2: u32,      // slice: channels taken
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// The third input of concat3_channels only (the other entries leave it out of their layouts).
@group(0) @binding(4) var<storage, read> c: array<f32>;

// Elements per invocation: workgroup g covers elements [256 * RUN * g, 256 * RUN * (g + 1)), invocation li
// the ones at li + 256 * j (adjacent invocations touch adjacent elements). RUN = 16 on CPU adapters, where
// every invocation and workgroup has a fixed cost (a copy of 64k floats: 0.9 -> 0.2 ms on lavapipe).
override RUN: u32 = 1u;

fn first(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u * RUN + li;
}

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        out[i] = a[i] + b[i];
    }
}

@compute @workgroup_size(256)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        out[i] = a[i] * b[i];
    }
}

// out = alpha * a + beta * b
@compute @workgroup_size(256)
fn axpby(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        out[i] = p.alpha * a[i] + p.beta * b[i];
    }
}

// out = alpha * a + beta
@compute @workgroup_size(256)
fn affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        out[i] = p.alpha * a[i] + p.beta;
    }
}

@compute @workgroup_size(256)
fn clamp_(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        out[i] = clamp(a[i], p.lo, p.hi);
    }
}

@compute @workgroup_size(256)
fn silu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        let x = a[i];
        out[i] = x / (1.0 + exp(-x));
    }
}

// out = a + b[(i / inner) % bmod]   (e.g. a [N,C,H,W] plus a per-channel b [N,C]: inner = H*W, bmod = N*C)
@compute @workgroup_size(256)
fn add_bcast(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i0 = run_start(wid, nwg, li);
    if (i0 >= p.n) { return; }
    var o = coords(i0, p.inner, p.bmod);
    for (var i = i0; i < min(i0 + RUN, p.n); i++) {
        out[i] = a[i] + b[o.y];
        o = next(o, p.inner, p.bmod);
    }
}

// out = a * b[(i / inner) % bmod]
@compute @workgroup_size(256)
fn mul_bcast(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i0 = run_start(wid, nwg, li);
    if (i0 >= p.n) { return; }
    var o = coords(i0, p.inner, p.bmod);
    for (var i = i0; i < min(i0 + RUN, p.n); i++) {
        out[i] = a[i] * b[o.y];
        o = next(o, p.inner, p.bmod);
    }
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        out[i] = p.alpha;
    }
}

// out [N, Ca+Cb, S] = cat(a [N, Ca, S], b [N, Cb, S]) along channels. inner = S, bmod = Ca, c1 = Cb.
@compute @workgroup_size(256)
fn concat_channels(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) li: u32) {
    let i0 = run_start(wid, nwg, li);
    if (i0 >= p.n) { return; }
    let ct = p.bmod + p.c1;
    var o = coords(i0, p.inner, ct);
    for (var i = i0; i < min(i0 + RUN, p.n); i++) {
        if (o.y < p.bmod) {
            out[i] = a[(o.z * p.bmod + o.y) * p.inner + o.x];
        } else {
            out[i] = b[(o.z * p.c1 + (o.y - p.bmod)) * p.inner + o.x];
        }
        o = next(o, p.inner, ct);
    }
}

// out [N, Ca+Cb+Cc, S] = cat(a [N, Ca, S], b [N, Cb, S], c [N, Cc, S]) along channels. inner = S, bmod = Ca,
// c1 = Cb, c2 = Cc.
@compute @workgroup_size(256)
fn concat3_channels(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let i0 = run_start(wid, nwg, li);
    if (i0 >= p.n) { return; }
    let ab = p.bmod + p.c1;
    let ct = ab + p.c2;
    var o = coords(i0, p.inner, ct);
    for (var i = i0; i < min(i0 + RUN, p.n); i++) {
        if (o.y < p.bmod) {
            out[i] = a[(o.z * p.bmod + o.y) * p.inner + o.x];
        } else if (o.y < ab) {
            out[i] = b[(o.z * p.c1 + (o.y - p.bmod)) * p.inner + o.x];
        } else {
            out[i] = c[(o.z * p.c2 + (o.y - ab)) * p.inner + o.x];
        }
        o = next(o, p.inner, ct);
    }
}

// out [N, c2, S] = b [N, c2, S] + a [N, Ca, S][:, c1 : c1 + c2]. inner = S, bmod = Ca.
@compute @workgroup_size(256)
fn add_slice(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i0 = run_start(wid, nwg, li);
    if (i0 >= p.n) { return; }
    var o = coords(i0, p.inner, p.c2);
    for (var i = i0; i < min(i0 + RUN, p.n); i++) {
        out[i] = b[i] + a[(o.z * p.bmod + p.c1 + o.y) * p.inner + o.x];
        o = next(o, p.inner, p.c2);
    }
}

// out [N, c2, S] = a [N, Ca, S][:, c1 : c1 + c2]. inner = S, bmod = Ca.
@compute @workgroup_size(256)
fn slice_channels(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) li: u32) {
    let i0 = run_start(wid, nwg, li);
    if (i0 >= p.n) { return; }
    var o = coords(i0, p.inner, p.c2);
    for (var i = i0; i < min(i0 + RUN, p.n); i++) {
        out[i] = a[(o.z * p.bmod + p.c1 + o.y) * p.inner + o.x];
        o = next(o, p.inner, p.c2);
    }
}

// out[i] = a[c1 + i] for i < n: a contiguous range of a (e.g. one chunk of a batch).
@compute @workgroup_size(256)
fn copy_range(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        out[i] = a[p.c1 + i];
    }
}

// out[c1 + i] = a[i] for i < n, writing into an existing tensor.
@compute @workgroup_size(256)
fn copy_into(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        out[p.c1 + i] = a[i];
    }
}
