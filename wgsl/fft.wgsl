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

// First element of transform q (`inner` is a power of two).
fn start(q: u32) -> u32 {
    return (q >> countTrailingZeros(p.inner)) * p.outer_stride + (q & (p.inner - 1u)) * p.inner_stride;
}

@compute @workgroup_size(256)
fn fft_stage(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let id = (wid.x + wid.y * nwg.x) * 256u + li;
    if (id >= p.threads) { return; }
    // Every length, sub-transform size and `inner` is a power of two: shifts and masks instead of divisions
    // (a division by a non-constant is scalar code, one per lane, on CPU adapters).
    let half = p.len / 2u;
    let j = id & (half - 1u);
    let q = id >> countTrailingZeros(half);
    let base = start(q);
    let k = j & (p.ns - 1u);
    let v0 = src[base + j * p.stride];
    let v1 = src[base + (j + half) * p.stride];
    let ang = p.sign * 3.141592653589793 * f32(k) / f32(p.ns);
    let w = vec2<f32>(cos(ang), sin(ang));
    let t = vec2<f32>(v1.x * w.x - v1.y * w.y, v1.x * w.y + v1.y * w.x);
    let o = ((j >> countTrailingZeros(p.ns)) << (countTrailingZeros(p.ns) + 1u)) + k;
    dst[base + o * p.stride] = p.scale * (v0 + t);
    dst[base + (o + p.ns) * p.stride] = p.scale * (v0 - t);
}

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// One radix-4 Stockham stage (threads = transforms * L / 4; ns = the sub-transform size so far, a power of
// two): thread j < L/4 takes samples j + r L/4 (r = 0..3), turns sample r by exp(sign 2 pi i r k / (4 ns)),
// k = j mod ns, and writes their 4-point DFT to (j / ns) 4 ns + k + r ns. Two radix-2 stages in one pass:
// half the passes over memory, which is what a stage costs on CPU adapters (not its arithmetic).
@compute @workgroup_size(256)
fn fft_stage4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let id = (wid.x + wid.y * nwg.x) * 256u + li;
    if (id >= p.threads) { return; }
    let quarter = p.len / 4u;
    let j = id & (quarter - 1u);
    let q = id >> countTrailingZeros(quarter);
    let base = start(q);
    let k = j & (p.ns - 1u);
    let ang = p.sign * 1.5707963267948966 * f32(k) / f32(p.ns);
    let w1 = vec2<f32>(cos(ang), sin(ang));
    let w2 = cmul(w1, w1);
    let w3 = cmul(w2, w1);
    let v0 = src[base + j * p.stride];
    let v1 = cmul(src[base + (j + quarter) * p.stride], w1);
    let v2 = cmul(src[base + (j + 2u * quarter) * p.stride], w2);
    let v3 = cmul(src[base + (j + 3u * quarter) * p.stride], w3);
    // 4-point DFT with w = exp(sign 2 pi i / 4) = sign * i: w z = sign * (-z.y, z.x).
    let a = v0 + v2;
    let b = v0 - v2;
    let c = v1 + v3;
    let d = v1 - v3;
    let wd = p.sign * vec2<f32>(-d.y, d.x);
    let lg = countTrailingZeros(p.ns);
    let o = ((j >> lg) << (lg + 2u)) + k;
    dst[base + o * p.stride] = p.scale * (a + c);
    dst[base + (o + p.ns) * p.stride] = p.scale * (b + wd);
    dst[base + (o + 2u * p.ns) * p.stride] = p.scale * (a - c);
    dst[base + (o + 3u * p.ns) * p.stride] = p.scale * (b - wd);
}
