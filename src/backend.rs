//! The one place that decides where tensors live.
//!
//! cdcgan runs on burn's Flex CPU backend (multi-threaded through rayon,
//! SIMD kernels, AVX-512 `gemm` kernels picked at run time). Every other
//! module asks this one for a device, so a GPU backend is a change here only.

use std::sync::OnceLock;

use burn::tensor::Device;

/// Where tensors run: the CPU (burn Flex, the default), or a GPU through
/// burn's CUDA or wgpu backends when built with the `cuda` / `wgpu` feature.
/// The GPU paths compile (`cargo check --features cuda`) but are untested:
/// the development machines have no GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU, through burn's Flex backend.
    #[default]
    Cpu,
    /// An NVIDIA GPU through burn's CUDA backend (needs the `cuda` feature).
    Cuda,
    /// A GPU through burn's wgpu backend (needs the `wgpu` feature).
    Wgpu,
}

static CHOICE: OnceLock<DeviceChoice> = OnceLock::new();

/// Selects the device for this process (once, before any tensor work).
pub fn select_device(choice: DeviceChoice) -> anyhow::Result<()> {
    let (built, feature) = match choice {
        DeviceChoice::Cpu => (true, ""),
        DeviceChoice::Cuda => (cfg!(feature = "cuda"), "cuda"),
        DeviceChoice::Wgpu => (cfg!(feature = "wgpu"), "wgpu"),
    };
    anyhow::ensure!(
        built,
        "--device {feature}: this binary was built without it; rebuild with `cargo build --release --features {feature}`"
    );
    let current = *CHOICE.get_or_init(|| choice);
    anyhow::ensure!(
        current == choice,
        "the device is already set to {current:?}"
    );
    Ok(())
}

/// The device for inference (generation, evaluation): no autodiff graph.
pub fn inference_device() -> Device {
    match CHOICE.get().copied().unwrap_or_default() {
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda => Device::cuda(0usize),
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        _ => Device::flex(),
    }
}

/// Whether tensors run on the CPU (burn Flex), where sampling runs the
/// native generator (`native::NativeGenerator`).
pub fn on_cpu() -> bool {
    CHOICE.get().copied().unwrap_or_default() == DeviceChoice::Cpu
}

/// The device for training: the inference device with autodiff enabled.
pub fn training_device() -> Device {
    inference_device().autodiff()
}

/// Sets the number of compute threads (rayon's global pool). Call once,
/// before any tensor work; `None` keeps rayon's default (one per core).
pub fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(n) = threads {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let most = 4 * cores;
        anyhow::ensure!(
            (1..=most).contains(&n),
            "--threads must be in 1..={most} (4x the {cores} cores here; more only adds spinning threads) (got {n})"
        );
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot set --threads {n}: {e}"))?;
    }
    Ok(())
}

/// How many compute threads tensor work uses.
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Keeps freed tensor buffers in the process instead of handing them back to
/// the kernel after every operation.
///
/// A training step allocates and frees many multi-megabyte buffers. With
/// glibc's defaults, freed memory at the top of the heap is trimmed and
/// re-faulted (zeroed) on the next step, and mid-size buffers are fresh
/// mmaps each time. Raising the trim threshold and the top pad, and the mmap
/// threshold to its maximum, removes most of those page faults: about 10%
/// more training throughput in `cdcgan bench`. (mimalloc did not help here.)
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

/// A field of this CPU's entry in /proc/cpuinfo (`vendor_id`, `cpu family`,
/// `model\t`, `model name`, ...), `?` where there is none.
pub fn cpu_field(name: &str) -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_once(':'))
        .map_or("?", |(_, v)| v.trim())
        .to_string()
}

/// This CPU as one line that tells two kinds apart: vendor, family, model, stepping.
pub fn cpu_signature() -> String {
    format!(
        "{} family {} model {} stepping {}",
        cpu_field("vendor_id"),
        cpu_field("cpu family"),
        cpu_field("model\t"),
        cpu_field("stepping")
    )
}
