//! Animations: the training-progress GIF (one frame per epoch grid, the
//! epoch written on it) and class / latent morphs.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use plotters::prelude::*;

use super::Sampler;
use super::image::interleave;
use crate::arch::ImageShape;

/// The largest side of a grid PNG read back ([`read_grid_png`]).
const MAX_GRID_SIDE: u32 = 8192;

/// Height of the caption band above each progress frame.
const CAPTION: usize = 24;

/// Reads an 8-bit grey or RGB PNG: (width, height, channels, pixels).
pub fn read_grid_png(path: &Path) -> anyhow::Result<(usize, usize, usize, Vec<u8>)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .with_context(|| format!("{}: not a PNG", path.display()))?;
    // Checked from the header, before a buffer for the pixels is made: an
    // epoch grid is at most a few thousand pixels a side.
    let (w, h) = (reader.info().width, reader.info().height);
    ensure!(
        w.max(h) <= MAX_GRID_SIDE,
        "{}: {w}x{h} pixels, larger than any epoch grid (at most {MAX_GRID_SIDE} a side); \
         not a grid cdcgan wrote",
        path.display()
    );
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .with_context(|| format!("{}: unreadable PNG", path.display()))?;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::Rgb => 3,
        _ => 0,
    };
    ensure!(
        channels > 0 && info.bit_depth == png::BitDepth::Eight,
        "{}: expected an 8-bit grey or RGB PNG",
        path.display()
    );
    buf.truncate(info.buffer_size());
    Ok((info.width as usize, info.height as usize, channels, buf))
}

/// Draws `text` into a band `width` pixels wide; returns its pixels with
/// `channels` values each.
fn caption(text: &str, width: usize, channels: usize) -> anyhow::Result<Vec<u8>> {
    crate::plot::ensure_font();
    let mut rgb = vec![0u8; width * CAPTION * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width as u32, CAPTION as u32))
            .into_drawing_area();
        root.draw(&Text::new(
            text.to_string(),
            (6, 3),
            ("sans-serif", 17).into_font().color(&WHITE),
        ))
        .map_err(|e| anyhow::anyhow!("drawing the caption failed: {e:?}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("drawing the caption failed: {e:?}"))?;
    }
    Ok(match channels {
        3 => rgb,
        _ => rgb.chunks_exact(3).map(|p| p[0]).collect(),
    })
}

/// Levels of each channel in the colour palette: a 6x6x6 cube (216
/// colours), the other 40 entries a grey ramp.
const CUBE: usize = 6;

/// The GIF palette for `channels`: 256 greys, or the colour cube and a grey ramp.
fn palette(channels: usize) -> Vec<u8> {
    if channels == 1 {
        return (0..=255u8).flat_map(|v| [v, v, v]).collect();
    }
    let level = |i: usize| (i * 255 / (CUBE - 1)) as u8;
    let cube = (0..CUBE * CUBE * CUBE).flat_map(|i| {
        [
            level(i / (CUBE * CUBE)),
            level(i / CUBE % CUBE),
            level(i % CUBE),
        ]
    });
    let greys = (0..256 - CUBE.pow(3)).flat_map(|i| [(i * 255 / 39) as u8; 3]);
    cube.chain(greys).collect()
}

/// The palette index of an RGB pixel (of [`palette`]`(3)`): the nearest
/// grey of the ramp for grey pixels, else the nearest cube colour. One fixed
/// palette for every frame: the progress GIF is rewritten each epoch, and
/// quantising each frame anew grew with the run.
fn colour_index(p: &[u8]) -> u8 {
    let near = |v: u8, levels: usize| (usize::from(v) * (levels - 1) + 127) / 255;
    if p[0] == p[1] && p[1] == p[2] {
        return (CUBE.pow(3) + near(p[0], 40)) as u8;
    }
    let [r, g, b] = [p[0], p[1], p[2]].map(|v| near(v, CUBE));
    ((r * CUBE + g) * CUBE + b) as u8
}

/// Encodes frames of one size (grey, or RGB with `channels` 3) as a
/// looping GIF (`delay` in 1/100 s).
pub fn encode_gif(
    width: usize,
    height: usize,
    channels: usize,
    frames: &[Vec<u8>],
    delay: u16,
) -> anyhow::Result<Vec<u8>> {
    ensure!(!frames.is_empty(), "no frames to write");
    let mut bytes = Vec::new();
    {
        let (w, h) = (width as u16, height as u16);
        let mut encoder = gif::Encoder::new(&mut bytes, w, h, &palette(channels))?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        for pixels in frames {
            ensure!(
                pixels.len() == width * height * channels,
                "frames differ in size"
            );
            let indices = match channels {
                1 => pixels.clone(),
                _ => pixels.chunks_exact(channels).map(colour_index).collect(),
            };
            let mut frame = gif::Frame::from_indexed_pixels(w, h, indices, None);
            frame.delay = delay;
            encoder.write_frame(&frame)?;
        }
    }
    Ok(bytes)
}

