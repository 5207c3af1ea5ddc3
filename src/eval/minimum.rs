//! The smallest sample each figure means something on. Below it a figure is
//! not computed: the report says "n/a" with the reason (eval.json: `null`,
//! the reason under `not_measured`), never a number from too few samples
//! and never NaN.

use super::K;
use super::classifier::FEATURES;

/// Samples for a Frechet distance (of the whole set, or of one class): one
/// more than the evaluator's features, or the covariance is singular.
pub const FRECHET: usize = FEATURES + 1;
/// Why [`FRECHET`].
pub const FRECHET_WHY: &str =
    "with fewer than the evaluator's 128 features plus one, the covariance is singular";

/// Real test images of a class for its reference Gaussian (a class's
/// Frechet distance and diversity): a covariance needs two.
pub const REFERENCE_CLASS: usize = 2;

/// Samples of a class for its accuracy.
pub const CLASS_ACCURACY: usize = 5;
/// Why [`CLASS_ACCURACY`].
pub const CLASS_ACCURACY_WHY: &str = "below that a class's share moves in steps of 25% or more";

/// Samples of a class for its spread (diversity, and the collapse warning).
pub const SPREAD: usize = 10;
/// Why [`SPREAD`].
pub const SPREAD_WHY: &str = "a spread from fewer samples is too noisy to call a class collapsed";

/// Samples of each class for the classification accuracy score.
pub const CAS_PER_CLASS: usize = 10;
/// Why [`CAS_PER_CLASS`].
pub const CAS_WHY: &str =
    "a classifier never shown (or barely shown) a class cannot score it on real digits";

/// The fewest samples any scoring takes: two per class, and more than `K`
/// (precision and recall need k neighbours within each set).
pub fn samples(classes: usize) -> usize {
    (2 * classes).max(K + 1)
}

/// (class, count) of the class with the fewest samples (the first such).
pub fn fewest(counts: &[usize]) -> (usize, usize) {
    counts
        .iter()
        .copied()
        .enumerate()
        .min_by_key(|&(_, n)| n)
        .unwrap_or((0, 0))
}

/// "needs >= N per class (class C has M): WHY".
pub fn per_class_reason(least: usize, (class, count): (usize, usize), why: &str) -> String {
    format!("needs >= {least} per class (class {class} has {count}): {why}")
}

/// Why the classification accuracy score cannot be measured on a set with
/// these per-class `counts`, or `None` when it can.
pub fn cas_unmeasured(counts: &[usize]) -> Option<String> {
    let fewest = fewest(counts);
    (fewest.1 < CAS_PER_CLASS).then(|| per_class_reason(CAS_PER_CLASS, fewest, CAS_WHY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fewest_class_names_the_reason() {
        assert_eq!(fewest(&[4, 2, 2, 9]), (1, 2));
        let reason = cas_unmeasured(&[40, 0, 12]).unwrap();
        assert!(
            reason.starts_with("needs >= 10 per class (class 1 has 0)"),
            "{reason}"
        );
        assert_eq!(cas_unmeasured(&[10, 10]), None);
        assert_eq!(samples(10), 20);
        assert_eq!(samples(1), K + 1);
    }
}
