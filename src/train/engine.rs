//! The engine: which training step runs. The native step
//! ([`crate::native::NativeGan`]) where it applies (on the CPU, for the
//! architectures it covers), burn's autodiff step ([`train_step`])
//! elsewhere; the trainer and the benchmark drive both through [`Engine`].

use anyhow::Context;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;

use super::config::TrainConfig;
use super::ema::Ema;
use super::step::{Conditioned, GanState, train_step};
use crate::backend::on_cpu;
use crate::data::Dataset;
use crate::model::init::normal_values;
use crate::model::weights::{export, import};
use crate::model::{GanConfig, one_hot, one_hot_values};
use crate::native::choice::Choices;
use crate::native::{NativeGan, Precision, StepInput, unsupported};
use crate::optim::augment::StepDraws;
use crate::optim::{Adam, Balance, FakeLabels, Objective, StepStats};
use crate::rng::{Purpose, derived_seed, stream};

/// The networks and optimizers a run starts from, before any checkpoint.
pub fn initial_state(config: &TrainConfig, device: &Device) -> GanState {
    let model = &config.model;
    GanState {
        generator: model
            .generator
            .init_seeded(device, derived_seed(config.seed, Purpose::Init, 0)),
        discriminator: model
            .discriminator
            .init_seeded(device, derived_seed(config.seed, Purpose::Init, 1)),
        adam_g: Adam::new(config.adam_g()),
        adam_d: Adam::new(config.adam_d()),
        ema: config.ema.map(Ema::new),
        balance: Balance::start(&config.objective),
    }
}

/// Why a run takes burn's step when `--engine burn` asks for it.
pub const BURN_ASKED: &str = "--engine burn was asked for";

/// Refuses bf16 products on burn's step, which has none (`why`: why the
/// run takes burn's step): the one place this is refused, before anything
/// is written (`train`, `bench`) or when the engine is chosen.
pub fn refuse_bf16_on_burn(precision: Precision, why: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        precision != Precision::Bf16,
        "--precision bf16 sets the native step's products, which burn's step does not run, \
         and this run takes burn's ({why}): use --precision fp32"
    );
    Ok(())
}

/// Which step trains the networks.
#[derive(Debug, Clone)]
pub enum Engine {
    /// Our own CPU kernels. They own the weights while they run: burn's
    /// modules in the state are brought up to date by [`Engine::sync`]
    /// before anything reads them.
    Native(Box<NativeGan>),
    /// burn's autodiff step on this device: the reference the native step
    /// is checked against.
    Burn(Device),
}

impl Engine {
    /// The native step where it applies (on the CPU, unless `burn`),
    /// burn's otherwise; says once why it falls back. bf16 `precision` runs in
    /// the native step only.
    pub fn choose(
        state: &GanState,
        model: &GanConfig,
        precision: Precision,
        burn: bool,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let burn_why = if burn {
            Some(BURN_ASKED)
        } else if !on_cpu() {
            Some("the device is not the CPU")
        } else {
            unsupported(model)
        };
        if let Some(why) = burn_why {
            refuse_bf16_on_burn(precision, why)?;
            if precision == Precision::Auto {
                tracing::info!("--precision auto: burn's step runs its products in fp32");
            }
            // On the CPU and not asked for: the architecture is why.
            if !burn && on_cpu() {
                tracing::info!(
                    "training with burn's autodiff step: the native step does not cover {why}"
                );
            }
            return Ok(Engine::Burn(device.clone()));
        }
        let native = NativeGan::new(
            export(&state.generator),
            export(&state.discriminator),
            model,
        )?
        .in_precision(precision)?;
        Ok(Engine::Native(Box::new(native)))
    }

