// Sinusoidal timestep embedding out [N, dim] from t [N] (f32 timesteps) and freqs [half]:
//   half = dim / 2, freq_i = exp(-ln(max_period) * i / (half - shift)) (computed on the CPU in f32 exactly as
//   torch does: at t ~ 1000 a 1-ulp difference in freq would move the argument by 5e-5), arg = t * freq_i,
//   out = [cos(arg), sin(arg)] if flip (guided-diffusion; diffusers flip_sin_to_cos) else [sin, cos];
//   an odd dim gets a zero last column. The argument is reduced to [-pi, pi] in two steps (Cody-Waite) so
//   that large t * freq keep full accuracy on every backend.
// Bindings: 1 t, 2 freqs (read), 3 out (read_write).

struct P {
    n: u32,       // N * half
    dim: u32,
    half: u32,
    flip: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read> freqs: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const TWO_PI_HI: f32 = 6.28125;                  // exactly representable, few mantissa bits
const TWO_PI_LO: f32 = 0.0019353071795864769;    // 2 pi - TWO_PI_HI

@compute @workgroup_size(256)
fn timestep_embedding(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) li: u32) {
    let id = (wid.x + wid.y * nwg.x) * 256u + li;
    if (id >= p.n) { return; }
    let i = id % p.half;
    let n = id / p.half;
    let arg = t[n] * freqs[i];
    let q = round(arg / 6.283185307179586);
    let r = (arg - q * TWO_PI_HI) - q * TWO_PI_LO;
    let c = cos(r);
    let s = sin(r);
    let row = n * p.dim;
    if (p.flip != 0u) {
        out[row + i] = c;
        out[row + p.half + i] = s;
    } else {
        out[row + i] = s;
        out[row + p.half + i] = c;
    }
    if (i == 0u && (p.dim % 2u) == 1u) { out[row + p.dim - 1u] = 0.0; }
}
