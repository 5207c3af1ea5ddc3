//! Training: losses, the optimizer, one GAN step, the loop around it, and
//! what a run writes (config, metrics, checkpoints).

pub mod checkpoint;
pub mod config;
pub mod cpu_step;
pub mod ema;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod preset;
pub mod recipe;
pub mod step;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{Ending, Options, Summary, train};
