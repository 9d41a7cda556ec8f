//! openai guided-diffusion `UNetModel` ("ADM") from `config.json` (`create_model` argument names) and a
//! state_dict with guided-diffusion's own keys (`input_blocks.N.M...`, `middle_block`, `output_blocks`, `out`).

use super::blocks::{Attention, Block, Conv, EmbStack, Linear, Norm, Pointwise, Qkv, ResBlock, Resample};
use super::config::Config;
use super::loader::Loader;
use super::unet::{ModelFormat, ModelInfo, Unet};
use crate::error::Result;
use crate::ops;

const GROUPS: usize = 32;
const EPS: f32 = 1e-5;

/// guided-diffusion's default `channel_mult` per image size (`create_model` with channel_mult "").
fn default_mult(cfg: &Config, image_size: usize) -> Result<Vec<f64>> {
    Ok(match image_size {
        512 => vec![0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0],
        256 => vec![1.0, 1.0, 2.0, 2.0, 4.0, 4.0],
        128 => vec![1.0, 1.0, 2.0, 3.0, 4.0],
        64 => vec![1.0, 2.0, 3.0, 4.0],
        other => return Err(cfg.err("channel_mult", format!("empty, and guided-diffusion has no default for image_size {other}"))),
    })
}

struct Arch {
    emb: usize,
    scale_shift: bool,
    updown: bool,
    new_order: bool,
    num_heads: i64,
    head_channels: i64,
    heads_up: i64,
}

fn res(l: &mut Loader, e: &mut EmbStack, a: &Arch, key: &str, cin: usize, cout: usize, resample: Resample) -> Result<ResBlock> {
    Ok(ResBlock {
        norm1: Norm::load(l, &format!("{key}.in_layers.0"), cin, GROUPS, EPS)?,
        conv1: Conv::load(l, &format!("{key}.in_layers.2"), cin, cout, 3, 1)?,
        emb_off: e.push(l, &format!("{key}.emb_layers.1"), if a.scale_shift { 2 * cout } else { cout })?,
        norm2: Norm::load(l, &format!("{key}.out_layers.0"), cout, GROUPS, EPS)?,
        conv2: Conv::load(l, &format!("{key}.out_layers.3"), cout, cout, 3, 1)?,
        skip: if cin == cout { None } else { Some(Conv::load(l, &format!("{key}.skip_connection"), cin, cout, 1, 1)?) },
        resample,
        scale_shift: a.scale_shift,
        out_scale: 1.0,
    })
}

fn attn(cfg: &Config, l: &mut Loader, a: &Arch, key: &str, c: usize, num_heads: i64) -> Result<Attention> {
    let heads = if a.head_channels == -1 {
        if num_heads <= 0 || c % num_heads as usize != 0 {
            return Err(cfg.err("num_heads", format!("{num_heads} heads do not divide {c} channels")));
        }
        num_heads as usize
    } else {
        if a.head_channels <= 0 || c % a.head_channels as usize != 0 {
            return Err(cfg.err("num_head_channels", format!("{} does not divide {c} channels", a.head_channels)));
        }
        c / a.head_channels as usize
    };
    let qkv = Pointwise::load(l, &format!("{key}.qkv"), c, 3 * c, true)?;
    Ok(Attention {
        norm: Some(Norm::load(l, &format!("{key}.norm"), c, GROUPS, EPS)?),
        qkv: if a.new_order { Qkv::AdmNew(qkv) } else { Qkv::AdmLegacy(qkv) },
        proj: Pointwise::load(l, &format!("{key}.proj_out"), c, c, true)?,
        heads,
        rescale: 1.0,
    })
}

