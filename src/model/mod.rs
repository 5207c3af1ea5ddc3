//! Models: the conditional generator and discriminator, their
//! initialisation, and the named host view of their weights.

pub mod discriminator;
pub mod generator;
pub mod init;
pub mod weights;

use burn::config::Config;
use burn::tensor::{Device, Tensor, TensorData};

pub use discriminator::{Discriminator, DiscriminatorConfig, DiscriminatorOutput};
pub use generator::{Generator, GeneratorConfig};

/// Both networks' hyper-parameters, as stored in a run's `config.json`.
#[derive(Config, Debug)]
pub struct GanConfig {
    pub generator: GeneratorConfig,
    pub discriminator: DiscriminatorConfig,
}

impl GanConfig {
    /// The seed architecture for `num_classes` classes, with or without the AC-GAN head.
    pub fn seed_architecture(num_classes: usize, aux_classifier: bool) -> Self {
        GanConfig::new(
            GeneratorConfig::new().with_num_classes(num_classes),
            DiscriminatorConfig::new()
                .with_num_classes(num_classes)
                .with_aux_classifier(aux_classifier),
        )
    }
}

impl GanConfig {
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
    use crate::model::weights::{export, export_names, import};

    #[test]
    fn output_shapes_and_range() {
        let device = inference_device();
        let cfg = GanConfig::seed_architecture(10, true);
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

    #[test]
    fn weights_have_pytorch_names_and_dcgan_init() {
        let device = inference_device();
        let cfg = GanConfig::seed_architecture(10, false);
        let g = cfg.generator.init_seeded(&device, 7);
        let names = export_names(&g);
        for expected in [
            "deconv1.weight",
            "deconv1.bias",
            "bn1.weight",
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "deconv3.weight",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} not in {names:?}"
            );
        }
        let w = export(&g);
        assert_eq!(w["deconv1.weight"].shape, vec![110, 256, 7, 7]);
        let std = |v: &[f32], m: f32| {
            (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
        };
        assert!((std(&w["deconv1.weight"].values, 0.0) - 0.02).abs() < 1e-3);
        assert!((std(&w["bn1.weight"].values, 1.0) - 0.02).abs() < 5e-3);
        assert!(w["deconv1.bias"].values.iter().all(|&b| b == 0.0));
        assert!(w["bn1.running_var"].values.iter().all(|&b| b == 1.0));
        // The same seed gives the same network; another seed does not.
        assert_eq!(export(&cfg.generator.init_seeded(&device, 7)), w);
        assert_ne!(
            export(&cfg.generator.init_seeded(&device, 8))["deconv1.weight"],
            w["deconv1.weight"]
        );
    }

    #[test]
    fn projection_discriminator_drops_the_planes_and_uses_the_class() {
        let device = inference_device();
        let d = DiscriminatorConfig::new()
            .with_conditioning(Some(discriminator::Conditioning::Projection))
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
        let old = json.to_string();
        assert!(
            !old.contains("conditioning") && old.contains("num_classes"),
            "{old}"
        );
        let back: DiscriminatorConfig = serde_json::from_str(&old).unwrap();
        assert_eq!(back.conditioning, None);
    }

    #[test]
    fn import_rejects_other_architectures() {
        let device = inference_device();
        let plain = GanConfig::seed_architecture(10, false)
            .discriminator
            .init(&device);
        let aux = GanConfig::seed_architecture(10, true)
            .discriminator
            .init(&device);
        let err = import(plain.clone(), &export(&aux))
            .unwrap_err()
            .to_string();
        assert!(err.contains("aux.weight"), "{err}");
        let err = import(aux, &export(&plain)).unwrap_err().to_string();
        assert!(
            err.contains("aux.weight") && err.contains("missing"),
            "{err}"
        );
        let g = GanConfig::seed_architecture(10, false)
            .generator
            .init(&device);
        let err = import(plain, &export(&g)).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
