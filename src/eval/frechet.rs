//! The Frechet distance between two Gaussians fitted to feature sets
//! (Heusel et al. 2017's FID, here in the evaluator's feature space):
//!
//! d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)).
//!
//! The trace of the matrix square root is computed as
//! tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), a symmetric positive semi-definite
//! product, with nalgebra's symmetric eigen-solver; tiny negative
//! eigenvalues from rounding are clamped to zero.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Mean and covariance (unbiased, as `numpy.cov`) of a set of feature rows.
#[derive(Debug, Clone)]
pub struct Gaussian {
    /// The mean feature vector, `[dim]`.
    pub mean: DVector<f64>,
    /// The covariance, [dim, dim].
    pub cov: DMatrix<f64>,
}

impl Gaussian {
    /// Fits rows of `dim` values each (at least two rows).
    pub fn fit(rows: &[f32], dim: usize) -> Self {
        let n = rows.len() / dim;
        assert!(n >= 2, "a covariance needs at least two samples");
        let mut mean = DVector::zeros(dim);
        for row in rows.chunks_exact(dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean /= n as f64;
        let centred = DMatrix::from_fn(n, dim, |i, j| rows[i * dim + j] as f64 - mean[j]);
        let cov = centred.tr_mul(&centred) / (n as f64 - 1.0);
        Self { mean, cov }
    }

    /// Root mean squared distance of the samples to their mean: sqrt(tr(S)).
    pub fn spread(&self) -> f64 {
        self.cov.trace().max(0.0).sqrt()
    }
}

/// Square root of a symmetric positive semi-definite matrix.
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = SymmetricEigen::new(m.clone());
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

/// The squared Frechet distance between two Gaussians (what FID reports).
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    let diff = &a.mean - &b.mean;
    let root_a = sqrt_psd(&a.cov);
    let middle = &root_a * &b.cov * &root_a;
    let middle = (&middle + middle.transpose()) * 0.5; // symmetric up to rounding
    let eigen = SymmetricEigen::new(middle);
    let trace_sqrt: f64 = eigen.eigenvalues.iter().map(|l| l.max(0.0).sqrt()).sum();
    (diff.norm_squared() + a.cov.trace() + b.cov.trace() - 2.0 * trace_sqrt).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn samples(n: usize, dim: usize, mean: f32, std: f32, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let d = Normal::new(mean, std).unwrap();
        (0..n * dim).map(|_| d.sample(&mut rng)).collect()
    }

    #[test]
    fn identical_sets_are_at_distance_zero() {
        let x = samples(500, 8, 0.0, 1.0, 1);
        let g = Gaussian::fit(&x, 8);
        assert!(frechet_distance(&g, &g) < 1e-6);
    }

    #[test]
    fn matches_the_closed_form_for_isotropic_gaussians() {
        // N(0, I) vs N(m, s^2 I) in d dims: d^2 = d m^2 + d (1 - s)^2.
        let (dim, m, s) = (4, 0.5f32, 2.0f32);
        let a = Gaussian::fit(&samples(40_000, dim, 0.0, 1.0, 2), dim);
        let b = Gaussian::fit(&samples(40_000, dim, m, s, 3), dim);
        let expected = dim as f64 * (m as f64).powi(2) + dim as f64 * (1.0 - s as f64).powi(2);
        let got = frechet_distance(&a, &b);
        assert!((got - expected).abs() < 0.1, "{got} vs {expected}");
        assert!((b.spread() - (dim as f64).sqrt() * s as f64).abs() < 0.05);
    }
}
