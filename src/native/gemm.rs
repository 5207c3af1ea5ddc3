//! Matrix products on row-major host buffers: fp32 through the `gemm`
//! crate, or bf16 operands with fp32 sums through [`super::bf16`] where the
//! calling thread has asked for them ([`with_precision`], as PyTorch's
//! autocast: the layers stay unaware of it).

use std::cell::Cell;

/// The arithmetic of the large products (both networks' convolutions and
/// G's first layer, forward and backward). Weights, optimizer state and
/// every other pass stay fp32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// fp32 operands and sums.
    #[default]
    Fp32,
    /// Operands rounded to bf16 (8 significant bits), sums in fp32: twice
    /// the arithmetic rate on CPUs with AVX512_BF16.
    Bf16,
    /// Each product shape in whichever of the two measured faster on this
    /// machine ([`super::choice`]); fp32 throughout without AVX512_BF16.
    Auto,
}

impl Precision {
    /// Whether this CPU can run it; for bf16 without AVX512_BF16, an error
    /// that names the flag.
    pub fn check(self) -> anyhow::Result<()> {
        if self == Precision::Bf16 && !bf16_supported() {
            anyhow::bail!(
                "--precision bf16 needs a CPU with AVX512_BF16 (AMD Zen 4 or later, Intel Cooper \
                 Lake / Sapphire Rapids or later); this one has none: use --precision fp32"
            );
        }
        Ok(())
    }
}

/// Whether the bf16 kernels run here.
pub(super) fn bf16_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::bf16::supported();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// For the bf16 tests, which the build marks ignored on a CPU without
/// AVX512_BF16 (build.rs): fails, saying why, when they run on one anyway
/// (built elsewhere, or run with `CDCGAN_NO_BF16`), never passing unrun.
#[cfg(test)]
pub(crate) fn expect_bf16() {
    assert!(
        bf16_supported(),
        "this bf16 test was built for a CPU with AVX512_BF16 and runs on one without \
         (or under CDCGAN_NO_BF16): rebuild the tests here"
    );
}

thread_local! {
    static PRECISION: Cell<Precision> = const { Cell::new(Precision::Fp32) };
}

/// The precision of this thread's products.
pub fn precision() -> Precision {
    PRECISION.get()
}

/// Runs `work` with this thread's products in `precision` (a product
/// started on this thread reads it; its own worker threads need not).
pub fn with_precision<R>(precision: Precision, work: impl FnOnce() -> R) -> R {
    let before = PRECISION.replace(precision);
    let out = work();
    PRECISION.set(before);
    out
}

/// Products with an inner or output dimension below this stay fp32 under
/// bf16: too small for the kernel's 32-column tiles to pay (D's first
/// convolution's 25 taps, G's last layer's 25 x 1 channel, the logits).
const BF16_MIN_SIDE: usize = 32;

/// A row-major matrix operand, possibly read transposed.
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a> {
    values: &'a [f32],
    /// Rows and columns as stored.
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a> Operand<'a> {
    /// `values` as a [rows, cols] matrix.
    pub fn new(values: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(values.len() >= rows * cols, "matrix smaller than its shape");
        Self {
            values,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The same matrix read as its transpose.
    pub fn t(self) -> Self {
        Self {
            transposed: !self.transposed,
            ..self
        }
    }

    /// (rows, cols) as read.
    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// (row stride, column stride) as read.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.cols as isize)
        } else {
            (self.cols as isize, 1)
        }
    }
}

/// Whether a product may use every compute thread, or must stay on the
/// calling one (when the caller already runs one product per thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Split the product over rayon's pool.
    All,
    /// Run it on the calling thread only.
    This,
}

/// `dst = lhs . rhs` (or `dst += lhs . rhs` with `accumulate`); `dst` is
/// row-major [m, n].
pub fn matmul(dst: &mut [f32], lhs: Operand, rhs: Operand, accumulate: bool, threads: Threads) {
    let (m, n) = (lhs.shape().0, rhs.shape().1);
    assert!(dst.len() >= m * n, "product output smaller than [{m}, {n}]");
    // SAFETY: `dst` holds at least m * n initialised values.
    unsafe { gemm_into(dst.as_mut_ptr(), lhs, rhs, accumulate, threads) }
}

/// `lhs . rhs` as a new row-major [m, n] buffer.
pub fn product(lhs: Operand, rhs: Operand, threads: Threads) -> Vec<f32> {
    let len = lhs.shape().0 * rhs.shape().1;
    let mut out = Vec::with_capacity(len);
    // SAFETY: without `accumulate` gemm never reads `dst` before writing it
    // (its microkernels store `beta * acc` when alpha is zero; its gemv and
    // k = 0 paths zero `dst` first), so every one of the `len` values is
    // written before `set_len`; no zeroing pass is needed.
    unsafe {
        gemm_into(out.as_mut_ptr(), lhs, rhs, false, threads);
        out.set_len(len);
    }
    out
}

