//! The quality probe of a training run: the in-training figures of
//! metrics.csv (`--eval-every`, `--eval-samples`), the real-data ceiling
//! beside them, the collapse warning, and the final evaluation (eval.json).

use std::time::Instant;

use anyhow::Context;

use super::config::TrainConfig;
use super::metrics::Quality;
use super::step::GanState;
use crate::data::DatasetKind;
use crate::eval::Evaluator;
use crate::eval::report::Figures;
use crate::interrupt::Stop;
use crate::model::Generator;
use crate::run::RunDir;
use crate::sample::Sampler;

/// The generator to sample from: the moving average when training keeps one.
pub(super) fn sampling_generator(
    state: &GanState,
    config: &TrainConfig,
) -> anyhow::Result<Generator> {
    match &state.ema {
        Some(ema) if !ema.tensors.is_empty() => ema.generator(&config.model.generator),
        _ => Ok(state.generator.clone()),
    }
}

/// `generator` drawing the noise the run's digits are drawn with
/// (`--sample-noise-scale`), as generate, export, eval and serve will.
fn run_sampler(generator: &Generator, config: &TrainConfig) -> anyhow::Result<Sampler> {
    Sampler::from_generator(generator).with_noise_scale(config.sample_noise_scale)
}

/// Samples in the final evaluation (eval.json).
pub(super) const FINAL_SAMPLES: usize = 10_000;

/// Measures sample quality during training with the committed evaluator.
/// The evaluator (classifier plus test-set features) is loaded on first use;
/// when the data set has none, evaluation is skipped with one warning.
pub(super) struct QualityProbe<'a> {
    config: &'a TrainConfig,
    evaluator: Option<Option<Evaluator>>,
    /// Whether the figures `--eval-samples` is too small for were named in the log.
    told_not_measured: bool,
    /// Real images scored as [`QualityProbe::measure`] scores samples, once.
    pub(super) ceiling: Option<Figures>,
    /// Seconds the evaluator took to load, until taken.
    load_s: f64,
    /// Seconds the latest measurement took (the ceiling left out).
    measure_s: Option<f64>,
}

impl<'a> QualityProbe<'a> {
    pub(super) fn new(config: &'a TrainConfig) -> Self {
        Self {
            config,
            evaluator: None,
            told_not_measured: false,
            ceiling: None,
            load_s: 0.0,
            measure_s: None,
        }
    }

    pub(super) fn evaluator(&mut self) -> Option<&Evaluator> {
        if self.evaluator.is_none() {
            let began = Instant::now();
            self.evaluator = Some(self.load_evaluator());
            self.load_s += began.elapsed().as_secs_f64();
        }
        self.evaluator.as_ref().and_then(Option::as_ref)
    }

