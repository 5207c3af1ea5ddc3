//! `cdcgan generate | export | morph | gif`: drawing from a trained generator.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use clap::Args;

use crate::arch::ImageShape;
use crate::data::idx::encode;
use crate::output::{self, Kind};
use crate::run::RunDir;
use crate::sample::image::{encode_png, interleave};
use crate::sample::{Sampler, image::write_grid, parse_digits};

/// Which generator to sample from.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Source {
    /// A run directory (uses its checkpoint/generator.safetensors).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// A generator.safetensors file.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
}

impl Source {
    /// The generator file: the run's (its EMA when it has one) or --checkpoint.
    fn file(&self) -> anyhow::Result<PathBuf> {
        match (&self.run, &self.checkpoint) {
            (Some(run), _) => {
                let run = RunDir::new(run);
                run.ensure_trained()?;
                Ok(run.sampling_generator())
            }
            (None, Some(file)) => {
                ensure!(
                    !file.is_dir(),
                    "--checkpoint {}: is a folder; give a generator file (e.g. \
                     RUN/checkpoint/generator.safetensors), or the run with --run",
                    file.display()
                );
                ensure!(
                    file.is_file(),
                    "--checkpoint {}: no such file",
                    file.display()
                );
                Ok(file.clone())
            }
            (None, None) => bail!("give --run DIR or --checkpoint FILE"),
        }
    }

    fn load(&self) -> anyhow::Result<Sampler> {
        Sampler::load(&self.file()?)
    }
}

/// How the noise z is drawn.
#[derive(Debug, Args)]
pub struct NoiseArgs {
    /// Standard deviation of the noise, as a multiple of the noise G was
    /// trained on (1): above 1 the digits vary more and more of them are
    /// malformed or read as another class; below 1 the reverse [default: the
    /// run's, from train's --sample-noise-scale].
    #[arg(long, allow_hyphen_values = true)]
    pub noise_scale: Option<f32>,
}

impl NoiseArgs {
    /// `sampler` drawing this noise (the file's scale when none was given).
    pub fn apply(&self, sampler: Sampler) -> anyhow::Result<Sampler> {
        match self.noise_scale {
            Some(scale) => sampler.with_noise_scale(scale),
            None => Ok(sampler),
        }
    }
}

/// Arguments of `cdcgan generate`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct GenerateArgs {
    /// The generator to sample from (--run or --checkpoint).
    #[command(flatten)]
    pub source: Source,
    /// Write these digits in one row, e.g. 2026.
    #[arg(long, group = "what")]
    pub digits: Option<String>,
    /// Write the 10x10 class grid: row r holds class r.
    #[arg(long, group = "what")]
    pub grid: bool,
    /// Write --count samples of this class: its name (an image folder's
    /// sub-folder, e.g. cat) or its index.
    #[arg(long, group = "what", requires = "count")]
    pub label: Option<String>,
    /// How many samples of --label (shown 10 per row).
    #[arg(long)]
    pub count: Option<usize>,
    /// Seed for the noise (same seed, same handwriting).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How the noise is drawn.
    #[command(flatten)]
    pub noise: NoiseArgs,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `cdcgan export`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct ExportArgs {
    /// The generator to sample from (--run or --checkpoint).
    #[command(flatten)]
    pub source: Source,
    /// Number of samples (an equal share per class).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Seed for the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How the noise is drawn.
    #[command(flatten)]
    pub noise: NoiseArgs,
    /// Output directory for the IDX files (or the PNG folders).
    #[arg(long, required_unless_present = "onnx")]
    pub out: Option<PathBuf>,
    /// What --out holds: IDX files, or one folder of PNGs per class (the
    /// ImageFolder layout torchvision reads).
    #[arg(long, value_enum, default_value_t = ExportFormat::Idx)]
    pub format: ExportFormat,
    /// Write the generator as an ONNX file instead (opset 17: inputs z
    /// float32 (N, 100) and label int64 (N), output images (N, C, S, S):
    /// (N, 1, 28, 28) for digits).
    #[arg(long, conflicts_with_all = ["out", "count", "seed", "noise_scale", "format"])]
    pub onnx: Option<PathBuf>,
}

