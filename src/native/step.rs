//! The training step with hand-written forward and backward passes: the
//! same iteration as burn's autodiff step (`train::step`, above this module: same
//! losses, batch statistics, running statistics, Adam updates and figures),
//! as a short list of the `generator` and `discriminator`
//! passes.
//!
//! The weights stay in PyTorch layout under their PyTorch names (the same
//! named tensors checkpoints and [`Adam`] use); each step lays them out for
//! the kernels (`NetParams::from_torch`) and brings the gradients back, so
//! the optimizer state, checkpoints and the moving average are shared with
//! burn's path.

use std::ops::Range;

use anyhow::ensure;

use super::discriminator::{
    Conv1Parts, DiscCache, discriminator_backward, discriminator_forward,
    discriminator_input_backward,
};
use super::generator::{generator_backward, generator_forward};
use super::layout::swap_inner_axes;
use super::losses::{Terms, cross_entropy, d_figures, generator_loss, mode_seeking};
use super::norm::BatchStats;
use super::params::{NetParams, update_running_stats};
use super::seen::{Batch, Passes, Seen};
use super::spectral::{self, SpectralNorms};
use super::{Nets, Precision, unsupported, with_precision};
use crate::arch::TAPS;
use crate::model::GanConfig;
use crate::model::net::{DiscriminatorNet, Kind};
use crate::model::weights::NamedTensors;
use crate::optim::augment::StepDraws;
use crate::optim::{Adam, Objective, StepStats};

/// Steps whose column buffers stay below this run on a compute thread (see
/// [`NativeGan::step`]); glibc's largest mmap threshold.
const SMALL_STEP_BYTES: usize = 32 << 20;

/// One step's batch on the host.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// Real images, [B, channels, side, side] in [-1, 1].
    pub real: &'a [f32],
    /// Their one-hot labels, [B, classes].
    pub real_labels: &'a [f32],
    /// Noise, [B, latent].
    pub z: &'a [f32],
    /// The classes asked of G, one-hot [B, classes].
    pub fake_labels: &'a [f32],
    /// The step's changes to every image D sees, when it augments them.
    pub draws: Option<&'a StepDraws>,
    /// LeCam's anchors: D's moving mean logits on real and generated images.
    pub anchors: [f32; 2],
}

