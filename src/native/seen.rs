//! What D sees in one step, assembled in one place: the batches of the D
//! step's passes (the real and the generated batch apart, or as one with
//! the joint batch norm) and the batch of the G step's verdict (the
//! generated batch, beside the real one when joint), with the rows of it
//! that G made. Each batch goes through the step's augmentation here
//! ([`super::augment`], its own draws per batch), and the gradient for G's
//! images comes back through it in [`Seen::generated_grad`].

use std::borrow::Cow;
use std::ops::Range;

use super::augment::{augment_backward, augment_forward};
use super::step::StepInput;
use crate::arch::ImageShape;
use crate::optim::augment::Draw;

/// Images [B, ...] (channels last), their conditions [B, classes], and the
/// number of equal runs of the batch that each get their own spread plane.
pub(super) type Batch<'a> = (&'a [f32], &'a [f32], usize);

/// The D step's passes.
pub(super) enum Passes<'a> {
    /// The real batch, then the generated one, each its own pass.
    Apart(Batch<'a>, Batch<'a>),
    /// Both as one batch, the real rows first.
    Joint(Batch<'a>),
}

/// D's inputs for one step.
pub(super) struct Seen<'a> {
    input: &'a StepInput<'a>,
    /// The D step's real and generated images.
    d_real: Cow<'a, [f32]>,
    d_fake: Cow<'a, [f32]>,
    /// The G step's generated images.
    g_fake: Cow<'a, [f32]>,
    /// With the joint batch norm: the conditions of both batches as one,
    /// the real rows first, and each step's images so.
    joint: Option<Joint>,
    /// The draws of the G step's generated images, for the backward.
    g_draws: Option<&'a [Draw]>,
    image: ImageShape,
    /// Rows in each batch.
    rows: usize,
}

/// The joint batches of both steps.
struct Joint {
    labels: Vec<f32>,
    d_images: Vec<f32>,
    /// The G step's, when augmented apart from the D step's.
    g_images: Option<Vec<f32>>,
}

impl<'a> Seen<'a> {
    /// What D sees of `input` and G's images `fake` (of `image`, channels
    /// last), augmented by the input's draws; `joint`: the two batches as
    /// one, in both steps.
    pub fn of(
        input: &'a StepInput<'a>,
        fake: &'a [f32],
        (image, classes): (ImageShape, usize),
        joint: bool,
    ) -> Self {
        let seen = |images: &'a [f32], draws: Option<&[Draw]>| match draws {
            Some(draws) => Cow::Owned(augment_forward(images, draws, image)),
            None => Cow::Borrowed(images),
        };
        let draws = input.draws;
        let d_real = seen(input.real, draws.map(|d| &d.d_real[..]));
        let d_fake = seen(fake, draws.map(|d| &d.d_fake[..]));
        let g_fake = seen(fake, draws.map(|d| &d.g_fake[..]));
        let joint = joint.then(|| Joint {
            labels: [input.real_labels, input.fake_labels].concat(),
            d_images: [&d_real[..], &d_fake[..]].concat(),
            // The G step shows D the real batch only when joint.
            g_images: draws.map(|d| {
                let g_real = augment_forward(input.real, &d.g_real, image);
                [&g_real[..], &g_fake[..]].concat()
            }),
        });
        Self {
            input,
            d_real,
            d_fake,
            g_fake,
            joint,
            g_draws: draws.map(|d| &d.g_fake[..]),
            image,
            rows: input.fake_labels.len() / classes,
        }
    }

    /// Rows in each batch (real or generated).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The D step's batches.
    pub fn d_step(&self) -> Passes<'_> {
        match &self.joint {
            Some(j) => Passes::Joint((&j.d_images, &j.labels, 2)),
            None => Passes::Apart(
                (&self.d_real, self.input.real_labels, 1),
                (&self.d_fake, self.input.fake_labels, 1),
            ),
        }
    }

    /// The G step's batch and the rows of it that are generated.
    pub fn verdict(&self) -> (Batch<'_>, Range<usize>) {
        match &self.joint {
            Some(j) => {
                let images = j.g_images.as_ref().unwrap_or(&j.d_images);
                ((images, &j.labels, 2), self.rows..2 * self.rows)
            }
            None => ((&self.g_fake, self.input.fake_labels, 1), 0..self.rows),
        }
    }

    /// The gradient for G's images, from the gradient for every image of
    /// the verdict's batch: its generated rows (the last ones), back
    /// through their augmentation.
    pub fn generated_grad(&self, mut image_grad: Vec<f32>) -> Vec<f32> {
        let generated = self.g_fake.len();
        image_grad.drain(..image_grad.len() - generated);
        match self.g_draws {
            Some(draws) => augment_backward(&image_grad, draws, self.image),
            None => image_grad,
        }
    }
}
