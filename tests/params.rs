//! Every kernel's Rust parameter block matches its WGSL `struct` by naga reflection: after running a
//! workload that touches every kernel family (both kernel profiles, every method, most tasks, tiles, DDIM),
//! each recorded layout ([`Gpu::param_layouts`]) must put word i at byte offset 4·i of the shader's uniform
//! struct with the same scalar type — so a field added, dropped, reordered between types or mistyped on one
//! side fails here, not as silently wrong numbers.

use reddiff::gpu::{ConvKernel, GpuOptions, KernelProfile, ParamKind};
use reddiff::image::Image;
use reddiff::model::{Schedule, Unet};
use reddiff::operators::{ConvRoute, Convolution, Operator, Task, TaskKind};
use reddiff::restore::{restore_synthetic, Problem};
use reddiff::solvers::{ddim_sample, DdimOptions, Method, RedDiffOptions, UnetPrior};
use reddiff::{ops, Gpu};

/// Flattens the type `ty` at byte offset `base` into (offset, kind) words.
fn flatten(module: &naga::Module, ty: naga::Handle<naga::Type>, base: u32, out: &mut Vec<(u32, ParamKind)>) {
    let scalar = |s: naga::Scalar| match (s.kind, s.width) {
        (naga::ScalarKind::Uint, 4) => ParamKind::U32,
        (naga::ScalarKind::Sint, 4) => ParamKind::I32,
        (naga::ScalarKind::Float, 4) => ParamKind::F32,
        other => panic!("parameter word of type {other:?}"),
    };
    match &module.types[ty].inner {
        naga::TypeInner::Scalar(s) => out.push((base, scalar(*s))),
        naga::TypeInner::Vector { size, scalar: s } => {
            for i in 0..*size as u32 {
                out.push((base + 4 * i, scalar(*s)));
            }
        }
        naga::TypeInner::Array { base: elem, size: naga::ArraySize::Constant(n), stride } => {
            for i in 0..n.get() {
                flatten(module, *elem, base + i * stride, out);
            }
        }
        naga::TypeInner::Struct { members, .. } => {
            for m in members {
                flatten(module, m.ty, base + m.offset, out);
            }
        }
        other => panic!("unexpected parameter type {other:?}"),
    }
}

/// The (offset, kind) words of the uniform struct at group 0, binding 0 of `source`.
fn wgsl_layout(name: &str, source: &str) -> Vec<(u32, ParamKind)> {
    let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (_, var) = module
        .global_variables
        .iter()
        .find(|(_, v)| v.space == naga::AddressSpace::Uniform && v.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == 0))
        .unwrap_or_else(|| panic!("{name}.wgsl has no uniform at group 0, binding 0"));
    let mut out = Vec::new();
    flatten(&module, var.ty, 0, &mut out);
    out
}

fn run_everything(gpu: &Gpu, tiled_profile: bool) {
    let unet = Unet::builtin(gpu).expect("built-in model");
    let x = ops::normal(gpu, &[2, 3, 32, 32], 1, 0, 0.0, 1.0).unwrap();
    let t = ops::fill(gpu, &[2], 500.0).unwrap();
    let v = ops::normal(gpu, &[2, 3, 32, 32], 2, 0, 0.0, 1.0).unwrap();
    unet.forward(gpu, &x, &t, None).unwrap();
    unet.vjp(gpu, &x, &t, None, &v).unwrap();
    if tiled_profile {
        return;
    }
    let prior = UnetPrior { unet: &unet, class: None };
    ddim_sample(gpu, &prior, &x, &Schedule::ddpm(), DdimOptions { steps: 2, eta: 1.0, seed: 0 }, |_, _| {}).unwrap();
    let img = |size: usize| Image::new(3, size, size, (0..3 * size * size).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect()).unwrap();
    let runs: &[(&str, Method, usize)] = &[
        ("inpaint-box", Method::RedDiff, 32),
        ("inpaint-random", Method::DiffPir, 32),
        ("sr4", Method::RedDiff, 32),
        ("sr2", Method::Ddrm, 32),
        ("sr2", Method::Dps, 32),
        ("sr2", Method::Pgdm, 32),
        ("deblur-gauss", Method::DiffPir, 32),
        ("deblur-motion", Method::RedDiff, 32),
        ("bicubic4", Method::RedDiff, 32),
        ("color", Method::Ddrm, 32),
        ("denoise", Method::RedDiff, 32),
        ("hdr", Method::RedDiff, 32),
        ("phase", Method::Dps, 32),
        ("jpeg=10", Method::RedDiff, 32),
        ("inpaint-box", Method::RedDiff, 48),
    ];
    for &(task, method, size) in runs {
        let task = Task { kind: task.parse::<TaskKind>().unwrap(), seed: 0 };
        let problem = Problem {
            opts: RedDiffOptions { steps: 2, lr: task.default_lr(), image_keys: vec![7], ..RedDiffOptions::default() },
            task,
            sigma_y: 0.05,
            class: None,
            method,
        };
        reddiff::gpu::block_on(restore_synthetic(gpu, &unet, &problem, &[img(size)], |_| true))
            .unwrap_or_else(|e| panic!("{} with {}: {e}", problem.task.kind_name(), method.label()));
    }
}

