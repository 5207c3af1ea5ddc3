//! Drawing digits from a trained generator: single digits, digit strings,
//! class grids and labelled exports.

pub mod animation;
pub mod image;

use std::path::Path;

use anyhow::{Context, ensure};
use burn::module::Module;
use burn::tensor::Device;

use crate::arch::ImageShape;
use crate::backend::{inference_device, on_cpu};
use crate::interrupt::Stop;
use crate::model::weights::import;
use crate::model::{Generator, GeneratorConfig, matrix, one_hot_values};
use crate::native::{NativeGenerator, Precision};
use crate::rng::{Purpose, stream};

/// The most rows (classes) a class grid shows.
pub const MAX_GRID_ROWS: usize = 100;
/// The most columns (handwritings) a class grid shows.
pub const MAX_GRID_COLUMNS: usize = 10;

/// How many images one generator forward pass handles.
const BATCH: usize = 500;

/// A generator in inference mode (batch norm uses its running statistics).
#[derive(Debug, Clone)]
pub struct Sampler {
    generator: Generator,
    device: Device,
    /// The same generator through the native kernels (`None` on a GPU device,
    /// where the framework's forward runs).
    native: Option<NativeGenerator>,
    /// The class names, in label order.
    class_names: Vec<String>,
    /// The standard deviation of the noise drawn (1: the training noise's).
    noise_scale: f32,
    /// The images it draws.
    image: ImageShape,
}

/// The widest noise a sampler draws, as a multiple of the training noise's.
pub const MAX_NOISE_SCALE: f32 = 4.0;

/// The generator file's header key for the noise scale its digits are drawn
/// with by default (train's `--sample-noise-scale`; absent: 1).
pub const NOISE_SCALE_KEY: &str = "noise_scale";

/// Checks a noise scale given by `flag`: in (0, [`MAX_NOISE_SCALE`]].
pub fn check_noise_scale(scale: f32, flag: &str) -> anyhow::Result<()> {
    ensure!(
        scale > 0.0 && scale <= MAX_NOISE_SCALE,
        "{flag} must be in (0, {MAX_NOISE_SCALE}] (got {scale}); 1 draws the noise G was trained on"
    );
    Ok(())
}

impl Sampler {
    /// Wraps a (possibly training) generator as an inference copy.
    pub fn from_generator(generator: &Generator) -> Self {
        Self::new(generator.valid())
    }

    /// The same sampler, its native products run in `precision`.
    pub fn in_precision(mut self, precision: Precision) -> anyhow::Result<Self> {
        if let Some(native) = self.native.take() {
            self.native = Some(native.in_precision(precision)?);
        } else if precision != Precision::Fp32 {
            anyhow::bail!("--precision bf16 runs in the native CPU generator only");
        }
        Ok(self)
    }

    fn new(generator: Generator) -> Self {
        let native = on_cpu().then(|| NativeGenerator::new(&generator));
        let class_names = (0..generator.num_classes).map(|c| c.to_string()).collect();
        Self {
            image: generator.config().image(),
            generator,
            device: inference_device(),
            native,
            class_names,
            noise_scale: 1.0,
        }
    }

    /// The same sampler drawing its noise with standard deviation `scale`
    /// (`--noise-scale`): above 1, more varied digits and more of them
    /// wrong or malformed (recall up, precision and accuracy down); below 1,
    /// the reverse (the truncation trick's direction).
    pub fn with_noise_scale(mut self, scale: f32) -> anyhow::Result<Self> {
        check_noise_scale(scale, "--noise-scale")?;
        self.noise_scale = scale;
        Ok(self)
    }

    /// The standard deviation of the noise drawn, as a multiple of the
    /// training noise's.
    pub fn noise_scale(&self) -> f32 {
        self.noise_scale
    }

    /// The noise scale when it is not the training noise's, as reports
    /// record it (`None` for 1).
    pub fn widened_noise_scale(&self) -> Option<f32> {
        (self.noise_scale != 1.0).then_some(self.noise_scale)
    }

    /// The class names, in label order (the file's, else the indices).
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The label of `class`: see [`resolve_class`].
    pub fn resolve_class(&self, class: &str, flag: &str) -> anyhow::Result<u8> {
        resolve_class(&self.class_names, class, flag)
    }

