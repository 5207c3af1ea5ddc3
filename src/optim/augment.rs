//! Differentiable augmentation of every image D sees (DiffAugment, Zhao et
//! al. 2020): the real and the generated images of D's step and the
//! generated ones of G's step each get their own random colour change,
//! translation and cutout, and G learns through them. D then cannot
//! memorise a small training set, and since G is judged only through the
//! same random changes, they do not leak into its images.
//!
//! Each change is linear in the image for its draw, so its backward is the
//! transposed map: the native step writes it by hand
//! (`native::augment`), burn's step differentiates [`augment`] here.

use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::rng::{Purpose, stream};

/// Which changes D's inputs get (`--augment`): none by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Augment {
    /// Brightness, saturation and contrast, each by a random factor.
    pub color: bool,
    /// A shift by up to an eighth of the side each way, zeros filling in.
    pub translation: bool,
    /// A square of half the side set to zero, at a random place.
    pub cutout: bool,
    /// A left-right mirror, half the time (not for data whose classes
    /// differ by their handedness).
    pub flip: bool,
}

/// The chance each change is made to an image (`--augment-p`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentP {
    /// This chance throughout, in (0, 1].
    Fixed(f32),
    /// ADA's: from 0, raised while D is too sure of the real images and
    /// lowered otherwise ([`super::balance`]).
    Adaptive,
}

impl Default for AugmentP {
    /// Every change on every image, as DiffAugment makes them.
    fn default() -> Self {
        AugmentP::Fixed(1.0)
    }
}

impl AugmentP {
    /// `adaptive`, or a number in (0, 1].
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim() == "adaptive" {
            return Ok(AugmentP::Adaptive);
        }
        match text.trim().parse::<f32>() {
            Ok(p) if p > 0.0 && p <= 1.0 => Ok(AugmentP::Fixed(p)),
            _ => Err(format!(
                "{text:?} is no chance: give a number in (0, 1], e.g. 0.5, or `adaptive`"
            )),
        }
    }

    /// Whether it is the default (config.json leaves the field out then).
    pub fn is_default(&self) -> bool {
        *self == AugmentP::default()
    }

    /// The chance as `--augment-p` takes it.
    pub fn name(&self) -> String {
        match self {
            AugmentP::Fixed(p) => p.to_string(),
            AugmentP::Adaptive => "adaptive".into(),
        }
    }
}

/// One image's random changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// Added to every value, in [-0.5, 0.5).
    pub brightness: f32,
    /// The distance from the pixel's channel mean is scaled by this, in [0, 2).
    pub saturation: f32,
    /// The distance from the image's mean is scaled by this, in [0.5, 1.5).
    pub contrast: f32,
    /// Output pixel (y, x) takes input pixel (y - dy, x - dx), zero outside.
    pub shift: (isize, isize),
    /// The rows and columns (start, end) of the square set to zero.
    pub cut: Option<((usize, usize), (usize, usize))>,
    /// Mirror left-right (before the shift).
    pub flip: bool,
}

/// The draws of one training step, one per image of each batch D sees.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDraws {
    /// The real batch in D's step.
    pub d_real: Vec<Draw>,
    /// The generated batch in D's step.
    pub d_fake: Vec<Draw>,
    /// The real batch beside the generated one in G's step (joint batch norm).
    pub g_real: Vec<Draw>,
    /// The generated batch in G's step.
    pub g_fake: Vec<Draw>,
}

impl Augment {
    /// Whether any change is on.
    pub fn is_on(&self) -> bool {
        self.color || self.translation || self.cutout || self.flip
    }

    /// Whether none is (config.json leaves the field out then).
    pub fn is_none(&self) -> bool {
        !self.is_on()
    }

