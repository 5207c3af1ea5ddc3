//! D's training-mode forward and backward passes, channels last: a walk
//! over its description's layers ([`DiscriminatorNet`]): the image with its
//! label planes -> conv1 -> LeakyReLU -> each further stride-2 convolution
//! [-> its batch norm] -> LeakyReLU [-> + the spread plane] -> the last,
//! over the whole map (one logit) [+ the projection term]; [and from the
//! last map, the AC-GAN head (class logits)]. A projection D may go without
//! the label planes.

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
use super::params::{LayerParams, NetParams};
use super::spread::{Spread, spread_backward, spread_forward};
use super::{Operand, Threads, matmul, product};
use crate::arch::{KERNEL, TAPS};
use crate::model::net::DiscriminatorNet;
use crate::simd::multiversioned;

/// conv1's geometry, from D's description.
#[derive(Debug, Clone, Copy)]
pub(super) struct Conv1Shape {
    /// Image channels.
    channels: usize,
    /// Input planes: the image's channels [and one label plane per class].
    planes: usize,
    /// Output channels.
    d1: usize,
    /// The image's side (the output's is half of it).
    side: usize,
    /// Label planes (0 without them).
    classes: usize,
}

impl Conv1Shape {
    fn of(net: &DiscriminatorNet) -> Self {
        let conv1 = &net.layers[0];
        Self {
            channels: net.image.channels,
            planes: conv1.inputs,
            d1: conv1.outputs,
            side: conv1.side,
            classes: conv1.inputs - net.image.channels,
        }
    }

    /// Values of one class's map: [half * half, d1].
    fn map_len(&self) -> usize {
        let half = self.side / 2;
        half * half * self.d1
    }
}

/// D's conv1 weight ([25 * planes, d1], tap-major) split by input: the
/// image channels' taps, and one output map per class (the sum of the
/// class plane's taps that fall inside the image at each position).
#[derive(Debug, Clone)]
pub(super) struct Conv1Parts {
    /// [25 * channels, d1].
    image: Vec<f32>,
    /// [classes, half * half * d1].
    class_maps: Vec<f32>,
    shape: Conv1Shape,
}

impl Conv1Parts {
    pub(super) fn new(w1: &[f32], net: &DiscriminatorNet) -> Self {
        let shape = Conv1Shape::of(net);
        let (planes, d1, image_rows) = (shape.planes, shape.d1, shape.channels * shape.d1);
        let image = (0..TAPS)
            .flat_map(|t| w1[t * planes * d1..][..image_rows].iter().copied())
            .collect();
        let class_maps = match shape.classes {
            0 => Vec::new(),
            _ => class_maps(w1, shape),
        };
        Self {
            image,
            class_maps,
            shape,
        }
    }

    /// conv1 of `images` [B, side * side * channels] with their label
    /// planes `labels` [B, classes] (rows of class weights): the image's
    /// taps as a product with its columns, then each row's mix of the class
    /// maps, then the bias. Returns ([B * half * half, d1], the image columns).
    fn forward(&self, images: &[f32], labels: &[f32], bias: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let Conv1Shape {
            channels, classes, ..
        } = self.shape;
        let cols = im2col(images, self.shape.side, channels);
        let rows = cols.len() / (TAPS * channels);
        let mut h1 = product(
            Operand::new(&cols, rows, TAPS * channels),
            Operand::new(&self.image, TAPS * channels, self.shape.d1),
            Threads::All,
        );
        if classes > 0 {
            let maps = Operand::new(&self.class_maps, classes, self.shape.map_len());
            let y = Operand::new(labels, labels.len() / classes, classes);
            matmul(&mut h1, y, maps, true, Threads::All);
        }
        add_bias(&mut h1, bias, Threads::All);
        (h1, cols)
    }

    /// conv1's weight and bias gradients from its output gradient `dh1`: the
    /// image rows' as a product with the columns, the label rows' from each
    /// class's summed output gradient.
    fn backward_weights(&self, dh1: &[f32], cache: &DiscCache) -> (Vec<f32>, Vec<f32>) {
        let shape = self.shape;
        let cols1 = &cache.downs[0].cols;
        let rows1 = cols1.len() / (TAPS * shape.channels);
        let batch = dh1.len() / shape.map_len();
        let cols1 = Operand::new(cols1, rows1, TAPS * shape.channels);
        let image = product(cols1.t(), Operand::new(dh1, rows1, shape.d1), Threads::All);
        let y = Operand::new(&cache.labels, batch, cache.labels.len() / batch);
        let dh1_rows = Operand::new(dh1, batch, shape.map_len());
        let per_class = match shape.classes {
            0 => Vec::new(),
            _ => product(y.t(), dh1_rows, Threads::All),
        };
        (
            conv1_weight_gradient(&image, &per_class, shape),
            bias_gradient(dh1, shape.d1),
        )
    }

