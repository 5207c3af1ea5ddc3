//! The adversarial losses on host logits, with their gradients (the same
//! formulas as [`crate::optim::loss`]).

use crate::optim::loss::MODE_SEEKING_EPS;
use crate::optim::{GanLoss, Objective, StepStats};

fn mean_sigmoid(logits: &[f32]) -> f32 {
    logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).sum::<f32>() / logits.len() as f32
}

/// Mean BCE of `logits` against `target` and its gradient.
pub(super) fn bce(logits: &[f32], target: f32) -> (f32, Vec<f32>) {
    let n = logits.len() as f32;
    let loss = logits
        .iter()
        .map(|&x| x.max(0.0) - x * target + (-x.abs()).exp().ln_1p())
        .sum::<f32>()
        / n;
    let grad = logits
        .iter()
        .map(|&x| (1.0 / (1.0 + (-x).exp()) - target) / n)
        .collect();
    (loss, grad)
}

/// Mean of relu(1 + sign * x) and its gradient (the hinge terms).
pub(super) fn hinge(logits: &[f32], sign: f32) -> (f32, Vec<f32>) {
    let n = logits.len() as f32;
    let loss = logits
        .iter()
        .map(|&x| (1.0 + sign * x).max(0.0))
        .sum::<f32>()
        / n;
    let grad = logits
        .iter()
        .map(|&x| if 1.0 + sign * x > 0.0 { sign / n } else { 0.0 })
        .collect();
    (loss, grad)
}

/// Mean cross-entropy of class `logits` [B, classes] against `targets` [B,
/// classes] (rows of class weights), `-sum(t * log_softmax(x)) / B` as
/// [`crate::optim::loss::cross_entropy`], and its gradient
/// `(softmax(x) * sum(t) - t) / B`.
pub(super) fn cross_entropy(logits: &[f32], targets: &[f32], classes: usize) -> (f32, Vec<f32>) {
    let batch = logits.len() / classes;
    let mut loss = 0.0;
    let mut grad = vec![0.0; logits.len()];
    let rows = logits.chunks(classes).zip(targets.chunks(classes));
    for ((x, t), g) in rows.zip(grad.chunks_mut(classes)) {
        let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let log_sum = max + x.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
        let weight: f32 = t.iter().sum();
        for ((x, t), g) in x.iter().zip(t).zip(g) {
            loss -= t * (x - log_sum);
            *g = ((x - log_sum).exp() * weight - t) / batch as f32;
        }
    }
    (loss / batch as f32, grad)
}

/// D's loss terms, with LeCam's anchors when its term is on.
pub(super) struct Terms<'a> {
    pub objective: &'a Objective,
    /// D's moving mean logits on real and generated images.
    anchors: [f32; 2],
}

impl<'a> Terms<'a> {
    pub fn new(objective: &'a Objective, anchors: [f32; 2]) -> Self {
        Self { objective, anchors }
    }

    /// D's loss term on real images and its gradient.
    pub fn real(&self, logits: &[f32]) -> (f32, Vec<f32>) {
        let o = self.objective;
        let term = match o.loss {
            GanLoss::Bce => bce(logits, 1.0 - o.label_smoothing),
            GanLoss::Hinge => hinge(logits, -1.0),
        };
        self.with_lecam(term, logits, self.anchors[1])
    }

    /// D's loss term on generated images and its gradient.
    pub fn fake(&self, logits: &[f32]) -> (f32, Vec<f32>) {
        let term = match self.objective.loss {
            GanLoss::Bce => bce(logits, 0.0),
            GanLoss::Hinge => hinge(logits, 1.0),
        };
        self.with_lecam(term, logits, self.anchors[0])
    }

    /// `term` plus LeCam's `weight * mean((x - anchor)^2)` when it is on.
    fn with_lecam(&self, term: (f32, Vec<f32>), logits: &[f32], anchor: f32) -> (f32, Vec<f32>) {
        let weight = self.objective.lecam;
        if weight == 0.0 {
            return term;
        }
        let (mut loss, mut grad) = term;
        let n = logits.len() as f32;
        for (&x, g) in logits.iter().zip(&mut grad) {
            loss += weight * (x - anchor) * (x - anchor) / n;
            *g += 2.0 * weight * (x - anchor) / n;
        }
        (loss, grad)
    }
}