    /// The generator in evaluation mode.
    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    /// Loads `generator.safetensors` (its header carries the architecture).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let (tensors, meta) = crate::store::load(path)?;
        let config = meta.get("config").with_context(|| {
            format!(
                "{}: no generator config in the header; not a cdcgan generator file",
                path.display()
            )
        })?;
        let config: GeneratorConfig = serde_json::from_str(config)
            .map(|mut json| {
                crate::model::upgrade_json(&mut json, Some("generator"));
                json
            })
            .and_then(serde_json::from_value)
            .with_context(|| format!("{}: unreadable generator config", path.display()))?;
        config
            .validate()
            .with_context(|| format!("{}: invalid generator config", path.display()))?;
        let generator = import(config.init(&inference_device()), &tensors).with_context(|| {
            format!(
                "{}: does not fit the generator it describes",
                path.display()
            )
        })?;
        let mut sampler = Self::new(generator);
        // Files written before class names were kept have none: the indices.
        let names: Option<Vec<String>> = meta
            .get("classes")
            .and_then(|json| serde_json::from_str(json).ok());
        if let Some(names) = names.filter(|n| n.len() == sampler.num_classes()) {
            sampler.class_names = names;
        }
        match meta.get(NOISE_SCALE_KEY) {
            Some(scale) => scale
                .parse()
                .map_err(anyhow::Error::from)
                .and_then(|scale| sampler.with_noise_scale(scale))
                .with_context(|| {
                    format!(
                        "{}: bad {NOISE_SCALE_KEY} {scale:?} in the header",
                        path.display()
                    )
                }),
            None => Ok(sampler),
        }
    }

    /// The images it draws: channels and side.
    pub fn image(&self) -> ImageShape {
        self.image
    }

    /// Number of classes the generator is conditioned on.
    pub fn num_classes(&self) -> usize {
        self.generator.num_classes
    }

    /// Length of the generator's noise vector z.
    pub fn latent_dim(&self) -> usize {
        self.generator.latent_dim
    }

    /// `n` noise vectors from the sampling stream of (`seed`, `index`).
    pub fn noise(&self, seed: u64, index: u64, n: usize) -> Vec<f32> {
        let mut rng = stream(seed, Purpose::Sample, index);
        crate::model::init::normal_values(&mut rng, n * self.latent_dim(), 0.0, self.noise_scale)
    }

    /// Generates one image per label, from the matching rows of `z`
    /// (`labels.len() * latent_dim` values). Returns bytes,
    /// [`Sampler::image`]`.len()` per image (channel planes).
    pub fn images(&self, z: &[f32], labels: &[u8]) -> anyhow::Result<Vec<u8>> {
        let latent = self.latent_dim();
        ensure!(
            z.len() == labels.len() * latent,
            "noise does not match the labels"
        );
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= self.num_classes()) {
            anyhow::bail!(
                "label {bad} is out of range: this generator knows classes 0..={}",
                self.num_classes() - 1
            );
        }
        self.images_conditioned(z, &one_hot_values(labels, self.num_classes()))
    }

    /// Generates one image per row of `conditions` (`classes` weights each: a
    /// one-hot row, or a blend of two for morphing between classes).
    pub fn images_conditioned(&self, z: &[f32], conditions: &[f32]) -> anyhow::Result<Vec<u8>> {
        let (latent, classes) = (self.latent_dim(), self.num_classes());
        let n = conditions.len() / classes;
        ensure!(
            z.len() == n * latent && conditions.len() == n * classes,
            "noise does not match the conditions"
        );
        let mut out = Vec::with_capacity(n * self.image.len());
        for (zs, ys) in z
            .chunks(BATCH * latent)
            .zip(conditions.chunks(BATCH * classes))
        {
            let pixels = self.forward(zs, ys);
            // tanh cannot make NaN from finite inputs; finite weights can still
            // overflow before it (a bias of 3e38, a negative running variance).
            let bad = pixels.iter().filter(|v| !v.is_finite()).count();
            ensure!(
                bad == 0,
                "the generator made {bad} non-finite pixels (NaN or inf): its weights are \
                 finite but unusable (a huge bias, or a negative batch-norm variance?); \
                 the file is damaged, or the run diverged"
            );
            out.extend(image::to_u8(&pixels));
        }
        Ok(out)
    }

    /// The generator's outputs in [-1, 1], [n, channels, side, side], for the
    /// rows of `z` and `conditions` (checked by the caller).
    pub fn forward(&self, z: &[f32], conditions: &[f32]) -> Vec<f32> {
        if let Some(native) = &self.native {
            return native.forward(z, conditions);
        }
        let rows = conditions.len() / self.num_classes();
        let z = matrix(z.to_vec(), rows, self.latent_dim(), &self.device);
        let y = matrix(conditions.to_vec(), rows, self.num_classes(), &self.device);
        self.generator
            .forward(z, y)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 images")
    }

    /// The class grid: row r is class r, column c shares noise vector c.
    pub fn class_grid(&self, z_columns: &[f32]) -> anyhow::Result<Vec<u8>> {
        let (rows, columns) = self.grid_shape();
        let latent = self.latent_dim();
        ensure!(
            z_columns.len() == columns * latent,
            "need one noise vector per column"
        );
        let labels: Vec<u8> = (0..rows * columns).map(|i| (i / columns) as u8).collect();
        let z: Vec<f32> = (0..rows).flat_map(|_| z_columns.iter().copied()).collect();
        self.images(&z, &labels)
    }

    /// The class grid's (rows, columns): a row per class (the first
    /// [`MAX_GRID_ROWS`]) and as many columns, at most [`MAX_GRID_COLUMNS`].
    pub fn grid_shape(&self) -> (usize, usize) {
        let classes = self.num_classes();
        (classes.min(MAX_GRID_ROWS), classes.min(MAX_GRID_COLUMNS))
    }

    /// One image per label, a row of handwriting: the noise of `seed`, vector i for label i
    /// (so "2026" and "2027" share their first three digits).
    pub fn digits(&self, labels: &[u8], seed: u64) -> anyhow::Result<Vec<u8>> {
        let z = self.noise(seed, 0, labels.len());
        self.images(&z, labels)
    }

    /// The class grid from the noise of `seed` (one vector per column).
    pub fn seeded_grid(&self, seed: u64) -> anyhow::Result<Vec<u8>> {
        self.class_grid(&self.noise(seed, 0, self.grid_shape().1))
    }

    /// `count` samples with an equal share of each class, from the noise of `seed`:
    /// (images, labels).
    pub fn balanced_samples(&self, count: usize, seed: u64) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        self.samples_until(self.balanced_labels(count), seed, Stop::NEVER)
    }

    /// A sample of each of `labels`, from the noise of `seed`: (images,
    /// labels). A batch at a time, ending with
    /// [`Interrupted`](crate::interrupt::Interrupted) between batches once
    /// `stop` is set; the images are the same as drawn at once.
    pub fn samples_until(
        &self,
        labels: Vec<u8>,
        seed: u64,
        stop: Stop,
    ) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let count = labels.len();
        let z = self.noise(seed, 0, count);
        let mut images = Vec::with_capacity(count * self.image.len());
        for (zs, ls) in z
            .chunks(BATCH * self.latent_dim())
            .zip(labels.chunks(BATCH))
        {
            stop.check()?;
            images.extend(self.images(zs, ls)?);
        }
        Ok((images, labels))
    }

    /// `count` labels with an equal share for each class (the first classes
    /// take the remainder), in class order.
    pub fn balanced_labels(&self, count: usize) -> Vec<u8> {
        let classes = self.num_classes();
        (0..count)
            .map(|i| (i * classes / count.max(1)) as u8)
            .collect()
    }
}

