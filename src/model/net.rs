//! One description of each network: G and D as lists of layers, built from
//! the image geometry, the class count and the options. Every back-end walks
//! these lists: burn's modules ([`super::generator`],
//! [`super::discriminator`]), the native passes and sampler
//! (`crate::native`), the ONNX graph (`crate::onnx`), and the checkpoint's
//! tensor names (`{layer}.weight`, `{norm}.running_mean`, ...).
//!
//! The geometry is DCGAN's: G projects (z, y) to a small map and doubles its
//! side with each stride-2 transposed convolution, halving the width; D
//! halves the side with each stride-2 convolution, doubling the width, and a
//! convolution over the whole last map gives the logit. 28 px (the seed) is
//! 7 -> 14 -> 28; 32 px is 4 -> 8 -> 16 -> 32; 64 px is 4 -> ... -> 64.

pub use crate::arch::{IMAGE_SIDES, ImageShape};
use crate::arch::{KERNEL, PADDING};

/// What a layer computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A transposed convolution of a 1x1 input to a `side` x `side` map
    /// (kernel = side): a dense layer, "project and reshape".
    Project,
    /// A transposed convolution, kernel 5, stride 2, padding 2, output
    /// padding 1: side S -> 2S.
    Up,
    /// A convolution, kernel 5, stride 2, padding 2: side 2S -> S.
    Down,
    /// A convolution whose kernel covers the whole map (no padding): one
    /// value per output channel and image, a dense layer over the map.
    Whole,
}

/// The function after a layer (and its norm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// LeakyReLU with [`crate::arch::LEAKY_SLOPE`].
    Leaky,
    /// tanh (G's images).
    Tanh,
    /// None (D's logits).
    Linear,
}

/// A batch norm after a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Norm {
    /// Its tensor names' prefix (`bn2`).
    pub name: String,
    /// Whether the condition also scales and shifts its output
    /// (`{name}_class.gain`, `.shift`: G's class-conditional batch norm).
    pub class: bool,
}

impl Norm {
    /// The prefix of its class modulation's tensors (`bn2_class`).
    pub fn class_name(&self) -> String {
        format!("{}_class", self.name)
    }
}

/// One layer: a (transposed) convolution, its norm and its activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Its tensor names' prefix (`deconv2`: `deconv2.weight`, `deconv2.bias`).
    pub name: String,
    /// What it computes (each back-end has one handler per kind).
    pub kind: Kind,
    /// Input channels.
    pub inputs: usize,
    /// Output channels.
    pub outputs: usize,
    /// Side of its input map (1 for a projection).
    pub side: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding on each side.
    pub padding: usize,
    /// Output padding (transposed convolutions).
    pub out_padding: usize,
    /// The batch norm after it, if any.
    pub norm: Option<Norm>,
    /// The function after it (and its norm).
    pub activation: Activation,
}

impl Layer {
    /// A layer of `kind` from `inputs` to `outputs` channels on a `side`
    /// input map; `map` is the side a projection makes or a whole-map
    /// convolution covers (its kernel), unused by the stride-2 kinds.
    fn new(
        name: String,
        kind: Kind,
        (inputs, outputs): (usize, usize),
        side: usize,
        map: usize,
    ) -> Self {
        let (kernel, stride, padding, out_padding) = match kind {
            Kind::Project => (map, 1, 0, 0),
            Kind::Up => (KERNEL, 2, PADDING, 1),
            Kind::Down => (KERNEL, 2, PADDING, 0),
            Kind::Whole => (map, 1, 0, 0),
        };
        Self {
            name,
            kind,
            inputs,
            outputs,
            side,
            kernel,
            stride,
            padding,
            out_padding,
            norm: None,
            activation: Activation::Leaky,
        }
    }

    /// Whether it is a transposed convolution.
    pub fn transposed(&self) -> bool {
        matches!(self.kind, Kind::Project | Kind::Up)
    }

    /// Side of its output map.
    pub fn out_side(&self) -> usize {
        match self.transposed() {
            true => {
                (self.side - 1) * self.stride + self.kernel + self.out_padding - 2 * self.padding
            }
            false => (self.side + 2 * self.padding - self.kernel) / self.stride + 1,
        }
    }

    /// Multiply-adds for one image (every tap, padding included, as a
    /// framework computes them).
    pub fn multiply_adds(&self) -> usize {
        let positions = match self.transposed() {
            true => self.side * self.side,
            false => self.out_side().pow(2),
        };
        positions * self.kernel * self.kernel * self.inputs * self.outputs
    }

    /// The shape of its weight, PyTorch's: [in, out, k, k] transposed,
    /// [out, in, k, k] not.
    pub fn weight_shape(&self) -> [usize; 4] {
        let k = self.kernel;
        match self.transposed() {
            true => [self.inputs, self.outputs, k, k],
            false => [self.outputs, self.inputs, k, k],
        }
    }
}

