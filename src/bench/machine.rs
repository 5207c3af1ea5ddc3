//! What makes a throughput figure travel between machines: the CPU it ran
//! on, the fp32 product rate its cores reach (the peak the step's products
//! run against), and the arithmetic of the networks timed.

use std::time::Instant;

use crate::model::GanConfig;
use crate::native::{Operand, Precision, Threads, product, with_precision};

/// The CPU: vendor, family/model, name, and the widest vector instructions
/// the matrix kernels can use here.
pub fn cpu_description() -> String {
    use crate::backend::cpu_field as field;
    format!(
        "{} family {} model {} ({}), {} logical cores, SIMD {}",
        field("vendor_id"),
        field("cpu family"),
        field("model\t"),
        field("model name"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        simd_level()
    )
}

/// The widest vector instruction set present (the `gemm` crate picks its
/// kernels the same way at run time).
fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "AVX2+FMA";
        }
        "SSE2"
    }
    #[cfg(not(target_arch = "x86_64"))]
    "generic"
}

/// The product rate on the compute threads in `precision`, GFLOP/s: the
/// best of a few `n x n` by `n x n` products (2 n^3 flops each).
pub fn product_peak(n: usize, repeats: usize, precision: Precision) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
    let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
    let (a, b) = (Operand::new(&a, n, n), Operand::new(&b, n, n));
    let best = (0..repeats.max(1))
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(with_precision(precision, || product(a, b, Threads::All)));
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    2.0 * (n as f64).powi(3) / best / 1e9
}

/// Nominal flops of one image through G's and D's layer products (2 per
/// multiply-add, as a framework computes them: D's label planes convolved,
/// the 1x1 input's product whole), from their descriptions.
pub fn forward_flops(model: &GanConfig) -> (f64, f64) {
    let g = model.generator.net().multiply_adds();
    let d = model.discriminator.net().multiply_adds();
    (2.0 * g as f64, 2.0 * d as f64)
}

/// Nominal flops of one training sample: G's forward and backward (3 G
/// forwards' worth), and D's three passes (real, fake, the G step's
/// verdict) each forward and backward (9 D forwards' worth).
pub fn training_flops(model: &GanConfig) -> f64 {
    let (g, d) = forward_flops(model);
    3.0 * g + 9.0 * d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_network_has_the_arithmetic_counted_by_hand() {
        let (g, d) = forward_flops(&GanConfig::original(10, false));
        // G: 110*49*256 + 49*256*25*128 + 196*128*25 multiply-adds.
        assert_eq!(g, 2.0 * (1_379_840 + 40_140_800 + 627_200) as f64);
        // D: 196*25*11*128 + 49*25*128*256 + 49*256.
        assert_eq!(d, 2.0 * (6_899_200 + 40_140_800 + 12_544) as f64);
        assert!(product_peak(64, 2, Precision::Fp32) > 0.0);
        assert!(cpu_description().contains("SIMD"));
    }
}
