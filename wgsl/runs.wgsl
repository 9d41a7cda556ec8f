// Run indexing, prepended to elementwise.wgsl and resample.wgsl (src/shaders.rs); RUN is the including
// shader's override (elements per invocation).
// The kernels that split an index into (position in plane, channel, image) take RUN consecutive elements
// per invocation, starting at `run_start`, and divide only once per run: the next element's coordinates
// follow by counting (`next`). On CPU adapters integer division is scalar code, one division per lane
// (concatenating 64 + 64 channels at 32x32 on lavapipe: 1.2 ms with a division per element, a copy of the
// same size 0.3 ms).
fn run_start(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return ((wid.x + wid.y * nwg.x) * 256u + li) * RUN;
}

// (s, c, n) of flat index i over [N, rows, cols]: s = i % cols, c = (i / cols) % rows, n = i / (cols * rows).
fn coords(i: u32, cols: u32, rows: u32) -> vec3<u32> {
    return vec3<u32>(i % cols, (i / cols) % rows, i / (cols * rows));
}

// The coordinates of the element after `o`.
fn next(o: vec3<u32>, cols: u32, rows: u32) -> vec3<u32> {
    var r = vec3<u32>(o.x + 1u, o.y, o.z);
    if (r.x == cols) {
        r.x = 0u;
        r.y += 1u;
        if (r.y == rows) {
            r.y = 0u;
            r.z += 1u;
        }
    }
    return r;
}

