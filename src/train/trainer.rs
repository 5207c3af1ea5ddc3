//! The training loop: epochs of shuffled batches, logging, sample grids,
//! checkpoints, interruption and the divergence guard.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use rand::seq::SliceRandom;

use super::checkpoint::{self, Progress};
use super::config::TrainConfig;
use super::cpu_step::{CpuGan, StepInput, unsupported};
use super::ema::Ema;
use super::metrics::{MetricsLog, MetricsRow, Quality};
use super::optim::Adam;
use super::recipe::StepRecipe;
use super::step::{Conditioned, GanState, StepStats, train_step};
use crate::backend::{on_cpu, training_device};
use crate::data::{Dataset, Split};
use crate::eval::Evaluator;
use crate::model::init::normal_values;
use crate::model::{Generator, one_hot, one_hot_values};
use crate::rng::{Purpose, derived_seed, stream};
use crate::run::RunDir;
use crate::sample::{Sampler, image::write_grid};

/// How a call to [`train`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// All `--epochs` are done.
    Finished,
    /// `--max-steps` was reached.
    MaxSteps,
    /// `--max-minutes` of training wall time were used.
    TimeBudget,
    /// Ctrl-C / SIGTERM: a checkpoint was written first.
    Interrupted,
}

/// What a call to [`train`] did.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub ending: Ending,
    pub progress: Progress,
    /// Mean training throughput of this call, samples per second.
    pub samples_per_s: f64,
}

/// Options that do not change what is learned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Continue from the run's checkpoint instead of starting anew.
    pub resume: bool,
    /// Draw an indicatif progress bar (hidden anyway when stderr is not a terminal).
    pub progress_bar: bool,
    /// Run burn's autodiff step even where the compiled CPU step applies
    /// (`--framework-step`; for comparisons).
    pub framework_step: bool,
    /// Fault injection for tests of the divergence guard: report the losses
    /// of this step as NaN.
    #[doc(hidden)]
    pub inject_nan_at_step: Option<u64>,
}

/// The networks and optimizers a run starts from, before any checkpoint.
pub fn initial_state(config: &TrainConfig, device: &Device) -> GanState {
    GanState {
        generator: config
            .model
            .generator
            .init_seeded(device, derived_seed(config.seed, Purpose::Init, 0)),
        discriminator: config
            .model
            .discriminator
            .init_seeded(device, derived_seed(config.seed, Purpose::Init, 1)),
        adam_g: Adam::new(config.adam_g()),
        adam_d: Adam::new(config.adam_d()),
        ema: config.ema.map(Ema::new),
    }
}

/// How much of the run is done before `step`: the larger of the step share
/// (of --epochs, or --max-steps when that ends the run sooner) and the time
/// share of --max-minutes. Drives the learning-rate schedule.
fn run_fraction(config: &TrainConfig, step: u64, batches_per_epoch: usize, wall_s: f64) -> f64 {
    let mut total = (config.epochs * batches_per_epoch) as u64;
    if let Some(m) = config.max_steps {
        total = total.min(m);
    }
    let by_steps = step as f64 / total.max(1) as f64;
    match config.max_minutes {
        Some(m) => by_steps.max(wall_s / (m * 60.0)),
        None => by_steps,
    }
}

/// The generator to sample from: the moving average when training keeps one.
fn sampling_generator(state: &GanState, config: &TrainConfig) -> anyhow::Result<Generator> {
    match &state.ema {
        Some(ema) if !ema.tensors.is_empty() => ema.generator(&config.model.generator),
        _ => Ok(state.generator.clone()),
    }
}

