// The packed weights of a convolution's input gradient: from packed A (conv_pack.wgsl layout, f32 bits or
// f16 pairs, rows of Mp entries) of w [Cout, Cin, K, K], writes the f32 packing of
// w'[ci][co][ky][kx] = w[co][ci][K-1-ky][K-1-kx] (channels swapped, kernel flipped), rows of Mp' = Cin
// rounded up to 8 entries, zero for m' >= Cin. A stride-1 "same" convolution with w' is the adjoint of one
// with w. One invocation per output word.
// Bindings: 1 src (packed words, read), 2 out (read_write, Cout * K * K * Mp' words).

struct P {
    cin: u32,
    cout: u32,
    k: u32,
    mp: u32,      // source row length (Cout rounded up to 8)
    mpt: u32,     // output row length (Cin rounded up to 8)
    f16: u32,     // source stored as f16 pairs
    words: u32,   // Cout * K * K * mpt
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn source(i: u32) -> f32 {
    if (p.f16 != 0u) {
        let pair = unpack2x16float(src[i / 2u]);
        return select(pair.x, pair.y, (i & 1u) == 1u);
    }
    return bitcast<f32>(src[i]);
}

@compute @workgroup_size(64)
fn pack_transposed(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.words) { return; }
    let ci = i % p.mpt;
    let kk = i / p.mpt;            // (co * K + ky) * K + kx of the transposed weights
    var v = 0.0;
    if (ci < p.cin) {
        let kk2 = p.k * p.k;
        let co = kk / kk2;
        let t = kk % kk2;
        let ky = p.k - 1u - t / p.k;
        let kx = p.k - 1u - t % p.k;
        v = source(((ci * p.k + ky) * p.k + kx) * p.mp + co);
    }
    out[i] = bitcast<u32>(v);
}
