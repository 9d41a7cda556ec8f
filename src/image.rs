//! RGB images as the solver sees them: f32 planes in [-1, 1], channel-major [C, H, W]. Reading PNG, JPEG,
//! WebP, TIFF, BMP and GIF (any colour type and depth), atomic writing by extension, fitting to a model's resolution, and side-by-side strips.

use std::path::Path;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};

/// A C×H×W image with values in [-1, 1] (C = 3 for RGB, 1 for gray).
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Channels.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Channel-major values in [-1, 1].
    pub data: Vec<f32>,
}

/// How to bring an image to the model's square resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Centre crop to a square, then area-resample to the size.
    Crop,
    /// Area-resample the whole image (aspect ratio not kept).
    Resize,
    /// Use as is; the size must already match.
    None,
    /// Keep the image whole: larger than the model it is restored on overlapping model-size tiles; a side
    /// shorter than the model's is reflected out to it for the run and the results cut back
    /// ([`fit_input`](crate::restore::fit_input)). [`Image::fit`] alone, which has no way to cut results
    /// back (`eval`'s batches), crops a smaller image as with [`Fit::Crop`].
    Tile,
}

impl std::str::FromStr for Fit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Fit> {
        Ok(match s {
            "tile" => Fit::Tile,
            "crop" => Fit::Crop,
            "resize" => Fit::Resize,
            "none" => Fit::None,
            o => return Err(Error::Invalid { op: "--fit", msg: format!("'{o}': use tile, crop, resize or none") }),
        })
    }
}

impl Fit {
    /// The height and width [`Image::fit`] gives an `h`×`w` image for a model of `size`×`size` with sides
    /// cut to multiples of `multiple`.
    pub fn size(self, h: usize, w: usize, size: usize, multiple: usize) -> Result<(usize, usize)> {
        match self {
            Fit::Tile if h >= size && w >= size => {
                let m = multiple.max(1);
                Ok((h / m * m, w / m * m))
            }
            Fit::None if h != size || w != size => {
                Err(Error::Shape { op: "fit", msg: format!("image is {w}x{h} but the model needs {size}x{size} (use --fit crop or --fit resize)") })
            }
            _ => Ok((size, size)),
        }
    }
}

/// The largest image reddiff reads, in pixels (16 Mpx, e.g. 4096×4096): checked from the file header before
/// decoding, so a small file claiming a huge size costs nothing.
pub const MAX_PIXELS: u64 = 1 << 24;

/// The largest image file reddiff reads, in bytes (256 MiB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

fn check_pixels(name: &Path, w: u64, h: u64) -> Result<()> {
    if w == 0 || h == 0 || w * h > MAX_PIXELS {
        return Err(Error::Format {
            path: name.to_path_buf(),
            msg: format!("the image is {w}x{h} pixels; reddiff reads images of 1 to {} megapixels", MAX_PIXELS >> 20),
        });
    }
    Ok(())
}

/// Image file formats reddiff writes, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// `.png`, 8-bit.
    Png,
    /// `.jpg` / `.jpeg`, quality 95.
    Jpeg,
    /// `.webp`, lossless.
    WebP,
    /// `.tif` / `.tiff`, 8-bit.
    Tiff,
    /// `.bmp`.
    Bmp,
}

impl OutputFormat {
    /// The format named by `path`'s extension (case-insensitive); an error names the ones supported.
    pub fn from_path(path: &Path) -> Result<OutputFormat> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        Ok(match ext.as_str() {
            "png" => OutputFormat::Png,
            "jpg" | "jpeg" => OutputFormat::Jpeg,
            "webp" => OutputFormat::WebP,
            "tif" | "tiff" => OutputFormat::Tiff,
            "bmp" => OutputFormat::Bmp,
            _ => {
                return Err(Error::Invalid {
                    op: "output",
                    msg: format!("{}: end the file name in .png, .jpg, .webp, .tif or .bmp to choose the format", path.display()),
                })
            }
        })
    }
}

impl Image {
    /// A new image from channel-major data in [-1, 1].
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Image> {
        if channels * height * width != data.len() || data.is_empty() {
            return Err(Error::Shape {
                op: "image",
                msg: format!("{channels}x{height}x{width} needs {} values, got {}", channels * height * width, data.len()),
            });
        }
        Ok(Image { channels, height, width, data })
    }

