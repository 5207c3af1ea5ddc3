//! `status.json`: where training stands, for the live page (`cdcgan serve`)
//! and for people. The trainer rewrites it at most once a second while it
//! trains, after each checkpoint, and once when it stops, saying how.
//!
//! A trainer that is killed cannot say so: its file still reads `training`.
//! Readers tell that case apart by the run's lock ([`crate::run::RunDir::trainer`]).

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::checkpoint::Progress;
use super::config::TrainConfig;
use crate::eval::report::Figures;
use crate::optim::StepStats;
use crate::run::RunDir;

/// How often the file is rewritten while training.
const EVERY: Duration = Duration::from_secs(1);

/// How a call to [`crate::train::train`] ended.
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

impl Ending {
    /// What status.json says of a run that ended so.
    pub fn recorded(self) -> (State, &'static str) {
        match self {
            Ending::Interrupted => (State::Stopped, "interrupted"),
            Ending::EvaluationInterrupted => (
                State::Stopped,
                "interrupted in the final evaluation: eval.json was not written",
            ),
            Ending::Finished => (State::Finished, "epochs"),
            Ending::MaxSteps => (State::Finished, "max-steps"),
            Ending::TimeBudget => (State::Finished, "max-minutes"),
        }
    }
}

/// Where a run stands, in [`Status::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// A trainer is at work (or was, until it was killed).
    Training,
    /// The run reached its end: --epochs, --max-steps or --max-minutes.
    Finished,
    /// Ctrl-C or SIGTERM: a checkpoint was written, the run can be resumed.
    Stopped,
    /// An error ended training (divergence, a full disk, ...).
    Failed,
}

/// The length of a run: steps and wall time, whichever ends first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunLength {
    /// --epochs x steps per epoch, or --max-steps when that is sooner.
    pub total_steps: u64,
    /// --max-minutes as seconds.
    pub budget_s: Option<f64>,
    /// Steps in an epoch.
    pub batches_per_epoch: usize,
    /// Whether --max-steps ends the run (it then skips the final evaluation).
    pub by_max_steps: bool,
}

/// This session's pace, for the time left.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pace {
    /// Seconds a step takes (this session's mean); `None` before the first.
    pub step_s: Option<f64>,
    /// What an epoch's end takes, on average: evaluation, grid, checkpoint
    /// (one-off loads left out).
    pub epoch_end_s: f64,
    /// What the final evaluation is expected to take.
    pub final_s: f64,
}

impl RunLength {
    /// The length `config` gives a data set of `batches_per_epoch` batches.
    pub fn of(config: &TrainConfig, batches_per_epoch: usize) -> Self {
        let by_epochs = (config.epochs * batches_per_epoch) as u64;
        let total_steps = config.max_steps.map_or(by_epochs, |m| m.min(by_epochs));
        Self {
            total_steps,
            budget_s: config.max_minutes.map(|m| m * 60.0),
            batches_per_epoch,
            by_max_steps: total_steps < by_epochs,
        }
    }

    /// How much of the run is done at `step` after `wall_s` seconds: the
    /// larger of the step share and the time share.
    pub fn fraction(&self, step: u64, wall_s: f64) -> f64 {
        let by_steps = step as f64 / self.total_steps.max(1) as f64;
        match self.budget_s {
            Some(budget) => by_steps.max(wall_s / budget),
            None => by_steps,
        }
    }

    /// Seconds until the run is done, at `step` after `wall_s` seconds at
    /// `pace`: the steps left and the epoch ends among them, or the time
    /// budget left, whichever is sooner; then the final evaluation, which
    /// a run ended by --max-steps skips. `None` before the pace is known.
    pub fn eta_s(&self, step: u64, wall_s: f64, pace: &Pace) -> Option<f64> {
        let per_epoch = self.batches_per_epoch.max(1) as u64;
        let epoch_ends =
            self.total_steps / per_epoch - (step / per_epoch).min(self.total_steps / per_epoch);
        let steps_left = self.total_steps.saturating_sub(step) as f64;
        let by_steps = steps_left * pace.step_s? + epoch_ends as f64 * pace.epoch_end_s;
        let by_time = self.budget_s.map(|budget| (budget - wall_s).max(0.0));
        Some(match by_time {
            Some(t) if t < by_steps => t + pace.final_s,
            _ if self.by_max_steps => by_steps,
            _ => by_steps + pace.final_s,
        })
    }
}

