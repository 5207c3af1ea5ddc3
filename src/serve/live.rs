//! Following a run while it trains: the generator is reloaded when a new
//! checkpoint lands (checkpoints are replaced atomically, so a reader sees
//! the old file or the new one), and `/api/live` tells the page where
//! training stands, from the files the trainer writes: `status.json`,
//! `metrics.csv` and the epoch grids.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::ApiError;
use super::history::History;
use crate::run::RunDir;
use crate::sample::Sampler;
use crate::train::status::{State, Status, human_duration, unix_now};

/// How often the run's files are looked at for a new checkpoint.
pub const POLL: Duration = Duration::from_millis(500);

/// What identifies one version of the generator file: a new checkpoint is a
/// new file (renamed over the old), so its inode and time change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    path: PathBuf,
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    fn of(path: PathBuf) -> Option<Self> {
        let meta = std::fs::metadata(&path).ok()?;
        Some(Self {
            inode: meta.ino(),
            modified: meta.modified().ok(),
            len: meta.len(),
            path,
        })
    }
}

/// The run's newest generator, reloaded as checkpoints land.
pub struct Current {
    run: RunDir,
    sampler: RwLock<Option<Arc<Sampler>>>,
    /// Generators loaded so far: the page redraws when it moves.
    loads: AtomicU64,
    /// The file version loaded (or that failed to load, so it is not retried).
    seen: Mutex<Option<Stamp>>,
    /// metrics.csv as read so far.
    history: Mutex<History>,
}

impl Current {
    /// Follows `run`, with its generator loaded when it has one.
    pub fn new(run: RunDir) -> anyhow::Result<Self> {
        let current = Self {
            run,
            sampler: RwLock::new(None),
            loads: AtomicU64::new(0),
            seen: Mutex::new(None),
            history: Mutex::new(History::default()),
        };
        if let Some(stamp) = current.changed() {
            let sampler = Sampler::load(&stamp.path)?;
            current.replace(stamp, sampler);
        }
        Ok(current)
    }

    /// The generator answering now, or 503 before the first checkpoint.
    pub fn sampler(&self) -> Result<Arc<Sampler>, ApiError> {
        let sampler = self.sampler.read().unwrap_or_else(|e| e.into_inner());
        sampler.clone().ok_or_else(|| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "no generator yet: the run has not written its first checkpoint; \
                      the page draws as soon as it has"
                .into(),
        })
    }

    /// Whether any generator is loaded.
    pub fn is_loaded(&self) -> bool {
        self.sampler.read().is_ok_and(|s| s.is_some())
    }

    /// The generator file's version when it differs from the one seen last.
    fn changed(&self) -> Option<Stamp> {
        let stamp = Stamp::of(self.run.sampling_generator())?;
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        (seen.as_ref() != Some(&stamp)).then_some(stamp)
    }

    fn replace(&self, stamp: Stamp, sampler: Sampler) {
        *self.sampler.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(sampler));
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(stamp);
        self.loads.fetch_add(1, Ordering::SeqCst);
    }

    /// Loads the newest checkpoint when it changed. A file that cannot be
    /// read is reported once and the previous generator keeps answering.
    pub fn refresh(&self) {
        let Some(stamp) = self.changed() else {
            return;
        };
        match Sampler::load(&stamp.path) {
            Ok(sampler) => {
                tracing::info!("following the run: loaded {}", stamp.path.display());
                self.replace(stamp, sampler);
            }
            Err(e) => {
                tracing::warn!("{e:#}; the previous generator keeps answering");
                *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(stamp);
            }
        }
    }
}

/// Reloads `current` every [`POLL`] until the server stops.
pub async fn follow(current: Arc<Current>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A stat on each tick; a thread of the blocking pool only to load.
        if current.changed().is_some() {
            let current = current.clone();
            let _ = tokio::task::spawn_blocking(move || current.refresh()).await;
        }
    }
}

