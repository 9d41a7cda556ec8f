//! Writes reddiff's keyed Gaussian draws to a safetensors file, so that a reference implementation (e.g.
//! `tools/diffpir_torch.py`) can replay a solver's trajectory with exactly the noise reddiff uses.
//! `cargo run --release --example export_noise -- --shape 2,3,16,16 --seed 0 --keys 0,1 \
//!     --offsets 0,1,2,18446744073709551613 --out noise.safetensors`
//! Tensor `noise_<offset>` is `ops::normal_keyed(shape, seed, keys, offset, 0, 1)`.

use reddiff::model::{weights::write_tensors, HostTensor};
use reddiff::{ops, solvers::image_keys, Error, Gpu, Result};

fn list<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<Vec<T>> {
    s.split(',').map(|v| v.trim().parse().map_err(|_| Error::Invalid { op: what, msg: format!("'{v}' is not a number") })).collect()
}

fn main() -> Result<()> {
    let (mut shape, mut seed, mut keys, mut offsets, mut out) = (vec![1, 3, 32, 32], 0u64, Vec::new(), vec![0u64], String::from("noise.safetensors"));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().ok_or(Error::Invalid { op: "export_noise", msg: format!("{a} needs a value") })?;
        match a.as_str() {
            "--shape" => shape = list(&v, "--shape")?,
            "--seed" => seed = v.parse().map_err(|_| Error::Invalid { op: "--seed", msg: v.clone() })?,
            "--keys" => keys = list(&v, "--keys")?,
            "--offsets" => offsets = list(&v, "--offsets")?,
            "--out" => out = v,
            o => return Err(Error::Invalid { op: "export_noise", msg: format!("unknown option {o}") }),
        }
    }
    let gpu = Gpu::new()?;
    let k = image_keys(&gpu, &keys, shape.first().copied().unwrap_or(0))?;
    let mut tensors = Vec::new();
    for off in &offsets {
        let t = ops::normal_keyed(&gpu, &shape, seed, &k, *off, 0.0, 1.0)?;
        tensors.push((format!("noise_{off}"), HostTensor { shape: shape.clone(), data: t.read(&gpu)? }));
    }
    let refs: Vec<(&str, &HostTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    write_tensors(out.as_ref(), &refs)?;
    println!("wrote {} noise tensors {:?} to {out}", tensors.len(), shape);
    Ok(())
}