/// Whether some class is named by a number other than its index (an image
/// folder with classes `3`, `5`, `8`): there a number is a name, never an
/// index, or `0` and `3` would both mean the class named 3.
fn numbers_are_names(names: &[String]) -> bool {
    names
        .iter()
        .enumerate()
        .any(|(i, n)| n.parse::<u64>().is_ok() && *n != i.to_string())
}

/// The label of `class` among the classes `names`: a name, or an index
/// written plainly (`2`, not `02`, `+2` or ` 2`) below the number of
/// classes where no class is named by another number; `flag` names where
/// it came from in the error.
pub fn resolve_class(names: &[String], class: &str, flag: &str) -> anyhow::Result<u8> {
    if let Some(at) = names.iter().position(|n| n == class) {
        return Ok(at as u8);
    }
    let (list, last) = (names.join(", "), names.len().saturating_sub(1));
    ensure!(
        !numbers_are_names(names),
        "{flag} {class:?}: not a class; the classes are {list} (numbers name classes here, \
         they are not indices)"
    );
    let plain = !class.is_empty()
        && class.bytes().all(|b| b.is_ascii_digit())
        && (class == "0" || !class.starts_with('0'));
    match class.parse::<usize>() {
        Ok(i) if plain && i <= last => Ok(i as u8),
        Ok(_) if plain => {
            anyhow::bail!(
                "{flag} {class} is out of range: give a class 0..={last} or a name ({list})"
            )
        }
        _ => anyhow::bail!(
            "{flag} {class:?}: not a class; give a name ({list}) or an index 0..={last}"
        ),
    }
}

