//! Training hyper-parameters, saved as the run's `config.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};

use crate::data::DatasetKind;
use crate::data::folder::{Background, Decoding};
use crate::model::GanConfig;
use crate::native::Precision;
use crate::optim::AdamConfig;
use crate::optim::Objective;
use crate::sample::check_noise_scale;

/// Runs from before `sample_noise_scale` sample with the training noise.
fn unit_noise_scale() -> f32 {
    1.0
}

/// Everything that decides what a run learns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The data set trained on.
    pub dataset: DatasetKind,
    /// Directory of the IDX files; `None` means the data set's default place.
    pub data_dir: Option<PathBuf>,
    /// Passes over the training images.
    pub epochs: usize,
    /// Real images (and as many generated ones) per iteration.
    pub batch_size: usize,
    /// Adam for both networks (DCGAN: lr 2e-4, betas 0.5 / 0.999).
    pub adam: AdamConfig,
    /// Seeds initialisation, data order and noise.
    pub seed: u64,
    /// Train on the first N training images only.
    pub limit: Option<usize>,
    /// Stop after this many iterations in total.
    pub max_steps: Option<u64>,
    /// Stop after this much training wall time (minutes), across resumes.
    #[serde(default)]
    pub max_minutes: Option<f64>,
    /// Also checkpoint every N iterations (a checkpoint is always written each epoch).
    pub checkpoint_every: Option<u64>,
    /// Write a metrics row every N iterations.
    pub log_every: u64,
    /// Keep an exponential moving average of G's weights with this decay.
    #[serde(default)]
    pub ema: Option<f32>,
    /// Loss, label smoothing, the AC-GAN weight, per-network learning rates,
    /// schedule. Runs of 0.1.0 kept it under the key "recipe", with the
    /// AC-GAN weight at the top level as "aux_weight" ([`TrainConfig::load`]
    /// reads both).
    #[serde(default, alias = "recipe")]
    pub objective: Objective,
    /// Evaluate sample quality every N epochs (0: never).
    #[serde(default)]
    pub eval_every: usize,
    /// Samples generated for each in-training evaluation.
    #[serde(default)]
    pub eval_samples: usize,
    /// The arithmetic of the native step's products (fp32 for runs from
    /// before the setting).
    #[serde(default)]
    pub precision: Precision,
    /// The standard deviation of the noise that generate, export, eval and
    /// serve draw this run's digits with when not given `--noise-scale`, as a
    /// multiple of the training noise's (written into generator.safetensors).
    #[serde(default = "unit_noise_scale")]
    pub sample_noise_scale: f32,
    /// Both networks' architecture.
    pub model: GanConfig,
    /// The class names of an image-folder run (its sorted sub-folders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    /// The evaluator that scores the run's samples while it trains, when not
    /// the data set's own (an image folder's, from `classifier train --data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<PathBuf>,
    /// What an image-folder run composites its images' transparent pixels
    /// on (absent: white).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Background>,
    /// The cdcgan version that created the run.
    pub cdcgan_version: String,
    /// The layout of this file: [`CONFIG_VERSION`]; 0 (absent) for 0.1.0's,
    /// which [`TrainConfig::load`] upgrades as it reads.
    #[serde(default)]
    pub config_version: u32,
}

/// The layout config.json is written in: 2 since the network options are
/// plain bools and the objective holds the AC-GAN weight; 3 since each
/// network keeps its image size.
pub const CONFIG_VERSION: u32 = 3;

impl Default for TrainConfig {
    /// The original recipe's config ([`super::recipe::Recipe::Original`]).
    fn default() -> Self {
        super::recipe::Recipe::Original.config()
    }
}

