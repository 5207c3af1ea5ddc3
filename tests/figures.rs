//! No figure without meaning: every subcommand, run as a real process over a
//! tiny real run with small counts, prints no NaN or inf; below a figure's
//! minimum sample `eval` (table and JSON), `eval --cas` and the in-training
//! probe say "n/a" with the reason; the real-digit ceiling is drawn with the
//! generated set's classes, so a class never drawn is n/a on both sides.

use std::path::Path;

use serde_json::Value;

mod common;

use common::{cdcgan, shared_run, start_server};

/// One tiny run (one epoch of 400 digits), its in-training probe at 20 samples.
fn tiny_run() -> &'static Path {
    shared_run("figures-run", |run| {
        let out = cdcgan(&[
            "train",
            "--out",
            run.to_str().unwrap(),
            "--limit",
            "400",
            "--batch-size",
            "20",
            "--log-every",
            "5",
            "--max-steps",
            "20",
            "--eval-samples",
            "20",
            "--eval-every",
            "1",
            "--quiet",
        ]);
        assert_clean("train", &out);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("--eval-samples 20: the in-training frechet is n/a: it needs >= 129"),
            "the probe names what it could not measure:\n{log}"
        );
    })
}

/// The words of `text` that print a non-finite number as a figure.
fn non_finite_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .map(|w| w.trim_matches('.').to_ascii_lowercase())
        .filter(|w| ["nan", "inf", "infinity"].contains(&w.as_str()))
        .collect()
}

/// Fails unless the command succeeded and printed no NaN or inf.
fn assert_clean(what: &str, out: &std::process::Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    assert!(
        non_finite_words(&text).is_empty(),
        "{what} printed a non-finite figure:\n{text}"
    );
}

/// Writes `images` (28x28 each) and `labels` as IDX files in `dir`.
fn write_set(dir: &Path, images: &[u8], labels: &[u8]) -> (String, String) {
    let idx = |magic: u32, dims: &[usize], data: &[u8]| {
        let mut bytes = magic.to_be_bytes().to_vec();
        for d in dims {
            bytes.extend((*d as u32).to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    };
    let (i, l) = (dir.join("images"), dir.join("labels"));
    let n = labels.len();
    std::fs::write(&i, idx(0x803, &[n, 28, 28], images)).unwrap();
    std::fs::write(&l, idx(0x801, &[n], labels)).unwrap();
    (
        i.to_str().unwrap().to_string(),
        l.to_str().unwrap().to_string(),
    )
}

/// 30 real test digits of each class but 9 (the first ones of each).
fn set_without_nines() -> (Vec<u8>, Vec<u8>) {
    let test = cdcgan::data::Dataset::load(
        cdcgan::data::DatasetKind::Mnist,
        None,
        cdcgan::data::Split::Test,
    )
    .unwrap();
    let (mut images, mut labels) = (vec![], vec![]);
    for class in 0..9u8 {
        for i in (0..test.len())
            .filter(|&i| test.labels[i] == class)
            .take(30)
        {
            images.extend_from_slice(test.image(i));
            labels.push(class);
        }
    }
    (images, labels)
}

/// Every subcommand, and the API of `serve`, over the tiny run: no NaN or inf.
#[test]
fn every_subcommand_over_a_tiny_run_prints_no_nan_or_inf() {
    let run = tiny_run();
    let r = run.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let probe = metrics.lines().last().unwrap();
    assert!(
        probe.split(',').nth(9) == Some(""),
        "metrics.csv leaves the unmeasured Frechet empty: {probe}"
    );
    let (images, labels) = set_without_nines();
    let (i, l) = write_set(dir.path(), &images, &labels);
    let cache = tempfile::tempdir().unwrap();
    let commands = [
        drawing_commands(r, dir.path()),
        scoring_commands(r, dir.path(), &i, &l),
    ];
    for args in commands.iter().flatten() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdcgan"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RUST_LOG", "info")
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap();
        assert_clean(&args.join(" "), &out);
    }
    let (_server, base) = start_server(run);
    for path in [
        "/api/info",
        "/api/class?label=1&count=2",
        "/api/digits?text=42",
    ] {
        let mut response = ureq::get(&format!("{base}{path}")).call().unwrap();
        let body = response.body_mut().read_to_vec().unwrap();
        let text = String::from_utf8_lossy(&body);
        if path == "/api/info" {
            assert!(non_finite_words(&text).is_empty(), "{path}: {text}");
        }
    }
}

/// Command lines as owned strings.
fn owned(commands: Vec<Vec<&str>>) -> Vec<Vec<String>> {
    commands
        .into_iter()
        .map(|c| c.into_iter().map(String::from).collect())
        .collect()
}