/// Trains (or resumes) the run in `run` until `config.epochs`, `config.max_steps`,
/// or `stop` becomes true.
pub fn train(
    config: &TrainConfig,
    run: &RunDir,
    options: Options,
    stop: &AtomicBool,
) -> anyhow::Result<Summary> {
    config.validate()?;
    let mut data = Dataset::load(config.dataset, config.data_dir.as_deref(), Split::Train)?;
    if let Some(limit) = config.limit {
        data.truncate(limit);
    }
    let batches_per_epoch = data.len() / config.batch_size;
    if batches_per_epoch == 0 {
        bail!(
            "--batch-size {} is larger than the {} training images (--limit); lower one or raise the other",
            config.batch_size,
            data.len()
        );
    }
    anyhow::ensure!(
        config.model.generator.num_classes == data.num_classes,
        "the model is built for {} classes, the data set has {}",
        config.model.generator.num_classes,
        data.num_classes
    );

    let device = training_device();
    let fresh = initial_state(config, &device);
    let (mut state, mut progress) = if options.resume {
        checkpoint::load(run, fresh, config)?
    } else {
        run.create()?;
        config.save(&run.config())?;
        (fresh, Progress::default())
    };
    let mut metrics = MetricsLog::open(&run.metrics(), progress.step)?;
    // The compiled CPU step owns the weights while it runs; `state` is
    // brought up to date (`sync`) before anything reads it.
    let mut compiled = match options.framework_step || !on_cpu() {
        true => None,
        false => match unsupported(&config.model) {
            Some(what) => {
                tracing::info!(
                    "training with burn's autodiff step: the compiled step does not cover {what}"
                );
                None
            }
            None => Some(CpuGan::new(&state, &config.model)?),
        },
    };
    let sync = |compiled: &Option<CpuGan>, state: &mut GanState| match compiled {
        Some(gan) => gan.write_into(state),
        None => Ok(()),
    };
    let fixed_z = normal_values(
        &mut stream(config.seed, Purpose::FixedGrid, 0),
        data.num_classes * config.model.generator.latent_dim,
        0.0,
        1.0,
    );
    if progress.epoch >= config.epochs || config.max_steps.is_some_and(|m| progress.step >= m) {
        tracing::info!(
            step = progress.step,
            "nothing to do: the run is already past --epochs / --max-steps"
        );
        return Ok(Summary {
            ending: Ending::Finished,
            progress,
            samples_per_s: 0.0,
        });
    }

    let started = Instant::now();
    let wall_at_start = progress.wall_s;
    let steps_at_start = progress.step;
    let mut window = Window::new(started);
    let mut last_checkpoint = progress.step;
    let mut ending = Ending::Finished;
    let mut quality = QualityProbe::new(config);

    'epochs: while progress.epoch < config.epochs {
        let order = epoch_order(data.len(), config.seed, progress.epoch);
        let bar = progress_bar(
            options.progress_bar,
            progress.epoch,
            config.epochs,
            batches_per_epoch,
        );
        bar.set_position(progress.batch_in_epoch as u64);
        while progress.batch_in_epoch < batches_per_epoch {
            if config.max_steps.is_some_and(|m| progress.step >= m) {
                ending = Ending::MaxSteps;
                break 'epochs;
            }
            if config
                .max_minutes
                .is_some_and(|m| progress.wall_s >= m * 60.0)
            {
                ending = Ending::TimeBudget;
                break 'epochs;
            }
            if stop.load(Ordering::SeqCst) {
                ending = Ending::Interrupted;
                break 'epochs;
            }
            let start = progress.batch_in_epoch * config.batch_size;
            let indices = &order[start..start + config.batch_size];
            let real = HostBatch::real(&data, indices);
            let noise = HostBatch::noise(config, data.num_classes, progress.step);
            let done = run_fraction(config, progress.step, batches_per_epoch, progress.wall_s);
            let factor = config.recipe.lr_schedule.factor(done);
            state.adam_g.config.lr = config.adam_g().lr * factor;
            state.adam_d.config.lr = config.adam_d().lr * factor;
            let mut stats = match &mut compiled {
                Some(gan) => compiled_step(
                    gan,
                    &mut state,
                    &real,
                    &noise,
                    data.num_classes,
                    &config.step_recipe(),
                ),
                None => {
                    let real =
                        real.to_device(&[1, data.height, data.width], data.num_classes, &device);
                    let noise = noise.to_device(&[], data.num_classes, &device);
                    train_step(&mut state, real, noise, &config.step_recipe())
                }
            };
            if options.inject_nan_at_step == Some(progress.step + 1) {
                stats.d_loss = f32::NAN;
            }
            if let Some(ema) = &mut state.ema {
                match &compiled {
                    Some(gan) => ema.update_tensors(gan.generator_tensors()),
                    None => ema.update(&state.generator),
                }
            }
            if let Some((what, value)) = stats.non_finite() {
                bar.abandon();
                bail!(
                    "training diverged at step {}: {what} is {value}. The last good checkpoint (step {last_checkpoint}) in {} \
                     is kept untouched; lower --lr or change --seed and start again, or `cdcgan train --resume {}`",
                    progress.step + 1,
                    run.checkpoint().display(),
                    run.root.display()
                );
            }
            progress.step += 1;
            progress.batch_in_epoch += 1;
            progress.wall_s = wall_at_start + started.elapsed().as_secs_f64();
            window.add(&stats, config.batch_size);
            bar.inc(1);
            bar.set_message(format!(
                "D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2} {:.0} samples/s",
                stats.d_loss,
                stats.g_loss,
                stats.d_real,
                stats.d_fake,
                window.samples_per_s()
            ));
            // The epoch's last step is logged below, with the epoch's evaluation.
            if progress.step % config.log_every == 0 && progress.batch_in_epoch < batches_per_epoch
            {
                metrics.append(&window.take(progress.epoch + 1, progress.step, progress.wall_s))?;
            }
            if config
                .checkpoint_every
                .is_some_and(|k| progress.step % k == 0)
            {
                sync(&compiled, &mut state)?;
                checkpoint::save(run, &state, &progress, config)?;
                last_checkpoint = progress.step;
            }
        }
        bar.finish_and_clear();
        // Epoch done.
        let epoch = progress.epoch + 1;
        let mut row = window.take(epoch, progress.step, progress.wall_s);
        sync(&compiled, &mut state)?;
        let sampled = sampling_generator(&state, config)?;
        if config.eval_every > 0 && epoch % config.eval_every == 0 {
            row.quality = quality.measure(&sampled, progress.step)?;
        }
        metrics.append(&row)?;
        progress.epoch += 1;
        progress.batch_in_epoch = 0;
        let grid = Sampler::from_generator(&sampled).class_grid(&fixed_z)?;
        write_grid(
            &run.epoch_grid(epoch),
            &grid,
            28,
            data.num_classes,
            data.num_classes,
        )?;
        crate::sample::animation::progress_gif(&run.samples(), &run.progress_gif())?;
        checkpoint::save(run, &state, &progress, config)?;
        last_checkpoint = progress.step;
        crate::plot::loss_plot(&run.metrics(), &run.loss_plot())?;
        crate::plot::quality_plot(&run.metrics(), &run.quality_plot())?;
        tracing::info!(
            epoch,
            step = progress.step,
            wall_s = format!("{:.0}", progress.wall_s),
            "epoch done; grid in {}",
            run.epoch_grid(epoch).display()
        );
    }

    sync(&compiled, &mut state)?;
    if progress.step != last_checkpoint {
        if !window.is_empty() {
            let mut row = window.take(progress.epoch + 1, progress.step, progress.wall_s);
            // A time budget ends the run: measure where it ended, for the curves against time.
            if ending == Ending::TimeBudget && config.eval_every > 0 {
                row.quality =
                    quality.measure(&sampling_generator(&state, config)?, progress.step)?;
            }
            metrics.append(&row)?;
        }
        checkpoint::save(run, &state, &progress, config).context("writing the final checkpoint")?;
        crate::plot::loss_plot(&run.metrics(), &run.loss_plot())?;
        crate::plot::quality_plot(&run.metrics(), &run.quality_plot())?;
    }
    let trained_now = progress.step > steps_at_start;
    if matches!(ending, Ending::Finished | Ending::TimeBudget)
        && config.eval_every > 0
        && trained_now
    {
        if let Some(report) = quality.full_report(&sampling_generator(&state, config)?)? {
            let json = serde_json::to_string_pretty(&report)?;
            crate::store::write_atomic(&run.root.join("eval.json"), json.as_bytes())?;
            tracing::info!(
                "final evaluation in {}:\n{}",
                run.root.join("eval.json").display(),
                report.table()
            );
        }
    }
    let trained = (progress.step - steps_at_start) as f64 * config.batch_size as f64;
    Ok(Summary {
        ending,
        progress,
        samples_per_s: trained / started.elapsed().as_secs_f64().max(1e-9),
    })
}