#[test]
fn every_parameter_block_matches_its_wgsl_struct() {
    let mut layouts = Vec::new();
    for (profile, tiled) in [(KernelProfile::RegisterBlocked, false), (KernelProfile::Tiled, true)] {
        let gpu = reddiff::gpu::block_on(Gpu::with_options(GpuOptions { profile: Some(profile), ..GpuOptions::default() })).expect("gpu");
        run_everything(&gpu, tiled);
        if !tiled {
            // The plain 3x3 kernel, which the workload skips where subgroups share the weights.
            let x = ops::fill(&gpu, &[1, 2, 5, 5], 1.0).expect("x");
            let w = ops::pack_conv(&gpu, &ops::fill(&gpu, &[3, 2, 3, 3], 0.5).expect("w"), false).expect("packed");
            ops::conv2d_with(&gpu, &x, &w, ops::Conv2d::same(3), &ops::Epilogue::bias(None), Some(ConvKernel::RegisterBlocked)).expect("conv3x3");
            // Winograd (the built-in prior's layers are too small to take it by default).
            if gpu.shared_weights() {
                ops::conv2d_with(&gpu, &x, &w, ops::Conv2d::same(3), &ops::Epilogue::bias(None), Some(ConvKernel::Winograd)).expect("winograd");
            }
            // The FFT route of blur convolutions (the workload's images are small enough to go direct).
            let blur = Convolution::with_route(&gpu, &[0.1; 9], 3, 8, 8, ConvRoute::Fft, "blur").expect("fft blur");
            blur.adjoint(&gpu, &ops::fill(&gpu, &[1, 3, 8, 8], 1.0).expect("y")).expect("fft convolution");
        }
        layouts.extend(gpu.param_layouts());
    }
    let mut failures = Vec::new();
    for l in &layouts {
        let shader = reddiff::shaders::ALL.iter().find(|s| s.name == l.shader).expect("a known shader");
        let want = wgsl_layout(l.shader, shader.source);
        let have: Vec<(u32, ParamKind)> = l.kinds.iter().enumerate().map(|(i, k)| (4 * i as u32, *k)).collect();
        if have != want {
            failures.push(format!("{}.wgsl {}: Rust {:?}\n    WGSL {:?}", l.shader, l.entry, have, want));
        }
    }
    assert!(failures.is_empty(), "parameter blocks that differ from the WGSL struct:\n{}", failures.join("\n"));
    // Coverage: every shader was checked, except the cooperative-matrix ones (no CI adapter has tensor cores;
    // their parameter blocks are the tiled GEMM's, see conv.rs).
    let unchecked: Vec<&str> = reddiff::shaders::ALL.iter().map(|s| s.name).filter(|n| !layouts.iter().any(|l| l.shader == *n)).collect();
    assert!(unchecked.iter().all(|n| ["conv_coop", "conv_splitk"].contains(n)), "shaders the workload did not launch: {unchecked:?}");
    eprintln!("{} kernel layouts checked over {} shaders; not launched here: {unchecked:?}", layouts.len(), reddiff::shaders::ALL.len() - unchecked.len());
}
