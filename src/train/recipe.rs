//! Named starting points for `train --recipe`: a recipe fills in every setting
//! the command line leaves out, so `--recipe original` reproduces the original
//! TensorFlow cDCGAN post and the default is the combination measured to learn
//! the most in a short wall-time budget
//! (docs/experiments/2026-12-03-every-recipe-intel-xeon.md).
//!
//! Each recipe is one complete row of [`RecipeValues`] ([`Recipe::values`]):
//! the single source of a run's config ([`Recipe::config`]), of the
//! `[default: ...]` of `train --help` ([`help_defaults`]) and of the recipe
//! table in docs/training.md ([`markdown_table`]; a test compares them).

use super::TrainConfig;
use crate::data::{DataFacts, DatasetKind};
use crate::model::GanConfig;
use crate::model::discriminator::Conditioning;
use crate::native::Precision;
use crate::optim::AdamConfig;
use crate::optim::{FakeLabels, Objective};

/// A named recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recipe {
    /// See [`Recipe::about`].
    Fast,
    /// See [`Recipe::about`].
    #[default]
    Varied,
    /// See [`Recipe::about`] (called `seed` before 0.2; the name is still read).
    Original,
}

/// Every setting in which the recipes differ: one recipe's complete row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecipeValues {
    /// How long a run is (`--epochs`, and `--eval-every` by it): it counts
    /// images seen, whatever the data set's size.
    pub length: Length,
    /// Images per step (`--batch-size`).
    pub batch_size: usize,
    /// Adam's learning rate for both networks (`--lr`).
    pub lr: f64,
    /// G's width (`--g-channels`).
    pub g_channels: usize,
    /// D's width (`--d-channels`).
    pub d_channels: usize,
    /// The decay of G's moving average, if it keeps one (`--ema`).
    pub ema: Option<f32>,
    /// D's minibatch standard deviation plane (`--minibatch-std`).
    pub minibatch_std: bool,
    /// Class-conditional batch norm in G (`--class-norm`).
    pub class_norm: bool,
    /// Spectral normalisation of D's convolutions (`--spectral-norm`).
    pub spectral_norm: bool,
    /// D's batch norm (`--d-batch-norm`).
    pub d_batch_norm: bool,
    /// How D is told the class (`--cond`).
    pub conditioning: Conditioning,
    /// The noise scale a run's digits are drawn with (`--sample-noise-scale`).
    pub sample_noise_scale: f32,
    /// Which classes G is asked for in a step (`--fake-labels`).
    pub fake_labels: FakeLabels,
}

impl Recipe {
    /// Every recipe, the default first.
    pub const ALL: [Recipe; 3] = [Recipe::Varied, Recipe::Fast, Recipe::Original];

