//! PSNR and SSIM against scikit-image's values on committed images (tests/fixtures/metrics, made by
//! tools/metrics_fixture.py).

use std::path::PathBuf;

use reddiff::image::Image;
use reddiff::metrics::{psnr, ssim};

#[test]
fn psnr_and_ssim_match_scikit_image() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics");
    let text = std::fs::read_to_string(dir.join("values.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 3);
    for c in cases {
        let clean = Image::read(&dir.join(c["clean"].as_str().unwrap())).unwrap();
        let deg = Image::read(&dir.join(c["degraded"].as_str().unwrap())).unwrap();
        let (p, s) = (psnr(&clean, &deg).unwrap(), ssim(&clean, &deg).unwrap());
        let (wp, ws) = (c["psnr"].as_f64().unwrap(), c["ssim"].as_f64().unwrap());
        eprintln!("{}: psnr {p:.6} (skimage {wp:.6}), ssim {s:.6} (skimage {ws:.6})", c["degraded"]);
        assert!((p - wp).abs() < 1e-4, "psnr {p} vs {wp}");
        assert!((s - ws).abs() < 1e-4, "ssim {s} vs {ws}");
    }
    let a = Image::read(&dir.join(cases[0]["clean"].as_str().unwrap())).unwrap();
    assert!(psnr(&a, &a).unwrap().is_infinite());
    assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
    assert!(psnr(&a, &a.resize(16, 16)).is_err());
}
