//! Weight layouts: PyTorch keeps a transposed convolution's weight as
//! [in, out, k, k] and a convolution's as [out, in, k, k]; the channels-last
//! products want [in, taps * out] and [taps * in, out]. And the rows of two
//! matrices side by side (z and the condition, G's input).

use crate::simd::multiversioned;

multiversioned! {
/// `src` read as a [d0, d1, d2] array, its axes reordered: axis k of the
/// result is axis `order[k]` of `src`. The result is written in order, each
/// value read from its strided place in `src`.
fn permute(src: &[f32], dims: [usize; 3], order: [usize; 3]) -> Vec<f32> {
    assert_eq!(src.len(), dims.iter().product::<usize>(), "tensor size");
    let src_strides = [dims[1] * dims[2], dims[2], 1];
    let [n0, n1, n2] = order.map(|k| dims[k]);
    let [s0, s1, s2] = order.map(|k| src_strides[k]);
    let mut out = Vec::with_capacity(src.len());
    for a in 0..n0 {
        for b in 0..n1 {
            let base = a * s0 + b * s1;
            out.extend((0..n2).map(|c| src[base + c * s2]));
        }
    }
    out
}
}

/// A [cin, cout, k, k] transposed-convolution weight as [cin, k*k*cout].
pub fn transposed_to_kernel(w: &[f32], cin: usize, cout: usize, taps: usize) -> Vec<f32> {
    permute(w, [cin, cout, taps], [0, 2, 1])
}

/// The inverse of [`transposed_to_kernel`].
pub fn transposed_from_kernel(h: &[f32], cin: usize, cout: usize, taps: usize) -> Vec<f32> {
    permute(h, [cin, taps, cout], [0, 2, 1])
}

/// A [cout, cin, k, k] convolution weight as [k*k*cin, cout] (the layout
/// [`super::conv::im2col`] rows multiply).
pub fn conv_to_kernel(w: &[f32], cout: usize, cin: usize, taps: usize) -> Vec<f32> {
    permute(w, [cout, cin, taps], [2, 1, 0])
}

/// The inverse of [`conv_to_kernel`].
pub fn conv_from_kernel(h: &[f32], cout: usize, cin: usize, taps: usize) -> Vec<f32> {
    permute(h, [taps, cin, cout], [2, 1, 0])
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
}
