//! Fully connected layers, `y = x . W + b` with `b` added per channel of
//! the output's channels-last rows: D's last layer (a convolution over the
//! whole 7x7 map; its backward is in `discriminator`), and G's first, a
//! transposed convolution of a 1x1 input ([`projection_forward`] and
//! [`projection_backward`]).

use crate::simd::multiversioned;
use rayon::prelude::*;

use super::layout::swap_inner_axes;
use super::norm::channel_sums;
use super::{Operand, Threads, product};

multiversioned! {
/// Adds `bias` to every row of a [rows, channels] matrix.
pub fn add_bias(values: &mut [f32], bias: &[f32], threads: Threads) {
    let channels = bias.len();
    let add = |c: &mut [f32]| {
        c.chunks_mut(channels)
            .for_each(|row| row.iter_mut().zip(bias).for_each(|(v, b)| *v += b))
    };
    match threads {
        Threads::All => values.par_chunks_mut(channels * 256).for_each(add),
        Threads::This => add(values),
    }
}
}

multiversioned! {
/// A bias's gradient: the per-channel sums of the output gradient.
pub fn bias_gradient(grad: &[f32], channels: usize) -> Vec<f32> {
    channel_sums(grad, channels)
        .into_iter()
        .map(|s| s as f32)
        .collect()
}
}

/// `x . weight + bias` for `x` [rows, inputs] and `weight` [inputs, outputs].
pub fn dense_forward(
    x: &[f32],
    inputs: usize,
    weight: &[f32],
    bias: &[f32],
    threads: Threads,
) -> Vec<f32> {
    let (rows, outputs) = (x.len() / inputs, weight.len() / inputs);
    let mut y = product(
        Operand::new(x, rows, inputs),
        Operand::new(weight, inputs, outputs),
        threads,
    );
    add_bias(&mut y, bias, threads);
    y
}

/// G's first layer ("project and reshape"): `x . weight + bias` for `x`
/// [rows, inputs] and PyTorch's `weight` [inputs, channels * positions]
/// (channels major), its output turned channels last: [rows * positions,
/// channels]. Reading the weight as it is spares the step two transposes
/// of G's largest tensor; the output, a batch's worth, is smaller.
pub fn projection_forward(x: &[f32], inputs: usize, weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let (rows, outputs) = (x.len() / inputs, weight.len() / inputs);
    let channels_major = product(
        Operand::new(x, rows, inputs),
        Operand::new(weight, inputs, outputs),
        Threads::All,
    );
    let channels = bias.len();
    let mut y = swap_inner_axes(&channels_major, [rows, channels, outputs / channels]);
    add_bias(&mut y, bias, Threads::All);
    y
}

/// The gradients of [`projection_forward`]'s weight (PyTorch's layout) and
/// bias from the output gradient `dy` [rows * positions, channels].
pub fn projection_backward(
    dy: &[f32],
    x: &[f32],
    inputs: usize,
    channels: usize,
) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / inputs;
    let outputs = dy.len() / rows;
    let dy_by_channel = swap_inner_axes(dy, [rows, outputs / channels, channels]);
    let dy_m = Operand::new(&dy_by_channel, rows, outputs);
    let weight = product(Operand::new(x, rows, inputs).t(), dy_m, Threads::All);
    (weight, bias_gradient(dy, channels))
}
