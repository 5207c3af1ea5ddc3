//! A run directory belongs to one run: a second trainer (a real second
//! process) is refused while the first holds the run's lock, readers keep
//! working meanwhile, kill -9 leaves no stale lock, `--out` never takes a
//! directory cdcgan did not write, a refused resume changes no file, and the
//! values read at the edge are bounded.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

mod common;
use common::{TINY_TRAIN, cdcgan, refused, spawn};

fn stderr_of(args: &[&str]) -> (bool, String) {
    let out = cdcgan(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("panicked"),
        "cdcgan {args:?} panicked:\n{stderr}"
    );
    (out.status.success(), stderr)
}

/// Waits until `done` holds, for at most 120 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "waited 120 s for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A long tiny training into `run`, checkpointing every 5 steps.
fn long_training(run: &Path) -> Child {
    let run = run.to_str().unwrap();
    let args = [
        &[
            "train",
            "--out",
            run,
            "--max-steps",
            "100000",
            "--checkpoint-every",
            "5",
        ][..],
        &["--quiet"],
        &TINY_TRAIN,
    ]
    .concat();
    spawn(&args)
}

#[test]
fn a_second_trainer_is_refused_while_readers_work_and_kill_9_leaves_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("runs/run");
    let run_s = run.to_str().unwrap();
    let mut first = long_training(&run);
    let pid = first.id().to_string();
    wait_for("the first checkpoint", || {
        run.join("checkpoint/train_state.safetensors").is_file()
    });

    // runs/latest points at the run being trained from its start.
    let latest = std::fs::read_link(dir.path().join("runs/latest")).unwrap();
    assert_eq!(latest, Path::new("run"));

    // A second trainer, resuming or starting anew, is refused at once, naming the holder.
    let started = Instant::now();
    let config = std::fs::read(run.join("config.json")).unwrap();
    refused(
        &["train", "--resume", run_s, "--max-steps", "7"],
        &[run_s, &format!("process {pid}")],
    );
    refused(&["train", "--out", run_s, "--max-steps", "7"], &[run_s]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused at once"
    );
    assert_eq!(
        std::fs::read(run.join("config.json")).unwrap(),
        config,
        "config.json untouched"
    );

    // Readers keep working: they read the last complete checkpoint.
    let grid = dir.path().join("grid.png");
    let (ok, stderr) = stderr_of(&[
        "generate",
        "--run",
        run_s,
        "--grid",
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert!(ok, "generate while training failed:\n{stderr}");

    // kill -9: the OS drops the lock with the process; the run resumes.
    first.kill().unwrap();
    first.wait().unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let last_step: u64 = metrics
        .lines()
        .filter_map(|l| l.split(',').nth(1)?.parse().ok())
        .max()
        .unwrap();
    let until = (last_step + 3).to_string();
    let (ok, stderr) = stderr_of(&["train", "--resume", run_s, "--max-steps", &until, "--quiet"]);
    assert!(ok, "resume after kill -9 failed:\n{stderr}");
    assert!(
        stderr.contains(&format!("trained to step {until}")),
        "{stderr}"
    );
}

#[test]
fn out_refuses_a_directory_cdcgan_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("config.json"), "{\"my\": \"own\"}").unwrap();
    std::fs::write(mine.join("metrics.csv"), "a,b\n1,2\n").unwrap();
    let args = [
        &["train", "--out", mine.to_str().unwrap(), "--max-steps", "2"][..],
        &TINY_TRAIN,
    ]
    .concat();
    refused(&args, &["did not write", "config.json", "metrics.csv"]);
    let mut left: Vec<String> = std::fs::read_dir(&mine)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["config.json", "metrics.csv"], "nothing added");
    assert_eq!(
        std::fs::read_to_string(mine.join("config.json")).unwrap(),
        "{\"my\": \"own\"}"
    );

    // An empty directory is fine, and so is a new one.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let args = [
        &[
            "train",
            "--out",
            empty.to_str().unwrap(),
            "--max-steps",
            "2",
        ][..],
        &TINY_TRAIN,
    ]
    .concat();
    let (ok, stderr) = stderr_of(&args);
    assert!(ok, "{stderr}");
}

#[test]
fn a_refused_resume_changes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    common::train_tiny(&run, 3);
    let snapshot = |run: &Path| {
        let mut files = Vec::new();
        for name in [
            "config.json",
            "metrics.csv",
            "checkpoint/train_state.safetensors",
        ] {
            files.push(std::fs::read(run.join(name)).unwrap());
        }
        files
    };
    // A damaged checkpoint: the resume fails after reading config.json, before writing anything.
    let state = run.join("checkpoint/train_state.safetensors");
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();
    let before = snapshot(&run);
    refused(
        &["train", "--resume", run_s, "--epochs", "30"],
        &["train_state"],
    );
    assert!(before == snapshot(&run), "a refused resume rewrote a file");

    // Sizes from config.json are bounded before anything is allocated.
    std::fs::write(&state, &bytes).unwrap();
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    let huge = config.replacen("\"latent_dim\": 100", "\"latent_dim\": 1000000000000", 1);
    assert_ne!(huge, config);
    std::fs::write(run.join("config.json"), huge).unwrap();
    refused(
        &["train", "--resume", run_s, "--max-steps", "4"],
        &["generator.latent_dim must be in"],
    );
}

#[test]
fn non_finite_weights_and_absurd_threads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    common::train_tiny(&run, 2);
    let (mut tensors, meta) =
        cdcgan::store::load(&run.join("checkpoint/generator.safetensors")).unwrap();
    tensors.get_mut("deconv2.weight").unwrap().values[5] = f32::NAN;
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, cdcgan::store::to_bytes(&tensors, &meta).unwrap()).unwrap();
    let out = dir.path().join("x.png");
    let args = [
        "generate",
        "--checkpoint",
        bad.to_str().unwrap(),
        "--grid",
        "--out",
    ];
    refused(
        &[&args[..], &[out.to_str().unwrap()]].concat(),
        &["deconv2.weight", "NaN"],
    );
    assert!(!out.exists());
    refused(
        &[
            "--threads",
            "99999",
            "generate",
            "--run",
            run.to_str().unwrap(),
            "--grid",
            "--out",
            "y.png",
        ],
        &["--threads must be in 1..="],
    );
}