/// Builds the UNet; `l` is either a dry (validating) or an uploading loader.
pub(crate) fn build(cfg: &Config, l: &mut Loader, dtypes: Vec<String>) -> Result<Unet> {
    let image_size = cfg.usize_in("image_size", None, 8..=super::MAX_IMAGE_SIZE)?;
    let mc = cfg.usize_in("num_channels", None, 1..=super::MAX_CHANNELS)?;
    let nrb = cfg.usize_in("num_res_blocks", None, 0..=super::MAX_BLOCKS)?;
    let mut mult = cfg.num_list("channel_mult")?;
    if mult.is_empty() {
        mult = default_mult(cfg, image_size)?;
    }
    if mult.len() > 8 || mult.iter().any(|m| !(*m > 0.0 && m * mc as f64 <= super::MAX_CHANNELS as f64)) {
        return Err(cfg.err("channel_mult", format!("{mult:?}: at most 8 levels, each giving 1 to {} channels", super::MAX_CHANNELS)));
    }
    let attn_ds: Vec<usize> = cfg
        .num_list("attention_resolutions")?
        .iter()
        .map(|r| {
            let r = *r as usize;
            if r == 0 || image_size % r != 0 {
                Err(cfg.err("attention_resolutions", format!("{r} does not divide image_size {image_size}")))
            } else {
                Ok(image_size / r)
            }
        })
        .collect::<Result<_>>()?;
    let learn_sigma = cfg.bool("learn_sigma", false)?;
    let class_cond = cfg.bool("class_cond", false)?;
    let in_ch = cfg.usize_in("in_channels", Some(3), 1..=16)?;
    let out_ch = if learn_sigma { 2 * in_ch } else { in_ch };
    let num_heads = cfg.int("num_heads", Some(1))?;
    let heads_up = cfg.int("num_heads_upsample", Some(-1))?;
    let a = Arch {
        emb: 4 * mc,
        scale_shift: cfg.bool("use_scale_shift_norm", true)?,
        updown: cfg.bool("resblock_updown", false)?,
        new_order: cfg.bool("use_new_attention_order", false)?,
        num_heads,
        head_channels: cfg.int("num_head_channels", Some(-1))?,
        heads_up: if heads_up == -1 { num_heads } else { heads_up },
    };
    if mc == 0 || mult.iter().any(|m| *m <= 0.0 || (m * mc as f64) as usize % GROUPS != 0) {
        return Err(cfg.err("channel_mult", format!("{mult:?} x {mc} channels must give positive multiples of {GROUPS}")));
    }
    let chans = |m: f64| (m * mc as f64) as usize;

    let mut embs = EmbStack::new(a.emb);
    let time1 = Linear::load(l, "time_embed.0", mc, a.emb)?;
    let time2 = Linear::load(l, "time_embed.2", a.emb, a.emb)?;
    let label = if class_cond {
        let classes = cfg.usize_in("num_classes", Some(1000), 1..=1_000_000)?;
        Some((l.take("label_emb.weight", &[classes, a.emb])?, classes))
    } else {
        None
    };

    let mut ch = chans(mult[0]);
    let mut max_act = ch * image_size * image_size;
    let mut track = |c: usize, ds: usize, extra: usize| max_act = max_act.max(c * (image_size / ds).pow(2)).max(extra);
    let mut down: Vec<Vec<Block>> = vec![vec![Block::Conv(Conv::load(l, "input_blocks.0.0", in_ch, ch, 3, 1)?)]];
    let mut skip_ch = vec![ch];
    let mut ds = 1;
    let mut idx = 1;
    for (level, m) in mult.iter().enumerate() {
        for _ in 0..nrb {
            let out = chans(*m);
            let mut entry = vec![Block::Res(res(l, &mut embs, &a, &format!("input_blocks.{idx}.0"), ch, out, Resample::None)?)];
            ch = out;
            if attn_ds.contains(&ds) {
                let at = attn(cfg, l, &a, &format!("input_blocks.{idx}.1"), ch, a.num_heads)?;
                let t = (image_size / ds).pow(2);
                track(3 * ch, ds, at.heads * t * t);
                entry.push(Block::Attn(at));
            }
            track(ch, ds, 0);
            down.push(entry);
            skip_ch.push(ch);
            idx += 1;
        }
        if level + 1 != mult.len() {
            let key = format!("input_blocks.{idx}.0");
            let b = if a.updown {
                Block::Res(res(l, &mut embs, &a, &key, ch, ch, Resample::Down)?)
            } else {
                Block::Down(Some(Conv::load(l, &format!("{key}.op"), ch, ch, 3, 2)?))
            };
            down.push(vec![b]);
            skip_ch.push(ch);
            ds *= 2;
            idx += 1;
        }
    }
    let mid_attn = attn(cfg, l, &a, "middle_block.1", ch, a.num_heads)?;
    let t = (image_size / ds).pow(2);
    track(3 * ch, ds, mid_attn.heads * t * t);
    let mid = vec![
        Block::Res(res(l, &mut embs, &a, "middle_block.0", ch, ch, Resample::None)?),
        Block::Attn(mid_attn),
        Block::Res(res(l, &mut embs, &a, "middle_block.2", ch, ch, Resample::None)?),
    ];
    let mut up = Vec::new();
    let mut idx = 0;
    for (level, m) in mult.iter().enumerate().rev() {
        for i in 0..=nrb {
            let ich = skip_ch.pop().unwrap_or(0);
            let out = chans(*m);
            track(ch + ich, ds, 0);
            let mut entry = vec![Block::Res(res(l, &mut embs, &a, &format!("output_blocks.{idx}.0"), ch + ich, out, Resample::None)?)];
            ch = out;
            let mut sub = 1;
            if attn_ds.contains(&ds) {
                let at = attn(cfg, l, &a, &format!("output_blocks.{idx}.1"), ch, a.heads_up)?;
                let t = (image_size / ds).pow(2);
                track(3 * ch, ds, at.heads * t * t);
                entry.push(Block::Attn(at));
                sub += 1;
            }
            if level > 0 && i == nrb {
                let key = format!("output_blocks.{idx}.{sub}");
                entry.push(if a.updown {
                    Block::Res(res(l, &mut embs, &a, &key, ch, ch, Resample::Up)?)
                } else {
                    Block::Up(Some(Conv::load(l, &format!("{key}.conv"), ch, ch, 3, 1)?))
                });
                ds /= 2;
                track(ch, ds, 0);
            }
            up.push(entry);
            idx += 1;
        }
    }
    let (emb_proj, emb_total) = embs.finish(l)?;
    let out_norm = Norm::load(l, "out.0", ch, GROUPS, EPS)?;
    let out_conv = Conv::load(l, "out.2", ch, out_ch, 3, 1)?;
    let freqs_host = ops::embedding_freqs(mc, 0.0, 10000.0)?;
    let freqs = l.upload(&[freqs_host.len()], &freqs_host)?;
    let summary = format!(
        "ADM UNet, {mc} channels x {mult:?}, {nrb} res blocks/level, attention at {:?} ({}), {}{}{}{}",
        cfg.num_list("attention_resolutions")?,
        if a.head_channels > 0 { format!("{} channels/head", a.head_channels) } else { format!("{num_heads} heads") },
        if a.scale_shift { "scale-shift norm, " } else { "" },
        if a.updown { "resblock up/down, " } else { "conv up/down, " },
        if a.new_order { "new attention order" } else { "legacy attention order" },
        if learn_sigma { ", learned sigma" } else { "" },
    );
    Ok(Unet {
        info: ModelInfo {
            format: ModelFormat::Adm,
            image_size,
            in_channels: in_ch,
            out_channels: out_ch,
            num_classes: label.as_ref().map(|l| l.1),
            params: l.params,
            weight_dtypes: dtypes,
            max_activation: max_act,
            summary,
        },
        freqs,
        emb_dim: mc,
        flip_sin_to_cos: true,
        time1,
        time2,
        emb_proj,
        emb_total,
        label,
        center_input: false,
        down,
        mid,
        up,
        out_norm,
        out_conv,
        graphs: Default::default(),
        tape_graphs: Default::default(),
    })
}
