//! The training step of the seed architecture with hand-written forward and
//! backward passes on the CPU: the same iteration as
//! [`super::step::train_step`] (same losses, batch statistics, running
//! statistics, Adam updates and figures), computed on channels-last host
//! buffers with the [`crate::cpu`] kernels instead of burn's autodiff.
//!
//! Why: in burn Flex the layer arithmetic (gemm) of this network is only
//! about half of a step; the rest is framework work around it (NCHW
//! scatters, a masked select per LeakyReLU, copies, per-image weight
//! packing). Here each layer is one large gemm plus one pass over memory.
//!
//! The weights stay in PyTorch layout under their PyTorch names (the same
//! named tensors checkpoints and [`Adam`] use); each step lays them out for
//! the kernels and brings the gradients back, so the optimizer state,
//! checkpoints and the moving average are shared with the framework path.
//! [`CpuGan::supports`] says which configurations it covers; the trainer
//! falls back to the framework step for the others.

use anyhow::{Context, ensure};
use rayon::prelude::*;

use super::optim::Adam;
use super::recipe::{GanLoss, StepRecipe};
use super::step::{GanState, StepStats};
use crate::cpu::conv::{KERNEL, TAPS, gather, im2col, inside_taps};
use crate::cpu::gemm::{Operand, Threads, matmul};
use crate::cpu::{leaky_backward, leaky_in_place, norm};
use crate::model::GanConfig;
use crate::model::discriminator::Conditioning;
use crate::model::weights::{HostTensor, NamedTensors, export, import};

/// Side of G's first feature map and of D's last one.
const SMALL: usize = 7;
const MID: usize = 14;
const SIDE: usize = 28;

/// Batch-norm settings of both networks (burn's defaults, which cdcgan uses).
const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// Why the compiled step cannot run a configuration, if it cannot.
pub fn unsupported(model: &GanConfig) -> Option<&'static str> {
    let (g, d) = (&model.generator, &model.discriminator);
    if d.aux_classifier {
        Some("the auxiliary classifier head")
    } else if d.conditioning.unwrap_or_default() != Conditioning::Planes {
        Some("projection conditioning")
    } else if g.image_channels != 1 || d.image_channels != 1 {
        Some("colour images")
    } else {
        None
    }
}

/// A [cin, cout, k, k] transposed-convolution weight as [cin, k*k*cout].
fn transposed_to_host(w: &[f32], cin: usize, cout: usize, taps: usize) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    for i in 0..cin {
        for o in 0..cout {
            for t in 0..taps {
                out[(i * taps + t) * cout + o] = w[(i * cout + o) * taps + t];
            }
        }
    }
    out
}

/// The inverse of [`transposed_to_host`].
fn transposed_from_host(h: &[f32], cin: usize, cout: usize, taps: usize) -> Vec<f32> {
    let mut out = vec![0f32; h.len()];
    for i in 0..cin {
        for o in 0..cout {
            for t in 0..taps {
                out[(i * cout + o) * taps + t] = h[(i * taps + t) * cout + o];
            }
        }
    }
    out
}

/// A [cout, cin, k, k] convolution weight as [k*k*cin, cout] (the layout
/// [`im2col`] rows multiply).
fn conv_to_host(w: &[f32], cout: usize, cin: usize, taps: usize) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    for o in 0..cout {
        for i in 0..cin {
            for t in 0..taps {
                out[(t * cin + i) * cout + o] = w[(o * cin + i) * taps + t];
            }
        }
    }
    out
}

/// The inverse of [`conv_to_host`].
fn conv_from_host(h: &[f32], cout: usize, cin: usize, taps: usize) -> Vec<f32> {
    let mut out = vec![0f32; h.len()];
    for o in 0..cout {
        for i in 0..cin {
            for t in 0..taps {
                out[(o * cin + i) * taps + t] = h[(t * cin + i) * cout + o];
            }
        }
    }
    out
}

/// Per-channel sums over the rows of a [rows, channels] matrix.
fn channel_sums(values: &[f32], channels: usize) -> Vec<f32> {
    norm::channel_sums(values, None, channels)
        .into_iter()
        .map(|s| s as f32)
        .collect()
}

/// Adds `bias` to every row of a [rows, channels] matrix.
fn add_bias(values: &mut [f32], bias: &[f32]) {
    let channels = bias.len();
    values.par_chunks_mut(channels * 256).for_each(|c| {
        c.chunks_mut(channels)
            .for_each(|row| row.iter_mut().zip(bias).for_each(|(v, b)| *v += b))
    });
}

