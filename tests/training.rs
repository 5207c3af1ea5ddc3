//! Training on small slices of real MNIST: it learns, it is deterministic,
//! checkpoints reload bit for bit, and a resumed run equals an uninterrupted one.

use std::sync::atomic::AtomicBool;

use cdcgan::model::weights::export;
use cdcgan::run::RunDir;
use cdcgan::sample::Sampler;
use cdcgan::train::{self, Ending, TrainConfig, metrics};

/// A tiny but real run: 400 MNIST images, batches of 20.
fn tiny_config(max_steps: u64) -> TrainConfig {
    TrainConfig {
        limit: Some(400),
        batch_size: 20,
        epochs: 3,
        max_steps: Some(max_steps),
        log_every: 5,
        seed: 11,
        eval_every: 0,
        ..TrainConfig::default()
    }
}

fn train_quiet(config: &TrainConfig, run: &RunDir, resume: bool) -> train::Summary {
    let options = train::Options {
        resume,
        ..Default::default()
    };
    train::train(config, run, options, &AtomicBool::new(false)).unwrap()
}

#[test]
fn a_tiny_run_learns_and_writes_its_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    let config = TrainConfig {
        eval_every: 1,
        eval_samples: 200,
        ..tiny_config(30)
    };
    let summary = train_quiet(&config, &run, false);
    assert_eq!(summary.ending, Ending::MaxSteps);
    assert_eq!(summary.progress.step, 30);
    // 400 images / 20 = 20 batches per epoch: one grid for epoch 1.
    assert!(run.epoch_grid(1).is_file());
    for path in [
        run.config(),
        run.metrics(),
        run.loss_plot(),
        run.generator(),
        run.train_state(),
    ] {
        assert!(path.is_file(), "{} missing", path.display());
    }
    let rows = metrics::read(&run.metrics()).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.step).collect::<Vec<_>>(),
        vec![5, 10, 15, 20, 25, 30]
    );
    assert!(
        rows.iter()
            .all(|r| r.d_loss.is_finite() && r.g_loss.is_finite())
    );
    let (first, last) = (rows.first().unwrap(), rows.last().unwrap());
    // D learns to tell MNIST digits from G's early blobs.
    assert!(
        last.d_loss < first.d_loss,
        "D loss did not fall: {first:?} -> {last:?}"
    );
    assert!(
        last.d_real - last.d_fake > 0.3,
        "D cannot separate real from fake: {last:?}"
    );
}

#[test]
fn same_seed_same_weights_and_resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    // Uninterrupted: 8 steps.
    let straight = RunDir::new(dir.path().join("straight"));
    train_quiet(&tiny_config(8), &straight, false);
    // Same seed again: identical weights.
    let again = RunDir::new(dir.path().join("again"));
    train_quiet(&tiny_config(8), &again, false);
    // Compare tensors (the header also holds the wall time, which differs).
    let w = |run: &RunDir| cdcgan::store::load(&run.train_state()).unwrap().0;
    assert!(
        w(&straight) == w(&again),
        "same seed gave different weights"
    );
    // Interrupted at 5 (not an epoch boundary), resumed to 8.
    let resumed = RunDir::new(dir.path().join("resumed"));
    train_quiet(&tiny_config(5), &resumed, false);
    let summary = train_quiet(&tiny_config(8), &resumed, true);
    assert_eq!(summary.progress.step, 8);
    assert!(
        w(&straight) == w(&resumed),
        "resumed run differs from the uninterrupted one"
    );
    let steps: Vec<u64> = metrics::read(&resumed.metrics())
        .unwrap()
        .iter()
        .map(|r| r.step)
        .collect();
    assert_eq!(steps, vec![5, 8], "metrics continue without duplicates");
    // Another seed: different weights.
    let other = RunDir::new(dir.path().join("other"));
    train_quiet(
        &TrainConfig {
            seed: 12,
            ..tiny_config(8)
        },
        &other,
        false,
    );
    assert!(w(&straight) != w(&other));
}

