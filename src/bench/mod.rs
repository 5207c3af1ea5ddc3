//! `cdcgan bench`: throughput of the full training iteration (D step + G
//! step) and of generation, after a warm-up: on real MNIST batches, or on
//! random images of any other network's shape (a folder's, or one given).
//! Reports medians of per-iteration times, each also as nominal GFLOP/s and
//! as a share of the product peak measured on the same threads in the same
//! precision (`--precision`), after
//! the CPU it ran on ([`machine`]); the last two lines are
//! `gen_images_per_s=...` and `train_samples_per_s=...`, as the PyTorch
//! peer prints them, so `bench/compare.sh` can set them side by side.

pub mod machine;

use std::time::Instant;

use anyhow::ensure;

use crate::backend::{inference_device, on_cpu, training_device};
use crate::data::{Dataset, DatasetKind, Split};
use crate::model::{matrix, one_hot};
use crate::native::Precision;
use crate::rng::{Purpose, stream};
use crate::sample::Sampler;
use crate::train::TrainConfig;
use crate::train::engine::{At, Engine, HostBatch, initial_state};
use burn::module::Module;
use rand::Rng;

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Timed training iterations.
    pub train_iters: usize,
    /// Timed generator forwards.
    pub gen_iters: usize,
    /// Untimed warm-up iterations before each.
    pub warmup: usize,
    /// The run whose network, batch size, objective and products are timed
    /// (a recipe's config with any flags applied, as `train` builds it).
    pub train: TrainConfig,
    /// Time burn's generator forward and autodiff training step instead of
    /// the native ones.
    pub burn_step: bool,
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
    let train_config = &config.train;
    train_config.validate()?;
    report(&format!("# cpu: {}", machine::cpu_description()));
    // Under auto the peak's shape is not one of the networks': its fp32 rate.
    let peak_precision = match train_config.precision {
        Precision::Auto => Precision::Fp32,
        p => p,
    };
    let peak = machine::product_peak(PEAK_SIZE, 3, peak_precision);
    let threads = crate::backend::threads();
    let precision = format!("{:?}", train_config.precision).to_lowercase();
    report(&format!(
        "# {precision} product peak ({PEAK_SIZE}^3 gemm, {threads} threads): {peak:.1} GFLOP/s"
    ));
    let gen_rate = generation_rate(config, train_config, &mut report)?;
    let (g_flops, _) = machine::forward_flops(&train_config.model);
    report(&rate_line("generation", gen_rate, "images", g_flops, peak));
    let train_rate = training_rate(config, train_config, &mut report)?;
    let t_flops = machine::training_flops(&train_config.model);
    report(&rate_line("training", train_rate, "samples", t_flops, peak));
    Ok((train_rate, gen_rate))
}

/// Side of the square product that measures the peak.
const PEAK_SIZE: usize = 2048;

/// `rate` per second as nominal GFLOP/s and share of `peak`.
fn rate_line(what: &str, rate: f64, unit: &str, flops_each: f64, peak: f64) -> String {
    let gflops = rate * flops_each / 1e9;
    format!(
        "# {what}: {rate:.1} {unit}/s = {gflops:.1} GFLOP/s nominal ({:.0}% of the product peak; \
         {:.1} MFLOP per {})",
        100.0 * gflops / peak,
        flops_each / 1e6,
        unit.trim_end_matches('s')
    )
}

/// Runs `work` `warmup` times, then `iters` timed times: the median seconds.
fn median_time(warmup: usize, iters: usize, mut work: impl FnMut(usize)) -> f64 {
    (0..warmup).for_each(&mut work);
    let times = (warmup..warmup + iters)
        .map(|i| {
            let t = Instant::now();
            work(i);
            t.elapsed().as_secs_f64()
        })
        .collect();
    median(times)
}

