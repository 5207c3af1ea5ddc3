//! Checkpoints: everything needed to continue a run exactly.
//!
//! `train_state.safetensors` alone holds G, D, both Adam states and the
//! progress counters, so resuming reads one file that was written atomically:
//! it is either the previous checkpoint or the new one. `generator.safetensors`
//! and `discriminator.safetensors` hold each network under PyTorch names, with
//! its config in the header, for inference and for other tools.

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::step::GanState;
use crate::model::weights::{NamedTensors, export, import};
use crate::run::RunDir;
use crate::sample::NOISE_SCALE_KEY;
use crate::store::{self, Metadata};

const FORMAT: &str = "cdcgan-train-state/1";

/// Where a run stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Iterations done in total.
    pub step: u64,
    /// 0-based epoch in progress.
    pub epoch: usize,
    /// Batches of that epoch already trained on.
    pub batch_in_epoch: usize,
    /// Training wall time so far, across resumes.
    pub wall_s: f64,
}

fn prefixed(
    prefix: &str,
    tensors: NamedTensors,
) -> impl Iterator<Item = (String, crate::model::weights::HostTensor)> + '_ {
    tensors
        .into_iter()
        .map(move |(k, v)| (format!("{prefix}.{k}"), v))
}

fn take_prefixed(all: &NamedTensors, prefix: &str) -> NamedTensors {
    let p = format!("{prefix}.");
    all.iter()
        .filter_map(|(k, v)| k.strip_prefix(&p).map(|rest| (rest.to_string(), v.clone())))
        .collect()
}

/// Writes the three checkpoint files (each atomically).
pub fn save(
    run: &RunDir,
    state: &GanState,
    progress: &Progress,
    config: &TrainConfig,
) -> anyhow::Result<()> {
    let g = export(&state.generator);
    let d = export(&state.discriminator);
    let step = progress.step.to_string();
    let g_meta = Metadata::from([
        (
            "config".into(),
            serde_json::to_string(&config.model.generator)?,
        ),
        ("dataset".into(), config.dataset.name().into()),
        ("classes".into(), serde_json::to_string(&config.classes())?),
        (
            NOISE_SCALE_KEY.into(),
            config.sample_noise_scale.to_string(),
        ),
        ("step".into(), step.clone()),
    ]);
    let d_meta = Metadata::from([
        (
            "config".into(),
            serde_json::to_string(&config.model.discriminator)?,
        ),
        ("dataset".into(), config.dataset.name().into()),
        ("step".into(), step),
    ]);
    let mut all = NamedTensors::new();
    all.extend(prefixed("generator", g.clone()));
    all.extend(prefixed("discriminator", d.clone()));
    all.extend(prefixed("adam_g", state.adam_g.state()));
    all.extend(prefixed("adam_d", state.adam_d.state()));
    if let Some(ema) = &state.ema {
        all.extend(prefixed("ema", ema.tensors.clone()));
    }
    let meta = Metadata::from([
        ("format".into(), FORMAT.into()),
        ("model".into(), serde_json::to_string(&config.model)?),
        ("dataset".into(), config.dataset.name().into()),
        ("progress".into(), serde_json::to_string(progress)?),
        ("adam_g_steps".into(), state.adam_g.steps.to_string()),
        ("adam_d_steps".into(), state.adam_d.steps.to_string()),
        (
            "ema_updates".into(),
            state.ema.as_ref().map_or(0, |e| e.updates).to_string(),
        ),
        ("balance".into(), serde_json::to_string(&state.balance)?),
    ]);
    // The training state first: a kill between the files then leaves a run
    // that resumes (the networks' own files follow at its next checkpoint),
    // never networks without the state that a new run may not overwrite.
    store::save(&run.train_state(), &all, &meta)?;
    store::save(&run.generator(), &g, &g_meta)?;
    if let Some(ema) = state.ema.as_ref().filter(|e| !e.tensors.is_empty()) {
        store::save(&run.generator_ema(), &ema.tensors, &g_meta)?;
    }
    store::save(&run.discriminator(), &d, &d_meta)
}

