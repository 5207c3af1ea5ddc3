//! Evaluation: how good generated digits are, measured by a classifier
//! trained for the purpose (see [`classifier`]).

pub mod classifier;
pub mod fit;

use std::path::{Path, PathBuf};

use crate::data::DatasetKind;

/// Where the committed evaluator for a data set lives.
pub fn default_classifier_path(dataset: DatasetKind) -> PathBuf {
    let relative = PathBuf::from(format!("models/{}-classifier.safetensors", dataset.name()));
    if relative.is_file() {
        return relative;
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(&relative);
    if shipped.is_file() { shipped } else { relative }
}

pub mod cas;
pub mod frechet;
pub mod minimum;
pub mod precision_recall;
pub mod report;

use std::collections::BTreeMap;

use anyhow::{Context, ensure};
use rand::seq::index::sample;

use self::classifier::{Classifier, FEATURES, classify};
use self::fit::argmax;
use self::frechet::{Gaussian, frechet_distance};
use self::precision_recall::{coverage, knn_radii, recall};
use self::report::{COLLAPSE_RATIO, Figures, Report};
use crate::data::folder::Decoding;
use crate::data::{Dataset, Split};
use crate::interrupt::Stop;
use crate::rng::{Purpose, stream};

/// Nearest neighbours defining the manifolds for precision and recall.
pub const K: usize = 3;

/// Features of the reference set (the real test split), computed once.
struct Reference {
    features: Vec<f32>,
    radii: Vec<f32>,
    overall: Gaussian,
    /// Each class's Gaussian; `None` for a class with fewer than
    /// [`minimum::REFERENCE_CLASS`] test images (a small folder's held-out part).
    per_class: Vec<Option<Gaussian>>,
    /// Test images of each class.
    class_counts: Vec<usize>,
}

/// Scores labelled image sets against a data set's test split.
pub struct Evaluator {
    classifier: Classifier,
    classifier_name: String,
    dataset: DatasetKind,
    data_dir: Option<PathBuf>,
    /// An image folder's split, read from its evaluator's header.
    folder: Option<FolderSplit>,
    num_classes: usize,
    reference: Reference,
}

/// How an image folder's evaluator split it: the decoding of its images
/// and the seed its held-out images were drawn with ([`fit::held_out`]).
#[derive(Debug, Clone, Copy)]
struct FolderSplit {
    decoding: Decoding,
    seed: u64,
}

/// One split of the data set: an IDX set's file, or an image folder's part
/// (`folder`: its decoding and held-out seed).
fn load_split(
    dataset: DatasetKind,
    data_dir: Option<&Path>,
    folder: Option<FolderSplit>,
    split: Split,
) -> anyhow::Result<Dataset> {
    let (Some(folder), Some(dir)) = (folder, data_dir) else {
        return Dataset::load(dataset, data_dir, split);
    };
    let scan = crate::data::folder::scan(dir, folder.decoding)?;
    let (train, test) = fit::held_out(&scan.data, folder.seed);
    Ok(match split {
        Split::Train => train,
        Split::Test => test,
    })
}

/// An image folder's evaluator's split (from its header), checked against
/// the folder `dir`'s classes.
fn folder_split(
    meta: &crate::store::Metadata,
    classifier: &Classifier,
    dir: &Path,
    path: &Path,
) -> anyhow::Result<FolderSplit> {
    let field = |key: &str| {
        meta.get(key).with_context(|| {
            format!(
                "{}: no {key} in the header: not a folder's evaluator",
                path.display()
            )
        })
    };
    let classes: Vec<String> = serde_json::from_str(field("classes")?)?;
    let here = crate::data::folder::class_names(dir)?;
    ensure!(
        classes == here,
        "{}: this evaluator knows the classes {classes:?}; --data {} holds {here:?}",
        path.display(),
        dir.display()
    );
    let background = field("background")?
        .parse()
        .map_err(|e: String| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(FolderSplit {
        decoding: Decoding {
            shape: classifier.image(),
            background,
        },
        seed: field("split_seed")?.parse()?,
    })
}

impl Evaluator {
    /// Loads the evaluator classifier (default: the committed one) and the test split.
    pub fn new(
        dataset: DatasetKind,
        data_dir: Option<&Path>,
        classifier: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let folder = dataset == DatasetKind::Folder;
        ensure!(
            !folder || classifier.is_some(),
            "an image folder's samples are scored by an evaluator trained on that folder: \
             `cdcgan classifier train --data DIR --image-size S --out FILE`, then give \
             --classifier FILE"
        );
        let path = classifier
            .map(Path::to_path_buf)
            .unwrap_or_else(|| default_classifier_path(dataset));
        ensure!(
            path.is_file(),
            "{}: no evaluator classifier for {}; train one with `cdcgan classifier train --dataset {}`",
            path.display(),
            dataset.name(),
            dataset.name()
        );
        let (classifier, meta) = Classifier::load(&path)?;
        if let Some(trained_on) = meta.get("dataset") {
            ensure!(
                trained_on == dataset.name(),
                "{}: this evaluator was trained on {trained_on}, not {}",
                path.display(),
                dataset.name()
            );
        }
        let folder = match (folder, data_dir) {
            (true, Some(dir)) => Some(folder_split(&meta, &classifier, dir, &path)?),
            (true, None) => anyhow::bail!("an image folder's evaluation needs --data DIR"),
            (false, _) => None,
        };
        let test = load_split(dataset, data_dir, folder, Split::Test)?;
        ensure!(
            test.len() > K,
            "{}: its test split holds {} images; scoring needs more than k = {K} \
             (precision and recall compare each image with its {K} nearest)",
            path.display(),
            test.len()
        );
        let (_, features) = classify(&classifier, &test.images);
        let per_class = (0..test.num_classes)
            .map(|c| {
                let rows = rows_of_class(&features, &test.labels, c as u8);
                (rows.len() / FEATURES >= minimum::REFERENCE_CLASS)
                    .then(|| Gaussian::fit(&rows, FEATURES))
            })
            .collect();
        let reference = Reference {
            class_counts: class_counts(&test.labels, test.num_classes),
            radii: knn_radii(&features, FEATURES, K),
            overall: Gaussian::fit(&features, FEATURES),
            per_class,
            features,
        };
        Ok(Self {
            classifier,
            classifier_name: path.display().to_string(),
            dataset,
            data_dir: data_dir.map(Path::to_path_buf),
            folder,
            num_classes: test.num_classes,
            reference,
        })
    }

    /// Scores `images` (784 bytes each) that were made for `labels`. A
    /// figure whose minimum sample ([`minimum`]) is not met is `None`, with
    /// the reason in [`Figures::not_measured`].
    pub fn score(&self, images: &[u8], labels: &[u8]) -> anyhow::Result<Figures> {
        self.score_until(images, labels, Stop::NEVER)
    }

    /// [`Evaluator::score`], ending with [`Interrupted`](crate::interrupt::Interrupted)
    /// between blocks of work once `stop` is set.
    pub fn score_until(&self, images: &[u8], labels: &[u8], stop: Stop) -> anyhow::Result<Figures> {
        let n = labels.len();
        self.check_samples(images, labels)?;
        let (logits, features) = self.classify_until(images, stop)?;
        let counts = class_counts(labels, self.num_classes);
        let mut hits = vec![0usize; self.num_classes];
        for (row, &label) in logits.chunks_exact(self.num_classes).zip(labels) {
            hits[label as usize] += (argmax(row) == label as usize) as usize;
        }
        let fewest = minimum::fewest(&counts);
        let mut not_measured = BTreeMap::new();
        for (figure, least, why) in [
            (
                "per_class_accuracy",
                minimum::CLASS_ACCURACY,
                minimum::CLASS_ACCURACY_WHY,
            ),
            ("per_class_frechet", minimum::FRECHET, minimum::FRECHET_WHY),
            ("per_class_spread", minimum::SPREAD, minimum::SPREAD_WHY),
        ] {
            if fewest.1 < least {
                let reason = minimum::per_class_reason(least, fewest, why);
                not_measured.insert(figure.to_string(), reason);
            }
        }
        let per_class_accuracy = (0..self.num_classes)
            .map(|c| {
                (counts[c] >= minimum::CLASS_ACCURACY).then(|| hits[c] as f64 / counts[c] as f64)
            })
            .collect();
        let (per_class_frechet, per_class_spread) = self.per_class(&features, labels, &counts);
        if let Some(reason) = self.reference_unmeasured() {
            not_measured
                .entry("per_class_frechet".to_string())
                .and_modify(|r| *r = format!("{r}; {reason}"))
                .or_insert(reason);
        }
        let mean_class_frechet = per_class_frechet
            .iter()
            .copied()
            .sum::<Option<f64>>()
            .map(|sum| sum / self.num_classes as f64);
        if mean_class_frechet.is_none() {
            not_measured.insert(
                "mean_class_frechet".to_string(),
                format!(
                    "needs every class's Frechet distance ({})",
                    not_measured["per_class_frechet"]
                ),
            );
        }
        let frechet = (n >= minimum::FRECHET).then(|| {
            frechet_distance(&Gaussian::fit(&features, FEATURES), &self.reference.overall)
        });
        if frechet.is_none() {
            not_measured.insert(
                "frechet".to_string(),
                format!(
                    "needs >= {} samples (got {n}): {}",
                    minimum::FRECHET,
                    minimum::FRECHET_WHY
                ),
            );
        }
        stop.check()?;
        let precision = coverage(
            &features,
            &self.reference.features,
            &self.reference.radii,
            FEATURES,
        );
        stop.check()?;
        Ok(Figures {
            samples: n,
            per_class_samples: counts,
            accuracy: hits.iter().sum::<usize>() as f64 / n as f64,
            per_class_accuracy,
            frechet,
            mean_class_frechet,
            per_class_frechet,
            precision,
            recall: recall(&self.reference.features, &features, FEATURES, K),
            per_class_spread,
            not_measured,
        })
    }

    /// Refuses samples that cannot be scored: images and labels that do
    /// not match, too few, or a label out of range.
    fn check_samples(&self, images: &[u8], labels: &[u8]) -> anyhow::Result<()> {
        let n = labels.len();
        let image = self.classifier.image();
        ensure!(
            images.len() == n * image.len(),
            "{} images but {n} labels",
            images.len() / image.len()
        );
        let least = minimum::samples(self.num_classes);
        ensure!(
            n >= least,
            "{n} samples: scoring needs at least {least} (2 per class, and more than \
             k = {K} neighbours for precision and recall)"
        );
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= self.num_classes) {
            anyhow::bail!(
                "label {bad} is out of range for {} classes",
                self.num_classes
            );
        }
        Ok(())
    }

    /// Each class's Frechet distance to its real reference and its spread,
    /// where the class has the samples for them (and a reference).
    fn per_class(
        &self,
        features: &[f32],
        labels: &[u8],
        counts: &[usize],
    ) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
        let (mut per_class_frechet, mut per_class_spread) = (vec![], vec![]);
        for (class, &count) in counts.iter().enumerate() {
            let rows = rows_of_class(features, labels, class as u8);
            let g = (count >= minimum::SPREAD.min(minimum::FRECHET))
                .then(|| Gaussian::fit(&rows, FEATURES));
            per_class_spread.push(
                g.as_ref()
                    .filter(|_| count >= minimum::SPREAD)
                    .map(Gaussian::spread),
            );
            per_class_frechet.push(
                g.as_ref()
                    .filter(|_| count >= minimum::FRECHET)
                    .zip(self.reference.per_class[class].as_ref())
                    .map(|(g, real)| frechet_distance(g, real)),
            );
        }
        (per_class_frechet, per_class_spread)
    }

    /// The same figures for real training digits with `labels`' count of
    /// each class (seeded draw): the ceiling.
    pub fn ceiling(&self, labels: &[u8], seed: u64) -> anyhow::Result<Figures> {
        self.ceiling_until(labels, seed, Stop::NEVER)
    }

    fn ceiling_until(&self, labels: &[u8], seed: u64, stop: Stop) -> anyhow::Result<Figures> {
        let train = self.split(Split::Train)?;
        stop.check()?;
        let real = real_digits(&train, labels, seed);
        self.score_until(&real.images, &real.labels, stop)
    }

    /// Generated figures beside the real-data ceiling, with diversity and collapse warnings.
    pub fn report(&self, images: &[u8], labels: &[u8], seed: u64) -> anyhow::Result<Report> {
        self.report_until(images, labels, seed, Stop::NEVER)
    }

    /// [`Evaluator::report`], ending with [`Interrupted`](crate::interrupt::Interrupted)
    /// between blocks of work once `stop` is set.
    pub fn report_until(
        &self,
        images: &[u8],
        labels: &[u8],
        seed: u64,
        stop: Stop,
    ) -> anyhow::Result<Report> {
        let started = std::time::Instant::now();
        let generated = self
            .score_until(images, labels, stop)
            .context("scoring the generated samples")?;
        let ceiling = self
            .ceiling_until(labels, seed, stop)
            .context("scoring real digits")?;
        let diversity = self.diversity(&generated);
        let collapsed = collapsed_classes(&diversity);
        Ok(Report {
            dataset: self.dataset.name().to_string(),
            evaluator: self.classifier_name.clone(),
            k: K,
            generated,
            ceiling,
            diversity,
            collapsed,
            seconds: started.elapsed().as_secs_f64(),
            cas: None,
            noise_scale: None,
            not_measured: BTreeMap::new(),
        })
    }

    /// Each class's feature spread relative to the real test digits of that
    /// class (`None` where the spread was not measured).
    pub fn diversity(&self, figures: &Figures) -> Vec<Option<f64>> {
        figures
            .per_class_spread
            .iter()
            .zip(&self.reference.per_class)
            .map(|(s, real)| Some((*s)? / real.as_ref()?.spread().max(1e-12)))
            .collect()
    }

    /// The evaluator's (logits, features) of `images`, a block at a time,
    /// checking `stop` between blocks.
    fn classify_until(&self, images: &[u8], stop: Stop) -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
        let (mut logits, mut features) = (Vec::new(), Vec::new());
        for block in images.chunks(classifier::BATCH * self.classifier.image().len()) {
            stop.check()?;
            let (l, f) = classify(&self.classifier, block);
            logits.extend(l);
            features.extend(f);
        }
        Ok((logits, features))
    }

    /// Why some class has no reference Gaussian (too few real test images),
    /// naming the first such class; `None` when every class has one.
    fn reference_unmeasured(&self) -> Option<String> {
        let class = self.reference.per_class.iter().position(Option::is_none)?;
        Some(format!(
            "the evaluator's test split holds {} image(s) of class {class}; a class's \
             reference needs >= {} (give that class more images and train the evaluator again)",
            self.reference.class_counts[class],
            minimum::REFERENCE_CLASS
        ))
    }

    /// `count` labels in the class mix of the real test split, the
    /// reference every figure is measured against, in class order. Samples
    /// drawn this way compare like with like: on an uneven folder an equal
    /// share per class measures the mix as much as the images.
    pub fn class_mix(&self, count: usize) -> Vec<u8> {
        apportion(count, &self.reference.class_counts)
    }

    /// The classifier's accuracy on the real test set.
    pub fn test_accuracy(&self) -> anyhow::Result<f64> {
        let test = self.split(Split::Test)?;
        Ok(fit::accuracy(&self.classifier, &test.images, &test.labels))
    }

    /// The images it scores: channels and side.
    pub fn image(&self) -> crate::arch::ImageShape {
        self.classifier.image()
    }

    /// Its data set's (training, test) splits: a folder's as its evaluator
    /// split it.
    pub fn splits(&self) -> anyhow::Result<(Dataset, Dataset)> {
        Ok((self.split(Split::Train)?, self.split(Split::Test)?))
    }

    /// One split of its data set (a folder's: as its evaluator split it).
    fn split(&self, split: Split) -> anyhow::Result<Dataset> {
        load_split(self.dataset, self.data_dir.as_deref(), self.folder, split)
    }
}

