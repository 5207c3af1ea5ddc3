//! The `train` flags that decide what a run learns and for how long: their
//! definition (clap) and their resolution, in one place. A new run starts
//! from its `--recipe` and takes every flag given; a resumed run keeps its
//! config.json and takes only the flags of [`RESUMABLE`].

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

use crate::arch::ImageShape;
use crate::data::folder::{Background, Decoding};
use crate::data::{DataFacts, DatasetKind, folder};
use crate::model::GanConfig;
use crate::model::discriminator::Conditioning;
use crate::native::Precision;
use crate::optim::{Augment, AugmentP, FakeLabels, GanLoss, LrSchedule};
use crate::train::TrainConfig;
use crate::train::recipe::{self, Recipe};

/// The flags (by their field names) that a resume may give: how long to go
/// on, and how often to log, check and checkpoint. Every other flag is fixed
/// by the run's config.json.
pub const RESUMABLE: [&str; 7] = [
    "epochs",
    "max_steps",
    "max_minutes",
    "checkpoint_every",
    "log_every",
    "eval_every",
    "eval_samples",
];

/// How an image folder is decoded (`train` and `classifier train`): its
/// side, channels and background; refused for IDX sets.
#[derive(Debug, Clone, Default, Args)]
pub struct ImageFlags {
    /// An image folder's image side: 28, 32 or 64 pixels [default: 28].
    #[arg(long, value_name = "PX", help_heading = "Data", display_order = 1)]
    pub image_size: Option<usize>,
    /// An image folder's channels: 1 (grey) or 3 (colour) [default: 3 when
    /// its images are in colour, else 1].
    #[arg(long, help_heading = "Data", display_order = 1)]
    pub channels: Option<usize>,
    /// The colour an image folder's transparent pixels are composited on,
    /// RRGGBB hex [default: ffffff, white].
    #[arg(long, value_name = "RRGGBB", help_heading = "Data", display_order = 1)]
    pub background: Option<Background>,
}

