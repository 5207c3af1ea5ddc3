//! Matrix products with bf16 operands and fp32 accumulation, on the
//! AVX512_BF16 dot-product instruction (`vdpbf16ps`: 32 multiply-adds of
//! bf16 pairs into 16 fp32 sums, twice the fp32 FMA's arithmetic per
//! instruction on Zen 4 and Zen 5).
//!
//! Each operand value is rounded to bf16 (round to nearest even) as it is
//! packed; the products of two bf16 values are exact in fp32 and are summed
//! in fp32, so the result is the fp32 product of the rounded operands up to
//! the order of the sums. [`round`] is the same rounding for a reference.
//!
//! Layout, BLIS-style: the depth is cut into blocks of 256; the right
//! operand is packed once, block by block, into panels of 32 columns (for
//! each pair of depth indices, the panel's 32 columns as bf16 pairs); each
//! task packs its 96 rows of a block into tiles of 12 rows the same way; the
//! micro-kernel keeps a 12 x 32 tile of sums in 24 registers.

use std::arch::x86_64::*;
use std::mem::transmute;

use rayon::prelude::*;

/// Rows of a micro-tile.
const MR: usize = 12;
/// Columns of a micro-tile: two 16-lane registers.
const NR: usize = 32;
/// Depth of a block (values; half as many bf16 pairs).
const KC: usize = 256;
/// Rows a task packs and multiplies (a multiple of [`MR`]).
const MC: usize = 96;
/// Tasks wanted per compute thread, for balance.
const TASKS_PER_THREAD: usize = 4;

/// Whether this CPU runs the bf16 kernels (AVX-512 with AVX512_BF16).
/// `CDCGAN_NO_BF16` set in the environment makes it say no, to see (and
/// test) what a CPU without them does.
pub fn supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        std::env::var_os("CDCGAN_NO_BF16").is_none()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    })
}

/// `x` rounded to the nearest bf16 (ties to even), as an f32.
pub fn round(x: f32) -> f32 {
    f32::from_bits(u32::from(to_bf16(x)) << 16)
}

/// The bf16 bits of `x`, rounded to nearest even (NaN stays NaN).
fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// A matrix as read: element (i, j) at `ptr + i * row_stride + j * col_stride`.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// The first element.
    pub ptr: *const f32,
    /// Distance between rows, in values.
    pub row_stride: usize,
    /// Distance between columns, in values.
    pub col_stride: usize,
}

impl View {
    /// The view starting at (row, col).
    ///
    /// # Safety
    /// (row, col) must lie inside the matrix.
    unsafe fn offset(self, row: usize, col: usize) -> Self {
        let at = row * self.row_stride + col * self.col_stride;
        Self {
            ptr: unsafe { self.ptr.add(at) },
            ..self
        }
    }

