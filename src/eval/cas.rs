//! The classification accuracy score (Ravuri & Vinyals, 2019): the
//! evaluator's classifier architecture trained only on a labelled sample
//! set (generated digits), tested on the real test set, beside the same
//! classifier with the same training on as many real training digits (the
//! ceiling). Missing modes, which accuracy and precision never see, cost
//! accuracy on the real digits that were not covered.

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
    /// Wall time of both trainings, in seconds.
    pub seconds: f64,
}

/// Trains on `images`/`labels` and on as many real training digits (drawn
/// with `seed`), each for [`CAS_EPOCHS`], and tests both on the real test set.
pub fn classification_accuracy_score(
    images: &[u8],
    labels: &[u8],
    dataset: DatasetKind,
    data_dir: Option<&std::path::Path>,
    seed: u64,
) -> anyhow::Result<Cas> {
    let started = std::time::Instant::now();
    let real_train = Dataset::load(dataset, data_dir, Split::Train)?;
    let test = Dataset::load(dataset, data_dir, Split::Test)?;
    let generated = Dataset {
        images: images.to_vec(),
        labels: labels.to_vec(),
        height: test.height,
        width: test.width,
        num_classes: test.num_classes,
    };
    let real = super::real_digits(&real_train, labels.len(), seed);
    let config = FitConfig {
        dataset,
        data_dir: data_dir.map(Into::into),
        epochs: CAS_EPOCHS,
        seed,
        test_each_epoch: false,
        ..FitConfig::default()
    };
    let log = |what: &'static str| {
        move |_, acc: f64| tracing::info!("CAS, trained on {what}: real test accuracy {acc:.4}")
    };
    let (_, on_generated) = fit_on(&generated, &test, &config, log("the samples"))?;
    let (_, on_real) = fit_on(&real, &test, &config, log("real digits"))?;
    Ok(Cas {
        samples: labels.len(),
        epochs: CAS_EPOCHS,
        generated: on_generated,
        real: on_real,
        seconds: started.elapsed().as_secs_f64(),
    })
}
