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

/// Compiles each function inside for AVX-512 (x86-64-v4), AVX2 (v3) and the
/// baseline, and calls the best this CPU runs.
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