impl TrainConfig {
    /// Checks every numeric setting, naming the flag and its allowed range.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            self.epochs >= 1,
            "--epochs must be at least 1 (got {})",
            self.epochs
        );
        ensure!(
            (1..=10_000).contains(&self.batch_size),
            "--batch-size must be in 1..=10000 (got {})",
            self.batch_size
        );
        let lr = self.adam.lr;
        ensure!(
            lr.is_finite() && lr > 0.0 && lr <= 1.0,
            "--lr must be in (0, 1] (got {lr})"
        );
        for (flag, beta) in [("--beta1", self.adam.beta1), ("--beta2", self.adam.beta2)] {
            ensure!(
                (0.0..1.0).contains(&beta),
                "{flag} must be in [0, 1) (got {beta})"
            );
        }
        ensure!(self.limit != Some(0), "--limit must be at least 1");
        ensure!(self.max_steps != Some(0), "--max-steps must be at least 1");
        ensure!(
            self.checkpoint_every != Some(0),
            "--checkpoint-every must be at least 1"
        );
        ensure!(self.log_every >= 1, "--log-every must be at least 1");
        if let Some(m) = self.max_minutes {
            ensure!(
                m.is_finite() && m > 0.0,
                "--max-minutes must be a positive number (got {m})"
            );
        }
        check_noise_scale(self.sample_noise_scale, "--sample-noise-scale")?;
        if let Some(d) = self.ema {
            ensure!(
                d > 0.0 && d < 1.0,
                "--ema must be in (0, 1), e.g. 0.999, or 0 for none (got {d})"
            );
        }
        self.objective.validate()?;
        ensure!(
            self.objective.mode_seeking == 0.0 || self.batch_size >= 2,
            "--mode-seeking pairs images within the batch: --batch-size must be at least 2"
        );
        ensure!(
            self.objective.mode_seeking == 0.0 || self.objective.fake_labels.is_uniform(),
            "--fake-labels data asks G for the real batch's classes, which --mode-seeking's \
             pairs would overwrite: give one or the other"
        );
        ensure!(
            !self.objective.joint_batch_norm || self.model.discriminator.batch_norm,
            "--joint-batch-norm needs D's batch norm, which this run turns off \
             (--d-batch-norm false, part of --recipe varied): add --d-batch-norm true"
        );
        self.model.validate()?;
        let (g, d) = (
            self.model.generator.base_channels,
            self.model.discriminator.base_channels,
        );
        ensure!(
            (8..=1024).contains(&g) && g % 2 == 0,
            "--g-channels must be an even number in 8..=1024 (got {g})"
        );
        ensure!(
            (4..=512).contains(&d),
            "--d-channels must be in 4..=512 (got {d})"
        );
        ensure!(
            self.eval_every == 0 || (20..=100_000).contains(&self.eval_samples),
            "--eval-samples must be in 20..=100000 (got {})",
            self.eval_samples
        );
        Ok(())
    }

    /// G's Adam settings (`--lr-g` overrides `--lr`).
    pub fn adam_g(&self) -> AdamConfig {
        AdamConfig {
            lr: self.objective.lr_g.unwrap_or(self.adam.lr),
            ..self.adam
        }
    }

    /// D's Adam settings (`--lr-d` overrides `--lr`).
    pub fn adam_d(&self) -> AdamConfig {
        AdamConfig {
            lr: self.objective.lr_d.unwrap_or(self.adam.lr),
            ..self.adam
        }
    }

    /// The class names, in label order: the folder's, or the data set's.
    pub fn classes(&self) -> Vec<String> {
        self.class_names
            .clone()
            .unwrap_or_else(|| self.dataset.class_names())
    }

    /// How an image-folder run decodes its images: to the networks' shape,
    /// on its background.
    pub fn decoding(&self) -> Decoding {
        Decoding {
            shape: self.model.generator.image(),
            background: self.background.unwrap_or_default(),
        }
    }

    /// Writes the config to `path` as pretty JSON, atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        crate::store::write_atomic(path, json.as_bytes())
    }

    /// Reads a config written by [`TrainConfig::save`] and validates it.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the run's config", path.display()))?;
        let mut config = serde_json::from_str(&text)
            .map(upgrade)
            .and_then(serde_json::from_value::<Self>)
            .with_context(|| format!("{}: not a cdcgan training config", path.display()))?;
        // Written again (a resume saves it) in today's layout.
        config.config_version = CONFIG_VERSION;
        config
            .validate()
            .with_context(|| format!("{}: invalid setting", path.display()))?;
        Ok(config)
    }
}

/// A config.json of 0.1.0 in today's layout: the AC-GAN weight, kept at
/// the top level, moves into the objective (kept as "recipe" then, read
/// through its alias), and the network options' `null`s become the bools
/// they meant ([`crate::model::upgrade_json`]).
fn upgrade(mut json: serde_json::Value) -> serde_json::Value {
    if let Some(model) = json.get_mut("model") {
        crate::model::upgrade_json(model, None);
    }
    if let Some(map) = json.as_object_mut()
        && let Some(weight) = map.remove("aux_weight")
    {
        let key = if map.contains_key("objective") {
            "objective"
        } else {
            "recipe"
        };
        if let Some(objective) = map
            .entry(key)
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
        {
            objective.entry("aux_weight").or_insert(weight);
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seed_recipe_and_round_trip() {
        let config = TrainConfig::default();
        config.validate().unwrap();
        assert_eq!((config.batch_size, config.epochs), (100, 20));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        config.save(&path).unwrap();
        let back = TrainConfig::load(&path).unwrap();
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&config).unwrap()
        );
    }

    #[test]
    fn bad_values_name_the_flag_and_range() {
        let c = TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--batch-size must be in 1..=10000")
        );
        let mut c = TrainConfig::default();
        c.adam.lr = -1.0;
        assert!(c.validate().unwrap_err().to_string().contains("--lr"));
    }

    #[test]
    fn configs_from_before_the_precision_setting_read_as_fp32() {
        let mut json = serde_json::to_value(TrainConfig {
            precision: Precision::Bf16,
            ..TrainConfig::default()
        })
        .unwrap();
        assert_eq!(json["precision"], "bf16");
        json.as_object_mut().unwrap().remove("precision");
        let old: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.precision, Precision::Fp32);
    }

    #[test]
    fn a_0_1_0_config_reads_its_recipe_key_and_top_level_aux_weight() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let mut json = serde_json::to_value(TrainConfig::default()).unwrap();
        let map = json.as_object_mut().unwrap();
        let mut objective = map.remove("objective").unwrap();
        objective.as_object_mut().unwrap().remove("aux_weight");
        map.insert("recipe".into(), objective);
        map.insert("aux_weight".into(), serde_json::json!(0.25));
        std::fs::write(&path, json.to_string()).unwrap();
        let config = TrainConfig::load(&path).unwrap();
        assert_eq!(config.objective.aux_weight, 0.25);
        config.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"objective\"") && !text.contains("\"recipe\""),
            "{text}"
        );
    }

    #[test]
    fn garbage_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{\"epochs\": \"many\"}").unwrap();
        let err = format!("{:#}", TrainConfig::load(&path).unwrap_err());
        assert!(
            err.contains("config.json") && err.contains("not a cdcgan training config"),
            "{err}"
        );
    }
}
