//! The conditional generator G(z, y): noise plus a one-hot class, up-sampled
//! by transposed convolutions 1x1 -> 7x7 -> 14x14 -> 28x28 (the seed cDCGAN).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::init::DcganInit;
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

/// G: [B, latent+classes, 1, 1] -> ConvT(k7) -> BN -> LReLU -> ConvT(k5, s2)
/// -> BN -> LReLU -> ConvT(k5, s2) -> tanh = [B, 1, 28, 28] in [-1, 1].
#[derive(Module, Debug)]
pub struct Generator {
    /// latent+classes -> base channels, k7: 1x1 -> 7x7.
    pub deconv1: ConvTranspose2d,
    /// Batch norm after `deconv1`.
    pub bn1: BatchNorm,
    /// bn1's class-conditional scale and shift (with `class_norm`).
    pub bn1_class: Option<ClassModulation>,
    /// base -> base/2 channels, k5, stride 2: 7x7 -> 14x14.
    pub deconv2: ConvTranspose2d,
    /// Batch norm after `deconv2`.
    pub bn2: BatchNorm,
    /// bn2's class-conditional scale and shift (with `class_norm`).
    pub bn2_class: Option<ClassModulation>,
    /// base/2 -> image channels, k5, stride 2: 14x14 -> 28x28 (then tanh).
    pub deconv3: ConvTranspose2d,
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
        Ok(())
    }

    /// A generator initialised with seed 0.
    pub fn init(&self, device: &Device) -> Generator {
        self.init_seeded(device, 0)
    }

    /// A generator with DCGAN initialisation drawn from `seed`.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Generator {
        let c1 = self.base_channels;
        let c2 = self.base_channels / 2;
        let up = |cin, cout| {
            ConvTranspose2dConfig::new([cin, cout], [5, 5])
                .with_stride([2, 2])
                .with_padding([2, 2])
                .with_padding_out([1, 1])
        };
        let class_norm = |channels| {
            self.class_norm
                .then(|| ClassModulation::zeros(self.num_classes, channels, device))
        };
        let g = Generator {
            deconv1: ConvTranspose2dConfig::new([self.latent_dim + self.num_classes, c1], [7, 7])
                .init(device),
            bn1: batch_norm(c1, device),
            bn1_class: class_norm(c1),
            deconv2: up(c1, c2).init(device),
            bn2: batch_norm(c2, device),
            bn2_class: class_norm(c2),
            deconv3: up(c2, self.image_channels).init(device),
            latent_dim: self.latent_dim,
            num_classes: self.num_classes,
        };
        DcganInit::new(ChaCha8Rng::seed_from_u64(seed)).apply(g)
    }
}

impl Generator {
    /// `z`: [B, latent], `labels`: [B, classes] one-hot (or a blend of
    /// one-hots, for morphing between classes). Returns images in [-1, 1].
    pub fn forward(&self, z: Tensor<2>, labels: Tensor<2>) -> Tensor<4> {
        let [batch, _] = z.dims();
        let x = Tensor::cat(vec![z, labels.clone()], 1);
        let channels = x.dims()[1];
        let x = x.reshape([batch, channels, 1, 1]);
        let norm = |x, bn: &BatchNorm, class: &Option<ClassModulation>| {
            let x = bn.forward(x);
            let x = match class {
                Some(class) => class.forward(x, labels.clone()),
                None => x,
            };
            leaky_relu(x, LEAKY_SLOPE)
        };
        let x = norm(self.deconv1.forward(x), &self.bn1, &self.bn1_class);
        let x = norm(self.deconv2.forward(x), &self.bn2, &self.bn2_class);
        self.deconv3.forward(x).tanh()
    }
}