    /// The name `--recipe` takes.
    pub fn name(self) -> &'static str {
        match self {
            Recipe::Fast => "fast",
            Recipe::Varied => "varied",
            Recipe::Original => "original",
        }
    }

    /// What the recipe is for, as `train --help` says it.
    pub fn about(self) -> &'static str {
        match self {
            Recipe::Varied => {
                "The most varied digits that are still right, and the best training data for a \
                 classifier, at 10 minutes (docs/experiments/2026-12-02-default-varied-zen5.md)"
            }
            Recipe::Fast => {
                "The sharpest digits soonest: the best at 2 and 5 minutes \
                 (docs/experiments/2026-12-03-every-recipe-intel-xeon.md)"
            }
            Recipe::Original => {
                "The original TensorFlow cDCGAN post exactly (BCE, label planes, constant rate)"
            }
        }
    }

    /// The recipe's row for the training set `data`: a value that follows
    /// the data (the image size, the number of images) is written here as
    /// a function of `data`.
    pub fn values(self, data: &DataFacts) -> RecipeValues {
        match self {
            Recipe::Varied => RecipeValues {
                length: Length::of(30, data),
                batch_size: 25,
                lr: 4e-4,
                g_channels: g_width(64, data),
                d_channels: 32,
                ema: Some(0.9995),
                minibatch_std: true,
                class_norm: true,
                spectral_norm: true,
                d_batch_norm: false,
                conditioning: conditioning_for(data),
                sample_noise_scale: 1.07,
                fake_labels: fake_labels_for(data),
            },
            Recipe::Fast => RecipeValues {
                length: Length::of(20, data),
                batch_size: 25,
                lr: 4e-4,
                g_channels: 64,
                d_channels: 32,
                ema: Some(0.99),
                minibatch_std: true,
                class_norm: false,
                spectral_norm: false,
                d_batch_norm: true,
                conditioning: Conditioning::Planes,
                sample_noise_scale: 1.0,
                fake_labels: FakeLabels::Uniform,
            },
            Recipe::Original => RecipeValues {
                length: Length::of(20, data),
                batch_size: 100,
                lr: 2e-4,
                g_channels: 256,
                d_channels: 128,
                ema: None,
                minibatch_std: false,
                class_norm: false,
                spectral_norm: false,
                d_batch_norm: true,
                conditioning: Conditioning::Planes,
                sample_noise_scale: 1.0,
                fake_labels: FakeLabels::Uniform,
            },
        }
    }

    /// The recipe's settings for MNIST (see [`Recipe::config_for`]).
    pub fn config(self) -> TrainConfig {
        self.config_for(&DataFacts::mnist())
    }

    /// The recipe's settings for the training set `data` (flags then
    /// override them): its row, networks built for the data's images and
    /// classes, and what every recipe shares (Adam's betas, BCE, a constant
    /// rate, logging), written once here.
    pub fn config_for(self, data: &DataFacts) -> TrainConfig {
        let v = self.values(data);
        let mut model = GanConfig::original(data.classes(), false)
            .with_widths(Some(v.g_channels), Some(v.d_channels));
        model.set_image(data.shape);
        let (g, d) = (&mut model.generator, &mut model.discriminator);
        g.class_norm = v.class_norm;
        d.minibatch_std = v.minibatch_std;
        d.spectral_norm = v.spectral_norm;
        d.batch_norm = v.d_batch_norm;
        // Planes are the original's (a config without the field reads so).
        d.conditioning = (v.conditioning != Conditioning::Planes).then_some(v.conditioning);
        TrainConfig {
            dataset: DatasetKind::Mnist,
            data_dir: None,
            epochs: v.length.epochs,
            batch_size: v.batch_size,
            adam: AdamConfig {
                lr: v.lr,
                ..AdamConfig::default()
            },
            seed: 0,
            limit: None,
            max_steps: None,
            max_minutes: None,
            checkpoint_every: None,
            log_every: 50,
            ema: v.ema,
            objective: Objective {
                fake_labels: v.fake_labels,
                ..Objective::default()
            },
            eval_every: v.length.eval_every,
            eval_samples: 2000,
            precision: Precision::Fp32,
            sample_noise_scale: v.sample_noise_scale,
            model,
            class_names: None,
            background: None,
            classifier: None,
            cdcgan_version: env!("CARGO_PKG_VERSION").to_string(),
            config_version: super::config::CONFIG_VERSION,
        }
    }
}

