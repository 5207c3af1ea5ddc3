//! The training loop: epochs of shuffled batches, logging, sample grids,
//! checkpoints, interruption and the divergence guard.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;

use super::checkpoint::{self, Progress};
use super::config::TrainConfig;
use super::engine::{Engine, HostBatch, initial_state};
use super::metrics::{MetricsLog, MetricsRow, Quality};
use super::status::{Pace, RunLength, State, Status, StatusFile, human_duration};
use super::step::GanState;
use crate::backend::training_device;
use crate::data::idx::encode;
use crate::data::{Dataset, DatasetKind, Split};
use crate::eval::Evaluator;
use crate::eval::report::Figures;
use crate::interrupt::{Interrupted, Stop};
use crate::model::Generator;
use crate::model::init::normal_values;
use crate::optim::StepStats;
use crate::rng::{Purpose, stream};
use crate::run::{RunDir, RunLock};
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
    /// Ctrl-C / SIGTERM in the final evaluation, after training ended as
    /// planned: the checkpoint is written, eval.json is not.
    EvaluationInterrupted,
}

/// What a call to [`train`] did.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Why the call returned.
    pub ending: Ending,
    /// Where the run stands at the end of the call.
    pub progress: Progress,
    /// Training throughput of this call, samples per second of stepping
    /// (epoch ends and evaluations left out).
    pub samples_per_s: f64,
}

/// Options that do not change what is learned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Continue from the run's checkpoint instead of starting anew.
    pub resume: bool,
    /// Draw an indicatif progress bar (hidden anyway when stderr is not a terminal).
    pub progress_bar: bool,
    /// Run burn's autodiff step even where the native CPU step applies
    /// (`--engine burn`; for comparisons).
    pub burn_step: bool,
    /// Fault injection for tests of the divergence guard: report the losses
    /// of this step as NaN.
    #[doc(hidden)]
    pub inject_nan_at_step: Option<u64>,
}

/// The generator to sample from: the moving average when training keeps one.
fn sampling_generator(state: &GanState, config: &TrainConfig) -> anyhow::Result<Generator> {
    match &state.ema {
        Some(ema) if !ema.tensors.is_empty() => ema.generator(&config.model.generator),
        _ => Ok(state.generator.clone()),
    }
}

/// `generator` drawing the noise the run's digits are drawn with
/// (`--sample-noise-scale`), as generate, export, eval and serve will.
fn run_sampler(generator: &Generator, config: &TrainConfig) -> anyhow::Result<Sampler> {
    Sampler::from_generator(generator).with_noise_scale(config.sample_noise_scale)
}

/// Trains (or resumes) the run in `run` until `config.epochs`, `config.max_steps`,
/// or `stop` becomes true.
pub fn train(
    config: &TrainConfig,
    run: &RunDir,
    options: Options,
    stop: &AtomicBool,
) -> anyhow::Result<Summary> {
    let mut trainer = Trainer::start(config, run, options, Stop::on(stop))?;
    if trainer.is_done() {
        tracing::info!(
            step = trainer.progress.step,
            "nothing to do: the run is already past --epochs / --max-steps"
        );
        return Ok(Summary {
            ending: Ending::Finished,
            progress: trainer.progress,
            samples_per_s: 0.0,
        });
    }
    let ended = trainer
        .run(stop)
        .and_then(|ending| trainer.finish(ending, Stop::on(stop)));
    if let Err(e) = &ended {
        trainer.bar.abandon();
        trainer.status.status.state = State::Failed;
        trainer.status.status.detail = Some(format!("{e:#}"));
        trainer.status.save();
    }
    ended
}

/// A run in training: the data, the networks, the engine that steps them,
/// and what has been written.
struct Trainer<'a> {
    config: &'a TrainConfig,
    run: &'a RunDir,
    options: Options,
    data: Dataset,
    batches_per_epoch: usize,
    length: RunLength,
    /// Held until training ends: no second trainer on this run.
    _lock: RunLock,
    state: GanState,
    engine: Engine,
    progress: Progress,
    metrics: MetricsLog,
    /// The noise of the per-epoch class grid.
    fixed_z: Vec<f32>,
    quality: QualityProbe<'a>,
    window: Window,
    /// The whole run's progress bar (hidden without a terminal).
    bar: ProgressBar,
    status: StatusFile,
    /// Seconds spent stepping in this session, and the steps they made.
    stepping: (f64, u64),
    /// What the latest epoch's end took (one-off loads left out).
    epoch_end_s: f64,
    started: Instant,
    wall_at_start: f64,
    steps_at_start: u64,
    last_checkpoint: u64,
}

