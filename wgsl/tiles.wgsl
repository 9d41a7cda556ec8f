// Overlapping square tiles of [N, C, H, W] images, for running a fixed-size network on larger images.
// A grid has NY rows and NX columns of S x S tiles; tile k (row-major) has its top-left corner at
// (origins[k / NX], origins[NY + k % NX]). A pass handles tiles k0 .. k0 + COUNT of every image; its tile
// batch is [N * COUNT, C, S, S], image n's tiles first.
// Bindings: 1 origins (u32, read), 2 source (read), 3 destination (read_write). One thread per output value.

struct P {
    n: u32,      // output elements
    c: u32,
    h: u32,
    w: u32,
    s: u32,      // tile size
    ny: u32,
    nx: u32,
    k0: u32,     // first tile of this pass
    count: u32,  // tiles per image in this pass
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> origins: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// Blending window over a tile, positive everywhere, largest in the middle: sin²(π (u + ½) / S).
fn window(u: u32) -> f32 {
    let s = sin(3.14159265358979 * (f32(u) + 0.5) / f32(p.s));
    return s * s;
}

// dst [N * COUNT, C, S, S] <- the tiles of src [N, C, H, W].
@compute @workgroup_size(256)
fn extract_tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= p.n) { return; }
    let x = i % p.s;
    let y = (i / p.s) % p.s;
    let c = (i / (p.s * p.s)) % p.c;
    let b = i / (p.s * p.s * p.c);
    let img = b / p.count;
    let k = p.k0 + b % p.count;
    let oy = origins[k / p.nx];
    let ox = origins[p.ny + k % p.nx];
    dst[i] = src[((img * p.c + c) * p.h + oy + y) * p.w + ox + x];
}

// dst [N, C, H, W] += the window-weighted tiles src [N * COUNT, C, S, S], normalised so that the weights of
// all tiles of the grid covering a pixel sum to 1 (the window is separable, so the sum is a product).
@compute @workgroup_size(256)
fn blend_tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= p.n) { return; }
    let x = i % p.w;
    let y = (i / p.w) % p.h;
    let c = (i / (p.w * p.h)) % p.c;
    let img = i / (p.w * p.h * p.c);
    var wy = 0.0;
    for (var r = 0u; r < p.ny; r++) {
        let o = origins[r];
        if (y >= o && y < o + p.s) { wy += window(y - o); }
    }
    var wx = 0.0;
    for (var q = 0u; q < p.nx; q++) {
        let o = origins[p.ny + q];
        if (x >= o && x < o + p.s) { wx += window(x - o); }
    }
    var acc = 0.0;
    for (var j = 0u; j < p.count; j++) {
        let k = p.k0 + j;
        let oy = origins[k / p.nx];
        let ox = origins[p.ny + k % p.nx];
        if (y >= oy && y < oy + p.s && x >= ox && x < ox + p.s) {
            let t = ((img * p.count + j) * p.c + c) * p.s * p.s + (y - oy) * p.s + (x - ox);
            acc += window(y - oy) * window(x - ox) * src[t];
        }
    }
    dst[i] += acc / (wy * wx);
}
