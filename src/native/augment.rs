//! Differentiable augmentation of D's inputs (see [`crate::optim::augment`])
//! on images channels last, [B, H, W, C]: the forward for a batch's draws
//! and its backward, the transposed map of the same draws.

use crate::arch::ImageShape;
use crate::optim::augment::Draw;

/// `images` as D sees them under `draws` (one per row): the colour changes
/// (brightness, saturation, contrast), then each output pixel read from
/// its source ([`Draw::source`]), zero where it has none.
pub fn augment_forward(images: &[f32], draws: &[Draw], image: ImageShape) -> Vec<f32> {
    let (row, c) = (image.len(), image.channels);
    assert_eq!(draws.len() * row, images.len(), "a draw per image");
    let mut out = vec![0f32; images.len()];
    for ((x, y), draw) in images.chunks(row).zip(out.chunks_mut(row)).zip(draws) {
        let mut x = x.to_vec();
        if draw.recolours() {
            x.iter_mut().for_each(|v| *v += draw.brightness);
            for pixel in x.chunks_mut(c) {
                let mean = pixel.iter().sum::<f32>() / c as f32;
                pixel
                    .iter_mut()
                    .for_each(|v| *v = (*v - mean) * draw.saturation + mean);
            }
            let mean = x.iter().sum::<f32>() / row as f32;
            x.iter_mut()
                .for_each(|v| *v = (*v - mean) * draw.contrast + mean);
        }
        for_each_source(draw, image, |to, from| {
            y[to..to + c].copy_from_slice(&x[from..from + c])
        });
    }
    out
}

/// The gradient for the images given the gradient `grad` for what
/// [`augment_forward`] made of them under the same `draws`.
pub fn augment_backward(grad: &[f32], draws: &[Draw], image: ImageShape) -> Vec<f32> {
    let (row, c) = (image.len(), image.channels);
    assert_eq!(draws.len() * row, grad.len(), "a draw per image");
    let mut out = vec![0f32; grad.len()];
    for ((g, x), draw) in grad.chunks(row).zip(out.chunks_mut(row)).zip(draws) {
        for_each_source(draw, image, |to, from| {
            x[from..from + c]
                .iter_mut()
                .zip(&g[to..to + c])
                .for_each(|(x, g)| *x += g);
        });
        if draw.recolours() {
            // x3 = k x2 + (1 - k) mean(x2): g2 = k g3 + (1 - k) mean(g3).
            let (k, mean) = (draw.contrast, x.iter().sum::<f32>() / row as f32);
            x.iter_mut().for_each(|v| *v = k * *v + (1.0 - k) * mean);
            // The same per pixel over its channels, with the saturation.
            let s = draw.saturation;
            for pixel in x.chunks_mut(c) {
                let mean = pixel.iter().sum::<f32>() / c as f32;
                pixel
                    .iter_mut()
                    .for_each(|v| *v = s * *v + (1.0 - s) * mean);
            }
            // The brightness adds a constant: its gradient passes unchanged.
        }
    }
    out
}

/// Calls `copy(to, from)` with the offsets (in values) of each output
/// pixel of a row and the input pixel it reads.
fn for_each_source(draw: &Draw, image: ImageShape, mut copy: impl FnMut(usize, usize)) {
    let (side, c) = (image.side, image.channels);
    for y in 0..side {
        for x in 0..side {
            if let Some((sy, sx)) = draw.source(y, x, side) {
                copy((y * side + x) * c, (sy * side + sx) * c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};
    use rand::Rng;

    use super::*;
    use crate::backend::training_device;
    use crate::native::layout::swap_inner_axes;
    use crate::optim::augment::{Augment, augment};
    use crate::rng::{Purpose, stream};

    /// The native forward and backward against burn's autodiff of
    /// [`augment`], for every change alone and all together, grey and colour.
    #[test]
    fn the_native_augmentation_follows_burns_autodiff() {
        let all = Augment::parse("color,translation,cutout,flip").unwrap();
        let policies =
            ["color", "translation", "cutout", "flip"].map(|p| Augment::parse(p).unwrap());
        for (channels, side) in [(1, 28), (3, 32)] {
            for policy in policies.iter().chain([&all]) {
                let image = ImageShape::new(channels, side).unwrap();
                let draws = policy.draws(7, side as u64, (5, side), 1.0).unwrap().d_fake;
                check(image, &draws, &policy.name());
            }
        }
    }

    fn check(image: ImageShape, draws: &[Draw], what: &str) {
        let rows = draws.len();
        let mut rng = stream(1, Purpose::Init, 9);
        let x: Vec<f32> = (0..rows * image.len())
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        let g: Vec<f32> = (0..rows * image.len())
            .map(|_| rng.random::<f32>() - 0.5)
            .collect();
        // Burn works channels first, the native layer channels last.
        let planes = [rows, image.channels, image.pixels()];
        let last = |v: &[f32]| swap_inner_axes(v, planes);
        let device = training_device();
        let dims = [rows, image.channels, image.side, image.side];
        let input =
            Tensor::<4>::from_data(TensorData::new(x.clone(), dims), &device).require_grad();
        let out = augment(input.clone(), draws);
        let weights = Tensor::<4>::from_data(TensorData::new(g.clone(), dims), &device);
        let grads = (out.clone() * weights).sum().backward();
        let burn_out = out.into_data().try_into_vec::<f32>().unwrap();
        let burn_grad = input
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let native_out = augment_forward(&last(&x), draws, image);
        let native_grad = augment_backward(&last(&g), draws, image);
        let close = |a: &[f32], b: &[f32], part: &str| {
            let worst = a
                .iter()
                .zip(b)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "{what} {image:?} {part}: differs by {worst}");
        };
        close(&native_out, &last(&burn_out), "forward");
        close(&native_grad, &last(&burn_grad), "backward");
    }

    /// No change leaves images exactly as they are; a cutout or a shift
    /// zeroes what it should.
    #[test]
    fn draws_do_what_they_say() {
        let image = ImageShape {
            channels: 1,
            side: 8,
        };
        let x: Vec<f32> = (0..64).map(|v| v as f32 + 1.0).collect();
        assert_eq!(augment_forward(&x, &[Draw::IDENTITY], image), x);
        let shifted = Draw {
            shift: (1, -2),
            ..Draw::IDENTITY
        };
        let y = augment_forward(&x, &[shifted], image);
        assert!(y[..8].iter().all(|&v| v == 0.0), "row 0 is filled in");
        assert_eq!(y[8], x[2], "(1, 0) reads (0, 2)");
        let cut = Draw {
            cut: Some(((2, 6), (0, 4))),
            ..Draw::IDENTITY
        };
        let y = augment_forward(&x, &[cut], image);
        assert_eq!(y.iter().filter(|&&v| v == 0.0).count(), 16);
        assert_eq!(y[2 * 8 + 4], x[2 * 8 + 4]);
    }
}
