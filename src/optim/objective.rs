//! The objective: what the networks are trained to minimise and at which
//! rates, beyond the original post's: the adversarial loss, one-sided label
//! smoothing, the weight of the AC-GAN terms, separate learning rates for D
//! and G (the two time-scale update rule), a learning-rate schedule, the
//! mode-seeking regulariser and D's batch norm over both batches at once.
//! Each one's default is the original's behaviour, so a config without them
//! trains exactly as before. One type for the run's config.json and for
//! each training step (burn's and the native one).

use serde::{Deserialize, Serialize};

use super::{Augment, AugmentP, GanLoss};

/// How the learning rates move over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Straight down to zero at the end of the run.
    Linear,
    /// Half a cosine down to zero at the end of the run.
    Cosine,
}

impl LrSchedule {
    /// The multiplier of the base rate after `done` (0..=1) of the run.
    pub fn factor(self, done: f64) -> f64 {
        let done = done.clamp(0.0, 1.0);
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Linear => 1.0 - done,
            LrSchedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * done).cos()),
        }
    }
}

/// Which classes G is asked for in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FakeLabels {
    /// Each class equally often.
    #[default]
    Uniform,
    /// The real batch's classes: D sees each class as often generated as
    /// real, so on uneven classes the label alone does not tell it what is
    /// generated.
    Data,
}

impl FakeLabels {
    /// Whether it is the original's ([`FakeLabels::Uniform`]); config.json
    /// leaves the field out then.
    pub fn is_uniform(&self) -> bool {
        *self == FakeLabels::Uniform
    }
}

/// The objective options a run's `config.json` keeps (a resume cannot change them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Objective {
    /// The adversarial loss (`--loss`).
    pub loss: GanLoss,
    /// One-sided label smoothing: D's target for real images is `1 - s` (BCE only).
    pub label_smoothing: f32,
    /// Weight of the AC-GAN classification terms, when D has the head (`--aux-weight`).
    pub aux_weight: f32,
    /// G's learning rate, when it differs from `adam.lr`.
    pub lr_g: Option<f64>,
    /// D's learning rate, when it differs from `adam.lr`.
    pub lr_d: Option<f64>,
    /// How both learning rates move over the run (`--lr-schedule`).
    pub lr_schedule: LrSchedule,
    /// Weight of the mode-seeking term in G's loss (`--mode-seeking`; 0:
    /// none). The batch's second half then asks G for the same classes as
    /// its first half (an odd batch's last row keeps its own), and G is
    /// rewarded for making each pair differ (see [`super::loss::mode_seeking_loss`]).
    pub mode_seeking: f32,
    /// D's batch norm takes its statistics over the real and the generated
    /// batch together (`--joint-batch-norm`), in both steps: each step passes
    /// both through D at once (the spread plane, if any, stays per batch).
    pub joint_batch_norm: bool,
    /// The changes to every image D sees, in both steps (`--augment`).
    #[serde(skip_serializing_if = "Augment::is_none")]
    pub augment: Augment,
    /// The chance each of those changes is made to an image (`--augment-p`).
    #[serde(skip_serializing_if = "AugmentP::is_default")]
    pub augment_p: AugmentP,
    /// Weight of LeCam's term in D's loss (`--lecam`; 0: none): the squared
    /// distance of D's logits on real images from its moving mean on
    /// generated ones, and the reverse, which keeps D's verdicts from
    /// drifting apart on a small set (Tseng et al. 2021).
    #[serde(skip_serializing_if = "is_zero")]
    pub lecam: f32,
    /// The real batches draw each class equally often (`--even-classes`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub even_classes: bool,
    /// Which classes G is asked for (`--fake-labels`).
    #[serde(skip_serializing_if = "FakeLabels::is_uniform")]
    pub fake_labels: FakeLabels,
}

impl Default for Objective {
    /// The original post's objective.
    fn default() -> Self {
        Self {
            loss: GanLoss::Bce,
            label_smoothing: 0.0,
            aux_weight: 1.0,
            lr_g: None,
            lr_d: None,
            lr_schedule: LrSchedule::Constant,
            mode_seeking: 0.0,
            joint_batch_norm: false,
            augment: Augment::default(),
            augment_p: AugmentP::default(),
            lecam: 0.0,
            even_classes: false,
            fake_labels: FakeLabels::Uniform,
        }
    }
}

