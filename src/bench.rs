//! `cdcgan bench`: throughput of the full training iteration (D step + G
//! step) and of generation, on real MNIST batches, after a warm-up.
//! Reports medians of per-iteration times; the last two lines are
//! `gen_images_per_s=...` and `train_samples_per_s=...`, as the PyTorch
//! peer prints them, so `bench/compare.sh` can set them side by side.

use std::time::Instant;

use anyhow::ensure;

use crate::backend::{inference_device, on_cpu, training_device};
use crate::data::{Dataset, DatasetKind, Split};
use crate::model::{GanConfig, matrix, one_hot};
use crate::sample::Sampler;
use crate::train::TrainConfig;
use crate::train::cpu_step::{CpuGan, unsupported};
use crate::train::step::train_step;
use crate::train::trainer::{HostBatch, compiled_step, initial_state, noise_batch, real_batch};
use burn::module::Module;

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub train_iters: usize,
    pub gen_iters: usize,
    pub warmup: usize,
    pub batch_size: usize,
    pub aux_classifier: bool,
    /// Network widths (None: the seed's 256 / 128).
    pub g_channels: Option<usize>,
    pub d_channels: Option<usize>,
    /// Time the framework's generator forward and (autodiff) training step
    /// even where the compiled ones apply.
    pub framework_step: bool,
}

/// Median of a set of durations in seconds.
fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

/// Runs the benchmark and returns (train samples/s, generated images/s).
pub fn run(config: &BenchConfig, mut report: impl FnMut(&str)) -> anyhow::Result<(f64, f64)> {
    ensure!(
        config.train_iters >= 1 && config.gen_iters >= 1,
        "--iters and --gen-iters must be at least 1"
    );
    ensure!(
        (1..=10_000).contains(&config.batch_size),
        "--batch-size must be in 1..=10000"
    );
    let model = GanConfig::seed_architecture(10, config.aux_classifier)
        .with_widths(config.g_channels, config.d_channels);
    let train_config = TrainConfig {
        batch_size: config.batch_size,
        model,
        ..TrainConfig::default()
    };
    train_config.validate()?;
    let gen_rate = {
        let device = inference_device();
        let g = train_config.model.generator.init(&device).valid();
        let sampler = Sampler::from_generator(&g);
        let labels: Vec<u8> = (0..config.batch_size).map(|i| (i % 10) as u8).collect();
        let z = vec![0.5f32; config.batch_size * 100];
        let conditions = one_hot(&labels, 10, &device);
        let rate = |forward: &dyn Fn()| {
            (0..config.warmup).for_each(|_| forward());
            let times: Vec<f64> = (0..config.gen_iters)
                .map(|_| {
                    let t = Instant::now();
                    forward();
                    t.elapsed().as_secs_f64()
                })
                .collect();
            config.batch_size as f64 / median(times)
        };
        let framework = config.framework_step || !on_cpu();
        let rate = if framework {
            rate(&|| {
                let x = g.forward(
                    matrix(z.clone(), config.batch_size, 100, &device),
                    conditions.clone(),
                );
                x.into_data(); // wait for the result
            })
        } else {
            // What `generate`, `export` and `serve` run on the CPU.
            let host_conditions = conditions.into_data().try_into_vec::<f32>()?;
            rate(&|| drop(sampler.forward(&z, &host_conditions)))
        };
        report(&format!(
            "# generation: {} forwards of batch {} ({} generator)",
            config.gen_iters,
            config.batch_size,
            if framework { "framework" } else { "compiled" }
        ));
        rate
    };

    let data = Dataset::load(DatasetKind::Mnist, None, Split::Train)?;
    let device = training_device();
    let mut state = initial_state(&train_config, &device);
    let recipe = train_config.step_recipe();
    // The step `cdcgan train` runs: compiled on the CPU where it applies.
    let mut compiled = match config.framework_step || !on_cpu() {
        true => None,
        false => unsupported(&train_config.model)
            .is_none()
            .then(|| CpuGan::new(&state, &train_config.model))
            .transpose()?,
    };
    let batches = data.len() / config.batch_size;
    let mut times = Vec::with_capacity(config.train_iters);
    for i in 0..config.warmup + config.train_iters {
        let indices: Vec<usize> =
            ((i % batches) * config.batch_size..(i % batches + 1) * config.batch_size).collect();
        let t = Instant::now();
        match &mut compiled {
            Some(gan) => {
                let real = HostBatch::real(&data, &indices);
                let noise = HostBatch::noise(&train_config, 10, i as u64);
                compiled_step(gan, &mut state, &real, &noise, 10, &recipe);
            }
            None => {
                let real = real_batch(&data, &indices, &device);
                let noise = noise_batch(&train_config, 10, i as u64, &device);
                train_step(&mut state, real, noise, &recipe);
            }
        }
        if i >= config.warmup {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let train_rate = config.batch_size as f64 / median(times);
    report(&format!(
        "# training: {} iterations of batch {} (D step + G step, {} step), threads={}",
        config.train_iters,
        config.batch_size,
        if compiled.is_some() {
            "compiled"
        } else {
            "framework"
        },
        crate::backend::threads()
    ));
    Ok((train_rate, gen_rate))
}
