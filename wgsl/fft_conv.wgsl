// The steps of a convolution through the FFT (operators::Convolution on large kernels) around fft.wgsl's
// transforms. Real planes travel two per complex plane (re = plane 2q, im = plane 2q + 1): the filter is real,
// so the two convolutions come back apart in re and im. Complex planes are [Q, PH, PW] of (re, im) pairs with
// PH and PW powers of two. Bindings: 1 a (read), 2 b (read; a again where unused), 3 out (read_write).
//   pack_pairs:    out [Q, PH, PW, 2] <- planes first .. first + B of a at the top-left corner, zeros elsewhere
//                  (Q = ceil(B / 2); a has at least first + B planes of H x W).
//   spectrum_mul:  out = a [Q, PH, PW, 2] * b [PH, PW, 2] (complex, per plane), b conjugated with sign = -1.
//   unpack_pairs:  planes first .. first + B of out <- the top-left H x W corner of a [Q, PH, PW, 2] (re or im
//                  of complex plane b / 2).

struct P {
    n: u32,        // invocations with work
    planes: u32,   // B
    h: u32,
    w: u32,
    ph: u32,
    pw: u32,
    sign: f32,     // +1, or -1 to conjugate the spectrum
    first: u32,    // pack: plane of a that complex plane 0 starts at; unpack: plane of out that plane 0 goes to
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + li;
}

@compute @workgroup_size(256)
fn pack_pairs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    // PW and PH are powers of two: shifts and masks, not divisions (scalar code per lane on CPU adapters).
    let lw = countTrailingZeros(p.pw);
    let lh = countTrailingZeros(p.ph);
    let x = i & (p.pw - 1u);
    let y = (i >> lw) & (p.ph - 1u);
    let q = i >> (lw + lh);
    var v = vec2<f32>(0.0);
    if (x < p.w && y < p.h) {
        let hw = p.h * p.w;
        let off = y * p.w + x;
        v.x = a[(p.first + 2u * q) * hw + off];
        if (2u * q + 1u < p.planes) { v.y = a[(p.first + 2u * q + 1u) * hw + off]; }
    }
    out[2u * i] = v.x;
    out[2u * i + 1u] = v.y;
}

@compute @workgroup_size(256)
fn spectrum_mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let s = i & (p.ph * p.pw - 1u);
    let zr = a[2u * i];
    let zi = a[2u * i + 1u];
    let sr = b[2u * s];
    let si = p.sign * b[2u * s + 1u];
    out[2u * i] = zr * sr - zi * si;
    out[2u * i + 1u] = zr * si + zi * sr;
}

@compute @workgroup_size(256)
fn unpack_pairs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let x = i % p.w;
    let r = i / p.w;
    let y = r % p.h;
    let plane = r / p.h;
    out[p.first * p.h * p.w + i] = a[2u * (((plane >> 1u) * p.ph + y) * p.pw + x) + (plane & 1u)];
}
