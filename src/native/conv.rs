//! The memory halves of the stride-2, kernel-5, padding-2 convolutions,
//! channels last. With `col` the product of an activation and a weight:
//!
//! - a transposed convolution (`S -> 2S`) is `col = x . W` over the S x S
//!   input positions, then [`gather`]: each output pixel sums the channel
//!   vectors of the taps that reach it;
//! - a convolution (`2S -> S`) is [`im2col`] (each output position's 25
//!   input pixels side by side), then `im2col(x) . W`.
//!
//! Each is the other's backward: a convolution's input gradient is a
//! gather of `dy . W^T`, a transposed convolution's column gradient is
//! `im2col(dy)`. The layers, forward and backward, are below the two halves.

use crate::simd::multiversioned;
use rayon::prelude::*;

use super::dense::bias_gradient;
use super::gemm::precision;
use super::{Operand, Threads, product, with_precision};
use crate::arch::{KERNEL, PADDING, TAPS};

/// For each coordinate `o` of the larger (2S) side: the (kernel index,
/// smaller-side index) pairs with `o = 2i + k - 2`.
pub fn taps_per_output(small_side: usize) -> Vec<Vec<(usize, usize)>> {
    (0..2 * small_side)
        .map(|o| {
            (0..KERNEL)
                .filter_map(|k| {
                    let twice = (o + PADDING).checked_sub(k)?;
                    (twice % 2 == 0 && twice / 2 < small_side).then_some((k, twice / 2))
                })
                .collect()
        })
        .collect()
}

multiversioned! {
/// `out[b, y, x, c] = act(bias[c] + sum col[b, i, j, (ky, kx), c])` over the
/// taps that reach (y, x) of the 2S x 2S image; `col` is
/// [images * S * S, 25 * channels] and `channels = bias.len()`.
pub fn gather(
    col: &[f32],
    small_side: usize,
    bias: &[f32],
    out: &mut [f32],
    activation: impl Fn(f32) -> f32 + Sync,
) {
    let channels = bias.len();
    let side = 2 * small_side;
    let taps = taps_per_output(small_side);
    let image_col = small_side * small_side * TAPS * channels;
    assert!(col.len() >= out.len() / (side * side * channels) * image_col);
    let wide = channels - channels % LANES;
    out.par_chunks_mut(side * side * channels)
        .enumerate()
        .for_each(|(b, image)| {
            let col = &col[b * image_col..(b + 1) * image_col];
            for (y, row) in image.chunks_mut(side * channels).enumerate() {
                for (x, pixel) in row.chunks_mut(channels).enumerate() {
                    // Where each tap reaching (y, x) starts in `col`: at most 3 x 3.
                    let mut starts = [0usize; 9];
                    let mut n = 0;
                    for &(ky, i) in &taps[y] {
                        for &(kx, j) in &taps[x] {
                            starts[n] = ((i * small_side + j) * TAPS + ky * KERNEL + kx) * channels;
                            n += 1;
                        }
                    }
                    let starts = &starts[..n];
                    for first in (0..wide).step_by(LANES) {
                        sum_taps::<LANES>(col, starts, first, bias, pixel, &activation);
                    }
                    for first in wide..channels {
                        sum_taps::<1>(col, starts, first, bias, pixel, &activation);
                    }
                }
            }
        });
}
}

/// Channels summed together in registers by [`gather`]: one AVX-512 vector.
const LANES: usize = 16;

/// Channels `first..first + B` of one output pixel: the bias plus the taps
/// at `starts` in `col`, in that order, then the activation.
#[inline(always)]
fn sum_taps<const B: usize>(
    col: &[f32],
    starts: &[usize],
    first: usize,
    bias: &[f32],
    pixel: &mut [f32],
    activation: &impl Fn(f32) -> f32,
) {
    let mut sums: [f32; B] = bias[first..first + B].try_into().expect("B channels");
    for at in starts {
        let tap: &[f32; B] = col[at + first..at + first + B]
            .try_into()
            .expect("B channels");
        sums.iter_mut().zip(tap).for_each(|(s, v)| *s += v);
    }
    pixel[first..first + B]
        .iter_mut()
        .zip(sums)
        .for_each(|(p, s)| *p = activation(s));
}

