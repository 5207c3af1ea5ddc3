//! `metrics.csv`: one row per logging window.
//!
//! Each row is written with a single `write` call of a whole line, and on
//! resume the file is cut back to the rows at or before the checkpoint's step
//! (dropping any torn last line), so a crash never leaves duplicates.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::optim::StepStats;
use crate::plot::{LossPoint, QualityPoint};

/// The CSV header line of `metrics.csv` (without the newline): the columns of a row.
pub const HEADER: &str =
    "epoch,step,d_loss,g_loss,d_real,d_fake,samples_per_s,wall_s,accuracy,frechet,precision,recall";

/// Sample quality measured at the end of a window (by `cdcgan eval`'s evaluator).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Share of samples the evaluator classifies as their requested label.
    pub accuracy: f32,
    /// Frechet distance to the test set in the evaluator's feature space
    /// (`None` below its minimum sample, an empty CSV field).
    pub frechet: Option<f32>,
    /// Share of samples inside the real test digits' manifold.
    pub precision: f32,
    /// Share of real test digits inside the samples' manifold.
    pub recall: f32,
}

/// Averages over one logging window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricsRow {
    /// 1-based epoch the window ended in.
    pub epoch: usize,
    /// Global iteration count at the end of the window.
    pub step: u64,
    /// D's mean loss.
    pub d_loss: f32,
    /// G's mean loss.
    pub g_loss: f32,
    /// Mean sigmoid(D(real)).
    pub d_real: f32,
    /// Mean sigmoid(D(fake)) in the D step.
    pub d_fake: f32,
    /// Training throughput over the window, samples per second.
    pub samples_per_s: f32,
    /// Training wall time since the run started (across resumes).
    pub wall_s: f64,
    /// Present on rows where the samples were evaluated.
    pub quality: Option<Quality>,
}

impl MetricsRow {
    /// The row as `loss.png` reads it.
    pub fn loss_point(&self) -> LossPoint {
        LossPoint {
            step: self.step as f64,
            d_loss: self.d_loss,
            g_loss: self.g_loss,
            d_real: self.d_real,
            d_fake: self.d_fake,
        }
    }

    /// The row's evaluation, if it has one, as `quality.png` reads it.
    pub fn quality_point(&self) -> Option<QualityPoint> {
        self.quality.map(|q| QualityPoint {
            epoch: self.epoch as f64,
            minutes: self.wall_s / 60.0,
            accuracy: q.accuracy,
            frechet: q.frechet,
            precision: q.precision,
            recall: q.recall,
        })
    }

    /// The row as one CSV line in [`HEADER`]'s column order, newline included.
    pub fn to_csv(&self) -> String {
        let quality = match self.quality {
            Some(q) => format!(
                "{:.4},{},{:.4},{:.4}",
                q.accuracy,
                q.frechet.map_or(String::new(), |f| format!("{f:.4}")),
                q.precision,
                q.recall
            ),
            None => ",,,".to_string(),
        };
        format!(
            "{},{},{:.5},{:.5},{:.4},{:.4},{:.1},{:.1},{quality}\n",
            self.epoch,
            self.step,
            self.d_loss,
            self.g_loss,
            self.d_real,
            self.d_fake,
            self.samples_per_s,
            self.wall_s
        )
    }

    /// Reads a line written by [`MetricsRow::to_csv`]; `None` if it is malformed.
    pub fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.trim().split(',').collect();
        if f.len() != 12 {
            return None;
        }
        let quality = match f[8].is_empty() {
            true => None,
            false => Some(Quality {
                accuracy: f[8].parse().ok()?,
                frechet: match f[9] {
                    "" => None,
                    value => Some(value.parse().ok()?),
                },
                precision: f[10].parse().ok()?,
                recall: f[11].parse().ok()?,
            }),
        };
        Some(Self {
            epoch: f[0].parse().ok()?,
            step: f[1].parse().ok()?,
            d_loss: f[2].parse().ok()?,
            g_loss: f[3].parse().ok()?,
            d_real: f[4].parse().ok()?,
            d_fake: f[5].parse().ok()?,
            samples_per_s: f[6].parse().ok()?,
            wall_s: f[7].parse().ok()?,
            quality,
        })
    }
}