    /// The same values read as the transpose.
    fn transposed(self) -> Self {
        Self {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

// SAFETY: a view is only read, by tasks that the call that made it outlives.
unsafe impl Send for View {}
unsafe impl Sync for View {}

/// The destination's first value, shared by the tasks that write disjoint
/// tiles of it.
#[derive(Clone, Copy)]
struct Dst(*mut f32);
// SAFETY: tasks write disjoint tiles; the call outlives them.
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

/// `dst = lhs . rhs` (or `dst += lhs . rhs` with `accumulate`): `lhs` is
/// [m, k], `rhs` [k, n], `dst` row-major [m, n].
///
/// # Safety
/// [`supported`] must hold; the views must describe matrices of valid
/// values; `dst` must be valid for m * n writes (and hold initialised
/// values if `accumulate`) and not overlap the operands.
pub unsafe fn gemm_bf16(
    dst: *mut f32,
    (m, n, k): (usize, usize, usize),
    lhs: View,
    rhs: View,
    accumulate: bool,
    parallel: bool,
) {
    if k == 0 {
        if !accumulate {
            // SAFETY: the caller's promise: dst holds m * n values.
            unsafe { std::ptr::write_bytes(dst, 0, m * n) };
        }
        return;
    }
    let panels = n.div_ceil(NR);
    let row_blocks = m.div_ceil(MC);
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    // Column groups, so that small m still makes enough tasks.
    let groups = (threads * TASKS_PER_THREAD)
        .div_ceil(row_blocks)
        .clamp(1, panels.max(1));
    let panels_per_group = panels.div_ceil(groups);
    let shape = Shape { n, k, panels };
    let packed_rhs = unsafe { pack_rhs(rhs, &shape, threads, parallel) };
    let dst = Dst(dst);
    let task = |t: usize| {
        let (block, group) = (t / groups, t % groups);
        let first_panel = group * panels_per_group;
        let work = Block {
            rows: block * MC..m.min((block + 1) * MC),
            panels: first_panel..panels.min(first_panel + panels_per_group),
            accumulate,
        };
        unsafe { multiply_block(&work, &shape, lhs, &packed_rhs, dst) };
    };
    let tasks = row_blocks * groups;
    if parallel && tasks > 1 {
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// The whole right operand packed once, depth block after depth block, each
/// block's panels in `threads` groups (one task each).
///
/// # Safety
/// As [`gemm_bf16`]'s for `rhs`.
unsafe fn pack_rhs(rhs: View, shape: &Shape, threads: usize, parallel: bool) -> Vec<u32> {
    let (n, k, panels) = (shape.n, shape.k, shape.panels);
    let mut packed = vec![0u32; shape.packed_rhs_len()];
    let groups = threads.min(panels).max(1);
    let panels_per_group = panels.div_ceil(groups);
    let pack_group = |(t, out): (usize, &mut [u32])| {
        let (k0, g) = (t / groups * KC, t % groups);
        let first = g * panels_per_group;
        if first >= panels {
            return;
        }
        let cols = n.min((first + panels_per_group) * NR) - first * NR;
        // Depth runs down rhs, so its columns are the lines packed.
        let view = unsafe { rhs.offset(k0, first * NR) }.transposed();
        unsafe { pack(view, cols, KC.min(k - k0), NR, out) };
    };
    let chunks = shape.rhs_pack_chunks(&mut packed, groups, panels_per_group);
    if parallel && chunks.len() > 1 {
        chunks.into_par_iter().enumerate().for_each(pack_group);
    } else {
        chunks.into_iter().enumerate().for_each(pack_group);
    }
    packed
}

/// A product's sizes, and where each depth block's panels sit in the packed
/// right operand.
struct Shape {
    n: usize,
    k: usize,
    panels: usize,
}

impl Shape {
    /// (first depth, depth) of each block.
    fn depth_blocks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.k).step_by(KC).map(|k0| (k0, KC.min(self.k - k0)))
    }

    /// Offset of depth block `k0`'s panels (full blocks before it).
    fn rhs_block_at(&self, k0: usize) -> usize {
        k0 / 2 * self.panels * NR
    }

    fn packed_rhs_len(&self) -> usize {
        self.k.div_ceil(2) * self.panels * NR
    }

    /// The packed right operand cut into each depth block's pack groups.
    fn rhs_pack_chunks<'a>(
        &self,
        packed: &'a mut [u32],
        groups: usize,
        panels_per_group: usize,
    ) -> Vec<&'a mut [u32]> {
        let mut chunks = Vec::new();
        let mut rest = packed;
        for (_, kc) in self.depth_blocks() {
            let pairs = kc.div_ceil(2);
            for g in 0..groups {
                let panels =
                    panels_per_group.min(self.panels - (g * panels_per_group).min(self.panels));
                let (chunk, tail) = rest.split_at_mut(panels * pairs * NR);
                chunks.push(chunk);
                rest = tail;
            }
        }
        chunks
    }
}

/// One task: rows × panels of the destination, over the whole depth.
struct Block {
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
    accumulate: bool,
}

/// For each depth block: packs the task's rows of `lhs` into tiles and runs
/// the micro-kernel over each (tile, panel).
unsafe fn multiply_block(work: &Block, shape: &Shape, lhs: View, packed_rhs: &[u32], dst: Dst) {
    let mut packed_lhs = Vec::new();
    for (k0, kc) in shape.depth_blocks() {
        let pairs = kc.div_ceil(2);
        packed_lhs.clear();
        packed_lhs.resize(work.rows.len().div_ceil(MR) * pairs * MR, 0);
        let block = unsafe { lhs.offset(work.rows.start, k0) };
        unsafe { pack(block, work.rows.len(), kc, MR, &mut packed_lhs) };
        let rhs_block = &packed_rhs[shape.rhs_block_at(k0)..];
        for j in work.panels.clone() {
            let panel = &rhs_block[j * pairs * NR..(j + 1) * pairs * NR];
            for (i, tile) in packed_lhs.chunks(pairs * MR).enumerate() {
                let row0 = work.rows.start + i * MR;
                let out = Tile {
                    c: unsafe { dst.0.add(row0 * shape.n + j * NR) },
                    ldc: shape.n,
                    rows: MR.min(work.rows.end - row0),
                    cols: NR.min(shape.n - j * NR),
                    add: work.accumulate || k0 > 0,
                };
                unsafe { micro_kernel(pairs, tile, panel, &out) };
            }
        }
    }
}

/// Packs `lines` lines of `src` (line l, depth d at `ptr + l * row_stride +
/// d * col_stride`) over depth `depth` into `out`: tiles of `width` lines,
/// each [pairs][width] bf16 pairs (the even depth in the low half), zeros
/// past the lines and the depth.
unsafe fn pack(src: View, lines: usize, depth: usize, width: usize, out: &mut [u32]) {
    let pairs = depth.div_ceil(2);
    let tiles = lines.div_ceil(width);
    debug_assert!(out.len() >= tiles * pairs * width);
    // Where line l's pair p goes.
    let place = |l: usize, p: usize| (l / width) * pairs * width + p * width + l % width;
    if src.col_stride == 1 {
        // Each line's depth is contiguous: its pairs sit side by side. Four
        // lines at a time are transposed in registers (the tile widths are
        // multiples of four); the rest go one pair at a time.
        let line_at = |l: usize| unsafe {
            std::slice::from_raw_parts(src.ptr.add(l * src.row_stride), depth)
        };
        let quads = if width.is_multiple_of(4) {
            lines / 4
        } else {
            0
        };
        for q in 0..quads {
            let l0 = 4 * q;
            if l0 + 4 + PREFETCH_LINES <= lines {
                for l in l0 + PREFETCH_LINES..l0 + 4 + PREFETCH_LINES {
                    unsafe { prefetch(src.ptr.add(l * src.row_stride), depth) };
                }
            }
            let four = [
                line_at(l0),
                line_at(l0 + 1),
                line_at(l0 + 2),
                line_at(l0 + 3),
            ];
            let at = place(l0, 0);
            let done = unsafe { transpose_four(four, &mut out[at..], width) };
            for (l, line) in four.iter().enumerate() {
                for p in done..pairs {
                    out[place(l0 + l, p)] = pair_at(line, p);
                }
            }
        }
        for l in 4 * quads..lines {
            let line = line_at(l);
            for p in 0..pairs {
                out[place(l, p)] = pair_at(line, p);
            }
        }
    } else if src.row_stride == 1 {
        // Each depth index's lines are contiguous: interleave two of them.
        let mut pair_lines = vec![0u32; lines];
        for p in 0..pairs {
            let line_at = |d: usize| unsafe {
                std::slice::from_raw_parts(src.ptr.add(d * src.col_stride), lines)
            };
            let odd = (2 * p + 1 < depth).then(|| line_at(2 * p + 1));
            unsafe { interleave(line_at(2 * p), odd, &mut pair_lines) };
            for (t, chunk) in pair_lines.chunks(width).enumerate() {
                let at = place(t * width, p);
                out[at..at + chunk.len()].copy_from_slice(chunk);
            }
        }
    } else {
        for p in 0..pairs {
            for l in 0..lines {
                let at =
                    |d: usize| unsafe { *src.ptr.add(l * src.row_stride + d * src.col_stride) };
                let odd = if 2 * p + 1 < depth {
                    to_bf16(at(2 * p + 1))
                } else {
                    0
                };
                out[place(l, p)] = u32::from(to_bf16(at(2 * p))) | u32::from(odd) << 16;
            }
        }
    }
}

/// Lines ahead that [`pack`] asks the cache for (each line is too short for
/// the hardware's stream prefetcher to catch on).
const PREFETCH_LINES: usize = 4;

/// Asks for the cache lines of `len` values from `at`.
unsafe fn prefetch(at: *const f32, len: usize) {
    for offset in (0..len).step_by(16) {
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.add(offset).cast()) };
    }
}

