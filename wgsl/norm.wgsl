// GroupNorm over x [N, C, S] (S = H*W) with G groups, as torch.nn.GroupNorm (biased variance, eps inside
// the square root), then optionally scale-shift y * (1 + scale[n, c]) + shift[n, c] with scale at
// ss[ss_off + n * ss_stride + c] and shift C entries later (guided-diffusion's `chunk(2, dim=1)` order),
// then optionally SiLU. Two passes, so the work spreads over many workgroups:
//   1. statistics of chunks of `chunk` consecutive elements of each (n, group): (mean, M2) per chunk, either
//      one invocation per chunk (`gn_stats`, CPU adapters) or one 256-thread workgroup per chunk
//      (`gn_stats_wg`, GPUs);
//   2. `gn_merge`: one invocation per (n, group) merges its chunks' statistics (Chan et al.) into the
//      group's (mean, rstd), stored after the chunk statistics (at N * G * chunks + n * G + g);
//   3. `gn_apply`: every invocation normalises RUN consecutive elements of one channel (S % RUN == 0) with
//      its group's (mean, rstd). (Merging in every invocation instead, up to 512 chunks per run of 64
//      elements, took a 128-channel 256x256 GroupNorm 103 ms on lavapipe.)
// On CPU adapters, groups of at most FUSED_MAX elements (src/ops/norm.rs) take one pass instead, `gn_fused`:
// an invocation per (n, group) computes its chunk statistics, merges them and normalises the group (a
// dispatch costs lavapipe 30-60 µs of thread hand-off, more than the statistics pass of a small GroupNorm;
// large groups keep the three passes, which spread over more threads).
// Bindings: 1 x, 2 gamma [C], 3 beta [C], 4 ss (read; a dummy when unused), 5 stats (read_write, 2 floats
// per chunk, then 2 per (n, group); unused by gn_fused), 6 out (read_write; used by gn_apply and gn_fused).

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
    threads: u32,    // gn_stats(_wg): N * G * chunks; gn_merge, gn_fused: N * G; gn_apply: N * C * S / RUN
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

// (mean, M2) of the `len` elements from x[start], with sums shifted by the first element (accurate when
// |mean| >> std).
fn chunk_stats(start: u32, len: u32) -> vec2<f32> {
    let k = x[start];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0u; j < len; j++) {
        let d = x[start + j] - k;
        s1 += d;
        s2 += d * d;
    }
    let m = s1 / f32(len);
    return vec2<f32>(k + m, max(s2 - s1 * m, 0.0));
}

// Running (mean, M2, count) `acc` merged with the statistics `st` of `nb` more elements (Chan et al.).
fn merge(acc: vec3<f32>, st: vec2<f32>, nb: f32) -> vec3<f32> {
    let d = st.x - acc.x;
    let tot = acc.z + nb;
    return vec3<f32>(acc.x + d * nb / tot, acc.y + st.y + d * d * acc.z * nb / tot, tot);
}

// (a, b) with y = (x - mean) * a + b for channel c of image n, from the group's rstd.
fn coef(n: u32, c: u32, rstd: f32) -> vec2<f32> {
    var a = rstd * gamma[c];
    var b = beta[c];
    if (p.scale_shift != 0u) {
        let sb = p.ss_off + n * p.ss_stride;
        let sc = 1.0 + ss[sb + c];
        a *= sc;
        b = b * sc + ss[sb + p.c + c];
    }
    return vec2<f32>(a, b);
}

// y through SiLU when p.silu is set, else y.
fn act(y: f32) -> f32 {
    if (p.silu != 0u) { return y / (1.0 + exp(-y)); }
    return y;
}

@compute @workgroup_size(64)
fn gn_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.threads) { return; }
    let r = chunk_range(i);
    stats[i] = chunk_stats(r.x, r.y);
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
fn gn_merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.threads) { return; }
    let count = group_count();
    var acc = vec3<f32>(0.0);
    for (var j = 0u; j < p.chunks; j++) {
        acc = merge(acc, stats[i * p.chunks + j], f32(min(p.chunk, count - j * p.chunk)));
    }
    stats[p.n * p.groups * p.chunks + i] = vec2<f32>(acc.x, inverseSqrt(acc.y / f32(count) + p.eps));
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
    let ms = stats[p.n * p.groups * p.chunks + n * p.groups + g];
    let ab = coef(n, c, ms.y);
    for (var j = 0u; j < RUN; j++) {
        out[e0 + j] = act((x[e0 + j] - ms.x) * ab.x + ab.y);
    }
}

// One invocation per (n, group) (8 per workgroup): its chunks' statistics, merged, then the group's
// channels normalised (a group's elements are contiguous: C/G channels of S).
@compute @workgroup_size(8)
fn gn_fused(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 8u + li;
    if (i >= p.threads) { return; }
    let count = group_count();
    let base = i * count;
    var acc = vec3<f32>(0.0);
    for (var j = 0u; j < p.chunks; j++) {
        let len = min(p.chunk, count - j * p.chunk);
        acc = merge(acc, chunk_stats(base + j * p.chunk, len), f32(len));
    }
    let rstd = inverseSqrt(acc.y / f32(count) + p.eps);
    let n = i / p.groups;
    let cpg = p.c / p.groups;
    for (var cc = 0u; cc < cpg; cc++) {
        let ab = coef(n, (i % p.groups) * cpg + cc, rstd);
        let e0 = base + cc * p.s;
        for (var e = e0; e < e0 + p.s; e++) {
            out[e] = act((x[e] - acc.x) * ab.x + ab.y);
        }
    }
}
