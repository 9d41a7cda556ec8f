// Kernels for the nonlinear measurement operators (src/operators): HDR and Fourier phase retrieval.
// Bindings: 1 a, 2 b (read), 3 out (read_write). 256 threads per workgroup, 1-D grid folded to 2-D.

struct P {
    n: u32,       // elements written
    h: u32,       // image plane height
    w: u32,       // image plane width
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + li;
}

// HDR: out = clip(2 a, -1, 1).
@compute @workgroup_size(256)
fn hdr_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    out[i] = clamp(2.0 * a[i], -1.0, 1.0);
}

// Gradient of (1/2) mean((y - clip(2x))^2) in x, a = x, b = y, scale = 1 / M:
// out = -2 (y - clip(2x)) / M where |2x| < 1, else 0.
@compute @workgroup_size(256)
fn hdr_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let x2 = 2.0 * a[i];
    var g = 0.0;
    if (abs(x2) < 1.0) { g = -2.0 * (b[i] - x2) * p.scale; }
    out[i] = g;
}

// Zero-pads real planes a [P, h, w] into the centre of complex planes out [P, 2h, 2w, 2] (n = P*4hw).
@compute @workgroup_size(256)
fn pad_complex(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let w2 = 2u * p.w;
    let x = i % w2;
    let y = (i / w2) % (2u * p.h);
    let plane = i / (w2 * 2u * p.h);
    let sy = i32(y) - i32(p.h / 2u);
    let sx = i32(x) - i32(p.w / 2u);
    var v = 0.0;
    if (sy >= 0 && sy < i32(p.h) && sx >= 0 && sx < i32(p.w)) {
        v = a[(plane * p.h + u32(sy)) * p.w + u32(sx)];
    }
    out[2u * i] = v;
    out[2u * i + 1u] = 0.0;
}

// |z| of complex a [.., 2] into out [..] (n = number of complex values).
@compute @workgroup_size(256)
fn magnitude(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    out[i] = length(vec2<f32>(a[2u * i], a[2u * i + 1u]));
}

// v = -(y - |z|) * scale * z / |z| (0 where |z| = 0), a = z complex, b = y real; out complex.
@compute @workgroup_size(256)
fn phase_residual(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let z = vec2<f32>(a[2u * i], a[2u * i + 1u]);
    let m = length(z);
    var v = vec2<f32>(0.0);
    if (m > 0.0) { v = -(b[i] - m) * p.scale * z / m; }
    out[2u * i] = v.x;
    out[2u * i + 1u] = v.y;
}

// The adjoint of pad_complex on real parts: out [P, h, w] = scale * Re(a [P, 2h, 2w, 2]) in the centre window.
@compute @workgroup_size(256)
fn crop_real(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let x = i % p.w;
    let y = (i / p.w) % p.h;
    let plane = i / (p.w * p.h);
    let w2 = 2u * p.w;
    let src = (plane * 2u * p.h + y + p.h / 2u) * w2 + x + p.w / 2u;
    out[i] = p.scale * a[2u * src];
}
