//! Bad model directories give errors naming the file, the key and the expected vs found shape.

mod common;

use std::path::{Path, PathBuf};

use common::gpu;
use reddiff::model::{weights::write_tensors, HostTensor, TensorFile, Unet};
use reddiff::Error;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A scratch copy of a fixture model directory.
fn scratch(name: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reddiff-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "diffusion_pytorch_model.safetensors"] {
        let src = fixture(name).join(f);
        if src.exists() {
            std::fs::copy(&src, dir.join(f)).unwrap();
        }
    }
    dir
}

fn load_err(dir: &Path) -> Error {
    match Unet::load(gpu(), dir) {
        Ok(_) => panic!("{} loaded but should not", dir.display()),
        Err(e) => e,
    }
}

fn rewrite(dir: &Path, f: impl FnOnce(&mut Vec<(String, HostTensor)>)) {
    let path = dir.join("model.safetensors");
    let file = TensorFile::read(&path).unwrap();
    let mut v: Vec<(String, HostTensor)> = file.tensors.into_iter().collect();
    f(&mut v);
    let refs: Vec<(&str, &HostTensor)> = v.iter().map(|(k, t)| (k.as_str(), t)).collect();
    write_tensors(&path, &refs).unwrap();
}

#[test]
fn missing_extra_and_misshaped_keys() {
    let dir = scratch("adm_plain_newattn", "missing");
    rewrite(&dir, |v| v.retain(|(k, _)| k != "middle_block.1.qkv.weight"));
    let e = load_err(&dir).to_string();
    assert!(e.contains("model.safetensors") && e.contains("middle_block.1.qkv.weight") && e.contains("missing"), "{e}");

    let dir = scratch("adm_plain_newattn", "extra");
    rewrite(&dir, |v| v.push(("bogus.weight".into(), HostTensor { shape: vec![2], data: vec![0.0, 1.0] })));
    let e = load_err(&dir).to_string();
    assert!(e.contains("bogus.weight") && e.contains("not used"), "{e}");

    let dir = scratch("adm_plain_newattn", "shape");
    rewrite(&dir, |v| {
        for (k, t) in v.iter_mut() {
            if k == "out.2.bias" {
                *t = HostTensor { shape: vec![4], data: vec![0.0; 4] };
            }
        }
    });
    let e = load_err(&dir).to_string();
    assert!(e.contains("out.2.bias") && e.contains("[4]") && e.contains("[3]"), "{e}");
}

#[test]
fn config_errors_name_the_key() {
    let dir = scratch("adm_plain_newattn", "cfgtype");
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap().replace("\"num_channels\": 32", "\"num_channels\": \"lots\"");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let e = load_err(&dir).to_string();
    assert!(e.contains("config.json") && e.contains("num_channels") && e.contains("integer"), "{e}");

    let dir = scratch("adm_plain_newattn", "cfgchan");
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap().replace("\"num_channels\": 32", "\"num_channels\": 64");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let e = load_err(&dir).to_string();
    assert!(e.contains("shape") && e.contains("expects"), "{e}");

    let dir = scratch("diffusers_ddpm", "blocktype");
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap().replace("\"AttnDownBlock2D\"", "\"CrossAttnDownBlock2D\"");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let e = load_err(&dir).to_string();
    assert!(e.contains("CrossAttnDownBlock2D") && e.contains("down_block_types"), "{e}");

    let dir = scratch("adm_plain_newattn", "json");
    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    assert!(matches!(load_err(&dir), Error::Format { .. }));
    let dir = scratch("adm_plain_newattn", "nofile");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    assert!(matches!(load_err(&dir), Error::Io { .. }));
}

#[test]
fn corrupt_weight_files() {
    let dir = scratch("adm_plain_newattn", "trunc");
    let p = dir.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&dir).to_string();
    assert!(e.contains("model.safetensors"), "{e}");

    let mut absurd = bytes.clone();
    absurd[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    std::fs::write(&p, &absurd).unwrap();
    let e = load_err(&dir).to_string();
    assert!(e.contains("header") && e.contains("truncated"), "{e}");

    std::fs::write(&p, b"abc").unwrap();
    let e = load_err(&dir).to_string();
    assert!(e.contains("not a safetensors file"), "{e}");
}

#[test]
fn forward_rejects_bad_inputs() {
    let g = gpu();
    let m = Unet::load(g, &fixture("adm_ss_updown")).unwrap();
    let x = g.zeros(&[2, 3, 32, 32]).unwrap();
    let t = g.zeros(&[2]).unwrap();
    assert!(matches!(m.forward(g, &x, &t, None), Err(Error::Invalid { .. })), "class labels required");
    assert!(matches!(m.forward(g, &x, &t, Some(&[1, 5000])), Err(Error::Invalid { .. })), "label out of range");
    assert!(matches!(m.forward(g, &g.zeros(&[2, 1, 32, 32]).unwrap(), &t, Some(&[1, 2])), Err(Error::Shape { .. })));
    assert!(matches!(m.forward(g, &g.zeros(&[2, 3, 30, 30]).unwrap(), &t, Some(&[1, 2])), Err(Error::Shape { .. })));
    assert!(matches!(m.forward(g, &x, &g.zeros(&[3]).unwrap(), Some(&[1, 2])), Err(Error::Shape { .. })));
}
