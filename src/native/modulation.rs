//! The class-conditional part of G's batch norms, forward and backward
//! ([`crate::model::generator::ClassModulation`]): each image's rows of a
//! channels-last batch are scaled by `1 + y . gain` and shifted by
//! `y . shift`, `y` its condition row.

use rayon::prelude::*;

use crate::simd::multiversioned;

/// What the backward pass needs from the forward.
#[derive(Debug, Clone)]
pub struct ModulationCache {
    /// The input, before scaling and shifting, [rows, channels].
    unmodulated: Vec<f32>,
    /// `1 + y . gain` per image, [images, channels].
    scales: Vec<f32>,
    channels: usize,
}

/// `y . m` for each condition row `y` of `conditions` [images, classes] and
/// `m` [classes, channels]: [images, channels].
fn per_image(conditions: &[f32], m: &[f32], channels: usize) -> Vec<f32> {
    let classes = m.len() / channels;
    conditions
        .chunks(classes)
        .flat_map(|y| {
            let mut row = vec![0f32; channels];
            for (w, class) in y.iter().zip(m.chunks(channels)) {
                if *w != 0.0 {
                    row.iter_mut().zip(class).for_each(|(r, c)| *r += w * c);
                }
            }
            row
        })
        .collect()
}

multiversioned! {
/// Scales and shifts `h` ([images * positions, channels]) in place, per
/// image, by its condition row in `conditions` ([images, classes]); `gain`
/// and `shift` are [classes, channels]. Returns the scales `1 + y . gain`,
/// [images, channels]. Sampling calls this alone; training keeps what its
/// backward needs ([`modulation_forward`]).
pub fn modulate(
    h: &mut [f32],
    conditions: &[f32],
    classes: usize,
    gain: &[f32],
    shift: &[f32],
) -> Vec<f32> {
    let channels = gain.len() / classes;
    let images = conditions.len() / classes;
    let scales: Vec<f32> = per_image(conditions, gain, channels)
        .into_iter()
        .map(|g| 1.0 + g)
        .collect();
    let shifts = per_image(conditions, shift, channels);
    h.par_chunks_mut((h.len() / images.max(1)).max(1))
        .zip(scales.par_chunks(channels).zip(shifts.par_chunks(channels)))
        .for_each(|(image, (scale, shift))| {
            for row in image.chunks_mut(channels) {
                for ((v, s), t) in row.iter_mut().zip(scale).zip(shift) {
                    *v = *v * s + t;
                }
            }
        });
    scales
}
}

/// [`modulate`] in training: also keeps the input and the scales for
/// [`modulation_backward`].
pub fn modulation_forward(
    h: &mut [f32],
    conditions: &[f32],
    classes: usize,
    gain: &[f32],
    shift: &[f32],
) -> ModulationCache {
    let unmodulated = h.to_vec();
    let scales = modulate(h, conditions, classes, gain, shift);
    ModulationCache {
        unmodulated,
        scales,
        channels: gain.len() / classes,
    }
}