/// The layout of an `export --out` folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// images-idx3-ubyte (or -idx4- in colour), labels-idx1-ubyte, classes.txt.
    Idx,
    /// CLASS/00000.png, ... (ImageFolder), and classes.txt.
    Png,
}

/// Arguments of `cdcgan morph`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct MorphArgs {
    /// The generator to sample from (--run or --checkpoint).
    #[command(flatten)]
    pub source: Source,
    /// Class to start from, a name or an index (with --latent: the class
    /// kept) [default: 3, or the first class where there are fewer than 9].
    #[arg(long)]
    pub from: Option<String>,
    /// Class to end at, a name or an index (not with --latent, which keeps
    /// --from) [default: 8, or the last class where there are fewer than 9].
    #[arg(long, conflicts_with = "latent")]
    pub to: Option<String>,
    /// Keep the class and walk the noise from --seed's vector to the next seed's (spherically).
    #[arg(long)]
    pub latent: bool,
    /// Number of images.
    #[arg(long, default_value_t = 16)]
    pub steps: usize,
    /// Seed for the noise (with --latent, the walk starts at this seed's vector).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How the noise is drawn.
    #[command(flatten)]
    pub noise: NoiseArgs,
    /// Output: .gif for an animation, anything else for a PNG strip.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `cdcgan gif`.
#[derive(Debug, Args)]
pub struct GifArgs {
    /// The run directory.
    #[arg(long)]
    pub run: PathBuf,
}

/// The longest `generate --digits` string.
const MAX_DIGITS: usize = 1000;

pub fn run_generate(args: GenerateArgs) -> anyhow::Result<()> {
    // clap's `requires` cannot say it: --label already requires --count.
    ensure!(
        args.count.is_none() || args.label.is_some(),
        "--count sizes the samples of --label; with --grid or --digits it is unused: leave it out"
    );
    output::check(&args.out, "--out", Kind::Png)?;
    let sampler = args.noise.apply(args.source.load()?)?;
    let names = sampler.class_names();
    let (images, rows, cols, drawn) = if let Some(text) = &args.digits {
        let labels = parse_digits(text, names, MAX_DIGITS, "--digits")?;
        let drawn: Vec<&str> = labels.iter().map(|&l| names[l as usize].as_str()).collect();
        let drawn = format!("classes {}", drawn.join(" "));
        (sampler.digits(&labels, args.seed)?, 1, labels.len(), drawn)
    } else if args.grid {
        let (rows, columns) = sampler.grid_shape();
        let drawn = format!("the class grid, {rows} classes");
        (sampler.seeded_grid(args.seed)?, rows, columns, drawn)
    } else if let Some(label) = &args.label {
        let label = sampler.resolve_class(label, "--label")?;
        let count = args.count.unwrap_or(10);
        ensure!(
            (1..=10_000).contains(&count),
            "--count must be in 1..=10000 (got {count})"
        );
        let z = sampler.noise(args.seed, 0, count);
        let drawn = format!("class {:?} (index {label})", names[label as usize]);
        let images = sampler.images(&z, &vec![label; count])?;
        (images, count.div_ceil(10), count.min(10), drawn)
    } else {
        bail!("say what to write: --digits 2026, --grid, or --label L --count N");
    };
    write_grid(&args.out, &images, sampler.image(), rows, cols)?;
    eprintln!(
        "wrote {} ({} images: {drawn})",
        args.out.display(),
        images.len() / sampler.image().len()
    );
    Ok(())
}

/// The files of an `export --out` folder (grey images are [N, side, side],
/// colour ones [N, channels, side, side]), and the marker that says cdcgan
/// wrote them.
const EXPORT_FILES: [&str; 4] = [
    "images-idx3-ubyte",
    "labels-idx1-ubyte",
    "classes.txt",
    "images-idx4-ubyte",
];
const EXPORT_MARKER: &str = "export.json";

