//! `cdcgan eval` and `cdcgan classifier train`: scoring digits, and the
//! evaluator behind it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use clap::{Args, Subcommand, ValueEnum};

use super::sample::NoiseArgs;
use crate::arch::ImageShape;
use crate::data::{Dataset, DatasetKind};
use crate::eval::cas::{classification_accuracy_score_on, default_ceiling_cache};
use crate::eval::report::Report;
use crate::interrupt::Stop;
use crate::run::RunDir;
use crate::sample::Sampler;
use crate::train::TrainConfig;

/// The most samples `eval` scores (`--count`, or an `--images` file).
const MAX_SAMPLES: usize = 100_000;

/// Arguments of `cdcgan eval`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// A run directory: generates --count samples from its generator.
    #[arg(long, conflicts_with_all = ["images", "labels"], required_unless_present = "images")]
    pub run: Option<PathBuf>,
    /// An IDX image file of labelled samples (e.g. from `export` or another
    /// tool), or a folder of samples of an image folder's classes (one
    /// sub-folder per class, named as --data's), scored against --data.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// The IDX label file matching an IDX --images.
    #[arg(long, requires = "images")]
    pub labels: Option<PathBuf>,
    /// Samples to generate from --run, their classes drawn as --class-mix says.
    #[arg(long, default_value_t = 10_000, conflicts_with = "images")]
    pub count: usize,
    /// The classes of the samples drawn from --run (and for --cas).
    #[arg(long, value_enum, default_value_t = ClassMix::Data, conflicts_with = "images")]
    pub class_mix: ClassMix,
    /// Seed for the generated noise and the real-digit ceiling draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Data set of --images (a --run is scored on its own).
    #[arg(long, value_enum, default_value = "mnist", conflicts_with = "run")]
    pub dataset: DatasetKind,
    /// Directory with the data set's IDX files.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Evaluator weights (default: models/DATASET-classifier.safetensors).
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also the classification accuracy score: a classifier trained only on
    /// --cas-samples samples (fresh noise; with --images, that set), tested on
    /// the real test set, beside one trained on as many real digits (slow:
    /// about 5 minutes for 60,000 on 2 cores).
    #[arg(long)]
    pub cas: bool,
    /// Samples from --run the CAS classifier trains on, in --class-mix
    /// [default: 60,000; for an image folder, as many as the evaluator's
    /// training split holds].
    #[arg(long, requires = "cas", conflicts_with = "images")]
    pub cas_samples: Option<usize>,
    /// How the --run's generator draws its noise.
    #[command(flatten)]
    pub noise: NoiseArgs,
}

/// The classes of the samples `eval --run` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClassMix {
    /// In the proportions of the real test split the figures compare with
    /// (and of the real images of the ceiling row): like with like.
    Data,
    /// An equal share per class, as `export` writes them (how `eval` drew
    /// until 2026-12-08; on an uneven folder it scores the mix as much as
    /// the images).
    Even,
}

/// The subcommands of `cdcgan classifier`.
#[derive(Debug, Subcommand)]
pub enum ClassifierCommand {
    /// Train the evaluator classifier and save it (default: models/DATASET-classifier.safetensors).
    Train(ClassifierTrainArgs),
}