/// Measures sample quality during training with the committed evaluator.
/// The evaluator (classifier plus test-set features) is loaded on first use;
/// when the data set has none, evaluation is skipped with one warning.
struct QualityProbe<'a> {
    config: &'a TrainConfig,
    evaluator: Option<Option<Evaluator>>,
}

impl<'a> QualityProbe<'a> {
    fn new(config: &'a TrainConfig) -> Self {
        Self {
            config,
            evaluator: None,
        }
    }

    fn evaluator(&mut self) -> Option<&Evaluator> {
        let config = self.config;
        self.evaluator
            .get_or_insert_with(|| {
                match Evaluator::new(config.dataset, config.data_dir.as_deref(), None) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::warn!("sample quality will not be measured: {e:#}");
                        None
                    }
                }
            })
            .as_ref()
    }

    /// The quick figures for metrics.csv: `eval_samples` samples from a fixed noise.
    /// Also the collapse guard: a class whose samples spread far less than
    /// the real class's is reported with the step.
    fn measure(&mut self, generator: &Generator, step: u64) -> anyhow::Result<Option<Quality>> {
        let n = self.config.eval_samples;
        let Some(evaluator) = self.evaluator() else {
            return Ok(None);
        };
        let (images, labels) = Sampler::from_generator(generator).balanced_samples(n, 0)?;
        let f = evaluator.score(&images, &labels)?;
        let diversity = evaluator.diversity(&f);
        for class in crate::eval::collapsed_classes(&diversity) {
            tracing::warn!(
                "class {class} is collapsing at step {step}: its samples spread {:.2}x as much as real ones",
                diversity[class]
            );
        }
        Ok(Some(Quality {
            accuracy: f.accuracy as f32,
            frechet: f.frechet as f32,
            precision: f.precision as f32,
            recall: f.recall as f32,
        }))
    }

    /// The full evaluation (10,000 samples, with the real-data ceiling) for eval.json.
    fn full_report(
        &mut self,
        generator: &Generator,
    ) -> anyhow::Result<Option<crate::eval::report::Report>> {
        let Some(evaluator) = self.evaluator() else {
            return Ok(None);
        };
        let (images, labels) = Sampler::from_generator(generator).balanced_samples(10_000, 0)?;
        Ok(Some(evaluator.report(&images, &labels, 0)?))
    }
}

