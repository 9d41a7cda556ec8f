//! The built-in prior and the held-out samples, embedded in the library (cargo feature `builtin-model`, on by
//! default), so a copied or `cargo install`ed binary runs without the source tree.
//!
//! The prior is `models/emoji32`: a 3.97M-parameter ADM UNet for 32×32 RGB images with F16 weights (its card
//! is `models/emoji32/README.md`). The samples are 32×32 PNG emoji from the split the prior never saw.

use crate::model::Unet;

/// Contents of the built-in model's `config.json` (ADM argument names).
pub const CONFIG_JSON: &str = include_str!("../models/emoji32/config.json");

/// Contents of the built-in model's `model.safetensors` (F16).
pub const WEIGHTS: &[u8] = include_bytes!("../models/emoji32/model.safetensors");

/// Contents of the built-in model's `recommended.json`: the settings `reddiff eval --sweep` chose per task
/// on held-out images (see [`crate::recommended`]).
pub const RECOMMENDED_JSON: &str = include_str!("../models/emoji32/recommended.json");

/// The sample `reddiff restore` uses when given no input.
pub const DEFAULT_SAMPLE: &str = "twitter-1f467-1f3fc.png";

macro_rules! sample {
    ($name:literal) => {
        ($name, include_bytes!(concat!("../assets/samples/", $name)) as &[u8])
    };
}

/// The held-out samples as (file name, PNG bytes), sorted by name; the same files as `assets/samples/`.
pub const SAMPLES: &[(&str, &[u8])] = &[
    sample!("google-1f1f1-1f1e6.png"),
    sample!("google-1f1f2-1f1f5.png"),
    sample!("google-1f309.png"),
    sample!("google-1f466.png"),
    sample!("google-1f468-1f3fc-200d-2764-fe0f-200d-1f48b-200d-1f468-1f3fe.png"),
    sample!("google-1f469-1f3fb-200d-1f393.png"),
    sample!("google-1f469-1f3fd-200d-2696-fe0f.png"),
    sample!("google-1f469-1f3fe-200d-1f9bd-200d-27a1-fe0f.png"),
    sample!("google-1f46e-1f3fc-200d-2642-fe0f.png"),
    sample!("google-1f472-1f3fb.png"),
    sample!("google-1f482-1f3fe.png"),
    sample!("google-1f4a6.png"),
    sample!("google-1f4f1.png"),
    sample!("google-1f517.png"),
    sample!("google-1f6b4-1f3fc-200d-2640-fe0f.png"),
    sample!("google-1f9d1-1f3ff-200d-2764-fe0f-200d-1f48b-200d-1f9d1-1f3fe.png"),
    sample!("google-1f9da-1f3fd-200d-2640-fe0f.png"),
    sample!("twitter-1f309.png"),
    sample!("twitter-1f467-1f3fc.png"),
    sample!("twitter-1f469-1f3fb-200d-1f9b0.png"),
    sample!("twitter-1f469-1f3fb-200d-2764-fe0f-200d-1f469-1f3fe.png"),
    sample!("twitter-1f469-1f3fb-200d-2764-fe0f-200d-1f48b-200d-1f469-1f3fb.png"),
    sample!("twitter-1f469-1f3fe-200d-1f91d-200d-1f468-1f3fd.png"),
    sample!("twitter-1f469-1f3fe-200d-2764-fe0f-200d-1f469-1f3fc.png"),
    sample!("twitter-1f470-1f3ff-200d-2642-fe0f.png"),
    sample!("twitter-1f481-1f3fe.png"),
    sample!("twitter-1f6af.png"),
    sample!("twitter-1f6b4-1f3fc-200d-2640-fe0f.png"),
    sample!("twitter-1f93c-200d-2642-fe0f.png"),
    sample!("twitter-1f99f.png"),
    sample!("twitter-1f9c9.png"),
    sample!("twitter-1f9d9-1f3ff-200d-2640-fe0f.png"),
];

/// The PNG bytes of the sample called `name`, if there is one.
pub fn sample(name: &str) -> Option<&'static [u8]> {
    SAMPLES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

impl Unet {
    /// Loads the built-in emoji32 prior (the same network as `Unet::load(gpu, "models/emoji32")`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn builtin(gpu: &crate::Gpu) -> crate::Result<Unet> {
        let model = Unet::from_bytes(gpu, "builtin/config.json".as_ref(), CONFIG_JSON, "builtin/model.safetensors".as_ref(), WEIGHTS)?;
        model.after_load(gpu)
    }
}
