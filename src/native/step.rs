//! The training step of the seed architecture with hand-written forward and
//! backward passes on the CPU: the same iteration as
//! [`super::step::train_step`] (same losses, batch statistics, running
//! statistics, Adam updates and figures), computed on channels-last host
//! buffers with the [`crate::cpu`] kernels instead of burn's autodiff.
//!
//! Why: in burn Flex the layer arithmetic (gemm) of this network is only
//! about half of a step; the rest is framework work around it (NCHW
//! scatters, a masked select per LeakyReLU, copies, per-image weight
//! packing). Here each layer is one large gemm plus one pass over memory.
//!
//! The weights stay in PyTorch layout under their PyTorch names (the same
//! named tensors checkpoints and [`Adam`] use); each step lays them out for
//! the kernels and brings the gradients back, so the optimizer state,
//! checkpoints and the moving average are shared with the framework path.
//! [`unsupported`] says which configurations it does not cover; the trainer
//! falls back to the framework step for the others.

mod discriminator;
mod generator;
mod layout;
mod losses;

use anyhow::{Context, ensure};

use super::optim::Adam;
use super::recipe::StepRecipe;
use super::step::{GanState, StepStats};
use crate::cpu::conv::TAPS;
use crate::cpu::{leaky_in_place, norm};
use crate::model::GanConfig;
use crate::model::discriminator::Conditioning;
use crate::model::weights::{HostTensor, NamedTensors, export, import};
use discriminator::Conv1Parts;
use layout::{DiscLayers, GenLayers};
use losses::{generator_loss, mean_sigmoid, recipe_loss_fake, recipe_loss_real};

/// Feature-map sides: G's first and D's last, the middle, the image.
const SMALL: usize = 7;
const MID: usize = 14;
const SIDE: usize = 28;

/// Steps whose column buffers stay below this run on a compute thread (see
/// [`CpuGan::step`]); glibc's largest mmap threshold.
const SMALL_STEP_BYTES: usize = 32 << 20;

/// Batch-norm settings of both networks (burn's defaults, which cdcgan uses).
const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// Why the compiled step cannot run a configuration, if it cannot.
pub fn unsupported(model: &GanConfig) -> Option<&'static str> {
    let (g, d) = (&model.generator, &model.discriminator);
    if d.aux_classifier {
        Some("the auxiliary classifier head")
    } else if d.conditioning.unwrap_or_default() != Conditioning::Planes {
        Some("projection conditioning")
    } else if g.image_channels != 1 || d.image_channels != 1 {
        Some("colour images")
    } else {
        None
    }
}

/// Which network a layer belongs to.
#[derive(Debug, Clone, Copy)]
enum Network {
    Generator,
    Discriminator,
}

/// Network widths.
#[derive(Debug, Clone, Copy)]
struct Dims {
    latent: usize,
    classes: usize,
    g1: usize,
    g2: usize,
    d1: usize,
    d2: usize,
}

impl Dims {
    fn inputs(&self) -> usize {
        self.latent + self.classes
    }
    fn planes(&self) -> usize {
        1 + self.classes
    }
}

/// One step's batch on the host.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// Real images, [B, 784] in [-1, 1].
    pub real: &'a [f32],
    /// Their one-hot labels, [B, classes].
    pub real_labels: &'a [f32],
    /// Noise, [B, latent].
    pub z: &'a [f32],
    /// The classes asked of G, one-hot [B, classes].
    pub fake_labels: &'a [f32],
}

/// Both networks as named host tensors (PyTorch layout), trained by
/// [`CpuGan::step`].
#[derive(Debug, Clone)]
pub struct CpuGan {
    generator: NamedTensors,
    discriminator: NamedTensors,
    dims: Dims,
}

impl CpuGan {
    /// Copies the networks of `state` (a configuration [`unsupported`] accepts).
    pub fn new(state: &GanState, model: &GanConfig) -> anyhow::Result<Self> {
        if let Some(what) = unsupported(model) {
            anyhow::bail!("the compiled training step does not support {what}");
        }
        let (g, d) = (&model.generator, &model.discriminator);
        let gan = Self {
            generator: export(&state.generator),
            discriminator: export(&state.discriminator),
            dims: Dims {
                latent: g.latent_dim,
                classes: g.num_classes,
                g1: g.base_channels,
                g2: g.base_channels / 2,
                d1: d.base_channels,
                d2: d.base_channels * 2,
            },
        };
        ensure!(
            d.num_classes == g.num_classes,
            "G and D disagree on the number of classes"
        );
        Ok(gan)
    }

    /// Writes the trained weights and running statistics back into the
    /// framework modules of `state` (for checkpoints, sampling, evaluation).
    pub fn write_into(&self, state: &mut GanState) -> anyhow::Result<()> {
        state.generator = import(state.generator.clone(), &self.generator)
            .context("compiled step -> generator")?;
        state.discriminator = import(state.discriminator.clone(), &self.discriminator)
            .context("compiled step -> discriminator")?;
        Ok(())
    }

    /// G's tensors under their PyTorch names (for the moving average).
    pub fn generator_tensors(&self) -> &NamedTensors {
        &self.generator
    }