impl ImageFlags {
    /// How the image folder `folder` is decoded; `None` for an IDX set
    /// (`folder` absent), which refuses each of these flags given.
    pub fn decoding(&self, folder: Option<&Path>) -> anyhow::Result<Option<Decoding>> {
        let Some(dir) = folder else {
            let given = [
                ("--image-size", self.image_size.is_some()),
                ("--channels", self.channels.is_some()),
                ("--background", self.background.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                bail!(
                    "{flag} applies to image folders (--data DIR, one sub-folder per class); \
                     MNIST and Fashion-MNIST come as 28x28 grey"
                );
            }
            return Ok(None);
        };
        let channels = match self.channels {
            Some(n) => n,
            None => folder::channels_of(dir, &folder::class_names(dir)?)?,
        };
        let shape = ImageShape::new(channels, self.image_size.unwrap_or(28))
            .map_err(|e| anyhow::anyhow!("--image-size/--channels: {e}"))?;
        Ok(Some(Decoding {
            shape,
            background: self.background.unwrap_or_default(),
        }))
    }
}

/// The settings of `cdcgan train`; `None` (or false) keeps the recipe's.
#[derive(Debug, Clone, Default, Args)]
pub struct TrainFlags {
    /// The preset every setting not given below starts from (each recipe's
    /// values: docs/training.md) [default: varied].
    #[arg(long, value_enum)]
    pub recipe: Option<Recipe>,
    /// Data set.
    #[arg(long, value_enum, help_heading = "Data", display_order = 1)]
    pub dataset: Option<DatasetKind>,
    /// Directory with the four IDX files (default: data/mnist, or
    /// /usr/share/datasets/fashion-mnist for fashion-mnist), or an image
    /// folder (one sub-folder of PNG/JPEG images per class).
    #[arg(long, help_heading = "Data", display_order = 1)]
    pub data: Option<PathBuf>,
    /// An image folder's image shape and background.
    #[command(flatten)]
    pub image: ImageFlags,
    /// Train on the first N training images only.
    #[arg(long, help_heading = "Data", display_order = 1)]
    pub limit: Option<usize>,
    /// Epochs to train in total (a recipe's length counts images seen, so
    /// a small folder gets more epochs).
    #[arg(long, help_heading = "Length", display_order = 2)]
    pub epochs: Option<usize>,
    /// Stop after N iterations in total.
    #[arg(long, help_heading = "Length", display_order = 2)]
    pub max_steps: Option<u64>,
    /// Stop after M minutes of training wall time (then checkpoint and evaluate).
    #[arg(long, help_heading = "Length", display_order = 2)]
    pub max_minutes: Option<f64>,
    /// Batch size.
    #[arg(long, help_heading = "Optimiser", display_order = 3)]
    pub batch_size: Option<usize>,
    /// Adam learning rate for both networks.
    #[arg(long, help_heading = "Optimiser", display_order = 3)]
    pub lr: Option<f64>,
    /// G's learning rate (two time-scale update rule) [default: --lr].
    #[arg(long, help_heading = "Optimiser", display_order = 3)]
    pub lr_g: Option<f64>,
    /// D's learning rate (two time-scale update rule) [default: --lr].
    #[arg(long, help_heading = "Optimiser", display_order = 3)]
    pub lr_d: Option<f64>,
    /// Learning-rate schedule over the run (--epochs, --max-steps or --max-minutes).
    #[arg(long, value_enum, help_heading = "Optimiser", display_order = 3)]
    pub lr_schedule: Option<LrSchedule>,
    /// Adam beta1.
    #[arg(long, help_heading = "Optimiser", display_order = 3)]
    pub beta1: Option<f64>,
    /// Adam beta2.
    #[arg(long, help_heading = "Optimiser", display_order = 3)]
    pub beta2: Option<f64>,
    /// Keep a moving average of G's weights with this decay; generate, export, eval
    /// and serve then use it; 0 for none.
    #[arg(long, help_heading = "Optimiser", display_order = 3)]
    pub ema: Option<f32>,
    /// Seed for initialisation, data order and noise.
    #[arg(long, help_heading = "Optimiser", display_order = 3)]
    pub seed: Option<u64>,
    /// Adversarial loss.
    #[arg(long, value_enum, help_heading = "Objective", display_order = 4)]
    pub loss: Option<GanLoss>,
    /// One-sided label smoothing: D's target for real digits becomes 1 - S (e.g. 0.1).
    #[arg(long, value_name = "S", help_heading = "Objective", display_order = 4)]
    pub label_smoothing: Option<f32>,
    /// Weight of the mode-seeking term (MSGAN): the batch's two halves ask G for
    /// the same classes, and G is rewarded for making each pair differ.
    #[arg(long, value_name = "W", help_heading = "Objective", display_order = 4)]
    pub mode_seeking: Option<f32>,
    /// Weight of the auxiliary classification loss.
    #[arg(long, help_heading = "Objective", display_order = 4)]
    pub aux_weight: Option<f32>,
    /// D's batch norm takes its statistics over the real and the generated
    /// batch together (one pass of both, in D's step and G's), so D can see a
    /// batch of G's digits sit apart from the real ones; the spread plane
    /// stays per batch.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Objective", display_order = 4)]
    pub joint_batch_norm: Option<bool>,
    /// Change every image D sees, real and generated, in D's step and G's,
    /// by random differentiable changes (DiffAugment), so D cannot memorise
    /// a small folder: `none`, or some of `color`, `translation`, `cutout`,
    /// `flip` joined by commas (flip only for classes that look the same
    /// mirrored).
    #[arg(long, value_name = "POLICY", value_parser = Augment::parse, help_heading = "Objective", display_order = 4)]
    pub augment: Option<Augment>,
    /// The chance each of --augment's changes is made to an image: a number
    /// in (0, 1], or `adaptive` (ADA: from 0, raised while D is too sure of
    /// the real images, E[sign D(real)] > 0.6, and lowered otherwise).
    #[arg(long, value_name = "P", value_parser = AugmentP::parse, help_heading = "Objective", display_order = 4)]
    pub augment_p: Option<AugmentP>,
    /// Weight of LeCam's regulariser in D's loss: D's logits on real images
    /// are held near its moving mean on generated ones and the reverse, so
    /// its verdicts do not drift apart on a small folder (e.g. 0.3).
    #[arg(long, value_name = "W", help_heading = "Objective", display_order = 4)]
    pub lecam: Option<f32>,
    /// The real batches draw each class equally often, so D sees each as
    /// often real as generated (a small class's images then repeat within
    /// an epoch).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Objective", display_order = 4)]
    pub even_classes: Option<bool>,
    /// Which classes G is asked for: `uniform` (each equally often) or
    /// `data` (the real batch's, so D sees each class as often generated as
    /// real).
    #[arg(long, value_enum, help_heading = "Objective", display_order = 4)]
    pub fake_labels: Option<FakeLabels>,
    /// G's width: the channels of its first (smallest) feature map, halved
    /// at each doubling of the side (at 64 px it needs at least 8).
    #[arg(long, help_heading = "Networks", display_order = 5)]
    pub g_channels: Option<usize>,
    /// D's width: channels after its first convolution, doubled at each
    /// halving of the side.
    #[arg(long, help_heading = "Networks", display_order = 5)]
    pub d_channels: Option<usize>,
    /// Give D the AC-GAN auxiliary classifier head.
    #[arg(long, help_heading = "Networks", display_order = 5)]
    pub aux_classifier: bool,
    /// Give D's last layer the batch's spread as one more feature plane (minibatch
    /// standard deviation): a batch of look-alike digits is then easy to call fake;
    /// `--minibatch-std false` turns the recipe's off.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Networks", display_order = 5)]
    pub minibatch_std: Option<bool>,
    /// Class-conditional batch norm in G: the class also scales and shifts each
    /// batch norm's output (a learned gain and shift per class, starting at
    /// zero), beside the one-hot input.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Networks", display_order = 5)]
    pub class_norm: Option<bool>,
    /// Spectral normalisation of D's convolutions (Miyato et al. 2018): each
    /// weight divided by its largest singular value, estimated by one power
    /// iteration per step.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Networks", display_order = 5)]
    pub spectral_norm: Option<bool>,
    /// `--d-batch-norm false` drops D's batch norm (after its second
    /// convolution), as spectrally normalised discriminators usually do.
    #[arg(
        long,
        value_name = "BOOL",
        help_heading = "Networks",
        display_order = 5
    )]
    pub d_batch_norm: Option<bool>,
    /// How D is told the class: label planes, a projection discriminator, or
    /// both.
    #[arg(
        long = "cond",
        value_enum,
        help_heading = "Networks",
        display_order = 5
    )]
    pub conditioning: Option<Conditioning>,
    /// The `--noise-scale` that generate, export, eval and serve (and the
    /// in-training figures) draw this run's digits with unless given one;
    /// kept in generator.safetensors.
    #[arg(
        long,
        value_name = "S",
        allow_hyphen_values = true,
        help_heading = "Networks",
        display_order = 5
    )]
    pub sample_noise_scale: Option<f32>,
    /// The evaluator that scores samples while the run trains (an image
    /// folder's own, from `classifier train --data DIR --out FILE`)
    /// [default: the data set's, in models/].
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Evaluation",
        display_order = 6
    )]
    pub classifier: Option<PathBuf>,
    /// Measure sample quality every N epochs, 0 for never.
    #[arg(long, help_heading = "Evaluation", display_order = 6)]
    pub eval_every: Option<usize>,
    /// Samples per in-training evaluation.
    #[arg(long, help_heading = "Evaluation", display_order = 6)]
    pub eval_samples: Option<usize>,
    /// Also write a checkpoint every N iterations (always: every epoch).
    #[arg(long, help_heading = "Output", display_order = 7)]
    pub checkpoint_every: Option<u64>,
    /// Write a metrics.csv row every N iterations.
    #[arg(long, help_heading = "Output", display_order = 7)]
    pub log_every: Option<u64>,
    /// Arithmetic of the native step's products: bf16 operands with fp32 sums
    /// (needs AVX512_BF16; twice the product rate), fp32, or auto (each
    /// product shape in the faster of the two here, timed once per CPU and
    /// cached).
    #[arg(long, value_enum, help_heading = "Speed", display_order = 8)]
    pub precision: Option<Precision>,
}

