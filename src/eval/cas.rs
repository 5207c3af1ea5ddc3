//! The classification accuracy score (Ravuri & Vinyals, 2019): the
//! evaluator's classifier architecture trained only on a labelled sample
//! set (generated digits), tested on the real test set, beside the same
//! classifier with the same training on as many real training digits (the
//! ceiling). Missing modes, which accuracy and precision never see, cost
//! accuracy on the real digits that were not covered.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fit::{FitConfig, fit_on};
use crate::data::{Dataset, DatasetKind, Split};

/// Epochs of each classifier training (as measured for the issue: 2).
pub const CAS_EPOCHS: usize = 2;

/// Both accuracies on the real test set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cas {
    /// Images each classifier trained on.
    pub samples: usize,
    /// Epochs of each classifier training ([`CAS_EPOCHS`]).
    pub epochs: usize,
    /// Trained on the sample set.
    pub generated: f64,
    /// Trained on real training digits (the same count).
    pub real: f64,
    /// Whether `real` was read from the ceiling cache instead of trained
    /// again ([`default_ceiling_cache`]).
    #[serde(default)]
    pub real_cached: bool,
    /// Wall time of both trainings (or of one, with a cached ceiling), in seconds.
    pub seconds: f64,
}

/// Why the classification accuracy score cannot be measured on samples
/// with `labels` against the real training split `real_train` (too few
/// samples of a class, or too few real images for its ceiling), or `None`.
pub fn unmeasured(real_train: &Dataset, labels: &[u8]) -> Option<String> {
    let classes = real_train.num_classes;
    let wanted = super::class_counts(labels, classes);
    if let Some(reason) = super::minimum::cas_unmeasured(&wanted) {
        return Some(reason);
    }
    let have = super::class_counts(&real_train.labels, classes);
    let real: usize = wanted.iter().zip(&have).map(|(w, h)| *w.min(h)).sum();
    let batch = FitConfig::default().batch_size;
    let (class, fewest) = super::minimum::fewest(&have);
    (real < batch).then(|| {
        format!(
            "needs >= {batch} real training images for its ceiling (the classifier's batch), as \
             many of each class as the samples; the evaluator's training split has {real} (class \
             {class} has {fewest}): add images to the small classes"
        )
    })
}

/// Where real-digit ceilings are kept between calls: `$XDG_CACHE_HOME/cdcgan`
/// or `~/.cache/cdcgan`. The ceiling depends only on the real digits, the
/// test set, the training's settings, the thread count and this binary, so a
/// second `eval --cas` on the same data trains one classifier, not two.
pub fn default_ceiling_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("cdcgan"))
}

/// The cache file of the ceiling trained on `real`, tested on `test`, with
/// `config`: a hash of all of them, the thread count and this binary's bytes.
fn ceiling_file(dir: &Path, real: &Dataset, test: &Dataset, config: &FitConfig) -> Option<PathBuf> {
    let binary = std::fs::read(std::env::current_exe().ok()?).ok()?;
    let mut h = DefaultHasher::new();
    binary.hash(&mut h);
    for set in [real, test] {
        (
            &set.images,
            &set.labels,
            set.shape.channels,
            set.shape.side,
            set.num_classes,
        )
            .hash(&mut h);
    }
    // The digits themselves are hashed above; where they were read from
    // (`--data` spelled out or the default place) does not change the ceiling.
    let settings = FitConfig {
        data_dir: None,
        ..config.clone()
    };
    format!("{settings:?}").hash(&mut h);
    rayon::current_num_threads().hash(&mut h);
    Some(dir.join(format!("cas-ceiling-{:016x}.json", h.finish())))
}

/// A cached ceiling, if `file` holds one; a damaged file is ignored (and
/// replaced after training).
fn read_ceiling(file: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(file).ok()?;
    match serde_json::from_str::<serde_json::Value>(&text).ok()?["real"].as_f64() {
        Some(real) if (0.0..=1.0).contains(&real) => Some(real),
        _ => {
            tracing::warn!("{}: not a CAS ceiling; training it again", file.display());
            None
        }
    }
}

/// Keeps a trained ceiling in `file` (atomically); a cache that cannot be
/// written costs the next call a training, nothing else.
fn write_ceiling(file: &Path, real: f64) {
    let written = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            let json = serde_json::json!({ "real": real });
            crate::store::write_atomic(file, json.to_string().as_bytes())
        });
    if let Err(e) = written {
        tracing::warn!(
            "could not keep the CAS ceiling in {}: {e:#}",
            file.display()
        );
    }
}

/// Trains on `images`/`labels` and on as many real training digits of each
/// class (drawn with `seed`), each for [`CAS_EPOCHS`], and tests both on the
/// real test set. A set with fewer than [`super::minimum::CAS_PER_CLASS`] of
/// some class is refused (see [`super::minimum::cas_unmeasured`]).
/// The second (the ceiling) is read from `ceiling_cache` when it holds it,
/// and kept there when it is trained.
pub fn classification_accuracy_score(
    images: &[u8],
    labels: &[u8],
    dataset: DatasetKind,
    data_dir: Option<&Path>,
    seed: u64,
    ceiling_cache: Option<&Path>,
) -> anyhow::Result<Cas> {
    let real_train = Dataset::load(dataset, data_dir, Split::Train)?;
    let test = Dataset::load(dataset, data_dir, Split::Test)?;
    let splits = (&real_train, &test);
    classification_accuracy_score_on(images, labels, splits, dataset, seed, ceiling_cache)
}

/// [`classification_accuracy_score`] against given (real training, test)
/// splits: an image folder's, as its evaluator split it.
pub fn classification_accuracy_score_on(
    images: &[u8],
    labels: &[u8],
    (real_train, test): (&Dataset, &Dataset),
    dataset: DatasetKind,
    seed: u64,
    ceiling_cache: Option<&Path>,
) -> anyhow::Result<Cas> {
    let started = std::time::Instant::now();
    let generated = Dataset {
        images: images.to_vec(),
        labels: labels.to_vec(),
        shape: test.shape,
        num_classes: test.num_classes,
    };
    if let Some(reason) =
        super::minimum::cas_unmeasured(&super::class_counts(labels, test.num_classes))
    {
        anyhow::bail!("the classification accuracy score {reason}");
    }
    let real = super::real_digits(real_train, labels, seed);
    let config = FitConfig {
        dataset,
        epochs: CAS_EPOCHS,
        seed,
        test_each_epoch: false,
        ..FitConfig::default()
    };
    let log = |what: &'static str| {
        move |_, acc: f64| tracing::info!("CAS, trained on {what}: real test accuracy {acc:.4}")
    };
    let (_, on_generated) = fit_on(&generated, test, &config, log("the samples"))?;
    let file = ceiling_cache.and_then(|dir| ceiling_file(dir, &real, test, &config));
    let cached = file.as_deref().and_then(read_ceiling);
    let on_real = match cached {
        Some(real) => {
            tracing::info!("CAS, trained on real digits: {real:.4} (cached)");
            real
        }
        None => {
            let (_, on_real) = fit_on(&real, test, &config, log("real digits"))?;
            if let Some(file) = &file {
                write_ceiling(file, on_real);
            }
            on_real
        }
    };
    Ok(Cas {
        samples: labels.len(),
        epochs: CAS_EPOCHS,
        generated: on_generated,
        real: on_real,
        real_cached: cached.is_some(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
