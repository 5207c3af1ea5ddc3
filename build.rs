//! Tells the tests whether the CPU they are built on (CI builds and runs them
//! on one machine) has AVX512_BF16: `cfg(cdcgan_no_bf16)` where it has none,
//! so the bf16 tests are reported as ignored there instead of passing
//! without running. `CDCGAN_NO_BF16` set at build time counts as none.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cdcgan_no_bf16)");
    println!("cargo::rerun-if-env-changed=CDCGAN_NO_BF16");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CDCGAN_NO_BF16").is_some() || !host_has_bf16() {
        println!("cargo::rustc-cfg=cdcgan_no_bf16");
    }
}

#[cfg(target_arch = "x86_64")]
fn host_has_bf16() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bf16")
}

#[cfg(not(target_arch = "x86_64"))]
fn host_has_bf16() -> bool {
    false
}
