//! safetensors reading and writing: F32, F16, BF16 (and I64 / I32 / F64 for inputs like timesteps) are all
//! converted to f32 on the CPU; errors name the file, the key and the expected vs found shape.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// A host-side tensor: shape and f32 values.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// All tensors of one safetensors file, converted to f32.
#[derive(Debug)]
pub struct TensorFile {
    /// The file (for error messages).
    pub path: PathBuf,
    /// Tensors by key.
    pub tensors: BTreeMap<String, HostTensor>,
    /// Storage dtypes seen, e.g. {"F16"}.
    pub dtypes: Vec<String>,
    /// Keys whose values were stored as F16 (so f16 copies of them are exact).
    pub f16_keys: BTreeSet<String>,
}

fn format_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), msg: msg.into() }
}

impl TensorFile {
    /// Reads a safetensors file.
    pub fn read(path: &Path) -> Result<TensorFile> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::parse(path, &bytes)
    }

    /// Parses safetensors bytes; `path` only names the source in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<TensorFile> {
        let st = deserialize(path, bytes)?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.iter() {
            tensors.insert(name.to_string(), HostTensor { shape: view.shape().to_vec(), data: values(path, name, &view)? });
        }
        let (dtypes, f16_keys) = dtypes_of(&st);
        Ok(TensorFile { path: path.to_path_buf(), tensors, dtypes, f16_keys })
    }

    /// The tensor `key`, or an error naming the file and key.
    pub fn get(&self, key: &str) -> Result<&HostTensor> {
        self.tensors.get(key).ok_or_else(|| format_err(&self.path, format!("missing tensor '{key}'")))
    }
}

/// Checks the header and parses the index of safetensors `bytes` (tensors stay in place).
fn deserialize<'b>(path: &Path, bytes: &'b [u8]) -> Result<SafeTensors<'b>> {
    if bytes.len() < 8 {
        return Err(format_err(path, format!("not a safetensors file: only {} bytes", bytes.len())));
    }
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    if header_len > bytes.len() as u64 - 8 {
        return Err(format_err(
            path,
            format!(
                "the safetensors header length says {header_len} bytes, but only {} bytes follow it (truncated, or not a safetensors file)",
                bytes.len() - 8
            ),
        ));
    }
    SafeTensors::deserialize(bytes).map_err(|e| format_err(path, format!("invalid safetensors: {e}")))
}

/// The values of one stored tensor as f32.
fn values(path: &Path, name: &str, view: &safetensors::tensor::TensorView) -> Result<Vec<f32>> {
    let data = view.data();
    Ok(match view.dtype() {
        Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F64 => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect(),
        Dtype::I64 => data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect(),
        Dtype::I32 => data.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
        other => return Err(format_err(path, format!("tensor '{name}' has unsupported dtype {other:?} (need F32, F16 or BF16)"))),
    })
}

/// The storage dtypes seen (in file order) and the keys stored as F16.
fn dtypes_of(st: &SafeTensors) -> (Vec<String>, BTreeSet<String>) {
    let mut dtypes = Vec::new();
    let mut f16_keys = BTreeSet::new();
    for (name, view) in st.iter() {
        if view.dtype() == Dtype::F16 {
            f16_keys.insert(name.to_string());
        }
        let d = format!("{:?}", view.dtype());
        if !dtypes.contains(&d) {
            dtypes.push(d);
        }
    }
    (dtypes, f16_keys)
}

/// The tensors of a safetensors file read in place: each is converted to f32 only when asked for, so
/// loading a model holds the file's bytes plus one tensor's f32 copy at a time (not the whole model in f32).
pub(crate) struct WeightFile<'a> {
    /// The file (for error messages).
    pub(crate) path: PathBuf,
    st: SafeTensors<'a>,
    /// Storage dtypes seen, e.g. ["F16"].
    pub(crate) dtypes: Vec<String>,
    /// Keys stored as F16 (f16 copies of them are exact).
    pub(crate) f16_keys: BTreeSet<String>,
}

impl<'a> WeightFile<'a> {
    /// Parses the header of safetensors `bytes`; `path` only names them in errors.
    pub(crate) fn parse(path: &Path, bytes: &'a [u8]) -> Result<WeightFile<'a>> {
        let st = deserialize(path, bytes)?;
        let (dtypes, f16_keys) = dtypes_of(&st);
        Ok(WeightFile { path: path.to_path_buf(), st, dtypes, f16_keys })
    }

    /// Every key, sorted.
    pub(crate) fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.st.names().into_iter().map(str::to_string).collect();
        k.sort();
        k
    }

    /// The stored shape of `key`.
    pub(crate) fn shape(&self, key: &str) -> Result<Vec<usize>> {
        self.st.tensor(key).map(|v| v.shape().to_vec()).map_err(|_| format_err(&self.path, format!("missing tensor '{key}'")))
    }

    /// The values of `key` as f32 (converted now).
    pub(crate) fn values(&self, key: &str) -> Result<Vec<f32>> {
        let view = self.st.tensor(key).map_err(|_| format_err(&self.path, format!("missing tensor '{key}'")))?;
        values(&self.path, key, &view)
    }

    /// Errors (naming the tensor) when `data`, the values of `key`, hold NaN or infinities.
    pub(crate) fn check_finite(&self, key: &str, data: &[f32]) -> Result<()> {
        let bad = data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(format_err(&self.path, format!("tensor '{key}' has {bad} NaN or infinite value(s) of {}: the checkpoint is damaged", data.len())));
        }
        Ok(())
    }
}

/// Writes f32 tensors as a safetensors file, atomically (temporary file in the same folder, then rename).
pub fn write_tensors(path: &Path, tensors: &[(&str, &HostTensor)]) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> =
        tensors.iter().map(|(k, t)| (k.to_string(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.clone())).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(k, b, s)| safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).map(|v| (k.clone(), v)).map_err(|e| format_err(path, e.to_string())))
        .collect::<Result<_>>()?;
    let out = safetensors::serialize(views, None).map_err(|e| format_err(path, e.to_string()))?;
    write_atomic(path, &out)
}

/// Writes bytes to `path` through a temporary sibling and a rename, so readers never see a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        // A full disk leaves a partial temporary file: remove it (the target is untouched).
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
