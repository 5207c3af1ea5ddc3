//! The generator as a standard ONNX graph (opset 17), for use elsewhere
//! (onnxruntime in Python, the browser, other programs):
//!
//! ```text
//! inputs   z      float32 [N, latent]   the noise (N is dynamic)
//!          label  int64   [N]           the class of each row, 0..classes-1
//! output   images float32 [N, C, S, S] in [-1, 1]; pixel = (v + 1) * 127.5
//! ```
//!
//! OneHot(label) -> Concat(z, one-hot) -> Unsqueeze to [N, latent+classes,
//! 1, 1] -> then each layer of G's description ([`crate::model::net`]): at
//! 28 px, ConvTranspose(k7) -> LeakyRelu(0.2) -> ConvTranspose(k5, s2, p2,
//! output_padding 1) -> LeakyRelu(0.2) -> ConvTranspose(k5, s2, p2,
//! output_padding 1) -> Tanh, the batch norms folded into the transposed
//! convolutions before them (evaluation mode: the running statistics). A
//! generator with class-conditional batch norms also scales and shifts each
//! normed layer's output per row before its LeakyRelu: `h * (1 +
//! MatMul(y, gain)) + MatMul(y, shift)`.
//! The model's metadata names the classes (a JSON list, in label order), the
//! data set and the image scale.

mod proto;

use std::path::Path;

use proto::{Attr, Dim, ElemType, Message, float_tensor, int_tensor, node, value_info};

use crate::arch::LEAKY_SLOPE;
use crate::model::Generator;
use crate::model::net::{Activation, GeneratorNet, Layer};
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
    let net = generator.config().net();
    let folded = folded_layers(generator);
    let class = class_modulation_weights(generator);
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
        .message(1, node("Unsqueeze", &["zy", "spatial_axes"], &["a0"], &[]));
    for (i, ((layer, folded), class)) in net.layers.iter().zip(&folded).zip(&class).enumerate() {
        graph = layer_nodes(graph, i, layer, folded, class.as_ref());
    }
    if class.iter().any(Option::is_some) {
        graph = graph.message(5, float_tensor("one", &[], &[1.0]));
    }
    let mut model = Message::new()
        .int(1, IR_VERSION)
        .string(2, "cdcgan")
        .string(3, env!("CARGO_PKG_VERSION"))
        .message(7, inputs_and_outputs(graph, &net))
        .message(8, Message::new().string(1, "").int(2, OPSET));
    for (key, value) in metadata(info, net.latent) {
        model = model.message(14, Message::new().string(1, key).string(2, &value));
    }
    model.into_bytes()
}

/// Layer `i` of G: `a{i}` through its transposed convolution (batch norm
/// folded in), its class modulation if any, and its activation, to
/// `a{i + 1}` (the last one to `images`).
fn layer_nodes(
    graph: Message,
    i: usize,
    layer: &Layer,
    folded: &FoldedDeconv,
    class: Option<&(Vec<f32>, Vec<f32>)>,
) -> Message {
    let (input, out, activated) = (
        format!("a{i}"),
        format!("h{}", i + 1),
        format!("a{}", i + 1),
    );
    let (w, b) = (
        format!("{}.weight", layer.name),
        format!("{}.bias", layer.name),
    );
    let mut graph = graph
        .message(
            1,
            node(
                "ConvTranspose",
                &[&input, &w, &b],
                &[&out],
                &deconv_attrs(layer),
            ),
        )
        .message(5, float_tensor(&w, &folded.dims, &folded.weight))
        .message(5, float_tensor(&b, &[folded.bias.len()], &folded.bias));
    let out = match (class, &layer.norm) {
        (Some((gain, shift)), Some(norm)) => {
            graph = class_modulation(graph, &out, &norm.class_name(), gain, shift, layer.outputs);
            format!("{out}_class")
        }
        _ => out,
    };
    let leaky = [Attr::Float("alpha", LEAKY_SLOPE as f32)];
    match layer.activation {
        Activation::Tanh => graph.message(1, node("Tanh", &[&out], &["images"], &[])),
        _ => graph.message(1, node("LeakyRelu", &[&out], &[&activated], &leaky)),
    }
}

/// The graph's constants for the one-hot labels, and its inputs `z`,
/// `label` and output `images`.
fn inputs_and_outputs(graph: Message, net: &GeneratorNet) -> Message {
    let n = Dim::Named("N");
    let (channels, side) = (net.image.channels, Dim::Fixed(net.image.side));
    graph
        .message(5, int_tensor("depth", &[], &[net.classes as i64]))
        .message(5, float_tensor("one_hot_values", &[2], &[0.0, 1.0]))
        .message(5, int_tensor("spatial_axes", &[2], &[2, 3]))
        .message(
            11,
            value_info("z", ElemType::Float, &[n, Dim::Fixed(net.latent)]),
        )
        .message(11, value_info("label", ElemType::Int64, &[n]))
        .message(
            12,
            value_info(
                "images",
                ElemType::Float,
                &[n, Dim::Fixed(channels), side, side],
            ),
        )
}

/// The model's metadata: classes, provenance and how to feed it.
fn metadata(info: &OnnxInfo, latent: usize) -> [(&'static str, String); 6] {
    [
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
    ]
}

/// A norm's class modulation (tensors `{prefix}.gain`, `.shift`) on `input`
/// ([N, C, H, W]), written to `{input}_class`: `input * (1 + y . gain) + y
/// . shift`, y the one-hot rows.
fn class_modulation(
    graph: Message,
    input: &str,
    prefix: &str,
    gain: &[f32],
    shift: &[f32],
    channels: usize,
) -> Message {
    let dims = [gain.len() / channels, channels];
    let (g, t) = (format!("{prefix}.gain"), format!("{prefix}.shift"));
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

/// The attributes of a transposed convolution, from its description.
fn deconv_attrs(layer: &Layer) -> Vec<Attr<'static>> {
    let (k, s, p) = (
        layer.kernel as i64,
        layer.stride as i64,
        layer.padding as i64,
    );
    let mut attrs = vec![Attr::Ints("kernel_shape", vec![k, k])];
    if s != 1 || p != 0 || layer.out_padding != 0 {
        let o = layer.out_padding as i64;
        attrs.extend([
            Attr::Ints("strides", vec![s, s]),
            Attr::Ints("pads", vec![p, p, p, p]),
            Attr::Ints("output_padding", vec![o, o]),
        ]);
    }
    attrs
}

/// Writes the generator to `path` as ONNX (atomically).
pub fn write_generator(path: &Path, generator: &Generator, info: &OnnxInfo) -> anyhow::Result<()> {
    crate::store::write_atomic(path, &generator_model(generator, info))
}