/// Writes frames of one size as a looping GIF (atomically).
pub fn write_gif(
    path: &Path,
    (width, height, channels): (usize, usize, usize),
    frames: &[Vec<u8>],
    delay: u16,
) -> anyhow::Result<()> {
    let bytes = encode_gif(width, height, channels, frames, delay)
        .with_context(|| format!("{}: GIF encoding failed", path.display()))?;
    crate::store::write_atomic(path, &bytes)
}

/// The epoch grids of a run, in epoch order.
pub fn epoch_grids(samples_dir: &Path) -> anyhow::Result<Vec<(usize, PathBuf)>> {
    let mut grids: Vec<(usize, PathBuf)> = std::fs::read_dir(samples_dir)
        .with_context(|| format!("{}: cannot list", samples_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let epoch = name
                .strip_prefix("epoch_")?
                .strip_suffix(".png")?
                .parse()
                .ok()?;
            Some((epoch, p))
        })
        .collect();
    grids.sort();
    Ok(grids)
}

/// The most frames of a progress GIF: its size and the time to write it
/// stay bounded on a run of many epochs.
pub const MAX_PROGRESS_FRAMES: usize = 60;

/// `samples/progress.gif`: the epoch grids with "epoch N" written above
/// each, at most [`MAX_PROGRESS_FRAMES`] of them evenly spread over the
/// run (the first and the newest always among them). Returns the frames.
pub fn progress_gif(samples_dir: &Path, out: &Path) -> anyhow::Result<usize> {
    let grids = evenly(epoch_grids(samples_dir)?, MAX_PROGRESS_FRAMES);
    ensure!(
        !grids.is_empty(),
        "{}: no epoch_NNN.png grids yet",
        samples_dir.display()
    );
    let mut size = (0, 0, 0);
    let mut frames = Vec::with_capacity(grids.len());
    for (epoch, path) in &grids {
        let (w, h, channels, pixels) = read_grid_png(path)?;
        size = (w, h + CAPTION, channels);
        let mut frame = caption(&format!("epoch {epoch}"), w, channels)?;
        frame.extend(pixels);
        frames.push(frame);
    }
    // Linger on the last frame.
    let last = frames.last().cloned().expect("one frame");
    frames.extend([last.clone(), last]);
    write_gif(out, size, &frames, 60)?;
    Ok(grids.len())
}

/// At most `most` of `items`, evenly spread, the first and the last kept.
fn evenly<T>(items: Vec<T>, most: usize) -> Vec<T> {
    let n = items.len();
    if n <= most || most < 2 {
        return items;
    }
    let picks: Vec<usize> = (0..most).map(|i| i * (n - 1) / (most - 1)).collect();
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| picks.binary_search(i).is_ok())
        .map(|(_, item)| item)
        .collect()
}

/// Spherical interpolation between two noise vectors (keeps them on the
/// shell where N(0, I) puts its mass).
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let cos =
        (a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b))).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.abs() < 1e-6 {
        return a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect();
    }
    let (wa, wb) = (
        ((1.0 - t) * omega).sin() / omega.sin(),
        (t * omega).sin() / omega.sin(),
    );
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}

/// The classes a morph goes from and to when none are given: 3 to 8 (two
/// digits that share strokes), or the first to the last class where there
/// are fewer than nine.
pub fn default_morph(classes: usize) -> (u8, u8) {
    match classes {
        9.. => (3, 8),
        _ => (0, classes.saturating_sub(1) as u8),
    }
}

/// What a morph varies.
#[derive(Debug, Clone, Copy)]
pub enum Morph {
    /// Fixed noise; the condition slides from one class to another.
    Class {
        /// The class at the first image.
        from: u8,
        /// The class at the last image.
        to: u8,
    },
    /// Fixed class; the noise walks from one seed's vector to the next's.
    Latent {
        /// The class every image is drawn as.
        class: u8,
    },
}