    /// The engine `config` trains `state` with ([`Engine::choose`]); under
    /// `--precision auto`, with its products' arithmetic chosen on `first`
    /// (the run's first batch) and the noise of `step`, and those choices.
    pub fn for_run(
        state: &GanState,
        config: &TrainConfig,
        first: &HostBatch,
        (classes, step): (usize, u64),
        burn: bool,
        device: &Device,
    ) -> anyhow::Result<(Self, Option<Choices>)> {
        let engine = Engine::choose(state, &config.model, config.precision, burn, device)?;
        let noise = HostBatch::noise(config, classes, step, &first.labels);
        let choices = engine.calibrate(state, first, &noise, classes, &config.objective);
        Ok((engine, choices))
    }

    /// "native" or "burn" (as `--engine` names them).
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Native(_) => "native",
            Engine::Burn(_) => "burn",
        }
    }

    /// One iteration on host batches of real images and noise, every image
    /// D sees changed by `draws` when given.
    pub fn step(
        &mut self,
        state: &mut GanState,
        (real, noise): (&HostBatch, &HostBatch),
        draws: Option<&StepDraws>,
        classes: usize,
        loss: &Objective,
    ) -> StepStats {
        match self {
            Engine::Native(gan) => {
                native_input(real, noise, (draws, &state.balance), classes, |input| {
                    gan.step(&mut state.adam_g, &mut state.adam_d, input, loss)
                })
            }
            Engine::Burn(device) => {
                let real = real.to_device(classes, device);
                let noise = noise.to_device(classes, device);
                train_step(state, real, noise, draws, loss)
            }
        }
    }

    /// One training iteration as `train` runs it, on the real images
    /// `real` at `at`: the learning rates of that point of the run (the
    /// schedule), D's and G's steps on the iteration's noise, G's moving
    /// average, then the divergence guard. `bench` and the library example
    /// run this same iteration.
    pub fn iteration(
        &mut self,
        state: &mut GanState,
        config: &TrainConfig,
        real: &HostBatch,
        classes: usize,
        at: At,
    ) -> Result<StepStats, Diverged> {
        let factor = config.objective.lr_schedule.factor(at.done);
        state.adam_g.config.lr = config.adam_g().lr * factor;
        state.adam_d.config.lr = config.adam_d().lr * factor;
        let noise = HostBatch::noise(config, classes, at.step, &real.labels);
        let side = config.model.discriminator.image().side;
        let rows = real.labels.len();
        let objective = &config.objective;
        let p = state.balance.augment_p;
        let draws = (objective.augment).draws(config.seed, at.step, (rows, side), p);
        let stats = self.step(state, (real, &noise), draws.as_ref(), classes, objective);
        self.update_ema(state);
        state.balance.update(objective, &stats, at.step + 1, rows);
        Diverged::check(&stats)?;
        Ok(stats)
    }

    /// Under `--precision auto`: one step on copies of `state` to record the
    /// step's products and choose each one's arithmetic (see
    /// [`crate::native::choice`]); `None` otherwise.
    pub fn calibrate(
        &self,
        state: &GanState,
        real: &HostBatch,
        noise: &HostBatch,
        classes: usize,
        loss: &Objective,
    ) -> Option<Choices> {
        let Engine::Native(gan) = self else {
            return None;
        };
        native_input(real, noise, (None, &state.balance), classes, |input| {
            gan.calibrate(&state.adam_g, &state.adam_d, input, loss)
        })
    }

    /// Moves G's moving average one step towards the live generator.
    pub fn update_ema(&self, state: &mut GanState) {
        let Some(ema) = &mut state.ema else { return };
        match self {
            Engine::Native(gan) => ema.update_tensors(gan.generator()),
            Engine::Burn(_) => ema.update(&state.generator),
        }
    }

    /// Writes the trained weights and running statistics into the framework
    /// modules of `state` (for checkpoints, sampling, evaluation).
    pub fn sync(&self, state: &mut GanState) -> anyhow::Result<()> {
        let Engine::Native(gan) = self else {
            return Ok(());
        };
        state.generator =
            import(state.generator.clone(), gan.generator()).context("native step -> generator")?;
        state.discriminator = import(state.discriminator.clone(), gan.discriminator())
            .context("native step -> discriminator")?;
        Ok(())
    }
}

