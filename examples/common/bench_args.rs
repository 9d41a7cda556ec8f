//! What the model benchmarks share: `[MODEL_DIR ...] [--batch N] [--reps N]` (default: the built-in prior,
//! batch 1, 5 repetitions) and the median of timings.

use std::path::PathBuf;

/// Model directories, batch size and repetitions from the command line.
pub fn parse() -> (Vec<PathBuf>, usize, usize) {
    let mut dirs = Vec::new();
    let (mut batch, mut reps) = (1usize, 5usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--batch" => batch = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(5).max(1),
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    if dirs.is_empty() {
        dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/emoji32"));
    }
    (dirs, batch, reps)
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