impl<'a> Trainer<'a> {
    /// Loads the data and the run's state (fresh, or its checkpoint).
    fn start(
        config: &'a TrainConfig,
        run: &'a RunDir,
        options: Options,
        stop: Stop,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        config.precision.check()?;
        let data = training_data(config, run, options.resume, stop)?;
        let batches_per_epoch = data.len() / config.batch_size;
        let mut quality = QualityProbe::new(config);
        quality.load_given()?;
        let device = training_device();
        let lock = match options.resume {
            true => run.lock()?,
            false => run.claim()?,
        };
        let fresh = initial_state(config, &device);
        let (state, progress) = match options.resume {
            true => checkpoint::load(run, fresh, config)?,
            false => (fresh, Progress::default()),
        };
        if options.resume {
            refuse_nothing_to_train(config, &progress, run)?;
        }
        // Only now, with the checkpoint and metrics.csv read: a refused resume
        // changes no file.
        let metrics = MetricsLog::open(&run.metrics(), progress.step)?;
        config.save(&run.config())?;
        run.mark_latest()?;
        if config.dataset == DatasetKind::Folder && !options.resume {
            cache_folder(run, &data, &config.classes())?;
        }
        let engine = Engine::choose(
            &state,
            &config.model,
            config.precision,
            options.burn_step,
            &device,
        )?;
        let first: Vec<usize> = (0..config.batch_size).collect();
        let noise = HostBatch::noise(config, data.num_classes, progress.step);
        let real = HostBatch::real(&data, &first);
        let objective = &config.objective;
        if let Some(choices) = engine.calibrate(&state, &real, &noise, data.num_classes, objective)
        {
            tracing::info!("--precision auto: {}", choices.summary());
        }
        let fixed_z = normal_values(
            &mut stream(config.seed, Purpose::FixedGrid, 0),
            data.num_classes.min(crate::sample::MAX_GRID_COLUMNS)
                * config.model.generator.latent_dim,
            0.0,
            1.0,
        );
        let length = RunLength::of(config, batches_per_epoch);
        let bar = progress_bar(options.progress_bar, &length, progress.step);
        let status = StatusFile::new(
            run.status(),
            Status {
                state: State::Training,
                detail: None,
                step: progress.step,
                epoch: progress.epoch,
                epochs: config.epochs,
                total_steps: length.total_steps,
                budget_s: length.budget_s,
                wall_s: progress.wall_s,
                samples_per_s: 0.0,
                eta_s: None,
                checkpoint_step: progress.step,
                updated_unix_s: 0.0,
                pid: std::process::id(),
                ceiling: None,
            },
        );
        let mut status = status;
        // A resumed run keeps the ceiling it measured; the page says it trains from now on.
        if options.resume {
            status.status.ceiling = Status::read(&run.status()).and_then(|s| s.ceiling);
        }
        status.save();
        let started = Instant::now();
        Ok(Self {
            config,
            run,
            options,
            data,
            batches_per_epoch,
            length,
            bar,
            status,
            stepping: (0.0, 0),
            epoch_end_s: 0.0,
            _lock: lock,
            state,
            engine,
            wall_at_start: progress.wall_s,
            steps_at_start: progress.step,
            last_checkpoint: progress.step,
            progress,
            metrics,
            fixed_z,
            quality,
            window: Window::new(started),
            started,
        })
    }

    /// Whether the run is already past --epochs or --max-steps.
    fn is_done(&self) -> bool {
        self.progress.epoch >= self.config.epochs
            || self
                .config
                .max_steps
                .is_some_and(|m| self.progress.step >= m)
    }