/// Where an iteration falls in the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct At {
    /// Steps done before it (its noise is drawn from this index).
    pub step: u64,
    /// The share of the run done, 0 to 1, by steps or time: what the
    /// learning-rate schedule follows.
    pub done: f64,
}

/// A training iteration whose loss or D output is not finite.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{what} is {value}")]
pub struct Diverged {
    /// Which figure.
    pub what: &'static str,
    /// Its value (NaN or infinite).
    pub value: f32,
}

impl Diverged {
    /// `Err` naming the first figure of `stats` that is not finite.
    pub fn check(stats: &StepStats) -> Result<(), Diverged> {
        match stats.non_finite() {
            Some((what, value)) => Err(Diverged { what, value }),
            None => Ok(()),
        }
    }
}

/// The native step's input for host batches of real images and noise,
/// with the step's draws and the regularisers' state.
fn native_input<R>(
    real: &HostBatch,
    noise: &HostBatch,
    (draws, balance): (Option<&StepDraws>, &Balance),
    classes: usize,
    work: impl FnOnce(StepInput) -> R,
) -> R {
    let (real_labels, fake_labels) = (real.one_hot(classes), noise.one_hot(classes));
    work(StepInput {
        real: &real.x,
        real_labels: &real_labels,
        z: &noise.x,
        fake_labels: &fake_labels,
        draws,
        anchors: balance.anchors,
    })
}

/// A batch's values on the host: images or noise, and the class of each row.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// The rows back to back: pixels in [-1, 1], or N(0, 1) noise.
    pub x: Vec<f32>,
    /// The class of each row (real, or asked of G for noise).
    pub labels: Vec<u8>,
    /// The shape of one row: `[channels, height, width]` for images, `[latent]`
    /// for noise.
    pub row_shape: Vec<usize>,
}

impl HostBatch {
    /// The images at `indices`, scaled to [-1, 1].
    pub fn real(data: &Dataset, indices: &[usize]) -> Self {
        let mut x = Vec::with_capacity(indices.len() * data.shape.len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend(data.image(i).iter().map(|&p| p as f32 / 127.5 - 1.0));
            labels.push(data.labels[i]);
        }
        let row_shape = vec![data.shape.channels, data.shape.side, data.shape.side];
        Self {
            x,
            labels,
            row_shape,
        }
    }

    /// The noise and fake classes of `step` (the same draws on every path),
    /// beside a real batch of classes `real` (`--fake-labels data` asks G
    /// for those).
    pub fn noise(config: &TrainConfig, classes: usize, step: u64, real: &[u8]) -> Self {
        let mut rng = stream(config.seed, Purpose::Noise, step);
        let latent = config.model.generator.latent_dim;
        let x = normal_values(&mut rng, config.batch_size * latent, 0.0, 1.0);
        let mut labels: Vec<u8> = match config.objective.fake_labels {
            FakeLabels::Uniform => (0..config.batch_size)
                .map(|_| rng.random_range(0..classes) as u8)
                .collect(),
            FakeLabels::Data => real.to_vec(),
        };
        if config.objective.mode_seeking > 0.0 {
            // The mode-seeking term pairs row i with row i + B/2: same class.
            let half = labels.len() / 2;
            labels.copy_within(..half, half);
        }
        Self {
            x,
            labels,
            row_shape: vec![latent],
        }
    }

    /// One-hot rows of the labels.
    pub fn one_hot(&self, classes: usize) -> Vec<f32> {
        one_hot_values(&self.labels, classes)
    }