impl RecipeValues {
    /// Each value as text, by the `train` flag (its id) that overrides it.
    pub fn by_flag(&self) -> [(&'static str, String); 14] {
        let on = |b: bool| if b { "on" } else { "off" }.to_string();
        [
            (
                "epochs",
                format!(
                    "{} images seen ({} on MNIST)",
                    thousands(self.length.images_seen),
                    self.length.epochs
                ),
            ),
            (
                "eval_every",
                format!(
                    "about {EVALUATIONS} checks a run ({} on MNIST)",
                    self.length.eval_every
                ),
            ),
            ("batch_size", self.batch_size.to_string()),
            ("lr", self.lr.to_string()),
            ("g_channels", self.g_channels.to_string()),
            ("d_channels", self.d_channels.to_string()),
            ("ema", self.ema.map_or("none".into(), |d| d.to_string())),
            ("minibatch_std", on(self.minibatch_std)),
            ("class_norm", on(self.class_norm)),
            ("spectral_norm", on(self.spectral_norm)),
            ("d_batch_norm", on(self.d_batch_norm)),
            ("conditioning", flag_value(self.conditioning)),
            ("sample_noise_scale", self.sample_noise_scale.to_string()),
            ("fake_labels", flag_value(self.fake_labels)),
        ]
    }
}

/// How `varied`'s D is told the class: label planes on grey images (the
/// digits' measured best), a projection on colour ones, where the planes
/// left the class barely steering G (docs/experiments/2026-12-07-own-images-zen5.md).
fn conditioning_for(data: &DataFacts) -> Conditioning {
    match data.shape.channels {
        1 => Conditioning::Planes,
        _ => Conditioning::Projection,
    }
}

/// Which classes `varied` asks G for: the data's shares where its classes
/// are uneven (the largest over twice the smallest), so that D sees each
/// class as often generated as real; each class equally often on a near-even
/// set such as MNIST (docs/experiments/2026-12-08-class-mix-zen4.md).
fn fake_labels_for(data: &DataFacts) -> FakeLabels {
    let most = data.per_class.iter().max().copied().unwrap_or(0);
    let least = data.per_class.iter().min().copied().unwrap_or(0);
    match most > 2 * least {
        true => FakeLabels::Data,
        false => FakeLabels::Uniform,
    }
}

/// G's width for `data`'s images: `at_28` (its 28-px width), or wider
/// where the image's longer ladder of halvings would leave G's last
/// hidden map under a quarter of it: 64 at 28 and 32 px, 128 at 64 px,
/// where 8 channels before the image left the class barely steering G
/// (docs/experiments/2026-12-07-own-images-zen5.md).
fn g_width(at_28: usize, data: &DataFacts) -> usize {
    let (_, doublings) = data.shape.ladder();
    at_28.max((at_28 / 4) << doublings.saturating_sub(1))
}

/// A run's length on one data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length {
    /// Training images seen in all.
    pub images_seen: usize,
    /// The epochs that see them (`--epochs`).
    pub epochs: usize,
    /// Epochs between quality checks (`--eval-every`): about [`EVALUATIONS`] a run.
    pub eval_every: usize,
}

impl Length {
    /// As many images as `mnist_epochs` passes over MNIST's 60,000, on the
    /// training set `data` (so a small folder trains as long as MNIST does).
    pub fn of(mnist_epochs: usize, data: &DataFacts) -> Self {
        let images_seen = mnist_epochs * DataFacts::mnist().images();
        let epochs = images_seen.div_ceil(data.images().max(1)).max(1);
        Self {
            images_seen,
            epochs,
            eval_every: eval_every_for(epochs),
        }
    }
}

/// Epochs between quality checks for a run of `epochs`: about
/// [`EVALUATIONS`] checks, every epoch on a run of fewer.
pub fn eval_every_for(epochs: usize) -> usize {
    (epochs / EVALUATIONS).max(1)
}

/// In-training evaluations a run makes, about: `--eval-every` is set so
/// (30 MNIST epochs: every epoch).
pub const EVALUATIONS: usize = 30;

/// A setting's value as its flag takes it (`bce`, `projection`).
fn flag_value(value: impl serde::Serialize) -> String {
    let v = serde_json::json!(value);
    v.as_str().map_or(v.to_string(), str::to_string)
}

/// `n` with thousands separated by commas: 1,800,000.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Each setting every recipe shares, by the `train` flag (its id) that
/// overrides it, as text: read from a recipe's config, where they are set.
fn shared_by_flag() -> Vec<(&'static str, String)> {
    let c = Recipe::default().config();
    let on = |b: bool| if b { "on" } else { "off" }.to_string();
    let o = &c.objective;
    vec![
        ("beta1", c.adam.beta1.to_string()),
        ("beta2", c.adam.beta2.to_string()),
        ("seed", c.seed.to_string()),
        ("loss", flag_value(o.loss)),
        ("mode_seeking", o.mode_seeking.to_string()),
        ("aux_weight", o.aux_weight.to_string()),
        ("lr_schedule", flag_value(o.lr_schedule)),
        ("joint_batch_norm", on(o.joint_batch_norm)),
        ("augment", o.augment.name()),
        ("augment_p", o.augment_p.name()),
        ("lecam", o.lecam.to_string()),
        ("even_classes", on(o.even_classes)),
        ("eval_samples", c.eval_samples.to_string()),
        ("log_every", c.log_every.to_string()),
        ("precision", flag_value(c.precision)),
    ]
}

