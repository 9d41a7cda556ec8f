// Softmax backward on rows, in place: for P = softmax(row) and upstream gradient dP (same [rows, cols]),
// dS = P * (dP - sum_j dP_j P_j). One 64-thread workgroup per row (GPUs), or one invocation per row without
// barriers (softmax_rows_backward_lanes, CPU adapters: on lavapipe every barrier is a coroutine switch).
// Bindings: 1 prob (read), 2 grad (read_write: dP in, dS out).

struct P {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> prob: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn softmax_rows_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }   // uniform per workgroup
    let base = row * p.cols;
    var s = 0.0;
    for (var j = li; j < p.cols; j += 64u) { s += grad[base + j] * prob[base + j]; }
    red[li] = s;
    workgroupBarrier();
    for (var off = 32u; off > 0u; off >>= 1u) {
        if (li < off) { red[li] += red[li + off]; }
        workgroupBarrier();
    }
    let dot = red[0];
    for (var j = li; j < p.cols; j += 64u) { grad[base + j] = prob[base + j] * (grad[base + j] - dot); }
}

@compute @workgroup_size(64)
fn softmax_rows_backward_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) li: u32) {
    let row = (wid.x + wid.y * nwg.x) * 64u + li;
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    var dot = 0.0;
    for (var j = 0u; j < p.cols; j++) { dot += grad[base + j] * prob[base + j]; }
    for (var j = 0u; j < p.cols; j++) { grad[base + j] = prob[base + j] * (grad[base + j] - dot); }
}
