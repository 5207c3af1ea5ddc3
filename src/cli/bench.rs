//! `cdcgan bench`: its handler (the arguments are [`BenchConfig`]).

use crate::bench::BenchConfig;

pub fn run_bench(config: BenchConfig) -> anyhow::Result<()> {
    let (train, generate) = crate::bench::run(&config, |line| println!("{line}"))?;
    println!("gen_images_per_s={generate:.1}");
    println!("train_samples_per_s={train:.1}");
    Ok(())
}
