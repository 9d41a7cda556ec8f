// Packs convolution weights w [Cout, Cin, K, K] (binding 1) into the layout every conv kernel reads:
// A[k][m] with k = (c * K + ky) * K + kx and m = output channel, rows of Mp = Cout rounded up to 8 entries,
// zero for m >= Cout. As f32 (`pack_f32`, binding 2 holds Kt * Mp floats) or as f16 pairs (`pack_f16`,
// binding 2 holds Kt * Mp / 2 words, entry m in the low half of word m / 2 when m is even).
// Kt = Cin * K * K. One invocation per output word.

struct P {
    cin: u32,
    cout: u32,
    k: u32,
    mp: u32,
    words: u32,   // f32: Kt * Mp; f16: Kt * Mp / 2
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn weight(i: u32) -> f32 {
    let m = i % p.mp;
    let kk = i / p.mp;             // (c * K + ky) * K + kx
    if (m >= p.cout) { return 0.0; }
    return w[m * p.cin * p.k * p.k + kk];
}

@compute @workgroup_size(64)
fn pack_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.words) { return; }
    out[i] = bitcast<u32>(weight(i));
}

@compute @workgroup_size(64)
fn pack_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.words) { return; }
    out[i] = pack2x16float(vec2<f32>(weight(2u * i), weight(2u * i + 1u)));
}
