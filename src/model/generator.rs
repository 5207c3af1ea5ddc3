//! The conditional generator G(z, y): noise plus a one-hot class, up-sampled
//! by transposed convolutions (1x1 -> 7x7 -> 14x14 -> 28x28 for the seed
//! cDCGAN), one block per layer of its description ([`GeneratorNet`]).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::init::DcganInit;
use super::net::{Activation, GeneratorNet, IMAGE_SIDES, ImageShape, Layer};
use crate::arch::{BN_EPS, BN_MOMENTUM, LEAKY_SLOPE};

/// The generator's sizes, as stored in a run's `config.json`.
#[derive(Config, Debug)]
pub struct GeneratorConfig {
    /// Length of the noise vector z.
    #[config(default = 100)]
    pub latent_dim: usize,
    /// Number of classes (width of the one-hot condition).
    #[config(default = 10)]
    pub num_classes: usize,
    /// Channels of the first (7x7) feature map.
    #[config(default = 256)]
    pub base_channels: usize,
    /// Channels of the output image (1 for grey).
    #[config(default = 1)]
    pub image_channels: usize,
    /// Side of the output image in pixels: 28 (the seed), 32 or 64.
    #[config(default = 28)]
    pub image_size: usize,
    /// Class-conditional batch norm: the condition also scales and shifts
    /// each batch norm's output ([`ClassModulation`]); false: the condition
    /// enters through G's input only (the original's). Files of 0.1.0 wrote
    /// `null` for false ([`super::upgrade_json`]).
    #[config(default = false)]
    pub class_norm: bool,
}

/// The class-conditional part of a batch norm (de Vries et al. 2017, as in
/// BigGAN): for a condition row `y` (one-hot, or a blend of them),
/// `out = bn(x) * (1 + y . gain) + y . shift`, per image and channel. Both
/// start at zero, so a fresh G is the unconditional-norm G.
#[derive(Module, Debug)]
pub struct ClassModulation {
    /// [classes, channels]: each class's change to the norm's scale.
    pub gain: Param<Tensor<2>>,
    /// [classes, channels]: each class's change to the norm's shift.
    pub shift: Param<Tensor<2>>,
}

impl ClassModulation {
    /// Zero gain and shift for `classes` x `channels`.
    pub fn zeros(classes: usize, channels: usize, device: &Device) -> Self {
        let zeros = || Param::from_tensor(Tensor::zeros([classes, channels], device));
        Self {
            gain: zeros(),
            shift: zeros(),
        }
    }

    /// `x` [B, C, H, W] scaled and shifted per image by `conditions` [B, classes].
    pub fn forward(&self, x: Tensor<4>, conditions: Tensor<2>) -> Tensor<4> {
        let [batch, channels, _, _] = x.dims();
        let per_image = |m: &Param<Tensor<2>>| {
            conditions
                .clone()
                .matmul(m.val())
                .reshape([batch, channels, 1, 1])
        };
        x * (per_image(&self.gain) + 1.0) + per_image(&self.shift)
    }
}

/// One layer of G: its transposed convolution, batch norm and class
/// modulation (tensors `deconv{n}`, `bn{n}`, `bn{n}_class`).
#[derive(Module, Debug)]
pub struct GenBlock {
    /// The transposed convolution.
    pub deconv: ConvTranspose2d,
    /// The batch norm after it (all but the last layer).
    pub bn: Option<BatchNorm>,
    /// The norm's class-conditional scale and shift (with `class_norm`).
    pub bn_class: Option<ClassModulation>,
}

/// G: [B, latent+classes, 1, 1] -> ConvT(k7) -> BN -> LReLU -> ConvT(k5, s2)
/// -> BN -> LReLU -> ConvT(k5, s2) -> tanh = [B, 1, 28, 28] in [-1, 1] at
/// the seed's geometry; one more ConvT(k5, s2) a doubling at the others.
#[derive(Module, Debug)]
pub struct Generator {
    /// The layers of [`GeneratorConfig::net`], in order.
    pub blocks: Vec<GenBlock>,
    /// Length of z.
    pub latent_dim: usize,
    /// Width of the one-hot condition.
    pub num_classes: usize,
}

/// A batch norm over `channels` with the architecture's epsilon and momentum.
pub(super) fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(BN_EPS)
        .with_momentum(BN_MOMENTUM)
        .init(device)
}