/// The kernel rows (or columns) of a stride-2 convolution over `side`
/// inputs that land inside the input for output coordinate `o`.
pub fn inside_taps(side: usize, o: usize) -> impl Iterator<Item = usize> {
    (0..KERNEL).filter(move |k| (2 * o + k).checked_sub(PADDING).is_some_and(|i| i < side))
}

multiversioned! {
/// The columns of a stride-2 convolution over `src` ([images, 2S, 2S,
/// channels]): row (b, i, j) holds the 25 input pixels of output (i, j),
/// tap-major, zeros where they fall in the padding. Returns
/// [images * S * S, 25 * channels].
pub fn im2col(src: &[f32], side: usize, channels: usize) -> Vec<f32> {
    let small = side / 2;
    let images = src.len() / (side * side * channels);
    let row_len = TAPS * channels;
    let len = images * small * small * row_len;
    let mut col = Vec::with_capacity(len);
    // Each value is written once: a copy of its pixel, or a zero in the
    // padding (no zeroing pass over the whole buffer first).
    col.spare_capacity_mut()[..len]
        .par_chunks_mut(small * small * row_len)
        .zip(src.par_chunks(side * side * channels))
        .for_each(|(col, image)| {
            for (pos, row) in col.chunks_mut(row_len).enumerate() {
                let (i, j) = (pos / small, pos % small);
                // The kernel columns inside the image: one run of pixels.
                let kx_first = PADDING.saturating_sub(2 * j);
                let kx_end = (side + PADDING - 2 * j).min(KERNEL);
                let x_first = 2 * j + kx_first - PADDING;
                for (ky, taps) in row.chunks_mut(KERNEL * channels).enumerate() {
                    let y = (2 * i + ky).checked_sub(PADDING).filter(|&y| y < side);
                    let Some(y) = y else {
                        taps.iter_mut().for_each(|o| {
                            o.write(0.0);
                        });
                        continue;
                    };
                    let (before, rest) = taps.split_at_mut(kx_first * channels);
                    let (inside, after) = rest.split_at_mut((kx_end - kx_first) * channels);
                    let from = (y * side + x_first) * channels;
                    inside.write_copy_of_slice(&image[from..from + inside.len()]);
                    before.iter_mut().chain(after).for_each(|o| {
                        o.write(0.0);
                    });
                }
            }
        });
    // SAFETY: the loop above wrote all `len` values (every tap of every row).
    unsafe { col.set_len(len) };
    col
}
}

/// Transposed convolution `S -> 2S` of `x` ([images * S * S, cin], channels
/// last) with `weight` `[cin, 25 * cout]` (taps major) and `bias` `[cout]`:
/// `activation(gather(x . W) + bias)`, [images * 2S * 2S, cout].
pub fn deconv_forward(
    x: &[f32],
    side: usize,
    weight: &[f32],
    bias: &[f32],
    activation: impl Fn(f32) -> f32 + Sync,
    threads: Threads,
) -> Vec<f32> {
    let cout = bias.len();
    let cin = weight.len() / (TAPS * cout);
    let col = product(
        Operand::new(x, x.len() / cin, cin),
        Operand::new(weight, cin, TAPS * cout),
        threads,
    );
    let mut y = vec![0f32; x.len() / cin * 4 * cout];
    gather(&col, side, bias, &mut y, activation);
    y
}

/// Gradients of [`deconv_forward`] (before its activation) from `dy`
/// [images * 2S * 2S, cout]: (input, weight, bias).
pub fn deconv_backward(
    dy: &[f32],
    x: &[f32],
    side: usize,
    weight: &[f32],
    cout: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let cin = weight.len() / (TAPS * cout);
    let bias = bias_gradient(dy, cout);
    // The column gradient is im2col of the output gradient.
    let dcol = im2col(dy, 2 * side, cout);
    let rows = x.len() / cin;
    let dcol_m = Operand::new(&dcol, rows, TAPS * cout);
    // Two products of equal arithmetic, side by side: a thread each where
    // one product's own split would leave the other thread waiting. Each
    // runs in this thread's precision, on whichever thread takes it.
    let precision = precision();
    let (dweight, dx) = rayon::join(
        || {
            with_precision(precision, || {
                product(Operand::new(x, rows, cin).t(), dcol_m, Threads::All)
            })
        },
        || {
            let weight_t = Operand::new(weight, cin, TAPS * cout).t();
            with_precision(precision, || product(dcol_m, weight_t, Threads::All))
        },
    );
    (dx, dweight, bias)
}

