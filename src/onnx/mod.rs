//! The generator as a standard ONNX graph (opset 17), for use elsewhere
//! (onnxruntime in Python, the browser, other programs):
//!
//! ```text
//! inputs   z      float32 [N, latent]   the noise (N is dynamic)
//!          label  int64   [N]           the class of each row, 0..classes-1
//! output   images float32 [N, C, 28, 28] in [-1, 1]; pixel = (v + 1) * 127.5
//! ```
//!
//! OneHot(label) -> Concat(z, one-hot) -> Unsqueeze to [N, latent+classes,
//! 1, 1] -> ConvTranspose(k7) -> LeakyRelu(0.2) -> ConvTranspose(k5, s2, p2,
//! output_padding 1) -> LeakyRelu(0.2) -> ConvTranspose(k5, s2, p2,
//! output_padding 1) -> Tanh, the batch norms folded into the transposed
//! convolutions before them (evaluation mode: the running statistics). A
//! generator with class-conditional batch norms also scales and shifts the
//! first two layers' outputs per row before their LeakyRelu: `h * (1 +
//! MatMul(y, gain)) + MatMul(y, shift)`.
//! The model's metadata names the classes (a JSON list, in label order), the
//! data set and the image scale.

mod proto;

use std::path::Path;

use proto::{Attr, Dim, ElemType, Message, float_tensor, int_tensor, node, value_info};

use crate::arch::{IMAGE_SIDE, KERNEL, LEAKY_SLOPE, PADDING};
use crate::model::Generator;
use crate::native::sampling::{FoldedDeconv, class_modulation_weights, folded_layers};

/// The ONNX operator set the graph uses.
pub const OPSET: i64 = 17;
/// The IR version of opset 17.
const IR_VERSION: i64 = 8;

/// What goes into the model's metadata besides the graph.
#[derive(Debug, Clone)]
pub struct OnnxInfo {
    /// The class names, in label order.
    pub classes: Vec<String>,
    /// The data set the generator was trained on.
    pub dataset: String,
    /// Where it came from (a run directory or file), for the record.
    pub source: String,
    /// The standard deviation of the noise the digits are drawn with, as a
    /// multiple of the training noise's (the run's `--sample-noise-scale`).
    pub noise_scale: f32,
}

/// The generator as ONNX model bytes.
pub fn generator_model(generator: &Generator, info: &OnnxInfo) -> Vec<u8> {
    let layers = folded_layers(generator);
    let class = class_modulation_weights(generator);
    let (latent, classes) = (generator.latent_dim, generator.num_classes);
    let channels = layers[2].bias.len();
    let leaky = [Attr::Float("alpha", LEAKY_SLOPE as f32)];
    let mut graph = Message::new()
        .string(2, "cdcgan_generator")
        .message(
            1,
            node("OneHot", &["label", "depth", "one_hot_values"], &["y"], &[]),
        )
        .message(
            1,
            node("Concat", &["z", "y"], &["zy"], &[Attr::Int("axis", 1)]),
        )
        .message(1, node("Unsqueeze", &["zy", "spatial_axes"], &["x0"], &[]));
    let flows = [("x0", "h1", "a1"), ("a1", "h2", "a2"), ("a2", "h3", "")];
    for (i, (layer, (input, out, activated))) in layers.iter().zip(flows).enumerate() {
        let (w, b) = (
            format!("deconv{}.weight", i + 1),
            format!("deconv{}.bias", i + 1),
        );
        graph = graph
            .message(
                1,
                node(
                    "ConvTranspose",
                    &[input, &w, &b],
                    &[out],
                    &deconv_attrs(layer, i),
                ),
            )
            .message(5, float_tensor(&w, &layer.dims, &layer.weight))
            .message(5, float_tensor(&b, &[layer.bias.len()], &layer.bias));
        let out = match class.as_ref().and_then(|c| c.get(i)) {
            Some((gain, shift)) => {
                graph = class_modulation(graph, out, i + 1, gain, shift, layer.bias.len());
                format!("{out}_class")
            }
            None => out.to_string(),
        };
        graph = match activated {
            "" => graph.message(1, node("Tanh", &[&out], &["images"], &[])),
            next => graph.message(1, node("LeakyRelu", &[&out], &[next], &leaky)),
        };
    }
    if class.is_some() {
        graph = graph.message(5, float_tensor("one", &[], &[1.0]));
    }
    let n = Dim::Named("N");
    let side = Dim::Fixed(IMAGE_SIDE);
    graph = graph
        .message(5, int_tensor("depth", &[], &[classes as i64]))
        .message(5, float_tensor("one_hot_values", &[2], &[0.0, 1.0]))
        .message(5, int_tensor("spatial_axes", &[2], &[2, 3]))
        .message(
            11,
            value_info("z", ElemType::Float, &[n, Dim::Fixed(latent)]),
        )
        .message(11, value_info("label", ElemType::Int64, &[n]))
        .message(
            12,
            value_info(
                "images",
                ElemType::Float,
                &[n, Dim::Fixed(channels), side, side],
            ),
        );
    let mut model = Message::new()
        .int(1, IR_VERSION)
        .string(2, "cdcgan")
        .string(3, env!("CARGO_PKG_VERSION"))
        .message(7, graph)
        .message(8, Message::new().string(1, "").int(2, OPSET));
    let metadata = [
        (
            "classes",
            serde_json::to_string(&info.classes).unwrap_or_default(),
        ),
        ("dataset", info.dataset.clone()),
        ("source", info.source.clone()),
        (
            "image_scale",
            "images in [-1, 1]; pixel = (v + 1) * 127.5".to_string(),
        ),
        ("noise_scale", info.noise_scale.to_string()),
        (
            "inputs",
            format!(
                "z: float32 [N, {latent}] ~ N(0, {}^2) (noise_scale; G was trained on N(0, 1)); label: int64 [N]",
                info.noise_scale
            ),
        ),
    ];
    for (key, value) in metadata {
        model = model.message(14, Message::new().string(1, key).string(2, &value));
    }
    model.into_bytes()
}