impl Objective {
    /// Checks the values, naming the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        let s = self.label_smoothing;
        anyhow::ensure!(
            (0.0..0.5).contains(&s),
            "--label-smoothing must be in [0, 0.5), e.g. 0.1 (got {s})"
        );
        anyhow::ensure!(
            s == 0.0 || self.loss == GanLoss::Bce,
            "--label-smoothing applies to --loss bce only"
        );
        anyhow::ensure!(
            self.aux_weight.is_finite() && self.aux_weight >= 0.0,
            "--aux-weight must be a finite number >= 0 (got {})",
            self.aux_weight
        );
        let m = self.mode_seeking;
        anyhow::ensure!(
            m.is_finite() && (0.0..=100.0).contains(&m),
            "--mode-seeking must be in [0, 100], e.g. 1 (got {m})"
        );
        anyhow::ensure!(
            self.lecam.is_finite() && (0.0..=100.0).contains(&self.lecam),
            "--lecam must be in [0, 100], e.g. 0.3 (got {})",
            self.lecam
        );
        anyhow::ensure!(
            self.augment_p.is_default() || self.augment.is_on(),
            "--augment-p sets the chance of the changes --augment makes, and --augment is none: \
             give --augment too (e.g. --augment color,translation,cutout)"
        );
        for (flag, lr) in [("--lr-g", self.lr_g), ("--lr-d", self.lr_d)] {
            if let Some(lr) = lr {
                anyhow::ensure!(
                    lr.is_finite() && lr > 0.0 && lr <= 1.0,
                    "{flag} must be in (0, 1] (got {lr})"
                );
            }
        }
        Ok(())
    }
}

fn is_zero(w: &f32) -> bool {
    *w == 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_start_at_one_and_end_at_zero() {
        for s in [LrSchedule::Linear, LrSchedule::Cosine] {
            assert_eq!(s.factor(0.0), 1.0);
            assert!(s.factor(1.0).abs() < 1e-12);
            assert!(s.factor(0.3) > s.factor(0.6));
            assert!(s.factor(2.0).abs() < 1e-12, "past the end stays at zero");
        }
        assert_eq!(LrSchedule::Cosine.factor(0.5), 0.5);
        assert_eq!(LrSchedule::Constant.factor(0.9), 1.0);
    }

    #[test]
    fn old_configs_read_as_the_original_recipe() {
        let r: Objective = serde_json::from_str("{}").unwrap();
        assert_eq!(r, Objective::default());
        let r: Objective = serde_json::from_str(r#"{"loss": "hinge", "lr_d": 0.0004}"#).unwrap();
        assert_eq!((r.loss, r.lr_d), (GanLoss::Hinge, Some(4e-4)));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let bad = |r: Objective| r.validate().unwrap_err().to_string();
        let smooth = |s| Objective {
            label_smoothing: s,
            ..Default::default()
        };
        assert!(bad(smooth(0.7)).contains("--label-smoothing"));
        assert!(bad(smooth(-0.1)).contains("--label-smoothing"));
        let hinge_smooth = Objective {
            loss: GanLoss::Hinge,
            ..smooth(0.1)
        };
        assert!(bad(hinge_smooth).contains("bce only"));
        let lr = Objective {
            lr_d: Some(0.0),
            ..Default::default()
        };
        assert!(bad(lr).contains("--lr-d"));
        let seeking = Objective {
            mode_seeking: -1.0,
            ..Default::default()
        };
        assert!(bad(seeking).contains("--mode-seeking"));
        let lecam = Objective {
            lecam: f32::NAN,
            ..Default::default()
        };
        assert!(bad(lecam).contains("--lecam"));
        let idle = Objective {
            augment_p: AugmentP::Adaptive,
            ..Default::default()
        };
        assert!(bad(idle).contains("give --augment too"));
        smooth(0.1).validate().unwrap();
    }
}