/// For each recipe flag (clap id), its default in every recipe, as
/// `--help` shows it: "30 varied, 20 fast and original"; then each setting
/// the recipes share.
pub fn help_defaults() -> Vec<(&'static str, String)> {
    let mut defaults = recipe_defaults();
    defaults.extend(shared_by_flag());
    defaults
}

/// [`help_defaults`] of the settings in which the recipes differ.
fn recipe_defaults() -> Vec<(&'static str, String)> {
    let rows = shown_rows().to_vec();
    (0..rows[0].len())
        .map(|column| {
            let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
            for (recipe, row) in Recipe::ALL.iter().zip(&rows) {
                let value = &row[column].1;
                match groups.iter_mut().find(|(v, _)| v == value) {
                    Some((_, names)) => names.push(recipe.name()),
                    None => groups.push((value.clone(), vec![recipe.name()])),
                }
            }
            let text = match groups.as_slice() {
                [(value, _)] => value.clone(),
                _ => groups
                    .iter()
                    .map(|(value, names)| format!("{value} {}", names.join(" and ")))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            (rows[0][column].0, text)
        })
        .collect()
}

/// Each recipe's row as `--help` and the docs show it: MNIST's values,
/// and beside one a colour set's where it differs ("planes (projection in
/// colour)").
fn shown_rows() -> [[(&'static str, String); 14]; 3] {
    let mnist = DataFacts::mnist();
    let colour = |side| DataFacts {
        shape: crate::arch::ImageShape { channels: 3, side },
        ..DataFacts::mnist()
    };
    // MNIST's 60,000 images in classes of 2,000 to 10,000.
    let uneven = DataFacts {
        per_class: [vec![2000], vec![6000; 8], vec![10_000]].concat(),
        ..DataFacts::mnist()
    };
    let variants = [
        ("in colour", colour(32)),
        ("at 64 px", colour(64)),
        ("on uneven classes", uneven),
    ];
    Recipe::ALL.map(|r| {
        let mut row = r.values(&mnist).by_flag();
        for (shown, column) in row.iter_mut().zip(0..) {
            let mut seen = vec![shown.1.clone()];
            for (where_, data) in &variants {
                let there = r.values(data).by_flag()[column].1.clone();
                if !seen.contains(&there) {
                    shown.1 = format!("{} ({there} {where_})", shown.1);
                    seen.push(there);
                }
            }
        }
        row
    })
}

/// The recipe table of docs/training.md: one row per setting, one column
/// per recipe.
pub fn markdown_table() -> String {
    let names = Recipe::ALL.map(|r| format!("`{}`", r.name()));
    let mut table = format!("| flag | {} |\n|---|---|---|---|\n", names.join(" | "));
    let rows = shown_rows();
    for column in 0..rows[0].len() {
        let flag = match rows[0][column].0 {
            "conditioning" => "cond".to_string(),
            id => id.replace('_', "-"),
        };
        let flag = format!("`--{flag}`");
        let values: Vec<&str> = rows.iter().map(|row| row[column].1.as_str()).collect();
        table.push_str(&format!("| {flag} | {} |\n", values.join(" | ")));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_recipe_is_the_original_post() {
        let c = Recipe::Original.config();
        assert_eq!((c.batch_size, c.epochs, c.adam.lr), (100, 20, 2e-4));
        assert_eq!(
            (
                c.model.generator.base_channels,
                c.model.discriminator.base_channels
            ),
            (256, 128)
        );
        assert_eq!(c.ema, None);
        assert_eq!(c.objective, Objective::default());
        assert_eq!(c.model.discriminator.conditioning, None);
        assert!(!c.model.discriminator.minibatch_std);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            serde_json::to_string(&TrainConfig::default()).unwrap(),
            "the default config is the original recipe's"
        );
    }

    #[test]
    fn presets_are_valid_and_differ() {
        for preset in Recipe::ALL {
            preset.config().validate().unwrap();
        }
        let varied = Recipe::Varied.config();
        let d = &varied.model.discriminator;
        assert_eq!((d.spectral_norm, d.batch_norm), (true, false));
        assert!(varied.model.generator.class_norm);
        assert_eq!(
            (varied.epochs, varied.ema, varied.sample_noise_scale),
            (30, Some(0.9995), 1.07)
        );
        let mut as_fast = varied.clone();
        as_fast.model.discriminator.spectral_norm = false;
        as_fast.model.discriminator.batch_norm = true;
        as_fast.model.generator.class_norm = false;
        as_fast.epochs = 20;
        as_fast.ema = Some(0.99);
        as_fast.sample_noise_scale = 1.0;
        assert_eq!(
            serde_json::to_string(&as_fast).unwrap(),
            serde_json::to_string(&Recipe::Fast.config()).unwrap(),
            "varied is fast but for D, G's norm, the average, the length and the noise"
        );
        let fast = Recipe::Fast.config();
        assert_eq!(Recipe::default(), Recipe::Varied);
        assert_eq!(
            (fast.batch_size, fast.adam.lr, fast.ema),
            (25, 4e-4, Some(0.99))
        );
        assert!(fast.model.discriminator.minibatch_std);
    }

    #[test]
    fn a_recipe_is_built_for_the_data_it_trains_on() {
        let colour = DataFacts {
            shape: crate::arch::ImageShape::new(3, 64).unwrap(),
            per_class: vec![300, 40, 85],
        };
        for recipe in Recipe::ALL {
            let c = recipe.config_for(&colour);
            assert_eq!(c.model.generator.image(), colour.shape);
            assert_eq!(c.model.discriminator.image(), colour.shape);
            assert_eq!(c.model.generator.num_classes, 3);
            c.validate().unwrap();
            assert_eq!(
                serde_json::to_string(&recipe.config_for(&DataFacts::mnist())).unwrap(),
                serde_json::to_string(&recipe.config()).unwrap()
            );
        }
    }

    /// A run's length counts images seen: a folder of 2,000 images trains
    /// as long as MNIST's 60,000 do, in 30 times the epochs, and checks its
    /// quality about as often.
    #[test]
    fn the_length_follows_the_data_set_s_size() {
        let folder = |side: usize, per_class: Vec<usize>| DataFacts {
            shape: crate::arch::ImageShape::new(3, side).unwrap(),
            per_class,
        };
        for (data, epochs, eval_every) in [
            (DataFacts::mnist(), 30, 1),
            (folder(32, vec![1000, 1000]), 900, 30),
            (folder(64, vec![1000, 1000]), 900, 30),
            (folder(32, vec![7]), 257_143, 8571),
        ] {
            let length = Recipe::Varied.values(&data).length;
            assert_eq!((length.epochs, length.eval_every), (epochs, eval_every));
            assert_eq!(length.images_seen, 1_800_000);
            let c = Recipe::Varied.config_for(&data);
            assert_eq!((c.epochs, c.eval_every), (epochs, eval_every));
        }
        assert_eq!(Recipe::Fast.values(&DataFacts::mnist()).length.epochs, 20);
    }

    /// A value that follows the data is one line of a row: `varied` tells
    /// D the class by label planes on grey images, by a projection on colour
    /// ones, at any size; the other recipes keep the planes.
    #[test]
    fn varied_asks_g_for_the_data_s_classes_where_they_are_uneven() {
        let classes = |per_class: Vec<usize>, recipe: Recipe| {
            let data = DataFacts {
                per_class,
                ..DataFacts::mnist()
            };
            recipe.config_for(&data).objective.fake_labels
        };
        assert_eq!(
            Recipe::Varied.config().objective.fake_labels,
            FakeLabels::Uniform
        );
        assert_eq!(classes(vec![100, 200], Recipe::Varied), FakeLabels::Uniform);
        // The emoji's 85 to 2,261.
        let emoji = vec![85, 159, 270, 131, 264, 2261, 169, 224, 218];
        assert_eq!(classes(emoji.clone(), Recipe::Varied), FakeLabels::Data);
        assert_eq!(classes(vec![100, 201], Recipe::Varied), FakeLabels::Data);
        assert_eq!(classes(emoji.clone(), Recipe::Fast), FakeLabels::Uniform);
        assert_eq!(classes(emoji, Recipe::Original), FakeLabels::Uniform);
    }

    #[test]
    fn varied_tells_colour_images_class_by_projection() {
        let data = |channels, side| DataFacts {
            shape: crate::arch::ImageShape::new(channels, side).unwrap(),
            per_class: vec![100; 4],
        };
        let cond = |recipe: Recipe, data: &DataFacts| {
            recipe.config_for(data).model.discriminator.conditioning
        };
        for side in [28, 32, 64] {
            assert_eq!(cond(Recipe::Varied, &data(1, side)), None, "planes");
            let colour = data(3, side);
            assert_eq!(
                cond(Recipe::Varied, &colour),
                Some(Conditioning::Projection)
            );
            assert_eq!(cond(Recipe::Fast, &colour), None);
            assert_eq!(cond(Recipe::Original, &colour), None);
            Recipe::Varied.config_for(&colour).validate().unwrap();
        }
        let defaults: std::collections::HashMap<_, _> = help_defaults().into_iter().collect();
        assert_eq!(
            defaults["conditioning"],
            "planes (projection in colour) varied, planes fast and original"
        );
    }

    /// G's width follows the image size: 64 at 28 and 32 px, 128 at 64
    /// px (`varied`; the other recipes keep theirs).
    #[test]
    fn g_s_width_follows_the_image_size() {
        let data = |channels, side| DataFacts {
            shape: crate::arch::ImageShape::new(channels, side).unwrap(),
            per_class: vec![100; 4],
        };
        let width =
            |recipe: Recipe, d: &DataFacts| recipe.config_for(d).model.generator.base_channels;
        for channels in [1, 3] {
            assert_eq!(width(Recipe::Varied, &data(channels, 28)), 64);
            assert_eq!(width(Recipe::Varied, &data(channels, 32)), 64);
            assert_eq!(width(Recipe::Varied, &data(channels, 64)), 128);
            assert_eq!(width(Recipe::Fast, &data(channels, 64)), 64);
            assert_eq!(width(Recipe::Original, &data(channels, 64)), 256);
        }
        let defaults: std::collections::HashMap<_, _> = help_defaults().into_iter().collect();
        assert_eq!(
            defaults["g_channels"],
            "64 (128 at 64 px) varied, 64 fast, 256 original"
        );
    }

    #[test]
    fn help_groups_equal_values() {
        let defaults: std::collections::HashMap<_, _> = help_defaults().into_iter().collect();
        let shared = [
            ("beta1", "0.5"),
            ("beta2", "0.999"),
            ("seed", "0"),
            ("loss", "bce"),
            ("mode_seeking", "0"),
            ("aux_weight", "1"),
            ("lr_schedule", "constant"),
            ("joint_batch_norm", "off"),
            ("augment", "none"),
            ("augment_p", "1"),
            ("lecam", "0"),
            ("even_classes", "off"),
            ("eval_samples", "2000"),
            ("log_every", "50"),
            ("precision", "fp32"),
        ];
        for (flag, text) in shared {
            assert_eq!(defaults[flag], text, "{flag}");
        }
        assert_eq!(
            defaults["epochs"],
            "1,800,000 images seen (30 on MNIST) varied, 1,200,000 images seen (20 on MNIST) \
             fast and original"
        );
        assert_eq!(defaults["batch_size"], "25 varied and fast, 100 original");
        assert_eq!(defaults["ema"], "0.9995 varied, 0.99 fast, none original");
        assert_eq!(defaults["d_batch_norm"], "off varied, on fast and original");
        assert_eq!(
            defaults["fake_labels"],
            "uniform (data on uneven classes) varied, uniform fast and original"
        );
    }

    /// docs/training.md holds the table as rendered from the rows above.
    #[test]
    fn the_docs_recipe_table_is_the_code_s() {
        let docs = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/training.md"),
        )
        .unwrap();
        let table = markdown_table();
        assert!(
            docs.contains(&table),
            "docs/training.md's recipe table differs from src/train/recipe.rs; paste:\n{table}"
        );
    }
}
