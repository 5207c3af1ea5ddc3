//! The fixed numbers of the seed architecture, declared once: the image
//! geometry, the stride-2 convolutions' kernel, the LeakyReLU slope and the
//! batch-norm settings. `model` (burn's modules) and
//! `native` (our own kernels) both read them.

/// Side of an image, in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Pixels of one image channel.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Side of the middle feature maps (G's second, D's first).
pub const MID_SIDE: usize = IMAGE_SIDE / 2;
/// Side of the smallest feature maps (G's first, D's last).
pub const FIRST_SIDE: usize = IMAGE_SIDE / 4;

/// Kernel size of the stride-2 (transposed) convolutions.
pub const KERNEL: usize = 5;
/// Kernel taps of the stride-2 (transposed) convolutions (5 x 5).
pub const TAPS: usize = KERNEL * KERNEL;
/// Padding of the stride-2 (transposed) convolutions (transposed ones also
/// pad their output by 1, so each doubles the side).
pub const PADDING: usize = 2;

/// Slope of LeakyReLU for negative inputs, in both networks.
pub const LEAKY_SLOPE: f64 = 0.2;

/// Batch-norm epsilon (burn's default, which the seed's PyTorch shares).
pub const BN_EPS: f64 = 1e-5;
/// Batch-norm momentum of the running statistics (burn's default).
pub const BN_MOMENTUM: f64 = 0.1;

/// The most classes a data set or model may have: labels are bytes (as in
/// IDX label files), so a 257th class would wrap to the first.
pub const MAX_CLASSES: usize = 256;