/// Convolution `2S -> S` of `x` ([images * 2S * 2S, cin], `side` = 2S) with
/// `weight` [25 * cin, cout] and `bias`: (y [images * S * S, cout], the
/// columns the backward pass reads).
pub fn conv_forward(x: &[f32], side: usize, weight: &[f32], bias: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let cout = bias.len();
    let cin = weight.len() / (TAPS * cout);
    let cols = im2col(x, side, cin);
    let rows = cols.len() / (TAPS * cin);
    let mut y = product(
        Operand::new(&cols, rows, TAPS * cin),
        Operand::new(weight, TAPS * cin, cout),
        Threads::All,
    );
    super::dense::add_bias(&mut y, bias, Threads::All);
    (y, cols)
}

/// The weight and bias gradients of [`conv_forward`] from `dy` [rows, cout]
/// and its columns.
pub fn conv_backward_weights(dy: &[f32], cols: &[f32], cout: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = dy.len() / cout;
    let cols = Operand::new(cols, rows, cols.len() / rows);
    let dweight = product(cols.t(), Operand::new(dy, rows, cout), Threads::All);
    (dweight, bias_gradient(dy, cout))
}

/// The input gradient of [`conv_forward`] from `dy` [images * S * S, cout]:
/// a gather of `dy . W^T`, [images * 2S * 2S, cin].
pub fn conv_backward_input(dy: &[f32], side: usize, weight: &[f32], cout: usize) -> Vec<f32> {
    let cin = weight.len() / (TAPS * cout);
    let rows = dy.len() / cout;
    let dcol = product(
        Operand::new(dy, rows, cout),
        Operand::new(weight, TAPS * cin, cout).t(),
        Threads::All,
    );
    let mut dx = vec![0f32; rows * 4 * cin];
    gather(&dcol, side / 2, &vec![0.0; cin], &mut dx, |v| v);
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_cover_each_output_as_the_definition_says() {
        // o = 2i + k - 2 for the 7 -> 14 layer: the first output sees
        // (k=0, i=1) and (k=2, i=0); the last (13) only (k=3, i=6).
        let taps = taps_per_output(7);
        assert_eq!(taps.len(), 14);
        assert_eq!(taps[0], vec![(0, 1), (2, 0)]);
        assert_eq!(taps[13], vec![(3, 6)]);
        let total: usize = taps.iter().map(Vec::len).sum();
        // 7 inputs x 5 taps, minus the 3 that fall outside (two before, one after).
        assert_eq!(total, 32);
    }

    /// gather is the adjoint of im2col: <gather(c), x> = <c, im2col(x)>
    /// for any columns c and image x (no bias, identity activation).
    #[test]
    fn gather_and_im2col_are_adjoint() {
        // 2 channels: one at a time; 21: a block of 16 in registers, then 5.
        for channels in [2, 21] {
            let (small, images) = (3, 2);
            let side = 2 * small;
            let n_col = images * small * small * TAPS * channels;
            let col: Vec<f32> = (0..n_col).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
            let x: Vec<f32> = (0..images * side * side * channels)
                .map(|i| ((i * 5 % 11) as f32) - 5.0)
                .collect();
            let mut gathered = vec![0f32; x.len()];
            gather(&col, small, &vec![0.0; channels], &mut gathered, |v| v);
            let lhs: f32 = gathered.iter().zip(&x).map(|(a, b)| a * b).sum();
            let rhs: f32 = col
                .iter()
                .zip(&im2col(&x, side, channels))
                .map(|(a, b)| a * b)
                .sum();
            assert_eq!(lhs, rhs);
            assert!(lhs != 0.0);
        }
    }
}
