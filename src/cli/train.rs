//! `cdcgan train`: its arguments and handler.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;

use super::engine::EngineArgs;
use super::train_flags::TrainFlags;
use crate::run::RunDir;
use crate::train::{self, Ending, TrainConfig};

/// Arguments of `cdcgan train`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// The flags that decide what the run learns and for how long.
    #[command(flatten)]
    pub flags: TrainFlags,
    /// Run directory [default: runs/TIMESTAMP (UTC), linked as runs/latest].
    #[arg(long, help_heading = "Output", display_order = 7)]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "out",
        help_heading = "Output",
        display_order = 7
    )]
    pub resume: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, help_heading = "Output", display_order = 7)]
    pub quiet: bool,
    /// Serve the live training page (and the generator's API) at ADDR while
    /// training, and after it until Ctrl-C [default ADDR: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = "127.0.0.1:8080", value_parser = super::values::parse_addr, help_heading = "Output", display_order = 7)]
    pub serve: Option<SocketAddr>,
    /// Which step trains.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The run's config: the recipe + flags for a new run, config.json + the
/// flags that may change (length, logging) for a resumed one. `fixed`: the
/// flags given that a resume may not change ([`TrainFlags::fixed_given`]).
fn train_config(args: &TrainArgs, fixed: &[String]) -> anyhow::Result<TrainConfig> {
    let Some(dir) = &args.resume else {
        return args.flags.new_run();
    };
    let run = RunDir::new(dir);
    ensure!(
        run.train_state().is_file(),
        "--resume {}: no checkpoint/train_state.safetensors there; nothing to resume",
        dir.display()
    );
    // config.json keeps what a recipe set, not its name: --recipe is always refused.
    if fixed.iter().any(|f| f == "--recipe") {
        bail!(
            "--recipe cannot change when resuming: a resumed run keeps the settings in {}",
            run.config().display()
        );
    }
    let saved = TrainConfig::load(&run.config())?;
    // A flag that repeats the run's own value changes nothing and is taken.
    if !fixed.is_empty() {
        let changes = args.flags.changes_to(&saved)?;
        if !changes.is_empty() {
            bail!(
                "{} cannot change when resuming: a resumed run keeps the settings in {} \
                 (given: {})",
                fixed.join(", "),
                run.config().display(),
                changes.join("; ")
            );
        }
    }
    args.flags.resumed(saved)
}

pub fn run_train(args: TrainArgs, fixed: &[String]) -> anyhow::Result<()> {
    let config = train_config(&args, fixed)?;
    args.engine.check_precision(config.precision)?;
    let run = match (&args.resume, &args.out) {
        (Some(dir), _) | (None, Some(dir)) => RunDir::new(dir),
        (None, None) => RunDir::timestamped(Path::new("runs"))?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let trained = Arc::new(AtomicBool::new(false));
    install_interrupt_handler(stop.clone(), trained.clone())?;
    let fresh_name = args.resume.is_none() && args.out.is_none();
    let page = match args.serve.map(|addr| start_page(&run, addr)).transpose() {
        Ok(page) => page,
        Err(e) => {
            // The runs/<timestamp> made for this start is still empty.
            if fresh_name {
                let _ = std::fs::remove_dir(&run.root);
            }
            return Err(e);
        }
    };
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
        burn_step: args.engine.burn(),
        ..Default::default()
    };
    let summary = match train::train(&config, &run, options, &stop) {
        Ok(summary) => summary,
        Err(e) => {
            if let Some(page) = page {
                let _ = page.stop();
            }
            // A runs/<timestamp> made for this start and failed before its
            // config.json holds nothing of anyone's: no empty run left behind.
            if fresh_name && !run.config().exists() {
                let _ = std::fs::remove_dir_all(&run.root);
            }
            if e.is::<super::Interrupted>() {
                eprintln!("interrupted before training began (reading the data); nothing trained");
            }
            return Err(e);
        }
    };
    let p = summary.progress;
    let interrupted = match summary.ending {
        Ending::Interrupted => Some(format!(
            "interrupted at step {}; checkpoint written. Resume with: cdcgan train --resume {}",
            p.step,
            run.root.display()
        )),
        Ending::EvaluationInterrupted => Some(format!(
            "interrupted in the final evaluation, after training to step {}; the checkpoint \
             is written, eval.json is not. Score the run with: cdcgan eval --run {}",
            p.step,
            run.root.display()
        )),
        Ending::MaxSteps | Ending::TimeBudget | Ending::Finished => None,
    };
    if let Some(message) = interrupted {
        eprintln!("{message}");
        if let Some(page) = page {
            page.stop()?;
        }
        return Err(super::Interrupted.into());
    }
    eprintln!(
        "trained to step {} (epoch {} of {}), {:.1} samples/s, {:.0} s in all; run: {}",
        p.step,
        p.epoch,
        config.epochs,
        summary.samples_per_s,
        p.wall_s,
        run.root.display()
    );
    if let Some(page) = page {
        trained.store(true, Ordering::SeqCst);
        eprintln!(
            "the page stays up at http://{}/ with the trained run; Ctrl-C to stop it",
            page.addr
        );
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        page.stop()?;
    }
    Ok(())
}

/// `--serve`: the page on its own threads, following the run from its
/// start; the address goes to stdout first, as `cdcgan serve` prints it.
fn start_page(run: &RunDir, addr: SocketAddr) -> anyhow::Result<crate::serve::Background> {
    use std::io::Write;
    let page = crate::serve::spawn(&crate::serve::ServeOptions {
        run: run.root.clone(),
        addr,
        max_concurrent: 1,
        header_timeout: 10,
        max_connections: None,
        training_here: true,
    })?;
    println!(
        "serving http://{}/ (run {}, live while it trains)",
        page.addr,
        run.root.display()
    );
    let _ = std::io::stdout().flush();
    Ok(page)
}

/// Ctrl-C or SIGTERM sets `stop`: training finishes its step and writes a
/// checkpoint (once `trained` is set, the page of --serve stops). A second
/// signal a second or more later exits at once. One sooner is the same
/// request: `timeout`, `docker stop`, systemd and a shell's job control
/// signal the process and then its group, so one request arrives twice
/// within milliseconds.
fn install_interrupt_handler(
    stop: Arc<AtomicBool>,
    trained: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut first: Option<Instant> = None;
    ctrlc::set_handler(move || match first {
        // Trained: the first interrupt stops the page, a later one exits at once.
        None if trained.load(Ordering::SeqCst) => {
            first = Some(Instant::now());
            stop.store(true, Ordering::SeqCst);
        }
        Some(_) if trained.load(Ordering::SeqCst) => std::process::exit(0),
        None => {
            first = Some(Instant::now());
            stop.store(true, Ordering::SeqCst);
            eprintln!(
                "\ninterrupt: finishing this step and writing a checkpoint \
                 (interrupt again, a second or more from now, to exit without one)"
            );
        }
        Some(at) if at.elapsed() < Duration::from_secs(1) => {}
        Some(_) => {
            eprintln!("\nsecond interrupt: exiting without a checkpoint");
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")
}