/// This session's time: the wall clock since the run's start (across
/// resumes), and what the steps and the epoch ends took, for the pace.
pub struct SessionClock {
    started: Instant,
    wall_at_start: f64,
    /// Seconds spent in training steps (logging and checkpoints left out),
    /// and the steps they made.
    stepping: (f64, u64),
    /// Seconds the epoch ends took (one-off loads left out), and how many
    /// there were.
    epoch_ends: (f64, usize),
}

impl SessionClock {
    /// A session started at `started`, `wall_at_start` seconds into the run.
    pub fn new(started: Instant, wall_at_start: f64) -> Self {
        Self {
            started,
            wall_at_start,
            stepping: (0.0, 0),
            epoch_ends: (0.0, 0),
        }
    }

    /// The run's training wall time now.
    pub fn wall_s(&self) -> f64 {
        self.wall_at_start + self.started.elapsed().as_secs_f64()
    }

    /// A training step took `seconds`.
    pub fn stepped(&mut self, seconds: f64) {
        self.stepping = (self.stepping.0 + seconds, self.stepping.1 + 1);
    }

    /// An epoch end took `seconds`.
    pub fn epoch_ended(&mut self, seconds: f64) {
        self.epoch_ends = (self.epoch_ends.0 + seconds, self.epoch_ends.1 + 1);
    }

    /// This session's pace, with a final evaluation of `final_s`.
    pub fn pace(&self, final_s: f64) -> Pace {
        let (seconds, steps) = self.stepping;
        Pace {
            step_s: (steps > 0).then(|| seconds / steps as f64),
            epoch_end_s: self.epoch_ends.0 / self.epoch_ends.1.max(1) as f64,
            final_s,
        }
    }

    /// Samples per second of stepping in batches of `batch`.
    pub fn samples_per_s(&self, batch: usize) -> f64 {
        let (seconds, steps) = self.stepping;
        steps as f64 * batch as f64 / seconds.max(1e-9)
    }
}

/// The progress bar's message: the step's figures, the pace, the time left.
pub fn bar_message(stats: &StepStats, samples_per_s: f64, left_s: Option<f64>) -> String {
    format!(
        "D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2} {:.0} samples/s{}",
        stats.d_loss,
        stats.g_loss,
        stats.d_real,
        stats.d_fake,
        samples_per_s,
        left_s.map_or(String::new(), |s| format!(", {} left", human_duration(s)))
    )
}

/// The contents of `status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Training, finished, stopped or failed.
    pub state: State,
    /// How it ended (`epochs`, `max-steps`, `max-minutes`, `interrupted`) or,
    /// for `failed`, the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Steps done.
    pub step: u64,
    /// Epochs completed.
    pub epoch: usize,
    /// --epochs.
    pub epochs: usize,
    /// Steps the run will take at most ([`RunLength::total_steps`]).
    pub total_steps: u64,
    /// --max-minutes in seconds, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_s: Option<f64>,
    /// Training wall time so far, across resumes.
    pub wall_s: f64,
    /// Throughput over the last logging window.
    pub samples_per_s: f64,
    /// Seconds until the run ends, at this session's pace (`None` before it is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_s: Option<f64>,
    /// Step of the newest checkpoint on disk.
    pub checkpoint_step: u64,
    /// When this was written, seconds since the Unix epoch.
    pub updated_unix_s: f64,
    /// The training process.
    pub pid: u32,
    /// Real training images scored as the in-training evaluation scores
    /// samples (same count and classes): the ceiling of the quality curve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Figures>,
}