/// Whether this product runs in bf16: asked for on this thread, large
/// enough, and (under `auto`) chosen for its shape.
fn in_bf16(m: usize, n: usize, k: usize, lhs: &Operand, rhs: &Operand, threads: Threads) -> bool {
    if k.min(n) < BF16_MIN_SIDE || !bf16_supported() {
        return false;
    }
    match PRECISION.get() {
        Precision::Fp32 => false,
        Precision::Bf16 => true,
        Precision::Auto => super::choice::bf16_chosen(super::choice::Shape {
            m,
            n,
            k,
            lhs_t: lhs.transposed,
            rhs_t: rhs.transposed,
            parallel: threads == Threads::All,
        }),
    }
}

/// `dst = lhs . rhs` (or `+=`) through the `gemm` crate.
///
/// # Safety
/// `dst` must be valid for writes of m * n values, and hold initialised
/// values if `accumulate`.
unsafe fn gemm_into(dst: *mut f32, lhs: Operand, rhs: Operand, accumulate: bool, threads: Threads) {
    let (m, k) = lhs.shape();
    let (k2, n) = rhs.shape();
    assert_eq!(k, k2, "inner dimensions of a product");
    if m == 0 || n == 0 {
        return;
    }
    let (lhs_rs, lhs_cs) = lhs.strides();
    let (rhs_rs, rhs_cs) = rhs.strides();
    #[cfg(target_arch = "x86_64")]
    if in_bf16(m, n, k, &lhs, &rhs, threads) {
        let view = |o: &Operand, (rs, cs): (isize, isize)| super::bf16::View {
            ptr: o.values.as_ptr(),
            row_stride: rs as usize,
            col_stride: cs as usize,
        };
        let parallel = threads == Threads::All && rayon::current_num_threads() > 1;
        // SAFETY: as for gemm below; bf16 support was checked.
        unsafe {
            super::bf16::gemm_bf16(
                dst,
                (m, n, k),
                view(&lhs, (lhs_rs, lhs_cs)),
                view(&rhs, (rhs_rs, rhs_cs)),
                accumulate,
                parallel,
            )
        };
        return;
    }
    let parallelism = match threads {
        Threads::All if rayon::current_num_threads() > 1 => gemm::Parallelism::Rayon(0),
        _ => gemm::Parallelism::None,
    };
    // SAFETY: the operands' strides describe matrices inside their slices
    // (checked by `Operand::new`); `dst` is valid for m * n values (the
    // caller's promise) and distinct from them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            lhs.values.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.values.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_with_transposes_and_accumulation() {
        // a = [[1, 2, 3], [4, 5, 6]], b = [[1, 0], [0, 1], [1, 1]].
        let a = [1., 2., 3., 4., 5., 6.];
        let b = [1., 0., 0., 1., 1., 1.];
        let mut c = [0f32; 4];
        matmul(
            &mut c,
            Operand::new(&a, 2, 3),
            Operand::new(&b, 3, 2),
            false,
            Threads::All,
        );
        assert_eq!(c, [4., 5., 10., 11.]);
        // a^T . a = [[17, 22, 27], [22, 29, 36], [27, 36, 45]].
        let mut d = [0f32; 9];
        let a_ = Operand::new(&a, 2, 3);
        matmul(&mut d, a_.t(), a_, false, Threads::This);
        assert_eq!(d, [17., 22., 27., 22., 29., 36., 27., 36., 45.]);
        // c += a . (b^T)^T
        let bt = [1., 0., 1., 0., 1., 1.];
        matmul(&mut c, a_, Operand::new(&bt, 2, 3).t(), true, Threads::All);
        assert_eq!(c, [8., 10., 20., 22.]);
        // A fresh product, large enough to span several depth blocks and threads.
        let (m, k, n) = (67, 700, 45);
        let x: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let y: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
        let p = product(Operand::new(&x, m, k), Operand::new(&y, k, n), Threads::All);
        let mut q = vec![0f32; m * n];
        matmul(
            &mut q,
            Operand::new(&x, m, k),
            Operand::new(&y, k, n),
            false,
            Threads::This,
        );
        assert_eq!(p, q);
        assert_eq!(
            p[3 * n + 4],
            (0..k).map(|j| x[3 * k + j] * y[j * n + 4]).sum::<f32>()
        );
    }
}