    /// Why training must stop before the next step, if it must.
    fn should_stop(&self, stop: &AtomicBool) -> Option<Ending> {
        let (config, progress) = (self.config, &self.progress);
        if config.max_steps.is_some_and(|m| progress.step >= m) {
            Some(Ending::MaxSteps)
        } else if config
            .max_minutes
            .is_some_and(|m| progress.wall_s >= m * 60.0)
        {
            Some(Ending::TimeBudget)
        } else if stop.load(Ordering::SeqCst) {
            Some(Ending::Interrupted)
        } else {
            None
        }
    }

    /// Epochs until the run ends or must stop; how it ended.
    fn run(&mut self, stop: &AtomicBool) -> anyhow::Result<Ending> {
        while self.progress.epoch < self.config.epochs {
            if let Some(stopped) = self.run_epoch(stop)? {
                return Ok(stopped);
            }
            self.end_epoch()?;
        }
        Ok(Ending::Finished)
    }

    /// The rest of the current epoch's steps; `Some` when training stops
    /// before its end.
    fn run_epoch(&mut self, stop: &AtomicBool) -> anyhow::Result<Option<Ending>> {
        let config = self.config;
        let order = epoch_order(self.data.len(), config.seed, self.progress.epoch);
        self.bar.set_prefix(format!(
            "epoch {}/{}",
            self.progress.epoch + 1,
            config.epochs
        ));
        while self.progress.batch_in_epoch < self.batches_per_epoch {
            if let Some(ending) = self.should_stop(stop) {
                return Ok(Some(ending));
            }
            let start = self.progress.batch_in_epoch * config.batch_size;
            let began = Instant::now();
            let stats = self.train_step(&order[start..start + config.batch_size])?;
            self.bar.set_position(self.progress.step);
            if self.status.due() {
                self.bar.set_message(format!(
                    "D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2} {:.0} samples/s{}",
                    stats.d_loss,
                    stats.g_loss,
                    stats.d_real,
                    stats.d_fake,
                    self.window.samples_per_s(),
                    self.time_left()
                        .map_or(String::new(), |s| format!(", {} left", human_duration(s)))
                ));
                self.update_status(self.window.samples_per_s());
                self.status.save();
            }
            self.after_step()?;
            self.stepping.0 += began.elapsed().as_secs_f64();
            self.stepping.1 += 1;
        }
        Ok(None)
    }

    /// Seconds until the run is done, at this session's pace; `None`
    /// before the first step.
    fn time_left(&self) -> Option<f64> {
        let (seconds, steps) = self.stepping;
        let pace = Pace {
            step_s: (steps > 0).then(|| seconds / steps as f64),
            epoch_end_s: self.epoch_end_s,
            final_s: self.quality.final_report_s(),
        };
        self.length
            .eta_s(self.progress.step, self.progress.wall_s, &pace)
    }

    /// Brings status.json's figures up to the current step (not written).
    fn update_status(&mut self, samples_per_s: f64) {
        let eta_s = self.time_left();
        let (p, s) = (&self.progress, &mut self.status.status);
        s.step = p.step;
        s.epoch = p.epoch;
        s.wall_s = p.wall_s;
        s.samples_per_s = samples_per_s;
        s.eta_s = eta_s;
        s.checkpoint_step = self.last_checkpoint;
        if s.ceiling.is_none() {
            s.ceiling = self.quality.ceiling.clone();
        }
    }

    /// One step on the images at `indices`, with the learning rates of this
    /// point of the run; the divergence guard.
    fn train_step(&mut self, indices: &[usize]) -> anyhow::Result<StepStats> {
        let (config, classes) = (self.config, self.data.num_classes);
        let real = HostBatch::real(&self.data, indices);
        let noise = HostBatch::noise(config, classes, self.progress.step);
        let p = &self.progress;
        let factor = config
            .objective
            .lr_schedule
            .factor(self.length.fraction(p.step, p.wall_s));
        self.state.adam_g.config.lr = config.adam_g().lr * factor;
        self.state.adam_d.config.lr = config.adam_d().lr * factor;
        let mut stats =
            self.engine
                .step(&mut self.state, &real, &noise, classes, &config.objective);
        if self.options.inject_nan_at_step == Some(self.progress.step + 1) {
            stats.d_loss = f32::NAN;
        }
        self.engine.update_ema(&mut self.state);
        if let Some((what, value)) = stats.non_finite() {
            bail!(
                "training diverged at step {}: {what} is {value}. The last good checkpoint (step {}) in {} \
                 is kept untouched; lower --lr or change --seed and start again, or `cdcgan train --resume {}`",
                self.progress.step + 1,
                self.last_checkpoint,
                self.run.checkpoint().display(),
                self.run.root.display()
            );
        }
        let p = &mut self.progress;
        p.step += 1;
        p.batch_in_epoch += 1;
        p.wall_s = self.wall_at_start + self.started.elapsed().as_secs_f64();
        self.window.add(&stats, config.batch_size);
        Ok(stats)
    }

