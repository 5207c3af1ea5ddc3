//! DCGAN weight initialisation (Radford et al. 2015, as in the original
//! TensorFlow cDCGAN and PyTorch's DCGAN tutorial): convolution weights
//! N(0, 0.02), biases 0, batch-norm gammas N(1, 0.02), betas 0.
//!
//! Values are drawn on the host from a seeded ChaCha stream, in the module's
//! fixed visiting order, so the same seed gives the same network on any
//! backend and any thread count.

use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use rand_distr::{Distribution, Normal};

use super::weights::{PathMapper, map_with_paths};

/// Draws `n` values from N(mean, std).
pub fn normal_values(rng: &mut impl Rng, n: usize, mean: f32, std: f32) -> Vec<f32> {
    let dist = Normal::new(mean, std).expect("finite std");
    (0..n).map(|_| dist.sample(rng)).collect()
}

/// Re-initialises every trainable tensor of a module by its role, read from
/// its field name (`*.weight`, `*.bias`, `*.gamma`, `*.beta`). Running
/// statistics are buffers and keep their defaults (mean 0, var 1).
pub struct DcganInit<R: Rng> {
    rng: R,
}

impl<R: Rng> DcganInit<R> {
    /// An initialiser drawing its values from `rng`.
    pub fn new(rng: R) -> Self {
        Self { rng }
    }

    /// Re-initialises `module`.
    pub fn apply<M: Module>(mut self, module: M) -> M {
        map_with_paths(module, &mut self)
    }
}

impl<R: Rng> PathMapper for DcganInit<R> {
    fn map_at<const D: usize>(
        &mut self,
        path: &[String],
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let leaf = path.last().map(String::as_str).unwrap_or("");
        let (mean, std) = match leaf {
            "weight" => (0.0, 0.02),
            "gamma" => (1.0, 0.02),
            "bias" | "beta" => (0.0, 0.0),
            _ => return param, // running_mean / running_var
        };
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let values = if std == 0.0 {
            vec![mean; n]
        } else {
            normal_values(&mut self.rng, n, mean, std)
        };
        let fresh = Tensor::<D>::from_data(TensorData::new(values, shape), &tensor.device())
            .set_require_grad(tensor.is_require_grad());
        Param::from_mapped_value(id, fresh, mapper)
    }
}
