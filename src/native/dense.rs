//! A fully connected layer, forward and backward: `y = x . W + b`, with `b`
//! added per channel of the output's channels-last rows (G's first layer,
//! a transposed convolution of a 1x1 input, is one; so is D's last, a
//! convolution over the whole 7x7 map, except for its bias gradient).

use crate::simd::multiversioned;
use rayon::prelude::*;

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

/// The gradients of [`dense_forward`]'s weight and bias from the output
/// gradient `dy` [rows, outputs] (the input's gradient is not needed: the
/// layer reads noise).
pub fn dense_backward(
    dy: &[f32],
    x: &[f32],
    inputs: usize,
    channels: usize,
) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / inputs;
    let dy_m = Operand::new(dy, rows, dy.len() / rows);
    let weight = product(Operand::new(x, rows, inputs).t(), dy_m, Threads::All);
    (weight, bias_gradient(dy, channels))
}
