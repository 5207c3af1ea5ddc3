//! The library examples run as a user would run them: `write_digits` writes
//! digits from a trained run, `train_steps` trains from code. `cargo test`
//! builds the examples beside this test (target/<profile>/examples/).

use std::path::PathBuf;
use std::process::Command;

mod common;

/// The built example `name`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.is_file(),
        "{}: not built; run the whole suite (scripts/test), or cargo build --release --examples",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn write_digits_draws_from_a_trained_run() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    common::train_tiny(&run_dir, 2);
    let png = dir.path().join("2026.png");
    let said = run(
        "write_digits",
        &[run_dir.to_str().unwrap(), "2026", png.to_str().unwrap()],
    );
    assert!(said.contains("4 digits"), "{said}");
    let (width, height) = common::png_dimensions(&std::fs::read(&png).unwrap());
    assert_eq!((width, height), (4 * 30 + 2, 32));
}

#[test]
fn train_steps_trains_from_code() {
    let said = run("train_steps", &["20"]);
    assert!(said.contains("step 20: D loss"), "{said}");
    assert!(
        said.contains("trained 20 native steps; drew 10 sevens"),
        "{said}"
    );
}