/// `steps` images of the morph (the sampler's image bytes each).
pub fn morph_images(
    sampler: &Sampler,
    morph: Morph,
    steps: usize,
    seed: u64,
) -> anyhow::Result<Vec<u8>> {
    let classes = sampler.num_classes();
    ensure!(
        (2..=256).contains(&steps),
        "--steps must be in 2..=256 (got {steps})"
    );
    let check = |c: u8, flag: &str| {
        ensure!(
            (c as usize) < classes,
            "{flag} {c} is out of range: give a class 0..={}",
            classes - 1
        );
        Ok(())
    };
    let ts: Vec<f32> = (0..steps).map(|i| i as f32 / (steps - 1) as f32).collect();
    let (z, conditions): (Vec<f32>, Vec<f32>) = match morph {
        Morph::Class { from, to } => {
            check(from, "--from")?;
            check(to, "--to")?;
            let z = sampler.noise(seed, 0, 1);
            let mut conditions = vec![0f32; steps * classes];
            for (i, t) in ts.iter().enumerate() {
                conditions[i * classes + from as usize] += 1.0 - t;
                conditions[i * classes + to as usize] += t;
            }
            (
                ts.iter().flat_map(|_| z.iter().copied()).collect(),
                conditions,
            )
        }
        Morph::Latent { class } => {
            check(class, "--from")?;
            let (a, b) = (
                sampler.noise(seed, 0, 1),
                sampler.noise(seed.wrapping_add(1), 0, 1),
            );
            let mut conditions = vec![0f32; steps * classes];
            (0..steps).for_each(|i| conditions[i * classes + class as usize] = 1.0);
            (
                ts.iter().flat_map(|&t| slerp(&a, &b, t)).collect(),
                conditions,
            )
        }
    };
    sampler.images_conditioned(&z, &conditions)
}

/// A morph of `shape` images as an animated GIF: images scaled up to at
/// least 112 px, played forth and back.
pub fn morph_gif(images: &[u8], shape: ImageShape) -> anyhow::Result<Vec<u8>> {
    let n = images.len() / shape.len();
    let scale = (112 / shape.side).max(1); // 28 px digits are tiny on screen
    let (side, channels) = (shape.side * scale, shape.channels);
    let frames: Vec<Vec<u8>> = images
        .chunks_exact(shape.len())
        .map(|image| {
            let pixels = interleave(image, shape);
            (0..side * side)
                .flat_map(|i| {
                    let (y, x) = (i / side / scale, (i % side) / scale);
                    let at = (y * shape.side + x) * channels;
                    pixels[at..at + channels].iter().copied()
                })
                .collect()
        })
        .collect();
    let mut looped = frames.clone();
    looped.extend(
        frames
            .iter()
            .rev()
            .skip(1)
            .take(n.saturating_sub(2))
            .cloned(),
    );
    encode_gif(side, side, channels, &looped, 8)
}

/// Writes a morph of `shape` images as a GIF (by extension) or a PNG strip.
pub fn write_morph(out: &Path, images: &[u8], shape: ImageShape) -> anyhow::Result<()> {
    let is_gif = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gif"));
    let bytes = match is_gif {
        true => morph_gif(images, shape),
        false => super::image::grid_png(images, shape, 1, images.len() / shape.len()),
    }
    .with_context(|| format!("{}: encoding failed", out.display()))?;
    crate::store::write_atomic(out, &bytes)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_long_run_s_gif_keeps_evenly_spread_frames() {
        let frames = super::evenly((1..=945).collect::<Vec<_>>(), 60);
        assert_eq!(frames.len(), 60);
        assert_eq!((frames[0], frames[59]), (1, 945));
        assert!(
            frames
                .windows(2)
                .all(|w| w[1] - w[0] >= 15 && w[1] - w[0] <= 17)
        );
        assert_eq!(super::evenly(vec![1, 2, 3], 60), vec![1, 2, 3]);
    }

    use super::*;

    #[test]
    fn slerp_ends_at_its_endpoints_and_keeps_the_norm() {
        let (a, b) = (vec![1.0f32, 0.0], vec![0.0f32, 1.0]);
        assert_eq!(slerp(&a, &b, 0.0), a);
        let end = slerp(&a, &b, 1.0);
        assert!((end[0] - 0.0).abs() < 1e-6 && (end[1] - 1.0).abs() < 1e-6);
        let mid = slerp(&a, &b, 0.5);
        assert!(((mid[0].powi(2) + mid[1].powi(2)).sqrt() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn colour_pixels_map_to_their_nearest_palette_entry() {
        let palette = palette(3);
        assert_eq!(palette.len(), 256 * 3);
        let entry = |i: u8| &palette[usize::from(i) * 3..][..3];
        assert_eq!(entry(colour_index(&[255, 0, 0])), [255, 0, 0]);
        assert_eq!(entry(colour_index(&[250, 140, 3])), [255, 153, 0]);
        assert_eq!(entry(colour_index(&[128, 128, 128])), [130, 130, 130]);
        assert_eq!(entry(colour_index(&[255, 255, 255])), [255, 255, 255]);
    }

    #[test]
    fn gif_has_one_frame_per_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gif");
        write_gif(
            &path,
            (2, 2, 1),
            &[vec![0, 50, 100, 255], vec![255; 4], vec![0; 4]],
            10,
        )
        .unwrap();
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = options
            .read_info(std::fs::File::open(&path).unwrap())
            .unwrap();
        let mut frames = 0;
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            assert_eq!((frame.width, frame.height), (2, 2));
            frames += 1;
        }
        assert_eq!(frames, 3);
    }
}