/// `count` labels shared among classes in proportion to `weights` (largest
/// remainders, ties to the lower class), in class order.
pub fn apportion(count: usize, weights: &[usize]) -> Vec<u8> {
    let total = weights.iter().sum::<usize>().max(1);
    let mut shares: Vec<usize> = weights.iter().map(|w| count * w / total).collect();
    let mut by_remainder: Vec<usize> = (0..weights.len()).collect();
    by_remainder.sort_by_key(|&c| std::cmp::Reverse(count * weights[c] % total));
    let left = count - shares.iter().sum::<usize>();
    for &c in by_remainder.iter().take(left) {
        shares[c] += 1;
    }
    let classes = shares.iter().enumerate();
    classes
        .flat_map(|(c, &n)| std::iter::repeat_n(c as u8, n))
        .collect()
}

/// Real training digits with as many of each class as `labels` holds (at
/// most all a class has), drawn with `seed`, in class order: what a
/// generated set with those labels is compared with.
pub fn real_digits(train: &Dataset, labels: &[u8], seed: u64) -> Dataset {
    let wanted = class_counts(labels, train.num_classes);
    let mut by_class = vec![Vec::new(); train.num_classes];
    for (i, &label) in train.labels.iter().enumerate() {
        if let Some(indices) = by_class.get_mut(label as usize) {
            indices.push(i);
        }
    }
    let mut rng = stream(seed, Purpose::Sample, u64::MAX);
    let (mut images, mut real_labels) = (Vec::new(), Vec::new());
    for (class, indices) in by_class.iter().enumerate() {
        let n = wanted[class].min(indices.len());
        for pick in sample(&mut rng, indices.len(), n).iter() {
            images.extend_from_slice(train.image(indices[pick]));
            real_labels.push(class as u8);
        }
    }
    Dataset {
        images,
        labels: real_labels,
        ..*train
    }
}

