//! Data: the IDX reader/writer and MNIST-style data sets.

pub mod dataset;
pub mod facts;
pub mod folder;
pub mod idx;

pub use dataset::{Dataset, DatasetKind, Split};
pub use facts::DataFacts;