    /// One iteration on `input`, updating both networks with their Adams.
    pub fn step(
        &mut self,
        adam_g: &mut Adam,
        adam_d: &mut Adam,
        input: StepInput,
        recipe: &StepRecipe,
    ) -> StepStats {
        let batch = input.real_labels.len() / self.dims.classes;
        let small = self.largest_buffer(batch) < SMALL_STEP_BYTES;
        let mut run = || self.step_here(adam_g, adam_d, &input, recipe);
        // Small steps (the default recipe's networks) run on a compute thread,
        // so each of their many short parallel passes is shared with a thread
        // that is already awake instead of handed over from this one: +15-20%.
        // Steps with buffers past glibc's mmap threshold stay here: allocated
        // from a compute thread's arena they were page-faulted afresh in some
        // runs (the seed network: 240 instead of 320 samples/s).
        if small {
            rayon::scope(|_| run())
        } else {
            run()
        }
    }

    /// Bytes of the largest column buffer a step of `batch` allocates.
    fn largest_buffer(&self, batch: usize) -> usize {
        let d = self.dims;
        batch * SMALL * SMALL * TAPS * d.g2.max(d.d1) * size_of::<f32>()
    }

    fn step_here(
        &mut self,
        adam_g: &mut Adam,
        adam_d: &mut Adam,
        input: &StepInput,
        recipe: &StepRecipe,
    ) -> StepStats {
        let StepInput {
            real,
            real_labels,
            z,
            fake_labels,
        } = *input;
        let dims = self.dims;
        let batch = real_labels.len() / dims.classes;
        let g = GenLayers::from_torch(&self.generator, &dims);
        let cache = self.generator_forward(&g, z, fake_labels, batch);

        // D step: real and fake passes, each backward right after its forward
        // (the two loss terms are separate sums, and only one pass's columns
        // are kept at a time).
        let d = DiscLayers::from_torch(&self.discriminator, &dims);
        let conv1 = Conv1Parts::new(&d.w1, &dims);
        let on_real = self.discriminator_forward(&d, &conv1, real, real_labels, batch);
        let (real_loss, real_grad) = recipe_loss_real(recipe, &on_real.logits);
        let (real_grads, _) = self.discriminator_backward(&d, &conv1, &on_real, &real_grad, true);
        let d_real = mean_sigmoid(&on_real.logits);
        drop(on_real);
        let on_fake = self.discriminator_forward(&d, &conv1, &cache.fake, fake_labels, batch);
        let (fake_loss, fake_grad) = recipe_loss_fake(recipe, &on_fake.logits);
        let (fake_grads, _) = self.discriminator_backward(&d, &conv1, &on_fake, &fake_grad, true);
        let d_fake = mean_sigmoid(&on_fake.logits);
        drop(on_fake);
        let d_grads = {
            let mut g = real_grads.expect("weight gradients");
            let f = fake_grads.expect("weight gradients");
            for (a, b) in [
                (&mut g.w1, &f.w1),
                (&mut g.b1, &f.b1),
                (&mut g.w2, &f.w2),
                (&mut g.b2, &f.b2),
                (&mut g.gamma2, &f.gamma2),
                (&mut g.beta2, &f.beta2),
                (&mut g.w3, &f.w3),
                (&mut g.b3, &f.b3),
            ] {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            }
            g
        };
        apply_adam(adam_d, &mut self.discriminator, d_grads.to_torch(&dims));

        // G step through the updated D, whose weights get no gradients.
        let d = DiscLayers::from_torch(&self.discriminator, &dims);
        let conv1 = Conv1Parts::new(&d.w1, &dims);
        let verdict = self.discriminator_forward(&d, &conv1, &cache.fake, fake_labels, batch);
        let (g_loss, g_grad) = generator_loss(recipe.loss, &verdict.logits);
        let (_, image_grad) = self.discriminator_backward(&d, &conv1, &verdict, &g_grad, false);
        drop(verdict);
        let g_grads = self.generator_backward(&g, cache, image_grad.expect("image gradient"));
        apply_adam(adam_g, &mut self.generator, g_grads.to_torch(&dims));

        StepStats {
            d_loss: real_loss + fake_loss,
            g_loss,
            d_real,
            d_fake,
        }
    }

    /// Training-mode batch norm `layer` of `network` on `x` ([rows,
    /// channels]) in place, burn's running-statistic update, then LeakyReLU.
    fn batch_norm_leaky(
        &mut self,
        network: Network,
        layer: &str,
        x: &mut [f32],
        gamma: &[f32],
        beta: &[f32],
    ) -> norm::BatchNormCache {
        let cache = norm::forward_train(x, gamma, beta, BN_EPS);
        let tensors = match network {
            Network::Generator => &mut self.generator,
            Network::Discriminator => &mut self.discriminator,
        };
        for (stat, batch) in [("running_mean", &cache.mean), ("running_var", &cache.var)] {
            let running = tensors
                .get_mut(&format!("{layer}.{stat}"))
                .expect("batch-norm statistics");
            norm::update_running(&mut running.values, batch, BN_MOMENTUM);
        }
        leaky_in_place(x);
        cache
    }
}