/// How many of `labels` fall in each of `classes` classes (labels out of range are not counted).
pub fn class_counts(labels: &[u8], classes: usize) -> Vec<usize> {
    let mut counts = vec![0usize; classes];
    for &label in labels {
        if let Some(c) = counts.get_mut(label as usize) {
            *c += 1;
        }
    }
    counts
}

/// Classes whose diversity was measured and is below [`COLLAPSE_RATIO`].
pub fn collapsed_classes(diversity: &[Option<f64>]) -> Vec<usize> {
    (0..diversity.len())
        .filter(|&c| diversity[c].is_some_and(|d| d < COLLAPSE_RATIO))
        .collect()
}

/// The feature rows whose label is `class`.
fn rows_of_class(features: &[f32], labels: &[u8], class: u8) -> Vec<f32> {
    features
        .chunks_exact(FEATURES)
        .zip(labels)
        .filter(|(_, l)| **l == class)
        .flat_map(|(row, _)| row.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_follows_the_weights_and_keeps_the_count() {
        // MNIST's test split: 10,000 labels are its own counts.
        let mnist = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
        assert_eq!(class_counts(&apportion(10_000, &mnist), 10), mnist);
        // The largest remainders take what is left: 10 * [1, 1, 2] / 4 = [2.5, 2.5, 5].
        let labels = apportion(10, &[1, 1, 2]);
        assert_eq!(labels, [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]);
        for count in [0, 1, 7, 199, 10_000] {
            let labels = apportion(count, &[85, 2261, 159, 0, 3]);
            assert_eq!(labels.len(), count);
            assert!(labels.is_sorted(), "in class order");
            assert!(!labels.contains(&3), "a class of weight 0 gets none");
        }
    }
}
