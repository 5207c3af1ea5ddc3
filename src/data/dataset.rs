//! MNIST-style labelled image sets: which files make a set, where they are
//! found, and the in-memory form the trainer and evaluator draw batches from.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};

use super::idx::{IdxError, read_idx_at_most};
use crate::arch::ImageShape;

/// A data set with the MNIST file layout (four IDX files, 28x28 grey images).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Handwritten digits (LeCun et al.); ships in this repository under `data/mnist/`.
    Mnist,
    /// Zalando's garments (Xiao et al.); Debian's `dataset-fashion-mnist` package installs it.
    FashionMnist,
    /// A folder of the user's own images, one sub-folder per class (`--data DIR`).
    Folder,
}

impl DatasetKind {
    /// The set's command-line and file name (`mnist`, `fashion-mnist`), as in `--dataset`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Folder => "folder",
        }
    }

    /// Number of classes, i.e. the width of the one-hot condition (an
    /// image folder's are its sub-folders: see [`super::folder::class_names`]).
    pub fn num_classes(self) -> usize {
        self.class_names().len()
    }

    /// The classes' names, in label order (none for an image folder, whose
    /// classes are its sub-folders).
    pub fn class_names(self) -> Vec<String> {
        let names: [&str; 10] = match self {
            DatasetKind::Folder => return Vec::new(),
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        };
        names.map(String::from).to_vec()
    }

    /// Where the set is looked for when `--data` is not given.
    pub fn default_dirs(self) -> Vec<PathBuf> {
        match self {
            DatasetKind::Mnist => vec![
                PathBuf::from("data/mnist"),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
            ],
            DatasetKind::FashionMnist => vec![
                PathBuf::from("data/fashion-mnist"),
                PathBuf::from("/usr/share/datasets/fashion-mnist"),
            ],
            DatasetKind::Folder => Vec::new(),
        }
    }

    /// How a user gets the files when they are missing.
    fn how_to_get(self) -> &'static str {
        match self {
            DatasetKind::Mnist => {
                "MNIST ships with cdcgan in data/mnist/; run from the repository root or pass --data DIR \
                 with train-images-idx3-ubyte[.gz] and the three other MNIST files"
            }
            DatasetKind::FashionMnist => {
                "install it with `apt-get install dataset-fashion-mnist` (files go to \
                 /usr/share/datasets/fashion-mnist/) or pass --data DIR holding the four IDX files"
            }
            DatasetKind::Folder => {
                "pass --data DIR holding one sub-folder of PNG or JPEG images per class"
            }
        }
    }
}

/// Training or test half of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training files (`train-*-ubyte`; 60,000 images in MNIST).
    Train,
    /// The test files (`t10k-*-ubyte`; 10,000 images in MNIST).
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Labelled images held as bytes (0..=255), each its channel planes
/// ([channels, side, side], row-major).
#[derive(Debug, Clone)]
pub struct Dataset {
    /// All images back to back: [images, channels, side, side].
    pub images: Vec<u8>,
    /// One class label per image, each in 0..num_classes.
    pub labels: Vec<u8>,
    /// The images' channels and side.
    pub shape: ImageShape,
    /// Number of classes the labels range over.
    pub num_classes: usize,
}

impl Dataset {
    /// Number of images (and labels).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Keeps the first `n` samples (for quick runs and tests).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.images.truncate(n * self.shape.len());
        }
    }

    /// Reads `images` ([N, side, side], or [N, channels, side, side])
    /// and `labels` (`[N]`) IDX files and checks that they agree.
    pub fn from_files(images: &Path, labels: &Path, num_classes: usize) -> anyhow::Result<Self> {
        Self::from_files_at_most(images, labels, num_classes, u32::MAX)
    }

    /// [`Dataset::from_files`] refusing files of more than `max` samples
    /// from their headers, before reading them.
    pub fn from_files_at_most(
        images: &Path,
        labels: &Path,
        num_classes: usize,
        max: u32,
    ) -> anyhow::Result<Self> {
        let lab = read_idx_at_most(labels, 1, max)?;
        let img = match read_idx_at_most(images, 3, max) {
            Err(IdxError::WrongRank { found: 4, .. }) => read_idx_at_most(images, 4, max)?,
            read => read?,
        };
        let (channels, height, width) = match img.dims[..] {
            [_, c, h, w] => (c, h, w),
            [_, h, w] => (1, h, w),
            _ => unreachable!("rank 3 or 4"),
        };
        ensure!(
            img.dims[0] == lab.dims[0],
            "{} holds {} images but {} holds {} labels: the files do not belong together",
            images.display(),
            img.dims[0],
            labels.display(),
            lab.dims[0]
        );
        ensure!(
            height > 0 && width > 0,
            "{}: empty image dimensions {:?}",
            images.display(),
            img.dims
        );
        ensure!(
            height == width && (channels == 1 || channels == 3),
            "{}: images are {height}x{width} with {channels} channels: cdcgan takes square \
             images, grey or RGB",
            images.display(),
        );
        if let Some((i, &l)) = lab
            .data
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= num_classes)
        {
            bail!(
                "{}: label {l} at index {i} is out of range: this data set has {num_classes} classes (0..={})",
                labels.display(),
                num_classes - 1
            );
        }
        Ok(Dataset {
            images: img.data,
            labels: lab.data,
            shape: ImageShape {
                channels,
                side: width,
            },
            num_classes,
        })
    }

    /// Loads one split of `kind` from `dir` (or the default places).
    pub fn load(kind: DatasetKind, dir: Option<&Path>, split: Split) -> anyhow::Result<Self> {
        let dir = resolve_dir(kind, dir)?;
        if kind == DatasetKind::Folder {
            ensure!(
                split == Split::Train,
                "{}: an image folder has no test split (nor an evaluator to score against it)",
                dir.display()
            );
            let scan = super::folder::scan(&dir, super::folder::Decoding::default())?;
            tracing::info!("--data {}: {}", dir.display(), scan.report());
            return Ok(scan.data);
        }
        let images = find_file(&dir, &format!("{}-images-idx3-ubyte", split.prefix()), kind)?;
        let labels = find_file(&dir, &format!("{}-labels-idx1-ubyte", split.prefix()), kind)?;
        let data = Self::from_files(&images, &labels, kind.num_classes())
            .with_context(|| format!("loading the {} {} set", kind.name(), split.prefix()))?;
        ensure!(
            data.shape == ImageShape::MNIST,
            "{}: images are {}x{} of {} channels; {} comes as 28x28 grey",
            images.display(),
            data.shape.side,
            data.shape.side,
            data.shape.channels,
            kind.name()
        );
        Ok(data)
    }
}

