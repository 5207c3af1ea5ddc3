//! D's training-mode forward and backward passes, channels last, as a list
//! of layer calls: the image with its label planes -> conv1 -> LeakyReLU ->
//! conv2 [-> bn2] -> LeakyReLU [-> + the spread plane] -> conv3 (one logit)
//! [+ the projection term]; [and from conv2's LeakyReLU, the AC-GAN head
//! (class logits)]. A projection D may go without the label planes.

use rayon::prelude::*;

use super::activation::{leaky_backward, leaky_forward};
use super::class_projection::{
    ClassProjection, class_projection_backward_input, class_projection_backward_weights,
    class_projection_forward,
};
use super::conv::{conv_backward_input, conv_backward_weights, conv_forward, im2col, inside_taps};
use super::dense::{add_bias, bias_gradient, dense_forward};
use super::layout::{concat_rows, split_rows};
use super::norm::{BatchNormCache, BatchStats, batch_norm_backward, batch_norm_forward};
use super::params::DiscParams;
use super::spread::{Spread, spread_backward, spread_forward};
use super::{Dims, Operand, Threads, matmul, product};
use crate::arch::{FIRST_SIDE, IMAGE_SIDE, KERNEL, MID_SIDE, TAPS};
use crate::simd::multiversioned;

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
        let row = |t: usize| &w1[t * planes * d1..][..d1];
        let image = (0..TAPS).flat_map(|t| row(t).iter().copied()).collect();
        let class_maps = match dims.label_planes {
            true => class_maps(w1, dims),
            false => Vec::new(),
        };
        Self { image, class_maps }
    }

    /// conv1 of `images` [B, 784] with their label planes `labels` [B,
    /// classes] (rows of class weights): the image's taps as a product with
    /// its columns, then each row's mix of the class maps, then the bias.
    /// Returns ([B * 196, d1], the image columns).
    fn forward(&self, images: &[f32], labels: &[f32], bias: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let d1 = bias.len();
        let classes = self.class_maps.len() / (MID_SIDE * MID_SIDE * d1);
        let cols = im2col(images, IMAGE_SIDE, 1);
        let rows = cols.len() / TAPS;
        let mut h1 = product(
            Operand::new(&cols, rows, TAPS),
            Operand::new(&self.image, TAPS, d1),
            Threads::All,
        );
        if classes > 0 {
            let maps = Operand::new(&self.class_maps, classes, MID_SIDE * MID_SIDE * d1);
            let y = Operand::new(labels, labels.len() / classes, classes);
            matmul(&mut h1, y, maps, true, Threads::All);
        }
        add_bias(&mut h1, bias, Threads::All);
        (h1, cols)
    }

    /// conv1's weight and bias gradients from its output gradient `dh1`: the
    /// image rows' as a product with the columns, the label rows' from each
    /// class's summed output gradient.
    fn backward_weights(dh1: &[f32], cache: &DiscCache, dims: &Dims) -> (Vec<f32>, Vec<f32>) {
        let rows1 = cache.cols1.len() / TAPS;
        let batch = rows1 / (MID_SIDE * MID_SIDE);
        let cols1 = Operand::new(&cache.cols1, rows1, TAPS);
        let image = product(cols1.t(), Operand::new(dh1, rows1, dims.d1), Threads::All);
        let y = Operand::new(&cache.labels, batch, dims.classes);
        let dh1_rows = Operand::new(dh1, batch, MID_SIDE * MID_SIDE * dims.d1);
        let per_class = match dims.label_planes {
            true => product(y.t(), dh1_rows, Threads::All),
            false => Vec::new(),
        };
        (
            conv1_weight_gradient(&image, &per_class, dims),
            bias_gradient(dh1, dims.d1),
        )
    }

    /// The gradient of conv1's image input [B, 784] (the label planes are
    /// constants).
    fn backward_input(&self, dh1: &[f32]) -> Vec<f32> {
        conv_backward_input(dh1, IMAGE_SIDE, &self.image, self.image.len() / TAPS)
    }
}

