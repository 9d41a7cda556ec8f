//! Image files: every supported format reads back what was written (lossless ones exactly, JPEG closely),
//! 16-bit and alpha images convert as documented, GIF gives its first frame, and sizes beyond the pixel cap
//! are refused from the header before decoding.

use std::path::{Path, PathBuf};

use reddiff::image::{Image, OutputFormat, MAX_PIXELS};
use reddiff::metrics::psnr;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("reddiff-formats-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn sample() -> Image {
    Image::read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/samples/twitter-1f467-1f3fc.png")).unwrap()
}

/// The image quantised to 8 bits, as every writer stores it.
fn quantised(im: &Image) -> Image {
    Image { data: im.data.iter().map(|v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() / 127.5 - 1.0).collect(), ..im.clone() }
}

#[test]
fn every_output_format_reads_back() {
    let im = sample();
    let want = quantised(&im);
    for ext in ["png", "webp", "tif", "tiff", "bmp", "PNG"] {
        let p = tmp(&format!("x.{ext}"));
        im.write(&p).unwrap();
        let back = Image::read(&p).unwrap();
        let err = back.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-6, ".{ext}: lossless format differs by {err}");
    }
    for ext in ["jpg", "jpeg"] {
        let p = tmp(&format!("x.{ext}"));
        im.write(&p).unwrap();
        let db = psnr(&im, &Image::read(&p).unwrap()).unwrap();
        assert!(db > 30.0, ".{ext} at quality 95 reads back at only {db:.1} dB");
    }
    for bad in ["x.gif", "x.xyz", "noext"] {
        let e = im.write(&tmp(bad)).unwrap_err().to_string();
        assert!(e.contains(".png") && e.contains(".jpg"), "{bad}: {e}");
    }
    assert_eq!(OutputFormat::from_path(Path::new("a/B.JPEG")).unwrap(), OutputFormat::Jpeg);
}

#[test]
fn sixteen_bit_alpha_and_gray_convert_as_documented() {
    // 16-bit RGBA: one opaque pixel, one transparent (composited on white), one half-transparent black.
    let px: Vec<u16> = vec![65535, 0, 0, 65535, 0, 0, 0, 0, 0, 0, 0, 32768];
    let buf = image::ImageBuffer::<image::Rgba<u16>, _>::from_raw(3, 1, px).unwrap();
    let p = tmp("rgba16.png");
    buf.save(&p).unwrap();
    let im = Image::read(&p).unwrap();
    assert_eq!((im.channels, im.height, im.width), (3, 1, 3));
    let at = |c: usize, x: usize| im.data[c * 3 + x];
    assert_eq!((at(0, 0), at(1, 0), at(2, 0)), (1.0, -1.0, -1.0), "opaque red");
    assert_eq!((at(0, 1), at(1, 1), at(2, 1)), (1.0, 1.0, 1.0), "transparent is white");
    assert!((at(0, 2) - 0.0).abs() < 1e-3, "half-transparent black over white is mid-gray, got {}", at(0, 2));
    // Gray is replicated into RGB.
    let g = image::GrayImage::from_raw(2, 1, vec![0, 255]).unwrap();
    let p = tmp("gray.png");
    g.save(&p).unwrap();
    let im = Image::read(&p).unwrap();
    assert_eq!(im.data, vec![-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]);
}

#[test]
fn gif_gives_its_first_frame() {
    let p = tmp("anim.gif");
    {
        let f = std::fs::File::create(&p).unwrap();
        let mut enc = image::codecs::gif::GifEncoder::new(f);
        let red = image::RgbaImage::from_pixel(4, 2, image::Rgba([255, 0, 0, 255]));
        let blue = image::RgbaImage::from_pixel(4, 2, image::Rgba([0, 0, 255, 255]));
        enc.encode_frames([image::Frame::new(red), image::Frame::new(blue)]).unwrap();
    }
    let im = Image::read(&p).unwrap();
    assert_eq!((im.height, im.width), (2, 4));
    assert!(im.data[..8].iter().all(|v| *v > 0.9) && im.data[16..].iter().all(|v| *v < -0.9), "first frame is red");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in bytes {
        c ^= *b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// A PNG that claims `w`×`h` pixels but holds only a few bytes of (broken) image data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    v.extend(13u32.to_be_bytes());
    v.extend(&ihdr);
    v.extend(crc32(&ihdr).to_be_bytes());
    for (kind, data) in [(&b"IDAT"[..], &[0x78u8, 0x9c, 0, 0][..]), (b"IEND", &[])] {
        let mut chunk = kind.to_vec();
        chunk.extend(data);
        v.extend((data.len() as u32).to_be_bytes());
        v.extend(&chunk);
        v.extend(crc32(&chunk).to_be_bytes());
    }
    v
}

#[test]
fn huge_or_broken_images_are_refused_cleanly() {
    let t0 = std::time::Instant::now();
    let e = Image::decode(Path::new("huge.png"), &png_header_only(16384, 16384)).unwrap_err().to_string();
    assert!(e.contains("16384x16384") && e.contains("megapixels"), "{e}");
    assert!(t0.elapsed().as_secs_f64() < 5.0, "the size is checked from the header");
    let side = (MAX_PIXELS as f64).sqrt() as u32;
    let e = Image::decode(Path::new("edge.png"), &png_header_only(side, side + 1)).unwrap_err().to_string();
    assert!(e.contains("megapixels"), "{e}");
    for (name, bytes) in [("empty.png", vec![]), ("text.jpg", b"hello world".to_vec()), ("cut.png", png_header_only(4, 4))] {
        let e = Image::decode(Path::new(name), &bytes).unwrap_err().to_string();
        assert!(e.starts_with(name), "errors name the file: {e}");
    }
}

#[test]
fn the_embedded_samples_are_the_sample_folder() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/samples");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    on_disk.sort();
    let embedded: Vec<String> = reddiff::builtin::SAMPLES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(embedded, on_disk, "src/builtin.rs must list every file of assets/samples");
    for (n, bytes) in reddiff::builtin::SAMPLES {
        assert_eq!(*bytes, std::fs::read(dir.join(n)).unwrap().as_slice());
    }
    assert!(reddiff::builtin::sample(reddiff::builtin::DEFAULT_SAMPLE).is_some());
}

