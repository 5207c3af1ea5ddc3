//! Runs written by cdcgan 0.1.0 (tests/fixtures/run-0.1.0-*, trained with
//! the flags in FLAGS on 2 threads) still load, sample, export and resume,
//! and training with the same flags today gives the same tensors, bit for
//! bit: a refactor that changes what is learned, or how a run is read,
//! fails here.

use std::path::{Path, PathBuf};

mod common;
use common::ok;

/// The flags each fixture was trained with (after `--recipe NAME`).
const FLAGS: [&str; 17] = [
    "--g-channels",
    "8",
    "--d-channels",
    "4",
    "--limit",
    "400",
    "--batch-size",
    "20",
    "--max-steps",
    "20",
    "--log-every",
    "5",
    "--eval-every",
    "0",
    "--seed",
    "1",
    "--quiet",
];

/// The fixtures, by the recipe each was trained with.
const RECIPES: [&str; 2] = ["varied", "seed"];

fn fixture(recipe: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/run-0.1.0-{recipe}"))
}

/// A copy of the fixture to work on (the committed one stays as it is).
fn copy_of(recipe: &str, into: &Path) -> PathBuf {
    let run = into.join(recipe);
    for sub in ["", "checkpoint"] {
        std::fs::create_dir_all(run.join(sub)).unwrap();
        for entry in std::fs::read_dir(fixture(recipe).join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), run.join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    run
}

#[test]
fn runs_of_0_1_0_load_sample_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    for recipe in RECIPES {
        let run = copy_of(recipe, dir.path());
        let r = run.to_str().unwrap();
        let png = dir.path().join(format!("{recipe}.png"));
        ok(&[
            "generate",
            "--run",
            r,
            "--grid",
            "--out",
            png.to_str().unwrap(),
        ]);
        let onnx = dir.path().join(format!("{recipe}.onnx"));
        ok(&["export", "--run", r, "--onnx", onnx.to_str().unwrap()]);
        ok(&["train", "--resume", r, "--max-steps", "25", "--quiet"]);
        let (_, meta) =
            cdcgan::store::load(&run.join("checkpoint/train_state.safetensors")).unwrap();
        assert_eq!(meta["adam_g_steps"], "25", "{recipe}: resumed to step 25");
        cdcgan::train::TrainConfig::load(&run.join("config.json")).unwrap();
    }
}

#[test]
fn the_same_flags_today_train_the_same_tensors() {
    let dir = tempfile::tempdir().unwrap();
    for recipe in RECIPES {
        let run = dir.path().join(recipe);
        let mut args = vec!["--threads", "2", "train", "--recipe", recipe];
        args.extend(FLAGS);
        args.extend(["--out", run.to_str().unwrap()]);
        ok(&args);
        let state = |run: &Path| {
            cdcgan::store::load(&run.join("checkpoint/train_state.safetensors"))
                .unwrap()
                .0
        };
        let (then, now) = (state(&fixture(recipe)), state(&run));
        assert_eq!(
            then.keys().collect::<Vec<_>>(),
            now.keys().collect::<Vec<_>>()
        );
        for (name, tensor) in &then {
            assert!(
                tensor == &now[name],
                "{recipe}: {name} differs from the 0.1.0 run's (the tensors were identical on \
                 Zen 4 and Intel Xeon with AVX-512; a change of what is learned, or of the CPU's \
                 kind of products, shows here)"
            );
        }
    }
}
