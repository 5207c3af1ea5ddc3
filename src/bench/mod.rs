//! `cdcgan bench`: throughput of the full training iteration (D step + G
//! step) and of generation, on real MNIST batches, after a warm-up.
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
use crate::model::{GanConfig, matrix, one_hot};
use crate::native::Precision;
use crate::sample::Sampler;
use crate::train::TrainConfig;
use crate::train::engine::{Engine, HostBatch, initial_state};
use burn::module::Module;

/// What to time.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchConfig {
    /// Timed training iterations.
    #[arg(long = "iters", default_value_t = 30)]
    pub train_iters: usize,
    /// Timed generator forwards.
    #[arg(long, default_value_t = 30)]
    pub gen_iters: usize,
    /// Untimed warm-up iterations before each.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Images per training step and per generator forward.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Benchmark with D's auxiliary classifier head.
    #[arg(long)]
    pub aux_classifier: bool,
    /// G's width (as `train --g-channels`) [default: 256].
    #[arg(long)]
    pub g_channels: Option<usize>,
    /// D's width (as `train --d-channels`) [default: 128].
    #[arg(long)]
    pub d_channels: Option<usize>,
    /// Arithmetic of the native products (as `train --precision`) [default: fp32].
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    pub precision: Precision,
    /// Time burn's generator forward and autodiff training step instead of
    /// the native ones.
    #[arg(long)]
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
        !(config.framework_step && config.precision != Precision::Fp32),
        "--precision {} times the native products, which --framework-step does not run: \
         give one or the other",
        format!("{:?}", config.precision).to_lowercase()
    );
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
        precision: config.precision,
        model,
        ..TrainConfig::default()
    };
    train_config.validate()?;
    report(&format!("# cpu: {}", machine::cpu_description()));
    let peak = machine::product_peak(PEAK_SIZE, 3, config.precision);
    let threads = crate::backend::threads();
    let precision = format!("{:?}", config.precision).to_lowercase();
    report(&format!(
        "# {precision} product peak ({PEAK_SIZE}^3 gemm, {threads} threads): {peak:.1} GFLOP/s"
    ));
    let gen_rate = generation_rate(config, &train_config, &mut report)?;
    let (g_flops, _) = machine::forward_flops(&train_config.model);
    report(&rate_line("generation", gen_rate, "images", g_flops, peak));
    let train_rate = training_rate(config, &train_config, &mut report)?;
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
    let sampler = Sampler::from_generator(&g).in_precision(config.precision)?;
    let labels: Vec<u8> = (0..config.batch_size).map(|i| (i % 10) as u8).collect();
    let z = vec![0.5f32; config.batch_size * 100];
    let conditions = one_hot(&labels, 10, &device);
    let framework = config.framework_step || !on_cpu();
    let seconds = if framework {
        median_time(config.warmup, config.gen_iters, |_| {
            let x = g.forward(
                matrix(z.clone(), config.batch_size, 100, &device),
                conditions.clone(),
            );
            x.into_data(); // wait for the result
        })
    } else {
        let host_conditions = conditions.into_data().try_into_vec::<f32>()?;
        median_time(config.warmup, config.gen_iters, |_| {
            drop(sampler.forward(&z, &host_conditions))
        })
    };
    report(&format!(
        "# generation: {} forwards of batch {} ({} generator, {:?} products)",
        config.gen_iters,
        config.batch_size,
        if framework { "framework" } else { "native" },
        config.precision
    ));
    Ok(config.batch_size as f64 / seconds)
}

/// Samples per second of the step `cdcgan train` runs, on real MNIST batches.
fn training_rate(
    config: &BenchConfig,
    train_config: &TrainConfig,
    report: &mut impl FnMut(&str),
) -> anyhow::Result<f64> {
    let data = Dataset::load(DatasetKind::Mnist, None, Split::Train)?;
    let device = training_device();
    let mut state = initial_state(train_config, &device);
    let loss = train_config.step_loss();
    let mut engine = Engine::choose(
        &state,
        &train_config.model,
        config.precision,
        config.framework_step,
        &device,
    )?;
    let batches = data.len() / config.batch_size;
    let seconds = median_time(config.warmup, config.train_iters, |i| {
        let first = (i % batches) * config.batch_size;
        let indices: Vec<usize> = (first..first + config.batch_size).collect();
        let real = HostBatch::real(&data, &indices);
        let noise = HostBatch::noise(train_config, 10, i as u64);
        engine.step(&mut state, &real, &noise, 10, &loss);
    });
    report(&format!(
        "# training: {} iterations of batch {} (D step + G step, {} step, {:?} products), threads={}",
        config.train_iters,
        config.batch_size,
        engine.name(),
        config.precision,
        crate::backend::threads()
    ));
    Ok(config.batch_size as f64 / seconds)
}
