//! Improved precision and recall (Kynkaanniemi et al. 2019).
//!
//! Each set's manifold is the union of balls around its samples, each ball's
//! radius the distance to that sample's k-th nearest neighbour in its own
//! set. Precision: share of generated samples inside the real manifold
//! (are the fakes realistic?). Recall: share of real samples inside the
//! generated manifold (is the real variety covered?).
//!
//! Pairwise distances come from one matrix product per block of rows
//! (|a|^2 + |b|^2 - 2 a.b) on the tensor backend.

use burn::tensor::{Tensor, TensorData};

use crate::backend::inference_device;

/// Rows per block of the distance matrix (1,000 x 10,000 floats = 40 MB).
const BLOCK: usize = 1000;

/// Squared distances between each row of `a` and each row of `b`, visited
/// block by block: `visit(first_row_index, block)` with `block` holding
/// `rows_in_block x b_rows` values.
fn squared_distances(a: &[f32], b: &[f32], dim: usize, mut visit: impl FnMut(usize, &[f32])) {
    let device = inference_device();
    let nb = b.len() / dim;
    let bt = Tensor::<2>::from_data(TensorData::new(b.to_vec(), [nb, dim]), &device).transpose();
    let b_norms: Vec<f32> = b
        .chunks_exact(dim)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect();
    for (block_index, rows) in a.chunks(BLOCK * dim).enumerate() {
        let na = rows.len() / dim;
        let at = Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [na, dim]), &device);
        let mut dots = at
            .matmul(bt.clone())
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        for (i, row) in rows.chunks_exact(dim).enumerate() {
            let norm: f32 = row.iter().map(|v| v * v).sum();
            for (j, d) in dots[i * nb..(i + 1) * nb].iter_mut().enumerate() {
                *d = (norm + b_norms[j] - 2.0 * *d).max(0.0);
            }
        }
        visit(block_index * BLOCK, &dots);
    }
}

/// Squared distance from each row to its k-th nearest other row of the same set.
pub fn knn_radii(rows: &[f32], dim: usize, k: usize) -> Vec<f32> {
    let n = rows.len() / dim;
    assert!(n > k, "need more than k samples");
    let mut radii = vec![0f32; n];
    squared_distances(rows, rows, dim, |first, block| {
        for (i, dists) in block.chunks_exact(n).enumerate() {
            let mut d = dists.to_vec();
            // Index k: the row itself sits at distance 0, index 0.
            let (_, kth, _) = d.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
            radii[first + i] = *kth;
        }
    });
    radii
}

/// Share of `queries` inside the manifold of `support` (given its radii).
pub fn coverage(queries: &[f32], support: &[f32], support_radii: &[f32], dim: usize) -> f64 {
    let n_support = support.len() / dim;
    let mut inside = 0usize;
    squared_distances(queries, support, dim, |_, block| {
        inside += block
            .chunks_exact(n_support)
            .filter(|dists| dists.iter().zip(support_radii).any(|(d, r)| d <= r))
            .count();
    });
    inside as f64 / (queries.len() / dim).max(1) as f64
}

/// Recall of `fake` against `real`, with the rows of `fake` dealt into
/// interleaved sets of about `real`'s size and the sets' recalls averaged.
/// The measure compares sets of equal size (Kynkaanniemi et al.): each
/// ball's radius, its k-th neighbour's distance, shrinks as its set grows,
/// so one large set of samples against a small test split would recall
/// less the more samples were drawn.
pub fn recall(real: &[f32], fake: &[f32], dim: usize, k: usize) -> f64 {
    let (n_real, n_fake) = (real.len() / dim, fake.len() / dim);
    let sets = match n_real > k {
        true => (n_fake / n_real).max(1),
        false => 1,
    };
    let each = (0..sets).map(|set| {
        let rows = fake.chunks_exact(dim).skip(set).step_by(sets);
        let rows: Vec<f32> = rows.flatten().copied().collect();
        coverage(real, &rows, &knn_radii(&rows, dim, k), dim)
    });
    each.sum::<f64>() / sets as f64
}

/// (precision, recall) of `fake` against `real`, both rows of `dim` features.
pub fn precision_recall(real: &[f32], fake: &[f32], dim: usize, k: usize) -> (f64, f64) {
    let real_radii = knn_radii(real, dim, k);
    (
        coverage(fake, real, &real_radii, dim),
        recall(real, fake, dim, k),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn cloud(n: usize, dim: usize, centre: f32, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let d = Normal::new(centre, 1.0).unwrap();
        (0..n * dim).map(|_| d.sample(&mut rng)).collect()
    }

    #[test]
    fn radii_are_kth_neighbour_distances() {
        // Points on a line at 0, 1, 3, 6: third neighbour of 0 is 6 (distance^2 36).
        let rows = [0.0f32, 1.0, 3.0, 6.0];
        assert_eq!(knn_radii(&rows, 1, 3), vec![36.0, 25.0, 9.0, 36.0]);
        assert_eq!(knn_radii(&rows, 1, 1), vec![1.0, 1.0, 4.0, 9.0]);
    }

    #[test]
    fn identical_sets_score_one_and_disjoint_sets_zero() {
        let a = cloud(600, 6, 0.0, 1);
        let (p, r) = precision_recall(&a, &a, 6, 3);
        assert_eq!((p, r), (1.0, 1.0));
        let far = cloud(600, 6, 50.0, 2);
        let (p, r) = precision_recall(&a, &far, 6, 3);
        assert_eq!((p, r), (0.0, 0.0));
        // A collapsed generator (one tight cluster inside the real cloud):
        // precise, but recalls little.
        let collapsed: Vec<f32> = cloud(600, 6, 0.0, 3).iter().map(|v| v * 0.05).collect();
        let (p, r) = precision_recall(&a, &collapsed, 6, 3);
        assert!(p > 0.9 && r < 0.2, "p {p} r {r}");
    }

    #[test]
    fn recall_does_not_fall_as_more_samples_are_drawn() {
        // A generator a little off the real cloud: drawn once as many as
        // the real set and once ten times as many, it recalls about as much.
        let real = cloud(300, 6, 0.0, 4);
        let few = cloud(300, 6, 0.4, 5);
        let many = cloud(3000, 6, 0.4, 6);
        let (r_few, r_many) = (recall(&real, &few, 6, 3), recall(&real, &many, 6, 3));
        assert!((r_few - r_many).abs() < 0.05, "{r_few} vs {r_many}");
        // Each sample ten times in a row: every set holds each sample
        // once, so the recall is exactly the few's. As one set, each ball
        // would shrink to nothing (its third neighbour is its own copy).
        let repeated: Vec<f32> = (0..10 * 300)
            .flat_map(|i| few[(i / 10) * 6..][..6].to_vec())
            .collect();
        assert!((recall(&real, &repeated, 6, 3) - r_few).abs() < 1e-12);
        assert!(coverage(&real, &repeated, &knn_radii(&repeated, 6, 3), 6) < 0.1);
    }
}
