#![warn(missing_docs)]
//! cdcgan: a conditional DCGAN for MNIST-style images, in Rust on burn.
//!
//! What to call for what:
//!
//! - **Write digits from a trained run**: [`sample::Sampler::load`] on
//!   [`run::RunDir::sampling_generator`], then [`sample::Sampler::digits`],
//!   [`sample::Sampler::seeded_grid`] or [`sample::Sampler::balanced_samples`];
//!   [`sample::image::write_grid`] writes a PNG (`examples/write_digits.rs`).
//! - **Train**: [`train::train`] with a [`train::TrainConfig`] (start from
//!   [`train::recipe::Recipe::config`]) and a [`run::RunDir`] runs the whole
//!   loop with checkpoints; for a loop of your own, [`train::engine::Engine`]
//!   steps the networks of [`train::engine::initial_state`] on
//!   [`train::engine::HostBatch`]es (`examples/train_steps.rs`).
//! - **Score samples**: [`eval::Evaluator::report`]; the classification
//!   accuracy score: [`eval::cas::classification_accuracy_score`].
//! - **Take the generator elsewhere**: [`onnx::write_generator`] (ONNX, opset 17).
//! - **Data**: [`data::Dataset::load`] (MNIST, Fashion-MNIST IDX files).
//!
//! Layers, from the bottom: [`arch`] (fixed numbers), [`interrupt`], [`store`], [`rng`],
//! [`backend`], [`run`], [`output`]; [`model`] (burn's modules), [`optim`] (Adam, losses),
//! [`native`] (our own CPU kernels: training step and sampling); [`sample`],
//! [`eval`], [`train`]; [`onnx`], [`bench`](mod@bench), [`serve`], [`cli`]. A module
//! imports only modules below it.

pub mod arch;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod data;
pub mod eval;
pub mod interrupt;
pub mod model;
pub mod native;
pub mod onnx;
pub mod optim;
pub mod output;
pub mod plot;
pub mod rng;
pub mod run;
pub mod sample;
pub mod serve;
mod simd;
pub mod store;
pub mod train;
