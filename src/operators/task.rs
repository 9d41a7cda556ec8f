//! Task names (as the CLI and the web page take them) → operators with sizes chosen for the image.

use std::path::PathBuf;
use std::str::FromStr;

use super::convolution::Convolution;
use super::linear::{Colorize, Identity, Masked, Separable};
use super::nonlinear::{Hdr, PhaseRetrieval};
use super::patterns::{self, Matrix};
use super::Operator;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::image::Image;

/// A restoration task.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskKind {
    /// Centre box covering half the height and width.
    InpaintBox,
    /// 70 % of the pixels missing at random.
    InpaintRandom,
    /// Random free-form brush strokes.
    InpaintFreeform,
    /// A user mask image (white = keep), same size as the image.
    InpaintMask(PathBuf),
    /// A keep-mask given as values [H·W] (1 = keep, 0 = missing), e.g. painted in the web page.
    InpaintMaskData(Vec<f32>),
    /// Block-average super-resolution ×2, ×4 or ×8.
    Sr(usize),
    /// Bicubic (a = −0.5) super-resolution.
    Bicubic(usize),
    /// Gaussian blur: σ = max(2, 3·H/256) px, size 2⌈2σ⌉+1.
    DeblurGauss,
    /// Uniform blur: size max(5, 9·H/256), odd.
    DeblurUniform,
    /// Random motion blur: size max(9, 61·H/256), odd.
    DeblurMotion,
    /// A user blur kernel image (odd square, brightness = weight).
    DeblurKernel(PathBuf),
    /// Colorization from the mean of RGB.
    Color,
    /// Denoising (H = I; set σ_y).
    Denoise,
    /// HDR from clip(2x).
    Hdr,
    /// Fourier phase retrieval.
    Phase,
    /// JPEG artifact removal at quality 1–100 with 4:2:0 chroma (sides must be multiples of 16).
    Jpeg(u32),
    /// JPEG artifact removal at quality 1–100 with 4:4:4 chroma (sides must be multiples of 8).
    Jpeg444(u32),
}

/// Every task name accepted by [`TaskKind::from_str`] (FILE-taking ones as `name=FILE`).
pub const TASK_NAMES: &[&str] = &[
    "inpaint-box",
    "inpaint-random",
    "inpaint-freeform",
    "inpaint-mask=FILE",
    "sr2",
    "sr4",
    "sr8",
    "bicubic4",
    "deblur-gauss",
    "deblur-uniform",
    "deblur-motion",
    "deblur-kernel=FILE",
    "color",
    "denoise",
    "hdr",
    "phase",
    "jpeg=QF",
    "jpeg444=QF",
];

impl TaskKind {
    /// The files the task reads (a mask or a kernel image), so outputs can be checked against them.
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            TaskKind::InpaintMask(p) | TaskKind::DeblurKernel(p) => vec![p.clone()],
            _ => Vec::new(),
        }
    }
}