/// The class indices `0`..`n-1` as names (what a generator without class
/// names has).
pub fn index_names(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

/// Parses a digit string such as "2026" into labels, rejecting anything
/// else. Where the classes (`names`) are single digits, each character is a
/// class name (classes `3`, `5`, `8`: "358"); else it is a class index.
/// `what` names the input in the messages (`--digits`, `text`).
pub fn parse_digits(
    text: &str,
    names: &[String],
    max_len: usize,
    what: &str,
) -> anyhow::Result<Vec<u8>> {
    ensure!(
        !text.is_empty(),
        "{what} is empty: give digits such as 2026"
    );
    let len = text.chars().count();
    ensure!(
        len <= max_len,
        "{what} has {len} characters; at most {max_len}"
    );
    let by_name = names
        .iter()
        .all(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit());
    ensure!(
        by_name || !numbers_are_names(names),
        "{what}: the classes are named by numbers ({}) that digits cannot spell; \
         ask for one class by name instead",
        names.join(", ")
    );
    let alphabet: Vec<char> = match by_name {
        true => names.iter().filter_map(|n| n.chars().next()).collect(),
        false => (0..names.len().min(10))
            .map(|d| char::from(b'0' + d as u8))
            .collect(),
    };
    text.chars()
        .enumerate()
        .map(|(i, c)| match alphabet.iter().position(|&a| a == c) {
            Some(label) => Ok(label as u8),
            None => anyhow::bail!(
                "{what} {text:?}: character {c:?} at position {} is not a digit of a class ({})",
                i + 1,
                alphabet.iter().collect::<String>()
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_strings_are_validated() {
        assert_eq!(
            parse_digits("2026", &index_names(10), 8, "x").unwrap(),
            vec![2, 0, 2, 6]
        );
        let err = parse_digits("12a", &index_names(10), 8, "--digits")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'a'") && err.contains("position 3"), "{err}");
        assert!(err.starts_with("--digits"), "{err}");
        assert!(parse_digits("", &index_names(10), 8, "x").is_err());
        let err = parse_digits("123456789", &index_names(10), 8, "text")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 8"), "{err}");
    }

    #[test]
    fn numbers_that_name_classes_are_never_indices() {
        let names: Vec<String> = ["3", "5", "8"].map(String::from).to_vec();
        assert_eq!(resolve_class(&names, "3", "--label").unwrap(), 0);
        assert_eq!(resolve_class(&names, "8", "--label").unwrap(), 2);
        for other in ["0", "1", "03", "+3", " 3"] {
            let err = resolve_class(&names, other, "--label")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("not a class; the classes are 3, 5, 8"),
                "{other}: {err}"
            );
        }
        assert_eq!(
            parse_digits("358", &names, 8, "--digits").unwrap(),
            vec![0, 1, 2]
        );
        assert!(parse_digits("012", &names, 8, "--digits").is_err());
        let animals: Vec<String> = ["cat", "dog"].map(String::from).to_vec();
        assert_eq!(resolve_class(&animals, "1", "--label").unwrap(), 1);
        for unplain in ["01", "+1", " 1", "1 "] {
            assert!(
                resolve_class(&animals, unplain, "--label").is_err(),
                "{unplain}"
            );
        }
        assert_eq!(resolve_class(&index_names(10), "7", "--from").unwrap(), 7);
        let wide: Vec<String> = ["10", "20"].map(String::from).to_vec();
        assert!(parse_digits("01", &wide, 8, "--digits").is_err());
    }

    #[test]
    fn balanced_labels_split_evenly() {
        let g = GeneratorConfig::new().init(&inference_device());
        let s = Sampler::from_generator(&g);
        let labels = s.balanced_labels(100);
        for class in 0..10u8 {
            assert_eq!(labels.iter().filter(|&&l| l == class).count(), 10);
        }
        assert_eq!(s.balanced_labels(13).len(), 13);
    }

    #[test]
    fn the_noise_scale_widens_the_same_draws() {
        let g = GeneratorConfig::new()
            .with_base_channels(16)
            .init(&inference_device());
        let plain = Sampler::from_generator(&g);
        let wide = plain.clone().with_noise_scale(1.5).unwrap();
        let (z, z_wide) = (plain.noise(4, 0, 20), wide.noise(4, 0, 20));
        for (a, b) in z.iter().zip(&z_wide) {
            assert!((a * 1.5 - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} {b}");
        }
        let (same, _) = plain.balanced_samples(20, 4).unwrap();
        let (changed, _) = wide.balanced_samples(20, 4).unwrap();
        assert_ne!(same, changed, "the scale reaches the images");
        let unit = plain.clone().with_noise_scale(1.0).unwrap();
        assert_eq!(unit.balanced_samples(20, 4).unwrap().0, same);
        for bad in [0.0, -1.0, 4.5, f32::NAN] {
            let err = plain.clone().with_noise_scale(bad).unwrap_err();
            assert!(err.to_string().contains("--noise-scale"), "{err}");
        }
    }
}
