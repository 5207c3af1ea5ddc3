//! GAN losses on logits, in their numerically stable forms, and what a
//! step measured.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, relu};
use serde::{Deserialize, Serialize};

/// The adversarial loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GanLoss {
    /// Binary cross-entropy on D's logit; G minimises BCE(D(fake), 1) (non-saturating).
    #[default]
    Bce,
    /// Hinge: D minimises relu(1 - D(real)) + relu(1 + D(fake)); G minimises -D(fake).
    Hinge,
}

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// D's loss on the real and fake batches (plus the AC-GAN term when D has the head).
    pub d_loss: f32,
    /// G's loss through the updated D (plus the AC-GAN term when D has the head).
    pub g_loss: f32,
    /// Mean sigmoid(D(real)).
    pub d_real: f32,
    /// Mean sigmoid(D(fake)) before D's update.
    pub d_fake: f32,
    /// D's mean logit on the real batch (LeCam's anchors follow it).
    pub real_logit: f32,
    /// D's mean logit on the generated batch, before D's update.
    pub fake_logit: f32,
    /// Mean sign of D's logits on the real batch (the adaptive augmentation
    /// follows it).
    pub real_sign: f32,
}

impl StepStats {
    /// The first non-finite figure, if any, by name.
    pub fn non_finite(&self) -> Option<(&'static str, f32)> {
        [
            ("d_loss", self.d_loss),
            ("g_loss", self.g_loss),
            ("D(real)", self.d_real),
            ("D(fake)", self.d_fake),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_finite())
    }
}

/// Mean binary cross-entropy of `logits` against a constant `target` in
/// [0, 1]: `max(x, 0) - x t + log(1 + exp(-|x|))`, PyTorch's
/// `BCEWithLogitsLoss`. Returns a one-element tensor.
pub fn bce_with_logits(logits: Tensor<1>, target: f32) -> Tensor<1> {
    let softplus_neg_abs = logits.clone().abs().neg().exp().log1p();
    (logits.clone().clamp_min(0.0) - logits.mul_scalar(target) + softplus_neg_abs).mean()
}

/// D's adversarial loss on its logits for real and fake images. With BCE,
/// `smoothing` lowers the real target to `1 - smoothing` (one-sided).
pub fn discriminator_loss(
    loss: GanLoss,
    real: Tensor<1>,
    fake: Tensor<1>,
    smoothing: f32,
) -> Tensor<1> {
    match loss {
        GanLoss::Bce => bce_with_logits(real, 1.0 - smoothing) + bce_with_logits(fake, 0.0),
        GanLoss::Hinge => {
            relu(real.neg().add_scalar(1.0)).mean() + relu(fake.add_scalar(1.0)).mean()
        }
    }
}

/// G's adversarial loss on D's logits for its images.
pub fn generator_loss(loss: GanLoss, fake: Tensor<1>) -> Tensor<1> {
    match loss {
        GanLoss::Bce => bce_with_logits(fake, 1.0),
        GanLoss::Hinge => fake.mean().neg(),
    }
}

/// LeCam's regulariser (Tseng et al. 2021) times `weight`: D's logits on
/// real images held near its moving mean on generated ones, and the reverse,
/// `mean((real - anchor_fake)^2) + mean((fake - anchor_real)^2)`, where
/// `anchors` = [real, fake] moving means. Returns a one-element tensor.
pub fn lecam_loss(real: Tensor<1>, fake: Tensor<1>, anchors: [f32; 2], weight: f32) -> Tensor<1> {
    let [anchor_real, anchor_fake] = anchors;
    let on_real = real.sub_scalar(anchor_fake).powi_scalar(2).mean();
    let on_fake = fake.sub_scalar(anchor_real).powi_scalar(2).mean();
    (on_real + on_fake).mul_scalar(weight)
}

/// Keeps the mode-seeking ratio away from zero (MSGAN's constant).
pub const MODE_SEEKING_EPS: f32 = 1e-5;

