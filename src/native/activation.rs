//! Elementwise layers, forward and backward: LeakyReLU and tanh. Each
//! backward takes the forward's output (its sign, or its value, is all the
//! derivative needs).

use crate::simd::multiversioned;
use rayon::prelude::*;

use super::Threads;

/// Slope of LeakyReLU for negative inputs.
const SLOPE: f32 = crate::arch::LEAKY_SLOPE as f32;
/// Values per parallel task of an elementwise pass.
pub(super) const PAR_CHUNK: usize = 1 << 14;

/// LeakyReLU of one value.
pub fn leaky(x: f32) -> f32 {
    x.max(x * SLOPE)
}

multiversioned! {
/// LeakyReLU in place.
pub fn leaky_forward(values: &mut [f32], threads: Threads) {
    let apply = |c: &mut [f32]| c.iter_mut().for_each(|v| *v = leaky(*v));
    match threads {
        Threads::All => values.par_chunks_mut(PAR_CHUNK).for_each(apply),
        Threads::This => apply(values),
    }
}
}

multiversioned! {
/// Backward of LeakyReLU given its output (same sign as its input):
/// `grad *= 1` where the output is positive, the slope elsewhere.
pub fn leaky_backward(grad: &mut [f32], output: &[f32]) {
    grad.par_chunks_mut(PAR_CHUNK)
        .zip(output.par_chunks(PAR_CHUNK))
        .for_each(|(g, y)| {
            for (g, y) in g.iter_mut().zip(y) {
                if *y <= 0.0 {
                    *g *= SLOPE;
                }
            }
        });
}
}

multiversioned! {
/// Backward of tanh given its output: `grad *= 1 - y^2`.
pub fn tanh_backward(grad: &mut [f32], output: &[f32]) {
    grad.iter_mut()
        .zip(output)
        .for_each(|(g, y)| *g *= 1.0 - y * y);
}
}
