//! Loads a trained run and writes digits with the library:
//! `cargo run --release --example write_digits -- RUN_DIR 2026 out.png`.

use std::path::PathBuf;

use cdcgan::run::RunDir;
use cdcgan::sample::{Sampler, image::write_grid, parse_digits};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: write_digits RUN_DIR DIGITS OUT.png";
    let run = RunDir::new(args.next().ok_or_else(|| anyhow::anyhow!(usage))?);
    let text = args.next().unwrap_or_else(|| "2026".into());
    let out = PathBuf::from(args.next().unwrap_or_else(|| "digits.png".into()));
    run.ensure_trained()?;
    let sampler = Sampler::load(&run.sampling_generator())?; // the EMA generator when the run has one
    let labels = parse_digits(&text, sampler.class_names(), 1000, "DIGITS")?;
    let images = sampler.digits(&labels, 7)?; // seed 7: the same handwriting each time
    write_grid(&out, &images, sampler.image(), 1, labels.len())?;
    println!("wrote {} ({} digits)", out.display(), labels.len());
    Ok(())
}
