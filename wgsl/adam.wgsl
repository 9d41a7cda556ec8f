// One Adam step in place, exactly torch.optim.Adam (no weight decay, no amsgrad):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   x -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc1 = 1 - b1^t, bc2 = 1 - b2^t.
// Bindings: 1 g (read), 2 x, 3 m, 4 v (read_write).

struct P {
    n: u32,
    lr: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    bc1: f32,
    sqrt_bc2: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn adam_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= p.n) { return; }
    let gi = g[i];
    let mi = p.b1 * m[i] + (1.0 - p.b1) * gi;
    let vi = p.b2 * v[i] + (1.0 - p.b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    x[i] = x[i] - (p.lr / p.bc1) * mi / (sqrt(vi) / p.sqrt_bc2 + p.eps);
}
