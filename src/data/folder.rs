//! A folder of the user's own labelled images, the torchvision `ImageFolder`
//! way: one sub-folder per class (`DIR/cat/001.png`, `DIR/dog/...`), PNG or
//! JPEG. Classes are the sorted sub-folder names. Each image is composited
//! on a background where it is transparent, centre-cropped to a square,
//! resized to the run's side (Lanczos) and kept in colour or turned grey
//! ([`Decoding`]); files that cannot be used are skipped and named with the
//! reason.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use image::imageops::FilterType;

use super::Dataset;
use crate::arch::{ImageShape, MAX_CLASSES};
use crate::interrupt::Stop;

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

/// The class sub-folders of `dir` as they are now, however many (a
/// resume compares them with the run's).
pub fn listed_classes(dir: &Path) -> anyhow::Result<Vec<String>> {
    Ok(class_dirs(dir)?.into_iter().map(|(name, _)| name).collect())
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
    /// Hidden sub-folders of the folder (`.name/`): never read as classes.
    pub hidden: Vec<PathBuf>,
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
        if !self.hidden.is_empty() {
            text.push_str(&format!("; {} hidden folders left out", self.hidden.len()));
        }
        for (path, why) in &self.skipped {
            text.push_str(&format!("\n  skipped {}: {why}", path.display()));
        }
        for path in &self.hidden {
            text.push_str(&format!(
                "\n  left out {}/: a hidden folder (its name starts with a dot), not a class; \
                 rename it to train on it",
                path.display()
            ));
        }
        text
    }
}

/// The colour transparent pixels are composited on (`--background`), an
/// RGB triple written as `RRGGBB` hex; white by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Background(pub [u8; 3]);

impl Default for Background {
    fn default() -> Self {
        Self([255; 3])
    }
}

impl std::str::FromStr for Background {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let hex = text.strip_prefix('#').unwrap_or(text);
        let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        match (hex.len(), channel(0), channel(2), channel(4)) {
            (6, Some(r), Some(g), Some(b)) => Ok(Self([r, g, b])),
            _ => Err(format!(
                "{text:?} is not a colour: give RRGGBB hex (ffffff white, 000000 black)"
            )),
        }
    }
}

impl TryFrom<String> for Background {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Background> for String {
    fn from(b: Background) -> String {
        b.to_string()
    }
}

impl std::fmt::Display for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "{r:02x}{g:02x}{b:02x}")
    }
}

/// How a folder's images are decoded: to what shape, on what background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoding {
    /// The images' side and channels (1: grey, 3: RGB).
    pub shape: ImageShape,
    /// What transparent pixels are composited on.
    pub background: Background,
}

impl Default for Decoding {
    /// 28x28 grey (MNIST's shape) on white.
    fn default() -> Self {
        Self {
            shape: ImageShape::MNIST,
            background: Background::default(),
        }
    }
}

/// The channels the images of `classes` in `dir` hold: 3 when any is in
/// colour (by its file's colour type, read from its header), else 1.
pub fn channels_of(dir: &Path, classes: &[String]) -> anyhow::Result<usize> {
    for class in classes {
        let files = read_class(dir, class)?;
        // The files the scan reads (no FIFO is opened, no folder descended).
        let images = files
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| not_an_image_file(f).is_none() && has_image_extension(f));
        for file in images {
            let colour = image::ImageReader::open(&file)
                .and_then(|r| r.with_guessed_format())
                .ok()
                .and_then(|r| r.into_decoder().ok())
                .map(|d| image::ImageDecoder::color_type(&d).has_color());
            if colour == Some(true) {
                return Ok(3);
            }
        }
    }
    Ok(1)
}

/// Decodes every image of the folder `dir` as `decoding` says.
pub fn scan(dir: &Path, decoding: Decoding) -> anyhow::Result<Scan> {
    scan_classes(dir, &class_names(dir)?, decoding, Stop::NEVER)
}

/// Decodes every image of the sub-folders `classes` of `dir`, the class
/// list read once before (a run's config.json keeps it): a folder renamed
/// since is an error, never another class's images under this label.
/// Ends with [`Interrupted`](crate::interrupt::Interrupted) between images
/// once `stop` is set.
pub fn scan_classes(
    dir: &Path,
    classes: &[String],
    decoding: Decoding,
    stop: Stop,
) -> anyhow::Result<Scan> {
    let classes = classes.to_vec();
    let mut data = Dataset {
        images: Vec::new(),
        labels: Vec::new(),
        shape: decoding.shape,
        num_classes: classes.len(),
    };
    let (mut counts, mut skipped) = (vec![0; classes.len()], Vec::new());
    let mut per_class: Vec<Vec<Vec<u8>>> = vec![Vec::new(); classes.len()];
    for (label, class) in classes.iter().enumerate() {
        // Checked before and after reading it: a folder renamed meanwhile
        // leaves a class short, never another class's images under its name.
        let still_there = || is_there(dir, class);
        still_there()?;
        let mut files: Vec<PathBuf> = read_class(dir, class)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for file in files {
            stop.check()?;
            if let Some(why) = not_an_image_file(&file) {
                skipped.push((file, why.to_string()));
                continue;
            }
            match decode(&file, decoding) {
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
        hidden: hidden_folders(dir),
    })
}

/// The hidden sub-folders of `dir` (`.name/`), sorted.
fn hidden_folders(dir: &Path) -> Vec<PathBuf> {
    let mut hidden: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.') && e.path().is_dir())
        .map(|e| e.path())
        .collect();
    hidden.sort();
    hidden
}

/// Files of each of the sub-folders `classes` of `dir` that a scan would
/// try to decode (not hidden, not links to nothing, not folders or FIFOs):
/// the folder's size, known without decoding it.
pub fn candidate_counts(dir: &Path, classes: &[String]) -> anyhow::Result<Vec<usize>> {
    classes
        .iter()
        .map(|class| {
            Ok(read_class(dir, class)?
                .filter_map(|e| e.ok())
                .filter(|e| not_an_image_file(&e.path()).is_none())
                .count())
        })
        .collect()
}

/// The entries of the class folder `class` of `dir`; one renamed or
/// removed since the classes were listed is said to be so.
fn read_class(dir: &Path, class: &str) -> anyhow::Result<std::fs::ReadDir> {
    let folder = dir.join(class);
    match std::fs::read_dir(&folder) {
        Ok(entries) => Ok(entries),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(gone(dir, class)),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", folder.display())),
    }
}

/// Fails, saying it is gone, when the class folder `class` of `dir` is no
/// longer there (renamed or removed since the class list was read).
fn is_there(dir: &Path, class: &str) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(dir.join(class)).is_ok_and(|m| m.is_dir()) {
        true => Ok(()),
        false => Err(gone(dir, class)),
    }
}

