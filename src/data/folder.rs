//! A folder of the user's own labelled images, the torchvision `ImageFolder`
//! way: one sub-folder per class (`DIR/cat/001.png`, `DIR/dog/...`), PNG or
//! JPEG. Classes are the sorted sub-folder names. Each image is turned grey,
//! centre-cropped to a square and resized to 28x28 (Lanczos); files that
//! cannot be used are skipped and named with the reason.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use image::imageops::FilterType;

use super::Dataset;
use crate::arch::{IMAGE_PIXELS, IMAGE_SIDE, MAX_CLASSES};

/// The smallest side an image may have (smaller ones are skipped).
const MIN_SIDE: u32 = 8;

/// Whether `dir` is taken for an image folder: a folder without IDX
/// training files (then [`class_names`] says what a folder without class
/// sub-folders lacks, rather than the IDX files it never meant to hold).
pub fn is_image_folder(dir: &Path) -> bool {
    let idx = ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"];
    dir.is_dir() && !idx.iter().any(|f| dir.join(f).is_file())
}

/// The class sub-folders of `dir` (hidden ones left out), sorted by name.
/// A class is named by its folder, so a folder name that is not UTF-8 (or
/// holds a line break, which classes.txt cannot keep) is refused.
fn class_dirs(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("--data {}: cannot read the folder", dir.display()))?;
    let mut classes = Vec::new();
    for entry in entries.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
        let Ok(name) = entry.file_name().into_string() else {
            anyhow::bail!(
                "--data {}: the class folder {:?} has a name that is not UTF-8; rename it \
                 (class names are kept as text)",
                dir.display(),
                entry.file_name()
            );
        };
        ensure!(
            !name.contains(['\n', '\r']),
            "--data {}: the class folder {name:?} has a line break in its name; rename it",
            dir.display()
        );
        if !name.starts_with('.') {
            classes.push((name, entry.path()));
        }
    }
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
    scan_classes(dir, &class_names(dir)?)
}

/// Decodes every image of the sub-folders `classes` of `dir`, the class
/// list read once before (a run's config.json keeps it): a folder renamed
/// since is an error, never another class's images under this label.
pub fn scan_classes(dir: &Path, classes: &[String]) -> anyhow::Result<Scan> {
    let classes = classes.to_vec();
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
        let folder = dir.join(class);
        // Checked before and after reading it: a folder renamed meanwhile
        // leaves a class short, never another class's images under its name.
        let still_there = || {
            ensure!(
                std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()),
                "--data {}: the class folder {class:?} is gone (renamed or removed while the \
                 run started); start again",
                dir.display()
            );
            Ok(())
        };
        still_there()?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("{}: cannot read", folder.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for file in files {
            if let Some(why) = not_an_image_file(&file) {
                skipped.push((file, why.to_string()));
                continue;
            }
            match decode(&file) {
                Ok(pixels) => {
                    per_class[label].push(pixels);
                    counts[label] += 1;
                }
                Err(why) => skipped.push((file, why)),
            }
        }
        still_there()?;
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

/// Why the entry `file` of a class folder is not read as an image, if it is not.
fn not_an_image_file(file: &Path) -> Option<&'static str> {
    let hidden = file
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    let meta = std::fs::metadata(file);
    match meta {
        _ if hidden => Some("hidden (its name starts with a dot)"),
        Err(_) if file.is_symlink() => Some("a broken link"),
        Err(_) => Some("cannot be read"),
        Ok(m) if m.is_dir() => Some("a folder (classes are not nested: one level of sub-folders)"),
        Ok(m) if !m.is_file() => Some("not a regular file (a FIFO, device or socket)"),
        Ok(_) => None,
    }
}

/// The most pixels a decoded image may have (8192 x 8192): bounds the
/// memory and time a huge image costs before it is decoded.
const MAX_DECODED_SIDE: u32 = 8192;

/// One image as 28x28 grey pixels, or why it cannot be used.
fn decode(file: &Path) -> Result<Vec<u8>, String> {
    let extension = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if !["png", "jpg", "jpeg"].contains(&extension.as_str()) {
        return Err("not a PNG or JPEG file".into());
    }
    // The format by the bytes, not the name: a PNG named .jpg decodes.
    let mut reader = image::ImageReader::open(file)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("unreadable ({e})"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| format!("unreadable ({e})"))?;
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