/// Arguments of `cdcgan classifier train`.
#[derive(Debug, Args)]
pub struct ClassifierTrainArgs {
    /// Data set to train and test the classifier on.
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: DatasetKind,
    /// Directory with the four IDX files, or an image folder (one
    /// sub-folder per class; every tenth image of each class is held out
    /// for the test accuracy).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// An image folder's image shape and background (as `train`'s).
    #[command(flatten)]
    pub image: super::train_flags::ImageFlags,
    /// Passes over the training set (1 to 100; the learning rate halves after each).
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Seed for the initial weights, the shuffling and the shift augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train on the first N training images only (a quick try; the whole
    /// test split still scores it).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Output file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    ensure!(
        (20..=MAX_SAMPLES).contains(&args.count),
        "--count must be in 20..=100000 (got {})",
        args.count
    );
    if let Some(n) = args.cas_samples {
        ensure!(
            (100..=100_000).contains(&n),
            "--cas-samples must be in 100..=100000 (got {n})"
        );
    }
    ensure!(
        args.run.is_some() || args.noise.noise_scale.is_none(),
        "--noise-scale applies to eval --run only: it draws the run's samples, and --images are already drawn"
    );
    let (report, save_to) = if let Some(dir) = &args.run {
        let run = RunDir::new(dir);
        run.ensure_trained()?;
        let config = TrainConfig::load(&run.config())?;
        let data_dir = args.data.clone().or(config.data_dir.clone());
        let evaluator = crate::eval::Evaluator::new(
            config.dataset,
            data_dir.as_deref(),
            args.classifier.as_deref(),
        )?;
        let sampler = args
            .noise
            .apply(Sampler::load(&run.sampling_generator())?)?;
        check_run_fits(&config, &sampler, &evaluator, data_dir.as_deref())?;
        let draw = |count, seed| {
            let labels = match args.class_mix {
                ClassMix::Data => evaluator.class_mix(count),
                ClassMix::Even => sampler.balanced_labels(count),
            };
            sampler.samples_until(labels, seed, Stop::NEVER)
        };
        let (images, labels) = draw(args.count, args.seed)?;
        let mut report = evaluator.report(&images, &labels, args.seed)?;
        report.noise_scale = sampler.widened_noise_scale();
        if args.cas {
            // Fresh noise: the seed after --seed's.
            let (train, test) = evaluator.splits()?;
            let count = cas_samples(&args, &train, config.dataset);
            let (images, labels) = draw(count, args.seed + 1)?;
            let samples = (&images[..], &labels[..]);
            let splits = (&train, &test);
            add_cas(&mut report, samples, splits, config.dataset, args.seed)?;
        }
        (report, Some(run.root.join("eval.json")))
    } else if let Some(samples) = args
        .images
        .as_deref()
        .filter(|dir| crate::data::folder::is_image_folder(dir))
    {
        (folder_samples_report(&args, samples)?, None)
    } else {
        (idx_samples_report(&args)?, None)
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = save_to.filter(|path| keeps_no_larger_report(path, &report)) {
        crate::store::write_atomic(&path, json.as_bytes())?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The report of the samples in an IDX file pair (`--images`, `--labels`)
/// of MNIST or Fashion-MNIST.
fn idx_samples_report(args: &EvalArgs) -> anyhow::Result<Report> {
    let (Some(images), Some(labels)) = (&args.images, &args.labels) else {
        bail!(
            "give --run DIR, --images IDX with --labels IDX, or --images DIR of an image \
             folder's samples"
        );
    };
    ensure!(
        args.dataset != DatasetKind::Folder,
        "an image folder's samples are scored from a folder (one sub-folder per class): \
             --images DIR --data FOLDER --classifier FILE"
    );
    let data = crate::data::Dataset::from_files_at_most(
        images,
        labels,
        args.dataset.num_classes(),
        MAX_SAMPLES as u32,
    )?;
    ensure!(
        data.shape == ImageShape::MNIST,
        "{}: images are {}x{} of {} channels, the evaluator takes 28x28 grey",
        images.display(),
        data.shape.side,
        data.shape.side,
        data.shape.channels
    );
    let least = crate::eval::minimum::samples(args.dataset.num_classes());
    ensure!(
        data.len() >= least,
        "--images {}: {} samples; scoring needs at least {least}",
        images.display(),
        data.len()
    );
    let evaluator = crate::eval::Evaluator::new(
        args.dataset,
        args.data.as_deref(),
        args.classifier.as_deref(),
    )?;
    let mut report = evaluator.report(&data.images, &data.labels, args.seed)?;
    if args.cas {
        let dataset = args.dataset;
        let samples = (&data.images[..], &data.labels[..]);
        let (train, test) = evaluator.splits()?;
        add_cas(&mut report, samples, (&train, &test), dataset, args.seed)?;
    }
    Ok(report)
}

/// The report of a folder of samples of the image folder `--data`'s classes
/// (one sub-folder per class, by name; as another tool writes them), decoded
/// at the evaluator's shape and scored against `--data`'s held-out images.
fn folder_samples_report(args: &EvalArgs, samples: &Path) -> anyhow::Result<Report> {
    ensure!(
        args.labels.is_none(),
        "--images {}: a folder's sub-folders are its labels; give no --labels",
        samples.display()
    );
    let Some(real) = args.data.as_deref() else {
        bail!(
            "--images {}: give --data DIR, the image folder the samples are of",
            samples.display()
        );
    };
    let evaluator =
        crate::eval::Evaluator::new(DatasetKind::Folder, Some(real), args.classifier.as_deref())?;
    let classes = crate::data::folder::class_names(real)?;
    let theirs = crate::data::folder::class_names(samples)?;
    ensure!(
        theirs == classes,
        "--images {}: its classes {theirs:?} are not --data {}'s {classes:?}",
        samples.display(),
        real.display()
    );
    let decoding = crate::data::folder::Decoding {
        shape: evaluator.image(),
        background: Default::default(),
    };
    refuse_other_sides(samples, &classes, decoding.shape.side)?;
    let stop = Stop::NEVER;
    let scan = crate::data::folder::scan_classes(samples, &classes, decoding, stop)?;
    for (file, why) in &scan.skipped {
        tracing::warn!("{}: not scored: {why}", file.display());
    }
    let data = scan.data;
    let least = crate::eval::minimum::samples(classes.len());
    ensure!(
        (least..=MAX_SAMPLES).contains(&data.len()),
        "--images {}: {} samples; scoring needs {least} to {MAX_SAMPLES}",
        samples.display(),
        data.len()
    );
    let mut report = evaluator.report(&data.images, &data.labels, args.seed)?;
    if args.cas {
        let samples = (&data.images[..], &data.labels[..]);
        let (train, test) = evaluator.splits()?;
        let folder = DatasetKind::Folder;
        add_cas(&mut report, samples, (&train, &test), folder, args.seed)?;
    }
    Ok(report)
}

/// Refuses samples whose first image (of the first class) is not `side`
/// pixels square: decoding would resize them, and they would be scored as
/// images they are not.
fn refuse_other_sides(samples: &Path, classes: &[String], side: usize) -> anyhow::Result<()> {
    let class = samples.join(&classes[0]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&class)
        .with_context(|| format!("{}: cannot list", class.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.is_file())
        .collect();
    files.sort();
    let first = files
        .iter()
        .find_map(|f| Some((f, image::image_dimensions(f).ok()?)));
    if let Some((file, (w, h))) = first {
        ensure!(
            (w as usize, h as usize) == (side, side),
            "{}: {w}x{h} pixels; the evaluator scores {side}x{side} images (train one for \
             these: `cdcgan classifier train --data DIR --image-size {w}`)",
            file.display()
        );
    }
    Ok(())
}

/// Whether `report` may replace the run's eval.json at `path`: never one
/// scored on more samples (the training's own is of 10,000; a quick
/// `eval --count 50` is printed, not kept in its place).
fn keeps_no_larger_report(path: &Path, report: &Report) -> bool {
    let kept = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Report>(&text).ok())
        .map(|old| old.generated.samples);
    match kept {
        Some(n) if n > report.generated.samples => {
            tracing::info!(
                "{} keeps its evaluation of {n} samples; this one of {} is not saved",
                path.display(),
                report.generated.samples
            );
            false
        }
        _ => true,
    }
}

/// Refuses to score a run with an evaluator of other images or, for an
/// image folder, other classes.
fn check_run_fits(
    config: &TrainConfig,
    sampler: &Sampler,
    evaluator: &crate::eval::Evaluator,
    data_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let (run, scored) = (sampler.image(), evaluator.image());
    ensure!(
        run == scored,
        "the run draws {}x{} images of {} channels; the evaluator scores {}x{} of {} \
         (train one for the run's images: {})",
        run.side,
        run.side,
        run.channels,
        scored.side,
        scored.side,
        scored.channels,
        crate::eval::fit::command_for(run)
    );
    if let (DatasetKind::Folder, Some(dir)) = (config.dataset, data_dir) {
        let here = crate::data::folder::class_names(dir)?;
        ensure!(
            config.classes() == here,
            "the run's classes {:?} are not --data {}'s {here:?}",
            config.classes(),
            dir.display()
        );
    }
    Ok(())
}

/// How many samples the CAS classifier trains on: `--cas-samples`, else
/// 60,000 (MNIST's training set), or for an image folder as many as the
/// evaluator's training split `train` holds, so both classifiers learn from
/// sets of about one size (and at 64 px it takes minutes, not a quarter hour).
fn cas_samples(args: &EvalArgs, train: &Dataset, dataset: DatasetKind) -> usize {
    match (args.cas_samples, dataset) {
        (Some(n), _) => n,
        (None, DatasetKind::Folder) => train.len().clamp(100, 100_000),
        (None, _) => 60_000,
    }
}

/// The classification accuracy score of `images`/`labels` in `report`
/// against the evaluator's (training, test) `splits`, or the reason it
/// cannot be measured on them.
fn add_cas(
    report: &mut Report,
    (images, labels): (&[u8], &[u8]),
    splits: (&Dataset, &Dataset),
    dataset: DatasetKind,
    seed: u64,
) -> anyhow::Result<()> {
    if let Some(reason) = crate::eval::cas::unmeasured(splits.0, labels) {
        report.not_measured.insert("cas".to_string(), reason);
        return Ok(());
    }
    let cache = default_ceiling_cache();
    let cas =
        classification_accuracy_score_on(images, labels, splits, dataset, seed, cache.as_deref())?;
    report.cas = Some(cas);
    Ok(())
}

pub fn run_classifier_train(args: ClassifierTrainArgs) -> anyhow::Result<()> {
    let folder = args
        .data
        .as_deref()
        .filter(|dir| crate::data::folder::is_image_folder(dir));
    let dataset = match folder {
        Some(_) => DatasetKind::Folder,
        None => args.dataset,
    };
    ensure!(
        (1..=100).contains(&args.epochs),
        "--epochs must be in 1..=100 (got {})",
        args.epochs
    );
    ensure!(
        args.limit.is_none_or(|n| n >= 100),
        "--limit must be at least 100 (one batch)"
    );
    let decoding = args.image.decoding(folder)?.unwrap_or_default();
    // Never the evaluator shipped with the source: the default is ./models/.
    let out = match (&args.out, folder) {
        (Some(out), _) => out.clone(),
        (None, Some(dir)) => bail!(
            "--data {}: give --out FILE for the folder's evaluator",
            dir.display()
        ),
        (None, None) => PathBuf::from(format!("models/{}-classifier.safetensors", dataset.name())),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    crate::output::check(&out, "--out", crate::output::Kind::Evaluator)?;
    let config = crate::eval::fit::FitConfig {
        dataset,
        data_dir: args.data.clone(),
        epochs: args.epochs,
        seed: args.seed,
        limit: args.limit,
        decoding,
        ..Default::default()
    };
    let split = match dataset {
        DatasetKind::Folder => "held-out",
        _ => "test",
    };
    let started = std::time::Instant::now();
    let acc = crate::eval::fit::fit_and_save(&config, &out, |epoch, acc| {
        eprintln!(
            "epoch {epoch}/{}: {split} accuracy {:.2}% ({:.0} s)",
            config.epochs,
            acc * 100.0,
            started.elapsed().as_secs_f64()
        )
    })?;
    eprintln!(
        "saved {} ({split} accuracy {:.2}%)",
        out.display(),
        acc * 100.0
    );
    Ok(())
}
