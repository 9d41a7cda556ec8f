// DPS (Chung et al., ICLR 2023) element-wise steps, as the authors' code (DPS2022/diffusion-posterior-sampling)
// computes them per image k with D = C * H * W elements:
//   dps_grad: out = M * a / ||r_k|| where -1 <= b <= 1, else 0, with a = grad of 1/2 mean((y - H x0)^2) at
//             the clipped x0 (= -J^T r / M), b = the unclipped x0, c[k] = ||r_k||^2: the gradient of
//             ||y - H(clip(x0))|| with respect to the unclipped x0 (clamp passes gradient only inside).
//   dps_step: out = c0 * x0 + ct * x + sigma * z - zeta * g, the DDPM ancestral step (posterior mean of
//             q(x_{t-1} | x_t, x0) plus noise) followed by the guidance step, with a = x0 (clipped), b = x_t,
//             c = learned-variance outputs v (guided-diffusion `learned_range`: log var = f log beta +
//             (1 - f) log beta_tilde_clipped, f = (v + 1) / 2) or a dummy (fixed: sigma = sqrt_var),
//             d = z ~ N(0, I) (unused when noise = 0, the last step), e = g (the gradient w.r.t. x_t).
// Bindings: 1 a, 2 b, 3 c, 4 d, 5 e (read), 6 out (read_write).

struct P {
    n: u32,
    d: u32,
    m_scale: f32,
    c0: f32,
    ct: f32,
    zeta: f32,
    sqrt_var: f32,
    log_beta: f32,
    log_post: f32,
    learned: u32,
    noise: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read> e: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + li;
}

@compute @workgroup_size(256)
fn dps_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let inside = b[i] >= -1.0 && b[i] <= 1.0;
    let norm = sqrt(max(c[i / p.d], 1e-30));
    out[i] = select(0.0, p.m_scale * a[i] / norm, inside);
}

@compute @workgroup_size(256)
fn dps_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    var v = p.c0 * a[i] + p.ct * b[i] - p.zeta * e[i];
    if (p.noise != 0u) {
        var sigma = p.sqrt_var;
        if (p.learned != 0u) {
            let f = (c[i] + 1.0) * 0.5;
            sigma = exp(0.5 * (f * p.log_beta + (1.0 - f) * p.log_post));
        }
        v += sigma * d[i];
    }
    out[i] = v;
}
