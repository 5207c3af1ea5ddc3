//! The conditional discriminator D(x, y): the image plus its class broadcast
//! as one constant plane per class, down-sampled by strided convolutions to
//! one real/fake logit, and optionally (AC-GAN) to class logits as well.
//!
//! With [`Conditioning::Projection`] (Miyato & Koyama 2018) the label planes
//! go: D sees the image alone, and the class enters at the end as
//! `embed(y) . mean_pool(features)` added to the logit (the k7 convolution
//! stays as the unconditional term). The paper sum-pools under spectral
//! normalisation; without it, summing 49 positions would start the class
//! term several times larger than the hinge margin, so this averages them.
//! [`Conditioning::Both`] keeps the label planes and adds the same term.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, Embedding, EmbeddingConfig, PaddingConfig2d};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::generator::{activate, batch_norm};
use super::init::DcganInit;
use super::net::{Activation, DiscriminatorNet, DiscriminatorOptions, ImageShape, Layer};
use super::spectral::{SpectralVectors, normalized_weight};

/// The discriminator's sizes and options, as stored in a run's `config.json`.
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
    /// Side of the input image in pixels: 28 (the seed), 32 or 64.
    #[config(default = 28)]
    pub image_size: usize,
    /// Add the AC-GAN auxiliary classifier head on the 7x7 features.
    #[config(default = false)]
    pub aux_classifier: bool,
    /// How the label enters D; absent means label planes (the seed's, and
    /// what configs written before this option hold).
    pub conditioning: Option<Conditioning>,
    /// Give the last layer the batch's spread as one more feature plane
    /// (minibatch standard deviation, Karras et al. 2018); false: none (the
    /// original's).
    #[config(default = false)]
    pub minibatch_std: bool,
    /// Divide conv1, conv2 and conv3's weights by their largest singular
    /// value ([`super::spectral`]); false: plain weights (the original's).
    #[config(default = false)]
    pub spectral_norm: bool,
    /// Batch norm after conv2 (the original's); spectrally normalised
    /// discriminators usually go without it. Files of 0.1.0 wrote `null`
    /// for these options' defaults ([`super::upgrade_json`]).
    #[config(default = true)]
    pub batch_norm: bool,
}

/// How D is told the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conditioning {
    /// One constant plane per class, stacked onto the image (the seed).
    #[default]
    Planes,
    /// A learned class embedding dotted with D's pooled features.
    Projection,
    /// The label planes, and the projection term at the end.
    Both,
}

impl Conditioning {
    /// Whether D sees the label planes.
    pub fn planes(self) -> bool {
        self != Conditioning::Projection
    }

    /// Whether D has the projection term.
    pub fn projection(self) -> bool {
        self != Conditioning::Planes
    }
}

/// One convolution of D with the batch norm after it (tensors `conv{n}`, `bn{n}`).
#[derive(Module, Debug)]
pub struct DiscBlock {
    /// The convolution.
    pub conv: Conv2d,
    /// The batch norm after it (conv2 on, with `batch_norm`).
    pub bn: Option<BatchNorm>,
}

/// D: [B, 1+classes, 28, 28] -> Conv(k5, s2) -> LReLU -> Conv(k5, s2) -> BN
/// -> LReLU -> Conv(k7) = one logit per image at the seed's geometry (one
/// more Conv(k5, s2) -> BN -> LReLU a halving at the others). The auxiliary
/// head is a convolution over the whole last map to `classes` outputs: a
/// linear layer over the features, stored with PyTorch's convolution weight
/// layout.
#[derive(Module, Debug)]
pub struct Discriminator {
    /// The layers of [`DiscriminatorConfig::net`], in order: the stride-2
    /// convolutions, then the last, over the whole map (+ the spread plane,
    /// with minibatch std), to the real/fake logit.
    pub blocks: Vec<DiscBlock>,
    /// The AC-GAN head: the last features -> class logits; absent without it.
    pub aux: Option<Conv2d>,
    /// The class embedding of a projection discriminator, [classes, features]
    /// (PyTorch's `nn.Embedding` layout, `embed.weight`).
    pub embed: Option<Embedding>,
    /// Whether the image comes with its label planes.
    pub planes: bool,
    /// Number of classes: label planes, head outputs, embedding rows.
    pub num_classes: usize,
    /// Whether conv3 sees the spread plane (minibatch standard deviation).
    pub minibatch_std: bool,
    /// With spectral normalisation: the power-iteration vector of each convolution.
    pub spectral: Option<SpectralVectors>,
}

/// What D says about a batch.
#[derive(Debug, Clone)]
pub struct DiscriminatorOutput {
    /// Real/fake logits, `[B]`.
    pub logits: Tensor<1>,
    /// Class logits from the auxiliary head, [B, classes], when D has one.
    pub class_logits: Option<Tensor<2>>,
}

