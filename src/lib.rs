//! cdcgan: a conditional DCGAN for MNIST-style images, in Rust on burn.
//!
//! The modules follow the data flow: [`data`] reads IDX sets, [`model`]
//! holds the networks, [`train`] fits them, [`sample`] draws digits from a
//! trained generator, [`serve`] puts it on a web page, [`store`] and [`run`] keep everything on disk, and
//! [`cli`] is the command line.

pub mod arch;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod data;
pub mod eval;
pub mod model;
pub mod native;
pub mod onnx;
pub mod optim;
pub mod plot;
pub mod rng;
pub mod run;
pub mod sample;
pub mod serve;
pub mod store;
pub mod train;
