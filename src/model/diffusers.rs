//! diffusers `UNet2DModel` from `config.json` (as `save_pretrained` writes it) and
//! `diffusion_pytorch_model.safetensors` with diffusers' key names.

use super::blocks::{Attention, Block, Conv, EmbStack, Linear, Norm, Pointwise, Qkv, ResBlock, Resample};
use super::config::Config;
use super::loader::Loader;
use super::unet::{ModelFormat, ModelInfo, Unet};
use crate::error::Result;
use crate::ops;

struct Arch {
    groups: usize,
    eps: f32,
    scale_shift: bool,
}

fn resnet(l: &mut Loader, e: &mut EmbStack, a: &Arch, key: &str, cin: usize, cout: usize, resample: Resample, out_scale: f32) -> Result<ResBlock> {
    Ok(ResBlock {
        norm1: Norm::load(l, &format!("{key}.norm1"), cin, a.groups, a.eps)?,
        conv1: Conv::load(l, &format!("{key}.conv1"), cin, cout, 3, 1)?,
        emb_off: e.push(l, &format!("{key}.time_emb_proj"), if a.scale_shift { 2 * cout } else { cout })?,
        norm2: Norm::load(l, &format!("{key}.norm2"), cout, a.groups, a.eps)?,
        conv2: Conv::load(l, &format!("{key}.conv2"), cout, cout, 3, 1)?,
        skip: if cin == cout { None } else { Some(Conv::load(l, &format!("{key}.conv_shortcut"), cin, cout, 1, 1)?) },
        resample,
        scale_shift: a.scale_shift,
        out_scale,
    })
}

fn attention(cfg: &Config, l: &mut Loader, a: &Arch, key: &str, c: usize, head_dim: usize, groups: Option<usize>, rescale: f32) -> Result<Attention> {
    if head_dim == 0 || c % head_dim != 0 {
        return Err(cfg.err("attention_head_dim", format!("{head_dim} does not divide {c} channels")));
    }
    Ok(Attention {
        norm: match groups {
            Some(g) => Some(Norm::load(l, &format!("{key}.group_norm"), c, g, a.eps)?),
            None => None,
        },
        qkv: Qkv::Separate(
            Pointwise::load(l, &format!("{key}.to_q"), c, c, false)?,
            Pointwise::load(l, &format!("{key}.to_k"), c, c, false)?,
            Pointwise::load(l, &format!("{key}.to_v"), c, c, false)?,
        ),
        proj: Pointwise::load(l, &format!("{key}.to_out.0"), c, c, false)?,
        heads: c / head_dim,
        rescale,
    })
}

