//! G's training-mode forward and backward passes, channels last: a walk
//! over its description's layers ([`GeneratorNet`]), each the layer's call
//! (a projection, a dense layer from the 1x1 input, then transposed
//! convolutions), its batch norm (-> the norm's class modulation) and its
//! activation; the backward walks them in reverse.

use std::mem;

use super::Threads;
use super::activation::{activation_backward, activation_forward};
use super::conv::{deconv_backward, deconv_forward};
use super::dense::{projection_backward, projection_forward};
use super::layout::concat_rows;
use super::modulation::{ModulationCache, modulation_backward, modulation_forward};
use super::norm::{BatchNormCache, batch_norm_backward, batch_norm_forward};
use super::params::{LayerParams, NetParams, update_running_stats};
use crate::model::net::{GeneratorNet, Kind, Layer};
use crate::model::weights::NamedTensors;

/// What one layer's backward needs from its forward.
struct LayerCache {
    /// Its input (the first layer's: z and the condition side by side).
    input: Vec<f32>,
    norm: Option<BatchNormCache>,
    class: Option<ModulationCache>,
}

/// What G's backward pass needs from its forward.
pub(super) struct GenCache {
    layers: Vec<LayerCache>,
    /// The images, [B, pixels * channels] channels last, in [-1, 1].
    pub(super) fake: Vec<f32>,
}

/// G on noise `z` [B, latent] and conditions `labels` [B, classes], with
/// batch statistics; updates the running statistics in `running`.
pub(super) fn generator_forward(
    p: &NetParams,
    net: &GeneratorNet,
    z: &[f32],
    labels: &[f32],
    running: &mut NamedTensors,
) -> GenCache {
    let mut x = concat_rows(z, net.latent, labels, net.classes);
    let mut layers = Vec::with_capacity(net.layers.len());
    for (layer, p) in net.layers.iter().zip(&p.layers) {
        let mut h = match layer.kind {
            Kind::Project => projection_forward(&x, layer.inputs, &p.w, &p.b),
            Kind::Up => deconv_forward(&x, layer.side, &p.w, &p.b, |v| v, Threads::All),
            Kind::Down | Kind::Whole => unreachable!("G's layers project or go up"),
        };
        let norm = layer.norm.as_ref().map(|norm| {
            let cache = batch_norm_forward(&mut h, &p.gamma, &p.beta);
            update_running_stats(running, &norm.name, &cache.stats);
            cache
        });
        let class = layer
            .norm
            .as_ref()
            .filter(|norm| norm.class)
            .map(|_| modulation_forward(&mut h, labels, net.classes, &p.gain, &p.shift));
        activation_forward(&mut h, layer.activation, Threads::All);
        let input = mem::replace(&mut x, h);
        layers.push(LayerCache { input, norm, class });
    }
    GenCache { layers, fake: x }
}

/// G's parameter gradients (its norms' class modulations' among them) from
/// the gradient of its images.
pub(super) fn generator_backward(
    p: &NetParams,
    net: &GeneratorNet,
    cache: GenCache,
    image_grad: Vec<f32>,
    labels: &[f32],
) -> NetParams {
    let mut grads = vec![LayerParams::default(); net.layers.len()];
    let (mut dy, mut output) = (image_grad, cache.fake);
    let walk = net.layers.iter().zip(&p.layers).zip(cache.layers);
    for (((layer, p), cache), g) in walk.zip(&mut grads).rev() {
        dy = layer_backward(layer, p, &cache, dy, &output, labels, g);
        output = cache.input;
    }
    NetParams {
        layers: grads,
        ..NetParams::default()
    }
}

/// One layer's backward: its gradients into `g` from its output gradient
/// `dy` and `output`; returns its input's gradient (none for the first).
fn layer_backward(
    layer: &Layer,
    p: &LayerParams,
    cache: &LayerCache,
    mut dy: Vec<f32>,
    output: &[f32],
    labels: &[f32],
    g: &mut LayerParams,
) -> Vec<f32> {
    activation_backward(&mut dy, output, layer.activation);
    if let Some(class) = &cache.class {
        (g.gain, g.shift) = modulation_backward(&mut dy, class, labels);
    }
    if let Some(norm) = &cache.norm {
        (g.gamma, g.beta) = batch_norm_backward(&mut dy, norm, &p.gamma);
    }
    match layer.kind {
        Kind::Up => {
            let (dx, w, b) = deconv_backward(&dy, &cache.input, layer.side, &p.w, layer.outputs);
            (g.w, g.b) = (w, b);
            dx
        }
        Kind::Project => {
            (g.w, g.b) = projection_backward(&dy, &cache.input, layer.inputs, layer.outputs);
            Vec::new()
        }
        Kind::Down | Kind::Whole => unreachable!("G's layers project or go up"),
    }
}