impl DiscriminatorConfig {
    /// A discriminator initialised with seed 0.
    pub fn init(&self, device: &Device) -> Discriminator {
        self.init_seeded(device, 0)
    }

    /// The images D judges.
    pub fn image(&self) -> ImageShape {
        ImageShape {
            channels: self.image_channels,
            side: self.image_size,
        }
    }

    /// D's description: its layers for these sizes and options.
    pub fn net(&self) -> DiscriminatorNet {
        let conditioning = self.conditioning.unwrap_or_default();
        let options = DiscriminatorOptions {
            label_planes: conditioning.planes(),
            projection: conditioning.projection(),
            batch_norm: self.batch_norm,
            spread: self.minibatch_std,
            spectral: self.spectral_norm,
            aux: self.aux_classifier,
        };
        DiscriminatorNet::new(self.image(), self.base_channels, self.num_classes, options)
    }

    /// A discriminator with DCGAN initialisation drawn from `seed`.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Discriminator {
        let net = self.net();
        let conv = |layer: &Layer| {
            let [cout, cin, k, _] = layer.weight_shape();
            let p = layer.padding;
            Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([layer.stride, layer.stride])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .init(device)
        };
        let block = |layer: &Layer| DiscBlock {
            conv: conv(layer),
            bn: layer
                .norm
                .as_ref()
                .map(|_| batch_norm(layer.outputs, device)),
        };
        let mut u_rng = ChaCha8Rng::seed_from_u64(seed);
        u_rng.set_stream(1);
        let outputs: Vec<usize> = net.layers.iter().map(|l| l.outputs).collect();
        let spectral = net
            .spectral
            .then(|| SpectralVectors::random(&outputs, &mut u_rng, device));
        let d = Discriminator {
            blocks: net.layers.iter().map(block).collect(),
            aux: net.head.as_ref().map(conv),
            embed: net
                .projection
                .then(|| EmbeddingConfig::new(self.num_classes, net.features()).init(device)),
            planes: net.label_planes,
            num_classes: self.num_classes,
            minibatch_std: net.spread,
            spectral,
        };
        DcganInit::new(ChaCha8Rng::seed_from_u64(seed)).apply(d)
    }
}

impl Discriminator {
    /// `images`: [B, C, H, W] in [-1, 1]; `labels`: [B, classes] one-hot.
    pub fn forward(&self, images: Tensor<4>, labels: Tensor<2>) -> DiscriminatorOutput {
        self.forward_grouped(images, labels, 1)
    }

    /// [`Discriminator::forward`] on a batch of `groups` equal runs (the real
    /// and the generated batch in one pass: 2) that share the batch norm's
    /// statistics, each with its own spread plane.
    pub fn forward_grouped(
        &self,
        images: Tensor<4>,
        labels: Tensor<2>,
        groups: usize,
    ) -> DiscriminatorOutput {
        let [batch, _, height, width] = images.dims();
        let x = if self.planes {
            let planes = labels
                .clone()
                .reshape([batch, self.num_classes, 1, 1])
                .expand([batch, self.num_classes, height, width]);
            Tensor::cat(vec![images, planes], 1)
        } else {
            images
        };
        let downs = &self.blocks[..self.blocks.len() - 1];
        let mut features = x;
        for (index, block) in downs.iter().enumerate() {
            features = self.conv(index, features);
            if let Some(bn) = &block.bn {
                features = bn.forward(features);
            }
            features = activate(features, Activation::Leaky);
        }
        let class_logits = self.aux.as_ref().map(|head| {
            head.forward(features.clone())
                .reshape([batch, self.num_classes])
        });
        let last_input = if self.minibatch_std {
            let groups = features.clone().chunk(groups, 0);
            Tensor::cat(groups.into_iter().map(with_spread_plane).collect(), 0)
        } else {
            features.clone()
        };
        let mut logits = self.conv(downs.len(), last_input).reshape([batch]);
        if let Some(embed) = &self.embed {
            // Rows of `labels` may blend classes (morphs), so embed by a
            // product with the table rather than a lookup.
            let channels = features.dims()[1];
            let pooled = features.mean_dim(3).mean_dim(2).reshape([batch, channels]);
            let class_vectors = labels.matmul(embed.weight.val());
            logits = logits + (pooled * class_vectors).sum_dim(1).reshape([batch]);
        }
        DiscriminatorOutput {
            logits,
            class_logits,
        }
    }

