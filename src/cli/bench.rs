//! `cdcgan bench`: its arguments and handler.

use clap::Args;

use super::engine::EngineArgs;
use super::train_flags::TrainFlags;
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
        ..TrainFlags::default()
    };
    let train = flags.new_run()?;
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