#[test]
fn checkpoint_save_load_gives_bit_identical_outputs() {
    use cdcgan::backend::training_device;
    use cdcgan::data::{Dataset, DatasetKind, Split};
    use cdcgan::train::checkpoint;
    use cdcgan::train::engine::{Engine, HostBatch, initial_state};

    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    run.create().unwrap();
    let config = TrainConfig {
        model: cdcgan::model::GanConfig::original(10, true),
        ..tiny_config(3)
    };
    let device = training_device();
    let mut data = Dataset::load(DatasetKind::Mnist, None, Split::Train).unwrap();
    data.truncate(60);
    let mut state = initial_state(&config, &device);
    // burn's step, asked for: its modules are the state a checkpoint saves.
    let mut engine =
        Engine::choose(&state, &config.model, config.precision, true, &device).unwrap();
    assert_eq!(engine.name(), "burn");
    for step in 0..3u64 {
        let indices: Vec<usize> = (step as usize * 20..step as usize * 20 + 20).collect();
        let real = HostBatch::real(&data, &indices);
        let noise = HostBatch::noise(&config, 10, step, &real.labels);
        let stats = engine.step(&mut state, (&real, &noise), None, 10, &config.objective);
        assert!(stats.non_finite().is_none());
    }
    let progress = checkpoint::Progress {
        step: 3,
        ..Default::default()
    };
    checkpoint::save(&run, &state, &progress, &config).unwrap();

    // The inference file draws exactly what the in-memory generator draws.
    let labels: Vec<u8> = (0..10).collect();
    let live = Sampler::from_generator(&state.generator);
    let loaded = Sampler::load(&run.generator()).unwrap();
    let z = live.noise(3, 0, labels.len());
    assert_eq!(
        loaded.images(&z, &labels).unwrap(),
        live.images(&z, &labels).unwrap()
    );

    // The training state restores every tensor and optimizer moment exactly.
    let fresh = initial_state(&config, &device);
    let (back, p) = checkpoint::load(&run, fresh, &config).unwrap();
    assert_eq!(p, progress);
    assert_eq!(export(&back.generator), export(&state.generator));
    assert_eq!(export(&back.discriminator), export(&state.discriminator));
    assert_eq!(back.adam_g, state.adam_g);
    assert_eq!(back.adam_d, state.adam_d);

    // A run of another architecture refuses this checkpoint, naming the file.
    let other = TrainConfig {
        model: cdcgan::model::GanConfig::original(10, false),
        ..config
    };
    let err = format!(
        "{:#}",
        checkpoint::load(&run, initial_state(&other, &device), &other).unwrap_err()
    );
    assert!(
        err.contains("train_state.safetensors") && err.contains("another architecture"),
        "{err}"
    );
}

#[test]
fn divergence_stops_with_the_last_good_checkpoint_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    let config = TrainConfig {
        checkpoint_every: Some(2),
        ..tiny_config(8)
    };
    train_quiet(
        &TrainConfig {
            max_steps: Some(4),
            ..config.clone()
        },
        &run,
        false,
    );
    let before = std::fs::read(run.train_state()).unwrap();
    let options = train::Options {
        resume: true,
        inject_nan_at_step: Some(6),
        ..Default::default()
    };
    let err = format!(
        "{:#}",
        train::train(&config, &run, options, &AtomicBool::new(false)).unwrap_err()
    );
    assert!(
        err.contains("diverged at step 6") && err.contains("d_loss is NaN"),
        "{err}"
    );
    // Step 5 trained fine but was not checkpointed (every 2): the last good one is step 4.
    assert!(err.contains("last good checkpoint (step 4)"), "{err}");
    assert!(
        std::fs::read(run.train_state()).unwrap() == before,
        "the checkpoint was touched"
    );
}

