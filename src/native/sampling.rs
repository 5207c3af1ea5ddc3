//! The generator for sampling: the same function as [`Generator::forward`]
//! in evaluation mode, through the native layers.
//!
//! Why it exists: generation is one forward pass, and burn Flex's transposed
//! convolution runs one gemm per image (packing the whole weight again for
//! every image) and adds its columns into the NCHW output one scalar at a
//! time. That scatter and packing were ~30% of generation time. Here, once
//! per model:
//! - each batch norm's running statistics are folded into the weights and
//!   bias of the transposed convolution before it (`w * s`, `b * s + t`);
//! - the weights are laid out so every layer is a single gemm whose output
//!   rows are channels-last (NHWC) image positions.
//!
//! and per chunk of images: `h = x . W` (the `gemm` crate, the same AVX-512
//! kernels burn uses), then a gather that sums, for each output pixel, the
//! contiguous channel vectors its kernel taps produced, adding the bias and
//! applying LeakyReLU or tanh in the same pass. Each thread works through its
//! own contiguous share of the batch, so the result does not depend on the
//! thread count.

use std::borrow::Cow;

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::ConvTranspose2d;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::activation::{activation_forward, leaky};
use super::conv::deconv_forward;
use super::dense::dense_forward;
use super::layout::{concat_rows, transposed_to_kernel};
use super::modulation::modulate;
use super::{Precision, Threads, with_precision};
use crate::model::Generator;
use crate::model::generator::ClassModulation;
use crate::model::net::{Activation, GeneratorNet, Kind, Layer};
/// Images one gemm handles at a time: enough rows for the kernels, few
/// enough that the columns of the widest layer stay in cache.
const CHUNK: usize = 8;

/// One layer of the sampling generator: its description, its weights with
/// the batch norm folded in, and its class modulation.
#[derive(Debug, Clone)]
struct SampleLayer {
    layer: Layer,
    /// [inputs, positions * outputs] position-major, channels last, or a
    /// transposed convolution's [inputs, 25 * outputs], columns tap-major.
    w: Vec<f32>,
    b: Vec<f32>,
    /// The norm's class modulation (gain, shift), where G has one.
    class: Option<(Vec<f32>, Vec<f32>)>,
}

/// A [`Generator`] in evaluation mode, with its batch norms folded away.
#[derive(Debug, Clone)]
pub struct NativeGenerator {
    net: GeneratorNet,
    layers: Vec<SampleLayer>,
    /// The arithmetic of the products.
    precision: Precision,
}

/// Host values of a tensor.
fn host<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32 weights")
}

/// Batch norm in evaluation mode as `x * scale + shift`, per channel.
fn fold_batch_norm(bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
    let gamma = host(bn.gamma.val());
    let beta = host(bn.beta.val());
    let mean = host(bn.running_mean.value());
    let var = host(bn.running_var.value());
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| (*g as f64 / (*v as f64 + bn.epsilon).sqrt()) as f32)
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    (scale, shift)
}

/// A transposed convolution with the batch norm after it folded in
/// (evaluation mode), in PyTorch layout: weight [in, out, k, k] with each
/// output channel scaled, bias `bias * scale + shift`.
#[derive(Debug, Clone)]
pub struct FoldedDeconv {
    /// [in, out, k, k].
    pub dims: [usize; 4],
    /// The weight, row-major [in, out, k, k], each output channel scaled by its norm.
    pub weight: Vec<f32>,
    /// One bias per output channel, with the norm's shift folded in.
    pub bias: Vec<f32>,
}

impl FoldedDeconv {
    fn new(layer: &ConvTranspose2d, norm: Option<&BatchNorm>) -> Self {
        let dims = layer.weight.val().dims();
        let [_, cout, kh, kw] = dims;
        let mut weight = host(layer.weight.val());
        let bias = layer
            .bias
            .as_ref()
            .map_or_else(|| vec![0.0; cout], |b| host(b.val()));
        let (scale, shift) = norm
            .map(fold_batch_norm)
            .unwrap_or_else(|| (vec![1.0; cout], vec![0.0; cout]));
        for (taps, s) in weight.chunks_mut(kh * kw).zip(scale.iter().cycle()) {
            taps.iter_mut().for_each(|w| *w *= s);
        }
        let bias = (0..cout).map(|o| bias[o] * scale[o] + shift[o]).collect();
        Self { dims, weight, bias }
    }

    /// The weight as [in, k*k*out] (taps major, output channels last).
    fn kernel_weight(&self) -> Vec<f32> {
        let [cin, cout, kh, kw] = self.dims;
        transposed_to_kernel(&self.weight, cin, cout, kh * kw)
    }
}

