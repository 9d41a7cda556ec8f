// GroupNorm over x [N, C, S] (S = H*W) with G groups, as torch.nn.GroupNorm (biased variance, eps inside
// the square root), then optionally scale-shift y * (1 + scale[n, c]) + shift[n, c] with scale at
// ss[ss_off + n * ss_stride + c] and shift C entries later (guided-diffusion's `chunk(2, dim=1)` order),
// then optionally SiLU. Two passes, so the work spreads over many workgroups:
//   1. statistics of chunks of `chunk` consecutive elements of each (n, group): (mean, M2) per chunk, either
//      one invocation per chunk (`gn_stats`, CPU adapters) or one 256-thread workgroup per chunk
//      (`gn_stats_wg`, GPUs);
//   2. `gn_apply`: every invocation merges its group's chunk statistics (Chan et al.) and normalises RUN
//      consecutive elements of one channel (S % RUN == 0).
// Bindings: 1 x, 2 gamma [C], 3 beta [C], 4 ss (read; a dummy when unused), 5 stats (read_write, 2 floats
// per chunk), 6 out (read_write; unused by the statistics passes).

override RUN: u32 = 4u;

struct P {
    n: u32,
    c: u32,
    s: u32,
    groups: u32,
    eps: f32,
    silu: u32,
    scale_shift: u32,
    chunks: u32,     // chunks per (n, group)
    chunk: u32,      // elements per chunk (the last one may be shorter)
    threads: u32,    // gn_stats: N * G * chunks; gn_apply: N * C * S / RUN
    ss_off: u32,
    ss_stride: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> ss: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

fn group_count() -> u32 { return (p.c / p.groups) * p.s; }

// First element and length of chunk i (over all (n, group, chunk)).
fn chunk_range(i: u32) -> vec2<u32> {
    let count = group_count();
    let j = i % p.chunks;
    return vec2<u32>((i / p.chunks) * count + j * p.chunk, min(p.chunk, count - j * p.chunk));
}

@compute @workgroup_size(64)
fn gn_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.threads) { return; }
    let r = chunk_range(i);
    // Sums shifted by the chunk's first element keep the variance accurate when |mean| >> std.
    let k = x[r.x];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0u; j < r.y; j++) {
        let d = x[r.x + j] - k;
        s1 += d;
        s2 += d * d;
    }
    let m = s1 / f32(r.y);
    stats[i] = vec2<f32>(k + m, max(s2 - s1 * m, 0.0));
}

var<workgroup> red1: array<f32, 256>;
var<workgroup> red2: array<f32, 256>;

@compute @workgroup_size(256)
fn gn_stats_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let i = wid.x + wid.y * nwg.x;
    if (i >= p.threads) { return; }   // uniform per workgroup
    let r = chunk_range(i);
    let k = x[r.x];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = li; j < r.y; j += 256u) {
        let d = x[r.x + j] - k;
        s1 += d;
        s2 += d * d;
    }
    red1[li] = s1;
    red2[li] = s2;
    workgroupBarrier();
    for (var off = 128u; off > 0u; off >>= 1u) {
        if (li < off) {
            red1[li] += red1[li + off];
            red2[li] += red2[li + off];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        let m = red1[0] / f32(r.y);
        stats[i] = vec2<f32>(k + m, max(red2[0] - red1[0] * m, 0.0));
    }
}

@compute @workgroup_size(64)
fn gn_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.threads) { return; }
    let e0 = i * RUN;
    let nc = e0 / p.s;
    let n = nc / p.c;
    let c = nc % p.c;
    let g = c / (p.c / p.groups);
    let sb = (n * p.groups + g) * p.chunks;
    let count = group_count();
    var mean = 0.0;
    var m2 = 0.0;
    var seen = 0.0;
    for (var j = 0u; j < p.chunks; j++) {
        let st = stats[sb + j];
        let nb = f32(min(p.chunk, count - j * p.chunk));
        let d = st.x - mean;
        let tot = seen + nb;
        mean += d * nb / tot;
        m2 += st.y + d * d * seen * nb / tot;
        seen = tot;
    }
    let rstd = inverseSqrt(m2 / f32(count) + p.eps);
    var a = rstd * gamma[c];
    var b = beta[c];
    if (p.scale_shift != 0u) {
        let sb2 = p.ss_off + n * p.ss_stride;
        let sc = 1.0 + ss[sb2 + c];
        a *= sc;
        b = b * sc + ss[sb2 + p.c + c];
    }
    for (var j = 0u; j < RUN; j++) {
        var y = (x[e0 + j] - mean) * a + b;
        if (p.silu != 0u) { y = y / (1.0 + exp(-y)); }
        out[e0 + j] = y;
    }
}
