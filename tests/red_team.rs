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
use common::{
    cdcgan, path, refused, serving, start_server, text, train_folder, train_tiny, write_class,
};

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
    // eval, with and without the classification accuracy score; an even mix,
    // so the generated side has 50 of class b and only the real side is short.
    for cas in [&[][..], &["--cas", "--cas-samples", "100"][..]] {
        let eval = [
            &["eval", "--run", path(&run), "--classifier", path(&clf)][..],
            &["--data", path(&img), "--count", "100", "--json"][..],
            &["--class-mix", "even"][..],
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
        if !cas.is_empty() {
            // Class b has 4 real training images: too few for the CAS ceiling's batch.
            let why = report["not_measured"]["cas"].as_str().unwrap_or_default();
            assert!(why.contains("class 1 has 4"), "{report}");
        }
    }
}

/// `rows` more metrics rows in the run's metrics.csv, every 1000th evaluated.
fn append_metrics_rows(run: &Path, rows: usize) {
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
}

/// `clients` clients polling `/api/live` for `seconds`, half of them asking
/// only for rows they do not have: each answer's (bytes, loss rows).
fn poll_live(base: &str, clients: usize, seconds: Duration) -> Vec<(usize, usize)> {
    let clients: Vec<_> = (0..clients)
        .map(|c| {
            let base = base.to_string();
            std::thread::spawn(move || {
                let agent = agent();
                let mut sizes = Vec::new();
                let mut since = 0u64;
                let until = Instant::now() + seconds;
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
    clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect()
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
    append_metrics_rows(&run, rows);
    let (server, base) = start_server(&run);
    let pid = server.0.id();
    let started = Instant::now();
    let answers = poll_live(&base, 6, Duration::from_secs(8));
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
    eprintln!(
        "D2: {} answers, largest {bytes} bytes / {points} rows, server peak {} MB",
        answers.len(),
        peak_kb / 1024
    );
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
    eprintln!(
        "D3: exited {:?} after Ctrl-C in the final evaluation",
        asked.elapsed()
    );
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

/// `cdcgan ARGS` with `RUST_LOG=info` and the environment `env`: its output.
fn logged(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cdcgan"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// A folder of classes `a` (10 images), `b` (8) and a hidden `.hidden` (5).
fn small_folder(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("img");
    write_class(&img, "a", 10, 0);
    write_class(&img, "b", 8, 255);
    write_class(&img, ".hidden", 5, 128);
    img
}

/// M: a small folder's batch-size messages, and its hidden class folder.
#[test]
fn small_folders_get_the_right_words() {
    let dir = tempfile::tempdir().unwrap();
    let img = small_folder(dir.path());
    // The batch-size check names the folder's images, not --limit.
    let run = dir.path().join("run");
    let train = [
        "train",
        "--quiet",
        "--data",
        path(&img),
        "--out",
        path(&run),
    ];
    let err = refused(&[&train[..], &["--batch-size", "25"]].concat(), &[]);
    assert!(err.contains("larger than the 18 images of --data"), "{err}");
    assert!(!err.contains("--limit"), "{err}");
    let err = refused(
        &[&train[..], &["--batch-size", "12", "--limit", "10"]].concat(),
        &[],
    );
    assert!(
        err.contains("the 10 training images --limit keeps (of 18)"),
        "{err}"
    );
    // classifier train names its held-out images and its batch.
    refused(
        &[
            "classifier",
            "train",
            "--data",
            path(&img),
            "--out",
            path(&dir.path().join("c.safetensors")),
        ],
        &["18 images", "held out", "batch of 100"],
    );
    // A hidden class folder is named as left out.
    let flags = [
        "--batch-size",
        "10",
        "--max-steps",
        "2",
        "--eval-every",
        "0",
    ];
    let args = [
        &[
            "train",
            "--quiet",
            "--data",
            path(&img),
            "--out",
            path(&run),
        ][..],
        &flags,
    ]
    .concat();
    let out = logged(&args, &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(".hidden/") && l.contains("hidden folder")),
        "{log}"
    );
}

/// M: a resume that repeats or changes a value; class folders added, or
/// removed with the run's data/.
#[test]
fn resumes_take_repeated_values_and_name_changed_classes() {
    let dir = tempfile::tempdir().unwrap();
    let img = small_folder(dir.path());
    let run = dir.path().join("run");
    let out = train_folder(&img, &run, "2", &[]);
    assert!(out.status.success(), "{}", text(&out));
    // A resume repeating the run's value is taken; a change is refused naming both.
    let resume = |extra: &[&str]| {
        let args = [&["train", "--quiet", "--resume", path(&run)][..], extra].concat();
        logged(&args, &[])
    };
    let out = resume(&[
        "--image-size",
        "28",
        "--batch-size",
        "10",
        "--max-steps",
        "4",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = resume(&["--image-size", "32", "--max-steps", "5"]);
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("--image-size cannot change"), "{err}");
    assert!(err.contains("image_size: 28 -> 32"), "{err}");
    // A class folder added is named and left out; one removed, with data/ gone too, is an error.
    write_class(&img, "c", 10, 60);
    let out = resume(&["--max-steps", "5"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("[\"c\"] were added since the run started"),
        "{log}"
    );
    std::fs::remove_dir_all(img.join("b")).unwrap();
    std::fs::remove_dir_all(run.join("data")).unwrap();
    let out = resume(&["--max-steps", "6"]);
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("no longer has the class folders [\"b\"]"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// M: the first Ctrl-C while a large folder is read stops at once (it
/// waited for the whole scan before), with nothing left behind.
#[test]
fn ctrl_c_while_a_folder_is_read_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big");
    // A 6000x6000 grey PNG decodes in a quarter second or so; 80 of them.
    let big = dir.path().join("big.png");
    cdcgan::sample::image::write_png(&big, 6000, 6000, 1, &vec![128; 6000 * 6000]).unwrap();
    for class in ["a", "b"] {
        std::fs::create_dir_all(img.join(class)).unwrap();
        for i in 0..40 {
            std::fs::copy(&big, img.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    let run = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cdcgan"))
        .args([
            "train",
            "--quiet",
            "--data",
            path(&img),
            "--out",
            path(&run),
        ])
        .args([
            "--max-steps",
            "1",
            "--eval-every",
            "0",
            "--batch-size",
            "10",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the scan ended within 1.5 s"
    );
    let asked = Instant::now();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let waited = asked.elapsed();
    eprintln!("M3: exited {waited:?} after Ctrl-C in the scan");
    let err = text(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(waited < Duration::from_secs(5), "{waited:?} after Ctrl-C");
    assert!(err.contains("nothing trained"), "{err}");
    assert!(!run.join("config.json").exists());
}

/// M: a grey 32 px run scored by a colour 32 px evaluator gets a hint that names --channels.
#[test]
fn the_evaluator_hint_names_channels() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    // A grey 32 px run scored by a colour 32 px evaluator: the hint names --channels.
    let img = at("img");
    write_class(&img, "a", 60, 20);
    write_class(&img, "b", 60, 230);
    let clf = at("colour.safetensors");
    let out = cdcgan(&[
        "classifier",
        "train",
        "--data",
        path(&img),
        "--image-size",
        "32",
        "--channels",
        "3",
        "--epochs",
        "1",
        "--out",
        path(&clf),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    refused(
        &[
            "train",
            "--data",
            path(&img),
            "--image-size",
            "32",
            "--channels",
            "1",
            "--classifier",
            path(&clf),
            "--out",
            path(&at("r32")),
            "--max-steps",
            "1",
        ],
        &["--image-size 32 --channels 1"],
    );
}

/// M: `train --serve` on a taken port names --serve; export's words for a user's file and a FIFO.
#[test]
fn serve_and_export_name_the_flag_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    // train --serve on a taken port names --serve.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = at("run");
    refused(
        &[
            "train",
            "--data",
            "data/mnist",
            "--serve",
            &addr,
            "--out",
            path(&run),
            "--max-steps",
            "1",
        ],
        &[
            &format!("--serve {addr}: cannot listen there"),
            "with --serve ADDR",
        ],
    );
    // Export: a user's file in an earlier export's class folder, and a FIFO as --out.
    train_tiny(&run, 3);
    let export = at("export");
    let out = cdcgan(&[
        "export",
        "--run",
        path(&run),
        "--format",
        "png",
        "--count",
        "20",
        "--out",
        path(&export),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(export.join("3/notes.txt"), "mine").unwrap();
    let err = refused(
        &[
            "export",
            "--run",
            path(&run),
            "--format",
            "png",
            "--count",
            "20",
            "--out",
            path(&export),
        ],
        &["3/notes.txt", "the earlier export there did not write"],
    );
    assert!(!err.contains("no export.json"), "{err}");
    let fifo = at("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let err = refused(
        &[
            "export",
            "--run",
            path(&run),
            "--format",
            "png",
            "--out",
            path(&fifo),
        ],
        &["is not a folder"],
    );
    assert!(!err.contains("IDX"), "{err}");
}

/// M: bf16 on a CPU without it is refused before a run folder exists or bench measures; auto says all is fp32.
#[test]
fn bf16_without_the_cpu_for_it_is_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    // bf16 on a CPU without it: refused before a run folder exists or bench measures.
    let no_bf16 = [("CDCGAN_NO_BF16", "1")];
    let bf16_run = at("bf16");
    let out = logged(
        &[
            "train",
            "--precision",
            "bf16",
            "--out",
            path(&bf16_run),
            "--max-steps",
            "1",
        ],
        &no_bf16,
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("AVX512_BF16"), "{}", text(&out));
    assert!(!bf16_run.exists(), "a refused run leaves no folder");
    let out = logged(&["bench", "--precision", "bf16"], &no_bf16);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), text(&out));
    assert!(
        !out.status.success() && all.contains("AVX512_BF16"),
        "{all}"
    );
    assert!(!all.contains("GFLOP/s"), "nothing measured: {all}");
    let out = logged(
        &[
            "train",
            "--precision",
            "auto",
            "--out",
            path(&at("auto")),
            "--max-steps",
            "1",
            "--limit",
            "100",
            "--batch-size",
            "20",
            "--eval-every",
            "0",
            "--quiet",
        ],
        &no_bf16,
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("every product in fp32: this CPU has no AVX512_BF16"),
        "{log}"
    );
    assert!(!log.contains("-0%"), "{log}");
}

/// M: a run folder removed while it is served is said to be gone.
#[test]
fn a_served_run_removed_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train_tiny(&run, 3);
    let (server, base) = start_server(&run);
    std::fs::rename(&run, dir.path().join("moved")).unwrap();
    let live: Value = agent()
        .get(&format!("{base}/api/live"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(live["state"], "gone", "{live}");
    assert!(
        live["message"].as_str().unwrap().contains("is gone"),
        "{live}"
    );
    drop(server);
}
