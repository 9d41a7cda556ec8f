// Split-K convolution, second pass: adds the raw partial sums of `splits` slices of k (written by
// conv_coop.wgsl or conv_gemm.wgsl's conv_gemm4 with splits > 1 as part[s * total + idx]) and applies the
// convolution epilogue:
//   v = sum_s part[s][idx] + bias[m] + add[n * add_stride + add_off + m];  out = alpha * v + beta * res[idx],
// idx = (n * cout + m) * howo + q over the [N, Cout, Ho, Wo] output.
// Bindings: 1 part, 2 bias, 3 add, 4 res (read), 5 out (read_write).

struct P {
    total: u32,     // N * Cout * Ho * Wo
    cout: u32,
    howo: u32,
    splits: u32,
    flags: u32,     // 1 bias, 2 channel term, 4 residual
    add_off: u32,
    add_stride: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> addv: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let idx = (wid.x + wid.y * nwg.x) * 256u + li;
    if (idx >= p.total) { return; }
    var v = 0.0;
    for (var s = 0u; s < p.splits; s++) { v += part[s * p.total + idx]; }
    let m = (idx / p.howo) % p.cout;
    let n = idx / (p.howo * p.cout);
    if ((p.flags & 1u) != 0u) { v += bias[m]; }
    if ((p.flags & 2u) != 0u) { v += addv[n * p.add_stride + p.add_off + m]; }
    v *= p.alpha;
    if ((p.flags & 4u) != 0u) { v += p.beta * res[idx]; }
    out[idx] = v;
}
