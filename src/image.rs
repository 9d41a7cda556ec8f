//! RGB images as the solver sees them: f32 planes in [-1, 1], channel-major [C, H, W]. PNG reading (any
//! colour type, 8 or 16 bit) and atomic writing, fitting to a model's resolution, and side-by-side strips.

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
}

impl Image {
    /// A new image from channel-major data in [-1, 1].
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Image> {
        if channels * height * width != data.len() || data.is_empty() {
            return Err(Error::Shape { op: "image", msg: format!("{channels}x{height}x{width} needs {} values, got {}", channels * height * width, data.len()) });
        }
        Ok(Image { channels, height, width, data })
    }

    /// Decodes PNG bytes into RGB (alpha is composited on white; gray is replicated). `name` is for errors.
    pub fn decode_png(name: &Path, bytes: &[u8]) -> Result<Image> {
        let ferr = |msg: String| Error::Format { path: name.to_path_buf(), msg };
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
        dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = dec.read_info().map_err(|e| ferr(format!("not a readable PNG: {e}")))?;
        let size = reader.output_buffer_size().ok_or_else(|| ferr("PNG too large".into()))?;
        if size > 1 << 28 {
            return Err(ferr(format!("PNG of {size} bytes is too large")));
        }
        let mut buf = vec![0u8; size];
        let info = reader.next_frame(&mut buf).map_err(|e| ferr(format!("corrupt PNG: {e}")))?;
        let (w, h) = (info.width as usize, info.height as usize);
        let ch = match info.color_type {
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            png::ColorType::Indexed => return Err(ferr("indexed PNG after expansion".into())),
        };
        let mut data = vec![0f32; 3 * h * w];
        for p in 0..h * w {
            let px = &buf[p * ch..p * ch + ch];
            let (rgb, a) = match ch {
                1 => ([px[0]; 3], 255),
                2 => ([px[0]; 3], px[1]),
                3 => ([px[0], px[1], px[2]], 255),
                _ => ([px[0], px[1], px[2]], px[3]),
            };
            let a = a as f32 / 255.0;
            for c in 0..3 {
                let v = rgb[c] as f32 / 255.0 * a + (1.0 - a);
                data[c * h * w + p] = v * 2.0 - 1.0;
            }
        }
        Image::new(3, h, w, data)
    }

    /// Reads a PNG file as RGB.
    pub fn read_png(path: &Path) -> Result<Image> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::decode_png(path, &bytes)
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

    /// Encodes as an 8-bit PNG.
    pub fn encode_png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(if self.channels == 1 { png::ColorType::Grayscale } else { png::ColorType::Rgb });
            enc.set_depth(png::BitDepth::Eight);
            let err = |e: png::EncodingError| Error::Invalid { op: "png", msg: e.to_string() };
            let mut w = enc.write_header().map_err(err)?;
            w.write_image_data(&self.to_u8()).map_err(err)?;
        }
        Ok(out)
    }

    /// Writes an 8-bit PNG atomically.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        crate::model::weights::write_atomic(path, &self.encode_png()?)
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

    /// Brings the image to `size`×`size`.
    pub fn fit(&self, size: usize, fit: Fit) -> Result<Image> {
        match fit {
            Fit::None if self.height == size && self.width == size => Ok(self.clone()),
            Fit::None => Err(Error::Shape {
                op: "fit",
                msg: format!("image is {}x{} but the model needs {size}x{size} (use --fit crop or --fit resize)", self.width, self.height),
            }),
            Fit::Resize => Ok(self.resize(size, size)),
            Fit::Crop => {
                let s = self.height.min(self.width);
                let (oy, ox) = ((self.height - s) / 2, (self.width - s) / 2);
                let mut data = Vec::with_capacity(self.channels * s * s);
                for c in 0..self.channels {
                    for y in 0..s {
                        let row = (c * self.height + oy + y) * self.width + ox;
                        data.extend_from_slice(&self.data[row..row + s]);
                    }
                }
                let sq = Image { channels: self.channels, height: s, width: s, data };
                Ok(if s == size { sq } else { sq.resize(size, size) })
            }
        }
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
                if f <= 1 { rgb } else { rgb.upscale_nearest(f) }
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
