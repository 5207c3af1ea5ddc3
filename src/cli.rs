//! The command line: `cdcgan train | generate | export | eval | serve | ...`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail, ensure};
use clap::{Args, Parser, Subcommand};

use crate::data::DatasetKind;
use crate::data::idx::write_idx;
use crate::model::GanConfig;
use crate::run::RunDir;
use crate::sample::{Sampler, image::write_grid, parse_digits};
use crate::train::preset::Preset;
use crate::train::{self, Ending, TrainConfig};

#[derive(Debug, Parser)]
#[command(
    name = "cdcgan",
    version,
    about = "Train a conditional DCGAN on MNIST-style digits, then write the digits you ask for"
)]
pub struct Cli {
    /// Compute threads (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Where tensors run (cuda and wgpu need the cargo feature of that name; untested here).
    #[arg(long, global = true, value_enum, default_value = "cpu")]
    pub device: crate::backend::DeviceChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a generator (or continue one with --resume).
    Train(TrainArgs),
    /// Write digits from a trained generator to a PNG.
    Generate(GenerateArgs),
    /// Write N labelled samples as IDX files (images-idx3-ubyte, labels-idx1-ubyte).
    Export(ExportArgs),
    /// Rebuild a run's samples/progress.gif from its epoch grids.
    Gif(GifArgs),
    /// Morph between two classes (fixed noise) or two noise vectors (--latent).
    Morph(MorphArgs),
    /// Score generated (or any labelled) digits: accuracy, Frechet distance, precision/recall.
    Eval(EvalArgs),
    /// Measure training and generation throughput (samples/s).
    Bench(BenchArgs),
    /// Serve a web page that writes digits, with a PNG/GIF/JSON API under it.
    Serve(ServeArgs),
    /// The evaluator classifier behind `eval`.
    #[command(subcommand)]
    Classifier(ClassifierCommand),
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// A run directory: generates --count samples from its generator.
    #[arg(long, conflicts_with_all = ["images", "labels"], required_unless_present = "images")]
    pub run: Option<PathBuf>,
    /// An IDX image file of labelled samples (e.g. from `export` or another tool).
    #[arg(long, requires = "labels")]
    pub images: Option<PathBuf>,
    /// The IDX label file matching --images.
    #[arg(long, requires = "images")]
    pub labels: Option<PathBuf>,
    /// Samples to generate, an equal share per class.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Seed for the generated noise and the real-digit ceiling draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Data set of --images (with --run, the run's own).
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: DatasetKind,
    /// Directory with the data set's IDX files.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Evaluator weights (default: models/<dataset>-classifier.safetensors).
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GifArgs {
    /// The run directory.
    #[arg(long)]
    pub run: PathBuf,
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct MorphArgs {
    #[command(flatten)]
    pub source: Source,
    /// Class to start from (with --latent: the class kept).
    #[arg(long, default_value_t = 3)]
    pub from: u8,
    /// Class to end at.
    #[arg(long, default_value_t = 8)]
    pub to: u8,
    /// Keep the class and walk the noise from --seed's vector to the next seed's (spherically).
    #[arg(long)]
    pub latent: bool,
    /// Number of images.
    #[arg(long, default_value_t = 16)]
    pub steps: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output: .gif for an animation, anything else for a PNG strip.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Timed training iterations.
    #[arg(long, default_value_t = 30)]
    pub iters: usize,
    /// Timed generator forwards.
    #[arg(long, default_value_t = 30)]
    pub gen_iters: usize,
    /// Untimed warm-up iterations before each.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Benchmark with D's auxiliary classifier head.
    #[arg(long)]
    pub aux_classifier: bool,
    /// G's width (as `train --g-channels`) [default: 256].
    #[arg(long)]
    pub g_channels: Option<usize>,
    /// D's width (as `train --d-channels`) [default: 128].
    #[arg(long)]
    pub d_channels: Option<usize>,
    /// Time burn's generator forward and autodiff training step instead of
    /// the native ones.
    #[arg(long)]
    pub framework_step: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The run directory whose generator answers (its EMA when it has one).
    #[arg(long)]
    pub run: PathBuf,
    /// Address to listen on (port 0: any free port; printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Generations running at once; further requests wait their turn.
    #[arg(long, default_value_t = 2)]
    pub max_concurrent: usize,
}

#[derive(Debug, Subcommand)]
pub enum ClassifierCommand {
    /// Train the evaluator classifier and save it (default: models/<dataset>-classifier.safetensors).
    Train(ClassifierTrainArgs),
}

#[derive(Debug, Args)]
pub struct ClassifierTrainArgs {
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: DatasetKind,
    /// Directory with the four IDX files.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// The preset every setting not given below starts from: `fast` (measured best
    /// at a 10-minute budget) or `seed` (the original post exactly) [default: fast].
    #[arg(long, value_enum)]
    pub recipe: Option<Preset>,
    /// Data set.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Directory with the four IDX files (default: data/mnist, or
    /// /usr/share/datasets/fashion-mnist for fashion-mnist).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Epochs to train in total [default: 20].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size [default: 25 with --recipe fast, 100 with seed].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate for both networks [default: 0.0004 fast, 0.0002 seed].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Adam beta1 [default: 0.5].
    #[arg(long)]
    pub beta1: Option<f64>,
    /// Adam beta2 [default: 0.999].
    #[arg(long)]
    pub beta2: Option<f64>,
    /// Seed for initialisation, data order and noise [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Train on the first N training images only.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Stop after N iterations in total.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Stop after M minutes of training wall time (then checkpoint and evaluate).
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Also write a checkpoint every N iterations (always: every epoch).
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Write a metrics.csv row every N iterations [default: 50].
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Give D the AC-GAN auxiliary classifier head.
    #[arg(long)]
    pub aux_classifier: bool,
    /// Keep a moving average of G's weights with this decay; generate, export, eval
    /// and serve then use it; 0 for none [default: 0.999 fast, none seed].
    #[arg(long)]
    pub ema: Option<f32>,
    /// Weight of the auxiliary classification loss [default: 1.0].
    #[arg(long)]
    pub aux_weight: Option<f32>,
    /// Adversarial loss [default: bce].
    #[arg(long, value_enum)]
    pub loss: Option<crate::train::recipe::GanLoss>,
    /// One-sided label smoothing: D's target for real digits becomes 1 - S (e.g. 0.1).
    #[arg(long, value_name = "S")]
    pub label_smoothing: Option<f32>,
    /// G's learning rate (two time-scale update rule) [default: --lr].
    #[arg(long)]
    pub lr_g: Option<f64>,
    /// D's learning rate (two time-scale update rule) [default: --lr].
    #[arg(long)]
    pub lr_d: Option<f64>,
    /// Learning-rate schedule over the run (--epochs, --max-steps or --max-minutes) [default: constant].
    #[arg(long, value_enum)]
    pub lr_schedule: Option<crate::train::recipe::LrSchedule>,
    /// G's width: channels of its 7x7 feature map, halved at 14x14 [default: 64 fast, 256 seed].
    #[arg(long)]
    pub g_channels: Option<usize>,
    /// D's width: channels after its first convolution, doubled after the second [default: 32 fast, 128 seed].
    #[arg(long)]
    pub d_channels: Option<usize>,
    /// How D is told the class: label planes, or a projection discriminator [default: planes].
    #[arg(long = "cond", value_enum)]
    pub conditioning: Option<crate::model::discriminator::Conditioning>,
    /// Measure sample quality every N epochs, 0 for never [default: 1].
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Samples per in-training evaluation [default: 2000].
    #[arg(long)]
    pub eval_samples: Option<usize>,
    /// Run directory [default: runs/<UTC timestamp>, linked as runs/latest].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Train with burn's autodiff step instead of the native CPU step
    /// (the same iteration, slower; for comparisons).
    #[arg(long)]
    pub framework_step: bool,
}

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
    fn load(&self) -> anyhow::Result<Sampler> {
        match (&self.run, &self.checkpoint) {
            (Some(run), _) => {
                let run = RunDir::new(run);
                run.ensure_trained()?;
                Sampler::load(&run.sampling_generator())
            }
            (None, Some(file)) => {
                ensure!(
                    file.is_file(),
                    "--checkpoint {}: no such file",
                    file.display()
                );
                Sampler::load(file)
            }
            (None, None) => bail!("give --run DIR or --checkpoint FILE"),
        }
    }
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub source: Source,
    /// Write these digits in one row, e.g. 2026.
    #[arg(long, group = "what")]
    pub digits: Option<String>,
    /// Write the 10x10 class grid: row r holds class r.
    #[arg(long, group = "what")]
    pub grid: bool,
    /// Write --count samples of this class.
    #[arg(long, group = "what", requires = "count")]
    pub label: Option<u8>,
    /// How many samples of --label (shown 10 per row).
    #[arg(long)]
    pub count: Option<usize>,
    /// Seed for the noise (same seed, same handwriting).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: Source,
    /// Number of samples (an equal share per class).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Seed for the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

/// The longest `generate --digits` string.
const MAX_DIGITS: usize = 1000;

/// Parses the command line and runs it.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    crate::backend::set_threads(cli.threads)?;
    crate::backend::select_device(cli.device)?;
    match cli.command {
        Command::Train(args) => run_train(args),
        Command::Generate(args) => run_generate(args),
        Command::Export(args) => run_export(args),
        Command::Gif(args) => {
            let run = RunDir::new(&args.run);
            let frames =
                crate::sample::animation::progress_gif(&run.samples(), &run.progress_gif())?;
            eprintln!("wrote {} ({frames} epochs)", run.progress_gif().display());
            Ok(())
        }
        Command::Morph(args) => run_morph(args),
        Command::Eval(args) => run_eval(args),
        Command::Bench(args) => run_bench(args),
        Command::Serve(args) => run_serve(args),
        Command::Classifier(ClassifierCommand::Train(args)) => run_classifier_train(args),
    }
}

/// The run's config: defaults + flags for a new run, config.json + the
/// flags that may change (length, logging) for a resumed one.
fn train_config(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let mut config = match &args.resume {
        Some(dir) => {
            let fixed = [
                ("--recipe", args.recipe.is_some()),
                ("--dataset", args.dataset.is_some()),
                ("--data", args.data.is_some()),
                ("--batch-size", args.batch_size.is_some()),
                ("--lr", args.lr.is_some()),
                ("--beta1", args.beta1.is_some()),
                ("--beta2", args.beta2.is_some()),
                ("--seed", args.seed.is_some()),
                ("--limit", args.limit.is_some()),
                ("--aux-classifier", args.aux_classifier),
                ("--aux-weight", args.aux_weight.is_some()),
                ("--ema", args.ema.is_some()),
                ("--loss", args.loss.is_some()),
                ("--label-smoothing", args.label_smoothing.is_some()),
                ("--lr-g", args.lr_g.is_some()),
                ("--lr-d", args.lr_d.is_some()),
                ("--lr-schedule", args.lr_schedule.is_some()),
                ("--cond", args.conditioning.is_some()),
                ("--g-channels", args.g_channels.is_some()),
                ("--d-channels", args.d_channels.is_some()),
            ];
            if let Some((flag, _)) = fixed.iter().find(|(_, given)| *given) {
                bail!(
                    "{flag} cannot change when resuming: a resumed run keeps the settings in {}",
                    RunDir::new(dir).config().display()
                );
            }
            let run = RunDir::new(dir);
            ensure!(
                run.train_state().is_file(),
                "--resume {}: no checkpoint/train_state.safetensors there; nothing to resume",
                dir.display()
            );
            let config = TrainConfig::load(&run.config())?;
            let relength = [
                ("--epochs", args.epochs.is_some()),
                ("--max-steps", args.max_steps.is_some()),
                ("--max-minutes", args.max_minutes.is_some()),
            ];
            if config.recipe.lr_schedule != crate::train::recipe::LrSchedule::Constant {
                if let Some((flag, _)) = relength.iter().find(|(_, given)| *given) {
                    bail!(
                        "{flag} cannot change when resuming a run with a learning-rate schedule: \
                         the schedule decays over the length fixed when the run started"
                    );
                }
            }
            config
        }
        None => {
            let mut c = args.recipe.unwrap_or_default().config();
            if let Some(d) = args.dataset {
                c.dataset = d;
            }
            c.data_dir = args.data.clone();
            c.batch_size = args.batch_size.unwrap_or(c.batch_size);
            c.adam.lr = args.lr.unwrap_or(c.adam.lr);
            c.adam.beta1 = args.beta1.unwrap_or(c.adam.beta1);
            c.adam.beta2 = args.beta2.unwrap_or(c.adam.beta2);
            c.seed = args.seed.unwrap_or(c.seed);
            c.limit = args.limit;
            c.aux_weight = args.aux_weight.unwrap_or(c.aux_weight);
            // --ema 0 turns the preset's average off.
            c.ema = args.ema.map_or(c.ema, |d| (d != 0.0).then_some(d));
            // The architecture again for the data set's classes, keeping the preset's choices.
            let (g, d) = (&c.model.generator, &c.model.discriminator);
            let conditioning = args.conditioning.or(d.conditioning);
            c.model = GanConfig::seed_architecture(
                c.dataset.num_classes(),
                args.aux_classifier || d.aux_classifier,
            )
            .with_widths(
                Some(args.g_channels.unwrap_or(g.base_channels)),
                Some(args.d_channels.unwrap_or(d.base_channels)),
            );
            c.model.discriminator.conditioning = conditioning;
            let r = &mut c.recipe;
            r.loss = args.loss.unwrap_or(r.loss);
            r.label_smoothing = args.label_smoothing.unwrap_or(r.label_smoothing);
            r.lr_g = args.lr_g.or(r.lr_g);
            r.lr_d = args.lr_d.or(r.lr_d);
            r.lr_schedule = args.lr_schedule.unwrap_or(r.lr_schedule);
            c
        }
    };
    config.epochs = args.epochs.unwrap_or(config.epochs);
    config.max_steps = args.max_steps.or(config.max_steps);
    config.max_minutes = args.max_minutes.or(config.max_minutes);
    config.checkpoint_every = args.checkpoint_every.or(config.checkpoint_every);
    config.log_every = args.log_every.unwrap_or(config.log_every);
    config.eval_every = args.eval_every.unwrap_or(config.eval_every);
    config.eval_samples = args.eval_samples.unwrap_or(config.eval_samples);
    config.validate()?;
    Ok(config)
}

fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    let config = train_config(&args)?;
    let run = match (&args.resume, &args.out) {
        (Some(dir), _) | (None, Some(dir)) => RunDir::new(dir),
        (None, None) => RunDir::timestamped(Path::new("runs")),
    };
    if args.resume.is_none() && run.train_state().exists() {
        bail!(
            "--out {}: already holds a run; continue it with `cdcgan train --resume {}` or choose another --out",
            run.root.display(),
            run.root.display()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to abort)"
            );
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    tracing::info!(
        run = %run.root.display(),
        dataset = config.dataset.name(),
        epochs = config.epochs,
        seed = config.seed,
        threads = crate::backend::threads(),
        "training"
    );
    let options = train::Options {
        resume: args.resume.is_some(),
        progress_bar: !args.quiet,
        framework_step: args.framework_step,
        ..Default::default()
    };
    if options.resume {
        config.save(&run.config())?;
    }
    let summary = train::train(&config, &run, options, &stop)?;
    run.mark_latest()?;
    let p = summary.progress;
    match summary.ending {
        Ending::Interrupted => eprintln!(
            "interrupted at step {}; checkpoint written. Resume with: cdcgan train --resume {}",
            p.step,
            run.root.display()
        ),
        Ending::MaxSteps | Ending::TimeBudget | Ending::Finished => eprintln!(
            "trained to step {} (epoch {} of {}), {:.1} samples/s, {:.0} s in all; run: {}",
            p.step,
            p.epoch,
            config.epochs,
            summary.samples_per_s,
            p.wall_s,
            run.root.display()
        ),
    }
    Ok(())
}

