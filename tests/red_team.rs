//! Red team, round 4: each finding reproduced with real processes and
//! files, as the round's reproducers ran them. D1 a class too small for the
//! evaluator's test split, D2 a huge metrics.csv behind `/api/live`, D3
//! Ctrl-C in the final evaluation, D4 the end line's samples/s, D5
//! `classifier train --out` over a generator; and the smaller findings.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::browser::agent;
use common::{cdcgan, path, refused, serving, start_server, text, train_tiny, write_class};

/// An image folder of two classes: `a` of 120 images, `b` of `small`.
fn uneven_folder(dir: &Path, small: usize) -> std::path::PathBuf {
    let img = dir.join("min");
    write_class(&img, "a", 120, 30);
    write_class(&img, "b", small, 220);
    img
}

fn read_json(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap()
}

/// D1 (and D4): a class of 5 images leaves one in the evaluator's test
/// split. Every scoring command used to panic on it; now the class's Frechet
/// distance is n/a with its reason, and the rest is measured. The run
/// trained with that evaluator also reports its training rate, not one
/// diluted by its evaluations.
#[test]
fn a_class_too_small_for_a_reference_is_na_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let img = uneven_folder(dir.path(), 5);
    let clf = dir.path().join("clf.safetensors");
    let out = cdcgan(&[
        "classifier",
        "train",
        "--data",
        path(&img),
        "--epochs",
        "1",
        "--out",
        path(&clf),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // train --classifier: the evaluator loads before training, scores at
    // the epoch's end and in the final evaluation.
    let run = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_cdcgan"))
        .args([
            "train",
            "--quiet",
            "--data",
            path(&img),
            "--out",
            path(&run),
        ])
        .args([
            "--classifier",
            path(&clf),
            "--batch-size",
            "25",
            "--epochs",
            "1",
        ])
        .args(["--eval-every", "1", "--eval-samples", "100"])
        .output()
        .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let report = read_json(&run.join("eval.json"));
    assert!(report["generated"]["accuracy"].is_number(), "{report}");
    let frechet = &report["generated"]["per_class_frechet"];
    assert!(frechet[1].is_null(), "class b has no reference: {frechet}");
    let why = report["generated"]["not_measured"]["per_class_frechet"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("class 1"), "{why}");
    // D4: status.json's rate is samples over the time spent stepping, so
    // at least the samples over the whole training wall time.
    let status = read_json(&run.join("status.json"));
    let steps = status["step"].as_f64().unwrap();
    let (rate, wall) = (
        status["samples_per_s"].as_f64().unwrap(),
        status["wall_s"].as_f64().unwrap(),
    );
    assert!(
        rate >= steps * 25.0 / wall,
        "{rate} samples/s over {steps} steps in {wall} s"
    );
    let end = log
        .lines()
        .find(|l| l.contains("trained to step"))
        .unwrap_or_default();
    assert!(
        end.contains(&format!("{rate:.1} samples/s")),
        "{end} vs {status}"
    );
    // eval, with and without the classification accuracy score.
    for cas in [&[][..], &["--cas", "--cas-samples", "100"][..]] {
        let eval = [
            &["eval", "--run", path(&run), "--classifier", path(&clf)][..],
            &["--data", path(&img), "--count", "100", "--json"][..],
            cas,
        ]
        .concat();
        let out = cdcgan(&eval);
        assert!(out.status.success(), "{eval:?}: {}", text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            report["generated"]["per_class_frechet"][1].is_null(),
            "{report}"
        );
    }
}

/// D2: `/api/live` on a metrics.csv of 1.5 million rows answers a bounded
/// history to six clients polling at once, and the server's memory stays
/// bounded (it grew past 3 GB before).
#[test]
fn a_huge_metrics_file_keeps_the_live_feed_small() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train_tiny(&run, 5);
    let rows = 1_500_000;
    let mut csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.reserve(rows * 60);
    for i in 0..rows {
        let step = 100 + i;
        let quality = match i % 1000 {
            0 => "0.9000,3.5000,0.7000,0.6000",
            _ => ",,,",
        };
        csv.push_str(&format!(
            "1,{step},1.20000,0.80000,0.6000,0.4000,1000.0,{:.1},{quality}\n",
            i as f64 / 100.0
        ));
    }
    std::fs::write(run.join("metrics.csv"), csv).unwrap();
    let (server, base) = start_server(&run);
    let pid = server.0.id();
    let started = Instant::now();
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let base = base.clone();
            std::thread::spawn(move || {
                let agent = agent();
                let mut sizes = Vec::new();
                let mut since = 0u64;
                let until = Instant::now() + Duration::from_secs(8);
                while Instant::now() < until {
                    let url = format!("{base}/api/live?since={since}");
                    let mut response = agent.get(&url).call().expect("answered");
                    let body = response.body_mut().read_to_string().unwrap();
                    let live: Value = serde_json::from_str(&body).unwrap();
                    // Half the clients ask only for rows they do not have.
                    if c % 2 == 0 {
                        since = live["rows"].as_u64().unwrap();
                    }
                    sizes.push((body.len(), live["losses"].as_array().unwrap().len()));
                }
                sizes
            })
        })
        .collect();
    let answers: Vec<(usize, usize)> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        answers.len() >= 12,
        "{} answers in {:?}",
        answers.len(),
        started.elapsed()
    );
    let (bytes, points) = answers
        .iter()
        .fold((0, 0), |m, a| (m.0.max(a.0), m.1.max(a.1)));
    assert!(points <= 2_001, "{points} loss rows in one answer");
    assert!(bytes < 1 << 20, "an answer of {bytes} bytes");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(
        peak_kb < 400 * 1024,
        "the server peaked at {} MB",
        peak_kb / 1024
    );
    let live: Value = agent()
        .get(&format!("{base}/api/live"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(live["rows"].as_u64(), Some(rows as u64 + 5));
    let losses = live["losses"].as_array().unwrap();
    assert_eq!(
        losses[0][0], 1,
        "the history starts at the first row: {}",
        losses[0]
    );
    assert_eq!(
        losses.last().unwrap()[0],
        100 + rows as u64 - 1,
        "and ends at the newest"
    );
    let quality = live["quality"].as_array().unwrap();
    assert!(
        (100..=501).contains(&quality.len()),
        "{} quality rows",
        quality.len()
    );
    drop(server);
}

/// D3: Ctrl-C during `train --serve`'s final evaluation stops it within
/// seconds (it ran its whole 10,000 samples, ~45 s, before), exits 130,
/// and status.json says where it stopped; eval.json is not written.
#[test]
fn ctrl_c_in_the_final_evaluation_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdcgan"));
    command
        .args(["train", "--data", "data/mnist", "--serve", "127.0.0.1:0"])
        .args([
            "--out",
            path(&run),
            "--quiet",
            "--limit",
            "200",
            "--epochs",
            "1",
        ])
        .args([
            "--eval-every",
            "1",
            "--eval-samples",
            "200",
            "--batch-size",
            "25",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped());
    let (mut trainer, base) = serving(command);
    let agent = agent();
    let until = Instant::now() + Duration::from_secs(180);
    loop {
        let live: Value = agent
            .get(&format!("{base}/api/live?since=1000000"))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        if live["message"]
            .as_str()
            .is_some_and(|m| m.contains("final evaluation"))
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "never reached the final evaluation: {live}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let asked = Instant::now();
    let pid = trainer.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = trainer.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "still running 30 s after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(trainer.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted in the final evaluation"), "{err}");
    assert!(!run.join("eval.json").exists());
    let status = read_json(&run.join("status.json"));
    assert_eq!(status["state"], "stopped", "{status}");
    assert!(
        status["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("final evaluation"),
        "{status}"
    );
    assert!(run.join("checkpoint/generator.safetensors").is_file());
}

/// D5: `classifier train --out` replaces an evaluator it wrote, never a
/// generator or another safetensors file.
#[test]
fn classifier_train_never_replaces_a_generator() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train_tiny(&run, 3);
    let mine = dir.path().join("mygen.safetensors");
    std::fs::copy(run.join("checkpoint/generator.safetensors"), &mine).unwrap();
    let before = std::fs::read(&mine).unwrap();
    let train = |out: &Path| {
        let mnist = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
        vec![
            "classifier".to_string(),
            "train".into(),
            "--data".into(),
            mnist.into(),
            "--epochs".into(),
            "1".into(),
            "--limit".into(),
            "100".into(),
            "--out".into(),
            path(out).into(),
        ]
    };
    let args = train(&mine);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        &args,
        &[
            "not an evaluator classifier that cdcgan wrote",
            "mygen.safetensors",
        ],
    );
    assert_eq!(
        std::fs::read(&mine).unwrap(),
        before,
        "the generator is untouched"
    );
    // Its own evaluator, written before, it replaces.
    let clf = dir.path().join("clf.safetensors");
    for _ in 0..2 {
        let args = train(&clf);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cdcgan(&args);
        assert!(out.status.success(), "{}", text(&out));
    }
}
