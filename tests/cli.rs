//! End-to-end: the `cdcgan` binary trains a tiny run on real MNIST, resumes
//! it, writes digits and exports, and rejects bad input with clear messages.

use std::path::Path;

mod common;
use common::{cdcgan, generate_grid, ok, png_size, refused};

/// A run small enough for a test: 200 images, batches of 20.
const TINY: [&str; 4] = ["--limit", "200", "--batch-size", "20"];

/// A run's config.json.
fn run_config(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Training, refusing to train over a run, and resuming it.
#[test]
fn train_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let tiny = [&TINY[..], &["--log-every", "2", "--quiet"]].concat();
    ok(&[&["train", "--out", run_s, "--max-steps", "4"], &tiny[..]].concat());
    assert!(run.join("checkpoint/generator.safetensors").is_file());
    // Training again into the same directory is refused, pointing at --resume.
    refused(
        &[&["train", "--out", run_s, "--max-steps", "4"], &tiny[..]].concat(),
        &["--resume"],
    );
    // Resuming continues the step counter and the metrics file.
    refused(
        &["train", "--resume", run_s, "--lr", "0.1"],
        &["--lr cannot change when resuming"],
    );
    let said = ok(&["train", "--resume", run_s, "--max-steps", "6", "--quiet"]);
    assert!(said.contains("trained to step 6"), "{said}");
    // A length the run has already reached trains nothing: refused, and
    // config.json keeps the run's own length.
    let config = std::fs::read(run.join("config.json")).unwrap();
    for past in [
        &["--max-steps", "9", "--max-minutes", "0.00001"][..],
        &["--max-steps", "4"][..],
    ] {
        refused(
            &[&["train", "--resume", run_s, "--quiet"][..], past].concat(),
            &["nothing to train"],
        );
    }
    assert_eq!(std::fs::read(run.join("config.json")).unwrap(), config);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let steps: Vec<&str> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(steps, vec!["2", "4", "6"]);
}

/// A tiny run's digits, grids, exports, morphs and scores.
#[test]
fn a_run_generates_exports_morphs_and_scores() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let tiny = [&TINY[..], &["--log-every", "2", "--quiet"]].concat();
    ok(&[&["train", "--out", run_s, "--max-steps", "6"], &tiny[..]].concat());
    generates_digits_grids_and_a_class(dir.path(), &run);
    let export = exports_30_digits(dir.path(), run_s);
    morphs_and_walks(dir.path(), run_s);
    scores_the_export(&export);
    eval_draws_the_test_splits_class_mix(run_s);
    refuses_bad_requests(run_s);
}

/// `eval --run` asks G for the classes in the proportions of MNIST's test
/// split (980 zeros, 1,135 ones, ...); `--class-mix even` for equal shares.
fn eval_draws_the_test_splits_class_mix(run_s: &str) {
    let per_class = |mix: &str| -> Vec<u64> {
        let eval = ["eval", "--run", run_s, "--count", "200", "--json"];
        let out = cdcgan(&[&eval[..], &["--class-mix", mix]].concat());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        let counts = report["generated"]["per_class_samples"].as_array().unwrap();
        counts.iter().map(|n| n.as_u64().unwrap()).collect()
    };
    // 200 * [980, 1135, ...] / 10,000, the largest remainders rounded up.
    assert_eq!(per_class("data"), [20, 23, 21, 20, 20, 18, 19, 20, 19, 20]);
    assert_eq!(per_class("even"), [20; 10]);
}