impl TrainFlags {
    /// The flags given on the command line (in `matches`, of a command that
    /// flattens these flags) that a resume may not change, as `--name`.
    pub fn fixed_given(matches: &ArgMatches) -> Vec<String> {
        Self::augment_args(clap::Command::new("train"))
            .get_arguments()
            .filter(|arg| !RESUMABLE.contains(&arg.get_id().as_str()))
            .filter(|arg| {
                matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
            })
            .map(|arg| format!("--{}", arg.get_long().unwrap_or(arg.get_id().as_str())))
            .collect()
    }

    /// A new run's config: the recipe's, with every flag given applied.
    pub fn new_run(&self) -> anyhow::Result<TrainConfig> {
        // Phase 1: where the data is and how it is read; then what it holds.
        let data = self.data_settings()?;
        let classes = data.class_names.clone().unwrap_or_default();
        let decoding = data.decoding.unwrap_or_default();
        let facts = DataFacts::probe(
            data.dataset,
            data.dir.as_deref(),
            &classes,
            decoding,
            self.limit,
        )?;
        // Phase 2: the recipe's row for these data, then every flag given.
        let mut c = self.recipe.unwrap_or_default().config_for(&facts);
        c.dataset = data.dataset;
        c.data_dir = data.dir;
        c.class_names = data.class_names;
        c.background = data.decoding.map(|d| d.background);
        c.limit = self.limit;
        self.apply_settings(&mut c);
        self.apply_resumable(&mut c);
        if self.eval_every.is_none() {
            // About EVALUATIONS checks over the run as given (--epochs, --max-steps).
            let steps_per_epoch = (facts.images() / c.batch_size.max(1)).max(1) as u64;
            let by_steps = c.max_steps.map(|m| m.div_ceil(steps_per_epoch) as usize);
            c.eval_every = recipe::eval_every_for(by_steps.map_or(c.epochs, |e| e.min(c.epochs)));
        }
        c.validate()?;
        self.refuse_ignored(&c)?;
        Ok(c)
    }

