//! The run directory: where one training run keeps everything.
//!
//! ```text
//! runs/NAME/
//!   config.json                      every hyper-parameter, data set, seed, version
//!   metrics.csv                      epoch, step, losses, D outputs, samples/s, wall time
//!   loss.png                         the losses plotted from metrics.csv
//!   quality.png                      accuracy, Frechet distance, precision/recall per epoch
//!   eval.json                        the full evaluation after the last epoch
//!   status.json                      where training stands: step, pace, time left, how it ended
//!   samples/epoch_NNN.png            fixed-noise 10x10 grid, row r = class r
//!   samples/progress.gif             those grids as an animation, epoch written on each
//!   checkpoint/generator.safetensors     G (inference: generate, export, eval)
//!   checkpoint/generator_ema.safetensors the moving average of G (with --ema; sampled from)
//!   checkpoint/discriminator.safetensors D
//!   checkpoint/train_state.safetensors   G, D, both Adam states, progress (resume)
//!   data/images-idx3-ubyte, labels-idx1-ubyte, classes.txt
//!                                    an image-folder run's decoded images (read on resume)
//!   .lock                            held (flock) by the process training the run
//! ```
//!
//! A run belongs to one trainer at a time: training claims the directory
//! (created exclusively, or an empty one, or one of its own runs that never
//! reached a checkpoint) and holds an advisory lock on `.lock` while it
//! trains, which the OS releases when the process ends, however it ends.
//! Readers (generate, export, eval, serve) take no lock: every file is
//! replaced atomically, so they read the last complete checkpoint.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};

/// The advisory lock of a run being trained (see the module doc); released
/// when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// An exclusive lock on `file` (`flock` here) without waiting: false when
/// another process holds it.
fn try_lock(file: &File) -> anyhow::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("cannot lock the run directory"),
    }
}

/// The folders a claim creates inside a run.
const OWN_DIRS: [&str; 3] = ["samples", "checkpoint", "data"];

