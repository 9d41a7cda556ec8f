//! Every WGSL file of the crate, embedded with `include_str!`. WGSL has no includes: a shader that shares
//! functions with others gets them from a prelude file, prepended here (`shader!(ID, "name", "prelude")`).

use crate::gpu::Shader;

macro_rules! shader {
    ($id:ident, $name:literal) => {
        #[doc = concat!("`wgsl/", $name, ".wgsl`")]
        pub static $id: Shader = Shader { name: $name, source: include_str!(concat!("../wgsl/", $name, ".wgsl")) };
    };
    ($id:ident, $name:literal, $prelude:literal) => {
        #[doc = concat!("`wgsl/", $prelude, ".wgsl` followed by `wgsl/", $name, ".wgsl`")]
        pub static $id: Shader =
            Shader { name: $name, source: concat!(include_str!(concat!("../wgsl/", $prelude, ".wgsl")), include_str!(concat!("../wgsl/", $name, ".wgsl"))) };
    };
}

shader!(ELEMENTWISE, "elementwise", "runs");
shader!(CONV, "conv");
shader!(CONV3X3, "conv3x3");
shader!(CONV_SG, "conv_sg");
shader!(CONV_GEMM, "conv_gemm");
shader!(CONV_COOP, "conv_coop");
shader!(CONV_SPLITK, "conv_splitk");
shader!(CONV_PACK, "conv_pack");
shader!(MATMUL, "matmul");
shader!(MATMUL_SG, "matmul_sg");
shader!(NORM, "norm");
shader!(ATTENTION, "attention");
shader!(ATTENTION_FUSED, "attention_fused");
shader!(RESAMPLE, "resample", "runs");
shader!(EMBEDDING, "embedding");
shader!(REDUCE, "reduce");
shader!(RNG, "rng");
shader!(ADAM, "adam");
shader!(FFT, "fft");
shader!(FFT_CONV, "fft_conv");
shader!(MEASURE, "measure");
shader!(TILES, "tiles");
shader!(JPEG, "jpeg");
shader!(CG, "cg");
shader!(DDRM, "ddrm");
shader!(CONV_TRANSPOSE, "conv_transpose");
shader!(NORM_BACKWARD, "norm_backward");
shader!(SOFTMAX_BACKWARD, "softmax_backward");
shader!(DPS, "dps");
shader!(WINOGRAD, "winograd");

/// The prelude files (`wgsl/<name>.wgsl`, not shaders on their own: they use their includer's overrides).
pub static PRELUDES: &[&str] = &["runs"];

/// All shaders, for validation.
pub static ALL: &[&Shader] = &[
    &ELEMENTWISE,
    &CONV,
    &CONV3X3,
    &CONV_SG,
    &CONV_GEMM,
    &CONV_COOP,
    &CONV_SPLITK,
    &CONV_PACK,
    &MATMUL,
    &MATMUL_SG,
    &NORM,
    &ATTENTION,
    &ATTENTION_FUSED,
    &RESAMPLE,
    &EMBEDDING,
    &REDUCE,
    &RNG,
    &ADAM,
    &FFT,
    &FFT_CONV,
    &MEASURE,
    &TILES,
    &JPEG,
    &CG,
    &DDRM,
    &CONV_TRANSPOSE,
    &NORM_BACKWARD,
    &SOFTMAX_BACKWARD,
    &WINOGRAD,
    &DPS,
];
