// Overlapping square tiles of [N, C, H, W] images, for running a fixed-size network on larger images.
// A grid has NY rows and NX columns of S x S tiles; tile k (row-major) has its top-left corner at
// (origins[k / NX], origins[NY + k % NX]). A pass handles tiles k0 .. k0 + COUNT of every image; its tile
// batch is [N * COUNT, C, S, S], image n's tiles first. With WEIGHTED = 0 each kernel is the transpose of the
// other's WEIGHTED = 1 form (for vector-Jacobian products through tiles): extract_tiles weighted multiplies by
// the blending weight (the transpose of the blend), blend_tiles unweighted adds tiles in place (the transpose
// of the plain extraction).
// The grid buffer holds the origins [NY rows, NX columns], then as f32 bits the window over a tile [S] and
// the sums of the windows covering each image row [H] and column [W] (TileGrid::upload).
// Bindings: 1 grid (u32, read), 2 source (read), 3 destination (read_write). One thread per output value;
// blend_tiles covers only the image rows [Y0, Y0 + ROWS) of its pass's tiles.

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
    weighted: u32, // 1: extract times the blend weight / blend with the normalised window; 0: plain
    y0: u32,     // blend_tiles: first image row of the band it writes
    rows: u32,   // blend_tiles: rows in that band
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> origins: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// Blending window over a tile, positive everywhere, largest in the middle: sin²(π (u + ½) / S).
fn window(u: u32) -> f32 {
    return bitcast<f32>(origins[p.ny + p.nx + u]);
}

// Sum of the windows of every grid tile covering image pixel (y, x): the blend's normaliser (separable).
fn coverage(y: u32, x: u32) -> f32 {
    let base = p.ny + p.nx + p.s;
    return bitcast<f32>(origins[base + y]) * bitcast<f32>(origins[base + p.h + x]);
}

// dst [N * COUNT, C, S, S] <- the tiles of src [N, C, H, W] (times the blend weight if WEIGHTED).
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
    var v = src[((img * p.c + c) * p.h + oy + y) * p.w + ox + x];
    if (p.weighted == 1u) { v *= window(y) * window(x) / coverage(oy + y, ox + x); }
    dst[i] = v;
}

// dst [N, C, H, W] += the window-weighted tiles src [N * COUNT, C, S, S], normalised so that the weights of
// all tiles of the grid covering a pixel sum to 1 (the window is separable, so the sum is a product); if not
// WEIGHTED, the plain sum of the tiles covering the pixel.
@compute @workgroup_size(256)
fn blend_tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= p.n) { return; }
    let x = i % p.w;
    let y = p.y0 + (i / p.w) % p.rows;
    let c = (i / (p.w * p.rows)) % p.c;
    let img = i / (p.w * p.rows * p.c);
    let weighted = p.weighted == 1u;
    var acc = 0.0;
    for (var j = 0u; j < p.count; j++) {
        let k = p.k0 + j;
        let oy = origins[k / p.nx];
        let ox = origins[p.ny + k % p.nx];
        if (y >= oy && y < oy + p.s && x >= ox && x < ox + p.s) {
            let t = ((img * p.count + j) * p.c + c) * p.s * p.s + (y - oy) * p.s + (x - ox);
            if (weighted) { acc += window(y - oy) * window(x - ox) * src[t]; } else { acc += src[t]; }
        }
    }
    if (weighted) { acc /= coverage(y, x); }
    let d = ((img * p.c + c) * p.h + y) * p.w + x;
    dst[d] += acc;
}
