//! Both networks' parameters in the layouts the kernels multiply
//! ([`crate::cpu::layout`]), read from and written back to their PyTorch
//! names.

use super::{Dims, SMALL};
use crate::cpu::conv::TAPS;
use crate::cpu::layout::{conv_from_host, conv_to_host, transposed_from_host, transposed_to_host};
use crate::model::weights::NamedTensors;

/// Looks up a named tensor's values.
fn values<'a>(tensors: &'a NamedTensors, name: &str) -> &'a [f32] {
    &tensors[name].values
}

/// G's parameters in kernel layout (or their gradients).
#[derive(Debug, Clone)]
pub(super) struct GenLayers {
    /// deconv1: [inputs, 49 * c1], positions major, channels last.
    pub(super) w1: Vec<f32>,
    pub(super) b1: Vec<f32>,
    pub(super) gamma1: Vec<f32>,
    pub(super) beta1: Vec<f32>,
    /// deconv2: [c1, 25 * c2], taps major.
    pub(super) w2: Vec<f32>,
    pub(super) b2: Vec<f32>,
    pub(super) gamma2: Vec<f32>,
    pub(super) beta2: Vec<f32>,
    /// deconv3: [c2, 25].
    pub(super) w3: Vec<f32>,
    pub(super) b3: Vec<f32>,
}

/// D's parameters in kernel layout (or their gradients).
#[derive(Debug, Clone)]
pub(super) struct DiscLayers {
    /// conv1: [25 * (1 + classes), c1], taps major.
    pub(super) w1: Vec<f32>,
    pub(super) b1: Vec<f32>,
    /// conv2: [25 * c1, c2].
    pub(super) w2: Vec<f32>,
    pub(super) b2: Vec<f32>,
    pub(super) gamma2: Vec<f32>,
    pub(super) beta2: Vec<f32>,
    /// conv3: [49 * c2], positions major.
    pub(super) w3: Vec<f32>,
    pub(super) b3: Vec<f32>,
}

impl GenLayers {
    pub(super) fn from_torch(t: &NamedTensors, d: &Dims) -> Self {
        Self {
            w1: transposed_to_host(values(t, "deconv1.weight"), d.inputs(), d.g1, SMALL * SMALL),
            b1: values(t, "deconv1.bias").to_vec(),
            gamma1: values(t, "bn1.weight").to_vec(),
            beta1: values(t, "bn1.bias").to_vec(),
            w2: transposed_to_host(values(t, "deconv2.weight"), d.g1, d.g2, TAPS),
            b2: values(t, "deconv2.bias").to_vec(),
            gamma2: values(t, "bn2.weight").to_vec(),
            beta2: values(t, "bn2.bias").to_vec(),
            w3: transposed_to_host(values(t, "deconv3.weight"), d.g2, 1, TAPS),
            b3: values(t, "deconv3.bias").to_vec(),
        }
    }

    pub(super) fn to_torch(&self, d: &Dims) -> Vec<(&'static str, Vec<f32>)> {
        vec![
            (
                "deconv1.weight",
                transposed_from_host(&self.w1, d.inputs(), d.g1, SMALL * SMALL),
            ),
            ("deconv1.bias", self.b1.clone()),
            ("bn1.weight", self.gamma1.clone()),
            ("bn1.bias", self.beta1.clone()),
            (
                "deconv2.weight",
                transposed_from_host(&self.w2, d.g1, d.g2, TAPS),
            ),
            ("deconv2.bias", self.b2.clone()),
            ("bn2.weight", self.gamma2.clone()),
            ("bn2.bias", self.beta2.clone()),
            (
                "deconv3.weight",
                transposed_from_host(&self.w3, d.g2, 1, TAPS),
            ),
            ("deconv3.bias", self.b3.clone()),
        ]
    }
}

impl DiscLayers {
    pub(super) fn from_torch(t: &NamedTensors, d: &Dims) -> Self {
        Self {
            w1: conv_to_host(values(t, "conv1.weight"), d.d1, d.planes(), TAPS),
            b1: values(t, "conv1.bias").to_vec(),
            w2: conv_to_host(values(t, "conv2.weight"), d.d2, d.d1, TAPS),
            b2: values(t, "conv2.bias").to_vec(),
            gamma2: values(t, "bn2.weight").to_vec(),
            beta2: values(t, "bn2.bias").to_vec(),
            w3: conv_to_host(values(t, "conv3.weight"), 1, d.d2, SMALL * SMALL),
            b3: values(t, "conv3.bias").to_vec(),
        }
    }

    pub(super) fn to_torch(&self, d: &Dims) -> Vec<(&'static str, Vec<f32>)> {
        vec![
            (
                "conv1.weight",
                conv_from_host(&self.w1, d.d1, d.planes(), TAPS),
            ),
            ("conv1.bias", self.b1.clone()),
            ("conv2.weight", conv_from_host(&self.w2, d.d2, d.d1, TAPS)),
            ("conv2.bias", self.b2.clone()),
            ("bn2.weight", self.gamma2.clone()),
            ("bn2.bias", self.beta2.clone()),
            (
                "conv3.weight",
                conv_from_host(&self.w3, 1, d.d2, SMALL * SMALL),
            ),
            ("conv3.bias", self.b3.clone()),
        ]
    }
}