pub fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.onnx {
        return export_onnx(&args.source, path);
    }
    let Some(out) = &args.out else {
        bail!("give --out DIR (IDX files) or --onnx FILE");
    };
    ensure!(
        (1..=1_000_000).contains(&args.count),
        "--count must be in 1..=1000000 (got {})",
        args.count
    );
    output::check_export_dir(out, EXPORT_MARKER, &EXPORT_FILES, &[])?;
    let sampler = args.noise.apply(args.source.load()?)?;
    let folders = class_folders(sampler.class_names());
    let new_folders = match args.format {
        ExportFormat::Idx => Vec::new(),
        ExportFormat::Png => folders.iter().map(String::as_str).collect(),
    };
    output::check_export_dir(out, EXPORT_MARKER, &EXPORT_FILES, &new_folders)?;
    let classes = sampler.num_classes();
    if args.count < classes {
        tracing::warn!(
            "--count {} is below the {classes} classes: classes {}..={} get no samples",
            args.count,
            args.count,
            classes - 1
        );
    }
    let started = std::time::Instant::now();
    let (images, labels) = sampler.balanced_samples(args.count, args.seed)?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create", out.display()))?;
    // One export at a time into a folder: a second waits, then replaces the whole set.
    let lock = std::fs::File::create(out.join(".export.lock"))
        .and_then(|file| file.lock().map(|()| file))
        .with_context(|| format!("--out {}: cannot lock the folder", out.display()))?;
    output::check_export_dir(out, EXPORT_MARKER, &EXPORT_FILES, &new_folders)?;
    remove_earlier_export(out)?;
    let marker = serde_json::json!({
        "cdcgan_version": env!("CARGO_PKG_VERSION"),
        "count": args.count,
        "seed": args.seed,
        "noise_scale": sampler.noise_scale(),
        "format": format!("{:?}", args.format).to_lowercase(),
        "folders": new_folders,
    });
    crate::store::write_atomic(&out.join(EXPORT_MARKER), marker.to_string().as_bytes())?;
    match args.format {
        ExportFormat::Idx => write_idx_set(out, sampler.image(), &images, &labels)?,
        ExportFormat::Png => write_png_set(out, sampler.image(), &images, &labels, &folders)?,
    }
    let names = sampler.class_names().join("\n") + "\n";
    crate::store::write_atomic(&out.join(EXPORT_FILES[2]), names.as_bytes())?;
    drop(lock);
    eprintln!(
        "wrote {} labelled samples to {} ({:.0} images/s)",
        args.count,
        out.display(),
        args.count as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// The folder name of each class in a PNG export: its name, with path
/// separators as dashes (`T-shirt/top` is `T-shirt-top`); `class7` where
/// that leaves no usable name.
fn class_folders(names: &[String]) -> Vec<String> {
    let folder = |(i, name): (usize, &String)| {
        let clean = name.replace(['/', '\\', '\0'], "-");
        match clean.as_str() {
            "" | "." | ".." => format!("class{i}"),
            _ => clean,
        }
    };
    names.iter().enumerate().map(folder).collect()
}

/// Removes the files of the export `out` holds (its marker says which), so
/// the new set replaces the whole earlier one: the IDX files, and the PNGs
/// of each class folder it wrote (a folder left with other files stays).
fn remove_earlier_export(out: &Path) -> anyhow::Result<()> {
    let remove = |path: &Path| match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("--out: cannot remove the earlier {}", path.display()))
        }
        _ => Ok(()),
    };
    for name in [EXPORT_FILES[0], EXPORT_FILES[1], EXPORT_FILES[3]] {
        remove(&out.join(name))?;
    }
    let marker: serde_json::Value = std::fs::read(out.join(EXPORT_MARKER))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let folders = marker["folders"].as_array().cloned().unwrap_or_default();
    for folder in folders.iter().filter_map(|f| f.as_str()) {
        let dir = out.join(folder);
        // Only a real folder of this export (no link out of --out).
        if folder.contains('/') || !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        for entry in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
            if entry.file_name().to_str().is_some_and(output::exported_png) {
                remove(&entry.path())?;
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(())
}

/// The IDX files of an export: [N, side, side] grey, [N, 3, side, side] colour.
fn write_idx_set(
    out: &Path,
    image: ImageShape,
    images: &[u8],
    labels: &[u8],
) -> anyhow::Result<()> {
    let write = |name: &str, dims: &[usize], data: &[u8]| {
        crate::store::write_atomic(&out.join(name), &encode(dims, data)?)
    };
    let n = labels.len();
    let (name, dims) = match image.channels {
        1 => (EXPORT_FILES[0], vec![n, image.side, image.side]),
        c => (EXPORT_FILES[3], vec![n, c, image.side, image.side]),
    };
    write(name, &dims, images)?;
    write(EXPORT_FILES[1], &[n], labels)
}

/// The PNGs of an export, `CLASS/00000.png` on, numbered within each class.
/// Plain writes: the marker, written first, claims the folder, and the
/// next export replaces a set cut short.
fn write_png_set(
    out: &Path,
    image: ImageShape,
    images: &[u8],
    labels: &[u8],
    folders: &[String],
) -> anyhow::Result<()> {
    let mut written = vec![0usize; folders.len()];
    for (pixels, &label) in images.chunks_exact(image.len()).zip(labels) {
        let dir = out.join(&folders[label as usize]);
        if written[label as usize] == 0 {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("--out {}: cannot create", dir.display()))?;
        }
        let path = dir.join(format!("{:05}.png", written[label as usize]));
        let side = image.side;
        let bytes = encode_png(side, side, image.channels, &interleave(pixels, image))?;
        std::fs::write(&path, bytes)
            .with_context(|| format!("--out: cannot write {}", path.display()))?;
        written[label as usize] += 1;
    }
    Ok(())
}

