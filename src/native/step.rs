//! The training step with hand-written forward and backward passes: the
//! same iteration as burn's autodiff step (`train::step`, above this module: same
//! losses, batch statistics, running statistics, Adam updates and figures),
//! as a short list of the `generator` and `discriminator`
//! passes.
//!
//! The weights stay in PyTorch layout under their PyTorch names (the same
//! named tensors checkpoints and [`Adam`] use); each step lays them out for
//! the kernels (`ParamSet::from_torch`) and brings the gradients back, so
//! the optimizer state, checkpoints and the moving average are shared with
//! burn's path.

use anyhow::ensure;

use super::discriminator::{
    Conv1Parts, DiscCache, discriminator_backward, discriminator_forward,
    discriminator_input_backward,
};
use super::generator::{generator_backward, generator_forward};
use super::losses::{
    cross_entropy, generator_loss, loss_fake, loss_real, mean_sigmoid, mode_seeking,
};
use super::norm::BatchStats;
use super::params::{ClassNormParams, DiscParams, GenParams, ParamSet, update_running_stats};
use super::spectral::{self, SpectralNorms};
use super::{Dims, Precision, unsupported, with_precision};
use crate::arch::{FIRST_SIDE, TAPS};
use crate::model::GanConfig;
use crate::model::weights::NamedTensors;
use crate::optim::{Adam, StepLoss, StepStats};

/// Steps whose column buffers stay below this run on a compute thread (see
/// [`NativeGan::step`]); glibc's largest mmap threshold.
const SMALL_STEP_BYTES: usize = 32 << 20;

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

/// Both networks as named tensors (PyTorch layout), trained by
/// [`NativeGan::step`].
#[derive(Debug, Clone)]
pub struct NativeGan {
    generator: NamedTensors,
    discriminator: NamedTensors,
    dims: Dims,
    /// The arithmetic of the step's products.
    precision: Precision,
}

impl NativeGan {
    /// Takes both networks' tensors (of a configuration [`unsupported`] accepts).
    pub fn new(
        generator: NamedTensors,
        discriminator: NamedTensors,
        model: &GanConfig,
    ) -> anyhow::Result<Self> {
        if let Some(what) = unsupported(model) {
            anyhow::bail!("the native training step does not support {what}");
        }
        let (g, d) = (&model.generator, &model.discriminator);
        ensure!(
            d.num_classes == g.num_classes,
            "G and D disagree on the number of classes"
        );
        Ok(Self {
            generator,
            discriminator,
            dims: Dims::of(model),
            precision: Precision::Fp32,
        })
    }

    /// The same networks, their products run in `precision` (checked against
    /// this CPU).
    pub fn in_precision(self, precision: Precision) -> anyhow::Result<Self> {
        precision.check()?;
        Ok(Self { precision, ..self })
    }

    /// G's tensors under their PyTorch names.
    pub fn generator(&self) -> &NamedTensors {
        &self.generator
    }

    /// D's tensors under their PyTorch names.
    pub fn discriminator(&self) -> &NamedTensors {
        &self.discriminator
    }

    /// One iteration on `input`, updating both networks with their Adams.
    pub fn step(
        &mut self,
        adam_g: &mut Adam,
        adam_d: &mut Adam,
        input: StepInput,
        loss: &StepLoss,
    ) -> StepStats {
        let batch = input.real_labels.len() / self.dims.classes;
        let small = self.largest_buffer(batch) < SMALL_STEP_BYTES;
        let precision = self.precision;
        let mut run = || {
            with_precision(precision, || {
                self.step_here(adam_g, adam_d, &input, loss, small)
            })
        };
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
        batch * FIRST_SIDE * FIRST_SIDE * TAPS * d.g2.max(d.d1) * size_of::<f32>()
    }

    fn step_here(
        &mut self,
        adam_g: &mut Adam,
        adam_d: &mut Adam,
        input: &StepInput,
        loss: &StepLoss,
        small: bool,
    ) -> StepStats {
        let StepInput {
            real,
            real_labels,
            z,
            fake_labels,
        } = *input;
        let dims = self.dims;
        let g = GenParams::from_torch(&self.generator);
        let class = dims
            .class_norm
            .then(|| ClassNormParams::from_torch(&self.generator));
        let cache = generator_forward(
            &g,
            class.as_ref(),
            z,
            fake_labels,
            &dims,
            &mut self.generator,
        );

        // D step: the real and the fake pass, each backward right after its
        // forward (the two loss terms are separate sums). Small fp32 steps run
        // the two side by side: two independent chains keep both threads busy
        // between their short parallel passes (+3-4% at the default's shape).
        // In bf16 it measured no faster (-2%), and large steps keep one pass's
        // columns alive at a time: those run one after the other.
        if dims.spectral {
            spectral::iterate(&mut self.discriminator);
        }
        let (d, norms) = self.disc_params();
        let conv1 = Conv1Parts::new(&d.w1, &dims);
        let fake = &cache.fake;
        // Each pass sets the step's precision itself: under `rayon::join` it
        // may run on another thread.
        let precision = self.precision;
        let pass = |images, labels, term: &LossTerm<'_>, head_weight| {
            with_precision(precision, || {
                DiscPass::run(&d, &conv1, (images, labels), &dims, (term, head_weight))
            })
        };
        // The AC-GAN head learns from the real digits only (as burn's step).
        let on_real = || {
            let term = |logits: &[f32]| loss_real(loss, logits);
            pass(real, real_labels, &term, Some(loss.aux_weight))
        };
        let on_fake = || pass(fake, fake_labels, &|logits| loss_fake(loss, logits), None);
        let (on_real, on_fake) = if small && precision == Precision::Fp32 {
            rayon::join(on_real, on_fake)
        } else {
            (on_real(), on_fake())
        };
        // bn2's running statistics move in the order of the passes.
        for stats in [&on_real.bn2_stats, &on_fake.bn2_stats]
            .into_iter()
            .flatten()
        {
            update_running_stats(&mut self.discriminator, "bn2", stats);
        }
        let mut d_grads = on_real.grads;
        d_grads.add(on_fake.grads);
        let mut d_grads = d_grads.to_torch(&self.discriminator);
        if let Some(norms) = norms {
            norms.backward(&mut d_grads, &self.discriminator);
        }
        apply_adam(adam_d, &mut self.discriminator, d_grads);

