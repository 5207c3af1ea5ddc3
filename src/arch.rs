//! The fixed numbers of the architecture, declared once: the image
//! geometry (the seed's 28x28 grey, and the shapes the networks are built
//! for), the stride-2 convolutions' kernel, the LeakyReLU slope and the
//! batch-norm settings. `data`, `model` (burn's modules) and `native` (our
//! own kernels) read them.

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

/// The image sides the networks are built for.
pub const IMAGE_SIDES: [usize; 3] = [28, 32, 64];

/// The images a network makes or judges: channels (1 grey, 3 colour) and side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    /// Channels per pixel.
    pub channels: usize,
    /// Side in pixels (the images are square).
    pub side: usize,
}

impl ImageShape {
    /// MNIST's and Fashion-MNIST's: 28x28 grey (the seed's).
    pub const MNIST: Self = Self {
        channels: 1,
        side: IMAGE_SIDE,
    };

    /// The shape, checked: a side of [`IMAGE_SIDES`], 1 or 3 channels.
    pub fn new(channels: usize, side: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            IMAGE_SIDES.contains(&side),
            "image size {side}: the networks are built for {IMAGE_SIDES:?} pixels"
        );
        anyhow::ensure!(
            channels == 1 || channels == 3,
            "{channels} image channels: 1 (grey) or 3 (colour)"
        );
        Ok(Self { channels, side })
    }

    /// Pixels of one channel.
    pub fn pixels(&self) -> usize {
        self.side * self.side
    }

    /// Values of one image.
    pub fn len(&self) -> usize {
        self.channels * self.pixels()
    }

    /// Whether an image has no values (never, for a checked shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The side of the smallest feature map (G's first, D's last) and the
    /// number of stride-2 layers between it and the image: 28 -> (7, 2),
    /// 32 -> (4, 3), 64 -> (4, 4).
    pub fn ladder(&self) -> (usize, usize) {
        let mut side = self.side;
        let mut steps = 0;
        while side.is_multiple_of(2) && side > 7 {
            side /= 2;
            steps += 1;
        }
        (side, steps)
    }
}