fn run_generate(args: GenerateArgs) -> anyhow::Result<()> {
    let sampler = args.source.load()?;
    let classes = sampler.num_classes();
    let (images, rows, cols) = if let Some(text) = &args.digits {
        let labels = parse_digits(text, classes, MAX_DIGITS, "--digits")?;
        (sampler.digits(&labels, args.seed)?, 1, labels.len())
    } else if args.grid {
        (sampler.seeded_grid(args.seed)?, classes, classes)
    } else if let Some(label) = args.label {
        ensure!(
            (label as usize) < classes,
            "--label {label} is out of range: give a class 0..={}",
            classes - 1
        );
        let count = args.count.unwrap_or(10);
        ensure!(
            (1..=10_000).contains(&count),
            "--count must be in 1..=10000 (got {count})"
        );
        let z = sampler.noise(args.seed, 0, count);
        (
            sampler.images(&z, &vec![label; count])?,
            count.div_ceil(10),
            count.min(10),
        )
    } else {
        bail!("say what to write: --digits 2026, --grid, or --label L --count N");
    };
    write_grid(&args.out, &images, 28, rows, cols)?;
    eprintln!(
        "wrote {} ({} digits)",
        args.out.display(),
        images.len() / 784
    );
    Ok(())
}

fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    ensure!(
        (1..=1_000_000).contains(&args.count),
        "--count must be in 1..=1000000 (got {})",
        args.count
    );
    let sampler = args.source.load()?;
    let started = std::time::Instant::now();
    let (images, labels) = sampler.balanced_samples(args.count, args.seed)?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create", args.out.display()))?;
    write_idx(
        &args.out.join("images-idx3-ubyte"),
        &[args.count, 28, 28],
        &images,
    )?;
    write_idx(&args.out.join("labels-idx1-ubyte"), &[args.count], &labels)?;
    eprintln!(
        "wrote {} labelled samples to {} ({:.0} images/s)",
        args.count,
        args.out.display(),
        args.count as f64 / seconds.max(1e-9)
    );
    Ok(())
}

