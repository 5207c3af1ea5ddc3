//! Spectral normalisation of D's convolutions (Miyato et al. 2018): each
//! weight W, seen as a matrix [out, in * k * k], is used as W / sigma, sigma
//! its largest singular value, estimated by one power iteration per training
//! step. This bounds how fast D's verdict can change with its input, which
//! keeps its gradients to G smooth.
//!
//! The estimate keeps one vector u per weight (len out), as PyTorch's
//! `spectral_norm` does. Each step, before the D step:
//! `v = normalize(W^T u)`, `u = normalize(W v)` ([`power_iteration`]).
//! Whenever D runs, `sigma = |W^T u|` with u held constant, so
//! `d sigma / d W = u v^T` (v = W^T u / sigma): PyTorch's gradient.
//!
//! The host functions here serve both engines: burn's step calls
//! [`power_iteration`] and differentiates [`normalized_weight`]; the native
//! step uses [`sigma_and_v`] and [`weight_gradient`].

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;

use super::init::normal_values;

/// The tensor name of the vector u of D's layer `layer` (`spectral.conv1_u`),
/// as [`SpectralVectors`]' paths are named ([`super::weights::torch_name`]).
pub fn u_name(layer: &str) -> String {
    format!("spectral.{layer}_u")
}

/// The power-iteration vectors of D's convolutions (one value per output
/// channel each), in the order of D's layers (`spectral.conv1_u`, ...).
#[derive(Module, Debug)]
pub struct SpectralVectors {
    /// Each convolution's u.
    pub conv_u: Vec<Param<Tensor<1>>>,
}

impl SpectralVectors {
    /// Vectors of unit length drawn from `rng`, for layers of `outs` outputs.
    pub fn random(outs: &[usize], rng: &mut impl Rng, device: &Device) -> Self {
        let mut draw = |n: usize| {
            let mut u = normal_values(rng, n, 0.0, 1.0);
            normalize(&mut u);
            Param::from_tensor(Tensor::from_data(TensorData::new(u, [n]), device))
        };
        Self {
            conv_u: outs.iter().map(|&n| draw(n)).collect(),
        }
    }

    /// Each vector moved by one power iteration on its layer's weight
    /// (`weights` in layer order, [out, in, k, k] each).
    pub fn iterate(&mut self, weights: &[Tensor<4>]) {
        for (u, w) in self.conv_u.iter_mut().zip(weights) {
            let (mut host, device) = (values(u.val()), u.val().device());
            power_iteration(&values(w.clone()), &mut host);
            let n = host.len();
            *u = Param::from_tensor(Tensor::from_data(TensorData::new(host, [n]), &device));
        }
    }
}

/// A tensor's values on the host.
fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32")
}

/// `w` [out, ...] divided by its spectral norm estimate |W^T u|, u held
/// constant (the gradient flows through W twice: directly and through sigma).
pub fn normalized_weight(w: Tensor<4>, u: &Param<Tensor<1>>) -> Tensor<4> {
    let [out, cin, kh, kw] = w.dims();
    let u = u.val().detach().reshape([1, out]);
    let wtu = u.matmul(w.clone().reshape([out, cin * kh * kw]));
    let sigma = wtu.powi_scalar(2).sum().sqrt().reshape([1, 1, 1, 1]);
    w / sigma
}

/// `x` scaled to unit length (left as it is when it is zero).
fn normalize(x: &mut [f32]) {
    let norm = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    if norm > 0.0 {
        x.iter_mut()
            .for_each(|v| *v = (f64::from(*v) / norm) as f32);
    }
}

/// `W^T u` for `w` [u.len(), cols] row-major.
fn transposed_product(w: &[f32], u: &[f32]) -> Vec<f32> {
    let cols = w.len() / u.len();
    let mut out = vec![0f64; cols];
    for (row, &ui) in w.chunks(cols).zip(u) {
        out.iter_mut()
            .zip(row)
            .for_each(|(o, &x)| *o += f64::from(x) * f64::from(ui));
    }
    out.into_iter().map(|v| v as f32).collect()
}

/// One power iteration for `w` [u.len(), cols]: `v = normalize(W^T u)`,
/// `u = normalize(W v)`.
pub fn power_iteration(w: &[f32], u: &mut [f32]) {
    let mut v = transposed_product(w, u);
    normalize(&mut v);
    let cols = v.len();
    for (ui, row) in u.iter_mut().zip(w.chunks(cols)) {
        *ui = row
            .iter()
            .zip(&v)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum::<f64>() as f32;
    }
    normalize(u);
}

