//! What a data set is, known once it is open and before it is decoded:
//! what the settings that follow the data (a width by image size, a
//! length by the number of images) are resolved from.

use std::path::Path;

use super::folder::{self, Decoding};
use super::{DatasetKind, Split};
use crate::arch::ImageShape;

/// The shape, classes and size of a training set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFacts {
    /// The images' channels and side, as the run trains on them.
    pub shape: ImageShape,
    /// Training images of each class (after `--limit`), by label.
    pub per_class: Vec<usize>,
}

impl DataFacts {
    /// MNIST's training set (what the recipe table shows).
    pub fn mnist() -> Self {
        Self {
            shape: ImageShape::MNIST,
            per_class: vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        }
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.per_class.len()
    }

    /// Training images in all.
    pub fn images(&self) -> usize {
        self.per_class.iter().sum()
    }

    /// The facts of `dataset`'s training split in `dir` (an image folder's
    /// sub-folders `classes`, decoded as `decoding`), the first `limit`
    /// images when given, read without decoding the images: an IDX set's
    /// labels file, a folder's listing.
    pub fn probe(
        dataset: DatasetKind,
        dir: Option<&Path>,
        classes: &[String],
        decoding: Decoding,
        limit: Option<usize>,
    ) -> anyhow::Result<Self> {
        let limit = limit.unwrap_or(usize::MAX);
        if dataset == DatasetKind::Folder {
            let Some(dir) = dir else {
                anyhow::bail!("an image-folder run needs --data DIR");
            };
            let counts = folder::candidate_counts(dir, classes)?;
            return Ok(Self {
                shape: decoding.shape,
                per_class: first_interleaved(&counts, limit),
            });
        }
        let labels = super::dataset::labels(dataset, dir, Split::Train)?;
        let mut per_class = vec![0; dataset.num_classes()];
        for &label in labels.iter().take(limit) {
            if let Some(n) = per_class.get_mut(label as usize) {
                *n += 1;
            }
        }
        Ok(Self {
            shape: ImageShape::MNIST,
            per_class,
        })
    }
}

/// Of classes holding `counts` images, laid out interleaved (a, b, c, a,
/// b, c, ... as a folder scan lays them out), how many of each the first
/// `limit` hold.
fn first_interleaved(counts: &[usize], limit: usize) -> Vec<usize> {
    let mut taken = vec![0; counts.len()];
    let mut left = limit.min(counts.iter().sum());
    while left > 0 {
        for (t, &n) in taken.iter_mut().zip(counts) {
            if left > 0 && *t < n {
                *t += 1;
                left -= 1;
            }
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_takes_the_classes_in_turn() {
        assert_eq!(first_interleaved(&[5, 2, 9], 100), vec![5, 2, 9]);
        assert_eq!(first_interleaved(&[5, 2, 9], 7), vec![3, 2, 2]);
        assert_eq!(first_interleaved(&[5, 2, 9], 0), vec![0, 0, 0]);
    }

    #[test]
    fn mnist_is_probed_from_its_labels() {
        let facts =
            DataFacts::probe(DatasetKind::Mnist, None, &[], Decoding::default(), None).unwrap();
        assert_eq!(facts, DataFacts::mnist());
        assert_eq!((facts.images(), facts.classes()), (60_000, 10));
        let some = DataFacts::probe(
            DatasetKind::Mnist,
            None,
            &[],
            Decoding::default(),
            Some(400),
        )
        .unwrap();
        assert_eq!(some.images(), 400);
    }
}