/// Whether `path` is a directory with nothing in it.
fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// Paths inside one run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The run directory itself.
    pub root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (nothing is created or checked).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// A new, empty `base/<UTC timestamp>` directory, created exclusively:
    /// when another run took that name in the same second, `-2`, `-3`, ...
    /// is appended.
    pub fn timestamped(base: &Path) -> anyhow::Result<Self> {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace([':', '-'], "")
            .replace('T', "-")
            .trim_end_matches('Z')
            .to_string();
        std::fs::create_dir_all(base)
            .with_context(|| format!("{}: cannot create directory", base.display()))?;
        for n in 1..1000 {
            let name = match n {
                1 => stamp.clone(),
                n => format!("{stamp}-{n}"),
            };
            let root = base.join(name);
            match std::fs::create_dir(&root) {
                Ok(()) => return Ok(Self::new(root)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => bail!("{}: cannot create directory: {e}", root.display()),
            }
        }
        bail!("{}: no free run name for {stamp}", base.display())
    }

    /// `config.json`: every hyper-parameter, data set, seed and version.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// `metrics.csv`: one row per logging window.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    /// `status.json`: where training stands ([`crate::train::status`]).
    pub fn status(&self) -> PathBuf {
        self.root.join("status.json")
    }
    /// `loss.png`: the losses and D's outputs plotted from metrics.csv.
    pub fn loss_plot(&self) -> PathBuf {
        self.root.join("loss.png")
    }
    /// `quality.png`: the in-training evaluations plotted from metrics.csv.
    pub fn quality_plot(&self) -> PathBuf {
        self.root.join("quality.png")
    }
    /// `samples/`: the epoch grids and the progress GIF.
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }
    /// `samples/epoch_NNN.png`: the fixed-noise class grid after 1-based `epoch`.
    pub fn epoch_grid(&self, epoch: usize) -> PathBuf {
        self.samples().join(format!("epoch_{epoch:03}.png"))
    }
    /// `samples/progress.gif`: the epoch grids as an animation.
    pub fn progress_gif(&self) -> PathBuf {
        self.samples().join("progress.gif")
    }
    /// `checkpoint/`: the weights and the training state.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    /// G's weights (inference: generate, export, eval).
    pub fn generator(&self) -> PathBuf {
        self.checkpoint().join("generator.safetensors")
    }
    /// The moving average of G (runs trained with `--ema`).
    pub fn generator_ema(&self) -> PathBuf {
        self.checkpoint().join("generator_ema.safetensors")
    }
    /// What generate, export and eval sample from: the average when there is one.
    pub fn sampling_generator(&self) -> PathBuf {
        match self.generator_ema().is_file() {
            true => self.generator_ema(),
            false => self.generator(),
        }
    }
    /// D's weights.
    pub fn discriminator(&self) -> PathBuf {
        self.checkpoint().join("discriminator.safetensors")
    }
    /// G, D, both Adam states and the progress, for resuming.
    pub fn train_state(&self) -> PathBuf {
        self.checkpoint().join("train_state.safetensors")
    }

    /// The decoded images of an image-folder run (IDX), so a resume does
    /// not decode the folder again.
    pub fn cached_images(&self) -> PathBuf {
        self.root.join("data/images-idx3-ubyte")
    }

    /// The labels beside [`RunDir::cached_images`].
    pub fn cached_labels(&self) -> PathBuf {
        self.root.join("data/labels-idx1-ubyte")
    }

    /// The file a trainer holds its lock on.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// Claims this directory for a new run and locks it. It may be missing,
    /// empty, or a cdcgan run without a checkpoint (one that stopped before
    /// its first: it starts anew); anything else is refused untouched.
    pub fn claim(&self) -> anyhow::Result<RunLock> {
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create directory", parent.display()))?;
        }
        match std::fs::create_dir(&self.root) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.ensure_claimable()?,
            Err(e) => bail!("{}: cannot create directory: {e}", self.root.display()),
        }
        let lock = self.lock()?;
        // Checked again under the lock: another trainer may have checkpointed meanwhile.
        self.ensure_claimable()?;
        self.create()?;
        Ok(lock)
    }

    /// Refuses a directory that holds anything but a cdcgan run without a
    /// checkpoint.
    fn ensure_claimable(&self) -> anyhow::Result<()> {
        let root = self.root.display();
        ensure!(
            self.root.is_dir(),
            "--out {root}: exists and is not a directory"
        );
        ensure!(
            !self.train_state().exists(),
            "--out {root}: already holds a run; continue it with `cdcgan train --resume {root}` or choose another --out"
        );
        ensure!(
            !self.generator().exists() && !self.discriminator().exists(),
            "--out {root}: holds a trained network without a training state (its first checkpoint \
             was cut short); it cannot be resumed, and is not overwritten: choose another --out"
        );
        let entries = std::fs::read_dir(&self.root)
            .with_context(|| format!("--out {root}: cannot read the directory"))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != ".lock")
            // The empty folders a claim creates (left by a start that failed before config.json).
            .filter(|name| {
                !(is_empty_dir(&self.root.join(name)) && OWN_DIRS.contains(&name.as_str()))
            })
            .collect();
        names.sort();
        if names.is_empty() || self.is_cdcgan_run() {
            return Ok(());
        }
        bail!(
            "--out {root}: holds files that cdcgan did not write ({}); train into a new or empty directory",
            names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        )
    }

    /// Whether config.json is a cdcgan training config (it names the
    /// cdcgan version that wrote it).
    fn is_cdcgan_run(&self) -> bool {
        std::fs::read_to_string(self.config())
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|config| config.get("cdcgan_version").is_some())
    }

    /// Takes the run's lock, or says which process holds it. The lock file
    /// records the holder's process id.
    pub fn lock(&self) -> anyhow::Result<RunLock> {
        let path = self.lock_file();
        // Never through a link: a run folder copied from elsewhere could point
        // .lock at any file, which would then get the trainer's process id.
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        let mut file = match opened {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => bail!(
                "{}: is a symbolic link, not the run's own lock file; remove the link \
                 (rm {}) and run again",
                path.display(),
                path.display()
            ),
            // EROFS, EACCES: say what it means for the run.
            Err(e) if matches!(e.raw_os_error(), Some(30) | Some(13)) => bail!(
                "{}: the run directory is not writable, so it cannot be trained ({e}); its files are intact",
                self.root.display()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("{}: cannot open the run's lock", path.display()));
            }
        };
        if !try_lock(&file)? {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "another process".to_string(),
                pid => format!("process {pid}"),
            };
            bail!(
                "{} is being trained by {holder} (it holds {}); wait for it to finish, or train into another --out",
                self.root.display(),
                path.display()
            );
        }
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("{}: cannot write the run's lock", path.display()))?;
        Ok(RunLock { _file: file })
    }

    /// The process training this run now, if any: the holder of the run's
    /// lock, found without taking it (a reader must never block a trainer).
    /// Linux lists held `flock`s in /proc/locks by process and inode; where
    /// that cannot be read, the process named in `.lock` is taken to hold it
    /// while it lives.
    pub fn trainer(&self) -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        let path = self.lock_file();
        let meta = std::fs::symlink_metadata(&path).ok()?;
        // The lock file itself, never through a link; a process id is short.
        if !meta.is_file() {
            return None;
        }
        let mut text = String::new();
        File::open(&path)
            .ok()?
            .take(32)
            .read_to_string(&mut text)
            .ok()?;
        let (inode, named) = (meta.ino(), text.trim().parse::<u32>().ok()?);
        let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
            // SAFETY: signal 0 only asks whether the process exists.
            let alive = unsafe { libc::kill(named as libc::pid_t, 0) } == 0;
            return alive.then_some(named);
        };
        locks.lines().find_map(|line| {
            // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:123456 0 EOF"; waiters have "->".
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, "FLOCK", _, _, pid, device, ..] = fields[..] else {
                return None;
            };
            let held_inode = device.rsplit(':').next()?.parse::<u64>().ok()?;
            let pid = pid.parse::<u32>().ok()?;
            (held_inode == inode && pid == named).then_some(pid)
        })
    }

    /// Creates the directory tree.
    pub fn create(&self) -> anyhow::Result<()> {
        for dir in [self.root.clone(), self.samples(), self.checkpoint()] {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create directory", dir.display()))?;
        }
        Ok(())
    }

    /// Points `<parent>/latest` at this run (a relative symlink). The link
    /// is made in a folder named `runs` (where runs go by default), and
    /// re-pointed only when it points at another cdcgan run (or nothing): a user's own
    /// `latest` (a folder, or a link to anything else) is left alone, and
    /// `--out myrun` makes no `./latest`.
    pub fn mark_latest(&self) -> anyhow::Result<()> {
        let (Some(parent), Some(name)) = (self.root.parent(), self.root.file_name()) else {
            return Ok(());
        };
        if name == "latest" {
            return Ok(());
        }
        let link = parent.join("latest");
        let ours = match std::fs::read_link(&link) {
            Ok(target) => {
                let target = RunDir::new(parent.join(target));
                !target.root.exists() || target.is_cdcgan_run()
            }
            Err(_) if link.symlink_metadata().is_ok() => false, // not a link: leave it alone
            Err(_) => parent.file_name().is_some_and(|n| n == "runs"),
        };
        if !ours {
            return Ok(());
        }
        let tmp = parent.join(format!(".latest.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(name, &tmp)
                .and_then(|_| std::fs::rename(&tmp, &link))
                .with_context(|| format!("{}: cannot update the link", link.display()))?;
        }
        Ok(())
    }

    /// Checks that this is a run directory with a trained generator.
    pub fn ensure_trained(&self) -> anyhow::Result<()> {
        ensure!(
            self.root.is_dir(),
            "--run {}: no such run directory (train one with `cdcgan train --out DIR`)",
            self.root.display()
        );
        ensure!(
            self.generator().is_file(),
            "--run {}: no checkpoint/generator.safetensors yet; train (or resume) until the first checkpoint is written",
            self.root.display()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_started_in_the_same_second_get_their_own_directories() {
        let base = tempfile::tempdir().unwrap();
        let runs: Vec<RunDir> = (0..3)
            .map(|_| RunDir::timestamped(base.path()).unwrap())
            .collect();
        let mut names: Vec<_> = runs.iter().map(|r| r.root.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(runs.iter().all(|r| r.root.is_dir()));
    }

    #[test]
    fn a_held_lock_names_its_process() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        let lock = run.claim().unwrap();
        let held = std::fs::read_to_string(run.lock_file()).unwrap();
        assert_eq!(held.trim(), std::process::id().to_string());
        // A second handle in this process is refused like another process would be.
        let err = run.lock().unwrap_err().to_string();
        assert!(
            err.contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        assert_eq!(run.trainer(), Some(std::process::id()), "held: named");
        drop(lock);
        assert_eq!(run.trainer(), None, "released: nobody trains it");
        run.lock().unwrap();
    }

    #[test]
    fn a_network_without_a_training_state_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        std::fs::create_dir_all(run.checkpoint()).unwrap();
        std::fs::write(run.generator(), b"weights").unwrap();
        let err = run.claim().unwrap_err().to_string();
        assert!(err.contains("without a training state"), "{err}");
        assert_eq!(std::fs::read(run.generator()).unwrap(), b"weights");
        // The empty folders a failed start leaves do not block a new claim.
        let fresh = RunDir::new(dir.path().join("fresh"));
        for own in ["samples", "checkpoint"] {
            std::fs::create_dir_all(fresh.root.join(own)).unwrap();
        }
        fresh.claim().unwrap();
    }
}
