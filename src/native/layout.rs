//! Weight layouts: PyTorch keeps a transposed convolution's weight as
//! [in, out, k, k] and a convolution's as [out, in, k, k]; the channels-last
//! products want [in, taps * out] and [taps * in, out]. And the rows of two
//! matrices side by side (z and the condition, G's input).

use crate::simd::multiversioned;

/// Side of the square tiles a transpose moves (8 x 8 values: each tile's
/// rows and columns stay in cache while it is copied).
const TILE: usize = 8;

multiversioned! {
/// `b[c * b_stride + r] = a[r * a_stride + c]` for `r < rows`, `c < cols`:
/// a strided matrix transposed tile by tile.
fn transpose(a: &[f32], a_stride: usize, b: &mut [f32], b_stride: usize, rows: usize, cols: usize) {
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    b[c * b_stride + r] = a[r * a_stride + c];
                }
            }
        }
    }
}
}

/// `src` read as a [d0, d1, d2] array, as [d0, d2, d1].
pub fn swap_inner_axes(src: &[f32], [d0, d1, d2]: [usize; 3]) -> Vec<f32> {
    assert_eq!(src.len(), d0 * d1 * d2, "tensor size");
    let mut out = vec![0f32; src.len()];
    for (a, b) in src.chunks(d1 * d2).zip(out.chunks_mut(d1 * d2)) {
        transpose(a, d2, b, d1, d1, d2);
    }
    out
}

/// `src` read as a [d0, d1, d2] array, as [d2, d1, d0].
fn swap_outer_axes(src: &[f32], [d0, d1, d2]: [usize; 3]) -> Vec<f32> {
    assert_eq!(src.len(), d0 * d1 * d2, "tensor size");
    let mut out = vec![0f32; src.len()];
    for i in 0..d1 {
        transpose(&src[i * d2..], d1 * d2, &mut out[i * d0..], d1 * d0, d0, d2);
    }
    out
}

/// A [cin, cout, k, k] transposed-convolution weight as [cin, k*k*cout].
pub fn transposed_to_kernel(w: &[f32], cin: usize, cout: usize, taps: usize) -> Vec<f32> {
    swap_inner_axes(w, [cin, cout, taps])
}

/// The inverse of [`transposed_to_kernel`].
pub fn transposed_from_kernel(h: &[f32], cin: usize, cout: usize, taps: usize) -> Vec<f32> {
    swap_inner_axes(h, [cin, taps, cout])
}

/// A [cout, cin, k, k] convolution weight as [k*k*cin, cout] (the layout
/// [`super::conv::im2col`] rows multiply).
pub fn conv_to_kernel(w: &[f32], cout: usize, cin: usize, taps: usize) -> Vec<f32> {
    swap_outer_axes(w, [cout, cin, taps])
}

/// The inverse of [`conv_to_kernel`].
pub fn conv_from_kernel(h: &[f32], cout: usize, cin: usize, taps: usize) -> Vec<f32> {
    swap_outer_axes(h, [taps, cin, cout])
}

/// The rows of `a` ([n, a_cols]) and `b` ([n, b_cols]) side by side:
/// [n, a_cols + b_cols].
pub fn concat_rows(a: &[f32], a_cols: usize, b: &[f32], b_cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    for (x, y) in a.chunks(a_cols).zip(b.chunks(b_cols)) {
        out.extend_from_slice(x);
        out.extend_from_slice(y);
    }
    out
}

/// The inverse of [`concat_rows`]: the first `a_cols` and the last
/// `b_cols` columns of each row of `x`.
pub fn split_rows(x: &[f32], a_cols: usize, b_cols: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / (a_cols + b_cols);
    let (mut a, mut b) = (
        Vec::with_capacity(rows * a_cols),
        Vec::with_capacity(rows * b_cols),
    );
    for row in x.chunks(a_cols + b_cols) {
        a.extend_from_slice(&row[..a_cols]);
        b.extend_from_slice(&row[a_cols..]);
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_side_by_side() {
        assert_eq!(
            concat_rows(&[1., 2., 3., 4.], 2, &[5., 6.], 1),
            [1., 2., 5., 3., 4., 6.]
        );
        assert_eq!(
            split_rows(&[1., 2., 5., 3., 4., 6.], 2, 1),
            (vec![1., 2., 3., 4.], vec![5., 6.])
        );
    }

    #[test]
    fn layouts_round_trip() {
        let w: Vec<f32> = (0..3 * 4 * 25).map(|i| i as f32).collect();
        assert_eq!(
            transposed_from_kernel(&transposed_to_kernel(&w, 3, 4, 25), 3, 4, 25),
            w
        );
        assert_eq!(conv_from_kernel(&conv_to_kernel(&w, 4, 3, 25), 4, 3, 25), w);
        // conv_to_kernel puts tap t, input channel i, output o at row t*cin + i.
        assert_eq!(
            conv_to_kernel(&w, 4, 3, 25)[(7 * 3 + 2) * 4 + 1],
            w[(3 + 2) * 25 + 7]
        );
    }

    #[test]
    fn tiled_swaps_match_the_definition_at_sizes_off_the_tile() {
        let [d0, d1, d2] = [11, 3, 13];
        let src: Vec<f32> = (0..d0 * d1 * d2).map(|i| i as f32).collect();
        let inner = swap_inner_axes(&src, [d0, d1, d2]);
        let outer = swap_outer_axes(&src, [d0, d1, d2]);
        for (a, b, c) in
            (0..d0).flat_map(|a| (0..d1).flat_map(move |b| (0..d2).map(move |c| (a, b, c))))
        {
            let value = src[(a * d1 + b) * d2 + c];
            assert_eq!(inner[(a * d2 + c) * d1 + b], value);
            assert_eq!(outer[(c * d1 + b) * d0 + a], value);
        }
    }
}
