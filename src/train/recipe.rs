//! Named starting points for `train --recipe`: a recipe fills in every setting
//! the command line leaves out, so `--recipe seed` reproduces the original
//! TensorFlow cDCGAN post and the default is the combination measured to learn
//! the most in a short wall-time budget
//! (docs/experiments/2026-12-03-every-recipe-intel-xeon.md).

use super::TrainConfig;
use crate::optim::AdamConfig;

/// A named recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Recipe {
    /// Quarter-width networks (G 64, D 32 channels), batch 25, Adam 4e-4 for both
    /// networks, minibatch standard deviation in D, and an exponential moving
    /// average of G's weights (0.99): the sharpest digits soonest (the best of
    /// the recipes at 2 and 5 minutes; at 10 minutes accuracy ~0.995, Frechet
    /// ~0.65, recall ~0.70: docs/experiments/2026-11-30-recipes-native-step.md).
    Fast,
    /// The fast recipe with D's convolutions spectrally normalised and D
    /// without its batch norm, class-conditional batch norm in G, a longer
    /// average of G (0.9995), 30 epochs, and digits drawn from noise 1.07x
    /// the training noise's: the most varied digits that are still right,
    /// and the best training data for a classifier, at 10 minutes (recall
    /// ~0.77-0.80 at accuracy ~0.99 and Frechet ~0.41-0.46, classification
    /// accuracy score ~0.98: docs/experiments/2026-12-02-default-varied-zen5.md),
    /// for a slower start than fast's.
    #[default]
    Varied,
    /// The original post exactly: G 256 / D 128 channels, BCE, Adam 2e-4 for both
    /// networks, constant rate, label planes, no EMA, batch 100, 20 epochs.
    Seed,
}

impl Recipe {
    /// The preset's settings for MNIST (flags then override them).
    pub fn config(self) -> TrainConfig {
        let seed = TrainConfig::default();
        match self {
            Recipe::Seed => seed,
            Recipe::Varied => {
                let mut varied = Recipe::Fast.config();
                let (g, d) = (&mut varied.model.generator, &mut varied.model.discriminator);
                d.spectral_norm = Some(true);
                d.batch_norm = Some(false);
                g.class_norm = Some(true);
                TrainConfig {
                    epochs: 30,
                    ema: Some(0.9995),
                    sample_noise_scale: 1.07,
                    ..varied
                }
            }
            Recipe::Fast => {
                let mut model = seed.model.with_widths(Some(64), Some(32));
                model.discriminator.minibatch_std = Some(true);
                TrainConfig {
                    batch_size: 25,
                    adam: AdamConfig {
                        lr: 4e-4,
                        ..seed.adam
                    },
                    ema: Some(0.99),
                    model,
                    ..seed
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_preset_is_the_original_post() {
        let c = Recipe::Seed.config();
        assert_eq!((c.batch_size, c.epochs, c.adam.lr), (100, 20, 2e-4));
        assert_eq!(
            (
                c.model.generator.base_channels,
                c.model.discriminator.base_channels
            ),
            (256, 128)
        );
        assert_eq!(c.ema, None);
        assert_eq!(c.objective, super::super::objective::Objective::default());
        assert_eq!(c.model.discriminator.conditioning, None);
        assert_eq!(c.model.discriminator.minibatch_std, None);
    }

    #[test]
    fn presets_are_valid_and_differ() {
        for preset in [Recipe::Fast, Recipe::Varied, Recipe::Seed] {
            preset.config().validate().unwrap();
        }
        let varied = Recipe::Varied.config();
        let d = &varied.model.discriminator;
        assert_eq!((d.spectral_norm, d.batch_norm), (Some(true), Some(false)));
        assert_eq!(varied.model.generator.class_norm, Some(true));
        assert_eq!(
            (varied.epochs, varied.ema, varied.sample_noise_scale),
            (30, Some(0.9995), 1.07)
        );
        let mut as_fast = varied.clone();
        as_fast.model.discriminator.spectral_norm = None;
        as_fast.model.discriminator.batch_norm = None;
        as_fast.model.generator.class_norm = None;
        as_fast.epochs = 20;
        as_fast.ema = Some(0.99);
        as_fast.sample_noise_scale = 1.0;
        assert_eq!(
            serde_json::to_string(&as_fast).unwrap(),
            serde_json::to_string(&Recipe::Fast.config()).unwrap(),
            "varied is fast but for D, G's norm, the average, the length and the noise"
        );
        let (fast, seed) = (Recipe::Fast.config(), Recipe::Seed.config());
        assert_ne!(
            serde_json::to_string(&fast).unwrap(),
            serde_json::to_string(&seed).unwrap()
        );
        assert_eq!(Recipe::default(), Recipe::Varied);
        assert_eq!(
            (fast.batch_size, fast.adam.lr, fast.ema),
            (25, 4e-4, Some(0.99))
        );
        assert_eq!(fast.model.discriminator.minibatch_std, Some(true));
    }
}
