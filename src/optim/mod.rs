//! What training optimises and how, for the GAN and the evaluator's
//! classifier alike: Adam over named tensors, and the losses.

pub mod adam;
pub mod augment;
pub mod balance;
pub mod loss;
pub mod objective;

pub use adam::{Adam, AdamConfig};
pub use augment::{Augment, AugmentP};
pub use balance::Balance;
pub use loss::{GanLoss, StepStats};
pub use objective::{FakeLabels, LrSchedule, Objective};
