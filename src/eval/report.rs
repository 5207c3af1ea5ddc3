//! What `cdcgan eval` reports: figures for the generated samples beside the
//! same figures for real digits (the ceiling), as a table or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// Quality figures of one labelled sample set, scored against the real test
/// set. A figure below its minimum sample ([`super::minimum`]) is `None`
/// (`null` in JSON), with the reason in `not_measured`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Number of images scored.
    pub samples: usize,
    /// Number of images of each class, in label order.
    #[serde(default)]
    pub per_class_samples: Vec<usize>,
    /// Share classified as the label they were generated for.
    pub accuracy: f64,
    /// `accuracy` for each class's samples, in label order.
    pub per_class_accuracy: Vec<Option<f64>>,
    /// Frechet distance of all samples to the whole test set.
    pub frechet: Option<f64>,
    /// Frechet distance of each class's samples to that class's test digits.
    pub per_class_frechet: Vec<Option<f64>>,
    /// Mean of `per_class_frechet` (when every class has one).
    pub mean_class_frechet: Option<f64>,
    /// Share of the samples inside the real test set's manifold (are they realistic?).
    pub precision: f64,
    /// Share of the real test digits inside the samples' manifold (is the variety covered?).
    pub recall: f64,
    /// Each class's feature spread, sqrt(trace(covariance)).
    pub per_class_spread: Vec<Option<f64>>,
    /// Why each figure that is `None` was not measured, by its field name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_measured: BTreeMap<String, String>,
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
    pub diversity: Vec<Option<f64>>,
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
    /// Why a report-level figure (`cas`) asked for was not measured.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_measured: BTreeMap<String, String>,
}

/// A figure as the table prints it: `digits` decimals, or "n/a" when it was
/// not measured (or is not finite, which no figure should be).
fn cell(value: Option<f64>, digits: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "n/a".to_string(),
    }
}

/// The table's name of a figure, by its field name in eval.json.
fn figure_name(field: &str) -> &str {
    match field {
        "frechet" => "Frechet distance",
        "mean_class_frechet" => "Frechet, mean per class",
        "per_class_frechet" => "per-class Frechet",
        "per_class_accuracy" => "per-class accuracy",
        "per_class_spread" => "diversity",
        "cas" => "classification acc. score",
        other => other,
    }
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
            (
                "conditional accuracy",
                Some(g.accuracy),
                Some(c.accuracy),
                4,
            ),
            ("Frechet distance", g.frechet, c.frechet, 3),
            (
                "Frechet, mean per class",
                g.mean_class_frechet,
                c.mean_class_frechet,
                3,
            ),
            ("precision (k=3)", Some(g.precision), Some(c.precision), 4),
            ("recall (k=3)", Some(g.recall), Some(c.recall), 4),
        ];
        for (name, a, b, digits) in rows {
            let (a, b) = (cell(a, digits), cell(b, digits));
            let _ = writeln!(s, "{name:<28}{a:>12}{b:>16}");
        }
        if let Some(cas) = &self.cas {
            let (a, b) = (cell(Some(cas.generated), 4), cell(Some(cas.real), 4));
            let _ = writeln!(s, "{:<28}{a:>12}{b:>16}", "classification acc. score");
            let _ = writeln!(
                s,
                "  (a classifier trained only on {} of these samples, or on as many real digits, \
                 {} epochs each, scored on the real test set; {:.0} s)",
                cas.samples, cas.epochs, cas.seconds
            );
        } else if self.not_measured.contains_key("cas") {
            let _ = writeln!(
                s,
                "{:<28}{:>12}{:>16}",
                "classification acc. score", "n/a", "n/a"
            );
        }
        let _ = writeln!(
            s,
            "\n{:<8}{:>10}{:>10}{:>11}{:>11}{:>9}",
            "class", "accuracy", "Frechet", "diversity", "ceil acc", "samples"
        );
        for class in 0..g.per_class_accuracy.len() {
            let _ = writeln!(
                s,
                "{class:<8}{:>10}{:>10}{:>11}{:>11}{:>9}",
                cell(g.per_class_accuracy[class], 4),
                cell(g.per_class_frechet[class], 3),
                cell(self.diversity[class], 3),
                cell(c.per_class_accuracy[class], 4),
                g.per_class_samples.get(class).copied().unwrap_or_default()
            );
        }
        for class in &self.collapsed {
            let _ = writeln!(
                s,
                "warning: class {class} has collapsed: its samples spread {:.2}x as much as real ones",
                self.diversity[*class].unwrap_or_default()
            );
        }
        self.write_not_measured(&mut s);
        let _ = writeln!(s, "\n({:.1} s)", self.seconds);
        s
    }

    /// One line for each figure printed as "n/a": which, and why (the
    /// ceiling's reason only where it differs from the samples').
    fn write_not_measured(&self, s: &mut String) {
        let generated = self.generated.not_measured.iter();
        let ceiling = self
            .ceiling
            .not_measured
            .iter()
            .filter(|(field, reason)| self.generated.not_measured.get(*field) != Some(*reason));
        let mut lines = generated
            .map(|(field, reason)| (field, reason, ""))
            .chain(ceiling.map(|(field, reason)| (field, reason, " (real digits)")))
            .chain(
                self.not_measured
                    .iter()
                    .map(|(field, reason)| (field, reason, "")),
            )
            .peekable();
        if lines.peek().is_some() {
            let _ = writeln!(s);
        }
        for (field, reason, whose) in lines {
            let _ = writeln!(s, "n/a: {}{whose} {reason}", figure_name(field));
        }
    }
}
