//! Embedding reddiff in an application: the app opens its own wgpu device, hands it to reddiff, and restores
//! an image with a progress callback and a cancel flag. Run: `cargo run --release --example embed [IN] [OUT]`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use reddiff::{image::Image, operators::TaskKind, wgpu, Gpu, Restorer};

fn main() -> reddiff::Result<()> {
    // The app's own device (any adapter; here the default one, as a renderer would have it).
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = reddiff::gpu::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
        .map_err(|e| reddiff::Error::Gpu(format!("no adapter: {e}")))?;
    let (device, queue) = reddiff::gpu::block_on(adapter.request_device(&wgpu::DeviceDescriptor { required_limits: adapter.limits(), ..Default::default() }))
        .map_err(|e| reddiff::Error::Gpu(e.to_string()))?;
    let gpu = Arc::new(Gpu::from_wgpu(device, queue, None)?);

    let cancel = Arc::new(AtomicBool::new(false)); // another thread may set it to stop
    let restorer = Restorer::builder()
        .task(TaskKind::Sr(4))
        .steps(100)
        .on_progress(|p| {
            if p.step % 25 == 0 {
                eprintln!("step {}/{} (t = {})", p.step, p.steps, p.t)
            }
        })
        .cancel_flag(cancel.clone())
        .build(gpu)?;

    let args: Vec<String> = std::env::args().collect();
    let input = args.get(1).map(String::as_str).unwrap_or("assets/samples/twitter-1f467-1f3fc.png");
    let output = args.get(2).map(String::as_str).unwrap_or("embed-x4.png");
    let low = Image::read(input.as_ref())?.resize(8, 8); // pretend this is a real 8x8 photo
    let out = restorer.restore(&low, input)?;
    out.image.write(output.as_ref())?;
    println!("{}x{} -> {}x{}: wrote {output}", low.width, low.height, out.image.width, out.image.height);
    Ok(())
}
