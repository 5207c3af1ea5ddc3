//! Training: losses, the optimizer, one GAN step, the loop around it, and
//! what a run writes (config, metrics, checkpoints).

pub mod checkpoint;
pub mod config;
pub mod ema;
pub mod engine;
pub mod metrics;
pub mod preset;
pub mod recipe;
pub mod step;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{Ending, Options, Summary, train};
