//! The evaluator, from the committed weights, on real MNIST: it classifies
//! the test set at >= 99.2%, scores real digits near the ceiling, and scores
//! each kind of bad generator clearly worse on the figure that should catch it.

use cdcgan::data::{Dataset, DatasetKind, Split};
use cdcgan::eval::Evaluator;

/// The first `n` test digits.
fn first(data: &Dataset, n: usize) -> (Vec<u8>, Vec<u8>) {
    (data.images[..n * 784].to_vec(), data.labels[..n].to_vec())
}

#[test]
fn evaluator_accuracy_and_bad_generators() {
    let evaluator = Evaluator::new(DatasetKind::Mnist, None, None).unwrap();
    let accuracy = evaluator.test_accuracy().unwrap();
    assert!(accuracy >= 0.992, "committed evaluator: {accuracy}");

    let test = Dataset::load(DatasetKind::Mnist, None, Split::Test).unwrap();
    // The test set against itself: distance ~0, precision and recall 1.
    let itself = evaluator.score(&test.images, &test.labels).unwrap();
    assert!(itself.frechet.unwrap() < 1e-2, "{:?}", itself.frechet);
    assert_eq!((itself.precision, itself.recall), (1.0, 1.0));

    // Real training digits (the ceiling): near-perfect and close.
    let n = 2000;
    let ceiling = evaluator.ceiling(&test.labels[..n], 0).unwrap();
    assert!(ceiling.accuracy > 0.99, "{ceiling:?}");
    assert!(
        ceiling.frechet.unwrap() < 1.0 && ceiling.precision > 0.7 && ceiling.recall > 0.7,
        "{ceiling:?}"
    );

    let (images, labels) = first(&test, n);
    // 1. Noise images: wrong class, far away.
    let mut state = 12345u32;
    let noise: Vec<u8> = (0..n * 784)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    let bad = evaluator.score(&noise, &labels).unwrap();
    assert!(
        bad.accuracy < 0.5 && bad.frechet.unwrap() > 20.0 * ceiling.frechet.unwrap().max(0.1),
        "{bad:?}"
    );
    assert!(bad.precision < 0.1, "{bad:?}");

    // 2. Real digits with shuffled labels: realistic but not conditional.
    let shuffled: Vec<u8> = labels.iter().map(|l| (l + 3) % 10).collect();
    let bad = evaluator.score(&images, &shuffled).unwrap();
    assert!(bad.accuracy < 0.05, "{bad:?}");
    assert!(
        bad.mean_class_frechet.unwrap() > 10.0 * ceiling.mean_class_frechet.unwrap(),
        "{bad:?} vs {ceiling:?}"
    );

    // 3. A generator that always draws a 1: precise, but no variety.
    let ones: Vec<u8> = (0..test.len())
        .filter(|&i| test.labels[i] == 1)
        .take(n)
        .flat_map(|i| test.image(i).to_vec())
        .collect();
    let count = ones.len() / 784;
    let balanced: Vec<u8> = (0..count).map(|i| (i * 10 / count) as u8).collect();
    let bad = evaluator.score(&ones, &balanced).unwrap();
    assert!(bad.recall < 0.3 * ceiling.recall, "{bad:?}");
    assert!(bad.accuracy < 0.2, "{bad:?}");

    // 4. Mode collapse: each class is one real digit repeated. The report flags every class.
    let mut collapsed = Vec::with_capacity(n * 784);
    for &label in &labels {
        let exemplar = (0..test.len()).find(|&i| test.labels[i] == label).unwrap();
        collapsed.extend_from_slice(test.image(exemplar));
    }
    let report = evaluator.report(&collapsed, &labels, 0).unwrap();
    assert_eq!(
        report.collapsed,
        (0..10).collect::<Vec<_>>(),
        "{:?}",
        report.diversity
    );
    assert!(report.table().contains("class 3 has collapsed"));
    assert!(report.generated.recall < 0.05, "{:?}", report.generated);
}

/// Fashion-MNIST has its own committed evaluator (the data set comes from
/// Debian's dataset-fashion-mnist package, which .ci/run installs).
#[test]
fn fashion_evaluator_accuracy() {
    let evaluator = Evaluator::new(DatasetKind::FashionMnist, None, None).unwrap();
    let accuracy = evaluator.test_accuracy().unwrap();
    assert!(
        accuracy >= 0.91,
        "committed Fashion-MNIST evaluator: {accuracy}"
    );
    // The MNIST evaluator refuses to score Fashion-MNIST.
    let mnist = cdcgan::eval::default_classifier_path(DatasetKind::Mnist);
    let err = Evaluator::new(DatasetKind::FashionMnist, None, Some(&mnist))
        .err()
        .unwrap();
    assert!(err.to_string().contains("trained on mnist"), "{err}");
}

/// The classification accuracy score: a classifier trained only on a sample
/// set is scored on the real test set. Real digits as the samples score like
/// the real-digit ceiling; the same digits with wrong labels (every 7 called
/// an 8, ...) teach nothing, and the score shows it.
#[test]
fn classification_accuracy_score_rewards_real_digits_and_punishes_wrong_labels() {
    use cdcgan::eval::cas::classification_accuracy_score;
    let train = Dataset::load(DatasetKind::Mnist, None, Split::Train).unwrap();
    let n = 1500;
    let (images, labels) = (&train.images[..n * 784], &train.labels[..n]);
    let good =
        classification_accuracy_score(images, labels, DatasetKind::Mnist, None, 0, None).unwrap();
    assert_eq!((good.samples, good.epochs), (n, 2));
    assert!(good.real > 0.85, "{good:?}");
    assert!((good.generated - good.real).abs() < 0.05, "{good:?}");
    let shifted: Vec<u8> = labels.iter().map(|l| (l + 1) % 10).collect();
    let bad =
        classification_accuracy_score(images, &shifted, DatasetKind::Mnist, None, 0, None).unwrap();
    assert!(bad.generated < 0.2 && bad.real > 0.85, "{bad:?}");
}

/// The ceiling (the classifier trained on real digits) is kept in the cache
/// directory and read back by the next call on the same data; a damaged
/// cache file is trained over, not trusted.
#[test]
fn the_cas_ceiling_is_cached_and_a_damaged_cache_is_retrained() {
    use cdcgan::eval::cas::classification_accuracy_score;
    let train = Dataset::load(DatasetKind::Mnist, None, Split::Train).unwrap();
    let n = 400;
    let (images, labels) = (&train.images[..n * 784], &train.labels[..n]);
    let cache = tempfile::tempdir().unwrap();
    let score = || {
        classification_accuracy_score(
            images,
            labels,
            DatasetKind::Mnist,
            None,
            3,
            Some(cache.path()),
        )
        .unwrap()
    };
    let first = score();
    assert!(!first.real_cached && first.real > 0.5, "{first:?}");
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let second = score();
    assert!(second.real_cached, "{second:?}");
    assert_eq!(second.real, first.real);
    std::fs::write(&files[0], "{\"real\": 7}").unwrap();
    let third = score();
    assert!(!third.real_cached, "{third:?}");
    assert!(
        (third.real - first.real).abs() < 0.05,
        "{third:?} vs {first:?}"
    );
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(kept["real"].as_f64(), Some(third.real));
    // The same digits from the same files, their folder given by name: the same ceiling.
    let named = classification_accuracy_score(
        images,
        labels,
        DatasetKind::Mnist,
        Some(std::path::Path::new("data/mnist")),
        3,
        Some(cache.path()),
    )
    .unwrap();
    assert!(named.real_cached, "{named:?}");
    assert_eq!(named.real, third.real);
}