/// Looks up a named tensor's values.
fn values<'a>(tensors: &'a NamedTensors, name: &str) -> &'a [f32] {
    &tensors[name].values
}

/// G's parameters in kernel layout (or their gradients).
#[derive(Debug, Clone)]
struct GenLayers {
    /// deconv1: [inputs, 49 * c1], positions major, channels last.
    w1: Vec<f32>,
    b1: Vec<f32>,
    gamma1: Vec<f32>,
    beta1: Vec<f32>,
    /// deconv2: [c1, 25 * c2], taps major.
    w2: Vec<f32>,
    b2: Vec<f32>,
    gamma2: Vec<f32>,
    beta2: Vec<f32>,
    /// deconv3: [c2, 25].
    w3: Vec<f32>,
    b3: Vec<f32>,
}

/// D's parameters in kernel layout (or their gradients).
#[derive(Debug, Clone)]
struct DiscLayers {
    /// conv1: [25 * (1 + classes), c1], taps major.
    w1: Vec<f32>,
    b1: Vec<f32>,
    /// conv2: [25 * c1, c2].
    w2: Vec<f32>,
    b2: Vec<f32>,
    gamma2: Vec<f32>,
    beta2: Vec<f32>,
    /// conv3: [49 * c2], positions major.
    w3: Vec<f32>,
    b3: Vec<f32>,
}

/// Network widths.
#[derive(Debug, Clone, Copy)]
struct Dims {
    latent: usize,
    classes: usize,
    g1: usize,
    g2: usize,
    d1: usize,
    d2: usize,
}

impl Dims {
    fn inputs(&self) -> usize {
        self.latent + self.classes
    }
    fn planes(&self) -> usize {
        1 + self.classes
    }
}

impl GenLayers {
    fn from_torch(t: &NamedTensors, d: &Dims) -> Self {
        Self {
            w1: transposed_to_host(values(t, "deconv1.weight"), d.inputs(), d.g1, SMALL * SMALL),
            b1: values(t, "deconv1.bias").to_vec(),
            gamma1: values(t, "bn1.weight").to_vec(),
            beta1: values(t, "bn1.bias").to_vec(),
            w2: transposed_to_host(values(t, "deconv2.weight"), d.g1, d.g2, TAPS),
            b2: values(t, "deconv2.bias").to_vec(),
            gamma2: values(t, "bn2.weight").to_vec(),
            beta2: values(t, "bn2.bias").to_vec(),
            w3: transposed_to_host(values(t, "deconv3.weight"), d.g2, 1, TAPS),
            b3: values(t, "deconv3.bias").to_vec(),
        }
    }

    fn to_torch(&self, d: &Dims) -> Vec<(&'static str, Vec<f32>)> {
        vec![
            (
                "deconv1.weight",
                transposed_from_host(&self.w1, d.inputs(), d.g1, SMALL * SMALL),
            ),
            ("deconv1.bias", self.b1.clone()),
            ("bn1.weight", self.gamma1.clone()),
            ("bn1.bias", self.beta1.clone()),
            (
                "deconv2.weight",
                transposed_from_host(&self.w2, d.g1, d.g2, TAPS),
            ),
            ("deconv2.bias", self.b2.clone()),
            ("bn2.weight", self.gamma2.clone()),
            ("bn2.bias", self.beta2.clone()),
            (
                "deconv3.weight",
                transposed_from_host(&self.w3, d.g2, 1, TAPS),
            ),
            ("deconv3.bias", self.b3.clone()),
        ]
    }
}

impl DiscLayers {
    fn from_torch(t: &NamedTensors, d: &Dims) -> Self {
        Self {
            w1: conv_to_host(values(t, "conv1.weight"), d.d1, d.planes(), TAPS),
            b1: values(t, "conv1.bias").to_vec(),
            w2: conv_to_host(values(t, "conv2.weight"), d.d2, d.d1, TAPS),
            b2: values(t, "conv2.bias").to_vec(),
            gamma2: values(t, "bn2.weight").to_vec(),
            beta2: values(t, "bn2.bias").to_vec(),
            w3: conv_to_host(values(t, "conv3.weight"), 1, d.d2, SMALL * SMALL),
            b3: values(t, "conv3.bias").to_vec(),
        }
    }