/// `field` numbered `n`: the number after the name's first word
/// (`deconv`, 2 -> `deconv2`; `bn_class`, 2 -> `bn2_class`; `conv_u`, 1 ->
/// `conv1_u`). The names of list entries in checkpoints, from burn's module
/// paths ([`super::weights::torch_name`]) and in the descriptions alike.
pub fn numbered(field: &str, n: usize) -> String {
    match field.split_once('_') {
        Some((word, rest)) => format!("{word}{n}_{rest}"),
        None => format!("{field}{n}"),
    }
}

/// G: (z, y) -> [`Kind::Project`] -> [`Kind::Up`] ... -> the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorNet {
    /// Length of z.
    pub latent: usize,
    /// Width of the condition.
    pub classes: usize,
    /// The images it makes.
    pub image: ImageShape,
    /// `deconv1` (the projection, norm `bn1`), `deconv2` (`bn2`), ..., the
    /// last (to the image's channels, tanh, no norm).
    pub layers: Vec<Layer>,
}

impl GeneratorNet {
    /// G for `image`, with `base` channels on its first map (halved by each
    /// stride-2 layer), `latent` noise, `classes` classes, and
    /// class-conditional batch norms with `class_norm`.
    pub fn new(
        image: ImageShape,
        base: usize,
        latent: usize,
        classes: usize,
        class_norm: bool,
    ) -> Self {
        let (first, ups) = image.ladder();
        let norm = |n| {
            Some(Norm {
                name: numbered("bn", n),
                class: class_norm,
            })
        };
        let project = (latent + classes, base);
        let mut layers = vec![Layer {
            norm: norm(1),
            ..Layer::new(numbered("deconv", 1), Kind::Project, project, 1, first)
        }];
        for i in 0..ups {
            let n = i + 2;
            let up = |outputs| {
                Layer::new(
                    numbered("deconv", n),
                    Kind::Up,
                    (base >> i, outputs),
                    first << i,
                    0,
                )
            };
            layers.push(match i + 1 == ups {
                true => Layer {
                    activation: Activation::Tanh,
                    ..up(image.channels)
                },
                false => Layer {
                    norm: norm(n),
                    ..up(base >> (i + 1))
                },
            });
        }
        Self {
            latent,
            classes,
            image,
            layers,
        }
    }

    /// Length of G's input row, z and the condition.
    pub fn inputs(&self) -> usize {
        self.latent + self.classes
    }

    /// Multiply-adds of one image.
    pub fn multiply_adds(&self) -> usize {
        self.layers.iter().map(Layer::multiply_adds).sum()
    }
}

/// D: the image [with its label planes] -> [`Kind::Down`] ... -> [the
/// spread plane] -> [`Kind::Whole`], one logit [+ the projection term]; [the
/// AC-GAN head, a [`Kind::Whole`] layer to class logits over the last map].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscriminatorNet {
    /// Number of classes.
    pub classes: usize,
    /// The images it judges.
    pub image: ImageShape,
    /// Whether the image comes with one constant plane per class.
    pub label_planes: bool,
    /// Whether the last layer also sees the batch's spread (minibatch std).
    pub spread: bool,
    /// Whether its convolutions (not the head) are spectrally normalised.
    pub spectral: bool,
    /// `conv1` ... (stride 2; `bn2` ... after all but the first, with batch
    /// norm), then the last, over the whole map, to one logit.
    pub layers: Vec<Layer>,
    /// The AC-GAN head (`aux`), where D has it.
    pub head: Option<Layer>,
    /// The projection term's class embedding (`embed.weight`, [classes,
    /// features]), where D has it.
    pub projection: bool,
}

/// D's options, as [`DiscriminatorNet::new`] takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscriminatorOptions {
    /// Label planes on the image.
    pub label_planes: bool,
    /// The projection term.
    pub projection: bool,
    /// Batch norms after the stride-2 convolutions but the first.
    pub batch_norm: bool,
    /// The spread plane.
    pub spread: bool,
    /// Spectral normalisation.
    pub spectral: bool,
    /// The AC-GAN head.
    pub aux: bool,
}