/// The bf16 pair (`line[2p]`, `line[2p + 1]`), zero past the end.
fn pair_at(line: &[f32], p: usize) -> u32 {
    let odd = line.get(2 * p + 1).map_or(0, |&v| to_bf16(v));
    u32::from(to_bf16(line[2 * p])) | u32::from(odd) << 16
}

/// Four lines' pairs, 16 at a time, into `out` laid out [pairs][width]
/// (the four lines side by side in each pair's row): each line's 32 values
/// become 16 pairs in one register, and the four registers are transposed
/// in 4 x 4 blocks. Returns how many pairs it wrote (whole 16s only).
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn transpose_four(lines: [&[f32]; 4], out: &mut [u32], width: usize) -> usize {
    let chunks = lines[0].len() / 32;
    for c in 0..chunks {
        let pairs = lines.map(|line| {
            let at = line[32 * c..].as_ptr();
            let (lo, hi) = unsafe { (_mm512_loadu_ps(at), _mm512_loadu_ps(at.add(16))) };
            // The second argument fills the low half: values 0..16, then 16..32.
            unsafe { transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo)) }
        });
        // In each 128-bit lane q: t0 = (a0 b0 a1 b1), t1 = (a2 b2 a3 b3), ...
        let t0 = _mm512_unpacklo_epi32(pairs[0], pairs[1]);
        let t1 = _mm512_unpackhi_epi32(pairs[0], pairs[1]);
        let t2 = _mm512_unpacklo_epi32(pairs[2], pairs[3]);
        let t3 = _mm512_unpackhi_epi32(pairs[2], pairs[3]);
        // u[j] lane q = the four lines' pair 4q + j.
        let u = [
            _mm512_unpacklo_epi64(t0, t2),
            _mm512_unpackhi_epi64(t0, t2),
            _mm512_unpacklo_epi64(t1, t3),
            _mm512_unpackhi_epi64(t1, t3),
        ];
        let lanes = |v: __m512i| {
            [
                _mm512_extracti32x4_epi32::<0>(v),
                _mm512_extracti32x4_epi32::<1>(v),
                _mm512_extracti32x4_epi32::<2>(v),
                _mm512_extracti32x4_epi32::<3>(v),
            ]
        };
        for (j, v) in u.into_iter().enumerate() {
            for (q, lane) in lanes(v).into_iter().enumerate() {
                let p = 16 * c + 4 * q + j;
                let dst = &mut out[p * width..p * width + 4];
                unsafe { _mm_storeu_si128(dst.as_mut_ptr().cast(), lane) };
            }
        }
    }
    16 * chunks
}

