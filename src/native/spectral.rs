//! D's spectral norms in the native step ([`crate::model::spectral`]): the
//! weights are divided by their estimates before they are laid out for the
//! kernels, and the gradients the kernels give for the divided weights are
//! turned into the weights' own.

use super::params::NetParams;
use crate::model::net::DiscriminatorNet;
use crate::model::spectral::{power_iteration, sigma_and_v, u_name, weight_gradient};
use crate::model::weights::NamedTensors;

/// The normalised layers' names (all of D's layers but the head), in order.
fn layers(net: &DiscriminatorNet) -> impl Iterator<Item = &str> {
    net.layers.iter().map(|l| l.name.as_str())
}

/// One power iteration of each of D's vectors, in place in D's tensors.
pub(super) fn iterate(d: &mut NamedTensors, net: &DiscriminatorNet) {
    for layer in layers(net) {
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
    name: String,
    sigma: f32,
    u: Vec<f32>,
    v: Vec<f32>,
}

/// The estimates of D's normalised layers, in order.
#[derive(Debug, Clone)]
pub(super) struct SpectralNorms(Vec<LayerNorm>);

impl SpectralNorms {
    /// The estimates for D's current weights and vectors.
    pub(super) fn of(d: &NamedTensors, net: &DiscriminatorNet) -> Self {
        Self(
            layers(net)
                .map(|layer| {
                    let u = d[&u_name(layer)].values.clone();
                    let (sigma, v) = sigma_and_v(&d[&weight_name(layer)].values, &u);
                    let name = weight_name(layer);
                    LayerNorm { name, sigma, u, v }
                })
                .collect(),
        )
    }

    /// D's layer weights (kernel layout: the division commutes with it)
    /// divided by their estimates.
    pub(super) fn normalize(&self, p: &mut NetParams) {
        for (layer, norm) in p.layers.iter_mut().zip(&self.0) {
            layer.w.iter_mut().for_each(|x| *x /= norm.sigma);
        }
    }

    /// Turns the gradients of the divided weights (PyTorch layout, among
    /// D's named gradients) into the gradients of D's weights `d`.
    pub(super) fn backward(&self, grads: &mut [(String, Vec<f32>)], d: &NamedTensors) {
        for norm in &self.0 {
            let (_, grad) = grads
                .iter_mut()
                .find(|(n, _)| *n == norm.name)
                .expect("a weight gradient");
            weight_gradient(grad, &d[&norm.name].values, &norm.u, norm.sigma, &norm.v);
        }
    }
}