    /// Logging and the --checkpoint-every checkpoints after a step.
    fn after_step(&mut self) -> anyhow::Result<()> {
        let (config, p) = (self.config, self.progress);
        // The epoch's last step is logged by `end_epoch`, with the epoch's evaluation.
        if p.step % config.log_every == 0 && p.batch_in_epoch < self.batches_per_epoch {
            let row = self.window.take(p.epoch + 1, p.step, p.wall_s);
            self.metrics.append(&row)?;
        }
        if config.checkpoint_every.is_some_and(|k| p.step % k == 0) {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Brings burn's modules up to date and writes a checkpoint.
    fn checkpoint(&mut self) -> anyhow::Result<()> {
        self.engine.sync(&mut self.state)?;
        checkpoint::save(self.run, &self.state, &self.progress, self.config)?;
        self.last_checkpoint = self.progress.step;
        let samples_per_s = self.status.status.samples_per_s;
        self.update_status(samples_per_s);
        self.status.save();
        Ok(())
    }

    /// After an epoch: its metrics row and evaluation, the class grid and
    /// progress GIF, a checkpoint and the plots.
    fn end_epoch(&mut self) -> anyhow::Result<()> {
        let (config, run) = (self.config, self.run);
        let began = Instant::now();
        let epoch = self.progress.epoch + 1;
        let mut row = self
            .window
            .take(epoch, self.progress.step, self.progress.wall_s);
        let losses = format!("D {:.3} G {:.3}", row.d_loss, row.g_loss);
        self.engine.sync(&mut self.state)?;
        let sampled = sampling_generator(&self.state, config)?;
        if config.eval_every > 0 && epoch.is_multiple_of(config.eval_every) {
            row.quality = self.quality.measure(&sampled, self.progress.step)?;
        }
        self.metrics.append(&row)?;
        self.progress.epoch += 1;
        self.progress.batch_in_epoch = 0;
        let sampler = Sampler::from_generator(&sampled);
        let (rows, columns) = sampler.grid_shape();
        let grid = sampler.class_grid(&self.fixed_z)?;
        write_grid(
            &run.epoch_grid(epoch),
            &grid,
            sampler.image(),
            rows,
            columns,
        )?;
        crate::sample::animation::progress_gif(&run.samples(), &run.progress_gif())?;
        self.checkpoint()?;
        self.write_plots()?;
        self.epoch_end_s = began.elapsed().as_secs_f64() - self.quality.take_load_s();
        let left = self.time_left().map_or("?".into(), human_duration);
        self.bar.suspend(|| {
            tracing::info!(
                "epoch {epoch}/{} done: step {} of {}, {losses}, {:.0} samples/s, {:.0} s so far, \
                 {left} left; grid in {}",
                config.epochs,
                self.progress.step,
                self.length.total_steps,
                row.samples_per_s,
                self.progress.wall_s,
                run.epoch_grid(epoch).display()
            )
        });
        Ok(())
    }

    fn write_plots(&self) -> anyhow::Result<()> {
        let rows = super::metrics::read(&self.run.metrics())?;
        let losses: Vec<_> = rows.iter().map(MetricsRow::loss_point).collect();
        crate::plot::loss_plot(&losses, &self.run.loss_plot())?;
        let quality: Vec<_> = rows.iter().filter_map(MetricsRow::quality_point).collect();
        crate::plot::quality_plot(&quality, &self.run.quality_plot())
    }

    /// The last metrics row and checkpoint when the run stopped between
    /// epochs; the full evaluation when it ended as planned.
    fn finish(&mut self, mut ending: Ending, stop: Stop) -> anyhow::Result<Summary> {
        let config = self.config;
        self.engine.sync(&mut self.state)?;
        let p = self.progress;
        if p.step != self.last_checkpoint {
            if !self.window.is_empty() {
                let mut row = self.window.take(p.epoch + 1, p.step, p.wall_s);
                // A time budget ends the run: measure where it ended, for the curves against time.
                if ending == Ending::TimeBudget && config.eval_every > 0 {
                    let sampled = sampling_generator(&self.state, config)?;
                    row.quality = self.quality.measure(&sampled, p.step)?;
                }
                self.metrics.append(&row)?;
            }
            checkpoint::save(self.run, &self.state, &p, config)
                .context("writing the final checkpoint")?;
            self.last_checkpoint = p.step;
            self.write_plots()?;
        }
        let trained_now = p.step > self.steps_at_start;
        if matches!(ending, Ending::Finished | Ending::TimeBudget)
            && config.eval_every > 0
            && trained_now
        {
            self.status.status.detail = Some("the final evaluation".into());
            self.status.save();
            match self.write_final_report(stop) {
                Err(e) if e.is::<Interrupted>() => ending = Ending::EvaluationInterrupted,
                ended => ended?,
            }
        }
        self.bar.finish_and_clear();
        let (seconds, steps) = self.stepping;
        let samples_per_s = steps as f64 * config.batch_size as f64 / seconds.max(1e-9);
        self.update_status(samples_per_s);
        let (state, detail) = match ending {
            Ending::Interrupted => (State::Stopped, "interrupted"),
            Ending::EvaluationInterrupted => (
                State::Stopped,
                "interrupted in the final evaluation: eval.json was not written",
            ),
            Ending::Finished => (State::Finished, "epochs"),
            Ending::MaxSteps => (State::Finished, "max-steps"),
            Ending::TimeBudget => (State::Finished, "max-minutes"),
        };
        let status = &mut self.status.status;
        status.state = state;
        status.detail = Some(detail.into());
        status.eta_s = None;
        self.status.save();
        Ok(Summary {
            ending,
            progress: p,
            samples_per_s,
        })
    }

    /// eval.json: the full evaluation of the generator sampled from.
    fn write_final_report(&mut self, stop: Stop) -> anyhow::Result<()> {
        let sampled = sampling_generator(&self.state, self.config)?;
        let Some(report) = self.quality.full_report(&sampled, stop)? else {
            return Ok(());
        };
        let path = self.run.root.join("eval.json");
        let json = serde_json::to_string_pretty(&report)?;
        crate::store::write_atomic(&path, json.as_bytes())?;
        tracing::info!(
            "final evaluation in {}:\n{}",
            path.display(),
            report.table()
        );
        Ok(())
    }
}

/// Refuses a resume whose end (--epochs, --max-steps, --max-minutes) the
/// run has already reached: it would train nothing and still rewrite
/// config.json with the shorter length.
fn refuse_nothing_to_train(config: &TrainConfig, p: &Progress, run: &RunDir) -> anyhow::Result<()> {
    let reached = if config.max_steps.is_some_and(|m| p.step >= m) {
        Some(format!(
            "--max-steps {}",
            config.max_steps.unwrap_or_default()
        ))
    } else if p.epoch >= config.epochs {
        Some(format!("--epochs {}", config.epochs))
    } else if config.max_minutes.is_some_and(|m| p.wall_s >= m * 60.0) {
        Some(format!(
            "--max-minutes {}",
            config.max_minutes.unwrap_or_default()
        ))
    } else {
        None
    };
    if let Some(end) = reached {
        bail!(
            "{}: the run is at step {} (epoch {} of {}, {:.0} s trained), already at {end}; \
             nothing to train: give a longer --max-steps, --epochs or --max-minutes",
            run.root.display(),
            p.step,
            p.epoch,
            config.epochs,
            p.wall_s
        );
    }
    Ok(())
}

/// The training images (--limit applied), checked against the batch size
/// and the model's classes.
fn training_data(
    config: &TrainConfig,
    run: &RunDir,
    resume: bool,
    stop: Stop,
) -> anyhow::Result<Dataset> {
    let mut data = match (config.dataset, resume) {
        // An image-folder run decodes its folder once; a resume reads the cache.
        (DatasetKind::Folder, true) => cached_folder(config, run, stop)?,
        // The classes config.json names, not a second listing of the folder.
        (DatasetKind::Folder, false) => decode_folder(config, stop)?,
        (kind, _) => Dataset::load(kind, config.data_dir.as_deref(), Split::Train)?,
    };
    let found = data.len();
    if let Some(limit) = config.limit {
        data.truncate(limit);
    }
    if data.len() < config.batch_size {
        let (what, fix) = match (config.limit, config.data_dir.as_deref()) {
            (Some(limit), _) if limit < found => (
                format!("the {limit} training images --limit keeps (of {found})"),
                "lower --batch-size or raise --limit",
            ),
            (_, Some(dir)) if config.dataset == DatasetKind::Folder => (
                format!("the {found} images of --data {}", dir.display()),
                "give a smaller --batch-size, or add images",
            ),
            _ => (
                format!("the {found} training images"),
                "give a smaller --batch-size",
            ),
        };
        let fix = match resume {
            true => "a resumed run keeps its --batch-size: start a new run with a smaller one",
            false => fix,
        };
        bail!(
            "--batch-size {} is larger than {what}; {fix}",
            config.batch_size
        );
    }
    let (model, have) = (config.model.generator.image(), data.shape);
    anyhow::ensure!(
        model == have,
        "the model is built for {}x{} images of {} channels, the data set's are {}x{} of {}",
        model.side,
        model.side,
        model.channels,
        have.side,
        have.side,
        have.channels
    );
    anyhow::ensure!(
        config.model.generator.num_classes == data.num_classes,
        "the model is built for {} classes, the data set has {}",
        config.model.generator.num_classes,
        data.num_classes
    );
    Ok(data)
}

/// Decodes an image-folder run's folder, by the class names in its config.
fn decode_folder(config: &TrainConfig, stop: Stop) -> anyhow::Result<Dataset> {
    let Some(dir) = config.data_dir.as_deref() else {
        bail!("an image-folder run needs --data DIR");
    };
    let classes = config.classes();
    let scan = crate::data::folder::scan_classes(dir, &classes, config.decoding(), stop)?;
    tracing::info!("--data {}: {}", dir.display(), scan.report());
    Ok(scan.data)
}

/// An image-folder run's decoded images, read back from data/ on resume
/// and checked against the run (its image shape, its classes); a cache that is gone
/// is decoded from the folder again.
fn cached_folder(config: &TrainConfig, run: &RunDir, stop: Stop) -> anyhow::Result<Dataset> {
    let (images, labels) = (run.cached_images(), run.cached_labels());
    let cache_gone = !images.exists() && !labels.exists();
    compare_classes(config, run, cache_gone)?;
    if cache_gone {
        tracing::warn!(
            "{}: no decoded images; decoding the folder again",
            images.display()
        );
        let data = decode_folder(config, stop)?;
        cache_folder(run, &data, &config.classes())?;
        return Ok(data);
    }
    let damaged = |why: String| {
        anyhow::anyhow!(
            "{}: {why}; the run's decoded images are damaged: remove {} and resume again \
             to decode the folder anew",
            images.display(),
            images.parent().unwrap_or(run.root.as_path()).display()
        )
    };
    let data = Dataset::from_files(&images, &labels, config.classes().len())
        .map_err(|e| damaged(format!("{e:#}")))?;
    let (have, want) = (data.shape, config.model.generator.image());
    if have != want {
        return Err(damaged(format!(
            "its images are {}x{} of {} channels, not the run's {}x{} of {}",
            have.side, have.side, have.channels, want.side, want.side, want.channels
        )));
    }
    Ok(data)
}

/// A resumed folder run keeps its classes: a class folder added since is
/// named as left out; one removed is an error when the run's decoded images
/// are gone too (nothing is left to train that class on).
fn compare_classes(config: &TrainConfig, run: &RunDir, cache_gone: bool) -> anyhow::Result<()> {
    let Some(dir) = config.data_dir.as_deref().filter(|d| d.is_dir()) else {
        return Ok(());
    };
    let (kept, now) = (config.classes(), crate::data::folder::listed_classes(dir)?);
    let added: Vec<&String> = now.iter().filter(|c| !kept.contains(c)).collect();
    let removed: Vec<&String> = kept.iter().filter(|c| !now.contains(c)).collect();
    if !added.is_empty() {
        tracing::warn!(
            "--data {}: the class folders {added:?} were added since the run started and are \
             not trained on: a resumed run keeps its {} classes; start a new run to include them",
            dir.display(),
            kept.len()
        );
    }
    if removed.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        !cache_gone,
        "--resume {}: the run's decoded images ({}) are gone, and --data {} no longer has the \
         class folders {removed:?} the run trains on; put them back (or the run's data/) to \
         resume, or start a new run",
        run.root.display(),
        run.cached_images()
            .parent()
            .unwrap_or(run.root.as_path())
            .display(),
        dir.display()
    );
    tracing::info!(
        "--data {}: the class folders {removed:?} are gone; the run goes on training on their \
         images decoded in {}",
        dir.display(),
        run.root.join("data").display()
    );
    Ok(())
}

/// Writes an image-folder run's decoded images into the run (IDX files and
/// classes.txt), for resumes.
fn cache_folder(run: &RunDir, data: &Dataset, classes: &[String]) -> anyhow::Result<()> {
    let dir = run
        .cached_images()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let (channels, side) = (data.shape.channels, data.shape.side);
    let dims = match channels {
        1 => vec![data.len(), side, side],
        _ => vec![data.len(), channels, side, side],
    };
    let write = |path: &Path, bytes: &[u8]| crate::store::write_atomic(path, bytes);
    write(
        &dir.join("classes.txt"),
        (classes.join("\n") + "\n").as_bytes(),
    )?;
    write(&run.cached_labels(), &encode(&[data.len()], &data.labels)?)?;
    write(&run.cached_images(), &encode(&dims, &data.images)?)
}

/// Samples in the final evaluation (eval.json).
const FINAL_SAMPLES: usize = 10_000;

/// Measures sample quality during training with the committed evaluator.
/// The evaluator (classifier plus test-set features) is loaded on first use;
/// when the data set has none, evaluation is skipped with one warning.
struct QualityProbe<'a> {
    config: &'a TrainConfig,
    evaluator: Option<Option<Evaluator>>,
    /// Whether the figures `--eval-samples` is too small for were named in the log.
    told_not_measured: bool,
    /// Real images scored as [`QualityProbe::measure`] scores samples, once.
    ceiling: Option<Figures>,
    /// Seconds the evaluator took to load, until taken.
    load_s: f64,
    /// Seconds the latest measurement took (the ceiling left out).
    measure_s: Option<f64>,
}