impl Status {
    /// Reads `path`; `None` when it is missing or unreadable (a run from
    /// before the file, or one being created).
    pub fn read(path: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Writes `path` atomically, without waiting for the disk: the file is
    /// rewritten every second and a crash may leave the previous one.
    pub fn write(&mut self, path: &Path) -> anyhow::Result<()> {
        self.updated_unix_s = unix_now();
        let json = serde_json::to_vec_pretty(self)?;
        crate::store::replace(path, &json).with_context(|| "writing the run's status")
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Keeps `status.json` up to date without writing it more than once a second.
pub struct StatusFile {
    path: std::path::PathBuf,
    /// What was last written (or will be).
    pub status: Status,
    written: Option<Instant>,
    /// Whether a failed write was logged.
    warned: bool,
}

impl StatusFile {
    /// status.json as training starts (written): a resumed run keeps the
    /// ceiling it measured; the page says it trains from now on.
    pub fn starting(
        config: &TrainConfig,
        run: &RunDir,
        progress: &Progress,
        length: &RunLength,
        resume: bool,
    ) -> Self {
        let ceiling = match resume {
            true => Status::read(&run.status()).and_then(|s| s.ceiling),
            false => None,
        };
        let mut status = Self::new(
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

    /// `status`, to be written to `path`.
    pub fn new(path: std::path::PathBuf, status: Status) -> Self {
        Self {
            path,
            status,
            written: None,
            warned: false,
        }
    }

    /// Writes that the run is in `state` (not training), for `detail`.
    pub fn end(&mut self, state: State, detail: String) {
        self.status.state = state;
        self.status.detail = Some(detail);
        self.status.eta_s = None;
        self.save();
    }

    /// Whether a second has passed since the last write.
    pub fn due(&self) -> bool {
        self.written.is_none_or(|at| at.elapsed() >= EVERY)
    }

    /// Writes the status. A file that cannot be written is named once in
    /// the log and training goes on: it is for display only.
    pub fn save(&mut self) {
        if let Err(e) = self.status.write(&self.path)
            && !std::mem::replace(&mut self.warned, true)
        {
            tracing::warn!("{e:#}; the live page will not follow this run");
        }
        self.written = Some(Instant::now());
    }
}

/// The whole run's bar: steps done of the run's total, resumed runs from
/// where they stand. Hidden with --quiet or when stderr is not a terminal
/// (logs then get one line per epoch).
pub fn progress_bar(enabled: bool, length: &RunLength, step: u64) -> ProgressBar {
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

/// `seconds` as people read a time left: `45 s`, `12 min 05 s`, `2 h 03 min`.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_ends_at_steps_or_time_whichever_is_first() {
        let config = TrainConfig {
            epochs: 2,
            ..TrainConfig::default()
        };
        let mut length = RunLength::of(&config, 100);
        assert_eq!(length.total_steps, 200);
        assert_eq!(length.fraction(0, 0.0), 0.0);
        assert_eq!(length.fraction(100, 5.0), 0.5);
        let pace = Pace {
            step_s: Some(0.1),
            epoch_end_s: 2.0,
            final_s: 3.0,
        };
        // 50 steps of 0.1 s, the end of epoch 2, then the final evaluation.
        assert_eq!(length.eta_s(150, 10.0, &pace), Some(5.0 + 2.0 + 3.0));
        assert_eq!(length.eta_s(100, 10.0, &Pace::default()), None);
        length.budget_s = Some(60.0);
        assert_eq!(length.fraction(5, 45.0), 0.75, "time runs out first");
        assert_eq!(length.eta_s(150, 55.0, &pace), Some(5.0 + 3.0));
        assert_eq!(length.eta_s(150, 70.0, &pace), Some(3.0));
        let capped = RunLength::of(
            &TrainConfig {
                max_steps: Some(150),
                ..config
            },
            100,
        );
        assert_eq!(capped.total_steps, 150);
        assert_eq!(capped.fraction(75, 5.0), 0.5);
        // --max-steps ends mid-epoch 2, with no final evaluation.
        assert_eq!(capped.eta_s(50, 0.0, &pace), Some(10.0 + 2.0));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(-3.0), "0 s");
        assert_eq!(human_duration(44.6), "45 s");
        assert_eq!(human_duration(725.0), "12 min 05 s");
        assert_eq!(human_duration(7380.0), "2 h 03 min");
    }

    #[test]
    fn a_status_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let mut status = Status {
            state: State::Stopped,
            detail: Some("interrupted".into()),
            step: 7,
            epoch: 0,
            epochs: 3,
            total_steps: 60,
            budget_s: None,
            wall_s: 1.5,
            samples_per_s: 100.0,
            eta_s: None,
            checkpoint_step: 7,
            updated_unix_s: 0.0,
            pid: 1,
            ceiling: None,
        };
        status.write(&path).unwrap();
        assert!(status.updated_unix_s > 0.0);
        // JSON's text of a float may read back one unit in the last place off.
        let read = Status::read(&path).unwrap();
        assert!((read.updated_unix_s - status.updated_unix_s).abs() < 1e-3);
        let read = Status {
            updated_unix_s: status.updated_unix_s,
            ..read
        };
        assert_eq!(read, status);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""state": "stopped""#), "{text}");
        assert_eq!(Status::read(&dir.path().join("missing.json")), None);
    }
}
