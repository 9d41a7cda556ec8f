//! recommended.json: parsing, lookup by task and σ_y, how unset options are filled, and the file the
//! built-in prior ships (chosen by `reddiff eval --sweep`).

use std::path::Path;

use reddiff::operators::{Task, TaskKind};
use reddiff::recommended::{resolve, Choices, Recommended, Setting, PAPER_LAMBDA, PAPER_STEPS};
use reddiff::solvers::Method;

fn task(name: &str) -> Task {
    Task { kind: name.parse::<TaskKind>().expect("task"), seed: 0 }
}

fn setting(task: &str, sigma_y: f32, method: Method, best: bool, steps: usize, lambda: Option<f32>, lr: Option<f32>) -> Setting {
    Setting { task: task.into(), sigma_y, method, best, steps, lambda, lr, images: 8, psnr: 25.0, ssim: 0.9, seconds_per_image: 1.5 }
}

fn sample() -> Recommended {
    Recommended {
        note: "test".into(),
        settings: vec![
            setting("inpaint-box", 0.0, Method::RedDiff, true, 200, Some(0.5), Some(0.25)),
            setting("inpaint-box", 0.0, Method::Ddrm, false, 20, None, None),
            setting("sr4", 0.0, Method::Pgdm, true, 100, None, None),
            setting("sr4", 0.0, Method::RedDiff, false, 100, Some(0.75), Some(0.4)),
            setting("sr4", 0.05, Method::Ddrm, true, 20, None, None),
        ],
    }
}

#[test]
fn round_trips_through_json() {
    let r = sample();
    let back = Recommended::parse(&r.to_json(), Path::new("r.json")).expect("parse");
    assert_eq!(back, r);
}

#[test]
fn lookup_is_by_task_and_sigma_y() {
    let r = sample();
    assert_eq!(r.best(&task("sr4"), 0.0).map(|s| s.method), Some(Method::Pgdm));
    assert_eq!(r.for_method(&task("sr4"), 0.0, Method::RedDiff).map(|s| s.steps), Some(100));
    assert_eq!(r.best(&task("sr4"), 0.05).map(|s| s.method), Some(Method::Ddrm));
    assert!(r.best(&task("sr4"), 0.1).is_none());
    assert!(r.best(&task("sr2"), 0.0).is_none());
    assert!(r.for_method(&task("inpaint-box"), 0.0, Method::Pgdm).is_none());
}

#[test]
fn unset_options_come_from_the_recommendation_else_the_paper() {
    let r = sample();
    let none = Choices::default();
    // Nothing given: the whole recommendation.
    let x = resolve(none, &task("inpaint-box"), 0.0, Some(&r)).unwrap();
    assert_eq!((x.method, x.steps, x.lambda, x.lr), (Method::RedDiff, 200, 0.5, 0.25));
    assert!(x.from.is_some());
    let x = resolve(none, &task("sr4"), 0.0, Some(&r)).unwrap();
    assert_eq!((x.method, x.steps), (Method::Pgdm, 100));
    // Steps given (the best is a baseline): RED-diff, with its own tuned λ and lr.
    let x = resolve(Choices { steps: Some(7), ..none }, &task("sr4"), 0.0, Some(&r)).unwrap();
    assert_eq!((x.method, x.steps, x.lambda, x.lr), (Method::RedDiff, 7, 0.75, 0.4));
    assert!(x.from.is_some());
    // RED-diff asked for: its setting, not the best's.
    let x = resolve(Choices { method: Some(Method::RedDiff), ..none }, &task("sr4"), 0.0, Some(&r)).unwrap();
    assert_eq!((x.method, x.steps, x.lambda), (Method::RedDiff, 100, 0.75));
    // A method the sweep did not try: the paper's settings for it.
    let x = resolve(Choices { method: Some(Method::Pgdm), ..none }, &task("inpaint-box"), 0.0, Some(&r)).unwrap();
    assert_eq!((x.method, x.steps), (Method::Pgdm, 100));
    assert!(x.from.is_none());
    // Everything given: nothing comes from the file.
    let all = Choices { method: Some(Method::RedDiff), steps: Some(5), lambda: Some(0.1), lr: Some(0.1) };
    assert!(resolve(all, &task("inpaint-box"), 0.0, Some(&r)).unwrap().from.is_none());
    // No file, or a σ_y it does not cover: the paper's defaults.
    for x in [resolve(none, &task("inpaint-box"), 0.0, None).unwrap(), resolve(none, &task("sr4"), 0.2, Some(&r)).unwrap()] {
        assert_eq!((x.method, x.steps, x.lambda), (Method::RedDiff, PAPER_STEPS, PAPER_LAMBDA));
    }
    // A recommended method that cannot run with the user's steps still says so.
    assert!(resolve(Choices { method: Some(Method::Pgdm), steps: Some(5000), ..none }, &task("sr4"), 0.0, Some(&r)).is_err());
}

#[test]
fn bad_files_are_refused_with_the_reason() {
    let p = Path::new("recommended.json");
    let cases = [
        ("{", "not valid JSON"),
        (r#"{"format": 2, "settings": []}"#, "unknown format"),
        (r#"{"format": 1}"#, "no 'settings'"),
        (r#"{"format": 1, "settings": [{"task": "sr4", "method": "nope", "steps": 10}]}"#, "unknown method"),
        (r#"{"format": 1, "settings": [{"task": "sr4", "method": "ddrm", "steps": 0}]}"#, "'steps'"),
        (r#"{"format": 1, "settings": [{"task": "sr4", "method": "reddiff", "steps": 10, "lr": -1}]}"#, "'lr'"),
        (r#"{"format": 1, "settings": [{"task": "sr4", "method": "ddrm", "steps": 9}, {"task": "sr4", "method": "ddrm", "steps": 8}]}"#, "two DDRM settings"),
        (
            r#"{"format": 1, "settings": [{"task": "sr4", "method": "ddrm", "best": true, "steps": 9}, {"task": "sr4", "method": "pgdm", "best": true, "steps": 9}]}"#,
            "two best",
        ),
    ];
    for (text, want) in cases {
        let e = Recommended::parse(text, p).expect_err(text).to_string();
        assert!(e.contains(want) && e.contains("recommended.json"), "{text}: {e}");
    }
}

#[test]
fn the_built_in_prior_ships_settings_for_the_main_tasks() {
    let r = Recommended::builtin().expect("the embedded recommended.json parses").expect("built with builtin-model");
    for t in ["inpaint-box", "inpaint-random", "sr4", "deblur-gauss", "deblur-motion"] {
        let s = r.best(&task(t), 0.0).unwrap_or_else(|| panic!("no best setting for {t}"));
        assert!(s.images >= 8 && s.psnr.is_finite(), "{t}: {s:?}");
        let rd = r.for_method(&task(t), 0.0, Method::RedDiff).unwrap_or_else(|| panic!("no RED-diff setting for {t}"));
        assert!(rd.lambda.is_some() && rd.lr.is_some() && rd.psnr <= s.psnr, "{t}: {rd:?}");
        // Every shipped setting must be runnable as is.
        resolve(Choices::default(), &task(t), 0.0, Some(&r)).expect("runnable");
    }
    assert!(r.note.contains("eval --sweep"), "{}", r.note);
}
