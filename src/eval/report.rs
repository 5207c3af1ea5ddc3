//! What `cdcgan eval` reports: figures for the generated samples beside the
//! same figures for real digits (the ceiling), as a table or as JSON.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// Quality figures of one labelled sample set, scored against the real test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Number of images scored.
    pub samples: usize,
    /// Share classified as the label they were generated for.
    pub accuracy: f64,
    /// `accuracy` for each class's samples, in label order.
    pub per_class_accuracy: Vec<f64>,
    /// Frechet distance of all samples to the whole test set.
    pub frechet: f64,
    /// Frechet distance of each class's samples to that class's test digits.
    pub per_class_frechet: Vec<f64>,
    /// Mean of `per_class_frechet`.
    pub mean_class_frechet: f64,
    /// Share of the samples inside the real test set's manifold (are they realistic?).
    pub precision: f64,
    /// Share of the real test digits inside the samples' manifold (is the variety covered?).
    pub recall: f64,
    /// Each class's feature spread, sqrt(trace(covariance)).
    pub per_class_spread: Vec<f64>,
}

/// A full evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The data set's name (`mnist`, `fashion-mnist`).
    pub dataset: String,
    /// Path of the evaluator classifier's weights file.
    pub evaluator: String,
    /// Nearest neighbours for precision/recall.
    pub k: usize,
    /// The samples' figures.
    pub generated: Figures,
    /// Real training digits scored the same way: what a perfect generator reaches.
    pub ceiling: Figures,
    /// Each class's spread relative to the real test digits of that class.
    pub diversity: Vec<f64>,
    /// Classes whose diversity is below [`COLLAPSE_RATIO`].
    pub collapsed: Vec<usize>,
    /// Wall time of the scoring (samples and ceiling), in seconds.
    pub seconds: f64,
    /// The classification accuracy score, when asked for (`eval --cas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cas: Option<super::cas::Cas>,
    /// The noise's standard deviation, when the samples were drawn with
    /// other noise than G's training noise (`eval --noise-scale`, or the
    /// run's `train --sample-noise-scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_scale: Option<f32>,
}

/// A class whose samples spread less than this share of the real class's has collapsed.
pub const COLLAPSE_RATIO: f64 = 0.5;

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let (g, c) = (&self.generated, &self.ceiling);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "evaluator {} on {}; {} generated vs {} real train digits, both against the test set\n",
            self.evaluator, self.dataset, g.samples, c.samples
        );
        if let Some(scale) = self.noise_scale {
            let _ = writeln!(s, "samples drawn with noise scale {scale}\n");
        }
        let _ = writeln!(
            s,
            "{:<28}{:>12}{:>16}",
            "figure", "generated", "real (ceiling)"
        );
        let rows = [
            ("conditional accuracy", g.accuracy, c.accuracy, 4),
            ("Frechet distance", g.frechet, c.frechet, 3),
            (
                "Frechet, mean per class",
                g.mean_class_frechet,
                c.mean_class_frechet,
                3,
            ),
            ("precision (k=3)", g.precision, c.precision, 4),
            ("recall (k=3)", g.recall, c.recall, 4),
        ];
        for (name, a, b, digits) in rows {
            let _ = writeln!(s, "{name:<28}{a:>12.digits$}{b:>16.digits$}");
        }
        if let Some(cas) = &self.cas {
            let (a, b) = (cas.generated, cas.real);
            let _ = writeln!(s, "{:<28}{a:>12.4}{b:>16.4}", "classification acc. score");
            let _ = writeln!(
                s,
                "  (a classifier trained only on {} of these samples, or on as many real digits, \
                 {} epochs each, scored on the real test set; {:.0} s)",
                cas.samples, cas.epochs, cas.seconds
            );
        }
        let _ = writeln!(
            s,
            "\n{:<8}{:>10}{:>10}{:>11}{:>11}",
            "class", "accuracy", "Frechet", "diversity", "ceil acc"
        );
        for class in 0..g.per_class_accuracy.len() {
            let _ = writeln!(
                s,
                "{class:<8}{:>10.4}{:>10.3}{:>11.3}{:>11.4}",
                g.per_class_accuracy[class],
                g.per_class_frechet[class],
                self.diversity[class],
                c.per_class_accuracy[class]
            );
        }
        for class in &self.collapsed {
            let _ = writeln!(
                s,
                "warning: class {class} has collapsed: its samples spread {:.2}x as much as real ones",
                self.diversity[*class]
            );
        }
        let _ = writeln!(s, "\n({:.1} s)", self.seconds);
        s
    }
}
