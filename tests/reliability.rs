//! The real binary on a corpus of bad inputs generated at test time: every case must exit non-zero with an
//! `error:` message and no panic, and leave every pre-existing file byte-for-byte untouched. Categories:
//! bad arguments, outputs that would clobber an input or are not writable files, bad images, bad models,
//! and eval edge cases (zero images, a corrupt image among good ones, resume).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_reddiff");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("reddiff-rel-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every regular file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                m.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    m
}

struct Outcome {
    code: Option<i32>,
    text: String,
}

fn run(dir: &Path, args: &[&str]) -> Outcome {
    let out = Command::new(BIN).current_dir(dir).env("XDG_RUNTIME_DIR", "/tmp").args(args).output().expect("run reddiff");
    Outcome { code: out.status.code(), text: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)) }
}

/// Runs every case in `dir`; each must fail cleanly and touch no existing file. Returns the case count.
fn expect_clean_failures(dir: &Path, cases: &[Vec<String>]) -> usize {
    let mut problems = Vec::new();
    for args in cases {
        let before = snapshot(dir);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(dir, &a);
        let after = snapshot(dir);
        let changed: Vec<&PathBuf> = before.iter().filter(|(p, b)| after.get(*p) != Some(*b)).map(|(p, _)| p).collect();
        let new: Vec<&PathBuf> = after.keys().filter(|p| !before.contains_key(*p)).collect();
        if o.code == Some(0) || o.code.is_none() || o.text.contains("panicked") || !o.text.contains("error:") {
            problems.push(format!("{args:?}: exit {:?}, output: {}", o.code, o.text.trim()));
        } else if !changed.is_empty() || !new.is_empty() {
            problems.push(format!("{args:?}: changed {changed:?}, created {new:?}"));
        }
    }
    assert!(problems.is_empty(), "{} of {} cases misbehaved:\n{}", problems.len(), cases.len(), problems.join("\n"));
    cases.len()
}

fn case(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A model directory copied from a fixture, with `edit` applied to its config text and weight bytes.
fn model_variant(dir: &Path, name: &str, edit: impl FnOnce(&mut String, &mut Vec<u8>)) -> String {
    let src = root().join("tests/fixtures/adm_plain_newattn");
    let mut cfg = std::fs::read_to_string(src.join("config.json")).unwrap();
    let mut w = std::fs::read(src.join("model.safetensors")).unwrap();
    edit(&mut cfg, &mut w);
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("config.json"), cfg).unwrap();
    std::fs::write(d.join("model.safetensors"), w).unwrap();
    name.to_string()
}

