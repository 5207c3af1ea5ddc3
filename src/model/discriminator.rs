//! The conditional discriminator D(x, y): the image plus its class broadcast
//! as one constant plane per class, down-sampled by strided convolutions to
//! one real/fake logit, and optionally (AC-GAN) to class logits as well.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::generator::LEAKY_SLOPE;
use super::init::DcganInit;

#[derive(Config, Debug)]
pub struct DiscriminatorConfig {
    /// Number of classes (label planes, and the auxiliary head's width).
    #[config(default = 10)]
    pub num_classes: usize,
    /// Channels after the first convolution (doubled after the second).
    #[config(default = 128)]
    pub base_channels: usize,
    /// Channels of the input image.
    #[config(default = 1)]
    pub image_channels: usize,
    /// Add the AC-GAN auxiliary classifier head on the 7x7 features.
    #[config(default = false)]
    pub aux_classifier: bool,
}

/// D: [B, 1+classes, 28, 28] -> Conv(k5, s2) -> LReLU -> Conv(k5, s2) -> BN
/// -> LReLU -> Conv(k7) = one logit per image. The auxiliary head is a k7
/// convolution to `classes` outputs: a linear layer over the 256x7x7
/// features, stored with PyTorch's convolution weight layout.
#[derive(Module, Debug)]
pub struct Discriminator {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub aux: Option<Conv2d>,
    pub num_classes: usize,
}

/// What D says about a batch.
#[derive(Debug, Clone)]
pub struct DiscriminatorOutput {
    /// Real/fake logits, [B].
    pub logits: Tensor<1>,
    /// Class logits from the auxiliary head, [B, classes], when D has one.
    pub class_logits: Option<Tensor<2>>,
}

impl DiscriminatorConfig {
    /// A discriminator initialised with seed 0.
    pub fn init(&self, device: &Device) -> Discriminator {
        self.init_seeded(device, 0)
    }

    /// A discriminator with DCGAN initialisation drawn from `seed`.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Discriminator {
        let c1 = self.base_channels;
        let c2 = self.base_channels * 2;
        let down = |cin, cout| {
            Conv2dConfig::new([cin, cout], [5, 5])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
        };
        let d = Discriminator {
            conv1: down(self.image_channels + self.num_classes, c1).init(device),
            conv2: down(c1, c2).init(device),
            bn2: BatchNormConfig::new(c2).init(device),
            conv3: Conv2dConfig::new([c2, 1], [7, 7]).init(device),
            aux: self
                .aux_classifier
                .then(|| Conv2dConfig::new([c2, self.num_classes], [7, 7]).init(device)),
            num_classes: self.num_classes,
        };
        DcganInit::new(ChaCha8Rng::seed_from_u64(seed)).apply(d)
    }
}

impl Discriminator {
    /// `images`: [B, C, H, W] in [-1, 1]; `labels`: [B, classes] one-hot.
    pub fn forward(&self, images: Tensor<4>, labels: Tensor<2>) -> DiscriminatorOutput {
        let [batch, _, height, width] = images.dims();
        let planes = labels.reshape([batch, self.num_classes, 1, 1]).expand([
            batch,
            self.num_classes,
            height,
            width,
        ]);
        let x = Tensor::cat(vec![images, planes], 1);
        let x = leaky_relu(self.conv1.forward(x), LEAKY_SLOPE);
        let features = leaky_relu(self.bn2.forward(self.conv2.forward(x)), LEAKY_SLOPE);
        let class_logits = self.aux.as_ref().map(|head| {
            head.forward(features.clone())
                .reshape([batch, self.num_classes])
        });
        let logits = self.conv3.forward(features).reshape([batch]);
        DiscriminatorOutput {
            logits,
            class_logits,
        }
    }
}
