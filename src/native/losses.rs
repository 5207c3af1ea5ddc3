//! The adversarial losses on host logits, with their gradients (the same
//! formulas as [`crate::optim::loss`]).

use crate::optim::{GanLoss, StepLoss};

pub(super) fn mean_sigmoid(logits: &[f32]) -> f32 {
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

/// D's loss term on real images.
pub(super) fn loss_real(recipe: &StepLoss, logits: &[f32]) -> (f32, Vec<f32>) {
    match recipe.loss {
        GanLoss::Bce => bce(logits, 1.0 - recipe.label_smoothing),
        GanLoss::Hinge => hinge(logits, -1.0),
    }
}

/// D's loss term on generated images.
pub(super) fn loss_fake(recipe: &StepLoss, logits: &[f32]) -> (f32, Vec<f32>) {
    match recipe.loss {
        GanLoss::Bce => bce(logits, 0.0),
        GanLoss::Hinge => hinge(logits, 1.0),
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
