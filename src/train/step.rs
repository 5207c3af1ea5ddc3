//! One training iteration of the conditional GAN (the seed objective):
//!
//! 1. fake = G(z, y_fake), computed once and reused by both updates;
//! 2. D step: BCE(D(real, y), 1) + BCE(D(fake.detach(), y_fake), 0)
//!    [+ w * CE(aux(real), y) with the AC-GAN head], Adam on D;
//! 3. G step: BCE(D'(fake, y_fake), 1) with the updated D' (non-saturating,
//!    D' frozen so no D weight gradients are computed)
//!    [+ w * CE(aux(fake), y_fake)] [+ m * the mode-seeking term], Adam on G.
//!
//! [`Objective`] swaps BCE for the hinge loss or smooths the real target;
//! with its joint batch norm, D sees the real and the generated batch in one
//! pass in both steps (G's loss on the generated rows only).

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

use crate::model::{Discriminator, DiscriminatorOutput, Generator};
use crate::optim::Adam;
use crate::optim::augment::{Draw, StepDraws, augment};
use crate::optim::loss::{
    cross_entropy, discriminator_loss, generator_loss, lecam_loss, mode_seeking_loss,
};
use crate::optim::{Balance, Objective, StepStats};

/// Both networks and their optimizers: everything a step changes.
#[derive(Debug, Clone)]
pub struct GanState {
    /// G, the network being trained.
    pub generator: Generator,
    /// D, the network being trained.
    pub discriminator: Discriminator,
    /// G's optimizer.
    pub adam_g: Adam,
    /// D's optimizer.
    pub adam_d: Adam,
    /// The moving average of G, when training with `--ema`.
    pub ema: Option<super::ema::Ema>,
    /// The state of the regularisers that follow D (adaptive augmentation, LeCam).
    pub balance: Balance,
}

/// Images with their one-hot conditions, on the training device.
#[derive(Debug, Clone)]
pub struct Conditioned<const D: usize> {
    /// Real images [B, 1, 28, 28] in [-1, 1], or noise z [B, latent].
    pub x: Tensor<D>,
    /// One-hot labels [B, classes].
    pub labels: Tensor<2>,
}

/// Runs one iteration in place, every image D sees changed by `draws`
/// when given. `objective.aux_weight` scales the AC-GAN loss terms when the
/// discriminator has the auxiliary head.
pub fn train_step(
    state: &mut GanState,
    real: Conditioned<4>,
    noise: Conditioned<2>,
    draws: Option<&StepDraws>,
    objective: &Objective,
) -> StepStats {
    let aux_weight = objective.aux_weight;
    let z = (objective.mode_seeking > 0.0).then(|| noise.x.clone());
    let fake = state.generator.forward(noise.x, noise.labels.clone());

    // D step (after one power iteration of D's spectral norms, if any).
    state.discriminator.iterate_spectral_norms();
    let generated = || (fake.clone(), noise.labels.clone());
    let joint = objective.joint_batch_norm;
    let d_draws = draws.map(|d| (&d.d_real[..], &d.d_fake[..]));
    let (on_real, on_fake) = judge(
        &state.discriminator,
        Some(&real),
        generated(),
        (joint, true),
        d_draws,
    );
    let on_real = on_real.expect("D judged the real batch");
    let mut d_loss = discriminator_loss(
        objective.loss,
        on_real.logits.clone(),
        on_fake.logits.clone(),
        objective.label_smoothing,
    );
    if objective.lecam > 0.0 {
        let (real, fake) = (on_real.logits.clone(), on_fake.logits.clone());
        d_loss = d_loss + lecam_loss(real, fake, state.balance.anchors, objective.lecam);
    }
    if let Some(class_logits) = on_real.class_logits {
        d_loss = d_loss + cross_entropy(class_logits, real.labels.clone()).mul_scalar(aux_weight);
    }
    let mut grads = d_loss.backward();
    state.discriminator = state.adam_d.step(state.discriminator.clone(), &mut grads);

    // G step, through the updated D. D's weights are frozen for this pass:
    // the backward computes gradients for the image path only, not the
    // D weight gradients the G step would throw away. With the joint batch
    // norm the real batch goes beside the generated one.
    let frozen = state.discriminator.clone().no_grad();
    let beside = joint.then_some(&real);
    let g_draws = draws.map(|d| (&d.g_real[..], &d.g_fake[..]));
    let (_, verdict) = judge(&frozen, beside, generated(), (joint, false), g_draws);
    let mut g_loss = generator_loss(objective.loss, verdict.logits);
    if let Some(z) = z {
        g_loss = g_loss + mode_seeking_loss(fake, z).mul_scalar(objective.mode_seeking);
    }
    if let Some(class_logits) = verdict.class_logits {
        g_loss = g_loss + cross_entropy(class_logits, noise.labels).mul_scalar(aux_weight);
    }
    let mut grads = g_loss.backward();
    state.generator = state.adam_g.step(state.generator.clone(), &mut grads);

    // One host read for all the figures.
    let (real, fake) = (on_real.logits.detach(), on_fake.logits.detach());
    let figures = Tensor::cat(
        vec![
            d_loss.detach(),
            g_loss.detach(),
            sigmoid(real.clone()).mean(),
            sigmoid(fake.clone()).mean(),
            real.clone().mean(),
            fake.mean(),
            real.sign().mean(),
        ],
        0,
    )
    .into_data()
    .try_into_vec::<f32>()
    .expect("f32 figures");
    StepStats {
        d_loss: figures[0],
        g_loss: figures[1],
        d_real: figures[2],
        d_fake: figures[3],
        real_logit: figures[4],
        fake_logit: figures[5],
        real_sign: figures[6],
    }
}