    /// The policy `--augment` names: `none`, or changes joined by commas
    /// (`color,translation,cutout`, `flip`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut policy = Augment::default();
        for part in text.split(',').map(str::trim) {
            match part {
                "none" if text.trim() == "none" => {}
                "color" | "colour" => policy.color = true,
                "translation" => policy.translation = true,
                "cutout" => policy.cutout = true,
                "flip" => policy.flip = true,
                _ => {
                    return Err(format!(
                        "unknown augmentation {part:?}: give `none` or some of color, \
                         translation, cutout, flip joined by commas"
                    ));
                }
            }
        }
        Ok(policy)
    }

    /// The policy as `--augment` takes it.
    pub fn name(&self) -> String {
        let on = [
            (self.color, "color"),
            (self.translation, "translation"),
            (self.cutout, "cutout"),
            (self.flip, "flip"),
        ];
        let names: Vec<_> = on.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        match names.is_empty() {
            true => "none".into(),
            false => names.join(","),
        }
    }

    /// The draws of training step `step` of a run seeded `seed`, for
    /// batches of `rows` images of `side` pixels, each change made with
    /// chance `p`; `None` when no change is on.
    pub fn draws(
        &self,
        seed: u64,
        step: u64,
        (rows, side): (usize, usize),
        p: f32,
    ) -> Option<StepDraws> {
        if !self.is_on() {
            return None;
        }
        let mut rng = stream(seed, Purpose::Augment, step);
        let mut batch =
            || -> Vec<Draw> { (0..rows).map(|_| self.draw(&mut rng, side, p)).collect() };
        Some(StepDraws {
            d_real: batch(),
            d_fake: batch(),
            g_real: batch(),
            g_fake: batch(),
        })
    }

    /// One image's changes, each made with chance `p`; those that are off
    /// or not made leave it as it is. Every change's values are drawn either
    /// way, so the chance moves no other draw.
    fn draw(&self, rng: &mut impl Rng, side: usize, p: f32) -> Draw {
        let mut draw = Draw::IDENTITY;
        let [color, translation, cutout, flip] =
            [self.color, self.translation, self.cutout, self.flip]
                .map(|on| on && rng.random::<f32>() < p);
        if self.color {
            let values: [f32; 3] = rng.random();
            if color {
                draw.brightness = values[0] - 0.5;
                draw.saturation = values[1] * 2.0;
                draw.contrast = values[2] + 0.5;
            }
        }
        if self.translation {
            let most = (side as f32 / 8.0 + 0.5) as i32;
            let mut shift = || rng.random_range(-most..=most) as isize;
            let shift = (shift(), shift());
            draw.shift = if translation { shift } else { (0, 0) };
        }
        if self.cutout {
            let size = (side as f32 / 2.0 + 0.5) as usize;
            let span = |centre: usize| {
                let start = centre.saturating_sub(size / 2);
                (start, (centre + size - size / 2).min(side))
            };
            let places = side + 1 - size % 2;
            let cut = (
                span(rng.random_range(0..places)),
                span(rng.random_range(0..places)),
            );
            draw.cut = cutout.then_some(cut);
        }
        if self.flip {
            draw.flip = rng.random::<bool>() && flip;
        }
        draw
    }
}

impl Draw {
    /// No change.
    pub const IDENTITY: Draw = Draw {
        brightness: 0.0,
        saturation: 1.0,
        contrast: 1.0,
        shift: (0, 0),
        cut: None,
        flip: false,
    };

    /// Whether it changes the colours (the colour changes of an identity
    /// draw are skipped, not computed: `(x - m) + m` need not be `x`).
    pub fn recolours(&self) -> bool {
        self.brightness != 0.0 || self.saturation != 1.0 || self.contrast != 1.0
    }

    /// Where output pixel (y, x) of a `side`-pixel image reads its input
    /// (flip, then shift), or `None` where zeros fill in or the cutout is.
    pub fn source(&self, y: usize, x: usize, side: usize) -> Option<(usize, usize)> {
        if self.is_cut(y, x) {
            return None;
        }
        Some((self.source_row(y, side)?, self.source_column(x, side)?))
    }

    /// The input row output row `y` reads, if any.
    pub fn source_row(&self, y: usize, side: usize) -> Option<usize> {
        let sy = y as isize - self.shift.0;
        (0..side as isize).contains(&sy).then_some(sy as usize)
    }

