//! `--engine native|burn`, shared by `train` and `bench`.

use clap::{Args, ValueEnum};

use crate::native::Precision;

/// The training step's names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineName {
    /// Our own CPU kernels (the default).
    Native,
    /// burn's autodiff step: the reference the native step is checked against; slower.
    Burn,
}

/// Which step trains (or is timed).
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// The training step: native (our CPU kernels) or burn (burn's autodiff
    /// step, the reference; the same iteration, slower) [default: native].
    #[arg(long, value_enum, help_heading = "Speed", display_order = 8)]
    pub engine: Option<EngineName>,
    /// The older name of `--engine burn`.
    #[arg(long, hide = true, conflicts_with = "engine")]
    pub framework_step: bool,
}

impl EngineArgs {
    /// Whether burn's step was asked for.
    pub fn burn(&self) -> bool {
        self.framework_step || self.engine == Some(EngineName::Burn)
    }

    /// Refuses bf16 products on a CPU without them, and with burn's step,
    /// which has none: before anything is written or measured.
    pub fn check_precision(&self, precision: Precision) -> anyhow::Result<()> {
        precision.check()?;
        if self.burn() {
            crate::train::engine::refuse_bf16_on_burn(precision, crate::train::engine::BURN_ASKED)?;
        }
        Ok(())
    }
}
