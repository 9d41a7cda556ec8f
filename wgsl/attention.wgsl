// Row-wise numerically stable softmax (the middle of attention: scores = Q K^T * scale -> softmax -> V),
// in place on x [rows, cols]: x = exp(scale * x - max) / sum. Bindings: 1 x (read_write).
//   softmax_rows:  one workgroup of 64 threads per row, tree reductions in workgroup memory (GPUs);
//   softmax_lanes: one invocation per row, no barriers: a running max and sum in one pass, then the
//                  normalised values (CPU adapters, where every workgroup barrier is a coroutine switch).

struct P {
    rows: u32,
    cols: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn softmax_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }   // uniform per workgroup
    let base = row * p.cols;
    var m = -3.0e38;
    for (var j = li; j < p.cols; j += 64u) { m = max(m, p.scale * x[base + j]); }
    red[li] = m;
    workgroupBarrier();
    for (var off = 32u; off > 0u; off >>= 1u) {
        if (li < off) { red[li] = max(red[li], red[li + off]); }
        workgroupBarrier();
    }
    let mx = red[0];
    workgroupBarrier();
    var s = 0.0;
    for (var j = li; j < p.cols; j += 64u) {
        let e = exp(p.scale * x[base + j] - mx);
        x[base + j] = e;
        s += e;
    }
    red[li] = s;
    workgroupBarrier();
    for (var off = 32u; off > 0u; off >>= 1u) {
        if (li < off) { red[li] += red[li + off]; }
        workgroupBarrier();
    }
    let inv = 1.0 / red[0];
    for (var j = li; j < p.cols; j += 64u) { x[base + j] *= inv; }
}


@compute @workgroup_size(64)
fn softmax_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let row = (wid.x + wid.y * nwg.x) * 64u + li;
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    var m = -3.0e38;
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let v = p.scale * x[base + j];
        let mn = max(m, v);
        s = s * exp(m - mn) + exp(v - mn);
        m = mn;
    }
    let inv = 1.0 / s;
    for (var j = 0u; j < p.cols; j++) { x[base + j] = exp(p.scale * x[base + j] - m) * inv; }
}
