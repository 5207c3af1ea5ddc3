//! Both networks' parameters in the layouts the kernels multiply
//! ([`super::layout`]), read from and written back to their PyTorch names.
//! Each set is one table of names and layouts; conversions and sums are
//! loops over it. The same types hold the gradients.

use super::layout::{
    conv_from_kernel, conv_to_kernel, transposed_from_kernel, transposed_to_kernel,
};
use super::norm::{BatchStats, update_running};
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

/// A set of named parameters in kernel layout: its table, and its fields in
/// the table's order.
pub(super) trait ParamSet: Default {
    /// (PyTorch name, layout) of each field, in [`ParamSet::fields_mut`] order.
    const TABLE: &'static [(&'static str, Layout)];

    /// The fields, in the table's order.
    fn fields_mut(&mut self) -> Vec<&mut Vec<f32>>;

    /// The set read from PyTorch-layout tensors. A parameter the network
    /// goes without (D's bn2 with `batch_norm: false`) stays empty.
    fn from_torch(tensors: &NamedTensors) -> Self {
        let mut set = Self::default();
        for (field, (name, layout)) in set.fields_mut().into_iter().zip(Self::TABLE) {
            if let Some(t) = tensors.get(*name) {
                *field = layout.torch_to_kernel(&t.values, &t.shape);
            }
        }
        set
    }

    /// Each field back in PyTorch layout under its name (the shapes read
    /// from `like`), but for the parameters `like` goes without.
    fn to_torch(mut self, like: &NamedTensors) -> Vec<(&'static str, Vec<f32>)> {
        self.fields_mut()
            .into_iter()
            .zip(Self::TABLE)
            .filter_map(|(field, (name, layout))| {
                let shape = &like.get(*name)?.shape;
                Some((*name, layout.kernel_to_torch(field, shape)))
            })
            .collect()
    }

    /// Adds `other` field by field (gradient sums).
    fn add(&mut self, mut other: Self) {
        for (a, b) in self.fields_mut().into_iter().zip(other.fields_mut()) {
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

/// A parameter set: the struct (one `Vec<f32>` a parameter) and its
/// [`ParamSet`] table, from one list of (field, PyTorch name, layout).
macro_rules! param_set {
    ($(#[$meta:meta])* $set:ident {
        $($(#[$field_meta:meta])* $field:ident: $torch:literal, $layout:ident;)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        pub(super) struct $set {
            $($(#[$field_meta])* pub $field: Vec<f32>,)*
        }

        impl ParamSet for $set {
            const TABLE: &'static [(&'static str, Layout)] = &[$(($torch, Layout::$layout)),*];

            fn fields_mut(&mut self) -> Vec<&mut Vec<f32>> {
                vec![$(&mut self.$field),*]
            }
        }
    };
}

param_set! {
    /// G's parameters in kernel layout (or their gradients).
    GenParams {
        /// deconv1: [inputs, c1 * 49], channels major (PyTorch's).
        w1: "deconv1.weight", AsIs;
        b1: "deconv1.bias", AsIs;
        gamma1: "bn1.weight", AsIs;
        beta1: "bn1.bias", AsIs;
        /// deconv2: [c1, 25 * c2], taps major.
        w2: "deconv2.weight", Transposed;
        b2: "deconv2.bias", AsIs;
        gamma2: "bn2.weight", AsIs;
        beta2: "bn2.bias", AsIs;
        /// deconv3: [c2, 25].
        w3: "deconv3.weight", Transposed;
        b3: "deconv3.bias", AsIs;
    }
}

param_set! {
    /// The class-conditional parts of G's batch norms (with `class_norm`):
    /// [classes, channels] each.
    ClassNormParams {
        gain1: "bn1_class.gain", AsIs;
        shift1: "bn1_class.shift", AsIs;
        gain2: "bn2_class.gain", AsIs;
        shift2: "bn2_class.shift", AsIs;
    }
}

param_set! {
    /// D's parameters in kernel layout (or their gradients).
    DiscParams {
        /// conv1: [25 * (1 + classes), c1], taps major.
        w1: "conv1.weight", Conv;
        b1: "conv1.bias", AsIs;
        /// conv2: [25 * c1, c2].
        w2: "conv2.weight", Conv;
        b2: "conv2.bias", AsIs;
        gamma2: "bn2.weight", AsIs;
        beta2: "bn2.bias", AsIs;
        /// conv3: [49 * c2], positions major (c2 + 1 with the spread plane).
        w3: "conv3.weight", Conv;
        b3: "conv3.bias", AsIs;
        /// The AC-GAN head: [49 * c2, classes], positions major.
        wa: "aux.weight", Conv;
        ba: "aux.bias", AsIs;
        /// The projection term's class embedding: [classes, c2].
        embed: "embed.weight", AsIs;
    }
}
