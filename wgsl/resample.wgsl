// Nearest-neighbour 2x upsampling, 2x2 block sums (average pooling) and 2x zero insertion on [N*C, H, W]
// planes, every output multiplied by `scale` (1 for upsampling, 1/4 for average pooling; the VJP's adjoints
// use 1/4 and 1). Bindings: 1 x (read), 2 out (read_write). H, W are the INPUT plane size. 256 threads, RUN
// outputs each.

struct P {
    n: u32,   // output elements
    h: u32,
    w: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// Elements per invocation, as in elementwise.wgsl: RUN consecutive outputs from `run_start`, counted on
// with `next` (runs.wgsl, which src/shaders.rs prepends).
override RUN: u32 = 1u;

@compute @workgroup_size(256)
fn upsample_nearest2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) li: u32) {
    let i0 = run_start(wid, nwg, li);
    if (i0 >= p.n) { return; }
    var o = coords(i0, 2u * p.w, 2u * p.h);
    for (var i = i0; i < min(i0 + RUN, p.n); i++) {
        out[i] = p.scale * x[(o.z * p.h + o.y / 2u) * p.w + o.x / 2u];
        o = next(o, 2u * p.w, 2u * p.h);
    }
}

// Output plane is (H/2) x (W/2) (floor), as torch's avg_pool2d(kernel 2, stride 2).
@compute @workgroup_size(256)
fn pool2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i0 = run_start(wid, nwg, li);
    if (i0 >= p.n) { return; }
    var o = coords(i0, p.w / 2u, p.h / 2u);
    for (var i = i0; i < min(i0 + RUN, p.n); i++) {
        let base = (o.z * p.h + 2u * o.y) * p.w + 2u * o.x;
        out[i] = p.scale * (x[base] + x[base + 1u] + x[base + p.w] + x[base + p.w + 1u]);
        o = next(o, p.w / 2u, p.h / 2u);
    }
}

// Zero insertion (the adjoint of a stride-2 subsampling): out (2H) x (2W) with out[2y][2x] = x[y][x] and
// zeros elsewhere.
@compute @workgroup_size(256)
fn zero_insert2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let i0 = run_start(wid, nwg, li);
    if (i0 >= p.n) { return; }
    var o = coords(i0, 2u * p.w, 2u * p.h);
    for (var i = i0; i < min(i0 + RUN, p.n); i++) {
        var v = 0.0;
        if ((o.x & 1u) == 0u && (o.y & 1u) == 0u) { v = p.scale * x[(o.z * p.h + o.y / 2u) * p.w + o.x / 2u]; }
        out[i] = v;
        o = next(o, 2u * p.w, 2u * p.h);
    }
}