/// generate, export, morph and gif over the run `r`, writing into `dir`.
fn drawing_commands(r: &str, dir: &Path) -> Vec<Vec<String>> {
    let at = |name: &str| dir.join(name).to_str().unwrap().to_string();
    owned(vec![
        vec!["generate", "--run", r, "--grid", "--out", &at("g.png")],
        vec![
            "generate",
            "--run",
            r,
            "--digits",
            "0123",
            "--out",
            &at("d.png"),
        ],
        vec![
            "generate",
            "--run",
            r,
            "--label",
            "3",
            "--count",
            "1",
            "--out",
            &at("l.png"),
        ],
        vec!["export", "--run", r, "--count", "1", "--out", &at("x")],
        vec!["export", "--run", r, "--onnx", &at("g.onnx")],
        vec!["morph", "--run", r, "--steps", "2", "--out", &at("m.png")],
        vec![
            "morph",
            "--run",
            r,
            "--latent",
            "--steps",
            "2",
            "--out",
            &at("m.gif"),
        ],
        vec!["gif", "--run", r],
    ])
}

/// eval of the run `r` and of the IDX set (`i`, `l`), classifier training
/// into `dir`, and bench, all with small counts.
fn scoring_commands(r: &str, dir: &Path, i: &str, l: &str) -> Vec<Vec<String>> {
    let classifier = dir.join("c.safetensors").to_str().unwrap().to_string();
    owned(vec![
        vec!["eval", "--run", r, "--count", "20"],
        vec!["eval", "--run", r, "--count", "20", "--json"],
        vec![
            "eval",
            "--run",
            r,
            "--count",
            "20",
            "--cas",
            "--cas-samples",
            "100",
        ],
        vec!["eval", "--images", i, "--labels", l, "--cas"],
        vec!["eval", "--images", i, "--labels", l, "--json"],
        vec![
            "classifier",
            "train",
            "--epochs",
            "1",
            "--limit",
            "200",
            "--out",
            &classifier,
        ],
        vec![
            "bench",
            "--iters",
            "1",
            "--gen-iters",
            "1",
            "--warmup",
            "0",
            "--batch-size",
            "4",
            "--g-channels",
            "8",
            "--d-channels",
            "4",
        ],
    ])
}

#[test]
fn eval_below_the_minimums_says_na_with_the_reason() {
    let run = tiny_run();
    // 50 digits, 5 a class (an even mix): enough for per-class accuracy, too
    // few for any Frechet distance.
    let eval = ["eval", "--run", run.to_str().unwrap(), "--count", "50"];
    let out = cdcgan(&[&eval[..], &["--class-mix", "even", "--json"]].concat());
    assert_clean("eval --count 50 --json", &out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for side in ["generated", "ceiling"] {
        let f = &report[side];
        assert!(
            f["frechet"].is_null() && f["mean_class_frechet"].is_null(),
            "{f}"
        );
        assert!(
            f["per_class_frechet"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_null)
        );
        assert!(
            f["per_class_accuracy"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_number)
        );
        assert_eq!(
            f["per_class_samples"],
            serde_json::json!(vec![5; 10]),
            "{side}"
        );
        let why = f["not_measured"]["frechet"].as_str().unwrap();
        assert!(why.starts_with("needs >= 129 samples (got 50)"), "{why}");
        assert!(f["precision"].is_number() && f["recall"].is_number());
    }
    let table = cdcgan(&[&eval[..], &["--class-mix", "even"]].concat());
    assert_clean("eval --count 50", &table);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("n/a: Frechet distance needs >= 129 samples (got 50)"),
        "{table}"
    );
    assert!(
        table.contains("n/a: per-class Frechet needs >= 129 per class (class 0 has 5)"),
        "{table}"
    );
}

#[test]
fn a_set_missing_a_class_is_na_for_that_class_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = set_without_nines();
    let (i, l) = write_set(dir.path(), &images, &labels);
    let out = cdcgan(&["eval", "--images", &i, "--labels", &l, "--json"]);
    assert_clean("eval --images (no nines) --json", &out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for side in ["generated", "ceiling"] {
        let f = &report[side];
        let accuracy = f["per_class_accuracy"].as_array().unwrap();
        // A ceiling drawn at random once gave class 9 "accuracy 0.0000" from no digits.
        assert!(
            accuracy[9].is_null() && accuracy[..9].iter().all(Value::is_number),
            "{side}: {f}"
        );
        assert_eq!(f["per_class_samples"][9], 0, "{side}");
        assert_eq!(f["per_class_samples"][0], 30, "{side}");
        assert!(f["mean_class_frechet"].is_null(), "{side}: {f}");
        let why = f["not_measured"]["per_class_accuracy"].as_str().unwrap();
        assert!(why.contains("(class 9 has 0)"), "{why}");
    }
    assert!(report["diversity"][9].is_null(), "{report}");
    let cas = cdcgan(&["eval", "--images", &i, "--labels", &l, "--cas"]);
    assert_clean("eval --images (no nines) --cas", &cas);
    let table = String::from_utf8_lossy(&cas.stdout);
    assert!(
        table.contains("n/a: classification acc. score needs >= 10 per class (class 9 has 0)"),
        "{table}"
    );
}