        // G step through the updated D, whose weights get no gradients.
        let (d, _) = self.disc_params();
        let conv1 = Conv1Parts::new(&d.w1, &dims);
        let verdict = discriminator_forward(&d, &conv1, fake, fake_labels, &dims);
        if let Some(stats) = verdict.bn2_stats() {
            update_running_stats(&mut self.discriminator, "bn2", stats);
        }
        let (mut g_loss, g_grad) = generator_loss(loss.loss, &verdict.logits);
        let class_term = head_term(&verdict, fake_labels, loss.aux_weight, &dims);
        g_loss += class_term.as_ref().map_or(0.0, |(term, _)| *term);
        let class_grad = class_term.as_ref().map(|(_, grad)| &grad[..]);
        let mut image_grad =
            discriminator_input_backward(&d, &conv1, &verdict, (&g_grad, class_grad), &dims);
        drop(verdict);
        if loss.mode_seeking > 0.0 {
            let batch = fake_labels.len() / dims.classes;
            let (term, grad) = mode_seeking(fake, z, batch, loss.mode_seeking);
            g_loss += term;
            image_grad.iter_mut().zip(grad).for_each(|(g, m)| *g += m);
        }
        let (g_grads, class_grads) = generator_backward(&g, cache, image_grad, fake_labels, &dims);
        let mut g_grads = g_grads.to_torch(&self.generator);
        if let Some(class_grads) = class_grads {
            g_grads.extend(class_grads.to_torch(&self.generator));
        }
        apply_adam(adam_g, &mut self.generator, g_grads);

        StepStats {
            d_loss: on_real.loss + on_fake.loss,
            g_loss,
            d_real: on_real.mean_sigmoid,
            d_fake: on_fake.mean_sigmoid,
        }
    }

    /// D's parameters in kernel layout, as its layers use them: with
    /// spectral normalisation, the convolution weights divided by their
    /// estimates (which come along, for the backward).
    fn disc_params(&self) -> (DiscParams, Option<SpectralNorms>) {
        let mut d = DiscParams::from_torch(&self.discriminator);
        let norms = self
            .dims
            .spectral
            .then(|| SpectralNorms::of(&self.discriminator));
        if let Some(norms) = &norms {
            norms.normalize(&mut d);
        }
        (d, norms)
    }
}

/// A loss term of D's logits: its value and its gradient.
type LossTerm<'a> = dyn Fn(&[f32]) -> (f32, Vec<f32>) + Sync + 'a;

/// One pass of the D step: D's forward on a batch, its loss term, and the
/// gradients of that term.
struct DiscPass {
    grads: DiscParams,
    loss: f32,
    /// The mean of D's sigmoid outputs.
    mean_sigmoid: f32,
    /// bn2's batch statistics (the caller moves the running ones), if D has it.
    bn2_stats: Option<BatchStats>,
}

impl DiscPass {
    /// D on (images, labels), the loss `term` of its logits [plus the head's
    /// cross-entropy against `labels` times `head_weight`, when D has the
    /// head and a weight is given], and back.
    fn run(
        d: &DiscParams,
        conv1: &Conv1Parts,
        (images, labels): (&[f32], &[f32]),
        dims: &Dims,
        (term, head_weight): (&LossTerm<'_>, Option<f32>),
    ) -> Self {
        let cache = discriminator_forward(d, conv1, images, labels, dims);
        let (mut loss, grad) = term(&cache.logits);
        let class_term = head_weight.and_then(|w| head_term(&cache, labels, w, dims));
        loss += class_term.as_ref().map_or(0.0, |(term, _)| *term);
        let class_grad = class_term.as_ref().map(|(_, grad)| &grad[..]);
        Self {
            grads: discriminator_backward(d, &cache, (&grad, class_grad), dims),
            loss,
            mean_sigmoid: mean_sigmoid(&cache.logits),
            bn2_stats: cache.bn2_stats().cloned(),
        }
    }
}

/// The AC-GAN term of a pass, when D has the head: `weight` times the
/// cross-entropy of its class logits against `labels`, and its gradient.
fn head_term(
    cache: &DiscCache,
    labels: &[f32],
    weight: f32,
    dims: &Dims,
) -> Option<(f32, Vec<f32>)> {
    let class_logits = cache.class_logits.as_deref()?;
    let (term, mut grad) = cross_entropy(class_logits, labels, dims.classes);
    grad.iter_mut().for_each(|g| *g *= weight);
    Some((weight * term, grad))
}

/// Runs Adam over named gradients in PyTorch layout (one update of its step
/// count).
fn apply_adam(adam: &mut Adam, params: &mut NamedTensors, grads: Vec<(&str, Vec<f32>)>) {
    adam.steps += 1;
    for (name, grad) in grads {
        let param = params.get_mut(name).expect("parameter");
        adam.update(name, &mut param.values, &grad);
    }
}