/// A TIFF-structured EXIF block holding only the orientation tag (0x0112) with `value`.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut b = b"II*\0".to_vec();
    b.extend_from_slice(&8u32.to_le_bytes()); // the first IFD follows the header
    b.extend_from_slice(&1u16.to_le_bytes()); // one entry
    b.extend_from_slice(&0x0112u16.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&value.to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    b
}

/// Where pixel (y, x) of the upright picture is in the stored w×h one, for EXIF orientation `o` (the
/// standard's eight cases: mirrors, rotations by 90° clockwise (6) and counter-clockwise (8), transpose and
/// transverse), and the upright size.
fn stored_pixel(o: u16, y: usize, x: usize, h: usize, w: usize) -> (usize, usize) {
    match o {
        1 => (y, x),
        2 => (y, w - 1 - x),
        3 => (h - 1 - y, w - 1 - x),
        4 => (h - 1 - y, x),
        5 => (x, y),
        6 => (h - 1 - x, y),
        7 => (h - 1 - x, w - 1 - y),
        8 => (x, w - 1 - y),
        _ => unreachable!(),
    }
}

/// A phone photo is stored as the sensor saw it with an EXIF orientation: it is read upright, as browsers
/// show it (all eight orientations from PNG exactly; a rotated JPEG as cameras write them).
#[test]
fn exif_orientation_is_applied() {
    use image::ImageEncoder;
    let (w, h) = (3usize, 2usize);
    let stored: Vec<u8> = (0..w * h).flat_map(|p| [(40 * p) as u8, 255 - (40 * p) as u8, 7]).collect();
    for o in 1..=8u16 {
        let mut bytes = Vec::new();
        let mut enc = image::codecs::png::PngEncoder::new(&mut bytes);
        enc.set_exif_metadata(exif_orientation(o)).unwrap();
        enc.write_image(&stored, w as u32, h as u32, image::ExtendedColorType::Rgb8).unwrap();
        let im = Image::decode(Path::new("o.png"), &bytes).unwrap();
        let (uh, uw) = if o >= 5 { (w, h) } else { (h, w) };
        assert_eq!((im.height, im.width), (uh, uw), "orientation {o}: upright size");
        for y in 0..uh {
            for x in 0..uw {
                let (sy, sx) = stored_pixel(o, y, x, h, w);
                let want = (stored[3 * (sy * w + sx)] as f32 / 255.0) * 2.0 - 1.0;
                let got = im.data[y * uw + x];
                assert!((got - want).abs() < 1e-6, "orientation {o}: upright ({y}, {x}) should be stored ({sy}, {sx}): {got} vs {want}");
            }
        }
    }
    // A JPEG 16 wide and 8 high, red left and blue right, stored with orientation 6 (turn 90° clockwise to
    // view): upright it is 8 wide and 16 high, red on top.
    let (w, h) = (16usize, 8usize);
    let px: Vec<u8> = (0..w * h).flat_map(|p| if p % w < 8 { [230, 20, 20] } else { [20, 20, 230] }).collect();
    let mut bytes = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
    enc.set_exif_metadata(exif_orientation(6)).unwrap();
    enc.write_image(&px, w as u32, h as u32, image::ExtendedColorType::Rgb8).unwrap();
    let im = Image::decode(Path::new("o.jpg"), &bytes).unwrap();
    assert_eq!((im.height, im.width), (16, 8));
    let hw = 16 * 8;
    let (top_red, bottom_blue) = (im.data[2 * 8 + 3], im.data[2 * hw + 13 * 8 + 3]);
    assert!(top_red > 0.6 && bottom_blue > 0.6, "red on top, blue below: {top_red} {bottom_blue}");
}
