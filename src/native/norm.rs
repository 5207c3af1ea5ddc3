//! Batch normalisation over the rows of a channels-last matrix (every image
//! position is a row), in training mode, with its backward pass.
//!
//! Channel sums are taken in fixed blocks of rows and added in block order,
//! so they do not depend on the thread count.

use crate::simd::multiversioned;
use rayon::prelude::*;

use crate::arch::{BN_EPS, BN_MOMENTUM};

/// Rows per partial sum.
const BLOCK: usize = 256;

multiversioned! {
/// Per-channel sums of `a` ([rows, channels]).
pub fn channel_sums(a: &[f32], channels: usize) -> Vec<f64> {
    let partials: Vec<Vec<f64>> = a
        .par_chunks(BLOCK * channels)
        .map(|a| {
            let mut sums = vec![0f64; channels];
            for row in a.chunks(channels) {
                sums.iter_mut().zip(row).for_each(|(s, v)| *s += *v as f64);
            }
            sums
        })
        .collect();
    in_block_order(partials, channels)
}
}

/// The per-block partial sums added up in block order.
fn in_block_order(partials: Vec<Vec<f64>>, channels: usize) -> Vec<f64> {
    partials
        .into_iter()
        .fold(vec![0f64; channels], |mut acc, p| {
            acc.iter_mut().zip(p).for_each(|(a, p)| *a += p);
            acc
        })
}

/// The mean of each channel's sums over `rows`, as f32.
fn per_row(sums: Vec<f64>, rows: usize) -> Vec<f32> {
    sums.iter().map(|s| (s / rows as f64) as f32).collect()
}

multiversioned! {
/// `x - mean` per channel, and the per-channel sums of its squares, in one
/// pass.
fn centre(x: &[f32], mean: &[f32]) -> (Vec<f32>, Vec<f64>) {
    let channels = mean.len();
    let mut centred = Vec::with_capacity(x.len());
    let partials: Vec<Vec<f64>> = centred.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(BLOCK * channels)
        .zip(x.par_chunks(BLOCK * channels))
        .map(|(out, x)| {
            let mut sums = vec![0f64; channels];
            for (out, x) in out.chunks_mut(channels).zip(x.chunks(channels)) {
                for c in 0..channels {
                    let v = x[c] - mean[c];
                    out[c].write(v);
                    sums[c] += (v * v) as f64;
                }
            }
            sums
        })
        .collect();
    // SAFETY: the chunks above cover all `x.len()` values, each written.
    unsafe { centred.set_len(x.len()) };
    (centred, in_block_order(partials, channels))
}
}

/// What the backward pass needs from a training-mode forward.
#[derive(Debug, Clone)]
pub struct BatchNormCache {
    /// (x - mean) / sqrt(var + eps), [rows, channels].
    pub normalized: Vec<f32>,
    /// 1 / sqrt(var + eps), per channel.
    pub inv_std: Vec<f32>,
    /// The batch's statistics (for the running ones).
    pub stats: BatchStats,
}

/// A batch's per-channel statistics, which the running statistics move towards.
#[derive(Debug, Clone)]
pub struct BatchStats {
    /// The batch mean, per channel.
    pub mean: Vec<f32>,
    /// The batch's biased variance, per channel.
    pub var: Vec<f32>,
}

multiversioned! {
/// Normalises `x` ([rows, channels]) with its batch statistics, then scales
/// by `gamma` and shifts by `beta`, in place (training mode).
pub fn batch_norm_forward(x: &mut [f32], gamma: &[f32], beta: &[f32]) -> BatchNormCache {
    let eps = BN_EPS;
    let channels = gamma.len();
    let rows = x.len() / channels;
    let mean = per_row(channel_sums(x, channels), rows);
    let (mut normalized, squares) = centre(x, &mean);
    let var = per_row(squares, rows);
    let inv_std: Vec<f32> = var
        .iter()
        .map(|v| (1.0 / (*v as f64 + eps).sqrt()) as f32)
        .collect();
    normalized
        .par_chunks_mut(1 << 14)
        .zip(x.par_chunks_mut(1 << 14))
        .for_each(|(n, x)| {
            for (n, x) in n.chunks_mut(channels).zip(x.chunks_mut(channels)) {
                for c in 0..channels {
                    n[c] *= inv_std[c];
                    x[c] = n[c] * gamma[c] + beta[c];
                }
            }
        });
    BatchNormCache {
        normalized,
        inv_std,
        stats: BatchStats { mean, var },
    }
}
}