impl DiscriminatorNet {
    /// D for `image` and `classes`, with `base` channels after its first
    /// convolution (doubled by each one after it).
    pub fn new(
        image: ImageShape,
        base: usize,
        classes: usize,
        options: DiscriminatorOptions,
    ) -> Self {
        let (last_side, downs) = image.ladder();
        let planes = if options.label_planes { classes } else { 0 };
        let mut layers: Vec<Layer> = (0..downs)
            .map(|i| {
                let inputs = match i {
                    0 => image.channels + planes,
                    _ => base << (i - 1),
                };
                let side = image.side >> i;
                Layer {
                    norm: (i > 0 && options.batch_norm).then(|| Norm {
                        name: numbered("bn", i + 1),
                        class: false,
                    }),
                    ..Layer::new(
                        numbered("conv", i + 1),
                        Kind::Down,
                        (inputs, base << i),
                        side,
                        0,
                    )
                }
            })
            .collect();
        let features = base << (downs - 1);
        let whole = |name: &str, inputs, outputs| Layer {
            activation: Activation::Linear,
            ..Layer::new(
                name.to_string(),
                Kind::Whole,
                (inputs, outputs),
                last_side,
                last_side,
            )
        };
        layers.push(whole(
            &numbered("conv", downs + 1),
            features + usize::from(options.spread),
            1,
        ));
        Self {
            classes,
            image,
            label_planes: options.label_planes,
            spread: options.spread,
            spectral: options.spectral,
            layers,
            head: options.aux.then(|| whole("aux", features, classes)),
            projection: options.projection,
        }
    }

    /// The stride-2 convolutions.
    pub fn downs(&self) -> &[Layer] {
        &self.layers[..self.layers.len() - 1]
    }

    /// The last layer, to the logit.
    pub fn last(&self) -> &Layer {
        self.layers.last().expect("D has a last layer")
    }

    /// Channels of the last map (before the spread plane).
    pub fn features(&self) -> usize {
        self.downs().last().expect("D has a stride-2 layer").outputs
    }

    /// Multiply-adds of one image (the label planes convolved, as a
    /// framework computes them).
    pub fn multiply_adds(&self) -> usize {
        self.layers.iter().map(Layer::multiply_adds).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_geometry_is_the_original_network() {
        let image = ImageShape::new(1, 28).unwrap();
        assert_eq!(image.ladder(), (7, 2));
        let g = GeneratorNet::new(image, 256, 100, 10, false);
        let shapes: Vec<_> = g.layers.iter().map(Layer::weight_shape).collect();
        assert_eq!(shapes, [[110, 256, 7, 7], [256, 128, 5, 5], [128, 1, 5, 5]]);
        let sides: Vec<_> = g.layers.iter().map(|l| l.out_side()).collect();
        assert_eq!(sides, [7, 14, 28]);
        let norms: Vec<_> = g
            .layers
            .iter()
            .map(|l| l.norm.clone().map(|n| n.name))
            .collect();
        assert_eq!(norms, [Some("bn1".into()), Some("bn2".into()), None]);
        let options = DiscriminatorOptions {
            label_planes: true,
            projection: false,
            batch_norm: true,
            spread: false,
            spectral: false,
            aux: true,
        };
        let d = DiscriminatorNet::new(image, 128, 10, options);
        let shapes: Vec<_> = d.layers.iter().map(Layer::weight_shape).collect();
        assert_eq!(shapes, [[128, 11, 5, 5], [256, 128, 5, 5], [1, 256, 7, 7]]);
        assert_eq!(d.head.unwrap().weight_shape(), [10, 256, 7, 7]);
        assert_eq!(d.layers[1].norm.as_ref().unwrap().name, "bn2");
    }

    #[test]
    fn larger_images_get_one_layer_per_doubling() {
        for (side, first, layers) in [(32, 4, 4), (64, 4, 5)] {
            let image = ImageShape::new(3, side).unwrap();
            let g = GeneratorNet::new(image, 64, 100, 9, true);
            assert_eq!(g.layers.len(), layers);
            assert_eq!(g.layers[0].out_side(), first);
            assert_eq!(g.layers.last().unwrap().out_side(), side);
            assert_eq!(g.layers.last().unwrap().outputs, 3);
            for pair in g.layers.windows(2) {
                assert_eq!(pair[0].outputs, pair[1].inputs);
                assert_eq!(pair[0].out_side(), pair[1].side);
            }
            let options = DiscriminatorOptions {
                label_planes: true,
                projection: false,
                batch_norm: false,
                spread: true,
                spectral: true,
                aux: false,
            };
            let d = DiscriminatorNet::new(image, 32, 9, options);
            assert_eq!(d.layers.len(), layers);
            assert_eq!(d.layers[0].inputs, 3 + 9);
            assert_eq!(d.last().side, first);
            assert_eq!(d.last().out_side(), 1);
            assert_eq!(d.last().inputs, d.features() + 1);
            for pair in d.downs().windows(2) {
                assert_eq!(pair[0].out_side(), pair[1].side);
            }
        }
        assert!(ImageShape::new(1, 48).is_err());
        assert!(ImageShape::new(2, 32).is_err());
    }

    #[test]
    fn numbered_names_put_the_number_after_the_first_word() {
        assert_eq!(numbered("deconv", 3), "deconv3");
        assert_eq!(numbered("bn_class", 2), "bn2_class");
        assert_eq!(numbered("conv_u", 1), "conv1_u");
    }
}
