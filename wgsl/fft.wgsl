// One radix-2 Stockham stage of a batch of 1-D complex FFTs of power-of-two length L, so a full transform is
// log2(L) dispatches ping-ponging between two buffers, output in natural order. Used along W then H for 2-D.
// Complex values are vec2<f32> (re, im). Transform number q starts at element
//   (q / inner) * outer_stride + (q % inner) * inner_stride and its samples are `stride` apart.
// Forward uses exp(-2 pi i k n / L) (numpy.fft.fft); inverse uses +, and scale (1/L on the last stage).
// Bindings: 1 src (read), 2 dst (read_write). Thread j < L/2 of each transform does one butterfly.

struct P {
    threads: u32,      // transforms * L / 2
    len: u32,          // L
    ns: u32,           // current sub-transform size 2^s
    inner: u32,
    outer_stride: u32,
    inner_stride: u32,
    stride: u32,
    sign: f32,         // -1 forward, +1 inverse
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec2<f32>>;

@compute @workgroup_size(256)
fn fft_stage(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let id = (wid.x + wid.y * nwg.x) * 256u + li;
    if (id >= p.threads) { return; }
    let half = p.len / 2u;
    let j = id % half;
    let q = id / half;
    let base = (q / p.inner) * p.outer_stride + (q % p.inner) * p.inner_stride;
    let k = j % p.ns;
    let v0 = src[base + j * p.stride];
    let v1 = src[base + (j + half) * p.stride];
    let ang = p.sign * 3.141592653589793 * f32(k) / f32(p.ns);
    let w = vec2<f32>(cos(ang), sin(ang));
    let t = vec2<f32>(v1.x * w.x - v1.y * w.y, v1.x * w.y + v1.y * w.x);
    let o = (j / p.ns) * 2u * p.ns + k;
    dst[base + o * p.stride] = p.scale * (v0 + t);
    dst[base + (o + p.ns) * p.stride] = p.scale * (v0 - t);
}
