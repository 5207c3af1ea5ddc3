//! What D sees in one step, assembled in one place: the batches of the D
//! step's passes (the real and the generated batch apart, or as one with
//! the joint batch norm) and the batch of the G step's verdict (the
//! generated batch, beside the real one when joint), with the rows of it
//! that G made. A transform of D's inputs goes here: it changes the images
//! in [`Seen::of`] and takes the gradient back in [`Seen::generated_grad`].

use std::ops::Range;

use super::step::StepInput;

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
    fake: &'a [f32],
    /// With the joint batch norm: the real and the generated batch as one
    /// (images, conditions), the real rows first.
    joint: Option<(Vec<f32>, Vec<f32>)>,
    /// Rows in each batch.
    rows: usize,
}

impl<'a> Seen<'a> {
    /// What D sees of `input` and G's images `fake`; `joint`: the two
    /// batches as one, in both steps.
    pub fn of(input: &'a StepInput<'a>, fake: &'a [f32], classes: usize, joint: bool) -> Self {
        let joint = joint.then(|| {
            (
                [input.real, fake].concat(),
                [input.real_labels, input.fake_labels].concat(),
            )
        });
        Self {
            input,
            fake,
            joint,
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
            Some((images, labels)) => Passes::Joint((images, labels, 2)),
            None => Passes::Apart(
                (self.input.real, self.input.real_labels, 1),
                (self.fake, self.input.fake_labels, 1),
            ),
        }
    }

    /// The G step's batch and the rows of it that are generated.
    pub fn verdict(&self) -> (Batch<'_>, Range<usize>) {
        match &self.joint {
            Some((images, labels)) => ((images, labels, 2), self.rows..2 * self.rows),
            None => ((self.fake, self.input.fake_labels, 1), 0..self.rows),
        }
    }

    /// The gradient for G's images, from the gradient for every image of
    /// the verdict's batch: its generated rows (the last ones).
    pub fn generated_grad(&self, mut image_grad: Vec<f32>) -> Vec<f32> {
        let generated = self.rows * (self.fake.len() / self.rows.max(1));
        image_grad.drain(..image_grad.len() - generated);
        image_grad
    }
}
