//! Elementwise layers, forward and backward: LeakyReLU and tanh. Each
//! backward takes the forward's output (its sign, or its value, is all the
//! derivative needs).

use crate::simd::multiversioned;
use rayon::prelude::*;

use super::Threads;
use crate::model::net::Activation;

/// Slope of LeakyReLU for negative inputs.
const SLOPE: f32 = crate::arch::LEAKY_SLOPE as f32;
/// Values per parallel task of an elementwise pass.
pub(super) const PAR_CHUNK: usize = 1 << 14;

/// LeakyReLU of one value.
pub fn leaky(x: f32) -> f32 {
    x.max(x * SLOPE)
}

multiversioned! {
/// `f` of each value, in place, on `threads`.
fn map_in_place(values: &mut [f32], threads: Threads, f: impl Fn(f32) -> f32 + Sync) {
    let apply = |c: &mut [f32]| c.iter_mut().for_each(|v| *v = f(*v));
    match threads {
        Threads::All => values.par_chunks_mut(PAR_CHUNK).for_each(apply),
        Threads::This => apply(values),
    }
}
}

/// A layer's activation in place (nothing for [`Activation::Linear`]).
pub fn activation_forward(values: &mut [f32], activation: Activation, threads: Threads) {
    match activation {
        Activation::Leaky => leaky_forward(values, threads),
        Activation::Tanh => tanh_forward(values, threads),
        Activation::Linear => {}
    }
}

/// The backward of [`activation_forward`] given its output.
pub fn activation_backward(grad: &mut [f32], output: &[f32], activation: Activation) {
    match activation {
        Activation::Leaky => leaky_backward(grad, output),
        Activation::Tanh => tanh_backward(grad, output),
        Activation::Linear => {}
    }
}

/// LeakyReLU in place.
pub fn leaky_forward(values: &mut [f32], threads: Threads) {
    map_in_place(values, threads, leaky);
}

multiversioned! {
/// Backward of LeakyReLU given its output (same sign as its input):
/// `grad *= 1` where the output is positive, the slope elsewhere.
pub fn leaky_backward(grad: &mut [f32], output: &[f32]) {
    grad.par_chunks_mut(PAR_CHUNK)
        .zip(output.par_chunks(PAR_CHUNK))
        .for_each(|(g, y)| {
            for (g, y) in g.iter_mut().zip(y) {
                if *y <= 0.0 {
                    *g *= SLOPE;
                }
            }
        });
}
}

/// Past this |x| tanh rounds to 1 in f32 (1 - tanh(10) = 4e-9, under half
/// a unit in the last place below 1, 3e-8).
const TANH_SATURATES: f64 = 10.0;
/// Under this |x|, tanh's series (the quotient below cancels).
const TANH_SERIES_BELOW: f64 = 0.01;
/// 1.5 * 2^52: adding it rounds an f64 of magnitude < 2^51 to an integer.
const ROUND_TO_INTEGER: f64 = 6755399441055744.0;
/// ln 2 split in two (Cody and Waite, fdlibm's bits): `n * LN2_HI` is exact
/// for |n| < 2^20.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);

/// tanh of one value: computed in f64 and rounded once, so within one unit
/// in the last place of f32 (measured: at most half a unit off the correctly
/// rounded value over every f32 tested). Plain arithmetic, no library call
/// and no branch, so a loop over it vectorises; the same bits at every SIMD
/// level. NaN stays NaN.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let c = f64::from(x).clamp(-TANH_SATURATES, TANH_SATURATES);
    // e = exp(2c) = 2^n * exp(r), |r| <= ln2 / 2.
    let y = 2.0 * c;
    let k = y * std::f64::consts::LOG2_E + ROUND_TO_INTEGER;
    let n = k - ROUND_TO_INTEGER;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    // exp(r) by its Taylor series to r^11 (relative error under 1e-14).
    let mut p = 1.0 / 39_916_800.0;
    for factorial in [
        3_628_800.0,
        362_880.0,
        40_320.0,
        5_040.0,
        720.0,
        120.0,
        24.0,
        6.0,
        2.0,
        1.0,
        1.0,
    ] {
        p = p * r + 1.0 / factorial;
    }
    let exponent = (k.to_bits().wrapping_sub(ROUND_TO_INTEGER.to_bits()) as i64).wrapping_add(1023);
    let e = p * f64::from_bits((exponent as u64) << 52);
    let quotient = (e - 1.0) / (e + 1.0);
    // Near 0: c - c^3/3 + 2c^5/15 - 17c^7/315 (next term under 1e-17 of c).
    let c2 = c * c;
    let series = c * (1.0 + c2 * (-1.0 / 3.0 + c2 * (2.0 / 15.0 + c2 * (-17.0 / 315.0))));
    let t = if c.abs() < TANH_SERIES_BELOW {
        series
    } else {
        quotient
    };
    t as f32
}

/// tanh in place ([`tanh`]).
pub fn tanh_forward(values: &mut [f32], threads: Threads) {
    map_in_place(values, threads, tanh);
}

multiversioned! {
/// Backward of tanh given its output: `grad *= 1 - y^2`.
pub fn tanh_backward(grad: &mut [f32], output: &[f32]) {
    grad.iter_mut()
        .zip(output)
        .for_each(|(g, y)| *g *= 1.0 - y * y);
}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units in the last place of f32 between `a` and the f64 `exact`.
    fn ulps(a: f32, exact: f64) -> f64 {
        let nearest = exact as f32;
        let ulp = (f32::from_bits(nearest.abs().to_bits() + 1) - nearest.abs()) as f64;
        (a as f64 - exact).abs() / ulp
    }

    #[test]
    fn tanh_is_within_half_an_ulp_of_the_exact_value() {
        // Every 97th f32 in [-12, 12] (about 2.2 million values, every
        // exponent down to the smallest normals), both signs.
        let mut worst = 0f64;
        for bits in (0..12f32.to_bits()).step_by(97) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let exact = (x as f64).tanh();
                worst = worst.max(ulps(tanh(x), exact));
            }
        }
        assert!(worst <= 0.5 + 1e-6, "worst error {worst} ulp");
    }

    #[test]
    fn tanh_keeps_signed_zeros_nan_and_the_limits() {
        assert_eq!(tanh(0.0).to_bits(), 0f32.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0f32).to_bits());
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(40.0), 1.0);
        assert_eq!(tanh(1e-30), 1e-30);
    }

    #[test]
    fn tanh_forward_matches_tanh_on_every_thread_split() {
        let values: Vec<f32> = (0..40_000).map(|i| (i as f32 - 20_000.0) * 7e-4).collect();
        for threads in [Threads::All, Threads::This] {
            let mut out = values.clone();
            tanh_forward(&mut out, threads);
            for (o, v) in out.iter().zip(&values) {
                assert_eq!(o.to_bits(), tanh(*v).to_bits());
            }
        }
    }
}
