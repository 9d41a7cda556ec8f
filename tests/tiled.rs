//! Images larger than the model: the tile grid, the tile kernels and their transposes, the tiled
//! vector-Jacobian product, and RED-diff (ΠGDM on one) on whole images with the built-in 32×32 prior applied on
//! overlapping tiles (64×64 mosaics and a non-square 64×96 one of held-out samples): the restorations
//! beat H⁺y, and the error field jumps no more across tile edges than elsewhere (no seams).

mod common;

use std::path::PathBuf;

use common::{gpu, Rng};
use reddiff::image::{Fit, Image};
use reddiff::metrics::psnr;
use reddiff::model::Unet;
use reddiff::operators::{Task, TaskKind};
use reddiff::ops::{self, TileGrid};
use reddiff::restore::{fit_input, planned_size, restore_image, restore_synthetic, restored_size, Problem, Window};
use reddiff::solvers::{Method, RedDiffOptions};

/// The sizes a run makes (what the CLI prints and the web page shows before a run) are those of the image
/// [`fit_input`] makes, for clean images and for measurements, whatever the task's block: the result has the
/// input's size (×f for SR measurements), the solver works at least at the model's size, in multiples of the
/// task's block, with the image at a block-aligned offset.
#[test]
fn planned_sizes_are_what_fitting_gives() {
    let tasks = ["inpaint-box", "sr4", "bicubic2", "jpeg=10", "color", "deblur-gauss"];
    for name in tasks {
        let task = Task { kind: name.parse::<TaskKind>().unwrap(), seed: 0 };
        for (h, w) in [(5, 5), (20, 20), (32, 64), (8, 16), (50, 70), (33, 47), (200, 31), (3, 40)] {
            for measured in [false, true] {
                for fit in [Fit::Tile, Fit::Crop, Fit::Resize] {
                    let img = Image::new(3, h, w, (0..3 * h * w).map(|i| (i % 7) as f32 / 7.0).collect()).unwrap();
                    let fitted = fit_input(&task, &img, 32, fit, measured).unwrap();
                    let im = &fitted.image;
                    let working = if measured { restored_size(&task, (im.height, im.width)) } else { (im.height, im.width) };
                    let result = fitted.window.map(|w| (w.height, w.width)).unwrap_or(working);
                    let plan = planned_size(&task, h, w, 32, fit, measured).unwrap();
                    let what = format!("{name} {h}x{w} measured {measured} {fit:?}");
                    assert_eq!((plan.result, plan.working), (result, working), "{what}");
                    assert!(working.0 >= 32 && working.1 >= 32, "{what}: works at {working:?}, smaller than the model");
                    // The input's block: the SR factor on a clean image, none on an SR measurement, 16 for JPEG.
                    let sr = matches!(task.kind, TaskKind::Sr(_) | TaskKind::Bicubic(_));
                    let block = if measured && sr { 1 } else { task.size_multiple() };
                    if fit == Fit::Tile {
                        assert_eq!(result, if measured { restored_size(&task, (h, w)) } else { (h, w) }, "{what}: the input's size");
                        assert!(im.height % block == 0 && im.width % block == 0, "{what}: {}x{} not in blocks of {block}", im.width, im.height);
                    }
                    if let Some(win) = fitted.window {
                        let s = working.0 / im.height;
                        assert!((win.top / s) % block == 0 && (win.left / s) % block == 0, "{what}: offset off the block grid");
                        assert_eq!(win.outer, working, "{what}");
                        // The kept part is the input's centre, unchanged.
                        let (kh, kw) = (win.height / (working.0 / im.height), win.width / (working.1 / im.width));
                        let kept = img.crop((h - kh) / 2, (w - kw) / 2, kh, kw);
                        assert_eq!(im.crop(win.top / s, win.left / s, kh, kw), kept, "{what}: the window holds the image");
                    }
                }
            }
        }
    }
    let plan = |name: &str, h, w, measured| {
        let p = planned_size(&Task { kind: name.parse().unwrap(), seed: 0 }, h, w, 32, Fit::Tile, measured).unwrap();
        (p.result, p.working)
    };
    assert_eq!(plan("sr4", 8, 16, true), ((32, 64), (32, 64)), "a 16x8 measurement of x4 SR");
    assert_eq!(plan("sr4", 50, 70, false), ((50, 70), (52, 72)), "a clean image reflected out to multiples of 4");
    assert_eq!(plan("jpeg=10", 50, 70, true), ((50, 70), (64, 80)), "JPEG blocks of 16");
    assert_eq!(plan("jpeg=10", 18, 20, true), ((18, 20), (32, 32)), "a JPEG smaller than the model");
    assert_eq!(plan("sr4", 5, 6, true), ((20, 24), (32, 32)), "a 6x5 measurement: 24x20, worked on at the model's size");
    assert_eq!(plan("inpaint-box", 20, 45, false), ((20, 45), (32, 45)), "one short side reflected out");
    assert_eq!(plan("inpaint-box", 33, 47, false), ((33, 47), (33, 47)), "kept whole");
    assert!(Fit::None.size(33, 47, 32, 1).is_err(), "fit none refuses another size");
}