/// `generate` by digits, as a grid, and by label from the checkpoint file: their sizes.
fn generates_digits_grids_and_a_class(dir: &Path, run: &Path) {
    let run_s = run.to_str().unwrap();
    let digits = dir.join("2026.png");
    ok(&[
        "generate",
        "--run",
        run_s,
        "--digits",
        "2026",
        "--out",
        digits.to_str().unwrap(),
    ]);
    assert_eq!(png_size(&digits), (4 * 30 + 2, 32));
    let grid = dir.join("grid.png");
    ok(&[
        "generate",
        "--run",
        run_s,
        "--grid",
        "--seed",
        "5",
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert_eq!(png_size(&grid), (302, 302));
    let sevens = dir.join("sevens.png");
    let checkpoint = run.join("checkpoint/generator.safetensors");
    ok(&[
        "generate",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--label",
        "7",
        "--count",
        "25",
        "--out",
        sevens.to_str().unwrap(),
    ]);
    assert_eq!(png_size(&sevens), (302, 3 * 30 + 2));
}

/// `export --count 30`: 30 IDX images, 3 of each label; returns the export folder.
fn exports_30_digits(dir: &Path, run_s: &str) -> std::path::PathBuf {
    let export = dir.join("export");
    ok(&[
        "export",
        "--run",
        run_s,
        "--count",
        "30",
        "--out",
        export.to_str().unwrap(),
    ]);
    let images = cdcgan::data::idx::read_idx(&export.join("images-idx3-ubyte"), 3).unwrap();
    let labels = cdcgan::data::idx::read_idx(&export.join("labels-idx1-ubyte"), 1).unwrap();
    assert_eq!(images.dims, vec![30, 28, 28]);
    assert_eq!(labels.data.iter().filter(|&&l| l == 9).count(), 3);
    export
}

/// Morphs: a class morph as a GIF, a latent walk as a PNG strip; a class out of range refused.
fn morphs_and_walks(dir: &Path, run_s: &str) {
    let morph = dir.join("morph.gif");
    ok(&[
        "morph",
        "--run",
        run_s,
        "--from",
        "3",
        "--to",
        "8",
        "--steps",
        "6",
        "--out",
        morph.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&morph).unwrap().starts_with(b"GIF89a"));
    // A latent walk as a strip, and the same walk with narrower noise: the
    // same strip's size, other images.
    let walk = |name: &str, noise_scale: &str| {
        let out = dir.join(name);
        let path = out.to_str().unwrap();
        ok(&[
            "morph",
            "--run",
            run_s,
            "--latent",
            "--from",
            "5",
            "--steps",
            "6",
            "--noise-scale",
            noise_scale,
            "--out",
            path,
        ]);
        assert_eq!(png_size(&out), (6 * 30 + 2, 32));
        std::fs::read(&out).unwrap()
    };
    assert_ne!(walk("walk.png", "1"), walk("narrow.png", "0.5"));
    refused(
        &["morph", "--run", run_s, "--from", "11", "--out", "x.gif"],
        &["--from 11 is out of range"],
    );
}

/// The exported set can be scored like any labelled IDX set.
fn scores_the_export(export: &Path) {
    let out = cdcgan(&[
        "eval",
        "--images",
        export.join("images-idx3-ubyte").to_str().unwrap(),
        "--labels",
        export.join("labels-idx1-ubyte").to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["generated"]["samples"], 30);
    let ceiling = report["ceiling"]["accuracy"].as_f64().unwrap();
    let generated = report["generated"]["accuracy"].as_f64().unwrap();
    assert!(ceiling > 0.9 && generated < ceiling, "{report}");
}

/// Bad requests: each one message naming the flag and the allowed values.
fn refuses_bad_requests(run_s: &str) {
    refused(
        &[
            "generate", "--run", run_s, "--digits", "12a", "--out", "x.png",
        ],
        &["position 3 is not a digit"],
    );
    refused(
        &[
            "generate", "--run", run_s, "--label", "12", "--count", "3", "--out", "x.png",
        ],
        &["--label 12 is out of range"],
    );
    refused(
        &["export", "--run", run_s, "--count", "0", "--out", "x"],
        &["--count must be in"],
    );
}

#[test]
fn fashion_mnist_trains_and_generates() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("fashion");
    let run_s = run.to_str().unwrap();
    ok(&[
        "train",
        "--dataset",
        "fashion-mnist",
        "--out",
        run_s,
        "--limit",
        "200",
        "--batch-size",
        "20",
        "--max-steps",
        "3",
        "--quiet",
    ]);
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("\"fashion-mnist\""), "{config}");
    let grid = dir.path().join("garments.png");
    let out = generate_grid(run_s, &grid);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(png_size(&grid), (302, 302));
}

#[test]
fn bad_flags_and_missing_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let out_s = out.to_str().unwrap();
    refused(
        &["train", "--out", out_s, "--batch-size", "0"],
        &["--batch-size must be in 1..=10000"],
    );
    refused(
        &["train", "--out", out_s, "--lr", "-1"],
        &["--lr must be in (0, 1]"],
    );
    refused(
        &["train", "--out", out_s, "--data", "/nonexistent/mnist"],
        &["/nonexistent/mnist"],
    );
    refused(&["train", "--resume", out_s], &["nothing to resume"]);
    if !cfg!(feature = "cuda") {
        refused(
            &["--device", "cuda", "train", "--out", out_s],
            &["built without it"],
        );
    }
    refused(
        &["generate", "--run", out_s, "--grid", "--out", "x.png"],
        &["no such run directory"],
    );
    let fake = dir.path().join("g.safetensors");
    std::fs::write(&fake, b"not a checkpoint").unwrap();
    refused(
        &[
            "generate",
            "--checkpoint",
            fake.to_str().unwrap(),
            "--grid",
            "--out",
            "x.png",
        ],
        &["g.safetensors"],
    );
}