impl GeneratorConfig {
    /// Bounds every size before anything is allocated from it.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (field, value, range) in [
            ("generator.latent_dim", self.latent_dim, 1..=4096),
            (
                "generator.num_classes",
                self.num_classes,
                1..=super::MAX_CLASSES,
            ),
            (
                "generator.base_channels",
                self.base_channels,
                2..=super::MAX_CHANNELS,
            ),
            ("generator.image_channels", self.image_channels, 1..=4),
        ] {
            anyhow::ensure!(
                range.contains(&value),
                "{field} must be in {range:?} (got {value})"
            );
        }
        anyhow::ensure!(
            IMAGE_SIDES.contains(&self.image_size),
            "generator.image_size must be one of {IMAGE_SIDES:?} (got {})",
            self.image_size
        );
        let ups = self.image().ladder().1;
        anyhow::ensure!(
            self.base_channels >> (ups - 1) >= 1,
            "generator.base_channels {} is too narrow for {} px images: each of its {ups} doublings halves it (at least {})",
            self.base_channels,
            self.image_size,
            1 << (ups - 1)
        );
        Ok(())
    }

    /// The images G makes.
    pub fn image(&self) -> ImageShape {
        ImageShape {
            channels: self.image_channels,
            side: self.image_size,
        }
    }

    /// G's description: its layers for these sizes and options.
    pub fn net(&self) -> GeneratorNet {
        GeneratorNet::new(
            self.image(),
            self.base_channels,
            self.latent_dim,
            self.num_classes,
            self.class_norm,
        )
    }

    /// A generator initialised with seed 0.
    pub fn init(&self, device: &Device) -> Generator {
        self.init_seeded(device, 0)
    }

    /// A generator with DCGAN initialisation drawn from `seed`.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Generator {
        let block = |layer: &Layer| {
            let [cin, cout, k, _] = layer.weight_shape();
            let (s, p) = (layer.stride, layer.padding);
            let deconv = ConvTranspose2dConfig::new([cin, cout], [k, k])
                .with_stride([s, s])
                .with_padding([p, p])
                .with_padding_out([layer.out_padding, layer.out_padding]);
            let norm = layer.norm.as_ref();
            GenBlock {
                deconv: deconv.init(device),
                bn: norm.map(|_| batch_norm(cout, device)),
                bn_class: norm
                    .filter(|n| n.class)
                    .map(|_| ClassModulation::zeros(self.num_classes, cout, device)),
            }
        };
        let g = Generator {
            blocks: self.net().layers.iter().map(block).collect(),
            latent_dim: self.latent_dim,
            num_classes: self.num_classes,
        };
        DcganInit::new(ChaCha8Rng::seed_from_u64(seed)).apply(g)
    }
}

impl Generator {
    /// The sizes and options this generator was built with, read from its
    /// layers (the description they follow: [`GeneratorConfig::net`]).
    pub fn config(&self) -> GeneratorConfig {
        let [_, base, first, _] = self.blocks[0].deconv.weight.dims();
        let [_, image_channels, _, _] = self.blocks[self.blocks.len() - 1].deconv.weight.dims();
        GeneratorConfig {
            latent_dim: self.latent_dim,
            num_classes: self.num_classes,
            base_channels: base,
            image_channels,
            image_size: first << (self.blocks.len() - 1),
            class_norm: self.blocks[0].bn_class.is_some(),
        }
    }

    /// `z`: [B, latent], `labels`: [B, classes] one-hot (or a blend of
    /// one-hots, for morphing between classes). Returns images in [-1, 1].
    pub fn forward(&self, z: Tensor<2>, labels: Tensor<2>) -> Tensor<4> {
        let [batch, _] = z.dims();
        let x = Tensor::cat(vec![z, labels.clone()], 1);
        let channels = x.dims()[1];
        let mut x = x.reshape([batch, channels, 1, 1]);
        let last = self.blocks.len() - 1;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.deconv.forward(x);
            if let Some(bn) = &block.bn {
                x = bn.forward(x);
            }
            if let Some(class) = &block.bn_class {
                x = class.forward(x, labels.clone());
            }
            x = match i == last {
                true => activate(x, Activation::Tanh),
                false => activate(x, Activation::Leaky),
            };
        }
        x
    }
}

/// `x` through `activation`.
pub(super) fn activate(x: Tensor<4>, activation: Activation) -> Tensor<4> {
    match activation {
        Activation::Leaky => leaky_relu(x, LEAKY_SLOPE),
        Activation::Tanh => x.tanh(),
        Activation::Linear => x,
    }
}