fn run_classifier_train(args: ClassifierTrainArgs) -> anyhow::Result<()> {
    ensure!(
        (1..=100).contains(&args.epochs),
        "--epochs must be in 1..=100 (got {})",
        args.epochs
    );
    let out = args
        .out
        .unwrap_or_else(|| crate::eval::default_classifier_path(args.dataset));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    let config = crate::eval::fit::FitConfig {
        dataset: args.dataset,
        data_dir: args.data,
        epochs: args.epochs,
        seed: args.seed,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let acc = crate::eval::fit::fit_and_save(&config, &out, |epoch, acc| {
        eprintln!(
            "epoch {epoch}/{}: test accuracy {:.2}% ({:.0} s)",
            config.epochs,
            acc * 100.0,
            started.elapsed().as_secs_f64()
        )
    })?;
    eprintln!(
        "saved {} (test accuracy {:.2}%)",
        out.display(),
        acc * 100.0
    );
    Ok(())
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    ensure!(
        (20..=100_000).contains(&args.count),
        "--count must be in 20..=100000 (got {})",
        args.count
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
        let sampler = Sampler::load(&run.sampling_generator())?;
        let (images, labels) = sampler.balanced_samples(args.count, args.seed)?;
        (
            evaluator.report(&images, &labels, args.seed)?,
            Some(run.root.join("eval.json")),
        )
    } else {
        let (Some(images), Some(labels)) = (&args.images, &args.labels) else {
            bail!("give --run DIR, or --images IDX with --labels IDX");
        };
        let data = crate::data::Dataset::from_files(images, labels, args.dataset.num_classes())?;
        ensure!(
            (data.height, data.width) == (28, 28),
            "{}: images are {}x{}, the evaluator takes 28x28",
            images.display(),
            data.height,
            data.width
        );
        let evaluator = crate::eval::Evaluator::new(
            args.dataset,
            args.data.as_deref(),
            args.classifier.as_deref(),
        )?;
        (
            evaluator.report(&data.images, &data.labels, args.seed)?,
            None,
        )
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = save_to {
        crate::store::write_atomic(&path, json.as_bytes())?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    let config = crate::bench::BenchConfig {
        train_iters: args.iters,
        gen_iters: args.gen_iters,
        warmup: args.warmup,
        batch_size: args.batch_size,
        aux_classifier: args.aux_classifier,
        g_channels: args.g_channels,
        d_channels: args.d_channels,
        framework_step: args.framework_step,
    };
    let (train, generate) = crate::bench::run(&config, |line| println!("{line}"))?;
    println!("gen_images_per_s={generate:.1}");
    println!("train_samples_per_s={train:.1}");
    Ok(())
}

fn run_morph(args: MorphArgs) -> anyhow::Result<()> {
    use crate::sample::animation::{Morph, morph_images, write_morph};
    let sampler = args.source.load()?;
    let morph = match args.latent {
        true => Morph::Latent { class: args.from },
        false => Morph::Class {
            from: args.from,
            to: args.to,
        },
    };
    let images = morph_images(&sampler, morph, args.steps, args.seed)?;
    write_morph(&args.out, &images)?;
    eprintln!("wrote {} ({} steps)", args.out.display(), args.steps);
    Ok(())
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let options = crate::serve::ServeOptions {
        run: args.run,
        addr: args.addr,
        max_concurrent: args.max_concurrent,
    };
    crate::serve::serve(&options, |addr| {
        use std::io::Write;
        println!(
            "serving http://{addr}/ (run {}; Ctrl-C to stop)",
            options.run.display()
        );
        let _ = std::io::stdout().flush();
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "listening beyond this machine: anyone who can reach it can use the page");
        }
    })
}