/// Each layer's class modulation as host (gain, shift), [classes,
/// channels] each, where it has one.
pub fn class_modulation_weights(generator: &Generator) -> Vec<Option<(Vec<f32>, Vec<f32>)>> {
    let pair = |m: &ClassModulation| (host(m.gain.val()), host(m.shift.val()));
    let blocks = generator.blocks.iter();
    blocks.map(|b| b.bn_class.as_ref().map(pair)).collect()
}

/// G's transposed convolutions with their batch norms folded in (its
/// running statistics: evaluation mode), in order.
pub fn folded_layers(generator: &Generator) -> Vec<FoldedDeconv> {
    let g = generator.valid();
    let blocks = g.blocks.iter();
    blocks
        .map(|b| FoldedDeconv::new(&b.deconv, b.bn.as_ref()))
        .collect()
}

impl NativeGenerator {
    /// Compiles `generator` (its batch norms' running statistics are used,
    /// as in evaluation mode).
    pub fn new(generator: &Generator) -> Self {
        let net = generator.config().net();
        let folded = folded_layers(generator);
        let class = class_modulation_weights(generator);
        let layers = (net.layers.iter().zip(folded).zip(class))
            .map(|((layer, folded), class)| SampleLayer {
                layer: layer.clone(),
                w: folded.kernel_weight(),
                b: folded.bias,
                class,
            })
            .collect();
        Self {
            net,
            layers,
            precision: Precision::Fp32,
        }
    }

    /// The same generator, its products run in `precision` (checked against
    /// this CPU).
    pub fn in_precision(self, precision: Precision) -> anyhow::Result<Self> {
        precision.check()?;
        Ok(Self { precision, ..self })
    }

    /// Values per generated image ([channels, side, side]).
    pub fn image_len(&self) -> usize {
        self.net.image.len()
    }

    /// Images for the rows of `z` ([n, latent]) and `conditions` ([n,
    /// classes]): [n, channels, side, side] in [-1, 1], as `Generator::forward`.
    pub fn forward(&self, z: &[f32], conditions: &[f32]) -> Vec<f32> {
        let (latent, classes, inputs) = (self.net.latent, self.net.classes, self.net.inputs());
        let n = conditions.len() / classes;
        assert_eq!(z.len(), n * latent, "noise rows");
        assert_eq!(conditions.len(), n * classes, "condition rows");
        let input = concat_rows(z, latent, conditions, classes);
        let mut out = vec![0f32; n * self.image_len()];
        // One contiguous share of the images per thread.
        let share = n.div_ceil(rayon::current_num_threads()).max(1);
        out.par_chunks_mut(share * self.image_len())
            .zip(input.par_chunks(share * inputs))
            .for_each(|(out, input)| {
                with_precision(self.precision, || {
                    for (out, input) in out
                        .chunks_mut(CHUNK * self.image_len())
                        .zip(input.chunks(CHUNK * inputs))
                    {
                        self.forward_chunk(input, out);
                    }
                })
            });
        out
    }