    /// The gradient of conv1's image input [B, side * side * channels] (the
    /// label planes are constants).
    fn backward_input(&self, dh1: &[f32]) -> Vec<f32> {
        conv_backward_input(dh1, self.shape.side, &self.image, self.shape.d1)
    }
}

multiversioned! {
/// Each class's label plane through conv1: [classes, half * half * d1], the
/// sum of the class's tap weights over the taps inside the image at each
/// output position (the plane is 1 there, 0 in the padding).
fn class_maps(w1: &[f32], shape: Conv1Shape) -> Vec<f32> {
    let Conv1Shape { channels, planes, d1, side, classes } = shape;
    let half = side / 2;
    let row = |t: usize, plane: usize| &w1[(t * planes + plane) * d1..][..d1];
    let mut class_maps = vec![0f32; classes * shape.map_len()];
    class_maps
        .par_chunks_mut(shape.map_len())
        .enumerate()
        .for_each(|(c, map)| {
            for (pos, out) in map.chunks_mut(d1).enumerate() {
                for ky in inside_taps(side, pos / half) {
                    for kx in inside_taps(side, pos % half) {
                        let w = row(ky * KERNEL + kx, channels + c);
                        out.iter_mut().zip(w).for_each(|(o, w)| *o += w);
                    }
                }
            }
        });
    class_maps
}

/// conv1's weight gradient [25 * planes, d1] from the image rows' gradient
/// [25 * channels, d1] and each class's summed output gradient [classes,
/// half * half * d1] (the adjoint of [`class_maps`]).
fn conv1_weight_gradient(image: &[f32], per_class: &[f32], shape: Conv1Shape) -> Vec<f32> {
    let Conv1Shape { channels, planes, d1, side, .. } = shape;
    let half = side / 2;
    let image_rows = channels * d1;
    let mut w1 = vec![0f32; TAPS * planes * d1];
    w1.par_chunks_mut(planes * d1)
        .enumerate()
        .for_each(|(t, tap)| {
            let (ky, kx) = (t / KERNEL, t % KERNEL);
            tap[..image_rows].copy_from_slice(&image[t * image_rows..(t + 1) * image_rows]);
            for (c, out) in tap[image_rows..].chunks_mut(d1).enumerate() {
                let map = &per_class[c * shape.map_len()..][..shape.map_len()];
                for oy in (0..half).filter(|&o| inside_taps(side, o).any(|k| k == ky)) {
                    for ox in (0..half).filter(|&o| inside_taps(side, o).any(|k| k == kx)) {
                        let g = &map[(oy * half + ox) * d1..][..d1];
                        out.iter_mut().zip(g).for_each(|(o, g)| *o += g);
                    }
                }
            }
        });
    w1
}
}

/// What one stride-2 layer's backward needs from its forward.
struct DownCache {
    /// im2col of its input (conv1's: of the image alone), [rows, 25 * inputs].
    cols: Vec<f32>,
    norm: Option<BatchNormCache>,
    /// Its output, after its LeakyReLU.
    out: Vec<f32>,
}

/// What D's backward pass needs from its forward.
pub(super) struct DiscCache {
    /// The label weights of each row, [B, classes].
    labels: Vec<f32>,
    /// Each stride-2 layer's, in order.
    downs: Vec<DownCache>,
    /// With minibatch std: each group's spread, and the last map with its plane.
    spread: Option<(Vec<Spread>, Vec<f32>)>,
    pub(super) logits: Vec<f32>,
    /// The AC-GAN head's class logits, [B, classes], when D has it.
    pub(super) class_logits: Option<Vec<f32>>,
    /// The projection term's cache, when D has it.
    projection: Option<ClassProjection>,
}

impl DiscCache {
    /// The batch statistics of each of D's batch norms (by name), for
    /// their running statistics.
    pub(super) fn norm_stats<'a>(
        &'a self,
        net: &'a DiscriminatorNet,
    ) -> Vec<(&'a str, &'a BatchStats)> {
        let norms = net.downs().iter().zip(&self.downs);
        norms
            .filter_map(|(layer, cache)| {
                Some((
                    layer.norm.as_ref()?.name.as_str(),
                    &cache.norm.as_ref()?.stats,
                ))
            })
            .collect()
    }

    /// The last map, after its LeakyReLU.
    fn features(&self) -> &[f32] {
        &self.downs.last().expect("a stride-2 layer").out
    }

    /// The last layer's input: the last map, with the spread plane when D
    /// has one.
    fn last_input(&self) -> &[f32] {
        self.spread
            .as_ref()
            .map_or(self.features(), |(_, with_plane)| with_plane)
    }
}

