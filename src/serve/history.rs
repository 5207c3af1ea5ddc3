//! The training history `/api/live` serves, kept small whatever the size of
//! `metrics.csv`: the file is read once and then only the bytes appended
//! since, and the rows kept are thinned (every row while there are few,
//! then every 2nd, 4th, ...), so memory and answers stay bounded on a run
//! of millions of rows.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::train::metrics::{HEADER, MetricsRow};

/// The most loss rows kept (and so sent at once).
pub const MAX_LOSS_ROWS: usize = 2_000;
/// The most evaluated rows kept.
pub const MAX_QUALITY_ROWS: usize = 500;

/// Rows of one kind, thinned: row `i` (counted among its kind) is kept when
/// `i` is a multiple of the stride, which doubles whenever more than `cap`
/// are kept.
#[derive(Debug)]
struct Thinned<T> {
    cap: usize,
    stride: usize,
    seen: usize,
    kept: Vec<(usize, T)>,
    /// The newest row, kept or not: the page always shows where training is.
    last: Option<(usize, T)>,
}

impl<T: Copy + PartialEq> Thinned<T> {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            stride: 1,
            seen: 0,
            kept: Vec::new(),
            last: None,
        }
    }

    /// Adds the row numbered `index` (of all rows) as `value`.
    fn push(&mut self, index: usize, value: T) {
        if self.seen.is_multiple_of(self.stride) {
            self.kept.push((index, value));
            if self.kept.len() > self.cap {
                // Kept rows sit at multiples of the stride: every other one
                // sits at multiples of twice it.
                self.stride *= 2;
                let mut position = 0;
                self.kept.retain(|_| {
                    position += 1;
                    position % 2 == 1
                });
            }
        }
        self.seen += 1;
        self.last = Some((index, value));
    }

    /// The kept rows numbered `since` or later, the newest row last.
    fn since(&self, since: usize) -> Vec<T> {
        let start = self.kept.partition_point(|(i, _)| *i < since);
        let mut rows: Vec<T> = self.kept[start..].iter().map(|(_, v)| *v).collect();
        if let Some((i, v)) = self.last
            && i >= since
            && self.kept.last().is_none_or(|(k, _)| *k != i)
        {
            rows.push(v);
        }
        rows
    }
}

/// What has been read of one `metrics.csv`.
#[derive(Debug)]
pub struct History {
    /// The file read (its inode): a resume writes a new one.
    inode: Option<u64>,
    /// Bytes read so far: the next read starts there.
    offset: u64,
    /// Rows read.
    rows: usize,
    losses: Thinned<MetricsRow>,
    quality: Thinned<MetricsRow>,
}

impl Default for History {
    fn default() -> Self {
        Self {
            inode: None,
            offset: 0,
            rows: 0,
            losses: Thinned::new(MAX_LOSS_ROWS),
            quality: Thinned::new(MAX_QUALITY_ROWS),
        }
    }
}

impl History {
    /// Reads what was appended to `path` since the last call (all of it
    /// when the file is new or was rewritten). A file that cannot be read
    /// leaves an empty history.
    pub fn update(&mut self, path: &Path) {
        let Ok(file) = File::open(path) else {
            *self = Self::default();
            return;
        };
        let Ok(meta) = file.metadata() else { return };
        if self.inode != Some(meta.ino()) || meta.len() < self.offset {
            *self = Self {
                inode: Some(meta.ino()),
                ..Self::default()
            };
        }
        if let Err(e) = self.read_from(file) {
            tracing::warn!("{}: {e}", path.display());
        }
    }

    /// Reads whole lines from the offset on; a line still being written
    /// (no newline yet) is left for the next read.
    fn read_from(&mut self, mut file: File) -> std::io::Result<()> {
        file.seek(SeekFrom::Start(self.offset))?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                return Ok(());
            }
            self.offset += n as u64;
            let text = String::from_utf8_lossy(&line);
            if text.trim() == HEADER {
                continue;
            }
            if let Some(row) = MetricsRow::parse(&text) {
                self.add(row);
            }
        }
    }

    fn add(&mut self, row: MetricsRow) {
        let index = self.rows;
        self.rows += 1;
        self.losses.push(index, row);
        if row.quality.is_some() {
            self.quality.push(index, row);
        }
    }

    /// Rows read in all.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The kept loss rows from row `since` on: `[step, d_loss, g_loss, d_real, d_fake]`.
    pub fn losses_since(&self, since: usize) -> Vec<Value> {
        let rows = self.losses.since(since).into_iter();
        rows.map(|r| json!([r.step, r.d_loss, r.g_loss, r.d_real, r.d_fake]))
            .collect()
    }

    /// Every kept evaluated row: `[step, epoch, accuracy, frechet, precision, recall]`.
    pub fn quality(&self) -> Vec<Value> {
        let rows = self.quality.since(0).into_iter();
        rows.filter_map(|r| {
            let q = r.quality?;
            Some(json!([
                r.step,
                r.epoch,
                q.accuracy,
                q.frechet,
                q.precision,
                q.recall
            ]))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_at_most_the_cap_spread_over_the_whole_run() {
        let mut t = Thinned::new(10);
        for i in 0..1000 {
            t.push(i, i);
        }
        assert!(t.kept.len() <= 10, "{}", t.kept.len());
        assert!(t.kept.len() >= 5, "{}", t.kept.len());
        assert_eq!(t.kept[0].0, 0);
        let rows = t.since(0);
        assert_eq!(rows.last(), Some(&999), "the newest row is always sent");
        // Evenly spaced: one stride between kept rows.
        let gaps: Vec<usize> = t.kept.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(gaps.iter().all(|&g| g == gaps[0]), "{gaps:?}");
        assert!(t.since(1000).is_empty());
        assert_eq!(t.since(999), vec![999]);
    }

    #[test]
    fn reads_only_what_was_appended_and_starts_again_on_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let row = |step: u64| MetricsRow {
            epoch: 1,
            step,
            d_loss: 1.0,
            g_loss: 2.0,
            d_real: 0.5,
            d_fake: 0.4,
            samples_per_s: 100.0,
            wall_s: 1.0,
            quality: None,
        };
        let mut text = format!("{HEADER}\n{}", row(1).to_csv());
        std::fs::write(&path, &text).unwrap();
        let mut h = History::default();
        h.update(&path);
        assert_eq!(h.rows(), 1);
        // A torn line is left until it is whole.
        let second = row(2).to_csv();
        text.push_str(&second[..5]);
        std::fs::write(&path, &text).unwrap();
        h.update(&path);
        assert_eq!(h.rows(), 1);
        text.push_str(&second[5..]);
        std::fs::write(&path, &text).unwrap();
        h.update(&path);
        assert_eq!((h.rows(), h.losses_since(1).len()), (2, 1));
        // A rewritten file (a resume) is read from its start.
        let tmp = dir.path().join("new.csv");
        std::fs::write(&tmp, format!("{HEADER}\n{}", row(7).to_csv())).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        h.update(&path);
        assert_eq!(h.rows(), 1);
        assert_eq!(h.losses_since(0)[0][0], json!(7));
    }
}