#[test]
fn recipe_options_train_and_are_kept_in_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("recipe");
    let run_s = run.to_str().unwrap();
    let recipe = [
        "--cond",
        "projection",
        "--loss",
        "hinge",
        "--lr-d",
        "0.0004",
        "--lr-g",
        "0.0001",
        "--lr-schedule",
        "cosine",
        "--g-channels",
        "64",
        "--d-channels",
        "32",
    ];
    let tiny = [&TINY[..], &["--quiet"]].concat();
    ok(&[
        &["train", "--out", run_s, "--max-steps", "3"],
        &recipe[..],
        &tiny[..],
    ]
    .concat());
    let config = run_config(&run);
    assert_eq!(
        config["model"]["discriminator"]["conditioning"],
        "projection"
    );
    assert_eq!(config["objective"]["loss"], "hinge");
    assert_eq!(config["objective"]["lr_d"], 0.0004);
    assert_eq!(config["objective"]["lr_schedule"], "cosine");
    // The projection discriminator's class embedding is saved under its PyTorch name.
    let d = std::fs::read(run.join("checkpoint/discriminator.safetensors")).unwrap();
    let d = safetensors::SafeTensors::deserialize(&d).unwrap();
    assert_eq!(d.tensor("embed.weight").unwrap().shape(), &[10, 64]);
    assert_eq!(d.tensor("conv1.weight").unwrap().shape(), &[32, 1, 5, 5]);
    // The recipe is part of the run: resuming keeps it and refuses to change it.
    refused(
        &["train", "--resume", run_s, "--loss", "bce"],
        &["--loss cannot change when resuming"],
    );
    // The schedule spans the length fixed at the start: a resume cannot stretch it.
    refused(
        &["train", "--resume", run_s, "--max-steps", "4"],
        &["--max-steps cannot change when resuming a run with a learning-rate schedule"],
    );
    let grid = dir.path().join("grid.png");
    assert!(generate_grid(run_s, &grid).status.success());
    // Bad values name the flag.
    let other = dir.path().join("other");
    let other_s = other.to_str().unwrap();
    refused(
        &["train", "--out", other_s, "--label-smoothing", "0.9"],
        &["--label-smoothing must be in [0, 0.5)"],
    );
    refused(
        &[
            "train",
            "--out",
            other_s,
            "--loss",
            "hinge",
            "--label-smoothing",
            "0.1",
        ],
        &["bce only"],
    );
    refused(
        &["train", "--out", other_s, "--lr-g", "0"],
        &["--lr-g must be in (0, 1]"],
    );
}