/// Values per image of the last layer's input, and of the head's.
fn whole_map_inputs(net: &DiscriminatorNet) -> (usize, usize) {
    let positions = net.last().side * net.last().side;
    (positions * net.last().inputs, positions * net.features())
}

/// D on `images` [B, side * side * channels] with conditions `labels` [B,
/// classes], with batch statistics (the caller moves the running ones:
/// [`DiscCache::norm_stats`]); the spread plane, with minibatch std, is each
/// of `groups` equal runs of the batch's own (2 for the real and the
/// generated batch in one pass). The label planes are constant over the
/// image, so their part of conv1 is, per class, a fixed map of the weights
/// (`conv1`, made once per version of the weights by the caller), mixed by
/// each row's label weights.
pub(super) fn discriminator_forward(
    p: &NetParams,
    conv1: &Conv1Parts,
    images: &[f32],
    labels: &[f32],
    groups: usize,
    net: &DiscriminatorNet,
) -> DiscCache {
    let (mut h1, cols1) = conv1.forward(images, labels, &p.layers[0].b);
    leaky_forward(&mut h1, Threads::All);
    let mut downs = vec![DownCache {
        cols: cols1,
        norm: None,
        out: h1,
    }];
    for (layer, p) in net.downs().iter().zip(&p.layers).skip(1) {
        let input = &downs.last().expect("conv1").out;
        let (mut h, cols) = conv_forward(input, layer.side, &p.w, &p.b);
        let norm = layer
            .norm
            .as_ref()
            .map(|_| batch_norm_forward(&mut h, &p.gamma, &p.beta));
        leaky_forward(&mut h, Threads::All);
        downs.push(DownCache { cols, norm, out: h });
    }
    let features = &downs.last().expect("a stride-2 layer").out;
    let spread = net
        .spread
        .then(|| spread_plane(features, net.features(), labels.len() / net.classes, groups));
    let mut cache = DiscCache {
        labels: labels.to_vec(),
        downs,
        spread,
        logits: Vec::new(),
        class_logits: None,
        projection: None,
    };
    // The last layer over the whole map: a dense layer, one logit per image;
    // the head, the same over the map alone, one logit per class.
    let (last_inputs, head_inputs) = whole_map_inputs(net);
    let last = net.layers.len() - 1;
    let (w, b) = (&p.layers[last].w, &p.layers[last].b);
    cache.logits = dense_forward(cache.last_input(), last_inputs, w, b, Threads::All);
    if net.projection {
        let (terms, projection) =
            class_projection_forward(cache.features(), labels, &p.embed, net.classes);
        cache
            .logits
            .iter_mut()
            .zip(terms)
            .for_each(|(l, t)| *l += t);
        cache.projection = Some(projection);
    }
    cache.class_logits = net.head.is_some().then(|| {
        dense_forward(
            cache.features(),
            head_inputs,
            &p.head.w,
            &p.head.b,
            Threads::All,
        )
    });
    cache
}

/// Each of `groups` runs of `features` ([rows, channels]) with its own
/// spread plane: the spreads, and the features with the plane beside them.
fn spread_plane(
    features: &[f32],
    channels: usize,
    batch: usize,
    groups: usize,
) -> (Vec<Spread>, Vec<f32>) {
    let spreads: Vec<Spread> = features
        .chunks(features.len() / groups)
        .map(|group| spread_forward(group, batch / groups))
        .collect();
    let group_rows = features.len() / channels / groups;
    let plane: Vec<f32> = spreads
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.value, group_rows))
        .collect();
    let with_plane = concat_rows(features, channels, &plane, 1);
    (spreads, with_plane)
}

/// The gradients of D's outputs: its logits `[B]`, and its class logits [B,
/// classes] where the head has a loss term on this pass.
pub(super) type OutputGrads<'a> = (&'a [f32], Option<&'a [f32]>);

/// D's gradients from its outputs down to each stride-2 layer's output:
/// per layer, before its LeakyReLU and its norm, with the norm's own
/// gradients.
struct TrunkGrads {
    /// Each stride-2 layer's output gradient (before its norm), in order.
    dh: Vec<Vec<f32>>,
    /// Each layer's norm gradients (empty without one), in order.
    norms: Vec<(Vec<f32>, Vec<f32>)>,
}

