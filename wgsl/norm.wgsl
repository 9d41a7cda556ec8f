// GroupNorm over x [N, C, S] (S = H*W) with G groups, as torch.nn.GroupNorm (biased variance, eps inside
// the square root), then optionally scale-shift y * (1 + scale[n, c]) + shift[n, c] with ss [N, 2C] holding
// scale in its first C columns and shift in the last C (guided-diffusion's `chunk(2, dim=1)` order), then
// optionally SiLU. One workgroup of 256 threads per (n, group): a two-pass mean / variance for accuracy.
// Bindings: 1 x, 2 gamma [C], 3 beta [C], 4 ss [N, 2C] (read; a dummy when unused), 5 out (read_write).

struct P {
    n: u32,
    c: u32,
    s: u32,
    groups: u32,
    eps: f32,
    silu: u32,
    scale_shift: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> ss: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 256>;

fn reduce_sum(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var off = 128u; off > 0u; off >>= 1u) {
        if (li < off) { red[li] += red[li + off]; }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(256)
fn group_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.n * p.groups) { return; }   // uniform per workgroup
    let n = g / p.groups;
    let grp = g % p.groups;
    let cpg = p.c / p.groups;
    let count = cpg * p.s;
    let base = (n * p.c + grp * cpg) * p.s;
    var sum = 0.0;
    for (var i = li; i < count; i += 256u) { sum += x[base + i]; }
    let mean = reduce_sum(li, sum) / f32(count);
    var sq = 0.0;
    for (var i = li; i < count; i += 256u) {
        let d = x[base + i] - mean;
        sq += d * d;
    }
    let rstd = inverseSqrt(reduce_sum(li, sq) / f32(count) + p.eps);
    for (var i = li; i < count; i += 256u) {
        let c = grp * cpg + i / p.s;
        var y = (x[base + i] - mean) * rstd * gamma[c] + beta[c];
        if (p.scale_shift != 0u) {
            y = y * (1.0 + ss[n * 2u * p.c + c]) + ss[n * 2u * p.c + p.c + c];
        }
        if (p.silu != 0u) { y = y / (1.0 + exp(-y)); }
        out[base + i] = y;
    }
}