impl FromStr for TaskKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<TaskKind> {
        let (name, arg) = match s.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let file = |what: &str| -> Result<PathBuf> {
            arg.filter(|a| !a.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| Error::Invalid { op: "task", msg: format!("{name} needs a file: {name}=FILE ({what})") })
        };
        Ok(match name {
            "inpaint-box" => TaskKind::InpaintBox,
            "inpaint-random" => TaskKind::InpaintRandom,
            "inpaint-freeform" => TaskKind::InpaintFreeform,
            "inpaint-mask" => TaskKind::InpaintMask(file("a mask PNG, white = keep")?),
            "sr2" => TaskKind::Sr(2),
            "sr4" => TaskKind::Sr(4),
            "sr8" => TaskKind::Sr(8),
            "bicubic2" => TaskKind::Bicubic(2),
            "bicubic4" => TaskKind::Bicubic(4),
            "bicubic8" => TaskKind::Bicubic(8),
            "deblur-gauss" => TaskKind::DeblurGauss,
            "deblur-uniform" => TaskKind::DeblurUniform,
            "deblur-motion" => TaskKind::DeblurMotion,
            "deblur-kernel" => TaskKind::DeblurKernel(file("a kernel PNG")?),
            "color" => TaskKind::Color,
            "denoise" => TaskKind::Denoise,
            "hdr" => TaskKind::Hdr,
            "phase" => TaskKind::Phase,
            "jpeg" | "jpeg444" => {
                let qf = arg.and_then(|a| a.trim().parse::<u32>().ok()).filter(|q| (1..=100).contains(q));
                let qf = qf.ok_or_else(|| Error::Invalid { op: "task", msg: format!("{name} needs a quality from 1 to 100: {name}=QF (e.g. {name}=10)") })?;
                if name == "jpeg" {
                    TaskKind::Jpeg(qf)
                } else {
                    TaskKind::Jpeg444(qf)
                }
            }
            other => return Err(Error::Invalid { op: "task", msg: format!("unknown task '{other}'; one of: {}", TASK_NAMES.join(", ")) }),
        })
    }
}

fn odd(v: usize) -> usize {
    v | 1
}

/// A task with the seed for its random parts (masks, motion kernels).
#[derive(Clone, Debug)]
pub struct Task {
    /// Which degradation.
    pub kind: TaskKind,
    /// Seed for random masks and kernels.
    pub seed: u64,
}

impl Task {
    /// RED-diff's default learning rate: 0.25 for inpainting, 0.5 otherwise.
    pub fn default_lr(&self) -> f32 {
        if self.is_inpainting() {
            0.25
        } else {
            0.5
        }
    }

    /// The task's name as the CLI spells it (files omitted).
    pub fn kind_name(&self) -> String {
        match &self.kind {
            TaskKind::InpaintBox => "inpaint-box".into(),
            TaskKind::InpaintRandom => "inpaint-random".into(),
            TaskKind::InpaintFreeform => "inpaint-freeform".into(),
            TaskKind::InpaintMask(_) | TaskKind::InpaintMaskData(_) => "inpaint-mask".into(),
            TaskKind::Sr(f) => format!("sr{f}"),
            TaskKind::Bicubic(f) => format!("bicubic{f}"),
            TaskKind::DeblurGauss => "deblur-gauss".into(),
            TaskKind::DeblurUniform => "deblur-uniform".into(),
            TaskKind::DeblurMotion => "deblur-motion".into(),
            TaskKind::DeblurKernel(_) => "deblur-kernel".into(),
            TaskKind::Color => "color".into(),
            TaskKind::Denoise => "denoise".into(),
            TaskKind::Hdr => "hdr".into(),
            TaskKind::Phase => "phase".into(),
            TaskKind::Jpeg(q) => format!("jpeg={q}"),
            TaskKind::Jpeg444(q) => format!("jpeg444={q}"),
        }
    }

    /// True for the inpainting tasks.
    pub fn is_inpainting(&self) -> bool {
        matches!(
            self.kind,
            TaskKind::InpaintBox | TaskKind::InpaintRandom | TaskKind::InpaintFreeform | TaskKind::InpaintMask(_) | TaskKind::InpaintMaskData(_)
        )
    }

    /// Channels the task needs (colorization and JPEG need RGB).
    pub fn needs_channels(&self) -> Option<usize> {
        matches!(self.kind, TaskKind::Color | TaskKind::Jpeg(_) | TaskKind::Jpeg444(_)).then_some(3)
    }

    /// Image sides must be multiples of this: the factor for super-resolution, 16 (4:2:0) or 8 for JPEG.
    pub fn size_multiple(&self) -> usize {
        match self.kind {
            TaskKind::Sr(f) | TaskKind::Bicubic(f) => f,
            TaskKind::Jpeg(_) => 16,
            TaskKind::Jpeg444(_) => 8,
            _ => 1,
        }
    }