/// `--precision bf16` is kept in the run and fixed for its resumes, refused
/// outside the native CPU step, and on a CPU without AVX512_BF16 refused with
/// a message that names the flag.
#[test]
fn bf16_precision_is_kept_in_the_run_and_refused_where_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("bf16");
    let run_s = run.to_str().unwrap();
    let tiny = [&TINY[..], &["--quiet", "--max-steps", "3"]].concat();
    let train = [
        &["train", "--out", run_s, "--precision", "bf16"][..],
        &tiny[..],
    ]
    .concat();
    if !std::arch::is_x86_feature_detected!("avx512bf16") {
        refused(&train, &["--precision bf16 needs a CPU with AVX512_BF16"]);
        return;
    }
    ok(&train);
    let config = run_config(&run);
    assert_eq!(config["precision"], "bf16");
    refused(
        &["train", "--resume", run_s, "--precision", "fp32"],
        &["--precision cannot change when resuming"],
    );
    ok(&["train", "--resume", run_s, "--max-steps", "5", "--quiet"]);
    let other = dir.path().join("framework");
    refused(
        &[
            &[
                "train",
                "--out",
                other.to_str().unwrap(),
                "--framework-step",
            ][..],
            &["--precision", "bf16"][..],
            &tiny[..],
        ]
        .concat(),
        &[
            "--precision bf16 sets the native step's products, which burn's step does not run",
            "--engine burn was asked for",
        ],
    );
}

/// `--recipe` picks the starting settings: the default is the measured varied
/// recipe, `fast` the sharpest soonest, `seed` the original post; flags still override either, and a resumed
/// run keeps its recipe.
#[test]
fn recipe_presets_fill_the_settings_flags_leave_out() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = [&TINY[..], &["--max-steps", "2", "--quiet"]].concat();
    let config_of = |name: &str, flags: &[&str]| {
        let run = dir.path().join(name);
        ok(&[&["train", "--out", run.to_str().unwrap()], flags, &tiny[..]].concat());
        run_config(&run)
    };
    let widths = |c: &serde_json::Value| {
        (
            c["model"]["generator"]["base_channels"].as_u64().unwrap(),
            c["model"]["discriminator"]["base_channels"]
                .as_u64()
                .unwrap(),
        )
    };
    let varied = config_of("varied", &[]);
    assert_eq!(widths(&varied), (64, 32));
    // 1,800,000 images seen: 30 epochs of MNIST, 9,000 of --limit 200.
    assert_eq!(
        (varied["epochs"].as_u64(), varied["ema"].as_f64()),
        (Some(9000), Some(0.9995))
    );
    assert_eq!(varied["model"]["discriminator"]["spectral_norm"], true);
    assert_eq!(varied["model"]["discriminator"]["batch_norm"], false);
    assert_eq!(varied["model"]["generator"]["class_norm"], true);
    assert!((varied["sample_noise_scale"].as_f64().unwrap() - 1.07).abs() < 1e-6);
    let fast = config_of("fast", &["--recipe", "fast"]);
    assert_eq!(widths(&fast), (64, 32));
    assert_eq!(fast["ema"], 0.99);
    assert_eq!(fast["model"]["discriminator"]["minibatch_std"], true);
    assert_eq!(fast["adam"]["lr"], 0.0004);
    assert_eq!(fast["model"]["discriminator"]["spectral_norm"], false);
    assert_eq!(fast["sample_noise_scale"], 1.0);
    for run in ["varied", "fast"] {
        let ema = format!("{run}/checkpoint/generator_ema.safetensors");
        assert!(dir.path().join(ema).is_file());
    }
    let seed = config_of("seed", &["--recipe", "seed"]);
    assert_eq!(widths(&seed), (256, 128));
    assert!(seed["ema"].is_null());
    assert_eq!(seed["model"]["discriminator"]["minibatch_std"], false);
    assert_eq!(seed["config_version"], 3);
    assert_eq!(seed["objective"]["loss"], "bce");
    assert_eq!(seed["adam"]["lr"], 0.0002);
    // Flags override the preset, in both directions.
    let mixed = config_of(
        "mixed",
        &["--recipe", "seed", "--g-channels", "32", "--ema", "0.99"],
    );
    assert_eq!(widths(&mixed), (32, 128));
    assert_eq!(mixed["ema"], 0.99);
    let wide = config_of("wide", &["--g-channels", "128", "--d-channels", "64"]);
    assert_eq!(widths(&wide), (128, 64));
    assert_eq!(wide["ema"], 0.9995);
    let plain = config_of("plain", &["--ema", "0"]);
    assert!(plain["ema"].is_null());
    assert!(
        !dir.path()
            .join("plain/checkpoint/generator_ema.safetensors")
            .exists()
    );
    refused(
        &[
            "train",
            "--resume",
            dir.path().join("fast").to_str().unwrap(),
            "--recipe",
            "seed",
        ],
        &["--recipe cannot change when resuming"],
    );
    refused(
        &["train", "--recipe", "fastest"],
        &["invalid value 'fastest'"],
    );
}

