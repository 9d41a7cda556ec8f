//! JPEG artifact removal: the quantisation tables are libjpeg's, the GPU codec (4:4:4) agrees with a real
//! JPEG encoder and decoder (the `image` crate, which writes 4:4:4) at the same quality, 4:2:0 loses more,
//! and the gradient is the exact transpose of the codec's linear part. (Restoration quality: tests/e2e.rs.)

mod common;

use std::path::PathBuf;

use common::{gpu, Rng};
use reddiff::image::Image;
use reddiff::metrics::psnr;
use reddiff::operators::{quantisation_tables, Jpeg, Operator};
use reddiff::restore::{to_images, to_tensor};

const IMAGES: &[&str] = &["google-1f466.png", "google-1f469-1f3fd-200d-2696-fe0f.png", "twitter-1f467-1f3fc.png", "twitter-1f481-1f3fe.png"];

fn samples() -> Vec<Image> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/samples");
    IMAGES.iter().map(|n| Image::read(&dir.join(n)).unwrap()).collect()
}

#[test]
fn tables_follow_libjpeg_scaling() {
    let t50 = quantisation_tables(50).unwrap();
    assert_eq!((t50[0], t50[63], t50[64], t50[127]), (16.0, 99.0, 17.0, 99.0), "quality 50 is the base table");
    assert!(quantisation_tables(100).unwrap().iter().all(|v| *v == 1.0));
    let t10 = quantisation_tables(10).unwrap();
    assert_eq!((t10[0], t10[1], t10[63]), (80.0, 55.0, 255.0), "quality 10 scales by 5 and clamps at 255");
    assert!(quantisation_tables(0).is_err() && quantisation_tables(101).is_err());
}

#[test]
fn gpu_codec_agrees_with_a_real_jpeg_codec() {
    let g = gpu();
    for qf in [10, 50, 90] {
        let jpeg = Jpeg::new(g, qf, false).unwrap();
        let sub = Jpeg::new(g, qf, true).unwrap();
        for im in samples() {
            let y = jpeg.forward(g, &to_tensor(g, std::slice::from_ref(&im)).unwrap()).unwrap();
            let ours = reddiff::gpu::block_on(to_images(g, &y, false)).unwrap().remove(0);
            let bytes = {
                let mut out = std::io::Cursor::new(Vec::new());
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, qf as u8).encode(&im.to_u8(), 32, 32, image::ExtendedColorType::Rgb8).unwrap();
                out.into_inner()
            };
            let theirs = Image::decode("ref.jpg".as_ref(), &bytes).unwrap();
            let agree = psnr(&theirs, &ours).unwrap();
            let (q_ours, q_theirs) = (psnr(&im, &ours).unwrap(), psnr(&im, &theirs).unwrap());
            let y420 = sub.forward(g, &to_tensor(g, std::slice::from_ref(&im)).unwrap()).unwrap();
            let q420 = psnr(&im, &reddiff::gpu::block_on(to_images(g, &y420, false)).unwrap()[0]).unwrap();
            eprintln!(
                "QF {qf}: ours vs image crate {agree:.1} dB; vs the original: ours {q_ours:.2} dB, image crate {q_theirs:.2} dB, ours 4:2:0 {q420:.2} dB"
            );
            assert!(q420 < q_ours + 0.5, "QF {qf}: 4:2:0 should not beat 4:4:4 ({q420:.2} vs {q_ours:.2} dB)");
            assert!(agree > 30.0, "QF {qf}: the GPU codec and a real JPEG differ ({agree:.1} dB)");
            assert!((q_ours - q_theirs).abs() < 1.5, "QF {qf}: quality differs: ours {q_ours:.2} dB, real {q_theirs:.2} dB");
        }
    }
}

#[test]
fn gradient_is_the_transpose_of_the_linear_codec() {
    let g = gpu();
    for subsample in [true, false] {
        let jpeg = Jpeg::new(g, 25, subsample).unwrap();
        let shape = [2, 3, 32, 48];
        let n: usize = shape.iter().product();
        let mut r = Rng::new(3);
        let x = g.upload(&shape, &r.vec(n).iter().map(|v| 0.8 * v).collect::<Vec<_>>()).unwrap();
        let y = g.upload(&shape, &r.vec(n)).unwrap();
        let v: Vec<f32> = r.vec(n).iter().map(|t| 0.4 * t).collect();
        let grad = jpeg.grad(g, &x, &g.upload(&shape, &y.read(g).unwrap()).unwrap()).unwrap().read(g).unwrap();
        // <grad, v> = <(H(x) - y)/M, A v> with A v = lin(v) - lin(0) (lin: the codec without rounding or clamping).
        let hx = jpeg.forward(g, &x).unwrap().read(g).unwrap();
        let lin = |d: &[f32]| jpeg.codec(g, &g.upload(&shape, d).unwrap(), false).unwrap().read(g).unwrap();
        let (av, a0) = (lin(&v), lin(&vec![0.0; n]));
        let yv = y.read(g).unwrap();
        let lhs: f64 = grad.iter().zip(&v).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
        let rhs: f64 = (0..n).map(|i| ((hx[i] - yv[i]) as f64 / n as f64) * ((av[i] - a0[i]) as f64)).sum();
        assert!((lhs - rhs).abs() <= 1e-4 * rhs.abs().max(1e-6), "<grad, v> = {lhs:.6e} but <r, A v> = {rhs:.6e}");
        // The linear codec without rounding is nearly the identity for luma: a check that the DCT pair cancels.
        let gray: Vec<f32> = (0..n).map(|i| ((i % 48) as f32 / 48.0) - 0.5).collect();
        let back = lin(&gray);
        let err = back.iter().zip(&gray).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-4, "gray images pass the unrounded codec unchanged (error {err})");
    }
}
