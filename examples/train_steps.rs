//! Trains a GAN for a few steps from code, reporting progress from the loop:
//! `cargo run --release --example train_steps -- 200`.
//! The same engine `cdcgan train` runs (the native CPU step where it applies).

use cdcgan::data::{Dataset, DatasetKind, Split};
use cdcgan::train::TrainConfig;
use cdcgan::train::engine::{At, Engine, HostBatch, initial_state};
use cdcgan::train::recipe::Recipe;

fn main() -> anyhow::Result<()> {
    let steps: u64 = std::env::args().nth(1).map_or(Ok(200), |s| s.parse())?;
    let config = TrainConfig {
        seed: 1,
        ..Recipe::Fast.config()
    };
    let data = Dataset::load(DatasetKind::Mnist, None, Split::Train)?;
    let device = cdcgan::backend::training_device();
    let mut state = initial_state(&config, &device);
    let mut engine = Engine::choose(&state, &config.model, config.precision, false, &device)?;
    let (batch, classes) = (config.batch_size, data.num_classes);
    for step in 0..steps {
        let first = (step as usize * batch) % (data.len() - batch);
        let real = HostBatch::real(&data, &(first..first + batch).collect::<Vec<_>>());
        // The iteration `cdcgan train` runs: schedule, both steps, moving average, guard.
        let at = At {
            step,
            done: step as f64 / steps as f64,
        };
        let stats = engine.iteration(&mut state, &config, &real, classes, at)?;
        if (step + 1) % 50 == 0 || step + 1 == steps {
            println!(
                "step {}: D loss {:.3}, G loss {:.3}, D(x) {:.2}, D(G(z)) {:.2}",
                step + 1,
                stats.d_loss,
                stats.g_loss,
                stats.d_real,
                stats.d_fake
            );
        }
    }
    engine.sync(&mut state)?; // the framework modules now hold the trained weights
    let sampler = cdcgan::sample::Sampler::from_generator(&state.generator);
    let sevens = sampler.digits(&[7; 10], 0)?;
    println!(
        "trained {steps} {} steps; drew {} sevens",
        engine.name(),
        sevens.len() / 784
    );
    Ok(())
}
