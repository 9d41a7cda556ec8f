//! The command line as a user runs it: `eval --batch 8` gives every image the result that a single-image
//! `restore` of it gives (noise keyed by file name, per-image losses), and sharding does not change it.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reddiff"));
    c.env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()));
    c
}

fn run(c: &mut Command) -> String {
    let out = c.output().expect("run reddiff");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "reddiff failed: {text}");
    text
}

/// (image, RED-diff PSNR) rows of an eval CSV.
fn csv_rows(path: &PathBuf) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(path).expect("read csv");
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[6].parse().expect("psnr"))
        })
        .collect()
}

#[test]
fn eval_batch_8_equals_eight_single_image_restores_and_shards() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let samples = root.join("assets/samples");
    let tmp = std::env::temp_dir().join(format!("reddiff-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let steps = ["--steps", "3", "--sigma-y", "0.05", "--task", "sr4"];
    let batch_csv = tmp.join("batch.csv");
    run(bin().arg("eval").args(steps).arg("--images").arg(&samples).args(["--limit", "8", "--batch", "8", "--out"]).arg(&batch_csv));
    let rows = csv_rows(&batch_csv);
    assert_eq!(rows.len(), 8);
    for (name, psnr) in &rows {
        let out = tmp.join(format!("single-{name}"));
        let text = run(bin().arg("restore").args(steps).arg("--input").arg(samples.join(name)).arg("--output").arg(&out));
        let line = text.lines().find(|l| l.starts_with("RED-diff PSNR")).expect("PSNR line");
        let single: f64 = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()).expect("PSNR value");
        assert!((single - psnr).abs() < 0.006, "{name}: eval --batch 8 gives {psnr:.4} dB, restore alone {single:.2} dB");
    }
    // The second of two shards, in batches of 3: the same images get the same numbers.
    let shard_csv = tmp.join("shard.csv");
    run(bin().arg("eval").args(steps).arg("--images").arg(&samples).args(["--shard", "1/2", "--limit", "3", "--batch", "3", "--out"]).arg(&shard_csv));
    for (name, psnr) in csv_rows(&shard_csv) {
        if let Some((_, want)) = rows.iter().find(|r| r.0 == name) {
            assert!((psnr - want).abs() < 1e-3, "{name}: shard gives {psnr:.4} dB, the full batch {want:.4} dB");
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn eval_table_shows_a_dash_where_a_task_has_no_pseudo_inverse() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let csv = std::env::temp_dir().join(format!("reddiff-cli-phase-{}.csv", std::process::id()));
    let text = run(bin().args(["eval", "--task", "phase", "--steps", "2", "--limit", "1", "--images"]).arg(root.join("assets/samples")).arg("--out").arg(&csv));
    let row = text.lines().find(|l| l.starts_with("| phase |")).expect("table row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // | task | method | images | steps | PSNR H+y | SSIM H+y | PSNR | SSIM | ...
    assert_eq!(&cells[5..7], ["—", "—"], "{row}");
    assert!(cells[7].parse::<f64>().is_ok_and(f64::is_finite), "{row}");
    let _ = std::fs::remove_file(&csv);
}

#[test]
fn the_binary_runs_from_any_folder_and_reads_jpeg() {
    // The built-in model and sample are embedded: no source tree needed (as after `cargo install`).
    let tmp = std::env::temp_dir().join(format!("reddiff-cli-anywhere-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let text = run(bin().current_dir(&tmp).args(["restore", "--steps", "2", "--output", "out.jpg"]));
    assert!(text.contains("RED-diff PSNR"), "{text}");
    assert!(tmp.join("out.jpg").is_file() && tmp.join("out-compare.png").is_file());
    // A JPEG input, restored (super-resolution on tiles would need a larger image: this one is the model's size).
    let text = run(bin().current_dir(&tmp).args(["restore", "--steps", "2", "--task", "sr4", "--input", "out.jpg", "--output", "again.webp"]));
    assert!(text.contains("32x32, model 32x32"), "{text}");
    assert!(tmp.join("again.webp").is_file());
    // A real JPEG file as the measurement of JPEG artifact removal (our writer uses 4:4:4 chroma).
    let text =
        run(bin().current_dir(&tmp).args(["restore", "--steps", "2", "--task", "jpeg444=95", "--measured", "--input", "out.jpg", "--output", "dejpeg.png"]));
    assert!(text.contains("jpeg444=95") && tmp.join("dejpeg.png").is_file(), "{text}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn eval_sweep_writes_recommended_json_that_restore_then_uses() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::env::temp_dir().join(format!("reddiff-cli-sweep-{}", std::process::id()));
    let model = tmp.join("model");
    std::fs::create_dir_all(&model).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(root.join("models/emoji32").join(f), model.join(f)).unwrap();
    }
    let csv = tmp.join("sweep.csv");
    let sweep = |extra: &[&str]| {
        run(bin()
            .args(["eval", "--sweep", "--tasks", "inpaint-box,phase", "--grid-methods", "reddiff,ddrm", "--grid-steps", "2,3", "--grid-lambda", "0.25"])
            .arg("--images")
            .arg(root.join("assets/samples"))
            .args(["--limit", "2", "--model"])
            .arg(&model)
            .arg("--out")
            .arg(&csv)
            .args(extra))
    };
    let text = sweep(&[]);
    assert!(text.contains("DDRM skipped") && text.contains("nonlinear"), "phase has no SVD: {text}");
    // Rows: 2 RED-diff settings + DDRM for box inpainting, 2 RED-diff settings for phase.
    let rows: Vec<Vec<String>> = std::fs::read_to_string(&csv).unwrap().lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), 5, "{rows:?}");
    let rec = reddiff::recommended::Recommended::read_dir(&model).unwrap().expect("recommended.json in the model directory");
    for task in ["inpaint-box", "phase"] {
        let psnr = |r: &Vec<String>| r[8].parse::<f64>().unwrap();
        let best = rows.iter().filter(|r| r[0] == task).max_by(|a, b| psnr(a).total_cmp(&psnr(b))).unwrap();
        let s = rec.settings.iter().find(|s| s.task == task && s.best).expect("a best setting per task");
        assert_eq!((s.method.name(), s.steps.to_string()), (best[2].as_str(), best[3].clone()), "{task}: the best row is marked");
        // Every method tried keeps its own best row.
        for m in ["reddiff", "ddrm"] {
            let mine = rows.iter().filter(|r| r[0] == task && r[2] == m).max_by(|a, b| psnr(a).total_cmp(&psnr(b)));
            let kept = rec.settings.iter().find(|s| s.task == task && s.method.name() == m);
            assert_eq!(mine.map(|r| r[3].clone()), kept.map(|s| s.steps.to_string()), "{task} {m}");
        }
    }
    // --resume runs nothing again.
    let again = sweep(&["--resume"]);
    assert!(!again.contains("inpaint-box | RED-diff,") && !again.contains("inpaint-box | DDRM,"), "settings ran again: {again}");
    assert!(again.contains("| inpaint-box | DDRM | 20 |"), "the table still lists every setting: {again}");
    // restore uses the recommendation when given no option, and not with --paper-defaults.
    let out = tmp.join("r.png");
    let input = root.join("assets/samples/twitter-1f309.png");
    let text = run(bin().args(["restore", "--model"]).arg(&model).arg("--input").arg(&input).arg("--output").arg(&out));
    let box_setting = rec.settings.iter().find(|s| s.task == "inpaint-box" && s.best).unwrap();
    assert!(text.contains("(recommended.json") && text.contains(&format!("{} steps", box_setting.steps)), "{text}");
    let text = run(bin().args(["restore", "--paper-defaults", "--steps", "2", "--model"]).arg(&model).arg("--input").arg(&input).arg("--output").arg(&out));
    assert!(text.contains("RED-diff, 2 steps, lr 0.25, lambda 0.25") && !text.contains("recommended.json"), "{text}");
    // A sweep with the built-in model must say where to write.
    let out = bin().args(["eval", "--sweep", "--images"]).arg(root.join("assets/samples")).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--recommended"));
    let _ = std::fs::remove_dir_all(&tmp);
}