/// Restores a run's state into freshly built networks (`fresh`), checking that
/// the checkpoint was made for the same architecture and data set.
pub fn load(
    run: &RunDir,
    fresh: GanState,
    config: &TrainConfig,
) -> anyhow::Result<(GanState, Progress)> {
    let path = run.train_state();
    let (all, meta) = store::load(&path)?;
    let context = || format!("{}: cannot resume from this checkpoint", path.display());
    let field = |key: &str| {
        meta.get(key)
            .with_context(|| format!("{}: header field `{key}` is missing", path.display()))
    };
    ensure!(
        field("format")? == FORMAT,
        "{}: unknown checkpoint format {:?}",
        path.display(),
        field("format")?
    );
    // Compared as values, a 0.1.0 checkpoint's `null` options upgraded.
    let mut saved: serde_json::Value = serde_json::from_str(field("model")?)
        .with_context(|| format!("{}: unreadable `model` header field", path.display()))?;
    crate::model::upgrade_json(&mut saved, None);
    if saved != serde_json::to_value(&config.model)? {
        bail!(
            "{}: the checkpoint is of another architecture than {} describes",
            path.display(),
            run.config().display()
        );
    }
    if field("dataset")? != config.dataset.name() {
        bail!(
            "{}: the checkpoint was trained on {}, the run's config says {}",
            path.display(),
            field("dataset")?,
            config.dataset.name()
        );
    }
    let progress: Progress = serde_json::from_str(field("progress")?).with_context(context)?;
    let steps = |key: &str| -> anyhow::Result<u64> { field(key)?.parse().with_context(context) };
    let generator =
        import(fresh.generator, &take_prefixed(&all, "generator")).with_context(context)?;
    let discriminator =
        import(fresh.discriminator, &take_prefixed(&all, "discriminator")).with_context(context)?;
    let mut adam_g = fresh.adam_g;
    adam_g
        .load_state(&take_prefixed(&all, "adam_g"), steps("adam_g_steps")?)
        .with_context(context)?;
    let mut adam_d = fresh.adam_d;
    adam_d
        .load_state(&take_prefixed(&all, "adam_d"), steps("adam_d_steps")?)
        .with_context(context)?;
    let ema = match fresh.ema {
        Some(mut ema) => {
            ema.tensors = take_prefixed(&all, "ema");
            ema.updates = steps("ema_updates")?;
            ensure!(
                ema.updates == 0 || !ema.tensors.is_empty(),
                "{}: the run averages G (--ema) but the checkpoint holds no average",
                path.display()
            );
            Some(ema)
        }
        None => None,
    };
    Ok((
        GanState {
            generator,
            discriminator,
            adam_g,
            adam_d,
            ema,
            // Checkpoints from before the regularisers' state start afresh.
            balance: match meta.get("balance") {
                Some(b) => serde_json::from_str(b).with_context(context)?,
                None => fresh.balance,
            },
        },
        progress,
    ))
}

/// Refuses a resume whose end (--epochs, --max-steps, --max-minutes) the
/// run has already reached: it would train nothing and still rewrite
/// config.json with the shorter length.
pub(super) fn refuse_nothing_to_train(
    config: &TrainConfig,
    p: &Progress,
    run: &RunDir,
) -> anyhow::Result<()> {
    let reached = if config.max_steps.is_some_and(|m| p.step >= m) {
        Some(format!(
            "--max-steps {}",
            config.max_steps.unwrap_or_default()
        ))
    } else if p.epoch >= config.epochs {
        Some(format!("--epochs {}", config.epochs))
    } else if config.max_minutes.is_some_and(|m| p.wall_s >= m * 60.0) {
        Some(format!(
            "--max-minutes {}",
            config.max_minutes.unwrap_or_default()
        ))
    } else {
        None
    };
    if let Some(end) = reached {
        bail!(
            "{}: the run is at step {} (epoch {} of {}, {:.0} s trained), already at {end}; \
             nothing to train: give a longer --max-steps, --epochs or --max-minutes",
            run.root.display(),
            p.step,
            p.epoch,
            config.epochs,
            p.wall_s
        );
    }
    Ok(())
}