    /// Every layer for a few images, on the calling thread.
    fn forward_chunk(&self, input: &[f32], out: &mut [f32]) {
        let (latent, classes) = (self.net.latent, self.net.classes);
        let conditions: Vec<f32> = match self.layers.iter().any(|l| l.class.is_some()) {
            true => input
                .chunks(self.net.inputs())
                .flat_map(|row| &row[latent..])
                .copied()
                .collect(),
            false => Vec::new(),
        };
        let mut x = Cow::Borrowed(input);
        for SampleLayer { layer, w, b, class } in &self.layers {
            // A plain LeakyReLU after a transposed convolution runs in its gather.
            let fused =
                class.is_none() && layer.activation == Activation::Leaky && layer.kind == Kind::Up;
            let mut h = match (layer.kind, fused) {
                (Kind::Project, _) => dense_forward(&x, layer.inputs, w, b, Threads::This),
                (_, true) => deconv_forward(&x, layer.side, w, b, leaky, Threads::This),
                (_, false) => deconv_forward(&x, layer.side, w, b, |v| v, Threads::This),
            };
            if let Some((gain, shift)) = class {
                modulate(&mut h, &conditions, classes, gain, shift);
            }
            if !fused {
                activation_forward(&mut h, layer.activation, Threads::This);
            }
            x = Cow::Owned(h);
        }
        // Channels last to the [channels, side, side] layout of the framework's output.
        let (co, pixels) = (self.net.image.channels, self.net.image.pixels());
        for (planes, image) in out.chunks_mut(pixels * co).zip(x.chunks(pixels * co)) {
            for (pos, pixel) in image.chunks(co).enumerate() {
                for (c, v) in pixel.iter().enumerate() {
                    planes[c * pixels + pos] = *v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::inference_device;
    use crate::model::init::normal_values;
    use crate::model::{GeneratorConfig, matrix};
    use burn::module::Param;
    use burn::tensor::TensorData;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Sets every batch-norm statistic and affine parameter to random values,
    /// so the folding is exercised (fresh ones are 0, 1, ~1 and 0).
    fn perturb(bn: &mut BatchNorm, rng: &mut ChaCha8Rng) {
        let c = bn.gamma.val().dims()[0];
        let device = inference_device();
        let vec = |rng: &mut ChaCha8Rng, mean: f32, std: f32| {
            Tensor::<1>::from_data(
                TensorData::new(normal_values(rng, c, mean, std), [c]),
                &device,
            )
        };
        bn.gamma = Param::from_tensor(vec(rng, 1.0, 0.3));
        bn.beta = Param::from_tensor(vec(rng, 0.0, 0.3));
        bn.running_mean = burn::module::RunningState::new(vec(rng, 0.0, 0.05));
        bn.running_var = burn::module::RunningState::new(vec(rng, 0.0, 0.5).abs().add_scalar(0.01));
    }

    /// Sets a class modulation's gain and shift to random values (fresh ones
    /// are zero).
    fn perturb_class(m: &mut ClassModulation, rng: &mut ChaCha8Rng) {
        let [classes, channels] = m.gain.val().dims();
        let matrix_of = |rng: &mut ChaCha8Rng| {
            Param::from_tensor(matrix(
                normal_values(rng, classes * channels, 0.0, 0.3),
                classes,
                channels,
                &inference_device(),
            ))
        };
        m.gain = matrix_of(rng);
        m.shift = matrix_of(rng);
    }

    fn max_relative_error(config: GeneratorConfig, n: usize) -> f32 {
        max_relative_error_in(config, n, Precision::Fp32)
    }

    fn max_relative_error_in(config: GeneratorConfig, n: usize, precision: Precision) -> f32 {
        let device = inference_device();
        let mut g = config.init_seeded(&device, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for block in &mut g.blocks {
            if let Some(bn) = &mut block.bn {
                perturb(bn, &mut rng);
            }
            if let Some(class) = &mut block.bn_class {
                perturb_class(class, &mut rng);
            }
        }
        let g = g.valid();
        let (latent, classes) = (g.latent_dim, g.num_classes);
        let z = normal_values(&mut rng, n * latent, 0.0, 1.0);
        // One-hot rows and one blend, as morphing uses.
        let mut y = vec![0f32; n * classes];
        for r in 0..n {
            y[r * classes + r % classes] = 0.7;
            y[r * classes + (r + 3) % classes] += 0.3;
        }
        let reference = host(g.forward(
            matrix(z.clone(), n, latent, &device),
            matrix(y.clone(), n, classes, &device),
        ));
        let native = NativeGenerator::new(&g).in_precision(precision).unwrap();
        let fast = native.forward(&z, &y);
        assert_eq!(fast.len(), reference.len());
        let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.01, "outputs too small to compare: {scale}");
        reference
            .iter()
            .zip(&fast)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
            / scale
    }

    #[test]
    fn matches_the_framework_forward_at_the_seed_width() {
        // 11 images: more than one chunk, and a chunk that is not full.
        let err = max_relative_error(GeneratorConfig::new(), 11);
        assert!(err < 1e-4, "relative error {err}");
    }

    #[test]
    fn matches_the_framework_forward_with_class_norm() {
        let config = GeneratorConfig::new()
            .with_base_channels(32)
            .with_class_norm(true);
        let err = max_relative_error(config, 11);
        assert!(err < 1e-4, "relative error {err}");
    }

    #[test]
    #[cfg_attr(cdcgan_no_bf16, ignore = "this CPU has no AVX512_BF16")]
    fn bf16_products_stay_near_the_framework_forward() {
        crate::native::gemm::expect_bf16();
        let err = max_relative_error_in(GeneratorConfig::new(), 11, Precision::Bf16);
        // Rounded, not exact: bf16 keeps 8 significant bits.
        assert!(err > 1e-6 && err < 2e-2, "relative error {err}");
    }

    #[test]
    fn matches_the_framework_forward_for_other_shapes() {
        let config = GeneratorConfig::new()
            .with_base_channels(24)
            .with_latent_dim(7)
            .with_num_classes(4)
            .with_image_channels(3);
        let err = max_relative_error(config, 5);
        assert!(err < 1e-4, "relative error {err}");
    }

    #[test]
    fn matches_the_framework_forward_at_32_and_64_pixels_in_colour() {
        for (size, class_norm) in [(32, true), (64, false)] {
            let config = GeneratorConfig::new()
                .with_base_channels(32)
                .with_latent_dim(12)
                .with_num_classes(5)
                .with_image_channels(3)
                .with_image_size(size)
                .with_class_norm(class_norm);
            assert_eq!(config.init(&inference_device()).config().image_size, size);
            let err = max_relative_error(config, 3);
            assert!(err < 1e-4, "{size} px: relative error {err}");
        }
    }
}
