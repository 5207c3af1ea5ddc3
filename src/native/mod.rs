//! The native engine: our own CPU kernels for the seed architecture, beside
//! burn's autodiff path. Training ([`NativeGan`]) and sampling
//! ([`NativeGenerator`]) run through the same layers.
//!
//! burn Flex runs these layers through general-purpose NCHW kernels (one
//! gemm per image for transposed convolutions, scalar scatters, a masked
//! select per LeakyReLU, per-image weight packing). Here every layer is one
//! large product (the `gemm` crate, the kernels burn itself calls) plus one
//! pass that moves whole channel vectors, on row-major matrices whose rows
//! are image positions and whose columns are channels (channels last).
//!
//! Layers, each a `*_forward` / `*_backward` pair with mirrored arguments:
//! [`dense`] (G's first layer, D's last), [`conv`] (the stride-2
//! convolution and its transpose), [`norm`] (training batch norm),
//! [`activation`] (LeakyReLU, tanh), [`spread`] (minibatch standard deviation), `spectral` (D's spectral norms),
//! [`class_projection`] (the projection discriminator's class term),
//! [`modulation`] (the class-conditional part of G's batch norms). `generator` and `discriminator` are
//! the networks' passes as lists of those calls; `params` lays the
//! weights out for them; [`step`] is one GAN iteration; [`sampling`] the
//! evaluation-mode generator with its batch norms folded in.

pub mod activation;
#[cfg(target_arch = "x86_64")]
pub mod bf16;
pub mod class_projection;
pub mod conv;
pub mod dense;
mod discriminator;
pub mod gemm;
mod generator;
pub mod layout;
mod losses;
pub mod modulation;
pub mod norm;
mod params;
pub mod sampling;
mod spectral;
pub mod spread;
pub mod step;

pub use gemm::{Operand, Precision, Threads, matmul, product, with_precision};
pub use sampling::NativeGenerator;
pub use step::{NativeGan, StepInput};

use crate::model::GanConfig;

/// Why the native step cannot train a configuration, if it cannot.
pub fn unsupported(model: &GanConfig) -> Option<&'static str> {
    let (g, d) = (&model.generator, &model.discriminator);
    if g.image_channels != 1 || d.image_channels != 1 {
        Some("colour images")
    } else {
        None
    }
}

/// Network widths.
#[derive(Debug, Clone, Copy)]
struct Dims {
    latent: usize,
    classes: usize,
    g1: usize,
    g2: usize,
    d1: usize,
    d2: usize,
    /// D's last layer also sees the spread plane (minibatch std).
    spread: bool,
    /// G's batch norms are class-conditional.
    class_norm: bool,
    /// D's convolutions are spectrally normalised.
    spectral: bool,
    /// D has its batch norm (bn2).
    d_norm: bool,
    /// D has the AC-GAN classifier head.
    aux: bool,
    /// D sees the label planes.
    label_planes: bool,
    /// D adds the projection term to its logit.
    projection: bool,
}

impl Dims {
    fn of(model: &GanConfig) -> Self {
        let (g, d) = (&model.generator, &model.discriminator);
        Self {
            latent: g.latent_dim,
            classes: g.num_classes,
            g1: g.base_channels,
            g2: g.base_channels / 2,
            d1: d.base_channels,
            d2: d.base_channels * 2,
            spread: d.minibatch_std,
            class_norm: g.class_norm,
            spectral: d.spectral_norm,
            d_norm: d.batch_norm,
            aux: d.aux_classifier,
            label_planes: d.conditioning.unwrap_or_default().planes(),
            projection: d.conditioning.unwrap_or_default().projection(),
        }
    }

    /// Channels of D's last layer's input.
    fn last_channels(&self) -> usize {
        self.d2 + usize::from(self.spread)
    }

    fn inputs(&self) -> usize {
        self.latent + self.classes
    }

    /// conv1's input planes: the image [and the label planes].
    fn planes(&self) -> usize {
        1 + if self.label_planes { self.classes } else { 0 }
    }
}