/// What D says of what it sees in a step, its inputs assembled in this one
/// place: its outputs on the real batch (when given) and on the generated
/// one `fake` (detached when `detach`: the D step), each changed by its
/// `draws` when given, apart or as one pass with the `joint` batch norm.
fn judge(
    d: &Discriminator,
    real: Option<&Conditioned<4>>,
    fake: (Tensor<4>, Tensor<2>),
    (joint, detach): (bool, bool),
    draws: Option<(&[Draw], &[Draw])>,
) -> (Option<DiscriminatorOutput>, DiscriminatorOutput) {
    let (fake_x, fake_labels) = fake;
    let fake_x = if detach { fake_x.detach() } else { fake_x };
    let seen = |x: Tensor<4>, draws: Option<&[Draw]>| match draws {
        Some(draws) => augment(x, draws),
        None => x,
    };
    let real_x = real.map(|r| seen(r.x.clone(), draws.map(|d| d.0)));
    let fake_x = seen(fake_x, draws.map(|d| d.1));
    match (real, real_x, joint) {
        (Some(real), Some(real_x), true) => {
            let batch = real.labels.dims()[0];
            let images = Tensor::cat(vec![real_x, fake_x], 0);
            let labels = Tensor::cat(vec![real.labels.clone(), fake_labels], 0);
            let (on_real, on_fake) = split_output(d.forward_grouped(images, labels, 2), batch);
            (Some(on_real), on_fake)
        }
        (real, real_x, _) => (
            real.zip(real_x)
                .map(|(r, x)| d.forward(x, r.labels.clone())),
            d.forward(fake_x, fake_labels),
        ),
    }
}

/// D's outputs on a joint pass split into those of its first `batch` rows
/// and the rest.
fn split_output(
    both: DiscriminatorOutput,
    batch: usize,
) -> (DiscriminatorOutput, DiscriminatorOutput) {
    let rows = both.logits.dims()[0];
    let split = |from: usize, to: usize| DiscriminatorOutput {
        logits: both.logits.clone().slice(from..to),
        class_logits: both.class_logits.clone().map(|c| c.slice(from..to)),
    };
    (split(0, batch), split(batch, rows))
}