/// Images per second of the generator `generate`, `export` and `serve` run.
fn generation_rate(
    config: &BenchConfig,
    train_config: &TrainConfig,
    report: &mut impl FnMut(&str),
) -> anyhow::Result<f64> {
    let device = inference_device();
    let g = train_config.model.generator.init(&device).valid();
    let sampler = Sampler::from_generator(&g).in_precision(train_config.precision)?;
    let batch = train_config.batch_size;
    let g_config = &train_config.model.generator;
    let (classes, latent) = (g_config.num_classes, g_config.latent_dim);
    let labels: Vec<u8> = (0..batch).map(|i| (i % classes) as u8).collect();
    let z = vec![0.5f32; batch * latent];
    let conditions = one_hot(&labels, classes, &device);
    let framework = config.burn_step || !on_cpu();
    let seconds = if framework {
        median_time(config.warmup, config.gen_iters, |_| {
            let x = g.forward(
                matrix(z.clone(), batch, latent, &device),
                conditions.clone(),
            );
            x.into_data(); // wait for the result
        })
    } else {
        let host_conditions = conditions.into_data().try_into_vec::<f32>()?;
        if train_config.precision == Precision::Auto {
            let choices = crate::native::choice::calibrate(|| {
                drop(sampler.forward(&z, &host_conditions));
            });
            report(&format!("# generation, auto: {}", choices.summary()));
        }
        median_time(config.warmup, config.gen_iters, |_| {
            drop(sampler.forward(&z, &host_conditions))
        })
    };
    report(&format!(
        "# generation: {} forwards of batch {batch} ({} generator, {:?} products)",
        config.gen_iters,
        if framework { "burn" } else { "native" },
        train_config.precision
    ));
    Ok(batch as f64 / seconds)
}

/// Samples per second of the step `cdcgan train` runs, on [`timed_images`].
fn training_rate(
    config: &BenchConfig,
    train_config: &TrainConfig,
    report: &mut impl FnMut(&str),
) -> anyhow::Result<f64> {
    let data = timed_images(train_config)?;
    let classes = data.num_classes;
    report(&format!(
        "# images: {} {}x{}x{}, {classes} classes",
        match train_config.dataset {
            DatasetKind::Mnist => "MNIST's training set,",
            _ => "random, the shape of",
        },
        data.shape.channels,
        data.shape.side,
        data.shape.side
    ));
    let device = training_device();
    let mut state = initial_state(train_config, &device);
    let batch = train_config.batch_size;
    let batches = data.len() / batch;
    let first: Vec<usize> = (0..batch).collect();
    let (mut engine, choices) = Engine::for_run(
        &state,
        train_config,
        &HostBatch::real(&data, &first),
        (classes, 0),
        config.burn_step,
        &device,
    )?;
    if let Some(choices) = choices {
        report(&format!("# training, auto: {}", choices.summary()));
    }
    // The iteration `train` runs: the schedule's rates, both steps, the
    // moving average of G and the guard (a divergence changes no timing).
    let total = (config.warmup + config.train_iters).max(1) as f64;
    let seconds = median_time(config.warmup, config.train_iters, |i| {
        let first = (i % batches) * batch;
        let indices: Vec<usize> = (first..first + batch).collect();
        let real = HostBatch::real(&data, &indices);
        let at = At {
            step: i as u64,
            done: i as f64 / total,
        };
        let _ = engine.iteration(&mut state, train_config, &real, classes, at);
    });
    report(&format!(
        "# training: {} iterations of batch {batch} (D step + G step, {} step, {:?} products), threads={}",
        config.train_iters,
        engine.name(),
        train_config.precision,
        crate::backend::threads()
    ));
    Ok(batch as f64 / seconds)
}

/// The images the training step is timed on: MNIST's for an MNIST run;
/// for any other, random ones of its shape and classes (a step's time does
/// not depend on its pixels), 40 batches' worth.
fn timed_images(config: &TrainConfig) -> anyhow::Result<Dataset> {
    if config.dataset == DatasetKind::Mnist {
        return Dataset::load(DatasetKind::Mnist, None, Split::Train);
    }
    let (shape, classes) = (
        config.model.generator.image(),
        config.model.generator.num_classes,
    );
    let count = 40 * config.batch_size;
    let mut rng = stream(config.seed, Purpose::Sample, 0);
    Ok(Dataset {
        images: (0..count * shape.len())
            .map(|_| rng.random::<u8>())
            .collect(),
        labels: (0..count).map(|i| (i % classes) as u8).collect(),
        shape,
        num_classes: classes,
    })
}