    /// Builds the operator for `c`×`h`×`w` images. Files (masks, kernels) are read here, before any GPU work.
    pub fn operator(&self, gpu: &Gpu, c: usize, h: usize, w: usize) -> Result<Box<dyn Operator>> {
        if let Some(need) = self.needs_channels() {
            if c != need {
                return Err(Error::Invalid { op: "task", msg: format!("{} needs a {need}-channel model, this one has {c}", self.kind_name()) });
            }
        }
        let side = h.min(w);
        Ok(match &self.kind {
            TaskKind::InpaintBox => Box::new(Masked::new(gpu, &patterns::centre_box_mask(h, w)?, h, w, "inpaint-box (centre half)")?),
            TaskKind::InpaintRandom => Box::new(Masked::new(gpu, &patterns::random_mask(h, w, 0.7, self.seed)?, h, w, "inpaint-random (70 % missing)")?),
            TaskKind::InpaintFreeform => Box::new(Masked::new(gpu, &patterns::freeform_mask(h, w, self.seed)?, h, w, "inpaint-freeform")?),
            TaskKind::InpaintMask(p) => {
                let m = patterns::mask_from_image(&Image::read(p)?, h, w)?;
                Box::new(Masked::new(gpu, &m, h, w, &format!("inpaint-mask ({})", p.display()))?)
            }
            TaskKind::InpaintMaskData(m) => Box::new(Masked::new(gpu, m, h, w, "inpaint-mask (painted)")?),
            TaskKind::Sr(f) => {
                Box::new(Separable::new(gpu, &Matrix::block_average(h, *f)?, &Matrix::block_average(w, *f)?, 0.0, &format!("sr{f} (block average)"))?)
            }
            TaskKind::Bicubic(f) => Box::new(Separable::new(gpu, &Matrix::bicubic(h, *f)?, &Matrix::bicubic(w, *f)?, 0.0, &format!("bicubic{f}"))?),
            TaskKind::DeblurGauss => {
                let sigma = (3.0 * side as f64 / 256.0).max(2.0);
                let size = 2 * (2.0 * sigma).ceil() as usize + 1;
                let t = patterns::gaussian_taps(size, sigma)?;
                let label = format!("deblur-gauss (size {size}, sigma {sigma:.1})");
                Box::new(Separable::new(gpu, &Matrix::convolution(h, &t), &Matrix::convolution(w, &t), 1e-2, &label)?)
            }
            TaskKind::DeblurUniform => {
                let size = odd((9 * side / 256).max(5));
                let t = vec![1.0 / size as f64; size];
                Box::new(Separable::new(gpu, &Matrix::convolution(h, &t), &Matrix::convolution(w, &t), 1e-2, &format!("deblur-uniform (size {size})"))?)
            }
            TaskKind::DeblurMotion => {
                let size = odd((61 * side / 256).max(9));
                Box::new(Convolution::new(gpu, &patterns::motion_kernel(size, self.seed)?, size, h, w, &format!("deblur-motion (size {size})"))?)
            }
            TaskKind::DeblurKernel(p) => {
                let img = Image::read(p)?;
                let k = patterns::kernel_from_image(&img)?;
                Box::new(Convolution::new(gpu, &k, img.height, h, w, &format!("deblur-kernel ({})", p.display()))?)
            }
            TaskKind::Color => Box::new(Colorize::new(gpu)?),
            TaskKind::Denoise => Box::new(Identity),
            TaskKind::Hdr => Box::new(Hdr),
            TaskKind::Jpeg(q) => Box::new(super::Jpeg::new(gpu, *q, true)?),
            TaskKind::Jpeg444(q) => Box::new(super::Jpeg::new(gpu, *q, false)?),
            TaskKind::Phase => {
                if !h.is_power_of_two() || !w.is_power_of_two() {
                    return Err(Error::Invalid { op: "phase", msg: format!("phase retrieval needs power-of-two sides, got {w}x{h}") });
                }
                Box::new(PhaseRetrieval)
            }
        })
    }
}