/// Reflection without repeating the border pixel, any distance out; cutting the window gives the image back.
#[test]
fn reflected_padding_mirrors_the_image() {
    let img = Image::new(1, 2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let p = img.pad_reflect(1, 2, 4, 9);
    #[rustfmt::skip]
    let want = [
        6.0, 5.0, 4.0, 5.0, 6.0, 5.0, 4.0, 5.0, 6.0,
        3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0,
        6.0, 5.0, 4.0, 5.0, 6.0, 5.0, 4.0, 5.0, 6.0,
        3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0,
    ];
    assert_eq!(p.data, want);
    let one = Image::new(1, 1, 1, vec![7.0]).unwrap().pad_reflect(2, 0, 5, 3);
    assert!(one.data.iter().all(|&v| v == 7.0), "a 1-pixel image repeats");
    let win = Window { top: 1, left: 2, height: 2, width: 3, outer: (4, 9) };
    assert_eq!(win.cut(&p), img);
}

/// Images with a side shorter than the model's are restored at their own size (reflected out to the model's
/// size and cut back): a 20x45 clean image with 70 % of its pixels missing, a 6x5 photo as the measurement of x4 SR
/// (24x20 result), and a painted mask of the image's size.
#[test]
fn images_smaller_than_the_model_keep_their_size() {
    let g = gpu();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let unet = Unet::load(g, &root.join("models/emoji32")).unwrap();
    let m = mosaic(1, 2);
    let small = m.crop(6, 10, 20, 45);
    let problem = |kind: TaskKind| {
        let task = Task { kind, seed: 0 };
        Problem { opts: RedDiffOptions { steps: 20, lr: task.default_lr(), ..Default::default() }, task, sigma_y: 0.0, class: None, method: Method::RedDiff }
    };
    let run = |p: &Problem, img: &Image, measured| reddiff::gpu::block_on(restore_image(g, &unet, p, img, Fit::Tile, measured, |_| true)).unwrap();

    let (out, truth) = run(&problem(TaskKind::InpaintRandom), &small, false);
    let truth = truth.unwrap();
    assert_eq!(truth, small, "the clean image as given");
    let (r, pinv) = (&out.result[0], out.pinv[0].as_ref().unwrap());
    assert_eq!(((r.height, r.width), (pinv.height, pinv.width), (out.measurement[0].height, out.measurement[0].width)), ((20, 45), (20, 45), (20, 45)));
    let (db_pinv, db) = (psnr(&truth, pinv).unwrap(), psnr(&truth, r).unwrap());
    eprintln!("20x45 random inpainting (70 % missing) reflected out to 32x45: H+y {db_pinv:.2} dB, RED-diff {db:.2} dB");
    assert!(db > db_pinv + 1.0, "RED-diff {db:.2} dB does not beat H+y {db_pinv:.2} dB");

    // x4 SR of a 6x5 photo: the result's 4x4 block means give the photo back.
    let low = Image::new(3, 5, 6, (0..3 * 5 * 6).map(|i| ((i * 37) % 19) as f32 / 10.0 - 0.9).collect()).unwrap();
    let (out, truth) = run(&problem(TaskKind::Sr(4)), &low, true);
    assert!(truth.is_none());
    let r = &out.result[0];
    assert_eq!((r.height, r.width), (20, 24));
    assert_eq!(out.measurement[0], low, "the measurement is the photo");
    let mut worst = 0f32;
    for c in 0..3 {
        for y in 0..5 {
            for x in 0..6 {
                let mean = (0..16).map(|k| r.data[(c * 20 + 4 * y + k / 4) * 24 + 4 * x + k % 4]).sum::<f32>() / 16.0;
                worst = worst.max((mean - low.data[(c * 5 + y) * 6 + x]).abs());
            }
        }
    }
    eprintln!("6x5 measurement of x4 SR: 24x20 result, block means within {worst:.3} of the photo");
    assert!(worst < 0.25, "the x4 result does not average back to the photo: {worst}");

    // A painted mask of the image's size (1 = keep): reflected with the image.
    let mask: Vec<f32> = (0..20 * 45).map(|p| if (8..12).contains(&(p / 45)) { 0.0 } else { 1.0 }).collect();
    let (out, _) = run(&problem(TaskKind::InpaintMaskData(mask.clone())), &small, true);
    let r = &out.result[0];
    assert_eq!((r.height, r.width), (20, 45));
    let short = reddiff::gpu::block_on(restore_image(g, &unet, &problem(TaskKind::InpaintMaskData(mask[1..].to_vec())), &small, Fit::Tile, true, |_| true));
    assert!(short.is_err(), "a mask of another size is refused");
}

#[test]
fn grids_cover_the_image_with_the_overlap() {
    for (h, w) in [(32, 32), (33, 40), (96, 96), (64, 96), (1000, 333)] {
        let g = TileGrid::new(h, w, 32, 8).unwrap();
        for (o, len) in [(&g.rows, h), (&g.cols, w)] {
            assert_eq!(o[0], 0);
            assert_eq!(*o.last().unwrap() + 32, len, "last tile ends at the border");
            for p in o.windows(2) {
                assert!(p[1] > p[0] && p[1] - p[0] <= 24, "gap {} in {o:?}", p[1] - p[0]);
            }
        }
    }
    assert!(TileGrid::new(31, 64, 32, 8).is_err(), "an image smaller than a tile has no grid");
    assert!(TileGrid::new(64, 64, 32, 32).is_err(), "overlap must be below the tile size");
}

#[test]
fn blending_all_tiles_back_gives_the_image() {
    let g = gpu();
    let (n, c, h, w) = (2, 3, 70, 90);
    let data = Rng::new(7).vec(n * c * h * w);
    let x = g.upload(&[n, c, h, w], &data).unwrap();
    let grid = TileGrid::new(h, w, 32, 8).unwrap();
    let origins = grid.upload(g).unwrap();
    let acc = g.zeros(&[n, c, h, w]).unwrap();
    // Two passes of unequal size, as the tiled denoiser makes them.
    let split = grid.tiles() / 2 + 1;
    for (k0, k) in [(0, split), (split, grid.tiles() - split)] {
        let tiles = ops::extract_tiles(g, &grid, &origins, &x, k0, k).unwrap();
        assert_eq!(tiles.shape(), &[n * k, c, 32, 32]);
        let t = tiles.read(g).unwrap();
        // Spot-check one tile against the image: image 1, tile k0 + 1.
        let kk = k0 + 1;
        let (oy, ox) = (grid.rows[kk / grid.cols.len()], grid.cols[kk % grid.cols.len()]);
        for (y, xx) in [(0, 0), (5, 31), (31, 17)] {
            let want = data[((3 + 2) * h + oy + y) * w + ox + xx];
            assert_eq!(t[((k + 1) * c + 2) * 1024 + y * 32 + xx], want);
        }
        ops::blend_tiles(g, &grid, &origins, &tiles, k0, k, &acc).unwrap();
    }
    let back = acc.read(g).unwrap();
    let err = back.iter().zip(&data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(err < 1e-5, "blended tiles differ from the image by {err}");
}

/// A mosaic of held-out samples, `rows`×`cols` of 32×32.
/// The weighted extraction is the transpose of the blend, the plain blend the transpose of the extraction:
/// ⟨blend(T), v⟩ = ⟨T, extract_weighted(v)⟩ and ⟨extract(x), T⟩ = ⟨x, add(T)⟩ for random x, v, T.
#[test]
fn tile_kernels_have_exact_transposes() {
    let g = gpu();
    let (n, c, h, w) = (2, 3, 45, 70);
    let grid = TileGrid::new(h, w, 32, 8).unwrap();
    let origins = grid.upload(g).unwrap();
    let mut r = Rng::new(11);
    let (k0, k) = (1, grid.tiles() - 2);
    let x = g.upload(&[n, c, h, w], &r.vec(n * c * h * w)).unwrap();
    let tiles = g.upload(&[n * k, c, 32, 32], &r.vec(n * k * c * 1024)).unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
    let (xs, ts) = (x.read(g).unwrap(), tiles.read(g).unwrap());
    let blended = g.zeros(&[n, c, h, w]).unwrap();
    ops::blend_tiles(g, &grid, &origins, &tiles, k0, k, &blended).unwrap();
    let lhs = dot(&blended.read(g).unwrap(), &xs);
    let rhs = dot(&ts, &ops::extract_tiles_weighted(g, &grid, &origins, &x, k0, k).unwrap().read(g).unwrap());
    assert!((lhs - rhs).abs() <= 1e-5 * lhs.abs().max(1.0), "blend: {lhs} vs its transpose {rhs}");
    let added = g.zeros(&[n, c, h, w]).unwrap();
    ops::add_tiles(g, &grid, &origins, &tiles, k0, k, &added).unwrap();
    let lhs = dot(&ops::extract_tiles(g, &grid, &origins, &x, k0, k).unwrap().read(g).unwrap(), &ts);
    let rhs = dot(&xs, &added.read(g).unwrap());
    assert!((lhs - rhs).abs() <= 1e-5 * lhs.abs().max(1.0), "extract: {lhs} vs its transpose {rhs}");
}

/// The tiled denoiser's vector-Jacobian product against central finite differences of its ε on a 48×40
/// image (4 tiles in 3 passes of the built-in prior), as `tests/vjp.rs` checks the plain network.
#[test]
fn tiled_vjp_agrees_with_finite_differences() {
    use reddiff::solvers::{Denoiser, TiledDenoiser, UnetPrior};
    let g = gpu();
    let unet = Unet::load(g, &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/emoji32")).unwrap();
    let net = UnetPrior { unet: &unet, class: None };
    let tiled = TiledDenoiser::new(&net, 2).unwrap();
    let shape = [1usize, 3, 40, 48];
    let n: usize = shape.iter().product();
    let mut r = Rng::new(5);
    let (x, v) = (r.vec(n), r.vec(n));
    let tape = tiled.eps_tape(g, &g.upload(&shape, &x).unwrap(), 400).unwrap();
    let plain = tiled.eps(g, &g.upload(&shape, &x).unwrap(), 400).unwrap().read(g).unwrap();
    let taped = tape.eps.read(g).unwrap();
    let gap = plain.iter().zip(&taped).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(gap < 1e-5, "the tape's eps differs from eps by {gap}");
    let grad = tape.vjp(g, &g.upload(&shape, &v).unwrap()).unwrap().read(g).unwrap();
    // Two passes of two tiles, both kept within the default budget; with none, the product recomputes the
    // passes' activations — the same product, every time.
    let mut lean = TiledDenoiser::new(&net, 2).unwrap();
    lean.tape_budget = 0;
    let lean_tape = lean.eps_tape(g, &g.upload(&shape, &x).unwrap(), 400).unwrap();
    for round in 0..2 {
        let again = lean_tape.vjp(g, &g.upload(&shape, &v).unwrap()).unwrap().read(g).unwrap();
        let gap = grad.iter().zip(&again).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let scale = grad.iter().fold(0f32, |m, a| m.max(a.abs()));
        eprintln!("recomputed product {round}: largest difference {gap:.1e} (largest entry {scale:.3})");
        assert!(gap <= 1e-6 * scale, "recomputed product {round} differs by {gap}");
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
    let h = 1e-2f32;
    for dir in 0..2 {
        let u = r.vec(n);
        let eps_at = |sign: f32| {
            let xs: Vec<f32> = x.iter().zip(&u).map(|(a, b)| a + sign * h * b).collect();
            tiled.eps(g, &g.upload(&shape, &xs).unwrap(), 400).unwrap().read(g).unwrap()
        };
        let fd = (dot(&v, &eps_at(1.0)) - dot(&v, &eps_at(-1.0))) / (2.0 * h as f64);
        let an = dot(&grad, &u);
        let rel = (fd - an).abs() / an.abs().max(1e-6);
        eprintln!("tiled direction {dir}: finite difference {fd:.5}, VJP {an:.5}, relative {rel:.2e}");
        assert!(rel < 1e-2, "direction {dir}: VJP {an} vs finite difference {fd}");
    }
}

fn mosaic(rows: usize, cols: usize) -> Image {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let (h, w) = (32 * rows, 32 * cols);
    let mut data = vec![0f32; 3 * h * w];
    for (i, f) in files.iter().take(rows * cols).enumerate() {
        let im = Image::read(f).unwrap();
        let (oy, ox) = (32 * (i / cols), 32 * (i % cols));
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    data[(c * h + oy + y) * w + ox + x] = im.data[(c * 32 + y) * 32 + x];
                }
            }
        }
    }
    Image::new(3, h, w, data).unwrap()
}

/// Seam visibility: the mean jump of the error field e = a − b between neighbouring pixels across the lines
/// where a tile starts or ends, and across all other lines (both directions), counting only pixel pairs
/// inside `region(y, x)`. Seams make the first larger; content edges affect both alike.
fn error_jumps(grid: &TileGrid, a: &Image, b: &Image, region: impl Fn(usize, usize) -> bool) -> (f64, f64) {
    let (h, w) = (a.height, a.width);
    let cuts = |o: &[usize], len: usize| -> Vec<bool> {
        let mut v = vec![false; len];
        for &s in o {
            for p in [s, s + grid.size] {
                if p > 0 && p < len {
                    v[p] = true;
                }
            }
        }
        v
    };
    let (cy, cx) = (cuts(&grid.rows, h), cuts(&grid.cols, w));
    let e = |c: usize, y: usize, x: usize| (a.data[(c * h + y) * w + x] - b.data[(c * h + y) * w + x]) as f64;
    let (mut sb, mut nb, mut si, mut ni) = (0f64, 0usize, 0f64, 0usize);
    let mut add = |on_cut: bool, d: f64| {
        if on_cut {
            sb += d;
            nb += 1;
        } else {
            si += d;
            ni += 1;
        }
    };
    for c in 0..3 {
        for y in 0..h {
            for x in 1..w {
                if region(y, x) && region(y, x - 1) {
                    add(cx[x], (e(c, y, x) - e(c, y, x - 1)).abs());
                }
            }
        }
        for y in 1..h {
            for x in 0..w {
                if region(y, x) && region(y - 1, x) {
                    add(cy[y], (e(c, y, x) - e(c, y - 1, x)).abs());
                }
            }
        }
    }
    (sb / nb.max(1) as f64, si / ni.max(1) as f64)
}

/// Restores a `rows`×`cols` mosaic of 32×32 samples on tiles; the result must beat H⁺y by `margin` dB.
fn restore_mosaic(rows: usize, cols: usize, kind: TaskKind, steps: usize, method: reddiff::solvers::Method, margin: f64) {
    let g = gpu();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let unet = Unet::load(g, &root.join("models/emoji32")).unwrap();
    let truth = mosaic(rows, cols);
    let task = Task { kind: kind.clone(), seed: 0 };
    let problem = Problem { opts: RedDiffOptions { steps, lr: task.default_lr(), ..Default::default() }, task, sigma_y: 0.0, class: None, method };
    let out = reddiff::gpu::block_on(restore_synthetic(g, &unet, &problem, std::slice::from_ref(&truth), |_| true)).unwrap();
    let result = &out.result[0];
    assert_eq!((result.height, result.width), (truth.height, truth.width), "the whole image is restored");
    let (pinv, ours) = (psnr(&truth, out.pinv[0].as_ref().unwrap()).unwrap(), psnr(&truth, result).unwrap());
    let grid = TileGrid::new(truth.height, truth.width, 32, 8).unwrap();
    // Inpainting: only the hole (the centre half) is restored; elsewhere the error is ~0 by construction.
    let (h, w) = (truth.height, truth.width);
    let hole = |y: usize, x: usize| !matches!(kind, TaskKind::InpaintBox) || ((h / 4..3 * h / 4).contains(&y) && (w / 4..3 * w / 4).contains(&x));
    let (border, inside) = error_jumps(&grid, &truth, result, hole);
    eprintln!(
        "{kind:?} {}x{} ({} tiles): H+y {pinv:.2} dB, {} {ours:.2} dB; mean error jump across tile edges {border:.4}, elsewhere {inside:.4}",
        truth.width,
        truth.height,
        grid.tiles(),
        method.label()
    );
    assert!(ours >= pinv + margin, "{kind:?}: tiled {} {ours:.2} dB does not beat H+y {pinv:.2} dB by {margin} dB", method.label());
    assert!(border <= 1.25 * inside, "{kind:?}: the error jumps by {border:.4} across tile edges against {inside:.4} elsewhere: seams");
}

#[test]
fn sr4_of_a_64x64_image_on_tiles() {
    restore_mosaic(2, 2, TaskKind::Sr(4), 20, reddiff::solvers::Method::RedDiff, 1.0);
}

#[test]
fn box_inpainting_of_a_non_square_image_on_tiles() {
    restore_mosaic(2, 3, TaskKind::InpaintBox, 60, reddiff::solvers::Method::RedDiff, 1.0);
}

/// ΠGDM differentiates the network through the tiles (the tiled vector-Jacobian product); 20 of its 100
/// steps, so a smaller margin.
#[test]
fn pgdm_box_inpainting_on_tiles() {
    restore_mosaic(2, 2, TaskKind::InpaintBox, 20, reddiff::solvers::Method::Pgdm, 0.5);
}

/// `Gpu::memory_in_use` (what the tiled product's memory budget measures) counts the buffers tensors hold,
/// not the pool's free ones; a device of its own, so other tests' tensors do not move the count.
#[test]
fn memory_in_use_counts_held_buffers_only() {
    let g = reddiff::Gpu::new().unwrap();
    let base = g.memory_in_use();
    let a = g.zeros(&[1000, 1000]).unwrap();
    assert_eq!(g.memory_in_use() - base, 4_000_000, "a 4 MB tensor");
    drop(a);
    assert_eq!(g.memory_in_use(), base, "a dropped tensor's buffer is free, not in use");
    let held = g.memory().0;
    let b = g.zeros(&[1000, 1000]).unwrap();
    assert_eq!(g.memory().0, held, "the free buffer is reused");
    assert_eq!(g.memory_in_use() - base, 4_000_000);
    drop(b);
}

/// `TileGrid`'s fields are public: a grid made by hand whose tiles run past the image must neither panic nor
/// write outside it (the upload's tables and the blend's rows stop at the image's border).
#[test]
fn a_hand_made_grid_past_the_image_does_not_panic() {
    let g = gpu();
    let grid = TileGrid { size: 32, height: 40, width: 40, rows: vec![0, 30], cols: vec![0, 30] };
    let origins = grid.upload(g).unwrap();
    let tiles = g.upload(&[4, 3, 32, 32], &vec![1.0; 4 * 3 * 1024]).unwrap();
    let acc = g.zeros(&[1, 3, 40, 40]).unwrap();
    ops::blend_tiles(g, &grid, &origins, &tiles, 0, 4, &acc).unwrap();
    // Tiles of ones blend to ones wherever a tile covers the image (here: everywhere).
    let worst = acc.read(g).unwrap().iter().fold(0f32, |m, v| m.max((v - 1.0).abs()));
    assert!(worst < 1e-5, "blending tiles of ones gave values {worst} away from 1");
}
