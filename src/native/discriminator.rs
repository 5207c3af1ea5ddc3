//! D's training-mode forward and backward passes: the image with its label
//! planes -> conv1 -> LeakyReLU -> conv2 -> bn2 -> LeakyReLU -> conv3 (one
//! logit), channels last.

use rayon::prelude::*;

use super::layout::DiscLayers;
use super::{CpuGan, Dims, MID, Network, SIDE, SMALL};
use crate::cpu::conv::{KERNEL, TAPS, gather, im2col, inside_taps};
use crate::cpu::gemm::{Operand, Threads, matmul, product};
use crate::cpu::{add_bias, channel_sums, leaky_backward, leaky_in_place, norm};

/// D's conv1 weight ([25 * (1 + classes), d1], tap-major) split by input:
/// the image channel's taps, and one 14x14 output map per class (the sum of
/// the class plane's taps that fall inside the image at each position).
#[derive(Debug, Clone)]
pub(super) struct Conv1Parts {
    /// [25, d1].
    image: Vec<f32>,
    /// [classes, 14 * 14 * d1].
    class_maps: Vec<f32>,
}

impl Conv1Parts {
    pub(super) fn new(w1: &[f32], dims: &Dims) -> Self {
        let (planes, d1) = (dims.planes(), dims.d1);
        let row = |t: usize, plane: usize| &w1[(t * planes + plane) * d1..][..d1];
        let image = (0..TAPS).flat_map(|t| row(t, 0).iter().copied()).collect();
        let mut class_maps = vec![0f32; dims.classes * MID * MID * d1];
        class_maps
            .par_chunks_mut(MID * MID * d1)
            .enumerate()
            .for_each(|(c, map)| {
                for (pos, out) in map.chunks_mut(d1).enumerate() {
                    for ky in inside_taps(SIDE, pos / MID) {
                        for kx in inside_taps(SIDE, pos % MID) {
                            let w = row(ky * KERNEL + kx, 1 + c);
                            out.iter_mut().zip(w).for_each(|(o, w)| *o += w);
                        }
                    }
                }
            });
        Self { image, class_maps }
    }

    /// conv1's weight gradient [25 * (1 + classes), d1] from the image rows'
    /// gradient [25, d1] and each class's summed output gradient
    /// [classes, 14 * 14 * d1] (the adjoint of [`Conv1Parts::new`]).
    fn weight_gradient(image: &[f32], per_class: &[f32], dims: &Dims) -> Vec<f32> {
        let (planes, d1) = (dims.planes(), dims.d1);
        let mut w1 = vec![0f32; TAPS * planes * d1];
        w1.par_chunks_mut(planes * d1)
            .enumerate()
            .for_each(|(t, tap)| {
                let (ky, kx) = (t / KERNEL, t % KERNEL);
                tap[..d1].copy_from_slice(&image[t * d1..(t + 1) * d1]);
                for (c, out) in tap[d1..].chunks_mut(d1).enumerate() {
                    let map = &per_class[c * MID * MID * d1..][..MID * MID * d1];
                    for oy in (0..MID).filter(|&o| inside_taps(SIDE, o).any(|k| k == ky)) {
                        for ox in (0..MID).filter(|&o| inside_taps(SIDE, o).any(|k| k == kx)) {
                            let g = &map[(oy * MID + ox) * d1..][..d1];
                            out.iter_mut().zip(g).for_each(|(o, g)| *o += g);
                        }
                    }
                }
            });
        w1
    }
}

/// What D's backward pass needs from its forward.
pub(super) struct DiscCache {
    /// im2col of the image, [B*196, 25].
    cols1: Vec<f32>,
    /// The label weights of each row, [B, classes].
    labels: Vec<f32>,
    h1: Vec<f32>,
    /// im2col of h1, [B*49, 25 * d1].
    cols2: Vec<f32>,
    bn2: norm::BatchNormCache,
    h2: Vec<f32>,
    pub(super) logits: Vec<f32>,
}