/// Whether `path` is a regular file, not a link: a run folder copied from
/// elsewhere could point its files at anything (a device, a secret).
pub fn regular_file(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

/// Where training stands, in words: `(state, message)` where `state` is one
/// of training, finished, stopped, failed, not-training, gone.
fn standing(run: &RunDir, status: Option<&Status>) -> (&'static str, String) {
    if !run.root.is_dir() {
        return (
            "gone",
            format!(
                "the run folder {} is gone (removed or renamed while serving); \
                 the generator loaded last keeps answering",
                run.root.display()
            ),
        );
    }
    let trainer = run.trainer();
    let last_checkpoint = |step: Option<u64>| {
        let age = std::fs::metadata(run.generator())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        match (age, step) {
            (None, _) => "not training: no checkpoint was written".to_string(),
            (Some(age), Some(step)) => format!(
                "not training: last checkpoint at step {step}, {} ago",
                human_duration(age.as_secs_f64())
            ),
            (Some(age), None) => format!(
                "not training: last checkpoint {} ago",
                human_duration(age.as_secs_f64())
            ),
        }
    };
    let Some(s) = status else {
        // A run from before status.json: eval.json is written when a run ends as planned.
        return match trainer {
            Some(_) => ("training", "training: starting".into()),
            None if run.root.join("eval.json").is_file() => ("finished", "finished".into()),
            None => ("not-training", last_checkpoint(None)),
        };
    };
    // A trainer that is not the one status.json names: a resume starting up.
    if trainer.is_some_and(|pid| pid != s.pid) {
        return ("training", "training: starting".into());
    }
    match s.state {
        State::Training if trainer.is_some() => match &s.detail {
            Some(doing) => ("training", format!("training: {doing}")),
            None => ("training", "training".into()),
        },
        State::Training => ("not-training", last_checkpoint(Some(s.checkpoint_step))),
        State::Finished => ("finished", format!("finished at step {}", s.step)),
        State::Stopped => ("stopped", format!("stopped at step {}", s.step)),
        State::Failed => (
            "failed",
            format!(
                "failed at step {}: {}",
                s.step,
                s.detail.as_deref().unwrap_or("an error")
            ),
        ),
    }
}

/// The newest epoch grid in samples/ (its epoch number).
fn newest_grid(run: &RunDir) -> Option<usize> {
    std::fs::read_dir(run.samples())
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let n = name
                .to_str()?
                .strip_prefix("epoch_")?
                .strip_suffix(".png")?;
            n.parse().ok()
        })
        .max()
}

/// `/api/live`: where training stands, the metrics rows from `since` on and
/// the quality rows (both thinned on a long run: [`History`]), the
/// real-data ceiling and the newest grid.
pub fn live(run: &RunDir, current: &Current, since: usize) -> Value {
    let status = Some(run.status())
        .filter(|p| regular_file(p))
        .and_then(|p| Status::read(&p));
    let (state, message) = standing(run, status.as_ref());
    let (rows, losses, quality) = {
        let mut history = current.history.lock().unwrap_or_else(|e| e.into_inner());
        match regular_file(&run.metrics()) {
            true => history.update(&run.metrics()),
            false => *history = History::default(),
        }
        (
            history.rows(),
            history.losses_since(since),
            history.quality(),
        )
    };
    let ceiling = status.as_ref().and_then(|s| s.ceiling.as_ref()).map(|c| {
        json!({"accuracy": c.accuracy, "frechet": c.frechet, "precision": c.precision, "recall": c.recall})
    });
    // The time left as of now: the trainer wrote it up to a second ago.
    let eta_s = status
        .as_ref()
        .filter(|_| state == "training")
        .and_then(|s| {
            s.eta_s
                .map(|eta| (eta - (unix_now() - s.updated_unix_s)).max(0.0))
        });
    json!({
        "state": state,
        "message": message,
        "step": status.as_ref().map(|s| s.step),
        "total_steps": status.as_ref().map(|s| s.total_steps),
        "epoch": status.as_ref().map(|s| s.epoch),
        "epochs": status.as_ref().map(|s| s.epochs),
        "samples_per_s": status.as_ref().map(|s| s.samples_per_s),
        "wall_s": status.as_ref().map(|s| s.wall_s),
        "eta_s": eta_s,
        "eta": eta_s.map(human_duration),
        "checkpoint_step": status.as_ref().map(|s| s.checkpoint_step),
        "generator_loaded": current.is_loaded(),
        "generator_loads": current.loads.load(Ordering::SeqCst),
        "rows": rows,
        "losses": losses,
        "quality": quality,
        "ceiling": ceiling,
        "grid_epoch": newest_grid(run),
    })
}
