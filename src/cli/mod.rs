//! The command line: `cdcgan train | generate | export | eval | serve | ...`,
//! one file per group of subcommands: `train`, `sample` (generate,
//! export, morph, gif), `eval` (eval, classifier), `bench`, `serve`.
//! Each file holds its arguments (clap derive) and their handler.

mod bench;
mod engine;
mod eval;
mod sample;
mod serve;
mod train;
pub mod train_flags;
mod values;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use eval::{ClassifierCommand, ClassifierTrainArgs, EvalArgs};
pub use sample::{ExportArgs, GenerateArgs, GifArgs, MorphArgs, Source};
use train_flags::TrainFlags;

pub use train::TrainArgs;

/// The parsed command line: global options and the subcommand.
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
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, each with its arguments.
// TrainArgs is large beside the others; the command is parsed once.
#[allow(clippy::large_enum_variant)]
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
    Bench(bench::BenchArgs),
    /// Serve a web page that writes digits, with a PNG/GIF/JSON API under it.
    Serve(serve::ServeArgs),
    /// The evaluator classifier behind `eval`.
    #[command(subcommand)]
    Classifier(ClassifierCommand),
}

pub use crate::interrupt::Interrupted;

/// The command line's definition, with each recipe setting's defaults in
/// `train --help` written from the recipe table ([`crate::train::recipe`]).
pub fn command() -> clap::Command {
    let defaults = crate::train::recipe::help_defaults();
    Cli::command().mut_subcommand("train", |train| {
        defaults.into_iter().fold(train, |train, (id, text)| {
            train.mut_arg(id, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {text}]"))
            })
        })
    })
}

/// Parses the command line and runs it.
pub fn main() -> anyhow::Result<()> {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    crate::backend::set_threads(cli.threads)?;
    crate::backend::select_device(cli.device)?;
    match cli.command {
        Command::Train(args) => {
            let fixed = matches
                .subcommand_matches("train")
                .map(TrainFlags::fixed_given)
                .unwrap_or_default();
            train::run_train(args, &fixed)
        }
        Command::Generate(args) => sample::run_generate(args),
        Command::Export(args) => sample::run_export(args),
        Command::Gif(args) => sample::run_gif(args),
        Command::Morph(args) => sample::run_morph(args),
        Command::Eval(args) => eval::run_eval(args),
        Command::Bench(args) => bench::run_bench(args),
        Command::Serve(args) => serve::run_serve(args),
        Command::Classifier(ClassifierCommand::Train(args)) => eval::run_classifier_train(args),
    }
}