impl CpuGan {
    pub(super) fn discriminator_forward(
        &mut self,
        d: &DiscLayers,
        conv1: &Conv1Parts,
        images: &[f32],
        labels: &[f32],
        batch: usize,
    ) -> DiscCache {
        let dims = self.dims;
        // conv1 -> LeakyReLU. The label planes are constant over the image,
        // so their part of conv1 is, per class, a fixed 14x14 map of the
        // weights (differing near the border, where taps fall in the
        // padding). `conv1` holds those maps, made once per version of the
        // weights by the caller; each row mixes them by its label weights,
        // instead of convolving ten planes per image.
        let cols1 = im2col(images, SIDE, 1);
        let rows1 = batch * MID * MID;
        let image_cols = Operand::new(&cols1, rows1, TAPS);
        let w1_image = Operand::new(&conv1.image, TAPS, dims.d1);
        let mut h1 = product(image_cols, w1_image, Threads::All);
        let maps = Operand::new(&conv1.class_maps, dims.classes, MID * MID * dims.d1);
        let y = Operand::new(labels, batch, dims.classes);
        matmul(&mut h1, y, maps, true, Threads::All);
        add_bias(&mut h1, &d.b1);
        leaky_in_place(&mut h1);
        // conv2 -> bn2 -> LeakyReLU.
        let cols2 = im2col(&h1, MID, dims.d1);
        let rows2 = batch * SMALL * SMALL;
        let w2 = Operand::new(&d.w2, TAPS * dims.d1, dims.d2);
        let mut h2 = product(
            Operand::new(&cols2, rows2, TAPS * dims.d1),
            w2,
            Threads::All,
        );
        add_bias(&mut h2, &d.b2);
        let bn2 =
            self.batch_norm_leaky(Network::Discriminator, "bn2", &mut h2, &d.gamma2, &d.beta2);
        // conv3 over the whole 7x7 map: one dot product per image.
        let features = Operand::new(&h2, batch, SMALL * SMALL * dims.d2);
        let w3 = Operand::new(&d.w3, SMALL * SMALL * dims.d2, 1);
        let mut logits = product(features, w3, Threads::All);
        logits.iter_mut().for_each(|l| *l += d.b3[0]);
        DiscCache {
            cols1,
            labels: labels.to_vec(),
            h1,
            cols2,
            bn2,
            h2,
            logits,
        }
    }

    /// D's backward from the logit gradient: its weight gradients (when
    /// `weights`) and, otherwise, the gradient of its image input [B, 784].
    pub(super) fn discriminator_backward(
        &self,
        d: &DiscLayers,
        conv1: &Conv1Parts,
        cache: &DiscCache,
        logit_grad: &[f32],
        weights: bool,
    ) -> (Option<DiscLayers>, Option<Vec<f32>>) {
        let dims = self.dims;
        let batch = logit_grad.len();
        let features = SMALL * SMALL * dims.d2;
        let dl = Operand::new(logit_grad, batch, 1);
        // conv3.
        let (w3, b3) = if weights {
            let w3 = product(
                Operand::new(&cache.h2, batch, features).t(),
                dl,
                Threads::All,
            );
            (w3, vec![logit_grad.iter().sum()])
        } else {
            (vec![], vec![])
        };
        let mut dh2 = product(dl, Operand::new(&d.w3, 1, features), Threads::All);
        // LeakyReLU, bn2, conv2.
        leaky_backward(&mut dh2, &cache.h2);
        let (gamma2, beta2) = norm::backward(&mut dh2, &cache.bn2, &d.gamma2);
        let rows2 = batch * SMALL * SMALL;
        let da2 = Operand::new(&dh2, rows2, dims.d2);
        let (w2, b2) = if weights {
            let cols2 = Operand::new(&cache.cols2, rows2, TAPS * dims.d1);
            let w2 = product(cols2.t(), da2, Threads::All);
            (w2, channel_sums(&dh2, dims.d2))
        } else {
            (vec![], vec![])
        };
        let w2m = Operand::new(&d.w2, TAPS * dims.d1, dims.d2);
        let dcol = product(da2, w2m.t(), Threads::All);
        let mut dh1 = vec![0f32; batch * MID * MID * dims.d1];
        gather(&dcol, SMALL, &vec![0.0; dims.d1], &mut dh1, |v| v);
        drop(dcol);
        // LeakyReLU, conv1.
        leaky_backward(&mut dh1, &cache.h1);
        let rows1 = batch * MID * MID;
        let da1 = Operand::new(&dh1, rows1, dims.d1);
        if weights {
            // The image rows' gradient as a product with the columns; the
            // label rows' from each class's summed output gradient.
            let cols1 = Operand::new(&cache.cols1, rows1, TAPS);
            let image = product(cols1.t(), da1, Threads::All);
            let y = Operand::new(&cache.labels, batch, dims.classes);
            let da1_rows = Operand::new(&dh1, batch, MID * MID * dims.d1);
            let per_class = product(y.t(), da1_rows, Threads::All);
            let grads = DiscLayers {
                w1: Conv1Parts::weight_gradient(&image, &per_class, &dims),
                b1: channel_sums(&dh1, dims.d1),
                w2,
                b2,
                gamma2,
                beta2,
                w3,
                b3,
            };
            return (Some(grads), None);
        }
        let dcol = product(
            da1,
            Operand::new(&conv1.image, TAPS, dims.d1).t(),
            Threads::All,
        );
        let mut dx = vec![0f32; batch * SIDE * SIDE];
        gather(&dcol, MID, &[0.0], &mut dx, |v| v);
        (None, Some(dx))
    }
}
