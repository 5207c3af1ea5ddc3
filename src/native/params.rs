//! Both networks' parameters in the layouts the kernels multiply
//! ([`super::layout`]), read from and written back to their PyTorch names,
//! one set per layer of the network's description
//! ([`crate::model::net`]); conversions and sums are loops over its
//! entries. The same types hold the gradients.

use super::layout::{
    conv_from_kernel, conv_to_kernel, transposed_from_kernel, transposed_to_kernel,
};
use super::norm::{BatchStats, update_running};
use crate::model::net::{Kind, Layer};
use crate::model::weights::NamedTensors;
use crate::simd::multiversioned;

/// Moves the running statistics of batch norm `layer` (`{layer}.running_mean`
/// and `.running_var` in `tensors`) towards the batch's, as burn does.
pub(super) fn update_running_stats(tensors: &mut NamedTensors, layer: &str, batch: &BatchStats) {
    for (stat, values) in [("running_mean", &batch.mean), ("running_var", &batch.var)] {
        let running = tensors
            .get_mut(&format!("{layer}.{stat}"))
            .expect("batch-norm statistics");
        update_running(&mut running.values, values);
    }
}

/// How a PyTorch tensor is laid out for the kernels.
#[derive(Debug, Clone, Copy)]
pub(super) enum Layout {
    /// As PyTorch keeps it: vectors (bias, batch-norm scale or shift), and
    /// G's first weight, which [`super::dense::projection_forward`] reads in
    /// place.
    AsIs,
    /// A transposed convolution's [in, out, k, k] as [in, k*k*out].
    Transposed,
    /// A convolution's [out, in, k, k] as [k*k*in, out].
    Conv,
}

impl Layout {
    fn torch_to_kernel(self, values: &[f32], shape: &[usize]) -> Vec<f32> {
        match (self, shape) {
            (Layout::AsIs, _) => values.to_vec(),
            (Layout::Transposed, &[cin, cout, kh, kw]) => {
                transposed_to_kernel(values, cin, cout, kh * kw)
            }
            (Layout::Conv, &[cout, cin, kh, kw]) => conv_to_kernel(values, cout, cin, kh * kw),
            _ => panic!("a {self:?} weight of shape {shape:?}"),
        }
    }

    fn kernel_to_torch(self, values: &[f32], shape: &[usize]) -> Vec<f32> {
        match (self, shape) {
            (Layout::AsIs, _) => values.to_vec(),
            (Layout::Transposed, &[cin, cout, kh, kw]) => {
                transposed_from_kernel(values, cin, cout, kh * kw)
            }
            (Layout::Conv, &[cout, cin, kh, kw]) => conv_from_kernel(values, cout, cin, kh * kw),
            _ => panic!("a {self:?} weight of shape {shape:?}"),
        }
    }
}

/// How layer `layer`'s weight is laid out for the kernels.
fn weight_layout(layer: &Layer) -> Layout {
    match layer.kind {
        Kind::Project => Layout::AsIs,
        Kind::Up => Layout::Transposed,
        Kind::Down | Kind::Whole => Layout::Conv,
    }
}

/// One layer's parameters in kernel layout (or their gradients); a
/// parameter the layer goes without stays empty.
#[derive(Debug, Clone, Default)]
pub(super) struct LayerParams {
    /// The weight: [inputs, positions * outputs] channels major (PyTorch's)
    /// for a projection, [inputs, 25 * outputs] taps major for a transposed
    /// convolution, [taps * inputs, outputs] for a convolution.
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    /// The batch norm's scale and shift.
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    /// The norm's class modulation: [classes, outputs] each.
    pub gain: Vec<f32>,
    pub shift: Vec<f32>,
}

/// A network's parameters in kernel layout (or their gradients), one
/// [`LayerParams`] per layer of its description, read from and written back
/// to their PyTorch names; D's also its head's and its class embedding.
#[derive(Debug, Clone, Default)]
pub(super) struct NetParams {
    pub layers: Vec<LayerParams>,
    /// The AC-GAN head (D), empty without it.
    pub head: LayerParams,
    /// The projection term's class embedding (D): [classes, features].
    pub embed: Vec<f32>,
}

/// A parameter: its PyTorch name, layout and values.
type Entry<'a> = (String, Layout, &'a mut Vec<f32>);

/// A network's layers as its parameters list them: the description's
/// layers, and D's head where it has one.
#[derive(Debug, Clone, Copy)]
pub(super) struct ParamLayers<'a> {
    pub layers: &'a [Layer],
    pub head: Option<&'a Layer>,
}

impl NetParams {
    /// Each parameter of `list`'s layers (the head's last), and the embedding.
    fn entries<'a>(&'a mut self, list: ParamLayers) -> Vec<Entry<'a>> {
        let mut out = Vec::new();
        let layers = list.layers.iter().zip(&mut self.layers);
        let head = list.head.into_iter().zip(std::iter::once(&mut self.head));
        for (layer, p) in layers.chain(head) {
            let name = |what: &str| format!("{}.{what}", layer.name);
            out.push((name("weight"), weight_layout(layer), &mut p.w));
            out.push((name("bias"), Layout::AsIs, &mut p.b));
            if let Some(norm) = &layer.norm {
                out.push((format!("{}.weight", norm.name), Layout::AsIs, &mut p.gamma));
                out.push((format!("{}.bias", norm.name), Layout::AsIs, &mut p.beta));
                if norm.class {
                    let class = norm.class_name();
                    out.push((format!("{class}.gain"), Layout::AsIs, &mut p.gain));
                    out.push((format!("{class}.shift"), Layout::AsIs, &mut p.shift));
                }
            }
        }
        out.push(("embed.weight".into(), Layout::AsIs, &mut self.embed));
        out
    }

    /// The parameters of `layers` read from PyTorch-layout tensors. A
    /// parameter the network goes without stays empty.
    pub(super) fn from_torch(tensors: &NamedTensors, list: ParamLayers) -> Self {
        let mut set = Self {
            layers: vec![LayerParams::default(); list.layers.len()],
            ..Self::default()
        };
        for (name, layout, field) in set.entries(list) {
            if let Some(t) = tensors.get(&name) {
                *field = layout.torch_to_kernel(&t.values, &t.shape);
            }
        }
        set
    }

    /// Each parameter back in PyTorch layout under its name (the shapes read
    /// from `like`), but for the parameters `like` goes without.
    pub(super) fn into_torch(
        mut self,
        list: ParamLayers,
        like: &NamedTensors,
    ) -> Vec<(String, Vec<f32>)> {
        self.entries(list)
            .into_iter()
            .filter_map(|(name, layout, field)| {
                let shape = &like.get(&name)?.shape;
                let values = layout.kernel_to_torch(field, shape);
                Some((name, values))
            })
            .collect()
    }

    /// Adds `other` parameter by parameter (gradient sums).
    pub(super) fn add(&mut self, mut other: Self, list: ParamLayers) {
        let theirs = other.entries(list);
        for ((_, _, a), (_, _, b)) in self.entries(list).into_iter().zip(theirs) {
            add_into(a, b);
        }
    }
}

multiversioned! {
/// `a += b`, value by value.
fn add_into(a: &mut [f32], b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
}
}
