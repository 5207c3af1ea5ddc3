//! The projection discriminator's class term (Miyato & Koyama 2018), as
//! `model::discriminator` adds it to D's logit: `embed(y) . mean_pool(h)`
//! for each image, where `h` [B * positions, channels] are D's last
//! features (channels last) and `embed(y)` is the row of class weights `y`
//! times the embedding [classes, channels].

use super::{Operand, Threads, product};

/// What the term's backward passes need from its forward.
#[derive(Debug, Clone)]
pub struct ClassProjection {
    /// Each image's features averaged over the positions, [B, channels].
    pooled: Vec<f32>,
    /// Each image's class vector `y . embed`, [B, channels].
    class_vectors: Vec<f32>,
}

/// The term for each image, `[B]`, with its cache: `features` [B * positions,
/// channels], `labels` [B, classes], `embed` [classes, channels].
pub fn class_projection_forward(
    features: &[f32],
    labels: &[f32],
    embed: &[f32],
    classes: usize,
) -> (Vec<f32>, ClassProjection) {
    let (batch, channels) = (labels.len() / classes, embed.len() / classes);
    let positions = features.len() / (batch * channels);
    let mut pooled = vec![0f32; batch * channels];
    for (image, sums) in features
        .chunks(positions * channels)
        .zip(pooled.chunks_mut(channels))
    {
        for row in image.chunks(channels) {
            sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
        sums.iter_mut().for_each(|s| *s /= positions as f32);
    }
    let class_vectors = product(
        Operand::new(labels, batch, classes),
        Operand::new(embed, classes, channels),
        Threads::All,
    );
    let terms = pooled
        .chunks(channels)
        .zip(class_vectors.chunks(channels))
        .map(|(p, v)| p.iter().zip(v).map(|(p, v)| p * v).sum())
        .collect();
    let cache = ClassProjection {
        pooled,
        class_vectors,
    };
    (terms, cache)
}

/// Adds the term's gradient with respect to the features to
/// `features_grad` [B * positions, channels], from each image's logit
/// gradient `logit_grad` `[B]`: the image's class vector over the positions.
pub fn class_projection_backward_input(
    cache: &ClassProjection,
    logit_grad: &[f32],
    features_grad: &mut [f32],
) {
    let channels = cache.class_vectors.len() / logit_grad.len();
    let positions = features_grad.len() / cache.class_vectors.len();
    let images = features_grad.chunks_mut(positions * channels);
    for ((image, vector), g) in images
        .zip(cache.class_vectors.chunks(channels))
        .zip(logit_grad)
    {
        let scale = g / positions as f32;
        for row in image.chunks_mut(channels) {
            row.iter_mut()
                .zip(vector)
                .for_each(|(d, v)| *d += scale * v);
        }
    }
}

/// The embedding's gradient [classes, channels] from the logit gradient:
/// `labels^T . (logit_grad * pooled)`.
pub fn class_projection_backward_weights(
    cache: &ClassProjection,
    logit_grad: &[f32],
    labels: &[f32],
) -> Vec<f32> {
    let batch = logit_grad.len();
    let channels = cache.pooled.len() / batch;
    let weighted: Vec<f32> = cache
        .pooled
        .chunks(channels)
        .zip(logit_grad)
        .flat_map(|(p, g)| p.iter().map(move |p| p * g))
        .collect();
    product(
        Operand::new(labels, batch, labels.len() / batch).t(),
        Operand::new(&weighted, batch, channels),
        Threads::All,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both gradients against central finite differences of the summed,
    /// weighted terms.
    #[test]
    fn class_projection_gradients_match_finite_differences() {
        let (batch, positions, channels, classes) = (3, 4, 5, 3);
        let wave = |n: usize, k: usize| -> Vec<f32> {
            (0..n).map(|i| ((i * k % 13) as f32 - 6.0) / 5.0).collect()
        };
        let features = wave(batch * positions * channels, 7);
        let embed = wave(classes * channels, 5);
        // One-hot rows and a blend (as a morph asks).
        let labels = vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.3, 0.7, 0.0];
        let logit_grad = vec![0.5, -1.0, 2.0];
        let loss = |f: &[f32], e: &[f32]| -> f32 {
            let (terms, _) = class_projection_forward(f, &labels, e, classes);
            terms.iter().zip(&logit_grad).map(|(t, g)| t * g).sum()
        };
        let (_, cache) = class_projection_forward(&features, &labels, &embed, classes);
        let mut d_features = vec![0.0; features.len()];
        class_projection_backward_input(&cache, &logit_grad, &mut d_features);
        let d_embed = class_projection_backward_weights(&cache, &logit_grad, &labels);
        let h = 1e-2;
        let check = |analytic: &[f32], at: &dyn Fn(usize, f32) -> f32| {
            for (i, &g) in analytic.iter().enumerate() {
                let numeric = (at(i, h) - at(i, -h)) / (2.0 * h);
                assert!((numeric - g).abs() < 1e-3, "{i}: {numeric} vs {g}");
            }
        };
        check(&d_features, &|i, d| {
            let mut f = features.clone();
            f[i] += d;
            loss(&f, &embed)
        });
        check(&d_embed, &|i, d| {
            let mut e = embed.clone();
            e[i] += d;
            loss(&features, &e)
        });
        assert!(d_features.iter().any(|&g| g != 0.0) && d_embed.iter().any(|&g| g != 0.0));
    }
}
