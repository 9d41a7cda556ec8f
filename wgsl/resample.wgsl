// Nearest-neighbour 2x upsampling, 2x2 average pooling and 2x zero insertion on [N*C, H, W] planes.
// Bindings: 1 x (read), 2 out (read_write). H, W are the INPUT plane size. 256 threads, one output each.

struct P {
    n: u32,   // output elements
    h: u32,
    w: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// Elements per invocation, as in elementwise.wgsl.
override RUN: u32 = 1u;

fn first(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u * RUN + li;
}

// (column, row, plane) of element i of a [planes, 2H, 2W] output.
fn up2(i: u32) -> vec3<u32> {
    let wo = 2u * p.w;
    return vec3<u32>(i % wo, (i / wo) % (2u * p.h), i / (wo * 2u * p.h));
}

@compute @workgroup_size(256)
fn upsample_nearest2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        let o = up2(i);
        out[i] = x[(o.z * p.h + o.y / 2u) * p.w + o.x / 2u];
    }
}

// Output plane is (H/2) x (W/2) (floor), as torch's avg_pool2d(kernel 2, stride 2).
@compute @workgroup_size(256)
fn avg_pool2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        let wo = p.w / 2u;
        let ho = p.h / 2u;
        let ox = i % wo;
        let oy = (i / wo) % ho;
        let plane = i / (wo * ho);
        let base = (plane * p.h + 2u * oy) * p.w + 2u * ox;
        out[i] = 0.25 * (x[base] + x[base + 1u] + x[base + p.w] + x[base + p.w + 1u]);
    }
}

// Zero insertion (the adjoint of a stride-2 subsampling): out (2H) x (2W) with out[2y][2x] = x[y][x] and
// zeros elsewhere.
@compute @workgroup_size(256)
fn zero_insert2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let i0 = first(wid, nwg, li);
    for (var j = 0u; j < RUN; j++) {
        let i = i0 + j * 256u;
        if (i >= p.n) { return; }
        let o = up2(i);
        var v = 0.0;
        if ((o.x & 1u) == 0u && (o.y & 1u) == 0u) { v = x[(o.z * p.h + o.y / 2u) * p.w + o.x / 2u]; }
        out[i] = v;
    }
}
