//! The training loop: epochs of shuffled batches, logging, sample grids,
//! checkpoints, interruption and the divergence guard.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use indicatif::ProgressBar;

use super::checkpoint::{self, Progress};
use super::config::TrainConfig;
use super::data::{cache_folder, epoch_order, training_data};
use super::engine::{At, Diverged, Engine, HostBatch, initial_state};
use super::metrics::{MetricsLog, Window};
use super::quality::{QualityProbe, sampling_generator};
use super::snapshot::{Snapshots, write_plots};
use super::status::{
    Ending, RunLength, SessionClock, State, StatusFile, bar_message, human_duration, progress_bar,
};
use super::step::GanState;
use crate::backend::training_device;
use crate::data::{Dataset, DatasetKind};
use crate::interrupt::{Interrupted, Stop};
use crate::optim::StepStats;
use crate::run::{RunDir, RunLock};

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
        trainer.status.end(State::Failed, format!("{e:#}"));
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
    /// The class grid, GIF and plots of some epoch ends.
    snapshots: Snapshots,
    quality: QualityProbe<'a>,
    window: Window,
    /// The whole run's progress bar (hidden without a terminal).
    bar: ProgressBar,
    status: StatusFile,
    /// This session's time, in steps and at epoch ends.
    clock: SessionClock,
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
            checkpoint::refuse_nothing_to_train(config, &progress, run)?;
        }
        // Only now, with the checkpoint and metrics.csv read: a refused resume
        // changes no file.
        let metrics = MetricsLog::open(&run.metrics(), progress.step)?;
        config.save(&run.config())?;
        run.mark_latest()?;
        if config.dataset == DatasetKind::Folder && !options.resume {
            cache_folder(run, &data, &config.classes())?;
        }
        let first: Vec<usize> = (0..config.batch_size).collect();
        let (engine, choices) = Engine::for_run(
            &state,
            config,
            &HostBatch::real(&data, &first),
            (data.num_classes, progress.step),
            options.burn_step,
            &device,
        )?;
        if let Some(choices) = choices {
            tracing::info!("--precision auto: {}", choices.summary());
        }
        let length = RunLength::of(config, batches_per_epoch);
        let bar = progress_bar(options.progress_bar, &length, progress.step);
        let status = StatusFile::starting(config, run, &progress, &length, options.resume);
        let done = length.fraction(progress.step, progress.wall_s);
        let snapshots = Snapshots::new(config, data.num_classes, done);
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
            _lock: lock,
            state,
            engine,
            clock: SessionClock::new(started, progress.wall_s),
            steps_at_start: progress.step,
            last_checkpoint: progress.step,
            progress,
            metrics,
            snapshots,
            quality,
            window: Window::new(started),
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
        let even = config.objective.even_classes;
        let order = epoch_order(&self.data.labels, config.seed, self.progress.epoch, even);
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
            self.clock.stepped(began.elapsed().as_secs_f64());
            self.bar.set_position(self.progress.step);
            if self.status.due() {
                let rate = self.window.samples_per_s();
                self.bar
                    .set_message(bar_message(&stats, rate, self.time_left()));
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
        let pace = self.clock.pace(self.quality.final_report_s());
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
        p.wall_s = self.clock.wall_s();
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
        let (p, last) = (&self.progress, epoch == config.epochs);
        let snapshot = self
            .snapshots
            .due(self.length.fraction(p.step, p.wall_s), last);
        if snapshot {
            self.snapshots.write_grid(run, &sampled, epoch)?;
        }
        self.checkpoint()?;
        if snapshot {
            write_plots(run)?;
        }
        let spent = began.elapsed().as_secs_f64() - self.quality.take_load_s();
        self.clock.epoch_ended(spent);
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
            write_plots(self.run)?;
        }
        let trained_now = p.step > self.steps_at_start;
        if matches!(ending, Ending::Finished | Ending::TimeBudget)
            && config.eval_every > 0
            && trained_now
        {
            self.status.status.detail = Some("the final evaluation".into());
            self.status.save();
            let sampled = sampling_generator(&self.state, config)?;
            match self.quality.write_final_report(&sampled, self.run, stop) {
                Err(e) if e.is::<Interrupted>() => ending = Ending::EvaluationInterrupted,
                ended => ended?,
            }
        }
        self.bar.finish_and_clear();
        let samples_per_s = self.clock.samples_per_s(config.batch_size);
        self.update_status(samples_per_s);
        let (state, detail) = ending.recorded();
        self.status.end(state, detail.into());
        Ok(Summary {
            ending,
            progress: p,
            samples_per_s,
        })
    }
}
