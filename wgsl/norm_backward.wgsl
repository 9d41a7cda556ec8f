// Input gradient of norm.wgsl's GroupNorm (+ optional scale-shift, + optional SiLU) over x [N, C, S]:
//   n = (x - mean) * rstd,  y0 = gamma[c] n + beta[c],  y1 = y0 (1 + scale[n, c]) + shift[n, c]  (scale-shift),
//   out = silu(y1) (or y1).  Given dout:  g = dout * silu'(y1) (or dout),  dn = g (1 + scale) gamma[c],
//   dx = rstd (dn - mean_group(dn) - n * mean_group(dn n)).
// Two passes: `gn_back_stats`, one 256-thread workgroup per (n, group) (CPU adapters: `gn_back_stats_lanes`,
// one invocation per group), writes (mean, rstd, mean(dn), mean(dn n)); `gn_back_apply`, one invocation per
// element (CPU adapters: `gn_back_apply_runs`, one per run of elements of one channel), writes dx. On CPU
// adapters small groups take one pass instead, `gn_back_fused_lanes` (an invocation per group does both).
// The apply passes add add_scale * addend to dx when add_scale is not 0 (a residual branch's gradient).
// Bindings: 1 x, 2 dout, 3 gamma [C], 4 beta [C], 5 ss (scale at ss_off + n ss_stride + c, shift C later;
// a dummy when unused), 6 stats (read_write, 4 floats per group), 7 dx (read_write), 8 addend (same shape as
// x; a dummy when add_scale is 0).

struct P {
    n: u32,
    c: u32,
    s: u32,
    groups: u32,
    eps: f32,
    silu: u32,
    scale_shift: u32,
    ss_off: u32,
    ss_stride: u32,
    total: u32,    // N * C * S
    add_scale: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read> ss: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read> addend: array<f32>;

var<workgroup> red1: array<f32, 256>;
var<workgroup> red2: array<f32, 256>;

// Per-channel coefficients (a, b) of y1 = a n + b: gamma, beta and the scale-shift folded together, so that
// dn = g a.
fn coef(n: u32, c: u32) -> vec2<f32> {
    var a = gamma[c];
    var b = beta[c];
    if (p.scale_shift != 0u) {
        let base = p.ss_off + n * p.ss_stride;
        let sc = 1.0 + ss[base + c];
        a *= sc;
        b = b * sc + ss[base + p.c + c];
    }
    return vec2<f32>(a, b);
}

// dn at element i for normalised value nv and its channel's coefficients ab.
fn dnorm(i: u32, ab: vec2<f32>, nv: f32) -> f32 {
    var g = dout[i];
    if (p.silu != 0u) {
        let y = ab.x * nv + ab.y;
        let sig = 1.0 / (1.0 + exp(-y));
        g *= sig * (1.0 + y * (1.0 - sig));
    }
    return g * ab.x;
}

// Group grp = n * groups + g: its image, first channel, first element and element count.
struct Group { n: u32, c0: u32, first: u32, count: u32 }

fn group_of(grp: u32) -> Group {
    let cg = p.c / p.groups;
    return Group(grp / p.groups, (grp % p.groups) * cg, grp * cg * p.s, cg * p.s);
}

// (mean, rstd) from the sums s1, s2 of x - k and (x - k)^2 over count elements.
fn mean_rstd(k: f32, s1: f32, s2: f32, count: u32) -> vec2<f32> {
    let m = s1 / f32(count);
    let var_ = max(s2 - s1 * m, 0.0) / f32(count);
    return vec2<f32>(k + m, inverseSqrt(var_ + p.eps));
}

fn reduce2(li: u32) {
    workgroupBarrier();
    for (var off = 128u; off > 0u; off >>= 1u) {
        if (li < off) {
            red1[li] += red1[li + off];
            red2[li] += red2[li + off];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn gn_back_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let grp = wid.x + wid.y * nwg.x;
    if (grp >= p.n * p.groups) { return; }   // uniform per workgroup
    let gr = group_of(grp);
    let first = gr.first;
    let count = gr.count;
    // Mean and variance, shifted by the group's first element (as norm.wgsl).
    let k = x[first];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = li; j < count; j += 256u) {
        let d = x[first + j] - k;
        s1 += d;
        s2 += d * d;
    }
    red1[li] = s1;
    red2[li] = s2;
    reduce2(li);
    let mr = mean_rstd(k, red1[0], red2[0], count);
    let mean = mr.x;
    let rstd = mr.y;
    workgroupBarrier();
    var t1 = 0.0;
    var t2 = 0.0;
    for (var j = li; j < count; j += 256u) {
        let nv = (x[first + j] - mean) * rstd;
        let dn = dnorm(first + j, coef(gr.n, gr.c0 + j / p.s), nv);
        t1 += dn;
        t2 += dn * nv;
    }
    red1[li] = t1;
    red2[li] = t2;
    reduce2(li);
    if (li == 0u) {
        stats[grp] = vec4<f32>(mean, rstd, red1[0] / f32(count), red2[0] / f32(count));
    }
}

// (mean, rstd, mean(dn), mean(dn n)) of group grp, computed by one invocation alone, without barriers (on
// lavapipe every workgroup barrier is a coroutine switch, and gn_back_stats has 18).
fn lane_stats(grp: u32) -> vec4<f32> {
    let gr = group_of(grp);
    let k = x[gr.first];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0u; j < gr.count; j++) {
        let d = x[gr.first + j] - k;
        s1 += d;
        s2 += d * d;
    }
    let mr = mean_rstd(k, s1, s2, gr.count);
    let mean = mr.x;
    let rstd = mr.y;
    var t1 = 0.0;
    var t2 = 0.0;
    for (var cc = 0u; cc < p.c / p.groups; cc++) {
        let base = gr.first + cc * p.s;
        let ab = coef(gr.n, gr.c0 + cc);
        for (var j = 0u; j < p.s; j++) {
            let nv = (x[base + j] - mean) * rstd;
            let dn = dnorm(base + j, ab, nv);
            t1 += dn;
            t2 += dn * nv;
        }
    }
    return vec4<f32>(mean, rstd, t1 / f32(gr.count), t2 / f32(gr.count));
}

// dx at element e from its group's statistics st and its channel's coefficients ab (+ add_scale * addend).
fn grad_at(e: u32, st: vec4<f32>, ab: vec2<f32>) -> f32 {
    let nv = (x[e] - st.x) * st.y;
    var v = st.y * (dnorm(e, ab, nv) - st.z - nv * st.w);
    if (p.add_scale != 0.0) { v += p.add_scale * addend[e]; }
    return v;
}

// CPU adapters: one invocation per (n, group) computes its statistics alone; 8 invocations per workgroup
// so the groups spread over the CPU's threads.
@compute @workgroup_size(8)
fn gn_back_stats_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) li: u32) {
    let grp = (wid.x + wid.y * nwg.x) * 8u + li;
    if (grp >= p.n * p.groups) { return; }
    stats[grp] = lane_stats(grp);
}

