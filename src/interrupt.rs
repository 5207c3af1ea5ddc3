//! Stopping long work on request (Ctrl-C, SIGTERM): the flag the caller
//! sets, checked between blocks of work, and the error such work ends with.

use std::sync::atomic::{AtomicBool, Ordering};

/// What work returns when it stopped on request after saving what it had:
/// the command line exits with 130 (as a shell reports Ctrl-C), without an
/// error line.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// A stop request to honour between blocks of long work.
#[derive(Debug, Clone, Copy)]
pub struct Stop<'a>(Option<&'a AtomicBool>);

impl<'a> Stop<'a> {
    /// Never set: the work runs to its end.
    pub const NEVER: Stop<'static> = Stop(None);

    /// Set when `flag` is.
    pub fn on(flag: &'a AtomicBool) -> Self {
        Self(Some(flag))
    }

    /// `Err(Interrupted)` once a stop was requested.
    pub fn check(self) -> Result<(), Interrupted> {
        match self.0.is_some_and(|f| f.load(Ordering::SeqCst)) {
            true => Err(Interrupted),
            false => Ok(()),
        }
    }
}