    /// The config a new run of these settings flags would have on data of
    /// `facts` (for `bench`, which times a network's shape without its
    /// images): classes named by number.
    pub fn for_facts(&self, facts: &DataFacts) -> anyhow::Result<TrainConfig> {
        let mut c = self.recipe.unwrap_or_default().config_for(facts);
        if facts.shape != ImageShape::MNIST || facts.classes() != 10 {
            c.dataset = DatasetKind::Folder;
            c.class_names = Some((0..facts.classes()).map(|i| i.to_string()).collect());
        }
        self.apply_settings(&mut c);
        c.validate()?;
        Ok(c)
    }

    /// What the data flags say: the data set, its folder, an image
    /// folder's classes and decoding.
    fn data_settings(&self) -> anyhow::Result<DataSettings> {
        let folder = self
            .data
            .as_deref()
            .filter(|dir| folder::is_image_folder(dir));
        let dataset = match (self.dataset, folder) {
            (Some(d), _) => d,
            (None, Some(_)) => DatasetKind::Folder,
            (None, None) => DatasetKind::Mnist,
        };
        let class_names = match (dataset, &self.data) {
            (DatasetKind::Folder, Some(dir)) => Some(folder::class_names(dir)?),
            (DatasetKind::Folder, None) => {
                bail!("--dataset folder needs --data DIR (one sub-folder of images per class)")
            }
            _ => None,
        };
        let folder = self
            .data
            .as_deref()
            .filter(|_| dataset == DatasetKind::Folder);
        Ok(DataSettings {
            dataset,
            dir: self.data.clone(),
            class_names,
            decoding: self.image.decoding(folder)?,
        })
    }

