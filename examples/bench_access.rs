//! What a load and a dispatch cost on this adapter — the figures behind the CPU-adapter kernels' design
//! (README, "Speed"). `cargo run --release --example bench_access`.
//!
//! Loads: every invocation sums 256 floats read at lane-varying addresses within a 64 KiB window (cached)
//! through each kind of binding — a storage buffer as f32 and as vec4, a sampled rgba32float texture, a
//! uniform buffer (vec4, the 64 KiB binding every adapter allows) — and, for comparison, a storage buffer at a
//! workgroup-uniform address. Prints ns per float per invocation (best of 5, 65,536 invocations).
//! Dispatches: 1,000 dispatches of a one-line kernel recorded into one compute pass, then each in its own
//! pass; prints µs per dispatch (best of 3).

use std::time::Instant;

use reddiff::gpu::block_on;

const SHADER: &str = r#"
@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read> xv: array<vec4<f32>>;
@group(0) @binding(2) var tx: texture_2d<f32>;
@group(0) @binding(3) var<uniform> ub: array<vec4<f32>, 4096>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn storage_f32(@builtin(global_invocation_id) g: vec3<u32>) {
    var s = 0.0;
    for (var k = 0u; k < 256u; k++) { s += xs[(g.x * 4u + k * 4099u) & 0x3fffu]; }
    out[g.x] = s;
}

@compute @workgroup_size(64)
fn storage_vec4(@builtin(global_invocation_id) g: vec3<u32>) {
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < 64u; k++) { s += xv[(g.x + k * 1031u) & 0xfffu]; }
    out[g.x] = s.x + s.y + s.z + s.w;
}

@compute @workgroup_size(64)
fn texture_rgba32f(@builtin(global_invocation_id) g: vec3<u32>) {
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < 64u; k++) {
        let i = (g.x + k * 1031u) & 0xfffu;
        s += textureLoad(tx, vec2<u32>(i & 63u, i >> 6u), 0);
    }
    out[g.x] = s.x + s.y + s.z + s.w;
}

@compute @workgroup_size(64)
fn uniform_vec4(@builtin(global_invocation_id) g: vec3<u32>) {
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < 64u; k++) { s += ub[(g.x + k * 1031u) & 4095u]; }
    out[g.x] = s.x + s.y + s.z + s.w;
}

@compute @workgroup_size(64)
fn storage_uniform_address(@builtin(workgroup_id) w: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var k = 0u; k < 256u; k++) { s += xs[(w.x * 64u + k * 4099u) & 0x3fffu]; }
    out[w.x * 64u + li] = s * f32(li);
}

@compute @workgroup_size(64)
fn one_line(@builtin(global_invocation_id) g: vec3<u32>) {
    out[g.x] += 1.0;
}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let instance = wgpu::Instance::default();
    let adapter = block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) = block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;
    println!("adapter: {}\n", adapter.get_info().name);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(SHADER.into()) });
    let buffer = |usage, size| device.create_buffer(&wgpu::BufferDescriptor { label: None, size, usage, mapped_at_creation: false });
    let xs = buffer(wgpu::BufferUsages::STORAGE, 1 << 16);
    let ub = buffer(wgpu::BufferUsages::UNIFORM, 1 << 16);
    let out = buffer(wgpu::BufferUsages::STORAGE, 1 << 18);
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: None,
        size: wgpu::Extent3d { width: 64, height: 64, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING,
        view_formats: &[],
    });
    let view = texture.create_view(&Default::default());
    // A pipeline for `entry` with its input binding (if any) and the output bound.
    let setup = |entry: &str, input: Option<(u32, wgpu::BindingResource)>| {
        let pipe = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let mut entries: Vec<wgpu::BindGroupEntry> = input.into_iter().map(|(binding, resource)| wgpu::BindGroupEntry { binding, resource }).collect();
        entries.push(wgpu::BindGroupEntry { binding: 4, resource: out.as_entire_binding() });
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &pipe.get_bind_group_layout(0), entries: &entries });
        (pipe, bind)
    };
    // Best wall time of `reps` submits of `record`, in seconds.
    let time = |reps: usize, record: &dyn Fn(&mut wgpu::CommandEncoder)| -> Result<f64, wgpu::PollError> {
        let mut best = f64::MAX;
        for _ in 0..reps {
            let t = Instant::now();
            let mut enc = device.create_command_encoder(&Default::default());
            record(&mut enc);
            queue.submit([enc.finish()]);
            device.poll(wgpu::PollType::wait_indefinitely())?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(best)
    };

    println!("| load through | ns per float per invocation |\n|---|---|");
    let invocations = 65_536u32;
    let loads = [
        ("storage buffer, f32", "storage_f32", Some((0, xs.as_entire_binding()))),
        ("storage buffer, vec4", "storage_vec4", Some((1, xs.as_entire_binding()))),
        ("sampled texture, rgba32float", "texture_rgba32f", Some((2, wgpu::BindingResource::TextureView(&view)))),
        ("uniform buffer, vec4", "uniform_vec4", Some((3, ub.as_entire_binding()))),
        ("storage buffer, f32 at a workgroup-uniform address", "storage_uniform_address", Some((0, xs.as_entire_binding()))),
    ];
    for (what, entry, input) in loads {
        let (pipe, bind) = setup(entry, input);
        let s = time(5, &|enc| {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(invocations / 64, 1, 1);
        })?;
        println!("| {what} | {:.3} |", s * 1e9 / (invocations as f64 * 256.0));
    }

    println!("\n| dispatches of a one-line kernel | workgroups | µs per dispatch |\n|---|---|---|");
    let (pipe, bind) = setup("one_line", None);
    let n = 1000;
    for groups in [1u32, 16, 256] {
        let shared = time(3, &|enc| {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bind, &[]);
            for _ in 0..n {
                pass.dispatch_workgroups(groups, 1, 1);
            }
        })?;
        let own = time(3, &|enc| {
            for _ in 0..n {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipe);
                pass.set_bind_group(0, &bind, &[]);
                pass.dispatch_workgroups(groups, 1, 1);
            }
        })?;
        println!("| one pass for all | {groups} | {:.1} |", shared * 1e6 / n as f64);
        println!("| a pass each | {groups} | {:.1} |", own * 1e6 / n as f64);
    }
    Ok(())
}