/// The data order of `epoch`: a permutation drawn from (seed, epoch).
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut stream(seed, Purpose::Shuffle, epoch as u64));
    order
}

/// Real images scaled to [-1, 1] with their one-hot labels.
pub fn real_batch(data: &Dataset, indices: &[usize], device: &Device) -> Conditioned<4> {
    HostBatch::real(data, indices).to_device(
        &[1, data.height, data.width],
        data.num_classes,
        device,
    )
}

/// z ~ N(0, 1) and fake labels uniform over all classes, from (seed, step).
pub fn noise_batch(
    config: &TrainConfig,
    classes: usize,
    step: u64,
    device: &Device,
) -> Conditioned<2> {
    HostBatch::noise(config, classes, step).to_device(&[], classes, device)
}

/// One compiled CPU step on host batches of real images and noise.
pub fn compiled_step(
    gan: &mut CpuGan,
    state: &mut GanState,
    real: &HostBatch,
    noise: &HostBatch,
    classes: usize,
    recipe: &StepRecipe,
) -> StepStats {
    let (real_labels, fake_labels) = (real.one_hot(classes), noise.one_hot(classes));
    let input = StepInput {
        real: &real.x,
        real_labels: &real_labels,
        z: &noise.x,
        fake_labels: &fake_labels,
    };
    gan.step(&mut state.adam_g, &mut state.adam_d, input, recipe)
}

