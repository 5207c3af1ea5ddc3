//! Hand-written CPU kernels for the seed architecture's layers, on host
//! buffers in channels-last (NHWC) layout.
//!
//! burn Flex runs these layers through general-purpose NCHW kernels (one
//! gemm per image for transposed convolutions, scalar scatters, a masked
//! select per LeakyReLU). For the two paths where throughput matters, the
//! compiled generator ([`crate::model::inference`]) and the compiled
//! training step ([`crate::train::cpu_step`]), every layer here is one large
//! gemm (the `gemm` crate, the kernels burn itself calls) plus a memory pass
//! that moves whole channel vectors.
//!
//! All kernels work on row-major matrices whose rows are image positions and
//! whose columns are channels; the stride-2 layers use kernel 5, padding 2
//! (and output padding 1 for the transposed ones), the seed's settings.

pub mod conv;
pub mod gemm;
pub mod layout;
pub mod norm;

use rayon::prelude::*;

/// Slope of LeakyReLU for negative inputs in both networks.
pub const LEAKY_SLOPE: f32 = crate::model::generator::LEAKY_SLOPE as f32;

/// LeakyReLU.
pub fn leaky(x: f32) -> f32 {
    x.max(x * LEAKY_SLOPE)
}

/// LeakyReLU in place.
pub fn leaky_in_place(values: &mut [f32]) {
    values
        .par_chunks_mut(1 << 14)
        .for_each(|c| c.iter_mut().for_each(|v| *v = leaky(*v)));
}

/// Backward of LeakyReLU given its output (same sign as its input):
/// `grad *= 1` where the output is positive, `LEAKY_SLOPE` elsewhere.
pub fn leaky_backward(grad: &mut [f32], output: &[f32]) {
    grad.par_chunks_mut(1 << 14)
        .zip(output.par_chunks(1 << 14))
        .for_each(|(g, y)| {
            for (g, y) in g.iter_mut().zip(y) {
                if *y <= 0.0 {
                    *g *= LEAKY_SLOPE;
                }
            }
        });
}

/// Per-channel sums over the rows of a [rows, channels] matrix.
pub fn channel_sums(values: &[f32], channels: usize) -> Vec<f32> {
    norm::channel_sums(values, None, channels)
        .into_iter()
        .map(|s| s as f32)
        .collect()
}

/// Adds `bias` to every row of a [rows, channels] matrix.
pub fn add_bias(values: &mut [f32], bias: &[f32]) {
    let channels = bias.len();
    values.par_chunks_mut(channels * 256).for_each(|c| {
        c.chunks_mut(channels)
            .for_each(|row| row.iter_mut().zip(bias).for_each(|(v, b)| *v += b))
    });
}