multiversioned! {
/// Per-channel sums of `grad` and of `grad * normalized`, in one pass:
/// (d beta, d gamma) of batch norm.
fn scale_and_shift_gradients(grad: &[f32], normalized: &[f32], channels: usize) -> (Vec<f32>, Vec<f32>) {
    let partials: Vec<(Vec<f64>, Vec<f64>)> = grad
        .par_chunks(BLOCK * channels)
        .zip(normalized.par_chunks(BLOCK * channels))
        .map(|(g, n)| {
            let (mut shift, mut scale) = (vec![0f64; channels], vec![0f64; channels]);
            for (g, n) in g.chunks(channels).zip(n.chunks(channels)) {
                for c in 0..channels {
                    shift[c] += g[c] as f64;
                    scale[c] += (g[c] * n[c]) as f64;
                }
            }
            (shift, scale)
        })
        .collect();
    let (shift, scale): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
    let as_f32 = |sums: Vec<f64>| sums.iter().map(|s| *s as f32).collect();
    (
        as_f32(in_block_order(shift, channels)),
        as_f32(in_block_order(scale, channels)),
    )
}
}

multiversioned! {
/// Turns the output gradient `grad` of [`batch_norm_forward`] into the input
/// gradient in place; returns (d gamma, d beta).
pub fn batch_norm_backward(
    grad: &mut [f32],
    cache: &BatchNormCache,
    gamma: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let channels = gamma.len();
    let rows = (grad.len() / channels) as f32;
    let (d_beta, d_gamma) = scale_and_shift_gradients(grad, &cache.normalized, channels);
    let scale: Vec<f32> = (0..channels)
        .map(|c| gamma[c] * cache.inv_std[c] / rows)
        .collect();
    grad.par_chunks_mut(1 << 14)
        .zip(cache.normalized.par_chunks(1 << 14))
        .for_each(|(g, n)| {
            for (g, n) in g.chunks_mut(channels).zip(n.chunks(channels)) {
                for c in 0..channels {
                    g[c] = scale[c] * (rows * g[c] - d_beta[c] - n[c] * d_gamma[c]);
                }
            }
        });
    (d_gamma, d_beta)
}
}

/// burn's running-statistic update: `r = (1 - momentum) r + momentum batch`.
pub fn update_running(running: &mut [f32], batch: &[f32]) {
    let momentum = BN_MOMENTUM;
    let (keep, take) = ((1.0 - momentum) as f32, momentum as f32);
    running
        .iter_mut()
        .zip(batch)
        .for_each(|(r, b)| *r = *r * keep + b * take);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_each_channel_and_backward_matches_finite_differences() {
        let (rows, channels) = (300, 3);
        let x: Vec<f32> = (0..rows * channels)
            .map(|i| ((i * 37 % 101) as f32) / 10.0 + (i % channels) as f32)
            .collect();
        let gamma = [1.5, 0.5, -1.0];
        let beta = [0.1, -0.2, 0.3];
        let mut y = x.clone();
        let cache = batch_norm_forward(&mut y, &gamma, &beta);
        for c in 0..channels {
            let col: Vec<f32> = cache
                .normalized
                .iter()
                .skip(c)
                .step_by(channels)
                .copied()
                .collect();
            let mean = col.iter().sum::<f32>() / rows as f32;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / rows as f32;
            assert!(
                mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
                "{mean} {var}"
            );
        }
        // Loss = sum(w * y) for fixed weights w; compare dL/dx with central differences.
        let w: Vec<f32> = (0..x.len()).map(|i| ((i * 13 % 7) as f32) - 3.0).collect();
        let loss = |x: &[f32]| -> f64 {
            let mut y = x.to_vec();
            batch_norm_forward(&mut y, &gamma, &beta);
            y.iter()
                .zip(&w)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        };
        let mut grad = w.clone();
        let (d_gamma, d_beta) = batch_norm_backward(&mut grad, &cache, &gamma);
        for &i in &[0usize, 1, 2, 100, 451, 899] {
            let h = 1e-2f32;
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h as f64);
            assert!(
                (numeric - grad[i] as f64).abs() < 2e-2,
                "{i}: {numeric} vs {}",
                grad[i]
            );
        }
        let db0: f32 = w.iter().step_by(channels).sum();
        assert!((d_beta[0] - db0).abs() < 1e-3);
        assert!(d_gamma.iter().all(|v| v.is_finite()));
    }
}
