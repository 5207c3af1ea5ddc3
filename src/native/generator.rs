//! G's training-mode forward and backward passes, channels last, as a list
//! of layer calls: deconv1 (a dense layer: the input is 1x1) -> bn1 (->
//! its class modulation) -> LeakyReLU -> deconv2 -> bn2 (-> its class
//! modulation) -> LeakyReLU -> deconv3 -> tanh.

use super::activation::{leaky_backward, leaky_forward, tanh_backward, tanh_forward};
use super::conv::{deconv_backward, deconv_forward};
use super::dense::{projection_backward, projection_forward};
use super::layout::concat_rows;
use super::modulation::{ModulationCache, modulation_backward, modulation_forward};
use super::norm::{BatchNormCache, batch_norm_backward, batch_norm_forward};
use super::params::{ClassNormParams, GenParams, update_running_stats};
use super::{Dims, Threads};
use crate::arch::{FIRST_SIDE, MID_SIDE};
use crate::model::weights::NamedTensors;

/// What G's backward pass needs from its forward.
pub(super) struct GenCache {
    input: Vec<f32>,
    h1: Vec<f32>,
    bn1: BatchNormCache,
    class1: Option<ModulationCache>,
    h2: Vec<f32>,
    bn2: BatchNormCache,
    class2: Option<ModulationCache>,
    /// The images, [B, 784] in [-1, 1].
    pub(super) fake: Vec<f32>,
}

/// G on noise `z` [B, latent] and conditions `labels` [B, classes], with
/// batch statistics; updates the running statistics in `running`. `class`:
/// the batch norms' class modulation, where G has one.
pub(super) fn generator_forward(
    p: &GenParams,
    class: Option<&ClassNormParams>,
    z: &[f32],
    labels: &[f32],
    dims: &Dims,
    running: &mut NamedTensors,
) -> GenCache {
    let input = concat_rows(z, dims.latent, labels, dims.classes);
    let modulate =
        |h: &mut [f32], gain, shift| modulation_forward(h, labels, dims.classes, gain, shift);
    let mut h1 = projection_forward(&input, dims.inputs(), &p.w1, &p.b1);
    let bn1 = batch_norm_forward(&mut h1, &p.gamma1, &p.beta1);
    update_running_stats(running, "bn1", &bn1.stats);
    let class1 = class.map(|c| modulate(&mut h1, &c.gain1, &c.shift1));
    leaky_forward(&mut h1, Threads::All);
    let mut h2 = deconv_forward(&h1, FIRST_SIDE, &p.w2, &p.b2, |v| v, Threads::All);
    let bn2 = batch_norm_forward(&mut h2, &p.gamma2, &p.beta2);
    update_running_stats(running, "bn2", &bn2.stats);
    let class2 = class.map(|c| modulate(&mut h2, &c.gain2, &c.shift2));
    leaky_forward(&mut h2, Threads::All);
    let mut fake = deconv_forward(&h2, MID_SIDE, &p.w3, &p.b3, |v| v, Threads::All);
    tanh_forward(&mut fake, Threads::All);
    GenCache {
        input,
        h1,
        bn1,
        class1,
        h2,
        bn2,
        class2,
        fake,
    }
}

/// G's parameter gradients (and its class modulation's, where it has one)
/// from the gradient of its images.
pub(super) fn generator_backward(
    p: &GenParams,
    cache: GenCache,
    image_grad: Vec<f32>,
    labels: &[f32],
    dims: &Dims,
) -> (GenParams, Option<ClassNormParams>) {
    let unmodulate = |grad: &mut [f32], class: &Option<ModulationCache>| {
        class
            .as_ref()
            .map(|c| modulation_backward(grad, c, labels))
            .unwrap_or_default()
    };
    let mut da3 = image_grad;
    tanh_backward(&mut da3, &cache.fake);
    let (mut dh2, w3, b3) = deconv_backward(&da3, &cache.h2, MID_SIDE, &p.w3, p.b3.len());
    leaky_backward(&mut dh2, &cache.h2);
    let (gain2, shift2) = unmodulate(&mut dh2, &cache.class2);
    let (gamma2, beta2) = batch_norm_backward(&mut dh2, &cache.bn2, &p.gamma2);
    let (mut dh1, w2, b2) = deconv_backward(&dh2, &cache.h1, FIRST_SIDE, &p.w2, dims.g2);
    drop(dh2);
    leaky_backward(&mut dh1, &cache.h1);
    let (gain1, shift1) = unmodulate(&mut dh1, &cache.class1);
    let (gamma1, beta1) = batch_norm_backward(&mut dh1, &cache.bn1, &p.gamma1);
    let (w1, b1) = projection_backward(&dh1, &cache.input, dims.inputs(), dims.g1);
    let class = cache.class1.is_some().then_some(ClassNormParams {
        gain1,
        shift1,
        gain2,
        shift2,
    });
    let main = GenParams {
        w1,
        b1,
        gamma1,
        beta1,
        w2,
        b2,
        gamma2,
        beta2,
        w3,
        b3,
    };
    (main, class)
}
