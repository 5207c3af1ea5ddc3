//! No flag silently ignored: each combination in which a subcommand (or one
//! of its modes) would not use a flag given is refused, by a real process,
//! with one error line naming the flag, before any work; and each flag's own
//! mode still takes it.

mod common;

use common::cdcgan;

/// (arguments, the flag the error must name, the mode it must name).
const REFUSED: &[(&[&str], &str, &str)] = &[
    (
        &[
            "generate", "--run", "r", "--grid", "--count", "5", "--out", "o.png",
        ],
        "--count",
        "--label",
    ),
    (
        &[
            "generate", "--run", "r", "--digits", "12", "--count", "5", "--out", "o.png",
        ],
        "--count",
        "--label",
    ),
    (
        &[
            "morph", "--run", "r", "--latent", "--to", "5", "--out", "o.png",
        ],
        "--to",
        "--latent",
    ),
    (
        &["export", "--run", "r", "--onnx", "g.onnx", "--count", "5"],
        "--count",
        "--onnx",
    ),
    (
        &["export", "--run", "r", "--onnx", "g.onnx", "--seed", "5"],
        "--seed",
        "--onnx",
    ),
    (
        &[
            "export",
            "--run",
            "r",
            "--onnx",
            "g.onnx",
            "--noise-scale",
            "1.1",
        ],
        "--noise-scale",
        "--onnx",
    ),
    (
        &["eval", "--run", "r", "--dataset", "fashion-mnist"],
        "--dataset",
        "--run",
    ),
    (
        &["eval", "--run", "r", "--cas-samples", "500"],
        "--cas-samples",
        "--cas",
    ),
    (
        &["eval", "--images", "i", "--labels", "l", "--count", "50"],
        "--count",
        "--images",
    ),
    (
        &[
            "eval",
            "--images",
            "i",
            "--labels",
            "l",
            "--cas",
            "--cas-samples",
            "500",
        ],
        "--cas-samples",
        "--images",
    ),
    (
        &[
            "eval",
            "--images",
            "i",
            "--labels",
            "l",
            "--noise-scale",
            "1.1",
        ],
        "--noise-scale",
        "--run",
    ),
    (
        &["train", "--eval-every", "0", "--eval-samples", "50"],
        "--eval-samples",
        "--eval-every 0",
    ),
    (
        &["train", "--aux-weight", "2"],
        "--aux-weight",
        "--aux-classifier",
    ),
    (
        &["train", "--lr", "1e-3", "--lr-g", "2e-4", "--lr-d", "2e-4"],
        "--lr",
        "--lr-g",
    ),
    (
        &["train", "--loss", "hinge", "--label-smoothing", "0.1"],
        "--label-smoothing",
        "bce",
    ),
    (
        &[
            "train",
            "--engine",
            "burn",
            "--precision",
            "bf16",
            "--max-steps",
            "1",
        ],
        "--precision",
        "--engine burn",
    ),
    (
        &["bench", "--framework-step", "--precision", "bf16"],
        "--precision",
        "--engine burn",
    ),
    (
        &["bench", "--engine", "native", "--framework-step"],
        "--framework-step",
        "--engine",
    ),
    (
        &["train", "--resume", "r", "--out", "o"],
        "--out",
        "--resume",
    ),
];

#[test]
fn every_flag_a_mode_ignores_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (args, flag, mode) in REFUSED {
        // Relative paths land in a scratch folder; nothing may be written there.
        let args: Vec<String> = args
            .iter()
            .map(|a| match *a {
                "o.png" | "g.onnx" | "o" => dir.path().join(a).to_str().unwrap().to_string(),
                other => other.to_string(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cdcgan(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        let what = args.join(" ");
        assert!(!out.status.success(), "{what}: accepted\n{err}");
        let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(error_lines.len(), 1, "{what}: one error line:\n{err}");
        // clap's own errors put the flags on the lines under its one error line.
        assert!(
            err.contains(flag) && err.contains(mode),
            "{what}: the error names {flag} and {mode}:\n{err}"
        );
        assert!(!err.contains("panicked"), "{what}:\n{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{what}: wrote something"
        );
    }
}

#[test]
fn each_mode_still_takes_its_own_flags() {
    // Each is parsed and resolved, then stopped by the empty run folder, a
    // refusal that comes after every flag check.
    let run = tempfile::tempdir().unwrap();
    let r = run.path().to_str().unwrap();
    let missing_run = |args: &[&str]| {
        let out = cdcgan(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success());
        assert!(
            err.contains("no checkpoint/generator.safetensors yet"),
            "{args:?}: {err}"
        );
    };
    missing_run(&[
        "generate", "--run", r, "--label", "3", "--count", "5", "--out", "x.png",
    ]);
    missing_run(&[
        "morph", "--run", r, "--from", "2", "--to", "5", "--out", "x.png",
    ]);
    missing_run(&[
        "morph", "--run", r, "--latent", "--from", "2", "--out", "x.png",
    ]);
    missing_run(&[
        "eval",
        "--run",
        r,
        "--cas",
        "--cas-samples",
        "500",
        "--count",
        "50",
    ]);
    missing_run(&[
        "export", "--run", r, "--count", "5", "--seed", "2", "--out", "x",
    ]);
}

/// `train --help` shows each recipe setting's default in every recipe, as
/// the recipe table in src/train/recipe.rs has them.
#[test]
fn train_help_shows_the_recipe_table_s_defaults() {
    let out = cdcgan(&["train", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for (flag, text) in cdcgan::train::recipe::help_defaults() {
        assert!(
            help.contains(&format!("[default: {text}]")),
            "--{flag}: no \"[default: {text}]\" in:\n{help}"
        );
    }
    assert!(help.contains("original"), "{help}");
}
