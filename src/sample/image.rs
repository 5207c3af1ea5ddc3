//! Images on disk: tanh outputs to bytes, bytes to PNG grids.

use std::path::Path;

use anyhow::{Context, ensure};

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

/// Lays `images` (each `side*side` bytes) out as `rows x cols` cells with
/// [`GRID_PADDING`] black pixels between and around them. Returns (width, height, pixels).
pub fn grid(images: &[u8], side: usize, rows: usize, cols: usize) -> (usize, usize, Vec<u8>) {
    let cell = side + GRID_PADDING;
    let (width, height) = (cols * cell + GRID_PADDING, rows * cell + GRID_PADDING);
    let mut canvas = vec![0u8; width * height];
    for (i, image) in images
        .chunks_exact(side * side)
        .take(rows * cols)
        .enumerate()
    {
        let (r, c) = (i / cols, i % cols);
        for y in 0..side {
            let start = (GRID_PADDING + r * cell + y) * width + GRID_PADDING + c * cell;
            canvas[start..start + side].copy_from_slice(&image[y * side..(y + 1) * side]);
        }
    }
    (width, height, canvas)
}

/// Encodes grey pixels as an 8-bit grey PNG.
pub fn encode_png(width: usize, height: usize, pixels: &[u8]) -> anyhow::Result<Vec<u8>> {
    ensure!(
        pixels.len() == width * height,
        "image buffer does not match {width}x{height}"
    );
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(pixels)?;
    }
    Ok(bytes)
}

/// Writes an 8-bit grey PNG (atomically: temp file + rename).
pub fn write_png(path: &Path, width: usize, height: usize, pixels: &[u8]) -> anyhow::Result<()> {
    let bytes = encode_png(width, height, pixels)
        .with_context(|| format!("{}: PNG encoding failed", path.display()))?;
    crate::store::write_atomic(path, &bytes)
}

/// `images` as a `rows x cols` grid, PNG-encoded.
pub fn grid_png(images: &[u8], side: usize, rows: usize, cols: usize) -> anyhow::Result<Vec<u8>> {
    let (w, h, pixels) = grid(images, side, rows, cols);
    encode_png(w, h, &pixels)
}

/// Writes `images` as a `rows x cols` grid PNG.
pub fn write_grid(
    path: &Path,
    images: &[u8],
    side: usize,
    rows: usize,
    cols: usize,
) -> anyhow::Result<()> {
    let (w, h, pixels) = grid(images, side, rows, cols);
    write_png(path, w, h, &pixels)
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
        let (w, h, px) = grid(&images, 2, 2, 2);
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
        write_grid(&path, &vec![200u8; 100 * 784], 28, 10, 10).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (302, 302));
    }
}
