// Winograd F(4x4, 3x3) for 3x3 convolutions with stride 1 and padding 1 (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", CVPR 2016; interpolation points 0, +-1, +-2, infinity): every 4x4 block of
// output pixels (a tile) of one channel pair is Y = A^T [(G g G^T) * (B^T d B)] A, with d the 6x6 input
// patch around the tile (zeros outside the image) and g the 3x3 kernel, so per tile the 36 products of the
// transformed patch and kernel replace 144 multiplications. Summed over input channels the 36 positions are
// 36 independent matrix products U[pos] (Cout x Cin) . V[pos] (Cin x tiles), which the caller runs through
// conv_sg.wgsl's 1x1 kernel (one "image" per position, W_PER_IMAGE). Three passes here:
//   wino_weights: U[pos][c][m] = (G g G^T)[pos] for every (c, m < Mp), f32, from the packed weights
//                 (conv_pack.wgsl's A[k][m], f32 or f16 pairs with WF16); zero for m >= Cout.
//   wino_input:   V[pos][c][l] = (B^T d B)[pos] for every c and tile l of a chunk of NTC tiles.
//   wino_output:  out[n][m][y][x] = epilogue((A^T M A)[y % 4][x % 4]) from M[pos][m][l] (the products),
//                 for every m < Cout and tile l of the chunk; pixels past the image are not stored.
// Tiles are numbered row-major over ceil(H/4) x ceil(W/4) per image, images one after another (tile g of the
// batch is tile g % tiles of image g / tiles); a chunk is the NTC tiles from T0 on, so that the temporaries
// of large layers fit one storage binding. In f32 the result differs from the
// direct sum by rounding in the transforms: ~1e-6 of the output's scale (tests/kernels.rs).

override WF16: bool = false;
// wino_input: rows of whole vec4s (W % 4 == 0), so a tile's 4 middle columns are one vec4 load (binding 7).
override VEC4_X: bool = false;

struct P {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    mp: u32,
    tiles_x: u32,   // ceil(W / 4)
    tiles: u32,     // tiles per image: ceil(H / 4) * ceil(W / 4)
    ntc: u32,       // tiles in this chunk: the columns of every product
    t0: u32,        // the chunk's first tile
    count: u32,     // invocations that have work in this pass
    flags: u32,     // 1: bias, 2: per-(image, channel) term, 4: residual (as conv_sg.wgsl)
    add_off: u32,
    add_stride: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> addv: array<f32>;
@group(0) @binding(5) var<storage, read> res: array<f32>;
@group(0) @binding(6) var<storage, read_write> dst: array<f32>;
// wino_input: the input again, four floats per element.
@group(0) @binding(7) var<storage, read> srcq: array<vec4<f32>>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 64u + li;
}

// B^T v: the input transform along one axis.
fn bt(v: array<f32, 6>) -> array<f32, 6> {
    return array<f32, 6>(
        4.0 * v[0] - 5.0 * v[2] + v[4],
        -4.0 * (v[1] + v[2]) + v[3] + v[4],
        4.0 * (v[1] - v[2]) - v[3] + v[4],
        2.0 * (v[3] - v[1]) - v[2] + v[4],
        2.0 * (v[1] - v[3]) - v[2] + v[4],
        4.0 * v[1] - 5.0 * v[3] + v[5],
    );
}

// G g: the kernel transform along one axis.
fn gk(g0: f32, g1: f32, g2: f32) -> array<f32, 6> {
    return array<f32, 6>(
        0.25 * g0,
        -(g0 + g1 + g2) / 6.0,
        -(g0 - g1 + g2) / 6.0,
        g0 / 24.0 + g1 / 12.0 + g2 / 6.0,
        g0 / 24.0 - g1 / 12.0 + g2 / 6.0,
        g2,
    );
}

// A^T v: the output transform along one axis.
fn at(v: array<f32, 6>) -> array<f32, 4> {
    let s = v[1] + v[2];
    let d = v[1] - v[2];
    let s2 = v[3] + v[4];
    let d2 = v[3] - v[4];
    return array<f32, 4>(v[0] + s + s2, d + 2.0 * d2, s + 4.0 * s2, d + 8.0 * d2 + v[5]);
}

fn weight(k: u32, m: u32) -> f32 {
    let e = k * p.mp + m;
    if (WF16) {
        let pair = unpack2x16float(wt[e / 2u]);
        return select(pair.x, pair.y, (e & 1u) == 1u);
    }
    return bitcast<f32>(wt[e]);
}