// CPU adapters, small groups (see group_norm_backward): one invocation per (n, group) computes its
// statistics and then its dx, in one dispatch instead of two (the stats binding is unused).
@compute @workgroup_size(8)
fn gn_back_fused_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) li: u32) {
    let grp = (wid.x + wid.y * nwg.x) * 8u + li;
    if (grp >= p.n * p.groups) { return; }
    let st = lane_stats(grp);
    let gr = group_of(grp);
    for (var cc = 0u; cc < p.c / p.groups; cc++) {
        let base = gr.first + cc * p.s;
        let ab = coef(gr.n, gr.c0 + cc);
        for (var e = base; e < base + p.s; e++) {
            dx[e] = grad_at(e, st, ab);
        }
    }
}

@compute @workgroup_size(256)
fn gn_back_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= p.total) { return; }
    let nc = i / p.s;
    let n = nc / p.c;
    let c = nc % p.c;
    dx[i] = grad_at(i, stats[n * p.groups + c / (p.c / p.groups)], coef(n, c));
}

// Elements per invocation of gn_back_apply_runs: a run inside one channel (S % RUN == 0).
override RUN: u32 = 1u;

// CPU adapters: one invocation per run of RUN elements of one channel, so the group's statistics and the
// channel's coefficients are loaded once per run instead of once per element.
@compute @workgroup_size(64)
fn gn_back_apply_runs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= p.total / RUN) { return; }
    let e0 = i * RUN;
    let nc = e0 / p.s;
    let n = nc / p.c;
    let c = nc % p.c;
    let st = stats[n * p.groups + c / (p.c / p.groups)];
    let ab = coef(n, c);
    for (var j = 0u; j < RUN; j++) {
        dx[e0 + j] = grad_at(e0 + j, st, ab);
    }
}
