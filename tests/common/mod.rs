//! Running the `cdcgan` binary from the end-to-end tests.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdcgan"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn");
    command
}

/// Runs `cdcgan ARGS` to completion.
pub fn cdcgan(args: &[&str]) -> Output {
    command(args).output().expect("the binary runs")
}

/// Runs `cdcgan generate --run RUN --grid --out OUT`.
pub fn generate_grid(run: &str, out: &std::path::Path) -> Output {
    cdcgan(&[
        "generate",
        "--run",
        run,
        "--grid",
        "--out",
        out.to_str().unwrap(),
    ])
}

/// Starts `cdcgan ARGS` with stderr captured.
pub fn spawn(args: &[&str]) -> Child {
    command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// A tiny real training run: 400 MNIST images, batches of 20, a metrics row
/// per step, no evaluation.
pub const TINY_TRAIN: [&str; 8] = [
    "--limit",
    "400",
    "--batch-size",
    "20",
    "--log-every",
    "1",
    "--eval-every",
    "0",
];

/// Trains the tiny run into `run` for `steps` iterations (no progress bar).
pub fn train_tiny(run: &std::path::Path, steps: u64) {
    train_tiny_with(run, steps, &[]);
}

/// [`train_tiny`] with more training flags.
pub fn train_tiny_with(run: &std::path::Path, steps: u64, flags: &[&str]) {
    let steps = steps.to_string();
    let out = cdcgan(
        &[
            &[
                "train",
                "--out",
                run.to_str().unwrap(),
                "--max-steps",
                &steps,
                "--quiet",
            ][..],
            &TINY_TRAIN,
            flags,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "tiny training failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (width, height) of PNG bytes.
pub fn png_dimensions(bytes: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    (reader.info().width, reader.info().height)
}
