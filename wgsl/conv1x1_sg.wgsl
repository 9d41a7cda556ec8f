// 1x1 convolution (stride 1, no padding), NCHW, for CPU adapters with subgroups of at least 8 lanes: each
// thread computes 8 output channels x 4 consecutive pixels (of H*W flattened); the 8-channel block is
// workgroup-uniform and its weights for input channel c are loaded once per subgroup (one word per lane:
// f32 lanes 0..7, f16 pairs lanes 0..3) and handed out by subgroupBroadcast, as in conv3x3_sg.wgsl. Per c a
// lane loads 4 inputs and 1 weight word for 32 FMAs (conv.wgsl: 4 inputs and 4 weights for 16).
// Workgroup g = (n * ceil(ceil(H*W/4) / 64) + pixel block) * Mp/8 + channel block.
// Weights packed by conv_pack.wgsl (A[c][m], rows of Mp entries; f32 bit patterns, or f16 pairs with
// WF16 = true). Parameters, epilogue and bindings as conv3x3.wgsl (h, w: the input = output size).

override WF16: bool = false;

struct P {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    mp: u32,
    flags: u32,
    add_off: u32,
    add_stride: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> addv: array<f32>;
@group(0) @binding(5) var<storage, read> res: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

fn epilogue(n: u32, m: u32, idx: u32, acc: f32) -> f32 {
    var v = acc;
    if ((p.flags & 1u) != 0u) { v += bias[m]; }
    if ((p.flags & 2u) != 0u) { v += addv[n * p.add_stride + p.add_off + m]; }
    v *= p.alpha;
    if ((p.flags & 4u) != 0u) { v += p.beta * res[idx]; }
    return v;
}

fn lo32(r: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(subgroupBroadcast(r, 0u), subgroupBroadcast(r, 1u), subgroupBroadcast(r, 2u), subgroupBroadcast(r, 3u)));
}
fn hi32(r: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(subgroupBroadcast(r, 4u), subgroupBroadcast(r, 5u), subgroupBroadcast(r, 6u), subgroupBroadcast(r, 7u)));
}
fn lo16(r: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(subgroupBroadcast(r, 0u)), unpack2x16float(subgroupBroadcast(r, 1u)));
}
fn hi16(r: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(subgroupBroadcast(r, 2u)), unpack2x16float(subgroupBroadcast(r, 3u)));
}

@compute @workgroup_size(64)
fn conv1x1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32) {
    let hw = p.h * p.w;
    let blocks = (hw + 3u) / 4u;
    let cblocks = p.mp / 8u;
    let gpb = (blocks + 63u) / 64u;
    let g = wid.x + wid.y * nwg.x;
    let cb = g % cblocks;
    let r = g / cblocks;
    let n = r / gpb;
    if (n >= p.n) { return; }
    let t = (r % gpb) * 64u + li;
    let live = t < blocks;
    // Subgroups with no pixel leave (the whole subgroup at once, so broadcasts keep their sources).
    if (!subgroupAny(live)) { return; }
    let p0 = min(t, blocks - 1u) * 4u;
    let lane = sl % 8u;
    var a = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var b = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var c = 0u; c < p.cin; c++) {
        let xb = (n * p.cin + c) * hw + p0;
        var xv = vec4<f32>(0.0);
        for (var j = 0u; j < 4u; j++) {
            if (p0 + j < hw) { xv[j] = x[xb + j]; }
        }
        let e0 = c * p.mp + cb * 8u;
        var wa: vec4<f32>;
        var wb: vec4<f32>;
        if (WF16) {
            let rw = wt[e0 / 2u + lane % 4u];
            wa = lo16(rw); wb = hi16(rw);
        } else {
            let rw = wt[e0 + lane];
            wa = lo32(rw); wb = hi32(rw);
        }
        a[0] += wa * xv.x; a[1] += wa * xv.y; a[2] += wa * xv.z; a[3] += wa * xv.w;
        b[0] += wb * xv.x; b[1] += wb * xv.y; b[2] += wb * xv.z; b[3] += wb * xv.w;
    }
    if (!live) { return; }
    for (var rr = 0u; rr < 8u; rr++) {
        let oc = cb * 8u + rr;
        if (oc >= p.cout) { break; }
        let ob = (n * p.cout + oc) * hw;
        for (var j = 0u; j < 4u; j++) {
            if (p0 + j < hw) {
                var v: f32;
                if (rr < 4u) { v = a[j][rr]; } else { v = b[j][rr - 4u]; }
                out[ob + p0 + j] = epilogue(n, oc, ob + p0 + j, v);
            }
        }
    }
}