/// The labels of one split of an IDX data set, read without its images.
pub fn labels(kind: DatasetKind, dir: Option<&Path>, split: Split) -> anyhow::Result<Vec<u8>> {
    let dir = resolve_dir(kind, dir)?;
    let path = find_file(&dir, &format!("{}-labels-idx1-ubyte", split.prefix()), kind)?;
    let labels = super::idx::read_idx(&path, 1)
        .with_context(|| format!("loading the {} {} labels", kind.name(), split.prefix()))?;
    Ok(labels.data)
}

/// The directory holding the data set: `dir` if given, else the first default that exists.
pub fn resolve_dir(kind: DatasetKind, dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = dir {
        ensure!(
            dir.is_dir(),
            "--data {}: no such directory; {}",
            dir.display(),
            kind.how_to_get()
        );
        return Ok(dir.to_path_buf());
    }
    let candidates = kind.default_dirs();
    if let Some(found) = candidates.iter().find(|d| d.is_dir()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "{} not found (looked in {}); {}",
        kind.name(),
        looked.join(", "),
        kind.how_to_get()
    )
}

/// `stem.gz` or `stem` inside `dir`.
fn find_file(dir: &Path, stem: &str, kind: DatasetKind) -> anyhow::Result<PathBuf> {
    for candidate in [dir.join(format!("{stem}.gz")), dir.join(stem)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "{}: neither {stem}.gz nor {stem} is there; {}",
        dir.display(),
        kind.how_to_get()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::write_idx;

    #[test]
    fn loads_real_mnist_test_split() {
        let test = Dataset::load(DatasetKind::Mnist, None, Split::Test).unwrap();
        assert_eq!(test.len(), 10_000);
        assert_eq!(test.shape, ImageShape::MNIST);
        assert_eq!(test.images.len(), 10_000 * 784);
        // MNIST's first test digit is a 7 and every class appears.
        assert_eq!(test.labels[0], 7);
        let mut seen = [0usize; 10];
        test.labels.iter().for_each(|&l| seen[l as usize] += 1);
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn mismatched_counts_and_bad_labels_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("train-images-idx3-ubyte");
        let lab = dir.path().join("train-labels-idx1-ubyte");
        write_idx(&img, &[3, 28, 28], &[0; 3 * 784]).unwrap();
        write_idx(&lab, &[2], &[1, 2]).unwrap();
        let err = format!("{:#}", Dataset::from_files(&img, &lab, 10).unwrap_err());
        assert!(
            err.contains("3 images") && err.contains("2 labels"),
            "{err}"
        );

        write_idx(&lab, &[3], &[1, 12, 2]).unwrap();
        let err = format!("{:#}", Dataset::from_files(&img, &lab, 10).unwrap_err());
        assert!(err.contains("label 12 at index 1"), "{err}");
        assert!(err.contains("train-labels-idx1-ubyte"), "{err}");
    }

    #[test]
    fn missing_dataset_says_where_it_looked_and_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!(
            "{:#}",
            Dataset::load(DatasetKind::FashionMnist, Some(dir.path()), Split::Train).unwrap_err()
        );
        assert!(err.contains("train-images-idx3-ubyte"), "{err}");
        assert!(
            err.contains("apt-get install dataset-fashion-mnist"),
            "{err}"
        );
    }
}
