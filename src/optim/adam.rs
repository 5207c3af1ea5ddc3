//! Adam (Kingma & Ba 2015) with PyTorch's update rule, on host copies of the
//! parameters.
//!
//! The moments live on the host under each parameter's PyTorch name, so the
//! optimizer state is a plain set of named tensors: saved in the checkpoint
//! next to the weights and restored bit for bit on resume.

use std::collections::BTreeMap;

use anyhow::{bail, ensure};
use burn::module::{Module, Param};
use burn::tensor::{Gradients, Tensor, TensorData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::weights::{HostTensor, NamedTensors, PathMapper, map_with_paths, torch_name};
use crate::simd::multiversioned;

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay rate of the first moment (the running mean of gradients).
    pub beta1: f64,
    /// Decay rate of the second moment (the running mean of squared gradients).
    pub beta2: f64,
    /// Added to the root of the second moment to avoid dividing by zero.
    pub eps: f64,
}

impl Default for AdamConfig {
    /// The DCGAN settings: lr 2e-4, betas (0.5, 0.999).
    fn default() -> Self {
        Self {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// First and second moment of one parameter.
#[derive(Debug, Clone, PartialEq)]
struct Moments {
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
}

/// Adam over the parameters of one module.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    /// The hyper-parameters; callers change `lr` between steps for schedules.
    pub config: AdamConfig,
    /// Number of updates done (PyTorch's `step`), for bias correction.
    pub steps: u64,
    moments: BTreeMap<String, Moments>,
}

impl Adam {
    /// A fresh optimizer: no steps taken, zero moments.
    pub fn new(config: AdamConfig) -> Self {
        Self {
            config,
            steps: 0,
            moments: BTreeMap::new(),
        }
    }

    /// Applies one update to every parameter of `module` that has a gradient in
    /// `grads` (the result of `loss.backward()`); other gradients are ignored.
    pub fn step<M: Module>(&mut self, module: M, grads: &mut Gradients) -> M {
        self.steps += 1;
        map_with_paths(module, &mut Update { adam: self, grads })
    }

    /// The moments as named tensors: `<param>.exp_avg`, `<param>.exp_avg_sq`.
    pub fn state(&self) -> NamedTensors {
        let mut out = NamedTensors::new();
        for (name, m) in &self.moments {
            let shape = vec![m.exp_avg.len()];
            out.insert(
                format!("{name}.exp_avg"),
                HostTensor {
                    shape: shape.clone(),
                    values: m.exp_avg.clone(),
                },
            );
            out.insert(
                format!("{name}.exp_avg_sq"),
                HostTensor {
                    shape,
                    values: m.exp_avg_sq.clone(),
                },
            );
        }
        out
    }

    /// Restores moments saved by [`Adam::state`] after `steps` updates.
    pub fn load_state(&mut self, state: &NamedTensors, steps: u64) -> anyhow::Result<()> {
        let mut moments = BTreeMap::new();
        for (key, t) in state {
            let Some(name) = key.strip_suffix(".exp_avg") else {
                ensure!(
                    key.ends_with(".exp_avg_sq"),
                    "unexpected optimizer tensor `{key}`"
                );
                continue;
            };
            let Some(sq) = state.get(&format!("{name}.exp_avg_sq")) else {
                bail!("optimizer tensor `{name}.exp_avg_sq` is missing");
            };
            ensure!(
                sq.values.len() == t.values.len(),
                "optimizer tensors of `{name}` disagree in size"
            );
            moments.insert(
                name.to_string(),
                Moments {
                    exp_avg: t.values.clone(),
                    exp_avg_sq: sq.values.clone(),
                },
            );
        }
        self.moments = moments;
        self.steps = steps;
        Ok(())
    }

    /// The update of one parameter, in place on host values (PyTorch's
    /// `torch.optim.Adam`, non-amsgrad, no weight decay).
    pub(crate) fn update(&mut self, name: &str, param: &mut [f32], grad: &[f32]) {
        let c = self.config;
        let moments = self
            .moments
            .entry(name.to_string())
            .or_insert_with(|| Moments {
                exp_avg: vec![0.0; param.len()],
                exp_avg_sq: vec![0.0; param.len()],
            });
        let t = self.steps as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let rates = UpdateRates {
            step_size: (c.lr / bias1) as f32,
            b1: c.beta1 as f32,
            b2: c.beta2 as f32,
            inv_bias2_sqrt: (1.0 / bias2_sqrt) as f32,
            eps: c.eps as f32,
        };
        adam_update(param, grad, moments, rates);
    }
}

/// One update's coefficients, in f32.
#[derive(Debug, Clone, Copy)]
struct UpdateRates {
    /// lr / (1 - beta1^t).
    step_size: f32,
    b1: f32,
    b2: f32,
    /// 1 / sqrt(1 - beta2^t).
    inv_bias2_sqrt: f32,
    eps: f32,
}

multiversioned! {
/// Adam's update of `param` and its `moments` by `grad`, in parallel chunks.
fn adam_update(param: &mut [f32], grad: &[f32], moments: &mut Moments, rates: UpdateRates) {
    let UpdateRates { step_size, b1, b2, inv_bias2_sqrt, eps } = rates;
    const CHUNK: usize = 1 << 14;
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(moments.exp_avg.par_chunks_mut(CHUNK))
        .zip(moments.exp_avg_sq.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                let denom = v[i].sqrt() * inv_bias2_sqrt + eps;
                p[i] -= step_size * m[i] / denom;
            }
        });
}
}

/// Walks a module, replacing each parameter that has a gradient by its update.
struct Update<'a> {
    adam: &'a mut Adam,
    grads: &'a mut Gradients,
}

impl PathMapper for Update<'_> {
    fn map_at<const D: usize>(
        &mut self,
        path: &[String],
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = tensor.grad_remove(self.grads) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = tensor.shape();
        let device = tensor.device();
        let mut values = tensor
            .inner()
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 parameters");
        let grad = grad
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 gradients");
        self.adam.update(&torch_name(path), &mut values, &grad);
        let fresh = Tensor::<D>::from_data(TensorData::new(values, shape), &device).require_grad();
        Param::from_mapped_value(id, fresh, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from `torch.optim.Adam([p], lr=0.1, betas=(0.5, 0.999))` with
    /// p = 1.0 and gradient 2p (minimising p^2), three steps.
    #[test]
    fn matches_pytorch_adam_on_a_quadratic() {
        let mut adam = Adam::new(AdamConfig {
            lr: 0.1,
            ..AdamConfig::default()
        });
        let mut p = vec![1.0f32];
        for _ in 0..3 {
            adam.steps += 1;
            let g = vec![2.0 * p[0]];
            adam.update("w", &mut p, &g);
        }
        // Reference trajectory 0.9, 0.80189, 0.70697 (PyTorch's formula in f64).
        assert!((p[0] - 0.706_971).abs() < 1e-5, "{}", p[0]);
    }

    #[test]
    fn state_round_trips() {
        let mut adam = Adam::new(AdamConfig::default());
        adam.steps = 1;
        let mut p = vec![0.5f32; 10];
        adam.update("deconv1.weight", &mut p, &[0.1; 10]);
        let mut back = Adam::new(AdamConfig::default());
        back.load_state(&adam.state(), adam.steps).unwrap();
        assert_eq!(back, adam);
    }
}
