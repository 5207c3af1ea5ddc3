//! The weights in the layouts the kernels multiply, and back: PyTorch keeps
//! a transposed convolution's weight as [in, out, k, k] and a convolution's
//! as [out, in, k, k]; the channels-last products want [in, taps * out] and
//! [taps * in, out].

use super::{Dims, SMALL};
use crate::cpu::conv::TAPS;
use crate::model::weights::NamedTensors;

/// `src` read as a [d0, d1, d2] array, its axes reordered: axis k of the
/// result is axis `order[k]` of `src`.
fn permute(src: &[f32], dims: [usize; 3], order: [usize; 3]) -> Vec<f32> {
    assert_eq!(src.len(), dims.iter().product::<usize>(), "tensor size");
    let out_dims = order.map(|k| dims[k]);
    let mut out = vec![0f32; src.len()];
    let mut at = 0;
    for a in 0..dims[0] {
        for b in 0..dims[1] {
            for c in 0..dims[2] {
                let idx = [a, b, c];
                let [x, y, z] = order.map(|k| idx[k]);
                out[(x * out_dims[1] + y) * out_dims[2] + z] = src[at];
                at += 1;
            }
        }
    }
    out
}

/// A [cin, cout, k, k] transposed-convolution weight as [cin, k*k*cout].
fn transposed_to_host(w: &[f32], cin: usize, cout: usize, taps: usize) -> Vec<f32> {
    permute(w, [cin, cout, taps], [0, 2, 1])
}

/// The inverse of [`transposed_to_host`].
fn transposed_from_host(h: &[f32], cin: usize, cout: usize, taps: usize) -> Vec<f32> {
    permute(h, [cin, taps, cout], [0, 2, 1])
}

/// A [cout, cin, k, k] convolution weight as [k*k*cin, cout] (the layout
/// im2col rows multiply).
fn conv_to_host(w: &[f32], cout: usize, cin: usize, taps: usize) -> Vec<f32> {
    permute(w, [cout, cin, taps], [2, 1, 0])
}

/// The inverse of [`conv_to_host`].
fn conv_from_host(h: &[f32], cout: usize, cin: usize, taps: usize) -> Vec<f32> {
    permute(h, [taps, cin, cout], [2, 1, 0])
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip() {
        let w: Vec<f32> = (0..3 * 4 * 25).map(|i| i as f32).collect();
        assert_eq!(
            transposed_from_host(&transposed_to_host(&w, 3, 4, 25), 3, 4, 25),
            w
        );
        assert_eq!(conv_from_host(&conv_to_host(&w, 4, 3, 25), 4, 3, 25), w);
        // conv_to_host puts tap t, input channel i, output o at row t*cin + i.
        assert_eq!(
            conv_to_host(&w, 4, 3, 25)[(7 * 3 + 2) * 4 + 1],
            w[(3 + 2) * 25 + 7]
        );
    }
}