impl<'a> QualityProbe<'a> {
    fn new(config: &'a TrainConfig) -> Self {
        Self {
            config,
            evaluator: None,
            told_not_measured: false,
            ceiling: None,
            load_s: 0.0,
            measure_s: None,
        }
    }

    fn evaluator(&mut self) -> Option<&Evaluator> {
        if self.evaluator.is_none() {
            let began = Instant::now();
            self.evaluator = Some(self.load_evaluator());
            self.load_s += began.elapsed().as_secs_f64();
        }
        self.evaluator.as_ref().and_then(Option::as_ref)
    }

    /// The data set's evaluator, or `None` (with a warning) when it has none.
    fn load_evaluator(&self) -> Option<Evaluator> {
        let config = self.config;
        if config.dataset == DatasetKind::Folder && config.classifier.is_none() {
            tracing::warn!(
                "sample quality is not measured: an image folder's run is scored by an \
                 evaluator trained on the folder (cdcgan classifier train --data DIR \
                 --out FILE), given with train --classifier FILE or eval --classifier FILE"
            );
            return None;
        }
        let classifier = config.classifier.as_deref();
        match Evaluator::new(config.dataset, config.data_dir.as_deref(), classifier) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!("sample quality will not be measured: {e:#}");
                None
            }
        }
    }

    /// The seconds the evaluator took to load since last asked (a one-off
    /// cost, left out of the pace).
    fn take_load_s(&mut self) -> f64 {
        std::mem::take(&mut self.load_s)
    }

    /// What the final evaluation should take: 10,000 samples and as many
    /// real images, at the pace of the latest measurement.
    fn final_report_s(&self) -> f64 {
        self.measure_s.map_or(0.0, |s| {
            2.0 * s * FINAL_SAMPLES as f64 / self.config.eval_samples.max(1) as f64
        })
    }

    /// Loads the evaluator given with `--classifier` now, before anything is
    /// written, refusing one that scores other images than the run makes.
    fn load_given(&mut self) -> anyhow::Result<()> {
        let config = self.config;
        let Some(path) = &config.classifier else {
            return Ok(());
        };
        let evaluator = Evaluator::new(config.dataset, config.data_dir.as_deref(), Some(path))
            .with_context(|| format!("--classifier {}", path.display()))?;
        let (made, scored) = (config.model.generator.image(), evaluator.image());
        anyhow::ensure!(
            made == scored,
            "--classifier {}: it scores {}x{} images of {} channels; this run makes {}x{} of {} \
             (train one for the run's images: {})",
            path.display(),
            scored.side,
            scored.side,
            scored.channels,
            made.side,
            made.side,
            made.channels,
            crate::eval::fit::command_for(made)
        );
        self.evaluator = Some(Some(evaluator));
        Ok(())
    }

    /// The quick figures for metrics.csv: `eval_samples` samples from a fixed noise.
    /// Also the collapse guard: a class whose samples spread far less than
    /// the real class's is reported with the step.
    fn measure(&mut self, generator: &Generator, step: u64) -> anyhow::Result<Option<Quality>> {
        let (config, first) = (self.config, self.ceiling.is_none());
        let Some(evaluator) = self.evaluator() else {
            return Ok(None);
        };
        let began = Instant::now();
        let sampler = run_sampler(generator, config)?;
        let (images, labels) = sampler.balanced_samples(config.eval_samples, 0)?;
        let f = evaluator.score(&images, &labels)?;
        let measure_s = began.elapsed().as_secs_f64();
        let diversity = evaluator.diversity(&f);
        let began_ceiling = Instant::now();
        let ceiling = match first {
            true => Some(evaluator.ceiling(&labels, 0)?),
            false => None,
        };
        // Measured once: a one-off cost, as the evaluator's load.
        self.load_s += began_ceiling.elapsed().as_secs_f64();
        self.ceiling = self.ceiling.take().or(ceiling);
        self.measure_s = Some(measure_s);
        for class in crate::eval::collapsed_classes(&diversity) {
            tracing::warn!(
                "class {class} is collapsing at step {step}: its samples spread {:.2}x as much as real ones",
                diversity[class].unwrap_or_default()
            );
        }
        if !std::mem::replace(&mut self.told_not_measured, true) {
            for (figure, reason) in &f.not_measured {
                tracing::warn!(
                    "--eval-samples {}: the in-training {figure} is n/a: it {reason}",
                    config.eval_samples
                );
            }
        }
        Ok(Some(Quality {
            accuracy: f.accuracy as f32,
            frechet: f.frechet.map(|v| v as f32),
            precision: f.precision as f32,
            recall: f.recall as f32,
        }))
    }

    /// The full evaluation (10,000 samples, with the real-data ceiling) for eval.json.
    fn full_report(
        &mut self,
        generator: &Generator,
        stop: Stop,
    ) -> anyhow::Result<Option<crate::eval::report::Report>> {
        let config = self.config;
        let Some(evaluator) = self.evaluator() else {
            return Ok(None);
        };
        let sampler = run_sampler(generator, config)?;
        let (images, labels) = sampler.balanced_samples_until(FINAL_SAMPLES, 0, stop)?;
        let mut report = evaluator.report_until(&images, &labels, 0, stop)?;
        report.noise_scale = sampler.widened_noise_scale();
        Ok(Some(report))
    }
}

/// The data order of `epoch`: a permutation drawn from (seed, epoch).
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut stream(seed, Purpose::Shuffle, epoch as u64));
    order
}

/// The whole run's bar: steps done of the run's total, resumed runs from
/// where they stand. Hidden with --quiet or when stderr is not a terminal
/// (logs then get one line per epoch).
fn progress_bar(enabled: bool, length: &RunLength, step: u64) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length.total_steps);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(step);
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