/// bn`n`'s class modulation on `input` ([N, C, H, W]), written to
/// `{input}_class`: `input * (1 + y . gain) + y . shift`, y the one-hot rows.
fn class_modulation(
    graph: Message,
    input: &str,
    n: usize,
    gain: &[f32],
    shift: &[f32],
    channels: usize,
) -> Message {
    let dims = [gain.len() / channels, channels];
    let (g, t) = (format!("bn{n}_class.gain"), format!("bn{n}_class.shift"));
    let name = |what: &str| format!("{input}_{what}");
    let nodes = [
        ("MatMul", ["y".into(), g.clone()], name("gain")),
        ("Add", [name("gain"), "one".into()], name("scale")),
        (
            "Unsqueeze",
            [name("scale"), "spatial_axes".into()],
            name("scale4"),
        ),
        ("Mul", [input.into(), name("scale4")], name("scaled")),
        ("MatMul", ["y".into(), t.clone()], name("shift")),
        (
            "Unsqueeze",
            [name("shift"), "spatial_axes".into()],
            name("shift4"),
        ),
        ("Add", [name("scaled"), name("shift4")], name("class")),
    ];
    nodes
        .iter()
        .fold(graph, |graph, (op, [a, b], out): &(_, [String; 2], _)| {
            graph.message(1, node(op, &[a, b], &[out], &[]))
        })
        .message(5, float_tensor(&g, &dims, gain))
        .message(5, float_tensor(&t, &dims, shift))
}

/// The attributes of the generator's transposed convolution `index`: the
/// first maps the 1x1 input to 7x7, the others double the side.
fn deconv_attrs(layer: &FoldedDeconv, index: usize) -> Vec<Attr<'static>> {
    let [_, _, kh, kw] = layer.dims;
    let mut attrs = vec![Attr::Ints("kernel_shape", vec![kh as i64, kw as i64])];
    if index > 0 {
        debug_assert_eq!(kh, KERNEL);
        let p = PADDING as i64;
        attrs.extend([
            Attr::Ints("strides", vec![2, 2]),
            Attr::Ints("pads", vec![p, p, p, p]),
            Attr::Ints("output_padding", vec![1, 1]),
        ]);
    }
    attrs
}

/// Writes the generator to `path` as ONNX (atomically).
pub fn write_generator(path: &Path, generator: &Generator, info: &OnnxInfo) -> anyhow::Result<()> {
    crate::store::write_atomic(path, &generator_model(generator, info))
}