    /// The fields of `saved` (a resumed run's config.json) that the fixed
    /// flags given would change, as `field: saved -> given`: a resume
    /// refuses those, and takes a flag that repeats the run's value.
    pub fn changes_to(&self, saved: &TrainConfig) -> anyhow::Result<Vec<String>> {
        let mut c = saved.clone();
        if let Some(d) = self.dataset {
            c.dataset = d;
        }
        let same_place = |a: &Path, b: &Path| {
            a == b
                || a.canonicalize()
                    .ok()
                    .is_some_and(|a| b.canonicalize().ok() == Some(a))
        };
        if let Some(dir) = &self.data
            && !c.data_dir.as_deref().is_some_and(|d| same_place(d, dir))
        {
            c.data_dir = Some(dir.clone());
        }
        c.limit = self.limit.or(c.limit);
        self.apply_settings(&mut c);
        let image = &self.image;
        let (side, channels) = (
            c.model.generator.image_size,
            c.model.generator.image_channels,
        );
        let shape = ImageShape {
            side: image.image_size.unwrap_or(side),
            channels: image.channels.unwrap_or(channels),
        };
        c.model.set_image(shape);
        c.background = image.background.or(c.background);
        let (was, now) = (serde_json::to_value(saved)?, serde_json::to_value(&c)?);
        let mut changes = Vec::new();
        changed_fields(&was, &now, "", &mut changes);
        Ok(changes)
    }

    /// The settings flags given (neither where the data is nor how long),
    /// applied to `c` as a new run applies them to its recipe's row. The
    /// image shape stays `c`'s: the data's.
    fn apply_settings(&self, c: &mut TrainConfig) {
        c.batch_size = self.batch_size.unwrap_or(c.batch_size);
        c.adam.lr = self.lr.unwrap_or(c.adam.lr);
        c.adam.beta1 = self.beta1.unwrap_or(c.adam.beta1);
        c.adam.beta2 = self.beta2.unwrap_or(c.adam.beta2);
        c.seed = self.seed.unwrap_or(c.seed);
        c.objective.aux_weight = self.aux_weight.unwrap_or(c.objective.aux_weight);
        // --ema 0 turns the recipe's average off.
        c.ema = self.ema.map_or(c.ema, |d| (d != 0.0).then_some(d));
        let image = c.model.generator.image();
        c.model = self.model(c);
        c.model.set_image(image);
        c.classifier = self.classifier.clone().or(c.classifier.take());
        c.precision = self.precision.unwrap_or(c.precision);
        c.sample_noise_scale = self.sample_noise_scale.unwrap_or(c.sample_noise_scale);
        let r = &mut c.objective;
        r.loss = self.loss.unwrap_or(r.loss);
        r.label_smoothing = self.label_smoothing.unwrap_or(r.label_smoothing);
        r.lr_g = self.lr_g.or(r.lr_g);
        r.lr_d = self.lr_d.or(r.lr_d);
        r.lr_schedule = self.lr_schedule.unwrap_or(r.lr_schedule);
        r.mode_seeking = self.mode_seeking.unwrap_or(r.mode_seeking);
        r.joint_batch_norm = self.joint_batch_norm.unwrap_or(r.joint_batch_norm);
        r.augment = self.augment.unwrap_or(r.augment);
        r.augment_p = self.augment_p.unwrap_or(r.augment_p);
        r.lecam = self.lecam.unwrap_or(r.lecam);
        r.even_classes = self.even_classes.unwrap_or(r.even_classes);
        // --mode-seeking pairs G's classes itself: the data's classes
        // (varied's default on uneven classes) give way unless asked for.
        let recipes = match r.mode_seeking > 0.0 {
            true => FakeLabels::Uniform,
            false => r.fake_labels,
        };
        r.fake_labels = self.fake_labels.unwrap_or(recipes);
    }

    /// Refuses a flag given that `c`, the config it resolved to, would not
    /// use, naming the flag and what makes it idle.
    fn refuse_ignored(&self, c: &TrainConfig) -> anyhow::Result<()> {
        if self.eval_samples.is_some() && c.eval_every == 0 {
            bail!(
                "--eval-samples sizes the in-training evaluation, which --eval-every 0 turns off: \
                 give one or the other"
            );
        }
        if self.classifier.is_some() && c.eval_every == 0 {
            bail!(
                "--classifier scores the in-training evaluation, which --eval-every 0 turns off: \
                 give one or the other"
            );
        }
        if self.aux_weight.is_some() && !c.model.discriminator.aux_classifier {
            bail!(
                "--aux-weight weighs the auxiliary classifier's loss, and this run has none: \
                 add --aux-classifier"
            );
        }
        if self.lr.is_some() && self.lr_g.is_some() && self.lr_d.is_some() {
            bail!("--lr is unused when --lr-g and --lr-d are both given: give two of the three");
        }
        Ok(())
    }