/// Back through the last layer [and the spread plane] [and the projection
/// term] [and the head, when its `class_grad` is given], then each stride-2
/// layer's LeakyReLU and norm and, but for conv1, the convolution.
fn trunk_backward(
    p: &NetParams,
    cache: &DiscCache,
    (logit_grad, class_grad): OutputGrads,
    net: &DiscriminatorNet,
) -> TrunkGrads {
    let (last_inputs, head_inputs) = whole_map_inputs(net);
    let last = &p.layers[net.layers.len() - 1];
    let dl = Operand::new(logit_grad, logit_grad.len(), 1);
    let d_last = product(dl, Operand::new(&last.w, 1, last_inputs), Threads::All);
    let mut dh = match &cache.spread {
        None => d_last,
        Some((spreads, _)) => {
            let (mut dh, d_plane) = split_rows(&d_last, net.features(), 1);
            let groups = spreads.len();
            let (group_len, plane_len) = (dh.len() / groups, d_plane.len() / groups);
            for (g, spread) in spreads.iter().enumerate() {
                let d_value = d_plane[g * plane_len..][..plane_len].iter().sum();
                let features = &cache.features()[g * group_len..][..group_len];
                spread_backward(
                    &mut dh[g * group_len..][..group_len],
                    features,
                    spread,
                    d_value,
                );
            }
            dh
        }
    };
    if let Some(projection) = &cache.projection {
        class_projection_backward_input(projection, logit_grad, &mut dh);
    }
    if let Some(class_grad) = class_grad {
        let batch = logit_grad.len();
        let head = Operand::new(&p.head.w, head_inputs, net.classes);
        let dc = Operand::new(class_grad, batch, net.classes);
        matmul(&mut dh, dc, head.t(), true, Threads::All);
    }
    let downs = net.downs().len();
    let (mut grads, mut norms) = (Vec::with_capacity(downs), Vec::with_capacity(downs));
    for (i, (layer, down)) in net.downs().iter().zip(&cache.downs).enumerate().rev() {
        leaky_backward(&mut dh, &down.out);
        norms.push(match &down.norm {
            Some(norm) => batch_norm_backward(&mut dh, norm, &p.layers[i].gamma),
            None => (Vec::new(), Vec::new()),
        });
        let below = match i {
            0 => Vec::new(),
            _ => conv_backward_input(&dh, layer.side, &p.layers[i].w, layer.outputs),
        };
        grads.push(std::mem::replace(&mut dh, below));
    }
    grads.reverse();
    norms.reverse();
    TrunkGrads { dh: grads, norms }
}

/// D's parameter gradients from its output gradients (the D step); the head
/// gets zeros on a pass without its term.
pub(super) fn discriminator_backward(
    p: &NetParams,
    conv1: &Conv1Parts,
    cache: &DiscCache,
    grads: OutputGrads,
    net: &DiscriminatorNet,
) -> NetParams {
    let (logit_grad, _) = grads;
    // The last layer: its bias gradient is the plain sum of the logit gradients.
    let batch = logit_grad.len();
    let (last_inputs, _) = whole_map_inputs(net);
    let last = LayerParams {
        w: product(
            Operand::new(cache.last_input(), batch, last_inputs).t(),
            Operand::new(logit_grad, batch, 1),
            Threads::All,
        ),
        b: vec![logit_grad.iter().sum()],
        ..LayerParams::default()
    };
    let head = head_backward(cache, grads.1, net);
    let trunk = trunk_backward(p, cache, grads, net);
    let mut layers: Vec<LayerParams> = Vec::with_capacity(net.layers.len());
    for (i, ((dh, (gamma, beta)), down)) in trunk
        .dh
        .iter()
        .zip(trunk.norms)
        .zip(&cache.downs)
        .enumerate()
    {
        let (w, b) = match i {
            0 => conv1.backward_weights(dh, cache),
            _ => conv_backward_weights(dh, &down.cols, net.layers[i].outputs),
        };
        layers.push(LayerParams {
            w,
            b,
            gamma,
            beta,
            ..LayerParams::default()
        });
    }
    layers.push(last);
    NetParams {
        layers,
        head,
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
    net: &DiscriminatorNet,
) -> LayerParams {
    let (_, features) = whole_map_inputs(net);
    let classes = net.classes;
    let (w, b) = match class_grad {
        Some(class_grad) => {
            let batch = class_grad.len() / classes;
            let map = Operand::new(cache.features(), batch, features);
            let dc = Operand::new(class_grad, batch, classes);
            let weight = product(map.t(), dc, Threads::All);
            (weight, bias_gradient(class_grad, classes))
        }
        None if net.head.is_some() => (vec![0.0; features * classes], vec![0.0; classes]),
        None => (Vec::new(), Vec::new()),
    };
    LayerParams {
        w,
        b,
        ..LayerParams::default()
    }
}

/// The gradient of D's image input [B, side * side * channels] from its
/// output gradients (the G step: D's weights get none).
pub(super) fn discriminator_input_backward(
    p: &NetParams,
    conv1: &Conv1Parts,
    cache: &DiscCache,
    grads: OutputGrads,
    net: &DiscriminatorNet,
) -> Vec<f32> {
    let trunk = trunk_backward(p, cache, grads, net);
    conv1.backward_input(&trunk.dh[0])
}
