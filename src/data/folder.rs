//! A folder of the user's own labelled images, the torchvision `ImageFolder`
//! way: one sub-folder per class (`DIR/cat/001.png`, `DIR/dog/...`), PNG or
//! JPEG. Classes are the sorted sub-folder names. Each image is turned grey,
//! centre-cropped to a square and resized to 28x28 (Lanczos); files that
//! cannot be used are skipped and named with the reason.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use image::imageops::FilterType;

use super::Dataset;
use crate::arch::{IMAGE_PIXELS, IMAGE_SIDE};

/// The smallest side an image may have (smaller ones are skipped).
const MIN_SIDE: u32 = 8;
/// The most classes a folder may have (labels are bytes).
const MAX_CLASSES: usize = 256;

/// Whether `dir` looks like an image folder: no IDX files, and at least
/// one sub-folder.
pub fn is_image_folder(dir: &Path) -> bool {
    let idx = ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"];
    dir.is_dir()
        && !idx.iter().any(|f| dir.join(f).is_file())
        && class_dirs(dir).is_ok_and(|d| !d.is_empty())
}

/// The class sub-folders of `dir` (hidden ones left out), sorted by name.
fn class_dirs(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("--data {}: cannot read the folder", dir.display()))?;
    let mut classes: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    classes.sort();
    Ok(classes)
}

/// The class names of the image folder `dir`: its sorted sub-folders. At
/// least two are needed.
pub fn class_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let classes = class_dirs(dir)?;
    let shown = dir.display();
    ensure!(
        !classes.is_empty(),
        "--data {shown}: no class sub-folders; put each class's images in a folder of its own \
         ({shown}/CLASS/IMAGE.png)"
    );
    ensure!(
        classes.len() >= 2,
        "--data {shown}: only one class ({}); a conditional GAN needs at least two class sub-folders",
        classes[0].0
    );
    ensure!(
        classes.len() <= MAX_CLASSES,
        "--data {shown}: {} class sub-folders; at most {MAX_CLASSES}",
        classes.len()
    );
    Ok(classes.into_iter().map(|(name, _)| name).collect())
}

/// What a scan found: the decoded set, images per class, and the files
/// skipped with the reason.
#[derive(Debug)]
pub struct Scan {
    /// The images, 28x28 grey, the classes interleaved.
    pub data: Dataset,
    /// The class names (the sub-folders, sorted).
    pub classes: Vec<String>,
    /// Usable images per class.
    pub counts: Vec<usize>,
    /// (file, why it was skipped).
    pub skipped: Vec<(PathBuf, String)>,
}

impl Scan {
    /// One line per finding: the classes with their counts, then each skipped file.
    pub fn report(&self) -> String {
        let classes: Vec<String> = self
            .classes
            .iter()
            .zip(&self.counts)
            .map(|(name, n)| format!("{name}: {n}"))
            .collect();
        let mut text = format!(
            "{} images in {} classes ({}); {} files skipped",
            self.data.len(),
            self.classes.len(),
            classes.join(", "),
            self.skipped.len()
        );
        for (path, why) in &self.skipped {
            text.push_str(&format!("\n  skipped {}: {why}", path.display()));
        }
        text
    }
}

/// Decodes every image of the folder `dir`.
pub fn scan(dir: &Path) -> anyhow::Result<Scan> {
    let classes = class_names(dir)?;
    let mut data = Dataset {
        images: Vec::new(),
        labels: Vec::new(),
        height: IMAGE_SIDE,
        width: IMAGE_SIDE,
        num_classes: classes.len(),
    };
    let (mut counts, mut skipped) = (vec![0; classes.len()], Vec::new());
    let mut per_class: Vec<Vec<Vec<u8>>> = vec![Vec::new(); classes.len()];
    for (label, class) in classes.iter().enumerate() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(class))
            .with_context(|| format!("{}: cannot read", dir.join(class).display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            match decode(&file) {
                Ok(pixels) => {
                    per_class[label].push(pixels);
                    counts[label] += 1;
                }
                Err(why) => skipped.push((file, why)),
            }
        }
        ensure!(
            counts[label] > 0,
            "--data {}: class {class:?} has no usable images (PNG or JPEG, at least {MIN_SIDE}x{MIN_SIDE})",
            dir.display()
        );
    }
    // Classes interleaved (a, b, c, a, b, c, ...), so the first N images
    // (--limit) hold every class.
    let most = counts.iter().copied().max().unwrap_or(0);
    for i in 0..most {
        for (label, images) in per_class.iter().enumerate() {
            if let Some(pixels) = images.get(i) {
                data.images.extend_from_slice(pixels);
                data.labels.push(label as u8);
            }
        }
    }
    Ok(Scan {
        data,
        classes,
        counts,
        skipped,
    })
}

/// One image as 28x28 grey pixels, or why it cannot be used.
fn decode(file: &Path) -> Result<Vec<u8>, String> {
    let extension = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if !["png", "jpg", "jpeg"].contains(&extension.as_str()) {
        return Err("not a PNG or JPEG file".into());
    }
    let image = image::open(file).map_err(|e| format!("unreadable ({e})"))?;
    let (w, h) = (image.width(), image.height());
    if w.min(h) < MIN_SIDE {
        return Err(format!(
            "too small ({w}x{h}; at least {MIN_SIDE}x{MIN_SIDE})"
        ));
    }
    let side = w.min(h);
    let square = image.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    let small = square
        .resize_exact(IMAGE_SIDE as u32, IMAGE_SIDE as u32, FilterType::Lanczos3)
        .into_luma8();
    let pixels = small.into_raw();
    debug_assert_eq!(pixels.len(), IMAGE_PIXELS);
    Ok(pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_interleaved_so_a_limit_keeps_every_class() {
        let dir = tempfile::tempdir().unwrap();
        for (class, n) in [("a", 3), ("b", 1), ("c", 2)] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for i in 0..n {
                let path = dir.path().join(format!("{class}/{i}.png"));
                crate::sample::image::write_png(&path, 28, 28, &[i as u8 * 50; 784]).unwrap();
            }
        }
        let scan = scan(dir.path()).unwrap();
        assert_eq!(scan.classes, ["a", "b", "c"]);
        assert_eq!(scan.counts, [3, 1, 2]);
        assert_eq!(scan.data.labels, [0, 1, 2, 0, 2, 0]);
        assert_eq!(scan.data.images.len(), 6 * 784);
    }
}
