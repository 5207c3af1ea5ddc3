//! The evaluator network: a LeNet-style CNN with batch norm that classifies
//! 28x28 digits (or garments), or the images of a folder at their shape.
//! Its verdicts give the conditional accuracy of generated samples, and its
//! 128-wide penultimate layer is the feature space for the Frechet distance
//! and precision/recall.
//!
//! conv1(C->32, k5, p2) -> BN -> ReLU -> maxpool 2 -> conv2(32->64, k5, p2)
//! -> BN -> ReLU -> maxpool 2 -> fc1 (64 x S/4 x S/4 -> 128) -> BN -> ReLU =
//! features -> fc2 (128 -> classes) = logits (C = 1, S = 28 for digits).
//!
//! The two fully connected layers are stored as convolutions (k7 and k1), so
//! every weight has PyTorch's convolution layout and name.

use std::path::Path;

use anyhow::Context;
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor, TensorData};

use crate::arch::ImageShape;
use crate::backend::inference_device;
use crate::model::weights::{export, import};
use crate::store::{self, Metadata};

/// Width of the feature layer used for distances.
pub const FEATURES: usize = 128;

/// The evaluator's shape; saved as JSON in the weights file's header.
#[derive(Config, Debug)]
pub struct ClassifierConfig {
    /// Number of classes: the width of the logits.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Channels of the images it takes (files before 2026-12-06: 1).
    #[config(default = 1)]
    pub image_channels: usize,
    /// Side of the images it takes: 28, 32 or 64 (files before 2026-12-06: 28).
    #[config(default = 28)]
    pub image_size: usize,
}

impl ClassifierConfig {
    /// The images it takes.
    pub fn image(&self) -> ImageShape {
        ImageShape {
            channels: self.image_channels,
            side: self.image_size,
        }
    }

    /// The config for classes of `image`s.
    pub fn for_images(num_classes: usize, image: ImageShape) -> Self {
        Self::new()
            .with_num_classes(num_classes)
            .with_image_channels(image.channels)
            .with_image_size(image.side)
    }
}

/// The evaluator CNN (see the module docs for the layers).
#[derive(Module, Debug)]
pub struct Classifier {
    /// Image channels -> 32, k5, padding 2, on the image (28x28 for digits).
    pub conv1: Conv2d,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm,
    /// 32 -> 64 channels, k5, padding 2, on 14x14.
    pub conv2: Conv2d,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm,
    /// Fully connected 64 x (side/4)^2 -> 128 features, stored as a
    /// convolution over the whole map (k7 for digits).
    pub fc1: Conv2d,
    /// Batch norm on the 128 features.
    pub bn3: BatchNorm,
    /// Fully connected 128 -> classes logits, stored as a k1 convolution.
    pub fc2: Conv2d,
    /// Channels of the images it takes.
    pub image_channels: usize,
    /// Side of the images it takes.
    pub image_size: usize,
}

impl ClassifierConfig {
    /// A classifier initialised from `seed` through the device's generator
    /// (burn's Kaiming-uniform defaults).
    pub fn init(&self, device: &Device, seed: u64) -> Classifier {
        device.seed(seed);
        let conv = |cin, cout, k: usize, p: usize| {
            Conv2dConfig::new([cin, cout], [k, k])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .init(device)
        };
        Classifier {
            conv1: conv(self.image_channels, 32, 5, 2),
            bn1: BatchNormConfig::new(32).init(device),
            conv2: conv(32, 64, 5, 2),
            bn2: BatchNormConfig::new(64).init(device),
            fc1: conv(64, FEATURES, self.image_size / 4, 0),
            bn3: BatchNormConfig::new(FEATURES).init(device),
            fc2: conv(FEATURES, self.num_classes, 1, 0),
            image_channels: self.image_channels,
            image_size: self.image_size,
        }
    }
}

impl Classifier {
    /// The images it takes.
    pub fn image(&self) -> ImageShape {
        ImageShape {
            channels: self.image_channels,
            side: self.image_size,
        }
    }

    /// `images`: [B, 1, 28, 28] in [-1, 1]. Returns (logits [B, classes], features [B, 128]).
    pub fn forward(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let [batch, ..] = images.dims();
        let pool = |x| max_pool2d(x, MaxPoolOptions::new([2, 2]).with_stride([2, 2]));
        let x = pool(relu(self.bn1.forward(self.conv1.forward(images))));
        let x = pool(relu(self.bn2.forward(self.conv2.forward(x))));
        let features = relu(self.bn3.forward(self.fc1.forward(x)));
        let logits = self.fc2.forward(features.clone());
        let classes = logits.dims()[1];
        (
            logits.reshape([batch, classes]),
            features.reshape([batch, FEATURES]),
        )
    }

    /// Saves weights with the config in the header.
    pub fn save(
        &self,
        path: &Path,
        config: &ClassifierConfig,
        meta: Metadata,
    ) -> anyhow::Result<()> {
        let mut meta = meta;
        meta.insert("config".into(), serde_json::to_string(config)?);
        store::save(path, &export(self), &meta)
    }

    /// Loads a classifier saved by [`Classifier::save`], for inference.
    pub fn load(path: &Path) -> anyhow::Result<(Self, Metadata)> {
        let (tensors, meta) = store::load(path)?;
        let mut config: serde_json::Value = meta
            .get("config")
            .map(|c| serde_json::from_str(c))
            .transpose()?
            .with_context(|| format!("{}: no classifier config in the header", path.display()))?;
        // Evaluators from before colour took 28x28 grey images.
        if let Some(fields) = config.as_object_mut() {
            fields.entry("image_channels").or_insert(1.into());
            fields.entry("image_size").or_insert(28.into());
        }
        let config: ClassifierConfig = serde_json::from_value(config)
            .with_context(|| format!("{}: not a cdcgan evaluator's config", path.display()))?;
        crate::arch::ImageShape::new(config.image_channels, config.image_size)
            .with_context(|| format!("{}: not a cdcgan evaluator's config", path.display()))?;
        let model = import(config.init(&inference_device(), 0), &tensors)
            .with_context(|| format!("{}: not a cdcgan evaluator", path.display()))?;
        Ok((model, meta))
    }
}

/// Images [`classify`] runs at once.
pub const BATCH: usize = 1000;

/// Image bytes of `shape` (channel planes) as a [B, C, S, S] tensor in [-1, 1].
pub fn images_tensor(images: &[u8], shape: ImageShape, device: &Device) -> Tensor<4> {
    let n = images.len() / shape.len();
    let values: Vec<f32> = images.iter().map(|&p| p as f32 / 127.5 - 1.0).collect();
    let (c, side) = (shape.channels, shape.side);
    Tensor::from_data(TensorData::new(values, [n, c, side, side]), device)
}

/// Runs the classifier in inference mode over many images: (logits, features) as host rows.
pub fn classify(model: &Classifier, images: &[u8]) -> (Vec<f32>, Vec<f32>) {
    let device = inference_device();
    let model = model.valid();
    let (mut logits, mut features) = (Vec::new(), Vec::new());
    let shape = model.image();
    for chunk in images.chunks(BATCH * shape.len()) {
        let (l, f) = model.forward(images_tensor(chunk, shape, &device));
        logits.extend(l.into_data().try_into_vec::<f32>().expect("f32"));
        features.extend(f.into_data().try_into_vec::<f32>().expect("f32"));
    }
    (logits, features)
}
