//! Interruptions done for real: SIGKILL at random moments (a checkpoint is
//! written every 3 steps, so some kills land mid-write), then `--resume`
//! until the run finishes; SIGINT and SIGTERM write a checkpoint and exit
//! cleanly with the resume command.

use std::path::Path;
use std::process::{Child, Command};

mod common;
use common::{TINY_TRAIN, checkpoint_step, spawn};
use std::time::{Duration, Instant};

use cdcgan::train::metrics;

const CHECKPOINT_EVERY: u64 = 3;
const MAX_STEPS: u64 = 45;

fn last_logged_step(run: &Path) -> u64 {
    let path = run.join("metrics.csv");
    match path.exists() {
        true => metrics::read(&path).unwrap().last().map_or(0, |r| r.step),
        false => 0,
    }
}

/// SIGKILL at random moments, then `--resume` until the run finishes: every
/// checkpoint left loads, and the finished run's metrics are whole.
#[test]
fn survives_sigkill_at_random_moments_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let (max_steps, every) = (MAX_STEPS.to_string(), CHECKPOINT_EVERY.to_string());
    let common = [
        "--max-steps",
        &max_steps,
        "--checkpoint-every",
        &every,
        "--quiet",
    ];
    // The seed network: its steps are slow enough for the kills to land mid-run.
    let seed = ["--recipe", "seed"];
    let first: Vec<&str> = [&["train", "--out", run_s][..], &seed, &TINY_TRAIN, &common].concat();
    let resume: Vec<&str> = [&["train", "--resume", run_s][..], &common].concat();
    let kills = kill_and_resume_until_finished(&run, &first, &resume);
    assert_eq!(checkpoint_step(&run), Some(MAX_STEPS), "the run finished");
    cdcgan::sample::Sampler::load(&run.join("checkpoint/generator.safetensors"))
        .expect("the finished run's generator loads");
    assert!(
        kills >= 2,
        "the test should have killed the run several times ({kills})"
    );
    eprintln!("survived {kills} SIGKILLs (checkpoint every {CHECKPOINT_EVERY} steps)");
    the_finished_run_is_whole(&run);
}

/// Trains with `first` (then `resume` once a checkpoint exists), killing up
/// to KILLS attempts at a random moment; the one after runs to the end.
/// After each kill the checkpoint loads and never goes back. Returns the kills.
fn kill_and_resume_until_finished(run: &Path, first: &[&str], resume: &[&str]) -> usize {
    // Kill delays (ms) drawn from a fixed seed: a deterministic but irregular set.
    let mut state = 0x2545_f491u64;
    let mut kills = 0;
    let mut last_checkpoint = 0u64;
    const KILLS: usize = 8;
    for attempt in 0..=KILLS {
        let args = if checkpoint_step(run).is_some() {
            resume
        } else {
            first
        };
        let child = spawn(args);
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = match attempt < KILLS {
            true => Duration::from_millis(400 + state % 1600),
            false => Duration::from_secs(300),
        };
        if finishes_before(child, delay, attempt) {
            break;
        }
        kills += 1;
        // After a kill: the checkpoint loads, and nothing logged is more than
        // one checkpoint interval ahead of it.
        if let Some(step) = checkpoint_step(run) {
            assert!(
                step >= last_checkpoint,
                "checkpoint went back from {last_checkpoint} to {step}"
            );
            let logged = last_logged_step(run);
            assert!(
                logged <= step + CHECKPOINT_EVERY,
                "logged step {logged} vs checkpoint {step}"
            );
            last_checkpoint = step;
        }
    }
    kills
}

/// Whether `child` exits within `delay` (it must succeed); if not, it is
/// SIGKILLed and reaped.
fn finishes_before(mut child: Child, delay: Duration, attempt: usize) -> bool {
    let started = Instant::now();
    let finished = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() >= delay {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    match finished {
        Some(status) => {
            let mut said = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
            }
            assert!(
                status.success(),
                "attempt {attempt} failed: {status}\n{said}"
            );
            true
        }
        None => {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            false
        }
    }
}

/// metrics.csv has each step once, whole; the checkpoint folder holds only
/// checkpoint files and temporary files a kill interrupted.
fn the_finished_run_is_whole(run: &Path) {
    let steps: Vec<u64> = metrics::read(&run.join("metrics.csv"))
        .unwrap()
        .iter()
        .map(|r| r.step)
        .collect();
    assert_eq!(
        steps,
        (1..=MAX_STEPS).collect::<Vec<_>>(),
        "metrics.csv: no duplicated, missing or torn rows"
    );
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(text.lines().count() as u64, MAX_STEPS + 1);
    // No temporary files are left behind in the checkpoint directory... except
    // ones a kill interrupted, which are never read.
    for entry in std::fs::read_dir(run.join("checkpoint")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            name.ends_with(".safetensors") || name.contains(".tmp-"),
            "{name}"
        );
    }
}

#[test]
fn sigint_and_sigterm_write_a_checkpoint_and_say_how_to_resume() {
    for signal in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let out = [
            "train",
            "--out",
            run.to_str().unwrap(),
            "--max-steps",
            "100000",
            "--quiet",
        ];
        let child = spawn(&[&out[..], &TINY_TRAIN].concat());
        // Wait until training is under way.
        let started = Instant::now();
        while last_logged_step(&run) < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "training did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Interrupted is not finished: 130, as a shell reports Ctrl-C, for scripts to see.
        assert_eq!(out.status.code(), Some(130), "{signal}: {stderr}");
        assert!(
            stderr.contains("Resume with: cdcgan train --resume"),
            "{stderr}"
        );
        let step = checkpoint_step(&run).expect("a checkpoint was written");
        assert!(
            step >= 2 && step >= last_logged_step(&run),
            "checkpoint at {step}"
        );
    }
}

/// `timeout` (like `docker stop`, systemd and job control) signals the
/// process and then its process group: one request, two SIGTERMs within
/// milliseconds. It once counted as a second Ctrl-C and exited without a
/// checkpoint about one time in ten; now it finishes the step and writes one.
#[test]
fn timeouts_group_sigterm_is_one_request_and_writes_the_checkpoint() {
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let run = dir.path().join("run");
            let child = Command::new("timeout")
                .args(["--preserve-status", "-s", "TERM", "6"])
                .arg(env!("CARGO_BIN_EXE_cdcgan"))
                .args(["--threads", "1", "train", "--out", run.to_str().unwrap()])
                .args(["--max-steps", "100000", "--quiet"])
                .args(TINY_TRAIN)
                .env("RUST_LOG", "warn")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("timeout runs");
            (dir, run, child)
        })
        .collect();
    for (_dir, run, child) in runs {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("second interrupt"), "{stderr}");
        assert!(stderr.contains("checkpoint written"), "{stderr}");
        assert_eq!(out.status.code(), Some(130), "{stderr}");
        assert!(checkpoint_step(&run).is_some_and(|s| s >= 1), "{stderr}");
    }
}