/// `out[l]` = the bf16 pair (`even[l]`, `odd[l]`), the odd half zero
/// without `odd`.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn interleave(even: &[f32], odd: Option<&[f32]>, out: &mut [u32]) {
    let full = even.len() / 16 * 16;
    for l in (0..full).step_by(16) {
        let e = unsafe { _mm512_loadu_ps(even.as_ptr().add(l)) };
        let low: __m256i = unsafe { transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(e)) };
        let mut pair = _mm512_cvtepu16_epi32(low);
        if let Some(odd) = odd {
            let o = unsafe { _mm512_loadu_ps(odd.as_ptr().add(l)) };
            let high: __m256i = unsafe { transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(o)) };
            pair = _mm512_or_si512(pair, _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(high)));
        }
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(l).cast(), pair) };
    }
    for l in full..even.len() {
        let high = odd.map_or(0, |odd| to_bf16(odd[l]));
        out[l] = u32::from(to_bf16(even[l])) | u32::from(high) << 16;
    }
}

/// Where a micro-tile's sums go.
struct Tile {
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    add: bool,
}

/// `MR x NR` sums over `pairs` depth pairs of a packed tile and panel,
/// stored (or added) into the valid `rows x cols` of the destination.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn micro_kernel(pairs: usize, tile: &[u32], panel: &[u32], out: &Tile) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (a, b) = (tile.as_ptr(), panel.as_ptr());
    for p in 0..pairs {
        let b0: __m512bh =
            unsafe { transmute::<__m512i, __m512bh>(_mm512_loadu_si512(b.add(p * NR).cast())) };
        let b1: __m512bh = unsafe {
            transmute::<__m512i, __m512bh>(_mm512_loadu_si512(b.add(p * NR + 16).cast()))
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            let pair = unsafe { *a.add(p * MR + r) } as i32;
            let av: __m512bh = unsafe { transmute::<__m512i, __m512bh>(_mm512_set1_epi32(pair)) };
            acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
            acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
        }
    }
    let mask = |from: usize| -> __mmask16 {
        let lanes = out.cols.saturating_sub(from).min(16);
        ((1u32 << lanes) - 1) as __mmask16
    };
    let masks = [mask(0), mask(16)];
    for (r, acc) in acc.iter().enumerate().take(out.rows) {
        let row = unsafe { out.c.add(r * out.ldc) };
        for (h, (&sum, &m)) in acc.iter().zip(&masks).enumerate() {
            let at = unsafe { row.add(16 * h) };
            let value = if out.add {
                _mm512_add_ps(sum, unsafe { _mm512_maskz_loadu_ps(m, at) })
            } else {
                sum
            };
            unsafe { _mm512_mask_storeu_ps(at, m, value) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(round(1.0), 1.0);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to the even 1.
        assert_eq!(round(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(round(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert_eq!(round(-2.5), -2.5);
        assert!(round(f32::NAN).is_nan());
    }

    /// `a` [m, k] and `b` [k, n] in every layout the products read (each
    /// stored plain and transposed, and `a` with a gap between values),
    /// serial and parallel, added onto ones: each result within 1e-5 (of the
    /// largest) of the f64 product of the bf16-rounded operands.
    fn check(m: usize, n: usize, k: usize) {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.3)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 5.1)
            .collect();
        let mut want = vec![1f64; m * n];
        for i in 0..m {
            for d in 0..k {
                let x = f64::from(round(a[i * k + d]));
                for j in 0..n {
                    want[i * n + j] += x * f64::from(round(b[d * n + j]));
                }
            }
        }
        let scale = want.iter().fold(0f64, |x, v| x.max(v.abs()));
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let gapped: Vec<f32> = a.iter().flat_map(|&v| [v, 0.0]).collect();
        let view = |values: &[f32], row_stride, col_stride| View {
            ptr: values.as_ptr(),
            row_stride,
            col_stride,
        };
        let lhs = [view(&a, k, 1), view(&at, 1, m), view(&gapped, 2 * k, 2)];
        let rhs = [view(&b, n, 1), view(&bt, 1, k)];
        for (l, r) in lhs.iter().flat_map(|l| rhs.iter().map(move |r| (*l, *r))) {
            for parallel in [false, true] {
                let mut c = vec![1f32; m * n];
                unsafe { gemm_bf16(c.as_mut_ptr(), (m, n, k), l, r, true, parallel) };
                for (got, want) in c.iter().zip(&want) {
                    let err = (f64::from(*got) - want).abs();
                    assert!(
                        err <= 1e-5 * scale,
                        "[{m}, {k}] x [{k}, {n}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    #[cfg_attr(cdcgan_no_bf16, ignore = "this CPU has no AVX512_BF16")]
    fn products_match_the_rounded_operands_product_in_every_layout() {
        crate::native::gemm::expect_bf16();
        // Sizes on and off every tile (12 rows), panel (32 columns) and block
        // (96 rows, 256 depth) edge; odd depths; three depth blocks.
        for (m, n, k) in [
            (1, 32, 32),
            (13, 33, 343),
            (97, 800, 64),
            (37, 45, 2 * KC + 5),
        ] {
            check(m, n, k);
        }
        // With no depth the product is zero, written without reading dst.
        let mut c = vec![f32::NAN; 4];
        let empty = View {
            ptr: [].as_ptr(),
            row_stride: 0,
            col_stride: 1,
        };
        unsafe { gemm_bf16(c.as_mut_ptr(), (2, 2, 0), empty, empty, false, true) };
        assert_eq!(c, [0.0; 4]);
    }
}