/// `export --onnx`: the generator (the EMA one when the run has one) as ONNX.
fn export_onnx(source: &Source, path: &Path) -> anyhow::Result<()> {
    output::check(path, "--onnx", Kind::Onnx)?;
    let file = source.file()?;
    let sampler = Sampler::load(&file)?;
    let (_, meta) = crate::store::load(&file)?;
    let dataset = meta
        .get("dataset")
        .cloned()
        .unwrap_or_else(|| "mnist".into());
    let info = crate::onnx::OnnxInfo {
        classes: sampler.class_names().to_vec(),
        dataset,
        source: file.display().to_string(),
        noise_scale: sampler.noise_scale(),
    };
    crate::onnx::write_generator(path, sampler.generator(), &info)?;
    eprintln!(
        "wrote {} (ONNX opset {}, from {})",
        path.display(),
        crate::onnx::OPSET,
        file.display()
    );
    Ok(())
}

pub fn run_morph(args: MorphArgs) -> anyhow::Result<()> {
    use crate::sample::animation::{Morph, default_morph, morph_images, write_morph};
    output::check(&args.out, "--out", Kind::image(&args.out))?;
    let sampler = args.noise.apply(args.source.load()?)?;
    let (from, to) = default_morph(sampler.num_classes());
    let class = |given: &Option<String>, default: u8, flag: &str| match given {
        Some(name) => sampler.resolve_class(name, flag),
        None => Ok(default),
    };
    let (from, to) = (
        class(&args.from, from, "--from")?,
        class(&args.to, to, "--to")?,
    );
    let morph = match args.latent {
        true => Morph::Latent { class: from },
        false => Morph::Class { from, to },
    };
    let images = morph_images(&sampler, morph, args.steps, args.seed)?;
    write_morph(&args.out, &images, sampler.image())?;
    eprintln!("wrote {} ({} steps)", args.out.display(), args.steps);
    Ok(())
}

pub fn run_gif(args: GifArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let frames = crate::sample::animation::progress_gif(&run.samples(), &run.progress_gif())?;
    eprintln!(
        "wrote {} ({frames} epoch grids)",
        run.progress_gif().display()
    );
    Ok(())
}