#[test]
fn ema_is_checkpointed_resumed_exactly_and_sampled_from() {
    let dir = tempfile::tempdir().unwrap();
    let config = |steps| TrainConfig {
        ema: Some(0.99),
        ..tiny_config(steps)
    };
    let straight = RunDir::new(dir.path().join("straight"));
    train_quiet(&config(8), &straight, false);
    let resumed = RunDir::new(dir.path().join("resumed"));
    train_quiet(&config(5), &resumed, false);
    train_quiet(&config(8), &resumed, true);
    let (a, meta) = cdcgan::store::load(&straight.train_state()).unwrap();
    let (b, _) = cdcgan::store::load(&resumed.train_state()).unwrap();
    assert_eq!(meta["ema_updates"], "8");
    assert!(a.keys().any(|k| k.starts_with("ema.bn1.running_mean")));
    assert!(a == b, "the resumed average differs");
    // The average is what generate / export / eval sample from, and it is not G itself.
    assert_eq!(straight.sampling_generator(), straight.generator_ema());
    let (ema, _) = cdcgan::store::load(&straight.generator_ema()).unwrap();
    let (live, _) = cdcgan::store::load(&straight.generator()).unwrap();
    assert_ne!(ema["deconv2.weight"], live["deconv2.weight"]);
    Sampler::load(&straight.generator_ema()).unwrap();
}

/// The native CPU step (the default) and burn's autodiff step compute the
/// same iteration: over ten real steps the losses agree within 2% and the
/// weights within 5% of each tensor's largest value (rounding differences,
/// which Adam's first steps amplify).
#[test]
fn the_native_step_follows_burns_step() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(10);
    let runs: Vec<_> = [false, true]
        .into_iter()
        .map(|burn_step| {
            let run = RunDir::new(dir.path().join(format!("run-{burn_step}")));
            let options = train::Options {
                burn_step,
                ..Default::default()
            };
            train::train(&config, &run, options, &AtomicBool::new(false)).unwrap();
            run
        })
        .collect();
    let rows: Vec<_> = runs
        .iter()
        .map(|run| metrics::read(&run.metrics()).unwrap())
        .collect();
    for (a, b) in rows[0].iter().zip(&rows[1]) {
        for (x, y) in [(a.d_loss, b.d_loss), (a.g_loss, b.g_loss)] {
            assert!(
                (x - y).abs() < 0.02 * y.abs(),
                "step {}: {a:?} vs {b:?}",
                a.step
            );
        }
    }
    let weights: Vec<_> = runs
        .iter()
        .map(|run| cdcgan::store::load(&run.generator()).unwrap().0)
        .collect();
    for (name, a) in &weights[0] {
        // The biases right before a batch norm have a zero gradient in exact
        // arithmetic; Adam turns their rounding noise into steps of ~lr, so
        // they (and the running means they shift) wander differently on the
        // two paths without changing what G computes.
        if [
            "deconv1.bias",
            "deconv2.bias",
            "bn1.running_mean",
            "bn2.running_mean",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        let b = &weights[1][name];
        let scale = b.values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = a
            .values
            .iter()
            .zip(&b.values)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            err <= 0.05 * scale,
            "{name}: max difference {err} of {scale}"
        );
    }
}

#[test]
fn spectral_norm_vectors_are_checkpointed_and_resume_is_exact() {
    let mut model = cdcgan::model::GanConfig::original(10, false).with_widths(Some(16), Some(8));
    model.discriminator.spectral_norm = true;
    // As spectrally normalised Ds usually are: no batch norm.
    model.discriminator.batch_norm = false;
    let config = |steps| TrainConfig {
        model: model.clone(),
        ..tiny_config(steps)
    };
    let dir = tempfile::tempdir().unwrap();
    let straight = RunDir::new(dir.path().join("straight"));
    train_quiet(&config(8), &straight, false);
    let resumed = RunDir::new(dir.path().join("resumed"));
    train_quiet(&config(5), &resumed, false);
    let u_at_5 = cdcgan::store::load(&resumed.train_state()).unwrap().0;
    train_quiet(&config(8), &resumed, true);
    let w = |run: &RunDir| cdcgan::store::load(&run.train_state()).unwrap().0;
    let (straight, resumed) = (w(&straight), w(&resumed));
    assert!(
        straight == resumed,
        "resumed run differs from the uninterrupted one"
    );
    assert!(
        !straight.keys().any(|k| k.contains("discriminator.bn2")),
        "D has no batch norm"
    );
    // The power iteration's vectors are in the state and move every step.
    for layer in ["conv1", "conv2", "conv3"] {
        let name = straight
            .keys()
            .find(|k| k.ends_with(&format!("spectral.{layer}_u")))
            .unwrap_or_else(|| panic!("no vector for {layer}"))
            .clone();
        let u = &straight[&name].values;
        let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{name}: |u| = {norm}");
        if layer != "conv3" {
            // conv3 has one output: its u is +-1 throughout.
            assert_ne!(u, &u_at_5[&name].values, "{name} did not move");
        }
    }
}

