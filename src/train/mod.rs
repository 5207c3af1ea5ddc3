//! Training: the run's settings (recipe, objective, flags, config), one GAN
//! step through burn's autodiff, the engine that picks it or the native one,
//! the loop around it, and what a run writes (metrics, checkpoints).

pub mod checkpoint;
pub mod config;
mod data;
pub mod ema;
pub mod engine;
pub mod metrics;
mod quality;
pub mod recipe;
mod snapshot;
pub mod status;
pub mod step;
pub mod trainer;

pub use config::TrainConfig;
pub use status::Ending;
pub use trainer::{Options, Summary, train};
