// Reductions for losses, metrics and NaN checks. Produces [sum, sum of squares, max |x|, non-finite count]
// over the finite elements of x (non-finite ones are only counted). Two stages:
//   stats_partial: G workgroups of 256 threads, grid-stride over x, write 4 partials per workgroup;
//   stats_final:   one workgroup folds the G partial quadruples into out[0..4].
// Non-finite is detected from the bit pattern (exponent all ones), which no compiler may optimise away.
// Bindings: 1 x (read), 2 out (read_write).

struct P {
    n: u32,        // elements of x (stage 1) or partial quadruples (stage 2)
    groups: u32,   // workgroups in stage 1
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> r_sum: array<f32, 256>;
var<workgroup> r_sq: array<f32, 256>;
var<workgroup> r_max: array<f32, 256>;
var<workgroup> r_bad: array<f32, 256>;

fn finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

fn fold(li: u32) {
    workgroupBarrier();
    for (var off = 128u; off > 0u; off >>= 1u) {
        if (li < off) {
            r_sum[li] += r_sum[li + off];
            r_sq[li] += r_sq[li + off];
            r_max[li] = max(r_max[li], r_max[li + off]);
            r_bad[li] += r_bad[li + off];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn stats_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.groups) { return; }
    var s = 0.0;
    var q = 0.0;
    var m = 0.0;
    var bad = 0.0;
    for (var i = g * 256u + li; i < p.n; i += p.groups * 256u) {
        let v = x[i];
        if (finite(v)) {
            s += v;
            q += v * v;
            m = max(m, abs(v));
        } else {
            bad += 1.0;
        }
    }
    r_sum[li] = s;
    r_sq[li] = q;
    r_max[li] = m;
    r_bad[li] = bad;
    fold(li);
    if (li == 0u) {
        out[4u * g] = r_sum[0];
        out[4u * g + 1u] = r_sq[0];
        out[4u * g + 2u] = r_max[0];
        out[4u * g + 3u] = r_bad[0];
    }
}

@compute @workgroup_size(256)
fn stats_final(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    var q = 0.0;
    var m = 0.0;
    var bad = 0.0;
    for (var i = li; i < p.n; i += 256u) {
        s += x[4u * i];
        q += x[4u * i + 1u];
        m = max(m, x[4u * i + 2u]);
        bad += x[4u * i + 3u];
    }
    r_sum[li] = s;
    r_sq[li] = q;
    r_max[li] = m;
    r_bad[li] = bad;
    fold(li);
    if (li == 0u) {
        out[0] = r_sum[0];
        out[1] = r_sq[0];
        out[2] = r_max[0];
        out[3] = r_bad[0];
    }
}
