//! Checks on output paths, made before any work starts, so that a long solve never ends in an unwritable
//! path and never overwrites a file the same command reads (or a device node, or a folder).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn invalid(path: &Path, msg: impl Into<String>) -> Error {
    Error::Invalid { op: "output", msg: format!("{}: {}", path.display(), msg.into()) }
}

/// The folder `path` would be written in (`.` for a bare file name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Errors unless `path` can be written as an output: its folder exists and accepts new files, it is absent
/// or a regular file, and it is none of `inputs` (compared by canonical path, so `./a.png` and `a.png`
/// match). Creates and removes a probe file in the folder; touches nothing else.
pub fn check_output(path: &Path, inputs: &[&Path]) -> Result<()> {
    if path.as_os_str().is_empty() || path.file_name().is_none() {
        return Err(invalid(path, "not a file name"));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            let target = std::fs::metadata(path).map_err(|_| invalid(path, "is a broken symbolic link"))?;
            if !target.is_file() {
                return Err(invalid(path, "is a link to something that is not a regular file; it would be replaced"));
            }
        }
        Ok(m) if !m.is_file() => return Err(invalid(path, "exists and is not a regular file (a folder or a device); choose another name")),
        _ => {}
    }
    let dir = parent_of(path);
    if !dir.is_dir() {
        return Err(invalid(path, format!("the folder {} does not exist", dir.display())));
    }
    if let Ok(out) = path.canonicalize() {
        for input in inputs {
            if input.canonicalize().is_ok_and(|i| i == out) {
                return Err(invalid(path, format!("is also an input ({}); it would be overwritten", input.display())));
            }
        }
    }
    let probe = dir.join(format!(".reddiff-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(invalid(path, format!("cannot write in {}: {e}", dir.display()))),
    }
}

/// Errors when two outputs of one command are the same file.
pub fn check_distinct(outputs: &[&Path]) -> Result<()> {
    for (i, a) in outputs.iter().enumerate() {
        for b in &outputs[i + 1..] {
            let same = a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
            if same {
                return Err(invalid(a, "is given for two outputs of the same command"));
            }
        }
    }
    Ok(())
}