    /// The architecture for the data set's classes: the recipe's choices
    /// with the flags given.
    fn model(&self, c: &TrainConfig) -> GanConfig {
        let (g, d) = (&c.model.generator, &c.model.discriminator);
        let mut model =
            GanConfig::original(c.classes().len(), self.aux_classifier || d.aux_classifier)
                .with_widths(
                    Some(self.g_channels.unwrap_or(g.base_channels)),
                    Some(self.d_channels.unwrap_or(d.base_channels)),
                );
        model.discriminator.conditioning = self.conditioning.or(d.conditioning);
        model.discriminator.minibatch_std = self.minibatch_std.unwrap_or(d.minibatch_std);
        model.generator.class_norm = self.class_norm.unwrap_or(g.class_norm);
        model.discriminator.spectral_norm = self.spectral_norm.unwrap_or(d.spectral_norm);
        model.discriminator.batch_norm = self.d_batch_norm.unwrap_or(d.batch_norm);
        model
    }

    /// A resumed run's config: `saved` (its config.json) with the flags a
    /// resume may give. A learning-rate schedule decays over the length fixed
    /// when the run started, so such a run keeps its length too.
    pub fn resumed(&self, mut saved: TrainConfig) -> anyhow::Result<TrainConfig> {
        let relength = [
            ("--epochs", self.epochs.is_some()),
            ("--max-steps", self.max_steps.is_some()),
            ("--max-minutes", self.max_minutes.is_some()),
        ];
        if saved.objective.lr_schedule != LrSchedule::Constant
            && let Some((flag, _)) = relength.iter().find(|(_, given)| *given)
        {
            bail!(
                "{flag} cannot change when resuming a run with a learning-rate schedule: \
                 the schedule decays over the length fixed when the run started"
            );
        }
        self.apply_resumable(&mut saved);
        saved.validate()?;
        self.refuse_ignored(&saved)?;
        Ok(saved)
    }

    /// The flags of [`RESUMABLE`] that were given.
    fn apply_resumable(&self, c: &mut TrainConfig) {
        c.epochs = self.epochs.unwrap_or(c.epochs);
        c.max_steps = self.max_steps.or(c.max_steps);
        c.max_minutes = self.max_minutes.or(c.max_minutes);
        c.checkpoint_every = self.checkpoint_every.or(c.checkpoint_every);
        c.log_every = self.log_every.unwrap_or(c.log_every);
        c.eval_every = self.eval_every.unwrap_or(c.eval_every);
        c.eval_samples = self.eval_samples.unwrap_or(c.eval_samples);
    }
}

/// Where a new run's data is and how it is read (phase 1 of its settings).
struct DataSettings {
    dataset: DatasetKind,
    dir: Option<PathBuf>,
    class_names: Option<Vec<String>>,
    /// An image folder's decoding; `None` for an IDX set.
    decoding: Option<Decoding>,
}