/// Runs Adam over the named gradients (one update of its step count).
fn apply_adam(adam: &mut Adam, params: &mut NamedTensors, grads: Vec<(&'static str, Vec<f32>)>) {
    adam.steps += 1;
    for (name, grad) in grads {
        let param: &mut HostTensor = params.get_mut(name).expect("parameter");
        adam.update(name, &mut param.values, &grad);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::training_device;
    use crate::model::{matrix, one_hot};
    use crate::train::optim::AdamConfig;
    use crate::train::recipe::GanLoss;
    use crate::train::step::{Conditioned, train_step};
    use burn::tensor::{Tensor, TensorData};
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

    fn compare(recipe: StepRecipe) {
        let model = GanConfig::seed_architecture(10, false).with_widths(Some(16), Some(8));
        let device = training_device();
        let fresh = || GanState {
            generator: model.generator.init_seeded(&device, 1),
            discriminator: model.discriminator.init_seeded(&device, 2),
            adam_g: gradient_revealing_adam(),
            adam_d: gradient_revealing_adam(),
            ema: None,
        };
        let batch = 6;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let real: Vec<f32> = (0..batch * 784)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let z: Vec<f32> = (0..batch * 100)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let real_labels: Vec<u8> = (0..batch).map(|i| (i * 3 % 10) as u8).collect();
        let fake_labels: Vec<u8> = (0..batch).map(|i| (i * 7 % 10) as u8).collect();
        let hot = |labels: &[u8]| one_hot(labels, 10, &device);
        let host_hot = |labels: &[u8]| hot(labels).into_data().try_into_vec::<f32>().unwrap();

        let before = fresh();
        let g0 = export(&before.generator);
        let d0 = export(&before.discriminator);

        let mut reference = fresh();
        let expected = train_step(
            &mut reference,
            Conditioned {
                x: Tensor::from_data(TensorData::new(real.clone(), [batch, 1, 28, 28]), &device),
                labels: hot(&real_labels),
            },
            Conditioned {
                x: matrix(z.clone(), batch, 100, &device),
                labels: hot(&fake_labels),
            },
            &recipe,
        );

        let mut state = fresh();
        let mut gan = CpuGan::new(&state, &model).unwrap();
        let (real_hot, fake_hot) = (host_hot(&real_labels), host_hot(&fake_labels));
        let input = StepInput {
            real: &real,
            real_labels: &real_hot,
            z: &z,
            fake_labels: &fake_hot,
        };
        let got = gan.step(&mut state.adam_g, &mut state.adam_d, input, &recipe);
        for (a, b) in [
            (expected.d_loss, got.d_loss),
            (expected.g_loss, got.g_loss),
            (expected.d_real, got.d_real),
            (expected.d_fake, got.d_fake),
        ] {
            assert!(
                (a - b).abs() < 1e-5 * a.abs().max(1.0),
                "{expected:?} vs {got:?}"
            );
        }
        gan.write_into(&mut state).unwrap();
        for (start, want, have) in [
            (&g0, export(&reference.generator), export(&state.generator)),
            (
                &d0,
                export(&reference.discriminator),
                export(&state.discriminator),
            ),
        ] {
            for (name, w) in &want {
                let h = &have[name];
                // Parameters: compare the changes (the gradients); running
                // statistics: compare the values.
                let base = if name.contains("running") {
                    None
                } else {
                    Some(&start[name].values)
                };
                let delta = |v: &[f32]| -> Vec<f32> {
                    match base {
                        Some(b) => v.iter().zip(b).map(|(x, y)| x - y).collect(),
                        None => v.to_vec(),
                    }
                };
                let (w, h) = (delta(&w.values), delta(&h.values));
                let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
                let err = w
                    .iter()
                    .zip(&h)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                if ["deconv1.bias", "deconv2.bias", "conv2.bias"].contains(&name.as_str()) {
                    // A bias right before a batch norm: its exact gradient is
                    // zero (the norm removes it), so both are rounding noise,
                    // far below the layer's weight gradient.
                    let weight = name.replace("bias", "weight");
                    let weight_scale = want[&weight]
                        .values
                        .iter()
                        .zip(&start[&weight].values)
                        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                    let noise = h.iter().chain(&w).fold(0f32, |m, v| m.max(v.abs()));
                    assert!(
                        noise < 1e-3 * weight_scale,
                        "{name}: {noise} vs {weight_scale}"
                    );
                    continue;
                }
                assert!(
                    err <= 1e-4 * scale,
                    "{name}: max error {err} against {scale}"
                );
            }
        }
    }

    #[test]
    fn one_step_matches_the_framework_step() {
        compare(StepRecipe::default());
    }

    #[test]
    fn one_hinge_step_with_smoothing_matches_the_framework_step() {
        compare(StepRecipe {
            loss: GanLoss::Hinge,
            ..StepRecipe::default()
        });
        compare(StepRecipe {
            label_smoothing: 0.1,
            ..StepRecipe::default()
        });
    }
}
