//! Images on disk: tanh outputs to bytes, bytes to PNG grids.

use std::path::Path;

use anyhow::{Context, ensure};

use crate::arch::ImageShape;

/// Gap, in pixels, between grid cells and around the border (torchvision's
/// `make_grid` layout, as the PyTorch peer writes it).
pub const GRID_PADDING: usize = 2;

/// Maps generator outputs in [-1, 1] to grey bytes: `round((x + 1) * 127.5)`.
pub fn to_u8(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .map(|&v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8)
        .collect()
}

/// One image's channel planes ([C, S, S]) as pixels with their channels
/// side by side ([S, S, C], as PNG and GIF keep them).
pub fn interleave(image: &[u8], shape: ImageShape) -> Vec<u8> {
    let (pixels, channels) = (shape.pixels(), shape.channels);
    let mut out = vec![0u8; image.len()];
    for (ch, plane) in image.chunks_exact(pixels).enumerate() {
        for (i, &v) in plane.iter().enumerate() {
            out[i * channels + ch] = v;
        }
    }
    out
}

/// Lays `images` (each `shape.len()` bytes, channel planes [C, S, S]) out
/// as `rows x cols` cells with [`GRID_PADDING`] black pixels between and
/// around them. Returns (width, height, pixels), the channels of each pixel
/// side by side (as PNG keeps them).
pub fn grid(images: &[u8], shape: ImageShape, rows: usize, cols: usize) -> (usize, usize, Vec<u8>) {
    let (side, channels) = (shape.side, shape.channels);
    let cell = side + GRID_PADDING;
    let (width, height) = (cols * cell + GRID_PADDING, rows * cell + GRID_PADDING);
    let mut canvas = vec![0u8; width * height * channels];
    let row_len = side * channels;
    for (i, image) in images
        .chunks_exact(shape.len())
        .take(rows * cols)
        .enumerate()
    {
        let (r, c) = (i / cols, i % cols);
        let pixels = interleave(image, shape);
        for (y, row) in pixels.chunks_exact(row_len).enumerate() {
            let start = (GRID_PADDING + r * cell + y) * width + GRID_PADDING + c * cell;
            canvas[start * channels..][..row_len].copy_from_slice(row);
        }
    }
    (width, height, canvas)
}

/// Encodes 8-bit pixels (`channels` 1: grey, 3: RGB, side by side) as PNG.
pub fn encode_png(
    width: usize,
    height: usize,
    channels: usize,
    pixels: &[u8],
) -> anyhow::Result<Vec<u8>> {
    ensure!(
        pixels.len() == width * height * channels,
        "image buffer does not match {width}x{height}x{channels}"
    );
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        _ => anyhow::bail!("{channels} channels: PNGs here are grey (1) or RGB (3)"),
    };
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(pixels)?;
    }
    Ok(bytes)
}

/// Writes an 8-bit grey or RGB PNG (atomically: temp file + rename).
pub fn write_png(
    path: &Path,
    width: usize,
    height: usize,
    channels: usize,
    pixels: &[u8],
) -> anyhow::Result<()> {
    let bytes = encode_png(width, height, channels, pixels)
        .with_context(|| format!("{}: PNG encoding failed", path.display()))?;
    crate::store::write_atomic(path, &bytes)
}

/// `images` as a `rows x cols` grid, PNG-encoded.
pub fn grid_png(
    images: &[u8],
    shape: ImageShape,
    rows: usize,
    cols: usize,
) -> anyhow::Result<Vec<u8>> {
    let (w, h, pixels) = grid(images, shape, rows, cols);
    encode_png(w, h, shape.channels, &pixels)
}

/// Writes `images` as a `rows x cols` grid PNG.
pub fn write_grid(
    path: &Path,
    images: &[u8],
    shape: ImageShape,
    rows: usize,
    cols: usize,
) -> anyhow::Result<()> {
    let (w, h, pixels) = grid(images, shape, rows, cols);
    write_png(path, w, h, shape.channels, &pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_u8_covers_the_range() {
        assert_eq!(
            to_u8(&[-1.0, 0.0, 1.0, -7.0, 7.0]),
            vec![0, 128, 255, 0, 255]
        );
    }

    #[test]
    fn grid_places_cells_with_padding() {
        let images: Vec<u8> = (0..4).flat_map(|i| vec![10 * (i + 1) as u8; 4]).collect();
        let (w, h, px) = grid(
            &images,
            ImageShape {
                channels: 1,
                side: 2,
            },
            2,
            2,
        );
        assert_eq!((w, h), (2 * 4 + 2, 2 * 4 + 2));
        assert_eq!(px[0], 0); // border
        assert_eq!(px[2 * w + 2], 10); // first cell
        assert_eq!(px[2 * w + 6], 20); // second cell, same row
        assert_eq!(px[6 * w + 2], 30); // first cell, second row
    }

    #[test]
    fn png_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        write_grid(&path, &vec![200u8; 100 * 784], ImageShape::MNIST, 10, 10).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (302, 302));
    }

    #[test]
    fn colour_cells_keep_their_channels() {
        // One 2x2 RGB image: red planes 10, green 20, blue 30.
        let image: Vec<u8> = [10u8, 20, 30].iter().flat_map(|&v| [v; 4]).collect();
        let shape = ImageShape {
            channels: 3,
            side: 2,
        };
        let (w, h, px) = grid(&image, shape, 1, 1);
        assert_eq!((w, h, px.len()), (6, 6, 6 * 6 * 3));
        let at = |x: usize, y: usize| &px[(y * w + x) * 3..][..3];
        assert_eq!(at(0, 0), [0, 0, 0]); // border
        assert_eq!(at(2, 2), [10, 20, 30]);
        assert_eq!(at(3, 3), [10, 20, 30]);
        let bytes = encode_png(w, h, 3, &px).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        assert_eq!(
            decoder.read_info().unwrap().info().color_type,
            png::ColorType::Rgb
        );
    }
}