/// Reads the rows of a metrics file. Only its last line may be malformed (a
/// crash can tear the line being appended; it is left out); a malformed line
/// before it is an error naming the line.
pub fn read(path: &Path) -> anyhow::Result<Vec<MetricsRow>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut rows = Vec::with_capacity(lines.len());
    // The header is the first line; a file whose header was cut off starts
    // with a row, which is kept (it was dropped unseen).
    let first_row = match lines.first() {
        Some(line) if line.trim() == HEADER => 1,
        _ => 0,
    };
    for (i, line) in lines.iter().enumerate().skip(first_row) {
        match MetricsRow::parse(line) {
            Some(row) => rows.push(row),
            None if i + 1 == lines.len() => {}
            None => anyhow::bail!(
                "{}: line {} is not a metrics row ({:?}); repair or delete that line, then run again",
                path.display(),
                i + 1,
                line.chars().take(60).collect::<String>()
            ),
        }
    }
    Ok(rows)
}

/// Appends rows to a run's metrics file.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens the log for a run at `step`: rows after `step` (written after the
    /// checkpoint being resumed) and torn lines are dropped first.
    pub fn open(path: &Path, step: u64) -> anyhow::Result<Self> {
        let kept: Vec<MetricsRow> = match path.exists() {
            true => read(path)?.into_iter().filter(|r| r.step <= step).collect(),
            false => vec![],
        };
        let mut text = format!("{HEADER}\n");
        kept.iter().for_each(|r| text.push_str(&r.to_csv()));
        crate::store::write_atomic(path, text.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open for appending", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends `row` as one line, in a single write.
    pub fn append(&mut self, row: &MetricsRow) -> anyhow::Result<()> {
        self.file
            .write_all(row.to_csv().as_bytes())
            .with_context(|| format!("{}: cannot append a row", self.path.display()))
    }
}

/// Running sums over one logging window.
pub(super) struct Window {
    sums: [f64; 4],
    steps: usize,
    samples: usize,
    since: Instant,
}

impl Window {
    pub(super) fn new(since: Instant) -> Self {
        Self {
            sums: [0.0; 4],
            steps: 0,
            samples: 0,
            since,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.steps == 0
    }

    pub(super) fn add(&mut self, s: &StepStats, batch: usize) {
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

    pub(super) fn samples_per_s(&self) -> f64 {
        self.samples as f64 / self.since.elapsed().as_secs_f64().max(1e-9)
    }

    /// The window's averages as a metrics row; starts a new window.
    pub(super) fn take(&mut self, epoch: usize, step: u64, wall_s: f64) -> MetricsRow {
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

    fn row(step: u64) -> MetricsRow {
        MetricsRow {
            epoch: 1,
            step,
            d_loss: 1.25,
            g_loss: 0.75,
            d_real: 0.5,
            d_fake: 0.25,
            samples_per_s: 150.0,
            wall_s: step as f64,
            quality: step.is_multiple_of(100).then_some(Quality {
                accuracy: 0.5,
                frechet: Some(12.25),
                precision: 0.75,
                recall: 0.125,
            }),
        }
    }

    #[test]
    fn resume_cuts_rows_after_the_checkpoint_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let mut log = MetricsLog::open(&path, 0).unwrap();
        for step in [50, 100, 150] {
            log.append(&row(step)).unwrap();
        }
        drop(log);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("1,200,0.3"); // a torn row, as a kill mid-write leaves it
        std::fs::write(&path, text).unwrap();
        let mut log = MetricsLog::open(&path, 100).unwrap();
        log.append(&row(150)).unwrap();
        let steps: Vec<u64> = read(&path).unwrap().iter().map(|r| r.step).collect();
        assert_eq!(steps, vec![50, 100, 150]);
        assert_eq!(MetricsRow::parse(&row(7).to_csv()), Some(row(7)));
        // A Frechet distance not measured (too few samples) is an empty field, read back as such.
        let mut few = row(100);
        few.quality.as_mut().unwrap().frechet = None;
        assert!(
            few.to_csv().contains(",0.5000,,0.7500,"),
            "{}",
            few.to_csv()
        );
        assert_eq!(MetricsRow::parse(&few.to_csv()), Some(few));
    }

    #[test]
    fn a_file_without_its_header_keeps_its_first_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(&path, row(50).to_csv() + &row(100).to_csv()).unwrap();
        let steps: Vec<u64> = read(&path).unwrap().iter().map(|r| r.step).collect();
        assert_eq!(steps, [50, 100]);
        MetricsLog::open(&path, 100).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(HEADER) && text.lines().count() == 3,
            "{text}"
        );
    }

    #[test]
    fn a_malformed_row_before_the_last_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let mut log = MetricsLog::open(&path, 0).unwrap();
        for step in [50, 100] {
            log.append(&row(step)).unwrap();
        }
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.insert(2, "1,75,oops");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = MetricsLog::open(&path, 100).err().unwrap().to_string();
        assert!(err.contains("line 3") && err.contains("1,75,oops"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing rewritten");
    }
}