/// `cdcgan bench` prints its two figures last, for each path it can time:
/// the native ones (the default), burn's (`--engine burn`, or its older
/// name `--framework-step`), the training fallback for an architecture the
/// native step does not cover, and a colour network of another shape.
#[test]
fn bench_prints_throughput_for_each_step() {
    let tiny = [
        "--threads",
        "2",
        "bench",
        "--iters",
        "2",
        "--gen-iters",
        "2",
        "--warmup",
        "1",
        "--batch-size",
        "10",
        "--g-channels",
        "16",
        "--d-channels",
        "8",
    ];
    let mut cases: Vec<(&[&str], &str, &str)> = vec![
        (&[], "native step, Fp32", "native generator, Fp32"),
        (&["--engine", "burn"], "burn step", "burn generator"),
        (&["--framework-step"], "burn step", "burn generator"),
        (
            &["--aux-classifier"],
            "native step, Fp32",
            "native generator",
        ),
        // Any network's shape, on random images of it.
        (
            &["--image-size", "32", "--channels", "3", "--classes", "4"],
            "random, the shape of 3x32x32, 4 classes",
            "native generator",
        ),
    ];
    if std::arch::is_x86_feature_detected!("avx512bf16") {
        let bf16 = (
            &["--precision", "bf16"][..],
            "native step, Bf16",
            "native generator, Bf16",
        );
        cases.push(bf16);
    }
    for (extra, step, generator) in cases {
        let args = [&tiny[..], extra].concat();
        let out = cdcgan(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains(step), "{args:?}: {stdout}");
        assert!(stdout.contains(generator), "{args:?}: {stdout}");
        let lines: Vec<&str> = stdout.lines().collect();
        let figure = |line: &str, key: &str| -> f64 {
            line.strip_prefix(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{line}"))
        };
        assert!(figure(lines[lines.len() - 2], "gen_images_per_s=") > 0.0);
        assert!(figure(lines[lines.len() - 1], "train_samples_per_s=") > 0.0);
    }
}

/// Logs written to a file (here a pipe) carry no colour escape codes.
#[test]
fn logs_to_a_file_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdcgan"))
        .args([
            "train",
            "--out",
            run.to_str().unwrap(),
            "--max-steps",
            "1",
            "--quiet",
        ])
        .args(common::TINY_TRAIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("INFO") && stderr.contains("training"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "escape codes in: {stderr:?}");
}

/// `train --sample-noise-scale` is the run's own noise dial: generate, export
/// and eval draw with it unless given `--noise-scale`, and an out-of-range
/// value is refused by name.
#[test]
fn a_run_samples_with_its_own_noise_scale() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("wide");
    let run_s = run.to_str().unwrap();
    let tiny = [&TINY[..], &["--max-steps", "2", "--quiet"]].concat();
    let train = ["train", "--out", run_s, "--sample-noise-scale", "1.5"];
    ok(&[&train[..], &tiny[..]].concat());
    assert_eq!(run_config(&run)["sample_noise_scale"], 1.5);
    let export = |name: &str, flags: &[&str]| {
        let out = dir.path().join(name);
        let args = ["export", "--run", run_s, "--count", "20", "--seed", "3"];
        ok(&[&args[..], &["--out", out.to_str().unwrap()], flags].concat());
        std::fs::read(out.join("images-idx3-ubyte")).unwrap()
    };
    let own = export("own", &[]);
    assert_eq!(own, export("given", &["--noise-scale", "1.5"]));
    assert_ne!(own, export("unit", &["--noise-scale", "1"]));
    let bad = dir.path().join("bad");
    refused(
        &[
            "train",
            "--out",
            bad.to_str().unwrap(),
            "--sample-noise-scale",
            "0",
        ],
        &["--sample-noise-scale must be in (0, 4]"],
    );
}
