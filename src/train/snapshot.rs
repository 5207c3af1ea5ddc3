//! What a run shows of itself at some epoch ends: the fixed-noise class
//! grid, the progress GIF and the plots, about [`EVALUATIONS`] times a run
//! whatever its length, so the cost of an epoch end does not grow with it.

use super::config::TrainConfig;
use super::metrics::{self, MetricsRow};
use super::recipe::EVALUATIONS;
use crate::model::Generator;
use crate::model::init::normal_values;
use crate::rng::{Purpose, stream};
use crate::run::RunDir;
use crate::sample::{Sampler, animation, image::write_grid};

/// The class grid's noise and the share of the run passed at the latest
/// snapshot.
pub(super) struct Snapshots {
    /// The noise of the class grid, the same at every snapshot.
    fixed_z: Vec<f32>,
    /// The [`EVALUATIONS`]ths of the run passed at the latest snapshot.
    mark: u64,
}

impl Snapshots {
    /// For a run `done` (a share) of the way through.
    pub(super) fn new(config: &TrainConfig, classes: usize, done: f64) -> Self {
        let fixed_z = normal_values(
            &mut stream(config.seed, Purpose::FixedGrid, 0),
            classes.min(crate::sample::MAX_GRID_COLUMNS) * config.model.generator.latent_dim,
            0.0,
            1.0,
        );
        Self {
            fixed_z,
            mark: mark(done),
        }
    }

    /// Whether an epoch end at `done` of the run writes a snapshot: when
    /// another [`EVALUATIONS`]th of the run (by steps or time) has passed,
    /// and at the `last` epoch. Every epoch of an MNIST run; about 30 of a
    /// small folder's many, whatever ends it.
    pub(super) fn due(&mut self, done: f64, last: bool) -> bool {
        let now = mark(done);
        let due = now > self.mark || last;
        self.mark = self.mark.max(now);
        due
    }

    /// The fixed-noise class grid of `epoch`, and the progress GIF of the
    /// grids so far.
    pub(super) fn write_grid(
        &self,
        run: &RunDir,
        sampled: &Generator,
        epoch: usize,
    ) -> anyhow::Result<()> {
        let sampler = Sampler::from_generator(sampled);
        let (rows, columns) = sampler.grid_shape();
        let grid = sampler.class_grid(&self.fixed_z)?;
        write_grid(
            &run.epoch_grid(epoch),
            &grid,
            sampler.image(),
            rows,
            columns,
        )?;
        animation::progress_gif(&run.samples(), &run.progress_gif())?;
        Ok(())
    }
}

/// The loss and quality plots from metrics.csv.
pub(super) fn write_plots(run: &RunDir) -> anyhow::Result<()> {
    let rows = metrics::read(&run.metrics())?;
    let losses: Vec<_> = rows.iter().map(MetricsRow::loss_point).collect();
    crate::plot::loss_plot(&losses, &run.loss_plot())?;
    let quality: Vec<_> = rows.iter().filter_map(MetricsRow::quality_point).collect();
    crate::plot::quality_plot(&quality, &run.quality_plot())
}

/// The [`EVALUATIONS`]ths of a run in its share `done`.
fn mark(done: f64) -> u64 {
    (done.clamp(0.0, 1.0) * EVALUATIONS as f64 + 1e-9).floor() as u64
}
