// One DDRM update in spectral coordinates (Kawar et al., NeurIPS 2022, eq. 7-8, as the authors' code
// `efficient_generalized_steps` computes it), element-wise with the singular value s of each coordinate:
//   s = 0 (unobserved):        v = vx0 + sqrt(sn^2 - (eta_c sn)^2) * vet + eta_c sn * z
//   s sn < sigma0 (y noisier): v = vx0 + sqrt(sn^2 - (eta_a sn)^2) * (uty - s vx0) / sigma0 + eta_a sn * z
//   s sn > sigma0 (y cleaner): v = eta_b uty / s + (1 - eta_b) vx0 + sqrt(sn^2 - (sigma0 eta_b / s)^2) * z
//   (s sn = sigma0 falls to the first case, as in the authors' code)
// out = scale * v.  sn: sigma of the next step, sqrt(1 - abar) / sqrt(abar); sigma0 = 2 sigma_y.
// Bindings: 1 s [D] (per image), 2 uty, 3 vx0, 4 vet, 5 z (read, [N * D]), 6 out (read_write).

struct P {
    n: u32,
    d: u32,
    sigma_next: f32,
    sigma0: f32,
    eta_a: f32,
    eta_b: f32,
    eta_c: f32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> sv: array<f32>;
@group(0) @binding(2) var<storage, read> uty: array<f32>;
@group(0) @binding(3) var<storage, read> vx0: array<f32>;
@group(0) @binding(4) var<storage, read> vet: array<f32>;
@group(0) @binding(5) var<storage, read> z: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn ddrm_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= p.n) { return; }
    let s = sv[i % p.d];
    let sn = p.sigma_next;
    let ss = sn * sn;
    var v: f32;
    if (s > 0.0 && s * sn > p.sigma0) {
        let d = p.sigma0 * p.eta_b / s;
        v = p.eta_b * uty[i] / s + (1.0 - p.eta_b) * vx0[i] + sqrt(max(ss - d * d, 0.0)) * z[i];
    } else if (s > 0.0 && s * sn < p.sigma0) {
        let sa = p.eta_a * sn;
        v = vx0[i] + sqrt(max(ss - sa * sa, 0.0)) * (uty[i] - s * vx0[i]) / p.sigma0 + sa * z[i];
    } else {
        let sc = p.eta_c * sn;
        v = vx0[i] + sqrt(max(ss - sc * sc, 0.0)) * vet[i] + sc * z[i];
    }
    out[i] = p.scale * v;
}