@compute @workgroup_size(64)
fn wino_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.count) { return; }
    let m = i % p.mp;
    let c = i / p.mp;
    // Rows of G g (6 x 3), one column of g at a time, then (G g) G^T row by row.
    var gg: array<array<f32, 6>, 3>;
    for (var kx = 0u; kx < 3u; kx++) {
        gg[kx] = gk(weight(c * 9u + kx, m), weight(c * 9u + 3u + kx, m), weight(c * 9u + 6u + kx, m));
    }
    for (var r = 0u; r < 6u; r++) {
        let u = gk(gg[0][r], gg[1][r], gg[2][r]);
        for (var q = 0u; q < 6u; q++) {
            dst[((r * 6u + q) * p.cin + c) * p.mp + m] = u[q];
        }
    }
}

@compute @workgroup_size(64)
fn wino_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.count) { return; }
    let l = i % p.ntc;
    let c = i / p.ntc;
    let g = p.t0 + l;
    let tile = g % p.tiles;
    let n = g / p.tiles;
    let y0 = i32(tile / p.tiles_x) * 4 - 1;
    let x0 = i32(tile % p.tiles_x) * 4 - 1;
    let base = (n * p.cin + c) * p.h * p.w;
    // d B: the transform along each of the patch's 6 rows (per-lane loads are what costs on CPU adapters:
    // with VEC4_X a row is one vec4 and two floats instead of six floats).
    var rows: array<array<f32, 6>, 6>;
    for (var r = 0; r < 6; r++) {
        let y = y0 + r;
        let yin = y >= 0 && y < i32(p.h);
        let rb = i32(base) + select(0, y, yin) * i32(p.w);
        var v: array<f32, 6>;
        if (VEC4_X) {
            let okl = yin && x0 >= 0;
            let okr = yin && x0 + 5 < i32(p.w);
            let mid = select(vec4<f32>(0.0), srcq[u32(rb + x0 + 1) / 4u], yin);
            v = array<f32, 6>(select(0.0, src[u32(rb + select(0, x0, okl))], okl), mid.x, mid.y, mid.z, mid.w,
                              select(0.0, src[u32(rb + select(0, x0 + 5, okr))], okr));
        } else {
            for (var q = 0; q < 6; q++) {
                let x = x0 + q;
                let ok = yin && x >= 0 && x < i32(p.w);
                v[q] = select(0.0, src[u32(rb + select(0, x, ok))], ok);
            }
        }
        rows[r] = bt(v);
    }
    // B^T (d B): the transform down each column.
    for (var q = 0u; q < 6u; q++) {
        let o = bt(array<f32, 6>(rows[0][q], rows[1][q], rows[2][q], rows[3][q], rows[4][q], rows[5][q]));
        for (var r = 0u; r < 6u; r++) {
            dst[((r * 6u + q) * p.cin + c) * p.ntc + l] = o[r];
        }
    }
}

@compute @workgroup_size(64)
fn wino_output(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.count) { return; }
    let l = i % p.ntc;
    let m = i / p.ntc;
    let g = p.t0 + l;
    let tile = g % p.tiles;
    let n = g / p.tiles;
    // A^T M down each of the 6 columns, then along the 4 rows.
    var cols: array<array<f32, 4>, 6>;
    for (var q = 0u; q < 6u; q++) {
        var v: array<f32, 6>;
        for (var r = 0u; r < 6u; r++) {
            v[r] = src[((r * 6u + q) * p.cout + m) * p.ntc + l];
        }
        cols[q] = at(v);
    }
    var add = 0.0;
    if ((p.flags & 1u) != 0u) { add += bias[m]; }
    if ((p.flags & 2u) != 0u) { add += addv[n * p.add_stride + p.add_off + m]; }
    let y0 = (tile / p.tiles_x) * 4u;
    let x0 = (tile % p.tiles_x) * 4u;
    let plane = (n * p.cout + m) * p.h;
    for (var r = 0u; r < 4u; r++) {
        let y = y0 + r;
        if (y >= p.h) { break; }
        let o = at(array<f32, 6>(cols[0][r], cols[1][r], cols[2][r], cols[3][r], cols[4][r], cols[5][r]));
        for (var q = 0u; q < 4u; q++) {
            let x = x0 + q;
            if (x >= p.w) { break; }
            let idx = (plane + y) * p.w + x;
            var v = (o[q] + add) * p.alpha;
            if ((p.flags & 4u) != 0u) { v += p.beta * res[idx]; }
            dst[idx] = v;
        }
    }
}
