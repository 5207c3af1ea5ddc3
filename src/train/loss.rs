//! GAN losses on logits, in their numerically stable forms.

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

/// Mean binary cross-entropy of `logits` against a constant `target` in
/// [0, 1]: `max(x, 0) - x t + log(1 + exp(-|x|))`, PyTorch's
/// `BCEWithLogitsLoss`. Returns a one-element tensor.
pub fn bce_with_logits(logits: Tensor<1>, target: f32) -> Tensor<1> {
    let softplus_neg_abs = logits.clone().abs().neg().exp().log1p();
    (logits.clone().clamp_min(0.0) - logits.mul_scalar(target) + softplus_neg_abs).mean()
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