/// A batch's values on the host: images or noise, and the class of each row.
#[derive(Debug, Clone)]
pub struct HostBatch {
    pub x: Vec<f32>,
    pub labels: Vec<u8>,
}

impl HostBatch {
    /// The images at `indices`, scaled to [-1, 1].
    pub fn real(data: &Dataset, indices: &[usize]) -> Self {
        let mut x = Vec::with_capacity(indices.len() * data.pixels_per_image());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend(data.image(i).iter().map(|&p| p as f32 / 127.5 - 1.0));
            labels.push(data.labels[i]);
        }
        Self { x, labels }
    }

    /// The noise and fake classes of `step` (the same draws on every path).
    pub fn noise(config: &TrainConfig, classes: usize, step: u64) -> Self {
        let mut rng = stream(config.seed, Purpose::Noise, step);
        let latent = config.model.generator.latent_dim;
        let x = normal_values(&mut rng, config.batch_size * latent, 0.0, 1.0);
        let labels = (0..config.batch_size)
            .map(|_| rng.random_range(0..classes) as u8)
            .collect();
        Self { x, labels }
    }

    /// One-hot rows of the labels.
    pub fn one_hot(&self, classes: usize) -> Vec<f32> {
        one_hot_values(&self.labels, classes)
    }

    /// The batch as tensors on `device`: rows of shape `row_shape` (images
    /// [1, H, W], or [] for noise vectors) and one-hot labels.
    pub fn to_device<const D: usize>(
        self,
        row_shape: &[usize],
        classes: usize,
        device: &Device,
    ) -> Conditioned<D> {
        let rows = self.labels.len();
        let mut shape = vec![rows];
        match row_shape {
            [] => shape.push(self.x.len() / rows.max(1)),
            dims => shape.extend_from_slice(dims),
        }
        Conditioned {
            labels: one_hot(&self.labels, classes, device),
            x: Tensor::from_data(TensorData::new(self.x, shape), device),
        }
    }
}

fn progress_bar(enabled: bool, epoch: usize, epochs: usize, len: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:25}] {pos}/{len} {msg} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{epochs}", epoch + 1));
    bar
}

/// Running sums over one logging window.
struct Window {
    sums: [f64; 4],
    steps: usize,
    samples: usize,
    since: Instant,
}

impl Window {
    fn new(since: Instant) -> Self {
        Self {
            sums: [0.0; 4],
            steps: 0,
            samples: 0,
            since,
        }
    }

    fn is_empty(&self) -> bool {
        self.steps == 0
    }

    fn add(&mut self, s: &StepStats, batch: usize) {
        for (sum, v) in self
            .sums
            .iter_mut()
            .zip([s.d_loss, s.g_loss, s.d_real, s.d_fake])
        {
            *sum += v as f64;
        }
        self.steps += 1;
        self.samples += batch;
    }

    fn samples_per_s(&self) -> f64 {
        self.samples as f64 / self.since.elapsed().as_secs_f64().max(1e-9)
    }

    /// The window's averages as a metrics row; starts a new window.
    fn take(&mut self, epoch: usize, step: u64, wall_s: f64) -> MetricsRow {
        let n = self.steps.max(1) as f64;
        let mean = |i: usize| (self.sums[i] / n) as f32;
        let row = MetricsRow {
            epoch,
            step,
            d_loss: mean(0),
            g_loss: mean(1),
            d_real: mean(2),
            d_fake: mean(3),
            samples_per_s: self.samples_per_s() as f32,
            wall_s,
            quality: None,
        };
        *self = Window::new(Instant::now());
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_fraction_follows_steps_or_the_time_budget() {
        let mut c = TrainConfig::default();
        c.epochs = 2;
        assert_eq!(run_fraction(&c, 0, 100, 0.0), 0.0);
        assert_eq!(run_fraction(&c, 100, 100, 5.0), 0.5);
        c.max_steps = Some(50);
        assert_eq!(run_fraction(&c, 25, 100, 5.0), 0.5);
        c.max_minutes = Some(1.0);
        assert_eq!(run_fraction(&c, 5, 100, 45.0), 0.75, "time runs out first");
    }
}