multiversioned! {
/// Backward of [`modulation_forward`]: turns `grad` (of its output) into the
/// gradient of its input in place, and returns (gain, shift) gradients.
pub fn modulation_backward(
    grad: &mut [f32],
    cache: &ModulationCache,
    conditions: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let channels = cache.channels;
    let images = cache.scales.len() / channels;
    let classes = conditions.len() / images;
    let rows_per_image = grad.len() / images;
    // Per image: sum over positions of grad * unmodulated (the scale's
    // gradient) and of grad (the shift's), then grad *= scale.
    let sums: Vec<(Vec<f32>, Vec<f32>)> = grad
        .par_chunks_mut(rows_per_image)
        .zip(cache.unmodulated.par_chunks(rows_per_image))
        .zip(cache.scales.par_chunks(channels))
        .map(|((g, x), scale)| {
            let mut d_scale = vec![0f32; channels];
            let mut d_shift = vec![0f32; channels];
            for (g, x) in g.chunks_mut(channels).zip(x.chunks(channels)) {
                for c in 0..channels {
                    d_scale[c] += g[c] * x[c];
                    d_shift[c] += g[c];
                    g[c] *= scale[c];
                }
            }
            (d_scale, d_shift)
        })
        .collect();
    // gain[k, c] = sum over images of y[k] * d_scale[c]; shift likewise.
    let mut gain = vec![0f32; classes * channels];
    let mut shift = vec![0f32; classes * channels];
    for (y, (d_scale, d_shift)) in conditions.chunks(classes).zip(&sums) {
        for (k, w) in y.iter().enumerate() {
            if *w == 0.0 {
                continue;
            }
            let at = k * channels..(k + 1) * channels;
            gain[at.clone()]
                .iter_mut()
                .zip(d_scale)
                .for_each(|(a, d)| *a += w * d);
            shift[at]
                .iter_mut()
                .zip(d_shift)
                .for_each(|(a, d)| *a += w * d);
        }
    }
    (gain, shift)
}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (images, positions, channels, classes) and values for a small case;
    /// conditions are one-hot rows and one blend.
    fn case() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, usize) {
        let (images, positions, channels, classes) = (3, 4, 5, 3);
        let value = |i: usize, k: usize| ((i * k % 17) as f32 - 8.0) / 8.0;
        let h = (0..images * positions * channels)
            .map(|i| value(i, 7))
            .collect();
        let gain = (0..classes * channels).map(|i| value(i, 5)).collect();
        let shift = (0..classes * channels).map(|i| value(i, 3)).collect();
        let conditions = vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.25, 0.75, 0.0];
        (h, conditions, gain, shift, classes)
    }

    /// sum(out * weights) for the modulated `h`.
    fn loss(h: &[f32], c: &[f32], classes: usize, gain: &[f32], shift: &[f32]) -> f64 {
        let mut out = h.to_vec();
        modulation_forward(&mut out, c, classes, gain, shift);
        out.iter()
            .enumerate()
            .map(|(i, v)| *v as f64 * ((i % 7) as f64 - 3.0))
            .sum()
    }

    #[test]
    fn forward_is_the_definition() {
        let (h, c, gain, shift, classes) = case();
        let channels = gain.len() / classes;
        let mut out = h.clone();
        modulation_forward(&mut out, &c, classes, &gain, &shift);
        let rows_per_image = h.len() / 3;
        for (i, (o, x)) in out.iter().zip(&h).enumerate() {
            let (image, ch) = (i / rows_per_image, i % channels);
            let y = &c[image * classes..(image + 1) * classes];
            let dot = |m: &[f32]| {
                (0..classes)
                    .map(|k| y[k] * m[k * channels + ch])
                    .sum::<f32>()
            };
            let want = x * (1.0 + dot(&gain)) + dot(&shift);
            assert!((o - want).abs() < 1e-6, "{i}: {o} vs {want}");
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let (h, c, gain, shift, classes) = case();
        let mut grad: Vec<f32> = (0..h.len()).map(|i| (i % 7) as f32 - 3.0).collect();
        let cache = modulation_forward(&mut h.clone(), &c, classes, &gain, &shift);
        let (d_gain, d_shift) = modulation_backward(&mut grad, &cache, &c);
        // The output is linear in each argument alone: central differences
        // are exact up to rounding.
        let numeric = |which: usize, i: usize| {
            let eps = 0.5f32;
            let mut args = [h.clone(), gain.clone(), shift.clone()];
            args[which][i] += eps;
            let up = loss(&args[0], &c, classes, &args[1], &args[2]);
            args[which][i] -= 2.0 * eps;
            let down = loss(&args[0], &c, classes, &args[1], &args[2]);
            ((up - down) / (2.0 * eps as f64)) as f32
        };
        for (which, analytic) in [(0, &grad), (1, &d_gain), (2, &d_shift)] {
            for (i, a) in analytic.iter().enumerate() {
                let n = numeric(which, i);
                assert!((a - n).abs() < 1e-4, "argument {which}[{i}]: {a} vs {n}");
            }
        }
        assert!(d_gain.iter().any(|v| *v != 0.0) && d_shift.iter().any(|v| *v != 0.0));
    }
}