    /// Decodes an image file's bytes into RGB: PNG (8/16-bit), JPEG, WebP, TIFF, BMP or GIF (first frame),
    /// recognised by content, turned upright as its EXIF orientation says (JPEG, WebP, TIFF, PNG). Alpha is
    /// composited on white; gray is replicated. The size is checked from the
    /// header before anything is decoded: at most [`MAX_PIXELS`]. `name` only labels errors.
    pub fn decode(name: &Path, bytes: &[u8]) -> Result<Image> {
        let ferr = |msg: String| Error::Format { path: name.to_path_buf(), msg };
        let reader = || image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| ferr(format!("cannot read the image: {e}")));
        let probe = reader()?;
        if probe.format().is_none() {
            return Err(ferr("not a PNG, JPEG, WebP, TIFF, BMP or GIF image".into()));
        }
        let (w, h) = probe.into_dimensions().map_err(|e| ferr(format!("unreadable image header: {e}")))?;
        check_pixels(name, w as u64, h as u64)?;
        let mut r = reader()?;
        let mut limits = image::Limits::default();
        // Decoded 16-bit RGBA at the pixel cap, plus the decoder's own buffers.
        limits.max_alloc = Some(MAX_PIXELS * 8 * 2);
        r.limits(limits);
        let corrupt = |e: image::ImageError| ferr(format!("corrupt or unsupported image: {e}"));
        use image::ImageDecoder as _;
        let mut decoder = r.into_decoder().map_err(corrupt)?;
        // A camera's EXIF orientation (a phone photo taken upright is stored sideways) is applied, as browsers
        // do; unreadable metadata counts as none, it does not make the picture unreadable.
        let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
        let mut img = image::DynamicImage::from_decoder(decoder).map_err(corrupt)?;
        img.apply_orientation(orientation);
        let rgba = img.into_rgba16();
        let (w, h) = (rgba.width() as usize, rgba.height() as usize);
        let mut data = vec![0f32; 3 * h * w];
        for (p, px) in rgba.pixels().enumerate() {
            let a = px.0[3] as f32 / 65535.0;
            for c in 0..3 {
                let v = px.0[c] as f32 / 65535.0 * a + (1.0 - a);
                data[c * h * w + p] = v * 2.0 - 1.0;
            }
        }
        Image::new(3, h, w, data)
    }

    /// Reads an image file (any format [`Image::decode`] knows) as RGB.
    pub fn read(path: &Path) -> Result<Image> {
        let len = std::fs::metadata(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?.len();
        if len > MAX_FILE_BYTES {
            return Err(Error::Format { path: path.to_path_buf(), msg: format!("{len} bytes is larger than the {} MB reddiff reads", MAX_FILE_BYTES >> 20) });
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::decode(path, &bytes)
    }

    /// 8-bit interleaved pixels (RGB or gray), values clamped from [-1, 1].
    pub fn to_u8(&self) -> Vec<u8> {
        let hw = self.height * self.width;
        let mut out = Vec::with_capacity(hw * self.channels);
        for p in 0..hw {
            for c in 0..self.channels {
                out.push(((self.data[c * hw + p].clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8);
            }
        }
        out
    }

    /// Encodes as an 8-bit image in `format` (JPEG at quality 95; WebP lossless).
    pub fn encode(&self, format: OutputFormat) -> Result<Vec<u8>> {
        let color = if self.channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
        let (w, h) = (self.width as u32, self.height as u32);
        let mut out = std::io::Cursor::new(Vec::new());
        let px = self.to_u8();
        let r = match format {
            OutputFormat::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95).encode(&px, w, h, color),
            other => {
                let f = match other {
                    OutputFormat::Png => image::ImageFormat::Png,
                    OutputFormat::WebP => image::ImageFormat::WebP,
                    OutputFormat::Tiff => image::ImageFormat::Tiff,
                    _ => image::ImageFormat::Bmp,
                };
                image::write_buffer_with_format(&mut out, &px, w, h, color, f)
            }
        };
        r.map_err(|e| Error::Invalid { op: "encode image", msg: e.to_string() })?;
        Ok(out.into_inner())
    }

    /// Writes the image atomically, in the format its extension names (see [`OutputFormat::from_path`]).
    pub fn write(&self, path: &Path) -> Result<()> {
        let format = OutputFormat::from_path(path)?;
        crate::model::weights::write_atomic(path, &self.encode(format)?)
    }

    /// Area resampling to `h`×`w` (each output pixel averages the input area it covers).
    pub fn resize(&self, h: usize, w: usize) -> Image {
        let (sh, sw) = (self.height as f64 / h as f64, self.width as f64 / w as f64);
        let mut data = vec![0f32; self.channels * h * w];
        for c in 0..self.channels {
            for oy in 0..h {
                let (y0, y1) = (oy as f64 * sh, (oy + 1) as f64 * sh);
                for ox in 0..w {
                    let (x0, x1) = (ox as f64 * sw, (ox + 1) as f64 * sw);
                    let (mut acc, mut wsum) = (0f64, 0f64);
                    let mut y = y0.floor() as usize;
                    while (y as f64) < y1 && y < self.height {
                        let wy = (y1.min(y as f64 + 1.0) - y0.max(y as f64)).max(0.0);
                        let mut x = x0.floor() as usize;
                        while (x as f64) < x1 && x < self.width {
                            let wx = (x1.min(x as f64 + 1.0) - x0.max(x as f64)).max(0.0);
                            acc += wy * wx * self.data[(c * self.height + y) * self.width + x] as f64;
                            wsum += wy * wx;
                            x += 1;
                        }
                        y += 1;
                    }
                    data[(c * h + oy) * w + ox] = (acc / wsum.max(1e-12)) as f32;
                }
            }
        }
        Image { channels: self.channels, height: h, width: w, data }
    }

    /// Brings the image to `size`×`size` (or, with [`Fit::Tile`], keeps it when it is at least that large;
    /// the sides are then cut down to multiples of `multiple`, e.g. the SR factor, keeping the centre).
    pub fn fit(&self, size: usize, fit: Fit, multiple: usize) -> Result<Image> {
        let (h, w) = fit.size(self.height, self.width, size, multiple)?;
        match fit {
            Fit::Tile if self.height >= size && self.width >= size => Ok(self.crop((self.height - h) / 2, (self.width - w) / 2, h, w)),
            Fit::Tile => self.fit(size, Fit::Crop, multiple),
            Fit::None => Ok(self.clone()),
            Fit::Resize => Ok(self.resize(size, size)),
            Fit::Crop => {
                let s = self.height.min(self.width);
                let sq = self.crop((self.height - s) / 2, (self.width - s) / 2, s, s);
                Ok(if s == size { sq } else { sq.resize(size, size) })
            }
        }
    }

    /// The `h`×`w` window with top-left corner (`oy`, `ox`) (clipped to the image).
    pub fn crop(&self, oy: usize, ox: usize, h: usize, w: usize) -> Image {
        let (oy, ox) = (oy.min(self.height), ox.min(self.width));
        let (h, w) = (h.min(self.height - oy), w.min(self.width - ox));
        let mut data = Vec::with_capacity(self.channels * h * w);
        for c in 0..self.channels {
            for y in 0..h {
                let row = (c * self.height + oy + y) * self.width + ox;
                data.extend_from_slice(&self.data[row..row + w]);
            }
        }
        Image { channels: self.channels, height: h, width: w, data }
    }

    /// RGB copy (gray replicated).
    pub fn to_rgb(&self) -> Image {
        if self.channels == 3 {
            return self.clone();
        }
        let hw = self.height * self.width;
        let mut data = Vec::with_capacity(3 * hw);
        for _ in 0..3 {
            data.extend_from_slice(&self.data[..hw]);
        }
        Image { channels: 3, height: self.height, width: self.width, data }
    }

    /// Images side by side (RGB), each scaled by nearest neighbour to the tallest height, 2-pixel white gaps.
    pub fn strip(images: &[&Image]) -> Image {
        let h = images.iter().map(|i| i.height).max().unwrap_or(1);
        let scaled: Vec<Image> = images
            .iter()
            .map(|im| {
                let rgb = im.to_rgb();
                let f = h / rgb.height.max(1);
                if f <= 1 {
                    rgb
                } else {
                    rgb.upscale_nearest(f)
                }
            })
            .collect();
        let w: usize = scaled.iter().map(|i| i.width + 2).sum::<usize>() + 2;
        let hh = h + 4;
        let mut data = vec![1f32; 3 * hh * w];
        let mut x0 = 2;
        for im in &scaled {
            for c in 0..3 {
                for y in 0..im.height {
                    for x in 0..im.width {
                        data[(c * hh + y + 2) * w + x0 + x] = im.data[(c * im.height + y) * im.width + x];
                    }
                }
            }
            x0 += im.width + 2;
        }
        Image { channels: 3, height: hh, width: w, data }
    }

    /// The image inside an `h`×`w` one with its top-left corner at (`top`, `left`), the rest filled by
    /// reflecting it at its borders (without repeating the border pixel; an image 1 pixel wide repeats
    /// it). Needs `top + height ≤ h` and `left + width ≤ w`.
    pub fn pad_reflect(&self, top: usize, left: usize, h: usize, w: usize) -> Image {
        // Index into 0..n of position i (may be outside), reflected with period 2(n - 1).
        let reflect = |i: isize, n: usize| -> usize {
            if n == 1 {
                return 0;
            }
            let period = 2 * (n as isize - 1);
            let r = i.rem_euclid(period);
            (if r < n as isize { r } else { period - r }) as usize
        };
        if self.height == 0 || self.width == 0 {
            return Image { channels: self.channels, height: h, width: w, data: vec![0.0; self.channels * h * w] };
        }
        let rows: Vec<usize> = (0..h).map(|y| reflect(y as isize - top as isize, self.height)).collect();
        let cols: Vec<usize> = (0..w).map(|x| reflect(x as isize - left as isize, self.width)).collect();
        let mut data = Vec::with_capacity(self.channels * h * w);
        for c in 0..self.channels {
            for &sy in &rows {
                let row = (c * self.height + sy) * self.width;
                data.extend(cols.iter().map(|&sx| self.data[row + sx]));
            }
        }
        Image { channels: self.channels, height: h, width: w, data }
    }

    /// Each pixel repeated f×f.
    pub fn upscale_nearest(&self, f: usize) -> Image {
        let (h, w) = (self.height * f, self.width * f);
        let mut data = vec![0f32; self.channels * h * w];
        for c in 0..self.channels {
            for y in 0..h {
                for x in 0..w {
                    data[(c * h + y) * w + x] = self.data[(c * self.height + y / f) * self.width + x / f];
                }
            }
        }
        Image { channels: self.channels, height: h, width: w, data }
    }

    /// Tiles equally sized images in a grid of `cols` columns with 2-pixel white gaps.
    pub fn grid(images: &[Image], cols: usize) -> Result<Image> {
        let first = images.first().ok_or(Error::Empty { op: "grid", shape: vec![0] })?;
        let (h, w, ch) = (first.height, first.width, first.channels);
        let cols = cols.clamp(1, images.len());
        let rows = images.len().div_ceil(cols);
        let (gh, gw) = (rows * (h + 2) + 2, cols * (w + 2) + 2);
        let mut data = vec![1f32; ch * gh * gw];
        for (i, im) in images.iter().enumerate() {
            if im.height != h || im.width != w || im.channels != ch {
                return Err(Error::Shape { op: "grid", msg: "images differ in size".into() });
            }
            let (oy, ox) = (2 + (i / cols) * (h + 2), 2 + (i % cols) * (w + 2));
            for c in 0..ch {
                for y in 0..h {
                    for x in 0..w {
                        data[(c * gh + oy + y) * gw + ox + x] = im.data[(c * h + y) * w + x];
                    }
                }
            }
        }
        Image::new(ch, gh, gw, data)
    }
}

/// Reads a [N, C, H, W] tensor back as N images (optionally clamped to [-1, 1]).
pub async fn images_from_tensor(gpu: &Gpu, t: &Tensor, clamp: bool) -> Result<Vec<Image>> {
    let s = t.shape().to_vec();
    if s.len() != 4 {
        return Err(Error::Shape { op: "images", msg: format!("expected [N, C, H, W], got {:?}", s) });
    }
    let v = t.read_async(gpu).await?;
    let per = s[1] * s[2] * s[3];
    (0..s[0])
        .map(|i| {
            let d: Vec<f32> = v[i * per..(i + 1) * per].iter().map(|x| if clamp { x.clamp(-1.0, 1.0) } else { *x }).collect();
            Image::new(s[1], s[2], s[3], d)
        })
        .collect()
}
