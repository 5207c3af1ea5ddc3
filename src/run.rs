//! The run directory: where one training run keeps everything.
//!
//! ```text
//! runs/NAME/
//!   config.json                      every hyper-parameter, data set, seed, version
//!   metrics.csv                      epoch, step, losses, D outputs, samples/s, wall time
//!   loss.png                         the losses plotted from metrics.csv
//!   quality.png                      accuracy, Frechet distance, precision/recall per epoch
//!   eval.json                        the full evaluation after the last epoch
//!   samples/epoch_NNN.png            fixed-noise 10x10 grid, row r = class r
//!   samples/progress.gif             those grids as an animation, epoch written on each
//!   checkpoint/generator.safetensors     G (inference: generate, export, eval)
//!   checkpoint/generator_ema.safetensors the moving average of G (with --ema; sampled from)
//!   checkpoint/discriminator.safetensors D
//!   checkpoint/train_state.safetensors   G, D, both Adam states, progress (resume)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};

/// Paths inside one run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// A fresh `base/<UTC timestamp>` directory name (not created yet).
    pub fn timestamped(base: &Path) -> Self {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace([':', '-'], "")
            .replace('T', "-")
            .trim_end_matches('Z')
            .to_string();
        Self::new(base.join(stamp))
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn loss_plot(&self) -> PathBuf {
        self.root.join("loss.png")
    }
    pub fn quality_plot(&self) -> PathBuf {
        self.root.join("quality.png")
    }
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }
    pub fn epoch_grid(&self, epoch: usize) -> PathBuf {
        self.samples().join(format!("epoch_{epoch:03}.png"))
    }
    pub fn progress_gif(&self) -> PathBuf {
        self.samples().join("progress.gif")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
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
    pub fn discriminator(&self) -> PathBuf {
        self.checkpoint().join("discriminator.safetensors")
    }
    pub fn train_state(&self) -> PathBuf {
        self.checkpoint().join("train_state.safetensors")
    }

    /// Creates the directory tree.
    pub fn create(&self) -> anyhow::Result<()> {
        for dir in [self.root.clone(), self.samples(), self.checkpoint()] {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create directory", dir.display()))?;
        }
        Ok(())
    }

    /// Points `<parent>/latest` at this run (a relative symlink), replacing an older link.
    pub fn mark_latest(&self) -> anyhow::Result<()> {
        let (Some(parent), Some(name)) = (self.root.parent(), self.root.file_name()) else {
            return Ok(());
        };
        if name == "latest" {
            return Ok(());
        }
        let link = parent.join("latest");
        if link.exists() && !link.is_symlink() {
            return Ok(()); // a real directory called `latest`: leave it alone
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
