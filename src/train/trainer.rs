//! The training loop: epochs of shuffled batches, logging, sample grids,
//! checkpoints, interruption and the divergence guard.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;

use super::checkpoint::{self, Progress};
use super::config::TrainConfig;
use super::data::{cache_folder, training_data};
use super::engine::{At, Diverged, Engine, HostBatch, initial_state};
use super::metrics::{MetricsLog, MetricsRow, Window};
use super::quality::{QualityProbe, sampling_generator};
use super::recipe::EVALUATIONS;
use super::status::{Pace, RunLength, State, Status, StatusFile, human_duration};
use super::step::GanState;
use crate::backend::training_device;
use crate::data::{Dataset, DatasetKind};
use crate::interrupt::{Interrupted, Stop};
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
    /// Seconds spent in training steps in this session (logging and
    /// checkpoints left out), and the steps they made.
    stepping: (f64, u64),
    /// Seconds the epoch ends of this session took (one-off loads left
    /// out), and how many there were.
    epoch_ends: (f64, usize),
    /// The [`EVALUATIONS`]ths of the run passed at the latest snapshot.
    snapshot_mark: u64,
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
        let engine = choose_engine(config, &state, &data, &progress, options.burn_step, &device)?;
        let fixed_z = normal_values(
            &mut stream(config.seed, Purpose::FixedGrid, 0),
            data.num_classes.min(crate::sample::MAX_GRID_COLUMNS)
                * config.model.generator.latent_dim,
            0.0,
            1.0,
        );
        let length = RunLength::of(config, batches_per_epoch);
        let bar = progress_bar(options.progress_bar, &length, progress.step);
        let status = first_status(config, run, &progress, &length, options.resume);
        let mark = snapshot_mark(length.fraction(progress.step, progress.wall_s));
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
            epoch_ends: (0.0, 0),
            snapshot_mark: mark,
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
            self.stepping.0 += began.elapsed().as_secs_f64();
            self.stepping.1 += 1;
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
        }
        Ok(None)
    }

    /// Seconds until the run is done, at this session's pace; `None`
    /// before the first step.
    fn time_left(&self) -> Option<f64> {
        let (seconds, steps) = self.stepping;
        let pace = Pace {
            step_s: (steps > 0).then(|| seconds / steps as f64),
            epoch_end_s: self.epoch_ends.0 / self.epoch_ends.1.max(1) as f64,
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

    /// One iteration on the images at `indices` ([`Engine::iteration`]);
    /// a divergence names the last good checkpoint.
    fn train_step(&mut self, indices: &[usize]) -> anyhow::Result<StepStats> {
        let (config, classes) = (self.config, self.data.num_classes);
        let real = HostBatch::real(&self.data, indices);
        let p = &self.progress;
        let at = At {
            step: p.step,
            done: self.length.fraction(p.step, p.wall_s),
        };
        let inject = self.options.inject_nan_at_step == Some(p.step + 1);
        let stats = self
            .engine
            .iteration(&mut self.state, config, &real, classes, at)
            .and_then(|stats| match inject {
                true => Diverged::check(&StepStats {
                    d_loss: f32::NAN,
                    ..stats
                })
                .map(|()| stats),
                false => Ok(stats),
            });
        let stats = stats.map_err(|diverged| {
            anyhow::anyhow!(
                "training diverged at step {}: {diverged}. The last good checkpoint (step {}) in {} \
                 is kept untouched; lower --lr or change --seed and start again, or `cdcgan train --resume {}`",
                self.progress.step + 1,
                self.last_checkpoint,
                self.run.checkpoint().display(),
                self.run.root.display()
            )
        })?;
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
        let snapshot = self.snapshot_due(epoch);
        if snapshot {
            self.write_grid(&sampled, epoch)?;
        }
        self.checkpoint()?;
        if snapshot {
            self.write_plots()?;
        }
        let spent = began.elapsed().as_secs_f64() - self.quality.take_load_s();
        self.epoch_ends = (self.epoch_ends.0 + spent, self.epoch_ends.1 + 1);
        if !snapshot {
            return Ok(());
        }
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

    /// Whether the end of `epoch` writes the class grid, the progress GIF,
    /// the plots and the log line: when another [`EVALUATIONS`]th of the run
    /// (by steps or time) has passed, and at the last epoch. Every epoch of
    /// an MNIST run; about 30 of a small folder's many, whatever ends it.
    fn snapshot_due(&mut self, epoch: usize) -> bool {
        let p = &self.progress;
        let mark = snapshot_mark(self.length.fraction(p.step, p.wall_s));
        let due = mark > self.snapshot_mark || epoch == self.config.epochs;
        self.snapshot_mark = self.snapshot_mark.max(mark);
        due
    }

    /// The fixed-noise class grid of `epoch`, and the progress GIF of the
    /// grids so far.
    fn write_grid(&self, sampled: &crate::model::Generator, epoch: usize) -> anyhow::Result<()> {
        let run = self.run;
        let sampler = Sampler::from_generator(sampled);
        let (rows, columns) = sampler.grid_shape();
        let grid = sampler.class_grid(&self.fixed_z)?;
        let path = run.epoch_grid(epoch);
        write_grid(&path, &grid, sampler.image(), rows, columns)?;
        crate::sample::animation::progress_gif(&run.samples(), &run.progress_gif())?;
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

/// The [`EVALUATIONS`]ths of a run in its share `done`.
fn snapshot_mark(done: f64) -> u64 {
    (done.clamp(0.0, 1.0) * EVALUATIONS as f64 + 1e-9).floor() as u64
}

/// The step that trains `state` ([`Engine::choose`]); under `--precision
/// auto`, its products' arithmetic chosen on the run's first batch.
fn choose_engine(
    config: &TrainConfig,
    state: &GanState,
    data: &Dataset,
    progress: &Progress,
    burn_step: bool,
    device: &burn::tensor::Device,
) -> anyhow::Result<Engine> {
    let engine = Engine::choose(state, &config.model, config.precision, burn_step, device)?;
    let first: Vec<usize> = (0..config.batch_size).collect();
    let noise = HostBatch::noise(config, data.num_classes, progress.step);
    let real = HostBatch::real(data, &first);
    let objective = &config.objective;
    if let Some(choices) = engine.calibrate(state, &real, &noise, data.num_classes, objective) {
        tracing::info!("--precision auto: {}", choices.summary());
    }
    Ok(engine)
}

/// status.json as training starts (written): a resumed run keeps the
/// ceiling it measured; the page says it trains from now on.
fn first_status(
    config: &TrainConfig,
    run: &RunDir,
    progress: &Progress,
    length: &RunLength,
    resume: bool,
) -> StatusFile {
    let ceiling = match resume {
        true => Status::read(&run.status()).and_then(|s| s.ceiling),
        false => None,
    };
    let mut status = StatusFile::new(
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
            ceiling,
        },
    );
    status.save();
    status
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
