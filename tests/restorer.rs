//! The embedding API: a Restorer on an app's own wgpu device restores images of the model's size and
//! larger, reports progress every step, and stops when its cancel flag is set.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use reddiff::image::Image;
use reddiff::operators::TaskKind;
use reddiff::{wgpu, Error, Gpu, Restorer};

fn sample() -> Image {
    Image::read(&std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/samples/google-1f466.png")).unwrap()
}

fn app_gpu() -> Arc<Gpu> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = reddiff::gpu::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).expect("adapter");
    let (device, queue) =
        reddiff::gpu::block_on(adapter.request_device(&wgpu::DeviceDescriptor { required_limits: adapter.limits(), ..Default::default() })).expect("device");
    Arc::new(Gpu::from_wgpu(device, queue, None).expect("reddiff on the app's device"))
}

#[test]
fn restorer_on_an_apps_device_with_progress_and_cancel() {
    let gpu = app_gpu();
    let steps = Arc::new(AtomicUsize::new(0));
    let seen = steps.clone();
    let r = Restorer::builder().task(TaskKind::Sr(4)).steps(4).on_progress(move |p| {
        assert_eq!(p.steps, 4);
        seen.fetch_add(1, Ordering::Relaxed);
    });
    let r = r.build(gpu.clone()).unwrap();
    // A real 8x8 measurement becomes a 32x32 image; a 16x12 one a 64x48 image restored on tiles.
    let low = sample().resize(8, 8);
    let out = r.restore(&low, "a").unwrap();
    assert_eq!((out.image.height, out.image.width, out.truth.is_none()), (32, 32, true));
    assert_eq!(steps.load(Ordering::Relaxed), 4);
    let out = r.restore(&sample().resize(12, 16), "b").unwrap();
    assert_eq!((out.image.height, out.image.width), (48, 64));
    // Synthetic: the same key gives the same result.
    let a = r.degrade_and_restore(&sample(), "k").unwrap();
    let b = r.degrade_and_restore(&sample(), "k").unwrap();
    assert_eq!(a.image, b.image);
    assert_eq!(a.truth.as_ref(), Some(&sample()));

    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let r = Restorer::builder().steps(10).cancel_flag(flag.clone()).on_progress(move |p| f.store(p.step >= 2, Ordering::Relaxed)).build(gpu.clone()).unwrap();
    match r.degrade_and_restore(&sample(), "c") {
        Err(Error::Cancelled { step }) => assert_eq!(step, 2),
        other => panic!("expected a cancellation at step 2, got {:?}", other.map(|o| o.image.width)),
    }
    // DiffPIR through the same API (authors' 20 steps for inpainting); a nonlinear task is refused.
    let d = Restorer::builder().method(reddiff::solvers::Method::DiffPir).build(gpu.clone()).unwrap();
    let out = d.degrade_and_restore(&sample(), "d").unwrap();
    assert!(reddiff::metrics::psnr(&sample(), &out.image).unwrap() > reddiff::metrics::psnr(&sample(), out.pinv.as_ref().unwrap()).unwrap());
    // Nothing set: the built-in prior's recommended.json chooses; paper_defaults() ignores it.
    let rec = reddiff::recommended::Recommended::builtin().unwrap().unwrap();
    let want = rec.best(&reddiff::operators::Task { kind: TaskKind::InpaintBox, seed: 0 }, 0.0).expect("a box-inpainting setting").clone();
    let auto = Restorer::builder().build(gpu.clone()).unwrap();
    assert_eq!((auto.method(), auto.options().steps), (want.method, want.steps));
    let paper = Restorer::builder().paper_defaults().build(gpu.clone()).unwrap();
    assert_eq!((paper.method(), paper.options().steps, paper.options().lambda), (reddiff::solvers::Method::RedDiff, 1000, 0.25));
    let hdr = Restorer::builder().method(reddiff::solvers::Method::DiffPir).task(TaskKind::Hdr);
    for bad in [Restorer::builder().steps(0), Restorer::builder().lr(-1.0), Restorer::builder().sigma_y(2.0), hdr] {
        assert!(matches!(bad.build(gpu.clone()), Err(Error::Invalid { .. })));
    }
}