/// Builds the UNet; `l` is either a dry (validating) or an uploading loader.
pub(crate) fn build(cfg: &Config, l: &mut Loader, dtypes: Vec<String>) -> Result<Unet> {
    let size = cfg.usize_in("sample_size", None, 8..=super::MAX_IMAGE_SIZE)?;
    let in_ch = cfg.usize_in("in_channels", Some(3), 1..=16)?;
    let out_ch = cfg.usize_in("out_channels", Some(3), 1..=32)?;
    let boc: Vec<usize> = cfg.num_list("block_out_channels")?.iter().map(|v| *v as usize).collect();
    let downs = cfg.str_list("down_block_types")?;
    let ups = cfg.str_list("up_block_types")?;
    if boc.len() > 8 || boc.iter().any(|c| !(1..=super::MAX_CHANNELS).contains(c)) {
        return Err(cfg.err("block_out_channels", format!("{boc:?}: at most 8 levels of 1 to {} channels", super::MAX_CHANNELS)));
    }
    if boc.is_empty() || downs.len() != boc.len() || ups.len() != boc.len() {
        return Err(cfg.err("block_out_channels", format!("{} channels for {} down / {} up blocks", boc.len(), downs.len(), ups.len())));
    }
    let lpb = cfg.usize_in("layers_per_block", Some(2), 0..=super::MAX_BLOCKS)?;
    let tet = cfg.string("time_embedding_type", Some("positional"))?;
    if tet != "positional" {
        return Err(cfg.err("time_embedding_type", format!("'{tet}' is not supported (only 'positional')")));
    }
    let act = cfg.string("act_fn", Some("silu"))?;
    if act != "silu" {
        return Err(cfg.err("act_fn", format!("'{act}' is not supported (only 'silu')")));
    }
    for key in ["class_embed_type", "num_class_embeds"] {
        if cfg.has(key) {
            return Err(cfg.err(key, "class-conditional diffusers UNets are not supported"));
        }
    }
    let tsc = cfg.string("resnet_time_scale_shift", Some("default"))?;
    let scale_shift = match tsc.as_str() {
        "default" => false,
        "scale_shift" => true,
        other => return Err(cfg.err("resnet_time_scale_shift", format!("'{other}' is not supported"))),
    };
    let down_pad = cfg.usize("downsample_padding", Some(1))?;
    if down_pad != 1 {
        return Err(cfg.err("downsample_padding", format!("{down_pad} is not supported (only 1)")));
    }
    let down_type = cfg.string("downsample_type", Some("conv"))?;
    let up_type = cfg.string("upsample_type", Some("conv"))?;
    let head_dim_cfg = if cfg.has("attention_head_dim") { Some(cfg.usize("attention_head_dim", None)?) } else { None };
    let groups = cfg.usize("norm_num_groups", Some(32))?;
    let attn_groups = if cfg.has("attn_norm_num_groups") { Some(cfg.usize("attn_norm_num_groups", None)?) } else { None };
    let temb = if cfg.has("time_embedding_dim") { cfg.usize("time_embedding_dim", None)? } else { 4 * boc[0] };
    let a = Arch { groups, eps: cfg.float("norm_eps", Some(1e-5))? as f32, scale_shift };
    let mid_scale = cfg.float("mid_block_scale_factor", Some(1.0))? as f32;

    let mut embs = EmbStack::new(temb);
    let time1 = Linear::load(l, "time_embedding.linear_1", boc[0], temb)?;
    let time2 = Linear::load(l, "time_embedding.linear_2", temb, temb)?;
    let mut max_act = boc[0] * size * size;
    let mut res_px = size * size;
    let mut down: Vec<Vec<Block>> = vec![vec![Block::Conv(Conv::load(l, "conv_in", in_ch, boc[0], 3, 1)?)]];
    let mut out_c = boc[0];
    for (i, ty) in downs.iter().enumerate() {
        let in_c = out_c;
        out_c = boc[i];
        let last = i + 1 == boc.len();
        let with_attn = match ty.as_str() {
            "DownBlock2D" | "ResnetDownsampleBlock2D" => false,
            "AttnDownBlock2D" => true,
            other => return Err(cfg.err("down_block_types", format!("unknown block type '{other}'"))),
        };
        let head_dim = head_dim_cfg.unwrap_or(out_c);
        for j in 0..lpb {
            let key = format!("down_blocks.{i}");
            let mut entry =
                vec![Block::Res(resnet(l, &mut embs, &a, &format!("{key}.resnets.{j}"), if j == 0 { in_c } else { out_c }, out_c, Resample::None, 1.0)?)];
            if with_attn {
                let at = attention(cfg, l, &a, &format!("{key}.attentions.{j}"), out_c, head_dim, Some(groups), 1.0)?;
                max_act = max_act.max(at.heads * res_px * res_px);
                entry.push(Block::Attn(at));
            }
            max_act = max_act.max(out_c * res_px);
            down.push(entry);
        }
        if !last {
            let key = format!("down_blocks.{i}.downsamplers.0");
            let resnet_down = ty == "ResnetDownsampleBlock2D" || (with_attn && down_type == "resnet");
            down.push(vec![if resnet_down {
                Block::Res(resnet(l, &mut embs, &a, &key, out_c, out_c, Resample::Down, 1.0)?)
            } else {
                Block::Down(Some(Conv::load(l, &format!("{key}.conv"), out_c, out_c, 3, 2)?))
            }]);
            res_px /= 4;
        }
    }
    let c = *boc.last().unwrap_or(&boc[0]);
    let mut mid = vec![Block::Res(resnet(l, &mut embs, &a, "mid_block.resnets.0", c, c, Resample::None, mid_scale)?)];
    if cfg.bool("add_attention", true)? {
        let g = attn_groups.or(if scale_shift { None } else { Some(groups) });
        let at = attention(cfg, l, &a, "mid_block.attentions.0", c, head_dim_cfg.unwrap_or(c), g, mid_scale)?;
        max_act = max_act.max(at.heads * res_px * res_px).max(3 * c * res_px);
        mid.push(Block::Attn(at));
    }
    mid.push(Block::Res(resnet(l, &mut embs, &a, "mid_block.resnets.1", c, c, Resample::None, mid_scale)?));

    let rev: Vec<usize> = boc.iter().rev().cloned().collect();
    let mut up = Vec::new();
    let mut out_c = rev[0];
    for (i, ty) in ups.iter().enumerate() {
        let prev = out_c;
        out_c = rev[i];
        let in_c = rev[(i + 1).min(rev.len() - 1)];
        let last = i + 1 == boc.len();
        let with_attn = match ty.as_str() {
            "UpBlock2D" | "ResnetUpsampleBlock2D" => false,
            "AttnUpBlock2D" => true,
            other => return Err(cfg.err("up_block_types", format!("unknown block type '{other}'"))),
        };
        let head_dim = head_dim_cfg.unwrap_or(out_c);
        let layers = lpb + 1;
        for j in 0..layers {
            let skip = if j == layers - 1 { in_c } else { out_c };
            let rin = if j == 0 { prev } else { out_c };
            let key = format!("up_blocks.{i}");
            max_act = max_act.max((rin + skip) * res_px);
            let mut entry = vec![Block::Res(resnet(l, &mut embs, &a, &format!("{key}.resnets.{j}"), rin + skip, out_c, Resample::None, 1.0)?)];
            if with_attn {
                let at = attention(cfg, l, &a, &format!("{key}.attentions.{j}"), out_c, head_dim, Some(groups), 1.0)?;
                max_act = max_act.max(at.heads * res_px * res_px);
                entry.push(Block::Attn(at));
            }
            if j == layers - 1 && !last {
                let ukey = format!("{key}.upsamplers.0");
                let resnet_up = ty == "ResnetUpsampleBlock2D" || (with_attn && up_type == "resnet");
                entry.push(if resnet_up {
                    Block::Res(resnet(l, &mut embs, &a, &ukey, out_c, out_c, Resample::Up, 1.0)?)
                } else {
                    Block::Up(Some(Conv::load(l, &format!("{ukey}.conv"), out_c, out_c, 3, 1)?))
                });
                res_px *= 4;
                max_act = max_act.max(out_c * res_px);
            }
            up.push(entry);
        }
    }
    let (emb_proj, emb_total) = embs.finish(l)?;
    let out_norm = Norm::load(l, "conv_norm_out", boc[0], groups, a.eps)?;
    let out_conv = Conv::load(l, "conv_out", boc[0], out_ch, 3, 1)?;
    let shift = cfg.float("freq_shift", Some(0.0))? as f32;
    let freqs_host = ops::embedding_freqs(boc[0], shift, 10000.0)?;
    let freqs = l.upload(&[freqs_host.len()], &freqs_host)?;
    let summary = format!("diffusers UNet2DModel, channels {boc:?}, {lpb} layers/block, down {downs:?}, up {ups:?}, time shift '{tsc}'");
    Ok(Unet {
        info: ModelInfo {
            format: ModelFormat::Diffusers,
            image_size: size,
            in_channels: in_ch,
            out_channels: out_ch,
            num_classes: None,
            params: l.params,
            weight_dtypes: dtypes,
            max_activation: max_act,
            summary,
        },
        freqs,
        emb_dim: boc[0],
        flip_sin_to_cos: cfg.bool("flip_sin_to_cos", true)?,
        time1,
        time2,
        emb_proj,
        emb_total,
        label: None,
        center_input: cfg.bool("center_input_sample", false)?,
        down,
        mid,
        up,
        out_norm,
        out_conv,
        graphs: Default::default(),
        tape_graphs: Default::default(),
    })
}
