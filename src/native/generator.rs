//! G's training-mode forward and backward passes: deconv1 (a product, the
//! input is 1x1) -> bn1 -> LeakyReLU -> deconv2 -> bn2 -> LeakyReLU ->
//! deconv3 -> tanh, channels last.

use super::layout::GenLayers;
use super::{CpuGan, MID, Network, SIDE, SMALL};
use crate::cpu::conv::{TAPS, gather, im2col};
use crate::cpu::gemm::{Operand, Threads, product};
use crate::cpu::layout::concat_rows;
use crate::cpu::{add_bias, channel_sums, leaky_backward, norm};

/// What G's backward pass needs from its forward.
pub(super) struct GenCache {
    input: Vec<f32>,
    h1: Vec<f32>,
    bn1: norm::BatchNormCache,
    h2: Vec<f32>,
    bn2: norm::BatchNormCache,
    /// The images, [B, 784] in [-1, 1].
    pub(super) fake: Vec<f32>,
}

impl CpuGan {
    pub(super) fn generator_forward(
        &mut self,
        g: &GenLayers,
        z: &[f32],
        labels: &[f32],
        batch: usize,
    ) -> GenCache {
        let d = self.dims;
        let input = concat_rows(z, d.latent, labels, d.classes);
        // deconv1 (a 1x1 input: a plain product) -> bn1 -> LeakyReLU.
        let w1 = Operand::new(&g.w1, d.inputs(), SMALL * SMALL * d.g1);
        let mut h1 = product(Operand::new(&input, batch, d.inputs()), w1, Threads::All);
        add_bias(&mut h1, &g.b1);
        let bn1 = self.batch_norm_leaky(Network::Generator, "bn1", &mut h1, &g.gamma1, &g.beta1);

        // deconv2 -> bn2 -> LeakyReLU.
        let w2 = Operand::new(&g.w2, d.g1, TAPS * d.g2);
        let col = product(
            Operand::new(&h1, batch * SMALL * SMALL, d.g1),
            w2,
            Threads::All,
        );
        let mut h2 = vec![0f32; batch * MID * MID * d.g2];
        gather(&col, SMALL, &g.b2, &mut h2, |v| v);
        drop(col);
        let bn2 = self.batch_norm_leaky(Network::Generator, "bn2", &mut h2, &g.gamma2, &g.beta2);

        // deconv3 -> tanh.
        let w3 = Operand::new(&g.w3, d.g2, TAPS);
        let col = product(Operand::new(&h2, batch * MID * MID, d.g2), w3, Threads::All);
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

    pub(super) fn generator_backward(
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
        let w3 = product(
            Operand::new(&cache.h2, rows, d.g2).t(),
            dcol_m,
            Threads::All,
        );
        let mut dh2 = product(dcol_m, Operand::new(&g.w3, d.g2, TAPS).t(), Threads::All);
        drop(dcol);
        // LeakyReLU, bn2, deconv2.
        leaky_backward(&mut dh2, &cache.h2);
        let (gamma2, beta2) = norm::backward(&mut dh2, &cache.bn2, &g.gamma2);
        let b2 = channel_sums(&dh2, d.g2);
        let dcol = im2col(&dh2, MID, d.g2);
        drop(dh2);
        let rows = batch * SMALL * SMALL;
        let dcol_m = Operand::new(&dcol, rows, TAPS * d.g2);
        let w2 = product(
            Operand::new(&cache.h1, rows, d.g1).t(),
            dcol_m,
            Threads::All,
        );
        let mut dh1 = product(
            dcol_m,
            Operand::new(&g.w2, d.g1, TAPS * d.g2).t(),
            Threads::All,
        );
        drop(dcol);
        // LeakyReLU, bn1, deconv1.
        leaky_backward(&mut dh1, &cache.h1);
        let (gamma1, beta1) = norm::backward(&mut dh1, &cache.bn1, &g.gamma1);
        let b1 = channel_sums(&dh1, d.g1);
        let da1 = Operand::new(&dh1, batch, SMALL * SMALL * d.g1);
        let w1 = product(
            Operand::new(&cache.input, batch, d.inputs()).t(),
            da1,
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
}
