//! An exponential moving average of the generator's weights (`--ema 0.999`).
//!
//! Averaging G's weights over the last few hundred steps smooths out the
//! oscillation of GAN training. The batch-norm running statistics are
//! averaged with the weights: copying the live generator's statistics next
//! to averaged weights gives mismatched normalisation (dim, broken digits).
//! The decay warms up as min(decay, (1 + t) / (10 + t)), so early averages
//! are not dominated by the random initialisation.

use crate::backend::inference_device;
use crate::model::weights::{NamedTensors, export, import};
use crate::model::{Generator, GeneratorConfig};
use crate::simd::multiversioned;

/// The running average of G's tensors, with its decay and update count.
#[derive(Debug, Clone, PartialEq)]
pub struct Ema {
    /// The decay per update once warmed up (`--ema`, e.g. 0.999).
    pub decay: f32,
    /// Updates so far (for the warm-up).
    pub updates: u64,
    /// The averaged tensors, under the generator's names (empty before the first update).
    pub tensors: NamedTensors,
}

impl Ema {
    /// An empty average with `decay`; the first update copies G.
    pub fn new(decay: f32) -> Self {
        Self {
            decay,
            updates: 0,
            tensors: NamedTensors::new(),
        }
    }

    /// The decay used at the next update.
    fn current_decay(&self) -> f32 {
        let t = self.updates as f32;
        self.decay.min((1.0 + t) / (10.0 + t))
    }

    /// Folds the live generator into the average.
    pub fn update(&mut self, generator: &Generator) {
        self.update_tensors(&export(generator));
    }

    /// Folds the live generator's named tensors into the average.
    pub fn update_tensors(&mut self, live: &NamedTensors) {
        let d = self.current_decay();
        self.updates += 1;
        if self.tensors.is_empty() {
            self.tensors = live.clone();
            return;
        }
        for (name, average) in self.tensors.iter_mut() {
            move_towards(&mut average.values, &live[name].values, d);
        }
    }

    /// The averaged generator, for inference.
    pub fn generator(&self, config: &GeneratorConfig) -> anyhow::Result<Generator> {
        import(config.init(&inference_device()), &self.tensors)
    }
}

multiversioned! {
/// `average = decay * average + (1 - decay) * current`, value by value.
fn move_towards(average: &mut [f32], current: &[f32], decay: f32) {
    for (a, &v) in average.iter_mut().zip(current) {
        *a = decay * *a + (1.0 - decay) * v;
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_then_the_configured_decay() {
        let mut ema = Ema::new(0.999);
        assert!((ema.current_decay() - 0.1).abs() < 1e-6);
        ema.updates = 10_000;
        assert!((ema.current_decay() - 0.999).abs() < 1e-6);
    }

    #[test]
    fn averages_towards_the_live_weights() {
        let device = inference_device();
        let config = GeneratorConfig::new();
        let (a, b) = (
            config.init_seeded(&device, 1),
            config.init_seeded(&device, 2),
        );
        let mut ema = Ema::new(0.5);
        ema.update(&a);
        assert_eq!(ema.tensors, export(&a));
        ema.updates = 100; // past the warm-up: decay 0.5
        ema.update(&b);
        let (wa, wb) = (
            &export(&a)["deconv1.weight"].values,
            &export(&b)["deconv1.weight"].values,
        );
        let avg = &ema.tensors["deconv1.weight"].values;
        assert!((avg[0] - 0.5 * (wa[0] + wb[0])).abs() < 1e-7);
        ema.generator(&config).unwrap();
    }
}
