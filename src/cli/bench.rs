//! `cdcgan bench`: its arguments and handler.

use std::path::PathBuf;

use anyhow::{bail, ensure};
use clap::Args;

use crate::arch::{ImageShape, MAX_CLASSES};
use crate::data::DataFacts;

use super::engine::EngineArgs;
use super::train_flags::{ImageFlags, TrainFlags};
use crate::bench::BenchConfig;
use crate::native::Precision;
use crate::train::recipe::Recipe;

/// Arguments of `cdcgan bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Timed training iterations.
    #[arg(long = "iters", default_value_t = 30)]
    pub train_iters: usize,
    /// Timed generator forwards.
    #[arg(long, default_value_t = 30)]
    pub gen_iters: usize,
    /// Untimed warm-up iterations before each.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// The recipe whose exact network, batch size and objective are timed,
    /// as `train --recipe` builds them [default: varied].
    #[arg(long, value_enum)]
    pub recipe: Option<Recipe>,
    /// Images per training step and per generator forward [default: the recipe's].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Time D with the auxiliary classifier head.
    #[arg(long)]
    pub aux_classifier: bool,
    /// G's width (as `train --g-channels`) [default: the recipe's].
    #[arg(long)]
    pub g_channels: Option<usize>,
    /// D's width (as `train --d-channels`) [default: the recipe's].
    #[arg(long)]
    pub d_channels: Option<usize>,
    /// Arithmetic of the native products (as `train --precision`) [default: fp32].
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Time the network a folder of images trains (its classes, image size
    /// and colour, with the image flags), on random images of its shape.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The image flags, with `--data`; without it, the timed network's
    /// shape: 28, 32 or 64 pixels, 1 or 3 channels.
    #[command(flatten)]
    pub image: ImageFlags,
    /// Classes of the timed network, without `--data` [default: 10].
    #[arg(long)]
    pub classes: Option<usize>,
    /// Which step is timed.
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    // The network is resolved as `train` resolves it, from the same flags.
    let flags = TrainFlags {
        recipe: args.recipe,
        batch_size: args.batch_size,
        aux_classifier: args.aux_classifier,
        g_channels: args.g_channels,
        d_channels: args.d_channels,
        precision: args.precision,
        data: args.data.clone(),
        ..TrainFlags::default()
    };
    let image = &args.image;
    let train = match (&args.data, image.image_size, image.channels, args.classes) {
        (Some(_), _, _, Some(_)) => {
            bail!("--classes: a folder's classes are its sub-folders; leave it out with --data")
        }
        (Some(_), ..) => TrainFlags {
            image: args.image.clone(),
            ..flags
        }
        .new_run()?,
        (None, None, None, None) => flags.new_run()?,
        (None, side, channels, classes) => {
            let classes = classes.unwrap_or(10);
            ensure!(
                (1..=MAX_CLASSES).contains(&classes),
                "--classes must be in 1..={MAX_CLASSES} (got {classes})"
            );
            flags.for_facts(&DataFacts {
                shape: ImageShape::new(channels.unwrap_or(1), side.unwrap_or(28))?,
                per_class: vec![1000; classes],
            })?
        }
    };
    args.engine.check_precision(train.precision)?;
    let config = BenchConfig {
        train_iters: args.train_iters,
        gen_iters: args.gen_iters,
        warmup: args.warmup,
        train,
        burn_step: args.engine.burn(),
    };
    println!("# recipe: {}", args.recipe.unwrap_or_default().name());
    let (train, generate) = crate::bench::run(&config, |line| println!("{line}"))?;
    println!("gen_images_per_s={generate:.1}");
    println!("train_samples_per_s={train:.1}");
    Ok(())
}