/// LeCam's anchors and the adaptive augmentation's chance move every step
/// and travel in the checkpoint's header: a resumed run (across an epoch's
/// end, with even classes) equals an uninterrupted one.
#[test]
fn regularisers_state_is_checkpointed_and_resume_is_exact() {
    use cdcgan::optim::{Augment, AugmentP, Balance};
    let config = |steps| {
        let mut c = tiny_config(steps);
        c.objective.lecam = 0.3;
        c.objective.augment = Augment::parse("color,translation,cutout").unwrap();
        c.objective.augment_p = AugmentP::Adaptive;
        c.objective.even_classes = true;
        // The default's networks, G all but still: D is soon sure of the
        // real digits, so the chance moves.
        c.model = cdcgan::train::recipe::Recipe::Varied.config().model;
        c.objective.lr_g = Some(1e-7);
        c
    };
    let dir = tempfile::tempdir().unwrap();
    let straight = RunDir::new(dir.path().join("straight"));
    train_quiet(&config(28), &straight, false);
    let resumed = RunDir::new(dir.path().join("resumed"));
    train_quiet(&config(17), &resumed, false);
    train_quiet(&config(28), &resumed, true);
    let load = |run: &RunDir| cdcgan::store::load(&run.train_state()).unwrap();
    let ((straight, header), (resumed, _)) = (load(&straight), load(&resumed));
    assert!(
        straight == resumed,
        "resumed run differs from the uninterrupted one"
    );
    let balance: Balance = serde_json::from_str(&header["balance"]).unwrap();
    assert!(balance.anchors.iter().all(|a| *a != 0.0), "{balance:?}");
    assert!(
        balance.augment_p > 0.0,
        "D is sure of the digits: {balance:?}"
    );
}

/// `--precision auto`: the first run times its product shapes and caches
/// the choices; a second run with the same seed reads them and learns the
/// same tensors. Without AVX512_BF16 every product is fp32, bit for bit.
#[test]
fn auto_precision_runs_are_reproducible_on_one_machine() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let train = |name: &str, precision: &str| {
        let run = dir.path().join(name);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdcgan"))
            .args(["--threads", "2", "train", "--out", run.to_str().unwrap()])
            .args([
                "--precision",
                precision,
                "--max-steps",
                "4",
                "--quiet",
                "--seed",
                "5",
            ])
            .args(["--limit", "400", "--batch-size", "20", "--eval-every", "0"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CDCGAN_CACHE", &cache)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{log}");
        (
            cdcgan::store::load(&RunDir::new(run).train_state())
                .unwrap()
                .0,
            log,
        )
    };
    let (first, log) = train("first", "auto");
    let (second, _) = train("second", "auto");
    assert!(first == second, "two auto runs with one seed differ");
    let chosen = log
        .lines()
        .find_map(|l| l.split("--precision auto: ").nth(1))
        .unwrap_or_else(|| panic!("the log does not say what auto chose:\n{log}"))
        .to_string();
    let (fp32, _) = train("fp32", "fp32");
    let bf16_shapes: usize = chosen.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(first == fp32, bf16_shapes == 0, "{chosen}");
    let cached = std::fs::read_dir(cache.join("products")).map_or(0, |d| d.count());
    if cdcgan::native::Precision::Bf16.check().is_ok() {
        assert_eq!(cached, 1, "the timings are cached per machine");
    }
}