    fn to_torch(&self, d: &Dims) -> Vec<(&'static str, Vec<f32>)> {
        vec![
            (
                "conv1.weight",
                conv_from_host(&self.w1, d.d1, d.planes(), TAPS),
            ),
            ("conv1.bias", self.b1.clone()),
            ("conv2.weight", conv_from_host(&self.w2, d.d2, d.d1, TAPS)),
            ("conv2.bias", self.b2.clone()),
            ("bn2.weight", self.gamma2.clone()),
            ("bn2.bias", self.beta2.clone()),
            (
                "conv3.weight",
                conv_from_host(&self.w3, 1, d.d2, SMALL * SMALL),
            ),
            ("conv3.bias", self.b3.clone()),
        ]
    }
}

/// D's conv1 weight ([25 * (1 + classes), d1], tap-major) split by input:
/// the image channel's taps, and one 14x14 output map per class (the sum of
/// the class plane's taps that fall inside the image at each position).
#[derive(Debug, Clone)]
struct Conv1Parts {
    /// [25, d1].
    image: Vec<f32>,
    /// [classes, 14 * 14 * d1].
    class_maps: Vec<f32>,
}

impl Conv1Parts {
    fn new(w1: &[f32], dims: &Dims) -> Self {
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

/// What G's backward pass needs from its forward.
struct GenCache {
    input: Vec<f32>,
    h1: Vec<f32>,
    bn1: norm::BatchNormCache,
    h2: Vec<f32>,
    bn2: norm::BatchNormCache,
    /// The images, [B, 784] in [-1, 1].
    fake: Vec<f32>,
}

/// What D's backward pass needs from its forward.
struct DiscCache {
    /// im2col of the image, [B*196, 25].
    cols1: Vec<f32>,
    /// The label weights of each row, [B, classes].
    labels: Vec<f32>,
    conv1: Conv1Parts,
    h1: Vec<f32>,
    /// im2col of h1, [B*49, 25 * d1].
    cols2: Vec<f32>,
    bn2: norm::BatchNormCache,
    h2: Vec<f32>,
    logits: Vec<f32>,
}

/// Both networks as named host tensors (PyTorch layout), trained by
/// [`CpuGan::step`].
#[derive(Debug, Clone)]
pub struct CpuGan {
    generator: NamedTensors,
    discriminator: NamedTensors,
    dims: Dims,
}

impl CpuGan {
    /// Copies the networks of `state` (a configuration [`unsupported`] accepts).
    pub fn new(state: &GanState, model: &GanConfig) -> anyhow::Result<Self> {
        if let Some(what) = unsupported(model) {
            anyhow::bail!("the compiled training step does not support {what}");
        }
        let (g, d) = (&model.generator, &model.discriminator);
        let gan = Self {
            generator: export(&state.generator),
            discriminator: export(&state.discriminator),
            dims: Dims {
                latent: g.latent_dim,
                classes: g.num_classes,
                g1: g.base_channels,
                g2: g.base_channels / 2,
                d1: d.base_channels,
                d2: d.base_channels * 2,
            },
        };
        ensure!(
            d.num_classes == g.num_classes,
            "G and D disagree on the number of classes"
        );
        Ok(gan)
    }

    /// Writes the trained weights and running statistics back into the
    /// framework modules of `state` (for checkpoints, sampling, evaluation).
    pub fn write_into(&self, state: &mut GanState) -> anyhow::Result<()> {
        state.generator = import(state.generator.clone(), &self.generator)
            .context("compiled step -> generator")?;
        state.discriminator = import(state.discriminator.clone(), &self.discriminator)
            .context("compiled step -> discriminator")?;
        Ok(())
    }

    /// G's tensors under their PyTorch names (for the moving average).
    pub fn generator_tensors(&self) -> &NamedTensors {
        &self.generator
    }

    /// One iteration. `real`: [B, 784] in [-1, 1]; `real_labels`,
    /// `fake_labels`: one-hot [B, classes]; `z`: [B, latent].
    pub fn step(
        &mut self,
        adam_g: &mut Adam,
        adam_d: &mut Adam,
        real: &[f32],
        real_labels: &[f32],
        z: &[f32],
        fake_labels: &[f32],
        recipe: &StepRecipe,
    ) -> StepStats {
        let dims = self.dims;
        let batch = real_labels.len() / dims.classes;
        let g = GenLayers::from_torch(&self.generator, &dims);
        let cache = self.generator_forward(&g, z, fake_labels, batch);

        // D step: real and fake passes, each backward right after its forward
        // (the two loss terms are separate sums, and only one pass's columns
        // are kept at a time).
        let d = DiscLayers::from_torch(&self.discriminator, &dims);
        let on_real = self.discriminator_forward(&d, real, real_labels, batch);
        let (real_loss, real_grad) = recipe_loss_real(recipe, &on_real.logits);
        let (real_grads, _) = self.discriminator_backward(&d, &on_real, &real_grad, true);
        let d_real = mean_sigmoid(&on_real.logits);
        drop(on_real);
        let on_fake = self.discriminator_forward(&d, &cache.fake, fake_labels, batch);
        let (fake_loss, fake_grad) = recipe_loss_fake(recipe, &on_fake.logits);
        let (fake_grads, _) = self.discriminator_backward(&d, &on_fake, &fake_grad, true);
        let d_fake = mean_sigmoid(&on_fake.logits);
        drop(on_fake);
        let d_grads = {
            let mut g = real_grads.expect("weight gradients");
            let f = fake_grads.expect("weight gradients");
            for (a, b) in [
                (&mut g.w1, &f.w1),
                (&mut g.b1, &f.b1),
                (&mut g.w2, &f.w2),
                (&mut g.b2, &f.b2),
                (&mut g.gamma2, &f.gamma2),
                (&mut g.beta2, &f.beta2),
                (&mut g.w3, &f.w3),
                (&mut g.b3, &f.b3),
            ] {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            }
            g
        };
        apply_adam(adam_d, &mut self.discriminator, d_grads.to_torch(&dims));

        // G step through the updated D, whose weights get no gradients.
        let d = DiscLayers::from_torch(&self.discriminator, &dims);
        let verdict = self.discriminator_forward(&d, &cache.fake, fake_labels, batch);
        let (g_loss, g_grad) = generator_loss(recipe.loss, &verdict.logits);
        let (_, image_grad) = self.discriminator_backward(&d, &verdict, &g_grad, false);
        drop(verdict);
        let g_grads = self.generator_backward(&g, cache, image_grad.expect("image gradient"));
        apply_adam(adam_g, &mut self.generator, g_grads.to_torch(&dims));

        StepStats {
            d_loss: real_loss + fake_loss,
            g_loss,
            d_real,
            d_fake,
        }
    }

    fn generator_forward(
        &mut self,
        g: &GenLayers,
        z: &[f32],
        labels: &[f32],
        batch: usize,
    ) -> GenCache {
        let d = self.dims;
        let mut input = Vec::with_capacity(batch * d.inputs());
        for (zr, yr) in z.chunks(d.latent).zip(labels.chunks(d.classes)) {
            input.extend_from_slice(zr);
            input.extend_from_slice(yr);
        }
        // deconv1 (a 1x1 input: a plain product) -> bn1 -> LeakyReLU.
        let mut h1 = vec![0f32; batch * SMALL * SMALL * d.g1];
        let w1 = Operand::new(&g.w1, d.inputs(), SMALL * SMALL * d.g1);
        matmul(
            &mut h1,
            Operand::new(&input, batch, d.inputs()),
            w1,
            false,
            Threads::All,
        );
        add_bias(&mut h1, &g.b1);
        let bn1 = norm::forward_train(&mut h1, &g.gamma1, &g.beta1, BN_EPS);
        self.update_running("generator", "bn1", &bn1);
        leaky_in_place(&mut h1);

        // deconv2 -> bn2 -> LeakyReLU.
        let mut col = vec![0f32; batch * SMALL * SMALL * TAPS * d.g2];
        let w2 = Operand::new(&g.w2, d.g1, TAPS * d.g2);
        matmul(
            &mut col,
            Operand::new(&h1, batch * SMALL * SMALL, d.g1),
            w2,
            false,
            Threads::All,
        );
        let mut h2 = vec![0f32; batch * MID * MID * d.g2];
        gather(&col, SMALL, &g.b2, &mut h2, |v| v);
        drop(col);
        let bn2 = norm::forward_train(&mut h2, &g.gamma2, &g.beta2, BN_EPS);
        self.update_running("generator", "bn2", &bn2);
        leaky_in_place(&mut h2);

        // deconv3 -> tanh.
        let mut col = vec![0f32; batch * MID * MID * TAPS];
        let w3 = Operand::new(&g.w3, d.g2, TAPS);
        matmul(
            &mut col,
            Operand::new(&h2, batch * MID * MID, d.g2),
            w3,
            false,
            Threads::All,
        );
        let mut fake = vec![0f32; batch * SIDE * SIDE];
        gather(&col, MID, &g.b3, &mut fake, f32::tanh);
        GenCache {
            input,
            h1,
            bn1,
            h2,
            bn2,
            fake,
        }
    }

    fn generator_backward(
        &self,
        g: &GenLayers,
        cache: GenCache,
        image_grad: Vec<f32>,
    ) -> GenLayers {
        let d = self.dims;
        let batch = cache.fake.len() / (SIDE * SIDE);
        // tanh.
        let mut da3 = image_grad;
        da3.iter_mut()
            .zip(&cache.fake)
            .for_each(|(g, y)| *g *= 1.0 - y * y);
        // deconv3: its column gradient is im2col of the output gradient.
        let b3 = channel_sums(&da3, 1);
        let dcol = im2col(&da3, SIDE, 1);
        let rows = batch * MID * MID;
        let dcol_m = Operand::new(&dcol, rows, TAPS);
        let mut w3 = vec![0f32; d.g2 * TAPS];
        matmul(
            &mut w3,
            Operand::new(&cache.h2, rows, d.g2).t(),
            dcol_m,
            false,
            Threads::All,
        );
        let mut dh2 = vec![0f32; rows * d.g2];
        matmul(
            &mut dh2,
            dcol_m,
            Operand::new(&g.w3, d.g2, TAPS).t(),
            false,
            Threads::All,
        );
        drop(dcol);
        // LeakyReLU, bn2, deconv2.
        leaky_backward(&mut dh2, &cache.h2);
        let (gamma2, beta2) = norm::backward(&mut dh2, &cache.bn2, &g.gamma2);
        let b2 = channel_sums(&dh2, d.g2);
        let dcol = im2col(&dh2, MID, d.g2);
        drop(dh2);
        let rows = batch * SMALL * SMALL;
        let dcol_m = Operand::new(&dcol, rows, TAPS * d.g2);
        let mut w2 = vec![0f32; d.g1 * TAPS * d.g2];
        matmul(
            &mut w2,
            Operand::new(&cache.h1, rows, d.g1).t(),
            dcol_m,
            false,
            Threads::All,
        );
        let mut dh1 = vec![0f32; rows * d.g1];
        matmul(
            &mut dh1,
            dcol_m,
            Operand::new(&g.w2, d.g1, TAPS * d.g2).t(),
            false,
            Threads::All,
        );
        drop(dcol);
        // LeakyReLU, bn1, deconv1.
        leaky_backward(&mut dh1, &cache.h1);
        let (gamma1, beta1) = norm::backward(&mut dh1, &cache.bn1, &g.gamma1);
        let b1 = channel_sums(&dh1, d.g1);
        let mut w1 = vec![0f32; d.inputs() * SMALL * SMALL * d.g1];
        let da1 = Operand::new(&dh1, batch, SMALL * SMALL * d.g1);
        matmul(
            &mut w1,
            Operand::new(&cache.input, batch, d.inputs()).t(),
            da1,
            false,
            Threads::All,
        );
        GenLayers {
            w1,
            b1,
            gamma1,
            beta1,
            w2,
            b2,
            gamma2,
            beta2,
            w3,
            b3,
        }
    }

    fn discriminator_forward(
        &mut self,
        d: &DiscLayers,
        images: &[f32],
        labels: &[f32],
        batch: usize,
    ) -> DiscCache {
        let dims = self.dims;
        // conv1 -> LeakyReLU. The label planes are constant over the image,
        // so their part of conv1 is, per class, a fixed 14x14 map of the
        // weights (differing near the border, where taps fall in the
        // padding): computed once per pass and mixed by each row's label
        // weights, instead of convolving ten planes per image.
        let conv1 = Conv1Parts::new(&d.w1, &dims);
        let cols1 = im2col(images, SIDE, 1);
        let rows1 = batch * MID * MID;
        let mut h1 = vec![0f32; rows1 * dims.d1];
        let image_cols = Operand::new(&cols1, rows1, TAPS);
        let w1_image = Operand::new(&conv1.image, TAPS, dims.d1);
        matmul(&mut h1, image_cols, w1_image, false, Threads::All);
        let maps = Operand::new(&conv1.class_maps, dims.classes, MID * MID * dims.d1);
        let y = Operand::new(labels, batch, dims.classes);
        matmul(&mut h1, y, maps, true, Threads::All);
        add_bias(&mut h1, &d.b1);
        leaky_in_place(&mut h1);
        // conv2 -> bn2 -> LeakyReLU.
        let cols2 = im2col(&h1, MID, dims.d1);
        let rows2 = batch * SMALL * SMALL;
        let mut h2 = vec![0f32; rows2 * dims.d2];
        let w2 = Operand::new(&d.w2, TAPS * dims.d1, dims.d2);
        matmul(
            &mut h2,
            Operand::new(&cols2, rows2, TAPS * dims.d1),
            w2,
            false,
            Threads::All,
        );
        add_bias(&mut h2, &d.b2);
        let bn2 = norm::forward_train(&mut h2, &d.gamma2, &d.beta2, BN_EPS);
        self.update_running("discriminator", "bn2", &bn2);
        leaky_in_place(&mut h2);
        // conv3 over the whole 7x7 map: one dot product per image.
        let mut logits = vec![0f32; batch];
        let features = Operand::new(&h2, batch, SMALL * SMALL * dims.d2);
        let w3 = Operand::new(&d.w3, SMALL * SMALL * dims.d2, 1);
        matmul(&mut logits, features, w3, false, Threads::All);
        logits.iter_mut().for_each(|l| *l += d.b3[0]);
        DiscCache {
            cols1,
            labels: labels.to_vec(),
            conv1,
            h1,
            cols2,
            bn2,
            h2,
            logits,
        }
    }

    /// D's backward from the logit gradient: its weight gradients (when
    /// `weights`) and, otherwise, the gradient of its image input [B, 784].
    fn discriminator_backward(
        &self,
        d: &DiscLayers,
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
            let mut w3 = vec![0f32; features];
            matmul(
                &mut w3,
                Operand::new(&cache.h2, batch, features).t(),
                dl,
                false,
                Threads::All,
            );
            (w3, vec![logit_grad.iter().sum()])
        } else {
            (vec![], vec![])
        };
        let mut dh2 = vec![0f32; batch * features];
        matmul(
            &mut dh2,
            dl,
            Operand::new(&d.w3, 1, features),
            false,
            Threads::All,
        );
        // LeakyReLU, bn2, conv2.
        leaky_backward(&mut dh2, &cache.h2);
        let (gamma2, beta2) = norm::backward(&mut dh2, &cache.bn2, &d.gamma2);
        let rows2 = batch * SMALL * SMALL;
        let da2 = Operand::new(&dh2, rows2, dims.d2);
        let (w2, b2) = if weights {
            let mut w2 = vec![0f32; TAPS * dims.d1 * dims.d2];
            let cols2 = Operand::new(&cache.cols2, rows2, TAPS * dims.d1);
            matmul(&mut w2, cols2.t(), da2, false, Threads::All);
            (w2, channel_sums(&dh2, dims.d2))
        } else {
            (vec![], vec![])
        };
        let mut dcol = vec![0f32; rows2 * TAPS * dims.d1];
        let w2m = Operand::new(&d.w2, TAPS * dims.d1, dims.d2);
        matmul(&mut dcol, da2, w2m.t(), false, Threads::All);
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
            let mut image = vec![0f32; TAPS * dims.d1];
            let cols1 = Operand::new(&cache.cols1, rows1, TAPS);
            matmul(&mut image, cols1.t(), da1, false, Threads::All);
            let mut per_class = vec![0f32; dims.classes * MID * MID * dims.d1];
            let y = Operand::new(&cache.labels, batch, dims.classes);
            let da1_rows = Operand::new(&dh1, batch, MID * MID * dims.d1);
            matmul(&mut per_class, y.t(), da1_rows, false, Threads::All);
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
        let mut dcol = vec![0f32; rows1 * TAPS];
        matmul(
            &mut dcol,
            da1,
            Operand::new(&cache.conv1.image, TAPS, dims.d1).t(),
            false,
            Threads::All,
        );
        let mut dx = vec![0f32; batch * SIDE * SIDE];
        gather(&dcol, MID, &[0.0], &mut dx, |v| v);
        (None, Some(dx))
    }

    /// burn's running-statistic update of `network`'s batch norm `layer`.
    fn update_running(&mut self, network: &str, layer: &str, cache: &norm::BatchNormCache) {
        let tensors = match network {
            "generator" => &mut self.generator,
            _ => &mut self.discriminator,
        };
        for (stat, batch) in [("running_mean", &cache.mean), ("running_var", &cache.var)] {
            let running = tensors
                .get_mut(&format!("{layer}.{stat}"))
                .expect("batch-norm statistics");
            norm::update_running(&mut running.values, batch, BN_MOMENTUM);
        }
    }
}

/// Runs Adam over the named gradients (one update of its step count).
fn apply_adam(adam: &mut Adam, params: &mut NamedTensors, grads: Vec<(&'static str, Vec<f32>)>) {
    adam.steps += 1;
    for (name, grad) in grads {
        let param: &mut HostTensor = params.get_mut(name).expect("parameter");
        adam.update(name, &mut param.values, &grad);
    }
}

fn mean_sigmoid(logits: &[f32]) -> f32 {
    logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).sum::<f32>() / logits.len() as f32
}

/// Mean BCE of `logits` against `target` and its gradient.
fn bce(logits: &[f32], target: f32) -> (f32, Vec<f32>) {
    let n = logits.len() as f32;
    let loss = logits
        .iter()
        .map(|&x| x.max(0.0) - x * target + (-x.abs()).exp().ln_1p())
        .sum::<f32>()
        / n;
    let grad = logits
        .iter()
        .map(|&x| (1.0 / (1.0 + (-x).exp()) - target) / n)
        .collect();
    (loss, grad)
}

/// Mean of relu(1 + sign * x) and its gradient (the hinge terms).
fn hinge(logits: &[f32], sign: f32) -> (f32, Vec<f32>) {
    let n = logits.len() as f32;
    let loss = logits
        .iter()
        .map(|&x| (1.0 + sign * x).max(0.0))
        .sum::<f32>()
        / n;
    let grad = logits
        .iter()
        .map(|&x| if 1.0 + sign * x > 0.0 { sign / n } else { 0.0 })
        .collect();
    (loss, grad)
}

/// D's loss term on real images.
fn recipe_loss_real(recipe: &StepRecipe, logits: &[f32]) -> (f32, Vec<f32>) {
    match recipe.loss {
        GanLoss::Bce => bce(logits, 1.0 - recipe.label_smoothing),
        GanLoss::Hinge => hinge(logits, -1.0),
    }
}

/// D's loss term on generated images.
fn recipe_loss_fake(recipe: &StepRecipe, logits: &[f32]) -> (f32, Vec<f32>) {
    match recipe.loss {
        GanLoss::Bce => bce(logits, 0.0),
        GanLoss::Hinge => hinge(logits, 1.0),
    }
}

/// G's loss on D's verdict and its gradient.
fn generator_loss(loss: GanLoss, logits: &[f32]) -> (f32, Vec<f32>) {
    match loss {
        GanLoss::Bce => bce(logits, 1.0),
        GanLoss::Hinge => {
            let n = logits.len() as f32;
            (
                -logits.iter().sum::<f32>() / n,
                vec![-1.0 / n; logits.len()],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::training_device;
    use crate::model::{matrix, one_hot};
    use crate::train::optim::AdamConfig;
    use crate::train::step::{Conditioned, train_step};
    use burn::tensor::{Tensor, TensorData};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Adam with betas 0 and a huge epsilon moves each parameter by
    /// `lr * g / (|g| + eps)`, i.e. by `-g` when lr = eps: one step then
    /// exposes each gradient as the parameter's change.
    fn gradient_revealing_adam() -> Adam {
        Adam::new(AdamConfig {
            lr: 1e6,
            beta1: 0.0,
            beta2: 0.0,
            eps: 1e6,
        })
    }

    fn compare(recipe: StepRecipe) {
        let model = GanConfig::seed_architecture(10, false).with_widths(Some(16), Some(8));
        let device = training_device();
        let fresh = || GanState {
            generator: model.generator.init_seeded(&device, 1),
            discriminator: model.discriminator.init_seeded(&device, 2),
            adam_g: gradient_revealing_adam(),
            adam_d: gradient_revealing_adam(),
            ema: None,
        };
        let batch = 6;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let real: Vec<f32> = (0..batch * 784)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let z: Vec<f32> = (0..batch * 100)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let real_labels: Vec<u8> = (0..batch).map(|i| (i * 3 % 10) as u8).collect();
        let fake_labels: Vec<u8> = (0..batch).map(|i| (i * 7 % 10) as u8).collect();
        let hot = |labels: &[u8]| one_hot(labels, 10, &device);
        let host_hot = |labels: &[u8]| hot(labels).into_data().try_into_vec::<f32>().unwrap();

        let before = fresh();
        let g0 = export(&before.generator);
        let d0 = export(&before.discriminator);

        let mut reference = fresh();
        let expected = train_step(
            &mut reference,
            Conditioned {
                x: Tensor::from_data(TensorData::new(real.clone(), [batch, 1, 28, 28]), &device),
                labels: hot(&real_labels),
            },
            Conditioned {
                x: matrix(z.clone(), batch, 100, &device),
                labels: hot(&fake_labels),
            },
            &recipe,
        );

        let mut state = fresh();
        let mut gan = CpuGan::new(&state, &model).unwrap();
        let got = gan.step(
            &mut state.adam_g,
            &mut state.adam_d,
            &real,
            &host_hot(&real_labels),
            &z,
            &host_hot(&fake_labels),
            &recipe,
        );
        for (a, b) in [
            (expected.d_loss, got.d_loss),
            (expected.g_loss, got.g_loss),
            (expected.d_real, got.d_real),
            (expected.d_fake, got.d_fake),
        ] {
            assert!(
                (a - b).abs() < 1e-5 * a.abs().max(1.0),
                "{expected:?} vs {got:?}"
            );
        }
        gan.write_into(&mut state).unwrap();
        for (start, want, have) in [
            (&g0, export(&reference.generator), export(&state.generator)),
            (
                &d0,
                export(&reference.discriminator),
                export(&state.discriminator),
            ),
        ] {
            for (name, w) in &want {
                let h = &have[name];
                // Parameters: compare the changes (the gradients); running
                // statistics: compare the values.
                let base = if name.contains("running") {
                    None
                } else {
                    Some(&start[name].values)
                };
                let delta = |v: &[f32]| -> Vec<f32> {
                    match base {
                        Some(b) => v.iter().zip(b).map(|(x, y)| x - y).collect(),
                        None => v.to_vec(),
                    }
                };
                let (w, h) = (delta(&w.values), delta(&h.values));
                let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
                let err = w
                    .iter()
                    .zip(&h)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                if ["deconv1.bias", "deconv2.bias", "conv2.bias"].contains(&name.as_str()) {
                    // A bias right before a batch norm: its exact gradient is
                    // zero (the norm removes it), so both are rounding noise,
                    // far below the layer's weight gradient.
                    let weight = name.replace("bias", "weight");
                    let weight_scale = want[&weight]
                        .values
                        .iter()
                        .zip(&start[&weight].values)
                        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                    let noise = h.iter().chain(&w).fold(0f32, |m, v| m.max(v.abs()));
                    assert!(
                        noise < 1e-3 * weight_scale,
                        "{name}: {noise} vs {weight_scale}"
                    );
                    continue;
                }
                assert!(
                    err <= 1e-4 * scale,
                    "{name}: max error {err} against {scale}"
                );
            }
        }
    }

    #[test]
    fn one_step_matches_the_framework_step() {
        compare(StepRecipe::default());
    }

    #[test]
    fn one_hinge_step_with_smoothing_matches_the_framework_step() {
        compare(StepRecipe {
            loss: GanLoss::Hinge,
            ..StepRecipe::default()
        });
        compare(StepRecipe {
            label_smoothing: 0.1,
            ..StepRecipe::default()
        });
    }

    #[test]
    fn layouts_round_trip() {
        let w: Vec<f32> = (0..3 * 4 * 25).map(|i| i as f32).collect();
        assert_eq!(
            transposed_from_host(&transposed_to_host(&w, 3, 4, 25), 3, 4, 25),
            w
        );
        assert_eq!(conv_from_host(&conv_to_host(&w, 4, 3, 25), 4, 3, 25), w);
        // conv_to_host puts tap t, input channel i, output o at row t*cin + i.
        assert_eq!(
            conv_to_host(&w, 4, 3, 25)[(7 * 3 + 2) * 4 + 1],
            w[(3 + 2) * 25 + 7]
        );
    }
}
