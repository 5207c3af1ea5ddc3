//! The native engine: our own CPU kernels for the networks of
//! [`crate::model::net`], beside
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
mod augment;
#[cfg(target_arch = "x86_64")]
pub mod bf16;
pub mod choice;
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
mod seen;
mod spectral;
pub mod spread;
pub mod step;

pub use gemm::{Operand, Precision, Threads, matmul, product, with_precision};
pub use sampling::NativeGenerator;
pub use step::{NativeGan, StepInput};

use crate::model::GanConfig;
use crate::model::net::{DiscriminatorNet, GeneratorNet, Kind, Layer};
use params::ParamLayers;

/// Why the native step cannot train a configuration, if it cannot.
pub fn unsupported(model: &GanConfig) -> Option<&'static str> {
    let (g, d) = (model.generator.net(), model.discriminator.net());
    let stride_two = |l: &&Layer| matches!(l.kind, Kind::Up | Kind::Down);
    let kernels_fit = g
        .layers
        .iter()
        .chain(&d.layers)
        .filter(stride_two)
        .all(|l| (l.kernel, l.stride, l.padding) == (crate::arch::KERNEL, 2, crate::arch::PADDING));
    (!kernels_fit).then_some("stride-2 layers other than kernel 5, padding 2")
}

/// Both networks' descriptions, as the passes walk them.
#[derive(Debug, Clone)]
struct Nets {
    g: GeneratorNet,
    d: DiscriminatorNet,
}

impl Nets {
    fn of(model: &GanConfig) -> Self {
        Self {
            g: model.generator.net(),
            d: model.discriminator.net(),
        }
    }

    fn classes(&self) -> usize {
        self.g.classes
    }

    /// G's layers, as its parameters list them.
    fn g_layers(&self) -> ParamLayers<'_> {
        ParamLayers {
            layers: &self.g.layers,
            head: None,
        }
    }

    /// D's layers and its head, as its parameters list them.
    fn d_layers(&self) -> ParamLayers<'_> {
        ParamLayers {
            layers: &self.d.layers,
            head: self.d.head.as_ref(),
        }
    }
}