/// Appends `path: was -> now` for each leaf where the JSON values differ.
fn changed_fields(
    was: &serde_json::Value,
    now: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (was, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let (x, y) = (
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                );
                let at = match path {
                    "" => key.clone(),
                    _ => format!("{path}.{key}"),
                };
                changed_fields(x, y, &at, out);
            }
        }
        _ if was != now => out.push(format!("{path}: {was} -> {now}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        flags: TrainFlags,
        #[arg(long)]
        resume: Option<PathBuf>,
    }

    fn fixed(args: &[&str]) -> Vec<String> {
        TrainFlags::fixed_given(&Cli::command().get_matches_from(args))
    }

    #[test]
    fn a_resume_may_change_length_and_logging_only() {
        let given = ["train", "--resume", "r"];
        let length = ["--epochs", "3", "--max-steps", "9", "--log-every", "5"];
        assert!(fixed(&[&given[..], &length[..]].concat()).is_empty());
        let settings = [
            "--g-channels",
            "8",
            "--cond",
            "projection",
            "--aux-classifier",
        ];
        assert_eq!(
            fixed(&[&given[..], &settings[..]].concat()),
            ["--g-channels", "--aux-classifier", "--cond"]
        );
        for name in RESUMABLE {
            assert!(
                TrainFlags::augment_args(clap::Command::new("t"))
                    .get_arguments()
                    .any(|a| a.get_id().as_str() == name),
                "{name} is not a flag"
            );
        }
    }

    #[test]
    fn flags_override_the_recipe() {
        let cli = Cli::parse_from([
            "train",
            "--recipe",
            "seed",
            "--g-channels",
            "32",
            "--ema",
            "0.99",
        ]);
        let c = cli.flags.new_run().unwrap();
        assert_eq!(c.model.generator.base_channels, 32);
        assert_eq!((c.batch_size, c.ema), (100, Some(0.99)));
        let fast = Cli::parse_from(["train", "--ema", "0"])
            .flags
            .new_run()
            .unwrap();
        assert_eq!(
            (fast.batch_size, fast.ema),
            (25, None),
            "--ema 0 turns it off"
        );
        let run = |args: &[&str]| {
            let flags = Cli::parse_from([&["train"], args].concat()).flags;
            flags.new_run().unwrap()
        };
        let spread = |args: &[&str]| run(args).model.discriminator.minibatch_std;
        assert!(spread(&[]), "varied has minibatch std");
        assert!(!spread(&["--minibatch-std", "false"]));
        assert!(!spread(&["--recipe", "seed"]));
        assert!(spread(&["--recipe", "seed", "--minibatch-std"]));
        let spectral = |args: &[&str]| run(args).model.discriminator.spectral_norm;
        assert!(spectral(&[]), "on in the default, varied");
        assert!(!spectral(&["--recipe", "fast"]));
        assert!(spectral(&["--recipe", "fast", "--spectral-norm"]));
        assert!(!spectral(&["--spectral-norm", "false"]));
        assert!(!spectral(&["--recipe", "seed", "--spectral-norm", "false"]));
        let d_norm = |args: &[&str]| run(args).model.discriminator.batch_norm;
        assert!(!d_norm(&[]), "the default, varied, drops D's batch norm");
        assert!(d_norm(&["--recipe", "fast"]));
        assert!(!d_norm(&["--recipe", "fast", "--d-batch-norm", "false"]));
        assert!(d_norm(&["--d-batch-norm", "true"]));
        let noise = |args: &[&str]| run(args).sample_noise_scale;
        assert_eq!(noise(&[]), 1.07, "the default, varied, samples wider");
        assert_eq!(noise(&["--recipe", "fast"]), 1.0);
        assert_eq!(
            noise(&["--recipe", "seed", "--sample-noise-scale", "1.2"]),
            1.2
        );
        let precision = |args: &[&str]| run(args).precision;
        assert_eq!(precision(&[]), Precision::Fp32);
        assert_eq!(precision(&["--precision", "bf16"]), Precision::Bf16);
        assert!(Cli::try_parse_from(["train", "--precision", "fp16"]).is_err());
    }

    #[test]
    fn the_joint_batch_norm_needs_d_batch_norm() {
        let config = |args: &[&str]| {
            let flags = Cli::parse_from([&["train"], args].concat()).flags;
            flags.new_run()
        };
        let joint = config(&["--recipe", "fast", "--joint-batch-norm"]).unwrap();
        assert!(joint.objective.joint_batch_norm);
        assert!(
            !config(&[]).unwrap().objective.joint_batch_norm,
            "off by default"
        );
        let err = config(&["--joint-batch-norm"]).unwrap_err().to_string();
        assert!(err.contains("--d-batch-norm true"), "{err}");
        let both = [
            "--recipe",
            "varied",
            "--d-batch-norm",
            "true",
            "--joint-batch-norm",
        ];
        assert!(config(&both).unwrap().objective.joint_batch_norm);
    }
}