/// A D step's figures from its loss and its logits on the real and the
/// generated batch (G's loss left at 0).
pub(super) fn d_figures(d_loss: f32, on_real: &[f32], on_fake: &[f32]) -> StepStats {
    let mean = |x: &[f32]| x.iter().sum::<f32>() / x.len() as f32;
    // The sign as burn's: 0 at 0.
    let signs: Vec<f32> = on_real
        .iter()
        .map(|&x| ((x > 0.0) as i8 - (x < 0.0) as i8) as f32)
        .collect();
    StepStats {
        d_loss,
        g_loss: 0.0,
        d_real: mean_sigmoid(on_real),
        d_fake: mean_sigmoid(on_fake),
        real_logit: mean(on_real),
        fake_logit: mean(on_fake),
        real_sign: mean(&signs),
    }
}

/// G's loss on D's verdict and its gradient.
pub(super) fn generator_loss(loss: GanLoss, logits: &[f32]) -> (f32, Vec<f32>) {
    match loss {
        GanLoss::Bce => bce(logits, 1.0),
        GanLoss::Hinge => {
            let n = logits.len() as f32;
            (
                -logits.iter().sum::<f32>() / n,
                vec![-1.0 / n; logits.len()],
            )
        }
    }
}

/// The mode-seeking term (`optim::loss::mode_seeking_loss`) for `images`
/// [B, pixels] made from `z` [B, latent], row `i` paired with row `i + B/2`,
/// times `weight`; with its gradient with respect to the images.
pub(super) fn mode_seeking(
    images: &[f32],
    z: &[f32],
    batch: usize,
    weight: f32,
) -> (f32, Vec<f32>) {
    fn pairs(x: &[f32], batch: usize) -> (&[f32], &[f32]) {
        // Rows 0..B/2 beside rows B/2..2*(B/2).
        let half = batch / 2 * (x.len() / batch);
        x[..2 * half].split_at(half)
    }
    let mean_gap = |(a, b): (&[f32], &[f32])| {
        a.iter().zip(b).map(|(p, q)| (p - q).abs()).sum::<f32>() / a.len() as f32
    };
    let ((first, second), noise_gap) = (pairs(images, batch), mean_gap(pairs(z, batch)));
    let ratio = mean_gap((first, second)) / noise_gap + MODE_SEEKING_EPS;
    // d/dx of weight / ratio through mean|a - b| / noise_gap.
    let scale = -weight / (ratio * ratio) / noise_gap / first.len() as f32;
    let mut grad = vec![0.0; images.len()];
    let (ga, gb) = grad.split_at_mut(first.len());
    for (((p, q), dp), dq) in first.iter().zip(second).zip(ga).zip(gb) {
        // The sign of p - q, 0 where they are equal (as burn's abs).
        let g = scale * ((p > q) as i32 - (p < q) as i32) as f32;
        *dp = g;
        *dq = -g;
    }
    (weight / ratio, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mode-seeking gradient against central finite differences.
    /// The cross-entropy gradient against central finite differences, and
    /// the loss against its definition on a hand-worked row.
    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let logits: Vec<f32> = (0..12).map(|i| ((i * 5 % 7) as f32 - 3.0) / 2.0).collect();
        let mut targets = vec![0.0; 12];
        targets[1] = 1.0; // row 0: class 1
        targets[4] = 0.25; // row 1: a blend of classes 0 and 2
        targets[6] = 0.75;
        let (_, grad) = cross_entropy(&logits, &targets, 4);
        let h = 1e-2;
        for (i, &g) in grad.iter().enumerate() {
            let at = |d: f32| {
                let mut x = logits.clone();
                x[i] += d;
                cross_entropy(&x, &targets, 4).0
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!((numeric - g).abs() < 1e-3, "{i}: {numeric} vs {g}");
        }
        // Equal logits: each row's loss is ln(classes).
        let (loss, _) = cross_entropy(&[0.5; 8], &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0], 4);
        assert!((loss - 4f32.ln()).abs() < 1e-6, "{loss}");
    }

    #[test]
    fn mode_seeking_gradient_matches_finite_differences() {
        let batch = 4;
        let images: Vec<f32> = (0..batch * 6)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let z: Vec<f32> = (0..batch * 3)
            .map(|i| ((i * 13 % 7) as f32 - 3.0) / 2.0)
            .collect();
        let (_, grad) = mode_seeking(&images, &z, batch, 0.7);
        let h = 1e-3;
        for (i, &g) in grad.iter().enumerate() {
            let at = |d: f32| {
                let mut x = images.clone();
                x[i] += d;
                mode_seeking(&x, &z, batch, 0.7).0
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (numeric - g).abs() < 1e-2 * g.abs().max(1e-2),
                "{i}: {numeric} vs {g}"
            );
        }
        // Identical pairs: the term is at its largest, 1 / eps times the weight.
        let same: Vec<f32> = images[..12].repeat(2);
        assert!((mode_seeking(&same, &z, batch, 0.7).0 - 0.7 / MODE_SEEKING_EPS).abs() < 1.0);
    }
}