    /// The batch as tensors on `device`, with one-hot labels.
    pub fn to_device<const D: usize>(&self, classes: usize, device: &Device) -> Conditioned<D> {
        let mut shape = vec![self.labels.len()];
        shape.extend_from_slice(&self.row_shape);
        Conditioned {
            labels: one_hot(&self.labels, classes, device),
            x: Tensor::from_data(TensorData::new(self.x.clone(), shape), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::training_device;
    use crate::model::discriminator::Conditioning;
    use crate::model::net::Layer;
    use crate::model::weights::{NamedTensors, export};
    use crate::model::{GanConfig, Generator};
    use crate::optim::{Adam, AdamConfig, Augment, GanLoss};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Adam with betas 0 and a huge epsilon moves each parameter by
    /// `lr * g / (|g| + eps)`, i.e. by `-g` when lr = eps: one step then
    /// exposes each gradient as the parameter's change.
    fn gradient_revealing_adam() -> Adam {
        Adam::new(AdamConfig {
            lr: 1e6,
            beta1: 0.0,
            beta2: 0.0,
            eps: 1e6,
        })
    }

    fn compare(objective: Objective) {
        compare_on(objective, small_model());
    }

    fn small_model() -> GanConfig {
        GanConfig::original(10, false).with_widths(Some(16), Some(8))
    }

    fn compare_on(objective: Objective, model: GanConfig) {
        compare_in(objective, model, Precision::Fp32);
    }

    /// One native step in `precision` against burn's fp32 autodiff step:
    /// losses and every weight's change (its gradient, through
    /// [`gradient_revealing_adam`]) within the precision's tolerance, relative
    /// to the largest. Returns the native step's weight changes.
    fn compare_in(objective: Objective, model: GanConfig, precision: Precision) -> Vec<Vec<f32>> {
        // The losses of the 32 px networks differ by 1.2e-5 in fp32; bf16
        // operands carry 8 significant bits (relative rounding 2^-9).
        let loss_tolerance = match precision {
            Precision::Fp32 => 2e-5,
            Precision::Bf16 | Precision::Auto => 1e-2,
        };
        let mut changes = Vec::new();
        let device = training_device();
        let fresh = || GanState {
            generator: with_random_class_norm(model.generator.init_seeded(&device, 1)),
            discriminator: model.discriminator.init_seeded(&device, 2),
            adam_g: gradient_revealing_adam(),
            adam_d: gradient_revealing_adam(),
            ema: None,
            // Anchors away from zero, so LeCam's term pulls both ways.
            balance: Balance {
                anchors: [0.4, -0.3],
                ..Balance::start(&objective)
            },
        };
        let batch = 7;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let image = model.generator.image();
        let real: Vec<f32> = (0..batch * image.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let z: Vec<f32> = (0..batch * 100)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let real_batch = HostBatch {
            x: real,
            labels: (0..batch).map(|i| (i * 3 % 10) as u8).collect(),
            row_shape: vec![image.channels, image.side, image.side],
        };
        let noise = HostBatch {
            x: z,
            labels: (0..batch).map(|i| (i * 7 % 10) as u8).collect(),
            row_shape: vec![100],
        };

        let before = fresh();
        let g0 = export(&before.generator);
        let d0 = export(&before.discriminator);

        let draws = objective.augment.draws(3, 0, (batch, image.side), 0.8);
        let mut reference = fresh();
        let expected = Engine::Burn(device.clone()).step(
            &mut reference,
            (&real_batch, &noise),
            draws.as_ref(),
            10,
            &objective,
        );

        let mut state = fresh();
        let mut native = Engine::choose(&state, &model, precision, false, &device).unwrap();
        assert_eq!(native.name(), "native");
        let got = native.step(
            &mut state,
            (&real_batch, &noise),
            draws.as_ref(),
            10,
            &objective,
        );
        for (a, b) in [
            (expected.d_loss, got.d_loss),
            (expected.g_loss, got.g_loss),
            (expected.d_real, got.d_real),
            (expected.d_fake, got.d_fake),
            (expected.real_logit, got.real_logit),
            (expected.fake_logit, got.fake_logit),
            (expected.real_sign, got.real_sign),
        ] {
            assert!(
                (a - b).abs() < loss_tolerance * a.abs().max(1.0),
                "{expected:?} vs {got:?}"
            );
        }
        native.sync(&mut state).unwrap();
        let roles = Roles::of(&model);
        for (roles, (start, want, have)) in roles.iter().zip([
            (&g0, export(&reference.generator), export(&state.generator)),
            (
                &d0,
                export(&reference.discriminator),
                export(&state.discriminator),
            ),
        ]) {
            for name in want.keys() {
                let tensors = [
                    &start[name].values[..],
                    &want[name].values,
                    &have[name].values,
                ];
                if let Some(change) = roles.check(name, tensors, (start, &want), precision) {
                    changes.push(change);
                }
            }
        }
        changes
    }

    /// The tensors the parity check treats apart, named by the networks'
    /// description: running statistics (compared as values), biases right
    /// before a batch norm (their exact gradient is zero, so both sides are
    /// rounding noise) and, in bf16, D's tensors reached before any
    /// batch-norm remainder (its last layer, its first norm's scale).
    struct Roles {
        running: Vec<String>,
        before_norm: Vec<String>,
        direct: Vec<String>,
    }

    impl Roles {
        /// G's and D's, each by its own description (their norms share names).
        fn of(model: &GanConfig) -> [Self; 2] {
            let (g, d) = (model.generator.net(), model.discriminator.net());
            let mut direct: Vec<String> = d
                .layers
                .last()
                .iter()
                .flat_map(|l| [format!("{}.weight", l.name), format!("{}.bias", l.name)])
                .collect();
            direct.extend(
                d.layers
                    .iter()
                    .find_map(|l| Some(format!("{}.weight", l.norm.as_ref()?.name))),
            );
            [
                Self::within(&g.layers, Vec::new()),
                Self::within(&d.layers, direct),
            ]
        }

        fn within(layers: &[Layer], direct: Vec<String>) -> Self {
            let normed = || layers.iter().filter_map(|l| Some((l, l.norm.as_ref()?)));
            Self {
                running: normed()
                    .flat_map(|(_, n)| {
                        [
                            format!("{}.running_mean", n.name),
                            format!("{}.running_var", n.name),
                        ]
                    })
                    .collect(),
                before_norm: normed().map(|(l, _)| format!("{}.bias", l.name)).collect(),
                direct,
            }
        }

        /// Checks tensor `name` ([start, burn's, native] values) within
        /// `precision`'s tolerance; the native change (or value), unless
        /// it is rounding noise.
        fn check(
            &self,
            name: &str,
            [start, want, have]: [&[f32]; 3],
            (starts, wanted): (&NamedTensors, &NamedTensors),
            precision: Precision,
        ) -> Option<Vec<f32>> {
            // fp32: 1.5e-4 at the default's widths (longer sums than the
            // small model's).
            let tolerance = match precision {
                Precision::Fp32 => 2e-4,
                Precision::Bf16 | Precision::Auto => 1e-2,
            };
            let is = |names: &[String]| names.iter().any(|n| n == name);
            // Parameters: compare the changes (the gradients); running
            // statistics: compare the values.
            let delta = |v: &[f32]| -> Vec<f32> {
                match is(&self.running) {
                    true => v.to_vec(),
                    false => v.iter().zip(start).map(|(x, y)| x - y).collect(),
                }
            };
            let (w, h) = (delta(want), delta(have));
            let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = w
                .iter()
                .zip(&h)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            if is(&self.before_norm) {
                let weight = name.replace("bias", "weight");
                let weight_scale = wanted[&weight]
                    .values
                    .iter()
                    .zip(&starts[&weight].values)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                let noise = h.iter().chain(&w).fold(0f32, |m, v| m.max(v.abs()));
                assert!(
                    noise < 1e-3 * weight_scale,
                    "{name}: {noise} vs {weight_scale}"
                );
                return None;
            }
            if precision == Precision::Fp32 || is(&self.direct) {
                assert!(
                    err <= tolerance * scale,
                    "{name}: max error {err} against {scale}"
                );
            } else {
                // At initialisation every image's logit gradient is alike,
                // so below a batch norm the gradients are small remainders
                // of nearly equal terms: rounding moves their size, their
                // direction holds.
                let cosine = cosine(&w, &h);
                assert!(cosine >= 0.95, "{name}: cosine {cosine}");
            }
            Some(h)
        }
    }

    /// `g` with its class modulation (if any) set away from its zero start,
    /// so a step exercises the modulation's forward as well as its gradients.
    fn with_random_class_norm(g: Generator) -> Generator {
        let mut tensors = export(&g);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (name, t) in tensors.iter_mut() {
            if name.contains("_class.") {
                t.values = normal_values(&mut rng, t.values.len(), 0.0, 0.3);
            }
        }
        import(g, &tensors).unwrap()
    }

    /// The cosine of the angle between two vectors.
    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
    }

    #[test]
    #[cfg_attr(cdcgan_no_bf16, ignore = "this CPU has no AVX512_BF16")]
    fn one_native_bf16_step_stays_near_burns_step() {
        crate::native::gemm::expect_bf16();
        // The default recipe's widths: its convolutions' products are large
        // enough to run in bf16.
        let model = GanConfig::original(10, false).with_widths(Some(64), Some(32));
        let bf16 = compare_in(Objective::default(), model.clone(), Precision::Bf16);
        let fp32 = compare_in(Objective::default(), model, Precision::Fp32);
        // And it did run in bf16: the changes are not fp32's.
        assert!(bf16 != fp32, "the bf16 step gave fp32's changes");
    }

    #[test]
    fn one_native_step_matches_burns_step() {
        compare(Objective::default());
    }

    #[test]
    fn one_native_step_matches_burns_step_at_32_and_64_pixels_in_colour() {
        for (size, aux) in [(32, true), (64, false)] {
            let mut model = GanConfig::original(10, aux).with_widths(Some(16), Some(8));
            let (g, d) = (&mut model.generator, &mut model.discriminator);
            (g.image_size, g.image_channels) = (size, 3);
            (d.image_size, d.image_channels) = (size, 3);
            g.class_norm = true;
            d.minibatch_std = true;
            // 32: the varied recipe's D (spectral norms, no batch norm) with
            // the head; 64: the original's batch norms.
            d.spectral_norm = aux;
            d.batch_norm = !aux;
            let objective = Objective {
                aux_weight: 0.5,
                ..Objective::default()
            };
            compare_on(objective, model);
        }
    }

    #[test]
    fn one_native_minibatch_std_step_matches_burns_step() {
        let mut model = small_model();
        model.discriminator.minibatch_std = true;
        compare_on(Objective::default(), model);
    }

    #[test]
    fn one_native_class_norm_step_matches_burns_step() {
        let mut model = small_model();
        model.generator.class_norm = true;
        compare_on(Objective::default(), model);
    }

    #[test]
    fn one_native_spectral_norm_step_matches_burns_step() {
        let mut model = small_model();
        model.discriminator.spectral_norm = true;
        model.discriminator.minibatch_std = true;
        compare_on(Objective::default(), model.clone());
        // And without D's batch norm, as spectrally normalised Ds usually are.
        model.discriminator.batch_norm = false;
        compare_on(Objective::default(), model);
    }

    #[test]
    fn one_native_aux_classifier_step_matches_burns_step() {
        let mut model = GanConfig::original(10, true).with_widths(Some(16), Some(8));
        let objective = Objective {
            aux_weight: 0.5,
            ..Objective::default()
        };
        compare_on(objective, model.clone());
        // With the spread plane (which the head does not see), and in the
        // varied recipe's D: spectral norms, no batch norm.
        model.discriminator.minibatch_std = true;
        model.discriminator.spectral_norm = true;
        model.discriminator.batch_norm = false;
        compare_on(objective, model);
    }

    #[test]
    fn one_native_projection_step_matches_burns_step() {
        // The planes and the term, D with its batch norm.
        let mut model = small_model();
        model.discriminator.conditioning = Some(Conditioning::Both);
        compare_on(Objective::default(), model.clone());
        // The term alone, in the varied recipe's D (spectral norms, no batch
        // norm). With D's batch norm and no planes, G's gradients at
        // initialisation are remainders of nearly equal terms (G's first
        // images are alike, and so are D's rows), ~1e-5: rounding decides
        // their last digits in either engine.
        model.discriminator.conditioning = Some(Conditioning::Projection);
        model.discriminator.spectral_norm = true;
        model.discriminator.batch_norm = false;
        compare_on(Objective::default(), model);
    }

    #[test]
    fn one_native_joint_batch_norm_step_matches_burns_step() {
        let joint = Objective {
            joint_batch_norm: true,
            aux_weight: 0.5,
            ..Objective::default()
        };
        compare(joint);
        // With a spread plane per batch, spectral norms and the AC-GAN head.
        let mut model = GanConfig::original(10, true).with_widths(Some(16), Some(8));
        model.discriminator.minibatch_std = true;
        model.discriminator.spectral_norm = true;
        model.generator.class_norm = true;
        let changes = compare_in(joint, model.clone(), Precision::Fp32);
        // And the joint pass is not the two batches apart.
        let apart = Objective {
            joint_batch_norm: false,
            ..joint
        };
        let apart = compare_in(apart, model, Precision::Fp32);
        assert!(changes != apart, "the joint batch norm changed nothing");
    }

    /// `--fake-labels data` asks G for the real batch's classes; uniform
    /// draws them (and leaves the noise as it was either way).
    #[test]
    fn fake_labels_follow_the_data_when_asked() {
        let mut config = TrainConfig {
            batch_size: 6,
            ..TrainConfig::default()
        };
        let real = [3u8, 3, 3, 1, 0, 3];
        let uniform = HostBatch::noise(&config, 10, 4, &real);
        config.objective.fake_labels = FakeLabels::Data;
        let data = HostBatch::noise(&config, 10, 4, &real);
        assert_eq!(data.labels, real);
        assert_ne!(uniform.labels, real);
        assert_eq!(data.x, uniform.x);
    }

    /// DiffAugment's changes to D's inputs, the batches apart and joint:
    /// the native forward and hand-written backward through them give
    /// burn's autodiff step, and they change what is learned.
    #[test]
    fn one_native_augmented_step_matches_burns_step() {
        let mut model = GanConfig::original(10, false).with_widths(Some(16), Some(8));
        model.set_image(crate::arch::ImageShape::new(3, 32).unwrap());
        let plain = Objective::default();
        let augmented = Objective {
            augment: Augment::parse("color,translation,cutout,flip").unwrap(),
            ..plain
        };
        let changes = compare_in(augmented, model.clone(), Precision::Fp32);
        assert!(changes != compare_in(plain, model.clone(), Precision::Fp32));
        // Joint, on grey digits (at 32 px in colour the gradient-revealing
        // D step saturates D's verdict: G's gradients round to zero).
        compare(Objective {
            joint_batch_norm: true,
            ..augmented
        });
    }

    #[test]
    fn one_native_lecam_step_matches_burns_step() {
        let lecam = Objective {
            lecam: 0.3,
            ..Objective::default()
        };
        compare(lecam);
        compare(Objective {
            joint_batch_norm: true,
            ..lecam
        });
    }

    #[test]
    fn one_native_mode_seeking_step_matches_burns_step() {
        compare(Objective {
            mode_seeking: 1.0,
            ..Objective::default()
        });
    }

    #[test]
    fn one_native_hinge_step_with_smoothing_matches_burns_step() {
        compare(Objective {
            loss: GanLoss::Hinge,
            ..Objective::default()
        });
        compare(Objective {
            label_smoothing: 0.1,
            ..Objective::default()
        });
    }
}