/// The class folder `class` of `dir` is not there any more.
fn gone(dir: &Path, class: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--data {}: the class folder {class:?} is not there any more (renamed or removed \
         since its classes were listed); put it back, or start again",
        dir.display()
    )
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

/// Whether `file` is named as a PNG or JPEG image.
fn has_image_extension(file: &Path) -> bool {
    let extension = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    ["png", "jpg", "jpeg"].contains(&extension.as_str())
}

/// One image as `decoding` says (its channel planes), or why it cannot be used.
fn decode(file: &Path, decoding: Decoding) -> Result<Vec<u8>, String> {
    if !has_image_extension(file) {
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
    let shape = decoding.shape;
    let small = square.resize_exact(shape.side as u32, shape.side as u32, FilterType::Lanczos3);
    let rgb = on_background(&small.into_rgba8(), decoding.background);
    let pixels = match shape.channels {
        1 => image::DynamicImage::ImageRgb8(rgb).into_luma8().into_raw(),
        _ => planes(&rgb),
    };
    debug_assert_eq!(pixels.len(), shape.len());
    Ok(pixels)
}

/// `image` composited on `background` where it is (partly) transparent.
fn on_background(image: &image::RgbaImage, background: Background) -> image::RgbImage {
    let (w, h) = image.dimensions();
    image::RgbImage::from_fn(w, h, |x, y| {
        let [r, g, b, a] = image.get_pixel(x, y).0;
        let over = |c: u8, under: u8| {
            let alpha = u32::from(a);
            ((u32::from(c) * alpha + u32::from(under) * (255 - alpha) + 127) / 255) as u8
        };
        let [br, bg, bb] = background.0;
        image::Rgb([over(r, br), over(g, bg), over(b, bb)])
    })
}

/// An RGB image's channel planes: [3, side, side].
fn planes(rgb: &image::RgbImage) -> Vec<u8> {
    let raw = rgb.as_raw();
    (0..3)
        .flat_map(|c| raw.iter().skip(c).step_by(3).copied())
        .collect()
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
                crate::sample::image::write_png(&path, 28, 28, 1, &[i as u8 * 50; 784]).unwrap();
            }
        }
        let scan = scan(dir.path(), Decoding::default()).unwrap();
        assert_eq!(scan.classes, ["a", "b", "c"]);
        assert_eq!(scan.counts, [3, 1, 2]);
        assert_eq!(scan.data.labels, [0, 1, 2, 0, 2, 0]);
        assert_eq!(scan.data.images.len(), 6 * 784);
    }

    #[test]
    fn colour_images_keep_their_colour_on_the_background_given() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["red", "clear"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
        }
        // 40x40 RGBA: opaque red, and fully transparent.
        let save = |class: &str, rgba: [u8; 4]| {
            let image = image::RgbaImage::from_pixel(40, 40, image::Rgba(rgba));
            image
                .save(dir.path().join(format!("{class}/a.png")))
                .unwrap();
        };
        save("red", [200, 10, 20, 255]);
        save("clear", [0, 0, 0, 0]);
        let classes = class_names(dir.path()).unwrap();
        assert_eq!(channels_of(dir.path(), &classes).unwrap(), 3);
        let decoding = Decoding {
            shape: ImageShape::new(3, 32).unwrap(),
            background: "#102030".parse().unwrap(),
        };
        let scan = scan_classes(dir.path(), &classes, decoding, Stop::NEVER).unwrap();
        let (clear, red) = (scan.data.image(0), scan.data.image(1));
        assert_eq!(clear.len(), 3 * 32 * 32);
        // Channel planes: red's first plane is all 200, its last all 20.
        assert!(red[..1024].iter().all(|&v| v == 200));
        assert!(red[2048..].iter().all(|&v| v == 20));
        assert_eq!([clear[0], clear[1024], clear[2048]], [0x10, 0x20, 0x30]);
        // Grey: the background's luma where it is transparent.
        let grey = Decoding {
            shape: ImageShape::new(1, 28).unwrap(),
            background: Background::default(),
        };
        let scan = scan_classes(dir.path(), &classes, grey, Stop::NEVER).unwrap();
        assert!(scan.data.image(0).iter().all(|&v| v == 255));
        assert!("12345".parse::<Background>().is_err());
        assert!("gg0000".parse::<Background>().is_err());
        assert_eq!(Background([1, 2, 255]).to_string(), "0102ff");
    }
}