#[test]
fn bad_arguments_and_unsafe_outputs_fail_cleanly_and_touch_nothing() {
    let dir = scratch("args");
    let sample = root().join("assets/samples/google-1f309.png");
    for f in ["in.png", "foo-compare.png", "mask.png", "kernel.png"] {
        std::fs::copy(&sample, dir.join(f)).unwrap();
    }
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::copy(&sample, dir.join("images/a.png")).unwrap();
    std::fs::create_dir_all(dir.join("folder.png")).unwrap();
    let fifo = dir.join("fifo.png");
    let _ = Command::new("mkfifo").arg(&fifo).status();
    std::fs::write(dir.join("io.safetensors"), std::fs::read(root().join("tests/fixtures/adm_plain_newattn/io.safetensors")).unwrap()).unwrap();
    let r = |extra: &[&str]| {
        let mut v = case(&["restore", "--steps", "2", "--input", "in.png"]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let mut cases = vec![
        // Numbers out of range or not numbers.
        r(&["--steps", "0"]),
        r(&["--steps", "18446744073709551615"]),
        r(&["--steps", "-3"]),
        r(&["--lr", "-1"]),
        r(&["--lr", "nan"]),
        r(&["--lr", "inf"]),
        r(&["--lambda", "-0.5"]),
        r(&["--sigma-y", "2"]),
        r(&["--sigma-y", "-0.1"]),
        r(&["--sigma-x0", "-1"]),
        r(&["--seed", "x"]),
        // Names that do not exist.
        r(&["--task", "sr3"]),
        r(&["--task", "inpaint-mask=missing.png"]),
        r(&["--task", "deblur-kernel="]),
        r(&["--weighting", "cubic"]),
        r(&["--order", "sideways"]),
        r(&["--init", "magic"]),
        r(&["--fit", "stretch"]),
        r(&["--model", "no-such-model"]),
        case(&["restore", "--steps", "2", "--input", "missing.png"]),
        case(&["nonsense-command"]),
        // Outputs that would destroy an input, are not files, or cannot be written.
        r(&["--output", "in.png"]),
        r(&["--output", "./in.png"]),
        case(&["restore", "--steps", "2", "--input", "foo-compare.png", "--output", "foo.png"]),
        r(&["--task", "inpaint-mask=mask.png", "--output", "mask.png"]),
        r(&["--task", "inpaint-mask=foo-compare.png", "--output", "foo.png"]),
        r(&["--task", "deblur-kernel=kernel.png", "--output", "kernel.png"]),
        r(&["--output", "folder.png"]),
        r(&["--output", "/nonexistent/out.png"]),
        r(&["--output", "out.xyz"]),
        r(&["--output", "/dev/null"]),
        case(&["eval", "--steps", "2", "--images", "images", "--out", "images/a.png"]),
        case(&["eval", "--steps", "2", "--images", "images", "--out", "folder.png"]),
        case(&["eval", "--steps", "2", "--images", "images", "--out", "/nonexistent/r.csv"]),
        case(&["eval", "--steps", "2", "--images", "images", "--batch", "0"]),
        case(&["eval", "--steps", "2", "--images", "images", "--batch", "100000"]),
        case(&["eval", "--steps", "2", "--images", "images", "--shard", "3/2"]),
        case(&["eval", "--steps", "2", "--images", "images", "--shard", "a/b"]),
        case(&["eval", "--steps", "2", "--images", "images", "--limit", "0", "--out", "r0.csv"]),
        case(&["eval", "--steps", "2", "--images", "missing-folder"]),
        case(&["eval", "--steps", "2", "--images", "folder.png"]),
        case(&[
            "eps",
            "--model",
            &root().join("tests/fixtures/adm_plain_newattn").to_string_lossy(),
            "--input",
            "io.safetensors",
            "--output",
            "io.safetensors",
        ]),
        case(&["eps", "--input", "in.png", "--output", "e.safetensors"]),
        case(&["sample", "--n", "0"]),
        case(&["sample", "--n", "100000"]),
        case(&["sample", "--steps", "0"]),
        case(&["sample", "--steps", "5000"]),
        case(&["sample", "--eta", "-1"]),
        case(&["sample", "--output", "samples.gif"]),
        case(&["sample", "--noise", "in.png", "--output", "in.png"]),
    ];
    if fifo.exists() {
        cases.push(r(&["--output", "fifo.png"]));
    }
    let n = expect_clean_failures(&dir, &cases);
    eprintln!("argument and output cases: {n}, all clean");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_images_and_models_fail_cleanly() {
    let dir = scratch("inputs");
    let png = std::fs::read(root().join("assets/samples/google-1f309.png")).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty.png", vec![]),
        ("text.png", b"this is not an image".to_vec()),
        ("cut.png", png[..png.len() / 2].to_vec()),
        ("header.png", png[..40].to_vec()),
        ("random.jpg", (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect()),
        ("renamed.webp", png.clone()[..100].to_vec()),
    ];
    for (n, b) in &files {
        std::fs::write(dir.join(n), b).unwrap();
    }
    let mut cases = Vec::new();
    for (n, _) in &files {
        cases.push(case(&["restore", "--steps", "2", "--input", n]));
        cases.push(case(&["restore", "--steps", "2", "--task", &format!("inpaint-mask={n}")]));
        cases.push(case(&["restore", "--steps", "2", "--task", &format!("deblur-kernel={n}")]));
    }
    let models = [
        model_variant(&dir, "m-typo", |c, _| *c = c.replace("num_head_channels", "num_head_channel")),
        model_variant(&dir, "m-unknown", |c, _| *c = c.replacen('{', "{\"use_magic\": true,", 1)),
        model_variant(&dir, "m-huge", |c, _| *c = c.replace("\"image_size\": 16", "\"image_size\": 1048576")),
        model_variant(&dir, "m-json", |c, _| c.truncate(c.len() / 2)),
        model_variant(&dir, "m-array", |c, _| *c = "[1, 2, 3]".into()),
        model_variant(&dir, "m-negative", |c, _| *c = c.replace("\"num_channels\": 32", "\"num_channels\": -32")),
        model_variant(&dir, "m-truncated", |_, w| w.truncate(w.len() - 100)),
        model_variant(&dir, "m-header", |_, w| w[0] = w[0].wrapping_add(50)),
        model_variant(&dir, "m-empty", |_, w| w.clear()),
        model_variant(&dir, "m-nan", |_, w| {
            // The last 4 bytes are part of some tensor's data: make them a NaN (f32) or two NaNs (f16).
            let n = w.len();
            w[n - 4..].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
        }),
    ];
    for m in &models {
        cases.push(case(&["info", "--model", m]));
        cases.push(case(&["restore", "--steps", "2", "--model", m]));
    }
    cases.push(case(&["sample", "--model", "m-nan", "--n", "1", "--steps", "1"]));
    let n = expect_clean_failures(&dir, &cases);
    // The misspelt key is named with its correction; NaN weights name the tensor.
    assert!(run(&dir, &["info", "--model", "m-typo"]).text.contains("did you mean 'num_head_channels'"));
    assert!(run(&dir, &["info", "--model", "m-nan"]).text.contains("NaN"));
    assert!(run(&dir, &["info", "--model", "m-huge"]).text.contains("2048"));
    eprintln!("image and model cases: {n}, all clean");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_keeps_finished_rows_skips_bad_images_and_resumes() {
    let dir = scratch("eval");
    let samples = root().join("assets/samples");
    std::fs::create_dir_all(dir.join("imgs")).unwrap();
    for n in ["google-1f309.png", "google-1f466.png"] {
        std::fs::copy(samples.join(n), dir.join("imgs").join(n)).unwrap();
    }
    std::fs::write(dir.join("imgs/broken.png"), b"not a png").unwrap();
    let args = ["eval", "--steps", "2", "--images", "imgs", "--out", "r.csv"];
    let o = run(&dir, &args);
    assert_eq!(o.code, Some(1), "a skipped image makes the exit code non-zero: {}", o.text);
    assert!(o.text.contains("broken.png") && !o.text.contains("panicked"), "{}", o.text);
    let csv = std::fs::read_to_string(dir.join("r.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + the two good images:\n{csv}");
    // Resume: nothing left but the broken image; the rows stay.
    std::fs::remove_file(dir.join("imgs/broken.png")).unwrap();
    std::fs::copy(samples.join("google-1f469-1f3fd-200d-2696-fe0f.png"), dir.join("imgs/z.png")).unwrap();
    let o = run(&dir, &[&args[..], &["--resume"]].concat());
    assert_eq!(o.code, Some(0), "{}", o.text);
    assert!(o.text.contains("2 of 3 images already"), "{}", o.text);
    let csv2 = std::fs::read_to_string(dir.join("r.csv")).unwrap();
    assert!(csv2.starts_with(&csv) && csv2.lines().count() == 4, "resume appends one row:\n{csv2}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn closed_pipes_and_non_utf8_paths_are_fine() {
    let dir = scratch("hygiene");
    // `reddiff info | true`: stdout closed before anything is printed.
    let mut child =
        Command::new(BIN).current_dir(&dir).env("XDG_RUNTIME_DIR", "/tmp").arg("info").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && out.status.code() == Some(0), "closed pipe: {:?} {err}", out.status);
    // A non-UTF-8 output name works.
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"\xffout.png");
    let o = Command::new(BIN).current_dir(&dir).env("XDG_RUNTIME_DIR", "/tmp").args(["restore", "--steps", "1", "--output"]).arg(name).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join(name).is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