    /// The data set's evaluator, or `None` (with a warning) when it has none.
    fn load_evaluator(&self) -> Option<Evaluator> {
        let config = self.config;
        if config.dataset == DatasetKind::Folder && config.classifier.is_none() {
            tracing::warn!(
                "sample quality is not measured: an image folder's run is scored by an \
                 evaluator trained on the folder (cdcgan classifier train --data DIR \
                 --out FILE), given with train --classifier FILE or eval --classifier FILE"
            );
            return None;
        }
        let classifier = config.classifier.as_deref();
        match Evaluator::new(config.dataset, config.data_dir.as_deref(), classifier) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!("sample quality will not be measured: {e:#}");
                None
            }
        }
    }

    /// The seconds the evaluator took to load since last asked (a one-off
    /// cost, left out of the pace).
    pub(super) fn take_load_s(&mut self) -> f64 {
        std::mem::take(&mut self.load_s)
    }

    /// What the final evaluation should take: 10,000 samples and as many
    /// real images, at the pace of the latest measurement.
    pub(super) fn final_report_s(&self) -> f64 {
        self.measure_s.map_or(0.0, |s| {
            2.0 * s * FINAL_SAMPLES as f64 / self.config.eval_samples.max(1) as f64
        })
    }

    /// Loads the evaluator given with `--classifier` now, before anything is
    /// written, refusing one that scores other images than the run makes.
    pub(super) fn load_given(&mut self) -> anyhow::Result<()> {
        let config = self.config;
        let Some(path) = &config.classifier else {
            return Ok(());
        };
        let evaluator = Evaluator::new(config.dataset, config.data_dir.as_deref(), Some(path))
            .with_context(|| format!("--classifier {}", path.display()))?;
        let (made, scored) = (config.model.generator.image(), evaluator.image());
        anyhow::ensure!(
            made == scored,
            "--classifier {}: it scores {}x{} images of {} channels; this run makes {}x{} of {} \
             (train one for the run's images: {})",
            path.display(),
            scored.side,
            scored.side,
            scored.channels,
            made.side,
            made.side,
            made.channels,
            crate::eval::fit::command_for(made)
        );
        self.evaluator = Some(Some(evaluator));
        Ok(())
    }

    /// The quick figures for metrics.csv: `eval_samples` samples from a fixed noise.
    /// Also the collapse guard: a class whose samples spread far less than
    /// the real class's is reported with the step.
    pub(super) fn measure(
        &mut self,
        generator: &Generator,
        step: u64,
    ) -> anyhow::Result<Option<Quality>> {
        let (config, first) = (self.config, self.ceiling.is_none());
        let Some(evaluator) = self.evaluator() else {
            return Ok(None);
        };
        let began = Instant::now();
        let sampler = run_sampler(generator, config)?;
        let labels = evaluator.class_mix(config.eval_samples);
        let (images, labels) = sampler.samples_until(labels, 0, Stop::NEVER)?;
        let f = evaluator.score(&images, &labels)?;
        let measure_s = began.elapsed().as_secs_f64();
        let diversity = evaluator.diversity(&f);
        let began_ceiling = Instant::now();
        let ceiling = match first {
            true => Some(evaluator.ceiling(&labels, 0)?),
            false => None,
        };
        // Measured once: a one-off cost, as the evaluator's load.
        self.load_s += began_ceiling.elapsed().as_secs_f64();
        self.ceiling = self.ceiling.take().or(ceiling);
        self.measure_s = Some(measure_s);
        for class in crate::eval::collapsed_classes(&diversity) {
            tracing::warn!(
                "class {class} is collapsing at step {step}: its samples spread {:.2}x as much as real ones",
                diversity[class].unwrap_or_default()
            );
        }
        if !std::mem::replace(&mut self.told_not_measured, true) {
            for (figure, reason) in &f.not_measured {
                tracing::warn!(
                    "--eval-samples {}: the in-training {figure} is n/a: it {reason}",
                    config.eval_samples
                );
            }
        }
        Ok(Some(Quality {
            accuracy: f.accuracy as f32,
            frechet: f.frechet.map(|v| v as f32),
            precision: f.precision as f32,
            recall: f.recall as f32,
        }))
    }

    /// eval.json in `run`: the full evaluation (10,000 samples, with the
    /// real-data ceiling) of `generator`; nothing without an evaluator.
    pub(super) fn write_final_report(
        &mut self,
        generator: &Generator,
        run: &RunDir,
        stop: Stop,
    ) -> anyhow::Result<()> {
        let config = self.config;
        let Some(evaluator) = self.evaluator() else {
            return Ok(());
        };
        let sampler = run_sampler(generator, config)?;
        let labels = evaluator.class_mix(FINAL_SAMPLES);
        let (images, labels) = sampler.samples_until(labels, 0, stop)?;
        let mut report = evaluator.report_until(&images, &labels, 0, stop)?;
        report.noise_scale = sampler.widened_noise_scale();
        let path = run.root.join("eval.json");
        let json = serde_json::to_string_pretty(&report)?;
        crate::store::write_atomic(&path, json.as_bytes())?;
        tracing::info!(
            "final evaluation in {}:\n{}",
            path.display(),
            report.table()
        );
        Ok(())
    }
}