    /// Convolution `index` (0: conv1, ...) of `x`, with its weight
    /// spectrally normalised when D is.
    fn conv(&self, index: usize, x: Tensor<4>) -> Tensor<4> {
        let conv = &self.blocks[index].conv;
        let Some(spectral) = &self.spectral else {
            return conv.forward(x);
        };
        let weight = normalized_weight(conv.weight.val(), &spectral.conv_u[index]);
        // D's convolutions pad explicitly (the stride-2 ones) or not at all (the last).
        let (top, left, bottom, right) = match conv.padding {
            PaddingConfig2d::Explicit(top, left, bottom, right) => (top, left, bottom, right),
            _ => (0, 0, 0, 0),
        };
        let options = ConvOptions::new_with_padding(
            conv.stride,
            [(top, bottom), (left, right)],
            conv.dilation,
            conv.groups,
        );
        conv2d(x, weight, conv.bias.as_ref().map(|b| b.val()), options)
    }

    /// One power iteration of each spectral-norm vector on the current
    /// weights (once per training step, before the D step); nothing without
    /// spectral normalisation.
    pub fn iterate_spectral_norms(&mut self) {
        let weights: Vec<Tensor<4>> = self.blocks.iter().map(|b| b.conv.weight.val()).collect();
        if let Some(spectral) = &mut self.spectral {
            spectral.iterate(&weights);
        }
    }
}

/// Keeps the minibatch standard deviation away from sqrt(0) (ProGAN's constant).
pub const SPREAD_EPS: f32 = 1e-8;

/// `features` [B, C, H, W] with one more plane holding the batch's spread:
/// the mean over every feature of its standard deviation across the batch
/// (biased, + [`SPREAD_EPS`] under the root). A generator that writes one
/// digit for many noises gives a batch with little spread, which D can see.
pub fn with_spread_plane(features: Tensor<4>) -> Tensor<4> {
    let [batch, _, height, width] = features.dims();
    let centred = features.clone() - features.clone().mean_dim(0);
    let spread = centred
        .powi_scalar(2)
        .mean_dim(0)
        .add_scalar(SPREAD_EPS)
        .sqrt()
        .mean()
        .reshape([1, 1, 1, 1])
        .expand([batch, 1, height, width]);
    Tensor::cat(vec![features, spread], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::inference_device;
    use crate::model::weights::{export, import};
    use crate::model::{matrix, one_hot};

    #[test]
    fn projection_discriminator_drops_the_planes_and_uses_the_class() {
        let device = inference_device();
        let d = DiscriminatorConfig::new()
            .with_conditioning(Some(Conditioning::Projection))
            .init_seeded(&device, 3);
        let w = export(&d);
        assert_eq!(
            w["conv1.weight"].shape,
            vec![128, 1, 5, 5],
            "no label planes"
        );
        assert_eq!(w["embed.weight"].shape, vec![10, 256]);
        let images = matrix(
            (0..2 * 784).map(|i| (i as f32 * 0.01).sin()).collect(),
            2,
            784,
            &device,
        )
        .reshape([2, 1, 28, 28]);
        let as_class = |c: u8| {
            d.forward(images.clone(), one_hot(&[c, c], 10, &device))
                .logits
                .into_data()
                .try_into_vec::<f32>()
                .unwrap()
        };
        assert_eq!(as_class(1).len(), 2);
        assert_ne!(as_class(1), as_class(7), "the class changes the verdict");
        // A planes discriminator's weights do not load into a projection one.
        let planes = DiscriminatorConfig::new().init(&device);
        assert!(import(planes, &w).is_err());
    }

    #[test]
    fn configs_without_conditioning_read_as_planes() {
        let mut json = serde_json::to_value(DiscriminatorConfig::new()).unwrap();
        json.as_object_mut().unwrap().remove("conditioning");
        json.as_object_mut().unwrap().remove("minibatch_std");
        json.as_object_mut().unwrap().remove("spectral_norm");
        json.as_object_mut().unwrap().remove("batch_norm");
        let old = json.to_string();
        assert!(
            !old.contains("conditioning") && old.contains("num_classes"),
            "{old}"
        );
        let mut json: serde_json::Value = serde_json::from_str(&old).unwrap();
        super::super::upgrade_json(&mut json, Some("discriminator"));
        let back: DiscriminatorConfig = serde_json::from_value(json).unwrap();
        assert_eq!((back.conditioning, back.minibatch_std), (None, false));
        assert_eq!((back.spectral_norm, back.batch_norm), (false, true));
        // 0.1.0 wrote null for the original's choices.
        let mut nulls = serde_json::to_value(DiscriminatorConfig::new()).unwrap();
        for option in ["minibatch_std", "spectral_norm", "batch_norm"] {
            nulls[option] = serde_json::Value::Null;
        }
        super::super::upgrade_json(&mut nulls, Some("discriminator"));
        let back: DiscriminatorConfig = serde_json::from_value(nulls).unwrap();
        assert_eq!(
            (back.minibatch_std, back.spectral_norm, back.batch_norm),
            (false, false, true)
        );
    }
}
