//! What the regularisers that follow D carry from step to step: the
//! adaptive augmentation's chance (ADA, Karras et al. 2020) and LeCam's
//! anchors (Tseng et al. 2021), both moved by D's verdicts after each step
//! and kept in the checkpoint, so a resumed run goes on exactly.

use serde::{Deserialize, Serialize};

use super::{AugmentP, Objective, StepStats};

/// ADA's target for E[sign D(real)]: above it D is too sure of the real
/// images (it has begun to memorise them), so the chance goes up.
pub const ADA_TARGET: f32 = 0.6;

/// Images seen over which the adaptive chance can move from 0 to 1.
pub const ADA_IMAGES: f32 = 100_000.0;

/// Steps between the adaptive chance's moves (ADA's interval).
pub const ADA_INTERVAL: u64 = 4;

/// The decay of LeCam's moving means of D's logits.
pub const LECAM_DECAY: f32 = 0.99;

/// The regularisers' state between steps.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Balance {
    /// The chance each augmentation is made to an image, in [0, 1].
    pub augment_p: f32,
    /// E[sign D(real)] summed over the steps since the chance last moved.
    pub sign_sum: f32,
    /// D's moving mean logit on real images, then on generated ones.
    pub anchors: [f32; 2],
}

impl Balance {
    /// The state a run starts from: a fixed chance at its value, the
    /// adaptive one at 0.
    pub fn start(objective: &Objective) -> Self {
        Self {
            augment_p: match objective.augment_p {
                AugmentP::Fixed(p) => p,
                AugmentP::Adaptive => 0.0,
            },
            ..Self::default()
        }
    }

    /// Moves the state after step `step` (1-based: steps done) of `batch`
    /// images that measured `stats`.
    pub fn update(&mut self, objective: &Objective, stats: &StepStats, step: u64, batch: usize) {
        if objective.lecam > 0.0 {
            let means = [stats.real_logit, stats.fake_logit];
            for (anchor, mean) in self.anchors.iter_mut().zip(means) {
                *anchor = LECAM_DECAY * *anchor + (1.0 - LECAM_DECAY) * mean;
            }
        }
        if objective.augment_p == AugmentP::Adaptive {
            self.sign_sum += stats.real_sign;
            if step.is_multiple_of(ADA_INTERVAL) {
                let sign = self.sign_sum / ADA_INTERVAL as f32;
                let speed = (ADA_INTERVAL as f32 * batch as f32) / ADA_IMAGES;
                let direction = (sign - ADA_TARGET).signum();
                self.augment_p = (self.augment_p + direction * speed).clamp(0.0, 1.0);
                self.sign_sum = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(real_sign: f32, real_logit: f32, fake_logit: f32) -> StepStats {
        StepStats {
            d_loss: 1.0,
            g_loss: 1.0,
            d_real: 0.5,
            d_fake: 0.5,
            real_logit,
            fake_logit,
            real_sign,
        }
    }

    #[test]
    fn the_adaptive_chance_rises_while_d_is_sure_and_falls_after() {
        let objective = Objective {
            augment_p: AugmentP::Adaptive,
            ..Objective::default()
        };
        let mut b = Balance::start(&objective);
        assert_eq!(b.augment_p, 0.0);
        let steps = (ADA_IMAGES / 25.0) as u64 / 2;
        for step in 1..=steps {
            b.update(&objective, &stats(0.9, 0.0, 0.0), step, 25);
        }
        assert!((b.augment_p - 0.5).abs() < 1e-3, "{}", b.augment_p);
        // Three steps of four: no move yet.
        let before = b.augment_p;
        for step in steps + 1..steps + 4 {
            b.update(&objective, &stats(-1.0, 0.0, 0.0), step, 25);
        }
        assert_eq!(b.augment_p, before);
        for step in steps + 4..steps * 4 {
            b.update(&objective, &stats(0.1, 0.0, 0.0), step, 25);
        }
        assert_eq!(b.augment_p, 0.0, "falls to 0 and stays there");
        assert_eq!(b.anchors, [0.0, 0.0], "LeCam off: its anchors stay");
    }

    #[test]
    fn lecam_s_anchors_follow_d_s_mean_logits() {
        let objective = Objective {
            lecam: 0.3,
            ..Objective::default()
        };
        let mut b = Balance::start(&objective);
        assert_eq!(b.augment_p, 1.0, "a fixed chance of 1 by default");
        for step in 1..=2000 {
            b.update(&objective, &stats(1.0, 2.0, -3.0), step, 25);
        }
        assert!((b.anchors[0] - 2.0).abs() < 1e-3 && (b.anchors[1] + 3.0).abs() < 1e-3);
        assert_eq!(b.augment_p, 1.0);
    }
}
