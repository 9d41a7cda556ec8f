// Counter-based Gaussian RNG: Philox4x32-10 (Salmon et al. 2011) + Box-Muller. Thread t produces elements
// 4t..4t+3 from counter (t, 0, offset_lo, offset_hi) and key (seed_lo, seed_hi); the same (seed, offset)
// gives the same numbers on every backend (integer arithmetic only; 32x32->64 products via 16-bit halves).
// uniform u = (bits >> 8 + 0.5) / 2^24 in (0, 1); z0 = r cos(2 pi u2), z1 = r sin(2 pi u2), r = sqrt(-2 ln u1),
// with the angle taken as 2 pi (u2 - 1/2) and the sign flipped, keeping it in [-pi, pi].
// out = mean + std * z. Bindings: 1 out (read_write).

struct P {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    off_lo: u32,
    off_hi: u32,
    mean: f32,
    stdev: f32,
    per: u32,       // normal_keyed: elements per image
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox(c_in: vec4<u32>, k_in: vec2<u32>) -> vec4<u32> {
    var c = c_in;
    var k = k_in;
    for (var r = 0; r < 10; r++) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

fn uniform01(b: u32) -> f32 {
    return (f32(b >> 8u) + 0.5) * (1.0 / 16777216.0);
}

// Four standard normals from four random words (Box-Muller on two pairs).
fn gauss4(bits: vec4<u32>) -> vec4<f32> {
    let r0 = sqrt(-2.0 * log(uniform01(bits.x)));
    let a0 = 6.283185307179586 * (uniform01(bits.y) - 0.5);
    let r1 = sqrt(-2.0 * log(uniform01(bits.z)));
    let a1 = 6.283185307179586 * (uniform01(bits.w) - 0.5);
    return vec4<f32>(-r0 * cos(a0), -r0 * sin(a0), -r1 * cos(a1), -r1 * sin(a1));
}

@compute @workgroup_size(256)
fn normal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let t = (wid.x + wid.y * nwg.x) * 256u + li;
    if (4u * t >= p.n) { return; }
    let z = gauss4(philox(vec4<u32>(t, 0u, p.off_lo, p.off_hi), vec2<u32>(p.seed_lo, p.seed_hi)));
    for (var j = 0u; j < 4u; j++) {
        if (4u * t + j < p.n) { out[4u * t + j] = p.mean + p.stdev * z[j]; }
    }
}

// Per-image keyed draws for a batch [N, ...] of `per` elements per image (params: n = N * per, seed, offset
// as above, per): element j of image i comes from counter (j / 4, keys[i], offset_lo, offset_hi), so it
// depends on (seed, keys[i], offset, j) only, never on the image's position in the batch.
// Bindings: 1 out (read_write), 2 keys (read, one u32 per image).
@group(0) @binding(2) var<storage, read> keys: array<u32>;

@compute @workgroup_size(256)
fn normal_keyed(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let t = (wid.x + wid.y * nwg.x) * 256u + li;
    let quads = (p.per + 3u) / 4u;
    let img = t / quads;
    if (img * p.per >= p.n) { return; }
    let q = t % quads;
    let z = gauss4(philox(vec4<u32>(q, keys[img], p.off_lo, p.off_hi), vec2<u32>(p.seed_lo, p.seed_hi)));
    for (var j = 0u; j < 4u; j++) {
        if (4u * q + j < p.per) { out[img * p.per + 4u * q + j] = p.mean + p.stdev * z[j]; }
    }
}