/// The spectral norm estimate `sigma = |W^T u|` of `w` [u.len(), cols], and
/// `v = W^T u / sigma`.
pub fn sigma_and_v(w: &[f32], u: &[f32]) -> (f32, Vec<f32>) {
    let mut v = transposed_product(w, u);
    let sigma = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt() as f32;
    normalize(&mut v);
    (sigma, v)
}

/// The gradient of W from `grad`, the gradient of the normalised weight
/// `w / sigma` (both [u.len(), cols], in place):
/// `(grad - <grad, w / sigma> u v^T) / sigma`.
pub fn weight_gradient(grad: &mut [f32], w: &[f32], u: &[f32], sigma: f32, v: &[f32]) {
    let sigma = f64::from(sigma);
    let along = grad
        .iter()
        .zip(w)
        .map(|(&g, &x)| f64::from(g) * f64::from(x))
        .sum::<f64>()
        / sigma;
    let cols = v.len();
    for (row, &ui) in grad.chunks_mut(cols).zip(u) {
        for (g, &vj) in row.iter_mut().zip(v) {
            *g = ((f64::from(*g) - along * f64::from(ui) * f64::from(vj)) / sigma) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::training_device;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn power_iteration_finds_the_largest_singular_value() {
        // W = diag(3, 1, 0.5) padded with a zero column: sigma = 3.
        let w = [3., 0., 0., 0., 0., 1., 0., 0., 0., 0., 0.5, 0.];
        let mut u = vec![0.3, 0.9, -0.4];
        for _ in 0..30 {
            power_iteration(&w, &mut u);
        }
        let (sigma, v) = sigma_and_v(&w, &u);
        assert!((sigma - 3.0).abs() < 1e-4, "sigma {sigma}");
        assert!((v[0].abs() - 1.0).abs() < 1e-4, "v {v:?}");
    }

    /// burn's autodiff through [`normalized_weight`] gives [`weight_gradient`].
    #[test]
    fn the_weight_gradient_matches_autodiff() {
        let device = training_device();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (out, cin, k) = (4, 3, 2);
        let w_host = normal_values(&mut rng, out * cin * k * k, 0.0, 0.5);
        let mut u_host = normal_values(&mut rng, out, 0.0, 1.0);
        normalize(&mut u_host);
        let probe = normal_values(&mut rng, w_host.len(), 0.0, 1.0);

        let w = Tensor::<4>::from_data(TensorData::new(w_host.clone(), [out, cin, k, k]), &device)
            .require_grad();
        let u = Param::from_tensor(Tensor::from_data(
            TensorData::new(u_host.clone(), [out]),
            &device,
        ));
        let p = Tensor::<4>::from_data(TensorData::new(probe.clone(), [out, cin, k, k]), &device);
        let loss = (normalized_weight(w.clone(), &u) * p).sum();
        let grads = loss.backward();
        let autodiff = w
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();

        // The loss is <probe, W / sigma>: its gradient by W / sigma is the probe.
        let mut ours = probe;
        let (sigma, v) = sigma_and_v(&w_host, &u_host);
        weight_gradient(&mut ours, &w_host, &u_host, sigma, &v);
        for (a, b) in autodiff.iter().zip(&ours) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn the_weight_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let (out, cols) = (3, 5);
        let w = normal_values(&mut rng, out * cols, 0.0, 1.0);
        let mut u = normal_values(&mut rng, out, 0.0, 1.0);
        normalize(&mut u);
        let probe = normal_values(&mut rng, w.len(), 0.0, 1.0);
        // f(W) = <probe, W / |W^T u|>, in f64.
        let f = |w: &[f64]| {
            let mut wtu = vec![0f64; cols];
            for (row, &ui) in w.chunks(cols).zip(&u) {
                wtu.iter_mut()
                    .zip(row)
                    .for_each(|(o, x)| *o += x * f64::from(ui));
            }
            let sigma = wtu.iter().map(|x| x * x).sum::<f64>().sqrt();
            w.iter()
                .zip(&probe)
                .map(|(x, &p)| x * f64::from(p))
                .sum::<f64>()
                / sigma
        };
        let mut ours = probe.clone();
        let (sigma, v) = sigma_and_v(&w, &u);
        weight_gradient(&mut ours, &w, &u, sigma, &v);
        let w64: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
        for i in 0..w.len() {
            let h = 1e-6;
            let (mut up, mut down) = (w64.clone(), w64.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (f(&up) - f(&down)) / (2.0 * h);
            assert!(
                (numeric - f64::from(ours[i])).abs() < 1e-5,
                "{i}: {numeric} vs {}",
                ours[i]
            );
        }
    }
}