/// Both networks as named tensors (PyTorch layout), trained by
/// [`NativeGan::step`].
#[derive(Debug, Clone)]
pub struct NativeGan {
    generator: NamedTensors,
    discriminator: NamedTensors,
    nets: Nets,
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
            nets: Nets::of(model),
            precision: Precision::Fp32,
        })
    }

    /// The same networks, their products run in `precision` (checked against
    /// this CPU).
    pub fn in_precision(self, precision: Precision) -> anyhow::Result<Self> {
        precision.check()?;
        Ok(Self { precision, ..self })
    }

    /// Under `auto`: runs one step on copies (nothing is learned) to record
    /// its product shapes, and puts each one's arithmetic in force; `None`
    /// in any other precision.
    pub fn calibrate(
        &self,
        adam_g: &Adam,
        adam_d: &Adam,
        input: StepInput,
        objective: &Objective,
    ) -> Option<super::choice::Choices> {
        if self.precision != Precision::Auto {
            return None;
        }
        let (mut gan, mut adam_g, mut adam_d) = (self.clone(), adam_g.clone(), adam_d.clone());
        Some(super::choice::calibrate(|| {
            gan.step(&mut adam_g, &mut adam_d, input, objective);
        }))
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
        objective: &Objective,
    ) -> StepStats {
        let batch = input.real_labels.len() / self.nets.classes();
        let small = self.largest_buffer(batch) < SMALL_STEP_BYTES;
        let precision = self.precision;
        // The kernels take images channels last.
        let image = self.nets.d.image;
        let real = (image.channels > 1)
            .then(|| swap_inner_axes(input.real, [batch, image.channels, image.pixels()]));
        let input = StepInput {
            real: real.as_deref().unwrap_or(input.real),
            ..input
        };
        let mut run = || {
            with_precision(precision, || {
                self.step_here(adam_g, adam_d, &input, objective, small)
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

    /// Bytes of the largest column buffer a step of `batch` allocates: a
    /// stride-2 layer's, over its smaller map with the larger map's channels.
    fn largest_buffer(&self, batch: usize) -> usize {
        let (g, d) = (&self.nets.g.layers, self.nets.d.downs());
        let columns = g.iter().chain(d).map(|l| match l.kind {
            Kind::Up => l.side * l.side * l.outputs,
            Kind::Down => l.out_side() * l.out_side() * l.inputs,
            Kind::Project | Kind::Whole => 0,
        });
        batch * TAPS * columns.max().unwrap_or(0) * size_of::<f32>()
    }

    fn step_here(
        &mut self,
        adam_g: &mut Adam,
        adam_d: &mut Adam,
        input: &StepInput,
        objective: &Objective,
        small: bool,
    ) -> StepStats {
        let StepInput { z, fake_labels, .. } = *input;
        // The descriptions, apart from the tensors the step changes.
        let nets = self.nets.clone();
        let g_layers = nets.g_layers();
        let g = NetParams::from_torch(&self.generator, g_layers);
        let cache = generator_forward(&g, &nets.g, z, fake_labels, &mut self.generator);

        let fake = &cache.fake;
        let shape = (nets.d.image, nets.classes());
        let seen = Seen::of(input, fake, shape, objective.joint_batch_norm);
        let terms = Terms::new(objective, input.anchors);
        let d_stats = self.discriminator_step(adam_d, &seen, &terms, small);

        // G step through the updated D, whose weights get no gradients.
        let (mut g_loss, mut image_grad) = self.verdict_on(&seen, objective);
        if objective.mode_seeking > 0.0 {
            let batch = fake_labels.len() / nets.classes();
            let (term, grad) = mode_seeking(fake, z, batch, objective.mode_seeking);
            g_loss += term;
            image_grad.iter_mut().zip(grad).for_each(|(g, m)| *g += m);
        }
        let g_grads = generator_backward(&g, &nets.g, cache, image_grad, fake_labels);
        let g_grads = g_grads.into_torch(g_layers, &self.generator);
        apply_adam(adam_g, &mut self.generator, g_grads);

        StepStats { g_loss, ..d_stats }
    }

    /// D's update on the real batch and G's `fake` one: its loss and the
    /// figures of its logits (G's loss left at 0). Apart, each pass's
    /// backward follows its forward (the two loss terms are separate sums;
    /// small fp32 steps run the two side by side: two independent chains keep
    /// both threads busy between their short parallel passes, +3-4% at the
    /// default's shape; in bf16 that measured -2%, and large steps keep one
    /// pass's columns alive at a time). With the joint batch norm, one pass
    /// of both.
    fn discriminator_step(
        &mut self,
        adam_d: &mut Adam,
        seen: &Seen,
        terms: &Terms,
        small: bool,
    ) -> StepStats {
        let nets = &self.nets;
        if nets.d.spectral {
            spectral::iterate(&mut self.discriminator, &nets.d);
        }
        let (d, norms) = self.disc_params();
        let nets = &self.nets;
        let conv1 = Conv1Parts::new(&d.layers[0].w, &nets.d);
        let batch = seen.rows();
        // Each pass sets the step's precision itself: under `rayon::join` it
        // may run on another thread.
        let precision = self.precision;
        let pass = |batch: Batch, term: &LossTerm<'_>, head| {
            with_precision(precision, || {
                DiscPass::run(&d, &conv1, batch, &nets.d, (term, head))
            })
        };
        // The AC-GAN head learns from the real digits only (as burn's step).
        let head = Some((terms.objective.aux_weight, 0..batch));
        let passes = match seen.d_step() {
            Passes::Joint(both) => {
                let term = |logits: &[f32]| {
                    let (on_real, on_fake) = logits.split_at(batch);
                    let (real_loss, mut grad) = terms.real(on_real);
                    let (fake_loss, fake_grad) = terms.fake(on_fake);
                    grad.extend(fake_grad);
                    (real_loss + fake_loss, grad)
                };
                vec![pass(both, &term, head)]
            }
            Passes::Apart(real, fake) => {
                let on_real = || pass(real, &|l| terms.real(l), head.clone());
                let on_fake = || pass(fake, &|l| terms.fake(l), None);
                let (on_real, on_fake) = if small && precision != Precision::Bf16 {
                    rayon::join(on_real, on_fake)
                } else {
                    (on_real(), on_fake())
                };
                vec![on_real, on_fake]
            }
        };
        let logits: Vec<f32> = passes
            .iter()
            .flat_map(|p| p.logits.iter().copied())
            .collect();
        let (on_real, on_fake) = logits.split_at(batch);
        // The norms' running statistics move in the order of the passes.
        for (name, stats) in passes.iter().flat_map(|p| &p.norm_stats) {
            update_running_stats(&mut self.discriminator, name, stats);
        }
        let d_loss: f32 = passes.iter().map(|p| p.loss).sum();
        let d_layers = self.nets.d_layers();
        let mut passes = passes.into_iter().map(|p| p.grads);
        let mut d_grads = passes.next().expect("a pass");
        passes.for_each(|g| d_grads.add(g, d_layers));
        let mut d_grads = d_grads.into_torch(d_layers, &self.discriminator);
        if let Some(norms) = norms {
            norms.backward(&mut d_grads, &self.discriminator);
        }
        apply_adam(adam_d, &mut self.discriminator, d_grads);
        d_figures(d_loss, on_real, on_fake)
    }

    /// G's loss on D's verdict on `fake` (D as it now is, its weights
    /// getting no gradients), and the gradient of that loss for `fake`. With
    /// the joint batch norm, D sees the real batch beside it.
    fn verdict_on(&mut self, seen: &Seen, objective: &Objective) -> (f32, Vec<f32>) {
        let (d, _) = self.disc_params();
        let net = &self.nets.d;
        let conv1 = Conv1Parts::new(&d.layers[0].w, net);
        let ((images, labels, groups), fakes) = seen.verdict();
        let verdict = discriminator_forward(&d, &conv1, images, labels, groups, net);
        for (name, stats) in verdict.norm_stats(net) {
            update_running_stats(&mut self.discriminator, name, stats);
        }
        let (mut g_loss, fake_grad) =
            generator_loss(objective.loss, &verdict.logits[fakes.clone()]);
        let mut logit_grad = vec![0f32; verdict.logits.len()];
        logit_grad[fakes.clone()].copy_from_slice(&fake_grad);
        let class_term = head_term(&verdict, labels, (objective.aux_weight, fakes), net.classes);
        g_loss += class_term.as_ref().map_or(0.0, |(term, _)| *term);
        let class_grad = class_term.as_ref().map(|(_, grad)| &grad[..]);
        let image_grad =
            discriminator_input_backward(&d, &conv1, &verdict, (&logit_grad, class_grad), net);
        (g_loss, seen.generated_grad(image_grad))
    }

    /// D's parameters in kernel layout, as its layers use them: with
    /// spectral normalisation, the convolution weights divided by their
    /// estimates (which come along, for the backward).
    fn disc_params(&self) -> (NetParams, Option<SpectralNorms>) {
        let mut d = NetParams::from_torch(&self.discriminator, self.nets.d_layers());
        let norms = self
            .nets
            .d
            .spectral
            .then(|| SpectralNorms::of(&self.discriminator, &self.nets.d));
        if let Some(norms) = &norms {
            norms.normalize(&mut d);
        }
        (d, norms)
    }
}

/// A loss term of D's logits: its value and its gradient.
type LossTerm<'a> = dyn Fn(&[f32]) -> (f32, Vec<f32>) + Sync + 'a;

/// The AC-GAN term's weight and the rows of the batch it is taken over.
type HeadRows = (f32, Range<usize>);

/// One pass of the D step: D's forward on a batch, its loss term, and the
/// gradients of that term.
struct DiscPass {
    grads: NetParams,
    loss: f32,
    logits: Vec<f32>,
    /// Each batch norm's statistics, by name (the caller moves the running ones).
    norm_stats: Vec<(String, BatchStats)>,
}

impl DiscPass {
    /// D on (images, labels), the loss `term` of its logits [plus the head's
    /// cross-entropy against `labels` over the `head` rows times its weight,
    /// when D has the head and `head` is given], and back.
    fn run(
        d: &NetParams,
        conv1: &Conv1Parts,
        (images, labels, groups): Batch,
        net: &DiscriminatorNet,
        (term, head): (&LossTerm<'_>, Option<HeadRows>),
    ) -> Self {
        let mut cache = discriminator_forward(d, conv1, images, labels, groups, net);
        let (mut loss, grad) = term(&cache.logits);
        let class_term = head.and_then(|head| head_term(&cache, labels, head, net.classes));
        loss += class_term.as_ref().map_or(0.0, |(term, _)| *term);
        let class_grad = class_term.as_ref().map(|(_, grad)| &grad[..]);
        let stats = cache.norm_stats(net);
        Self {
            grads: discriminator_backward(d, conv1, &cache, (&grad, class_grad), net),
            loss,
            norm_stats: stats
                .into_iter()
                .map(|(n, s)| (n.to_string(), s.clone()))
                .collect(),
            logits: std::mem::take(&mut cache.logits),
        }
    }
}

/// The AC-GAN term of a pass, when D has the head: the weight times the
/// cross-entropy of its class logits against `labels` over the given rows,
/// and its gradient for every row (zero outside them).
fn head_term(
    cache: &DiscCache,
    labels: &[f32],
    (weight, rows): HeadRows,
    classes: usize,
) -> Option<(f32, Vec<f32>)> {
    let class_logits = cache.class_logits.as_deref()?;
    let span = rows.start * classes..rows.end * classes;
    let (term, rows_grad) =
        cross_entropy(&class_logits[span.clone()], &labels[span.clone()], classes);
    let mut grad = vec![0f32; class_logits.len()];
    grad[span]
        .iter_mut()
        .zip(rows_grad)
        .for_each(|(g, r)| *g = r * weight);
    Some((weight * term, grad))
}

/// Runs Adam over named gradients in PyTorch layout (one update of its step
/// count).
fn apply_adam(adam: &mut Adam, params: &mut NamedTensors, grads: Vec<(String, Vec<f32>)>) {
    adam.steps += 1;
    for (name, grad) in grads {
        let param = params.get_mut(&name).expect("parameter");
        adam.update(&name, &mut param.values, &grad);
    }
}