multiversioned! {
/// Each class's label plane through conv1: [classes, 14 * 14 * d1], the
/// sum of the class's tap weights over the taps inside the image at each
/// output position (the plane is 1 there, 0 in the padding).
fn class_maps(w1: &[f32], dims: &Dims) -> Vec<f32> {
    let (planes, d1) = (dims.planes(), dims.d1);
    let row = |t: usize, plane: usize| &w1[(t * planes + plane) * d1..][..d1];
    let mut class_maps = vec![0f32; dims.classes * MID_SIDE * MID_SIDE * d1];
    class_maps
        .par_chunks_mut(MID_SIDE * MID_SIDE * d1)
        .enumerate()
        .for_each(|(c, map)| {
            for (pos, out) in map.chunks_mut(d1).enumerate() {
                for ky in inside_taps(IMAGE_SIDE, pos / MID_SIDE) {
                    for kx in inside_taps(IMAGE_SIDE, pos % MID_SIDE) {
                        let w = row(ky * KERNEL + kx, 1 + c);
                        out.iter_mut().zip(w).for_each(|(o, w)| *o += w);
                    }
                }
            }
        });
    class_maps
}

/// conv1's weight gradient [25 * (1 + classes), d1] from the image rows'
/// gradient [25, d1] and each class's summed output gradient
/// [classes, 14 * 14 * d1] (the adjoint of [`class_maps`]).
fn conv1_weight_gradient(image: &[f32], per_class: &[f32], dims: &Dims) -> Vec<f32> {
    let (planes, d1) = (dims.planes(), dims.d1);
    let mut w1 = vec![0f32; TAPS * planes * d1];
    w1.par_chunks_mut(planes * d1)
        .enumerate()
        .for_each(|(t, tap)| {
            let (ky, kx) = (t / KERNEL, t % KERNEL);
            tap[..d1].copy_from_slice(&image[t * d1..(t + 1) * d1]);
            for (c, out) in tap[d1..].chunks_mut(d1).enumerate() {
                let map =
                    &per_class[c * MID_SIDE * MID_SIDE * d1..][..MID_SIDE * MID_SIDE * d1];
                for oy in (0..MID_SIDE).filter(|&o| inside_taps(IMAGE_SIDE, o).any(|k| k == ky))
                {
                    for ox in
                        (0..MID_SIDE).filter(|&o| inside_taps(IMAGE_SIDE, o).any(|k| k == kx))
                    {
                        let g = &map[(oy * MID_SIDE + ox) * d1..][..d1];
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
    /// Absent when D has no batch norm.
    bn2: Option<BatchNormCache>,
    h2: Vec<f32>,
    /// With minibatch std: each group's spread, and h2 with its plane.
    spread: Option<(Vec<Spread>, Vec<f32>)>,
    pub(super) logits: Vec<f32>,
    /// The AC-GAN head's class logits, [B, classes], when D has it.
    pub(super) class_logits: Option<Vec<f32>>,
    /// The projection term's cache, when D has it.
    projection: Option<ClassProjection>,
}

impl DiscCache {
    /// The batch statistics of bn2 (if D has it), for its running statistics.
    pub(super) fn bn2_stats(&self) -> Option<&BatchStats> {
        self.bn2.as_ref().map(|bn2| &bn2.stats)
    }

    /// conv3's input: h2, with the spread plane when D has one.
    fn last_input(&self) -> &[f32] {
        self.spread
            .as_ref()
            .map_or(&self.h2, |(_, with_plane)| with_plane)
    }
}

/// D on `images` [B, 784] with conditions `labels` [B, classes], with batch
/// statistics (the caller moves the running ones: [`DiscCache::bn2_stats`]);
/// the spread plane, with minibatch std, is each of `groups` equal runs of
/// the batch's own (2 for the real and the generated batch in one pass). The label
/// planes are constant over the image, so their part of conv1 is, per
/// class, a fixed 14x14 map of the weights (`conv1`, made once per version
/// of the weights by the caller), mixed by each row's label weights.
pub(super) fn discriminator_forward(
    p: &DiscParams,
    conv1: &Conv1Parts,
    images: &[f32],
    labels: &[f32],
    groups: usize,
    dims: &Dims,
) -> DiscCache {
    let (mut h1, cols1) = conv1.forward(images, labels, &p.b1);
    leaky_forward(&mut h1, Threads::All);
    let (mut h2, cols2) = conv_forward(&h1, MID_SIDE, &p.w2, &p.b2);
    let bn2 = dims
        .d_norm
        .then(|| batch_norm_forward(&mut h2, &p.gamma2, &p.beta2));
    leaky_forward(&mut h2, Threads::All);
    let spread = dims.spread.then(|| {
        let batch = labels.len() / dims.classes;
        let spreads: Vec<Spread> = h2
            .chunks(h2.len() / groups)
            .map(|group| spread_forward(group, batch / groups))
            .collect();
        let group_rows = h2.len() / dims.d2 / groups;
        let plane: Vec<f32> = spreads
            .iter()
            .flat_map(|s| std::iter::repeat_n(s.value, group_rows))
            .collect();
        let with_plane = concat_rows(&h2, dims.d2, &plane, 1);
        (spreads, with_plane)
    });
    let mut cache = DiscCache {
        cols1,
        labels: labels.to_vec(),
        h1,
        cols2,
        bn2,
        h2,
        spread,
        logits: Vec::new(),
        class_logits: None,
        projection: None,
    };
    // conv3 over the whole 7x7 map: a dense layer, one logit per image; the
    // head, the same over h2 alone, one logit per class.
    let features = FIRST_SIDE * FIRST_SIDE * dims.last_channels();
    cache.logits = dense_forward(cache.last_input(), features, &p.w3, &p.b3, Threads::All);
    if dims.projection {
        let (terms, projection) =
            class_projection_forward(&cache.h2, labels, &p.embed, dims.classes);
        cache
            .logits
            .iter_mut()
            .zip(terms)
            .for_each(|(l, t)| *l += t);
        cache.projection = Some(projection);
    }
    let head_features = FIRST_SIDE * FIRST_SIDE * dims.d2;
    cache.class_logits = dims
        .aux
        .then(|| dense_forward(&cache.h2, head_features, &p.wa, &p.ba, Threads::All));
    cache
}

/// D's gradients from the logit gradient down to conv1's output.
struct TrunkGrads {
    /// conv2's output gradient (before bn2).
    dh2: Vec<f32>,
    /// conv1's output gradient (before its LeakyReLU).
    dh1: Vec<f32>,
    /// bn2's gradients (empty without it).
    gamma2: Vec<f32>,
    beta2: Vec<f32>,
}

/// Back through conv3 [and the spread plane] [and the head, when its
/// `class_grad` is given], LeakyReLU, bn2, conv2 and LeakyReLU.
fn trunk_backward(
    p: &DiscParams,
    cache: &DiscCache,
    (logit_grad, class_grad): OutputGrads,
    dims: &Dims,
) -> TrunkGrads {
    let features = FIRST_SIDE * FIRST_SIDE * dims.last_channels();
    let dl = Operand::new(logit_grad, logit_grad.len(), 1);
    let d_last = product(dl, Operand::new(&p.w3, 1, features), Threads::All);
    let mut dh2 = match &cache.spread {
        None => d_last,
        Some((spreads, _)) => {
            let (mut dh2, d_plane) = split_rows(&d_last, dims.d2, 1);
            let groups = spreads.len();
            let (group_len, plane_len) = (dh2.len() / groups, d_plane.len() / groups);
            for (g, spread) in spreads.iter().enumerate() {
                let d_value = d_plane[g * plane_len..][..plane_len].iter().sum();
                let h2 = &cache.h2[g * group_len..][..group_len];
                spread_backward(&mut dh2[g * group_len..][..group_len], h2, spread, d_value);
            }
            dh2
        }
    };
    if let Some(projection) = &cache.projection {
        class_projection_backward_input(projection, logit_grad, &mut dh2);
    }
    if let Some(class_grad) = class_grad {
        let batch = logit_grad.len();
        let head = Operand::new(&p.wa, FIRST_SIDE * FIRST_SIDE * dims.d2, dims.classes);
        let dc = Operand::new(class_grad, batch, dims.classes);
        matmul(&mut dh2, dc, head.t(), true, Threads::All);
    }
    leaky_backward(&mut dh2, &cache.h2);
    let (gamma2, beta2) = match &cache.bn2 {
        Some(bn2) => batch_norm_backward(&mut dh2, bn2, &p.gamma2),
        None => (Vec::new(), Vec::new()),
    };
    let mut dh1 = conv_backward_input(&dh2, MID_SIDE, &p.w2, dims.d2);
    leaky_backward(&mut dh1, &cache.h1);
    TrunkGrads {
        dh2,
        dh1,
        gamma2,
        beta2,
    }
}

/// The gradients of D's outputs: its logits `[B]`, and its class logits [B,
/// classes] where the head has a loss term on this pass.
pub(super) type OutputGrads<'a> = (&'a [f32], Option<&'a [f32]>);

/// D's parameter gradients from its output gradients (the D step); the head
/// gets zeros on a pass without its term.
pub(super) fn discriminator_backward(
    p: &DiscParams,
    cache: &DiscCache,
    grads: OutputGrads,
    dims: &Dims,
) -> DiscParams {
    let (logit_grad, class_grad) = grads;
    // conv3: its bias gradient is the plain sum of the logit gradients.
    let batch = logit_grad.len();
    let features = FIRST_SIDE * FIRST_SIDE * dims.last_channels();
    let w3 = product(
        Operand::new(cache.last_input(), batch, features).t(),
        Operand::new(logit_grad, batch, 1),
        Threads::All,
    );
    let b3 = vec![logit_grad.iter().sum()];
    let (wa, ba) = head_backward(cache, class_grad, dims);
    let trunk = trunk_backward(p, cache, grads, dims);
    let (w2, b2) = conv_backward_weights(&trunk.dh2, &cache.cols2, dims.d2);
    let (w1, b1) = Conv1Parts::backward_weights(&trunk.dh1, cache, dims);
    DiscParams {
        w1,
        b1,
        w2,
        b2,
        gamma2: trunk.gamma2,
        beta2: trunk.beta2,
        w3,
        b3,
        wa,
        ba,
        embed: cache
            .projection
            .as_ref()
            .map_or_else(Vec::new, |projection| {
                class_projection_backward_weights(projection, logit_grad, &cache.labels)
            }),
    }
}

/// The head's weight and bias gradients (empty without a head, zeros
/// without its term).
fn head_backward(
    cache: &DiscCache,
    class_grad: Option<&[f32]>,
    dims: &Dims,
) -> (Vec<f32>, Vec<f32>) {
    let features = FIRST_SIDE * FIRST_SIDE * dims.d2;
    match class_grad {
        Some(class_grad) => {
            let batch = class_grad.len() / dims.classes;
            let h2 = Operand::new(&cache.h2, batch, features);
            let dc = Operand::new(class_grad, batch, dims.classes);
            let weight = product(h2.t(), dc, Threads::All);
            (weight, bias_gradient(class_grad, dims.classes))
        }
        None if dims.aux => (vec![0.0; features * dims.classes], vec![0.0; dims.classes]),
        None => (Vec::new(), Vec::new()),
    }
}

/// The gradient of D's image input [B, 784] from its output gradients (the
/// G step: D's weights get none).
pub(super) fn discriminator_input_backward(
    p: &DiscParams,
    conv1: &Conv1Parts,
    cache: &DiscCache,
    grads: OutputGrads,
    dims: &Dims,
) -> Vec<f32> {
    let trunk = trunk_backward(p, cache, grads, dims);
    conv1.backward_input(&trunk.dh1)
}
