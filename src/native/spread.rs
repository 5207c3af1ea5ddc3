//! Minibatch standard deviation (Karras et al. 2018), forward and backward:
//! one number per batch, the mean over every feature of its standard
//! deviation across the batch's images, handed to D's last layer as one
//! more channel at every position (see `model::discriminator::with_spread_plane`).

use crate::model::discriminator::SPREAD_EPS;

/// What the backward pass needs from the forward.
#[derive(Debug, Clone)]
pub struct Spread {
    /// The batch's spread: the mean of `std`.
    pub value: f32,
    /// Each feature's mean over the batch.
    mean: Vec<f32>,
    /// Each feature's standard deviation over the batch (biased, with eps).
    std: Vec<f32>,
}

/// The spread of `x` [batch, features] (each image's features in one row).
pub fn spread_forward(x: &[f32], batch: usize) -> Spread {
    let features = x.len() / batch;
    let mut mean = vec![0f32; features];
    for row in x.chunks(features) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= batch as f32);
    let mut var = vec![0f32; features];
    for row in x.chunks(features) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    let std: Vec<f32> = var
        .iter()
        .map(|s| (s / batch as f32 + SPREAD_EPS).sqrt())
        .collect();
    let value = std.iter().sum::<f32>() / features as f32;
    Spread { value, mean, std }
}

/// Adds to `dx` [batch, features] the gradient that flows back from the
/// spread's gradient `d_value` (the batch mean's own part sums to zero).
pub fn spread_backward(dx: &mut [f32], x: &[f32], spread: &Spread, d_value: f32) {
    let features = spread.std.len();
    let batch = x.len() / features;
    let scale = d_value / (features * batch) as f32;
    for (dx_row, x_row) in dx.chunks_mut(features).zip(x.chunks(features)) {
        for (((d, v), m), s) in dx_row
            .iter_mut()
            .zip(x_row)
            .zip(&spread.mean)
            .zip(&spread.std)
        {
            *d += scale * (v - m) / s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_its_gradient_match_the_definition_and_finite_differences() {
        let (batch, features) = (3, 4);
        let x: Vec<f32> = (0..batch * features)
            .map(|i| ((i * 7 % 5) as f32 - 2.0) / 3.0)
            .collect();
        // Feature 0 takes the values 0/3... by hand: each column's population std.
        let column_std = |f: usize| {
            let col: Vec<f32> = (0..batch).map(|b| x[b * features + f]).collect();
            let m = col.iter().sum::<f32>() / batch as f32;
            (col.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / batch as f32 + SPREAD_EPS).sqrt()
        };
        let expected = (0..features).map(column_std).sum::<f32>() / features as f32;
        let s = spread_forward(&x, batch);
        assert!((s.value - expected).abs() < 1e-6);
        let mut grad = vec![0f32; x.len()];
        spread_backward(&mut grad, &x, &s, 1.0);
        let h = 1e-3;
        for i in 0..x.len() {
            let at = |d: f32| {
                let mut y = x.clone();
                y[i] += d;
                spread_forward(&y, batch).value
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 1e-3,
                "{i}: {numeric} vs {}",
                grad[i]
            );
        }
    }
}