/// The mode-seeking regulariser of Mao et al. (2019), MSGAN, for images
/// `fake` [B, ...] made from noise `z` [B, latent] where row `i` and row
/// `i + B/2` share a class (B/2 rounded down; an odd batch's last row is
/// left out): `1 / (mean|x_a - x_b| / mean|z_a - z_b| + eps)`.
/// It falls as pairs of images under one class differ more than their
/// noise does, so G is pushed away from writing one digit for many noises.
/// Returns a one-element tensor.
pub fn mode_seeking_loss<const D: usize>(fake: Tensor<D>, z: Tensor<2>) -> Tensor<1> {
    let half = fake.dims()[0] / 2;
    let images = fake.flatten::<2>(1, D - 1);
    let image_gap = (images.clone().narrow(0, 0, half) - images.narrow(0, half, half))
        .abs()
        .mean();
    let noise_gap = (z.clone().narrow(0, 0, half) - z.narrow(0, half, half))
        .abs()
        .mean();
    (image_gap / noise_gap).add_scalar(MODE_SEEKING_EPS).recip()
}

/// Mean cross-entropy of class `logits` [B, C] against `targets` [B, C]
/// (one-hot rows). Returns a one-element tensor.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let [batch, _] = logits.dims();
    (log_softmax(logits, 1) * targets)
        .sum()
        .neg()
        .div_scalar(batch as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::inference_device;
    use burn::tensor::TensorData;

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_into_vec::<f32>().unwrap()[0]
    }

    #[test]
    fn bce_matches_the_definition_and_stays_finite() {
        let device = inference_device();
        let x = [-3.0f32, -0.5, 0.0, 2.0];
        let logits = Tensor::<1>::from_data(TensorData::new(x.to_vec(), [4]), &device);
        for target in [0.0f32, 1.0, 0.9] {
            let expected: f32 = x
                .iter()
                .map(|&v| {
                    let p = 1.0 / (1.0 + (-v).exp());
                    -(target * p.ln() + (1.0 - target) * (1.0 - p).ln())
                })
                .sum::<f32>()
                / 4.0;
            let got = scalar(bce_with_logits(logits.clone(), target));
            assert!(
                (got - expected).abs() < 1e-5,
                "target {target}: {got} vs {expected}"
            );
        }
        let huge = Tensor::<1>::from_data(TensorData::new(vec![1e4f32, -1e4], [2]), &device);
        let loss = scalar(bce_with_logits(huge, 1.0));
        assert!((loss - 5e3).abs() < 1.0, "{loss}");
    }

    #[test]
    fn hinge_losses_match_their_definitions() {
        let device = inference_device();
        let t =
            |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
        // relu(1 - r): 0, 0.5, 3 -> mean 3.5/3; relu(1 + f): 0, 1.5, 0 -> mean 0.5.
        let d = discriminator_loss(
            GanLoss::Hinge,
            t(vec![2.0, 0.5, -2.0]),
            t(vec![-3.0, 0.5, -1.0]),
            0.0,
        );
        assert!((scalar(d) - (3.5 / 3.0 + 0.5)).abs() < 1e-6);
        let g = generator_loss(GanLoss::Hinge, t(vec![1.0, -3.0]));
        assert!((scalar(g) - 1.0).abs() < 1e-6);
        // BCE with smoothing is BCE against 1 - s for the real half.
        let (r, f) = (t(vec![0.3, -1.2]), t(vec![0.7]));
        let smoothed = discriminator_loss(GanLoss::Bce, r.clone(), f.clone(), 0.1);
        let expected = bce_with_logits(r, 0.9) + bce_with_logits(f, 0.0);
        assert!((scalar(smoothed) - scalar(expected)).abs() < 1e-7);
    }

    #[test]
    fn cross_entropy_is_low_for_confident_right_answers() {
        let device = inference_device();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![10.0f32, 0.0, 0.0, 10.0], [2, 2]),
            &device,
        );
        let right = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2]),
            &device,
        );
        let wrong = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 1.0, 1.0, 0.0], [2, 2]),
            &device,
        );
        assert!(scalar(cross_entropy(logits.clone(), right)) < 1e-3);
        assert!((scalar(cross_entropy(logits, wrong)) - 10.0).abs() < 1e-3);
    }
}
