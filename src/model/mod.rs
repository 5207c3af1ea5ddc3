//! Models: the conditional generator and discriminator, their
//! initialisation, and the named host view of their weights.

pub mod discriminator;
pub mod generator;
pub mod init;
pub mod net;
pub mod spectral;
pub mod weights;

use burn::config::Config;
use burn::tensor::{Device, Tensor, TensorData};

pub use discriminator::{Discriminator, DiscriminatorConfig, DiscriminatorOutput};
pub use generator::{Generator, GeneratorConfig};

pub use crate::arch::MAX_CLASSES;
/// The most channels a network's widest layer may have.
pub const MAX_CHANNELS: usize = 4096;

/// Both networks' hyper-parameters, as stored in a run's `config.json`.
#[derive(Config, Debug)]
pub struct GanConfig {
    /// G's sizes.
    pub generator: GeneratorConfig,
    /// D's sizes and options.
    pub discriminator: DiscriminatorConfig,
}

impl GanConfig {
    /// The original post's architecture (G 256 / D 128 channels) for
    /// `num_classes` classes, with or without the AC-GAN head.
    pub fn original(num_classes: usize, aux_classifier: bool) -> Self {
        GanConfig::new(
            GeneratorConfig::new().with_num_classes(num_classes),
            DiscriminatorConfig::new()
                .with_num_classes(num_classes)
                .with_aux_classifier(aux_classifier),
        )
    }
}

/// A network config of an earlier layout in today's: 0.1.0's options were
/// `Option<bool>`, written as `null` (or left out, before the option
/// existed) for the original's choice (off for class norm, minibatch std
/// and spectral norm; on for D's batch norm); they are plain bools now; and
/// configs before layout 3 had no image size (28). `json` is a GanConfig, or
/// one network's config (`part`: "generator" or "discriminator").
pub fn upgrade_json(json: &mut serde_json::Value, part: Option<&str>) {
    use serde_json::Value;
    let defaults: [(&str, &str, Value); 6] = [
        ("generator", "class_norm", Value::Bool(false)),
        ("generator", "image_size", Value::from(28)),
        ("discriminator", "minibatch_std", Value::Bool(false)),
        ("discriminator", "spectral_norm", Value::Bool(false)),
        ("discriminator", "batch_norm", Value::Bool(true)),
        ("discriminator", "image_size", Value::from(28)),
    ];
    for (network, option, default) in defaults {
        let config = match part {
            None => json.get_mut(network),
            Some(p) if p == network => Some(&mut *json),
            Some(_) => None,
        };
        if let Some(config) = config.and_then(|c| c.as_object_mut()) {
            let value = config.entry(option).or_insert(Value::Null);
            if value.is_null() {
                *value = default;
            }
        }
    }
}

impl GanConfig {
    /// Bounds every size before anything is allocated from it (a config.json
    /// or a weights file's header may say anything).
    pub fn validate(&self) -> anyhow::Result<()> {
        self.generator.validate()?;
        let d = &self.discriminator;
        for (field, value, range) in [
            ("discriminator.num_classes", d.num_classes, 1..=MAX_CLASSES),
            (
                "discriminator.base_channels",
                d.base_channels,
                1..=MAX_CHANNELS,
            ),
            ("discriminator.image_channels", d.image_channels, 1..=4),
        ] {
            anyhow::ensure!(
                range.contains(&value),
                "{field} must be in {range:?} (got {value})"
            );
        }
        let g = &self.generator;
        anyhow::ensure!(
            g.image() == d.image(),
            "G makes {}x{} images of {} channels but D judges {}x{} of {}",
            g.image_size,
            g.image_size,
            g.image_channels,
            d.image_size,
            d.image_size,
            d.image_channels
        );
        Ok(())
    }

    /// Builds both networks for images of `shape`.
    pub fn set_image(&mut self, shape: crate::arch::ImageShape) {
        let (g, d) = (&mut self.generator, &mut self.discriminator);
        (g.image_size, g.image_channels) = (shape.side, shape.channels);
        (d.image_size, d.image_channels) = (shape.side, shape.channels);
    }

    /// Overrides the networks' widths (`--g-channels`, `--d-channels`) where given.
    pub fn with_widths(mut self, g_channels: Option<usize>, d_channels: Option<usize>) -> Self {
        if let Some(n) = g_channels {
            self.generator.base_channels = n;
        }
        if let Some(n) = d_channels {
            self.discriminator.base_channels = n;
        }
        self
    }
}

/// One-hot rows [B, classes] for `labels` (each < `classes`).
pub fn one_hot(labels: &[u8], classes: usize, device: &Device) -> Tensor<2> {
    let values = one_hot_values(labels, classes);
    Tensor::from_data(TensorData::new(values, [labels.len(), classes]), device)
}

/// One-hot rows [B * classes] for `labels` (each < `classes`), on the host.
pub fn one_hot_values(labels: &[u8], classes: usize) -> Vec<f32> {
    let mut values = vec![0f32; labels.len() * classes];
    for (row, &label) in labels.iter().enumerate() {
        values[row * classes + label as usize] = 1.0;
    }
    values
}

/// A [rows, cols] tensor from host values.
pub fn matrix(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::inference_device;

    #[test]
    fn output_shapes_and_range() {
        let device = inference_device();
        let cfg = GanConfig::original(10, true);
        let g = cfg.generator.init(&device);
        let d = cfg.discriminator.init(&device);
        let labels: Vec<u8> = (0..4).collect();
        let z = matrix(
            (0..400).map(|i| (i as f32 * 0.37).sin() * 3.0).collect(),
            4,
            100,
            &device,
        );
        let images = g.forward(z, one_hot(&labels, 10, &device));
        assert_eq!(images.dims(), [4, 1, 28, 28]);
        let values = images.clone().into_data().try_into_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert!(
            values.iter().any(|&v| v != values[0]),
            "G's output is constant"
        );
        let out = d.forward(images, one_hot(&labels, 10, &device));
        assert_eq!(out.logits.dims(), [4]);
        assert_eq!(out.class_logits.unwrap().dims(), [4, 10]);
    }
}