    /// The input column output column `x` reads, if any.
    pub fn source_column(&self, x: usize, side: usize) -> Option<usize> {
        let sx = x as isize - self.shift.1;
        let sx = (0..side as isize).contains(&sx).then_some(sx as usize)?;
        Some(if self.flip { side - 1 - sx } else { sx })
    }

    /// Whether output pixel (y, x) is in the cutout.
    pub fn is_cut(&self, y: usize, x: usize) -> bool {
        self.cut
            .is_some_and(|((y0, y1), (x0, x1))| (y0..y1).contains(&y) && (x0..x1).contains(&x))
    }
}

/// `images` [B, C, H, W] as D sees them under `draws` (one per row): the
/// colour changes, then the flip and shift as 0/1 matrices on each side of
/// every channel and the cutout as a mask, so burn's autodiff takes the
/// gradient back (the native step's reference).
pub fn augment(images: Tensor<4>, draws: &[Draw]) -> Tensor<4> {
    let [batch, channels, side, _] = images.dims();
    let device = images.device();
    let per_row = |f: fn(&Draw) -> f32| {
        let values: Vec<f32> = draws.iter().map(f).collect();
        Tensor::<1>::from_data(TensorData::new(values, [batch]), &device).reshape([batch, 1, 1, 1])
    };
    let mut x = images;
    if draws.iter().any(Draw::recolours) {
        x = x + per_row(|d| d.brightness);
        let pixel_mean = x.clone().mean_dim(1);
        x = (x - pixel_mean.clone()) * per_row(|d| d.saturation) + pixel_mean;
        let image_mean = x.clone().mean_dim(1).mean_dim(2).mean_dim(3);
        x = (x - image_mean.clone()) * per_row(|d| d.contrast) + image_mean;
    }
    // out[y, x] = rows[y, sy] . in[sy, sx] . columns[sx, x], then the mask.
    let square = side * side;
    let (mut rows, mut columns) = (vec![0f32; batch * square], vec![0f32; batch * square]);
    let mut mask = vec![1f32; batch * square];
    for (b, draw) in draws.iter().enumerate() {
        let at = |i: usize, j: usize| b * square + i * side + j;
        for i in 0..side {
            if let Some(sy) = draw.source_row(i, side) {
                rows[at(i, sy)] = 1.0;
            }
            if let Some(sx) = draw.source_column(i, side) {
                columns[at(sx, i)] = 1.0;
            }
            for j in 0..side {
                if draw.is_cut(i, j) {
                    mask[at(i, j)] = 0.0;
                }
            }
        }
    }
    let matrices = |values: Vec<f32>| {
        Tensor::<4>::from_data(TensorData::new(values, [batch, 1, side, side]), &device)
            .repeat_dim(1, channels)
    };
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [batch, 1, side, side]), &device);
    matrices(rows).matmul(x).matmul(matrices(columns)) * mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chance_turns_changes_off_without_moving_the_others() {
        let policy = Augment::parse("color,translation,cutout").unwrap();
        let draws = |p| policy.draws(4, 9, (400, 32), p).unwrap().d_real;
        assert!(draws(0.0).iter().all(|d| *d == Draw::IDENTITY));
        let (all, half) = (draws(1.0), draws(0.5));
        let cut = half.iter().filter(|d| d.cut.is_some()).count();
        assert!((150..250).contains(&cut), "{cut} of 400 cut at p = 0.5");
        assert!(all.iter().all(|d| d.cut.is_some() && d.recolours()));
        // A change made at 0.5 is the one made at 1: the chance draws nothing else.
        for (a, h) in all.iter().zip(&half) {
            assert!(h.cut.is_none() || h.cut == a.cut);
            assert!(!h.recolours() || h.brightness == a.brightness);
        }
        assert_eq!(AugmentP::parse("adaptive"), Ok(AugmentP::Adaptive));
        assert_eq!(AugmentP::parse("0.25"), Ok(AugmentP::Fixed(0.25)));
        for bad in ["0", "1.5", "sometimes"] {
            assert!(AugmentP::parse(bad).unwrap_err().contains("adaptive"));
        }
    }
}
