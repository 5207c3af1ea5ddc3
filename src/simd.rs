//! The elementwise passes compiled once per x86-64 level, the best one this
//! CPU has chosen at run time (the `multiversion` crate).
//!
//! The build targets baseline x86-64 (SSE2), so it runs on any x86-64 CPU;
//! the products dispatch to their own AVX-512 / AVX2 kernels at run time.
//! The passes between them (batch norm, activations, im2col and gathers,
//! Adam, layouts) are plain loops that the compiler vectorises for the
//! target it is given: wrapped in [`multiversioned!`] each is also compiled
//! for AVX-512 and for AVX2 (closures inside inherit the features), which
//! measured +15% on the default recipe's training step on a Zen 4. The
//! loops' arithmetic is the same, operation for operation (Rust never fuses
//! a multiply and an add on its own), so every level gives the same bits.

/// Compiles each function inside for AVX-512, AVX2 (x86-64-v3) and the
/// baseline, and calls the best this CPU runs. The crate widens an AVX-512
/// target to Ice Lake's set (VBMI2, VNNI, GFNI, VAES and the rest; checked
/// at dispatch too), so Skylake-era AVX-512 CPUs, whose wide units slow
/// the clock, take the AVX2 clone; Zen 4 and 5 take the AVX-512 one.
macro_rules! multiversioned {
    ($($item:item)*) => {
        $(
            #[multiversion::multiversion(targets(
                "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
                "x86_64+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
            ))]
            $item
        )*
    };
}

pub(crate) use multiversioned;
