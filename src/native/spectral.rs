//! D's spectral norms in the native step ([`crate::model::spectral`]): the
//! weights are divided by their estimates before they are laid out for the
//! kernels, and the gradients the kernels give for the divided weights are
//! turned into the weights' own.

use super::params::DiscParams;
use crate::model::spectral::{LAYERS, power_iteration, sigma_and_v, u_name, weight_gradient};
use crate::model::weights::NamedTensors;

/// One power iteration of each of D's vectors, in place in D's tensors.
pub(super) fn iterate(d: &mut NamedTensors) {
    for layer in LAYERS {
        let name = u_name(layer);
        let mut u = std::mem::take(&mut d.get_mut(&name).expect("spectral vector").values);
        power_iteration(&d[&weight_name(layer)].values, &mut u);
        d.get_mut(&name).expect("spectral vector").values = u;
    }
}

fn weight_name(layer: &str) -> String {
    format!("{layer}.weight")
}

/// One layer's estimate for one version of D's weights.
#[derive(Debug, Clone)]
struct LayerNorm {
    sigma: f32,
    u: Vec<f32>,
    v: Vec<f32>,
}

/// The estimates of D's normalised layers, in [`LAYERS`] order.
#[derive(Debug, Clone)]
pub(super) struct SpectralNorms([LayerNorm; 3]);

impl SpectralNorms {
    /// The estimates for D's current weights and vectors.
    pub(super) fn of(d: &NamedTensors) -> Self {
        Self(LAYERS.map(|layer| {
            let u = d[&u_name(layer)].values.clone();
            let (sigma, v) = sigma_and_v(&d[&weight_name(layer)].values, &u);
            LayerNorm { sigma, u, v }
        }))
    }

    /// D's convolution weights (kernel layout: the division commutes with
    /// it) divided by their estimates.
    pub(super) fn normalize(&self, p: &mut DiscParams) {
        for (w, norm) in [&mut p.w1, &mut p.w2, &mut p.w3].into_iter().zip(&self.0) {
            w.iter_mut().for_each(|x| *x /= norm.sigma);
        }
    }

    /// Turns the gradients of the divided weights (PyTorch layout, among
    /// D's named gradients) into the gradients of D's weights `d`.
    pub(super) fn backward(&self, grads: &mut [(&str, Vec<f32>)], d: &NamedTensors) {
        for (layer, norm) in LAYERS.iter().zip(&self.0) {
            let name = weight_name(layer);
            let (_, grad) = grads
                .iter_mut()
                .find(|(n, _)| *n == name)
                .expect("a weight gradient");
            weight_gradient(grad, &d[&name].values, &norm.u, norm.sigma, &norm.v);
        }
    }
}
