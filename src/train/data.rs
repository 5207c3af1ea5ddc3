//! A run's training images: MNIST or Fashion-MNIST from their IDX files,
//! or an image folder decoded once (by the class names config.json keeps)
//! and cached in the run's data/ for resumes; checked against the batch size
//! and the model.

use std::path::Path;

use anyhow::{Context, bail};
use rand::Rng;
use rand::seq::SliceRandom;

use super::config::TrainConfig;
use crate::data::idx::encode;
use crate::data::{Dataset, DatasetKind, Split};
use crate::interrupt::Stop;
use crate::rng::{Purpose, stream};
use crate::run::RunDir;

/// The training images (--limit applied), checked against the batch size
/// and the model's classes.
pub(super) fn training_data(
    config: &TrainConfig,
    run: &RunDir,
    resume: bool,
    stop: Stop,
) -> anyhow::Result<Dataset> {
    let mut data = match (config.dataset, resume) {
        // An image-folder run decodes its folder once; a resume reads the cache.
        (DatasetKind::Folder, true) => cached_folder(config, run, stop)?,
        // The classes config.json names, not a second listing of the folder.
        (DatasetKind::Folder, false) => decode_folder(config, stop)?,
        (kind, _) => Dataset::load(kind, config.data_dir.as_deref(), Split::Train)?,
    };
    let found = data.len();
    if let Some(limit) = config.limit {
        data.truncate(limit);
    }
    if data.len() < config.batch_size {
        let (what, fix) = match (config.limit, config.data_dir.as_deref()) {
            (Some(limit), _) if limit < found => (
                format!("the {limit} training images --limit keeps (of {found})"),
                "lower --batch-size or raise --limit",
            ),
            (_, Some(dir)) if config.dataset == DatasetKind::Folder => (
                format!("the {found} images of --data {}", dir.display()),
                "give a smaller --batch-size, or add images",
            ),
            _ => (
                format!("the {found} training images"),
                "give a smaller --batch-size",
            ),
        };
        let fix = match resume {
            true => "a resumed run keeps its --batch-size: start a new run with a smaller one",
            false => fix,
        };
        bail!(
            "--batch-size {} is larger than {what}; {fix}",
            config.batch_size
        );
    }
    let (model, have) = (config.model.generator.image(), data.shape);
    anyhow::ensure!(
        model == have,
        "the model is built for {}x{} images of {} channels, the data set's are {}x{} of {}",
        model.side,
        model.side,
        model.channels,
        have.side,
        have.side,
        have.channels
    );
    anyhow::ensure!(
        config.model.generator.num_classes == data.num_classes,
        "the model is built for {} classes, the data set has {}",
        config.model.generator.num_classes,
        data.num_classes
    );
    Ok(data)
}

/// Decodes an image-folder run's folder, by the class names in its config.
fn decode_folder(config: &TrainConfig, stop: Stop) -> anyhow::Result<Dataset> {
    let Some(dir) = config.data_dir.as_deref() else {
        bail!("an image-folder run needs --data DIR");
    };
    let classes = config.classes();
    let scan = crate::data::folder::scan_classes(dir, &classes, config.decoding(), stop)?;
    tracing::info!("--data {}: {}", dir.display(), scan.report());
    Ok(scan.data)
}

/// An image-folder run's decoded images, read back from data/ on resume
/// and checked against the run (its image shape, its classes); a cache that is gone
/// is decoded from the folder again.
fn cached_folder(config: &TrainConfig, run: &RunDir, stop: Stop) -> anyhow::Result<Dataset> {
    let (images, labels) = (run.cached_images(), run.cached_labels());
    let cache_gone = !images.exists() && !labels.exists();
    compare_classes(config, run, cache_gone)?;
    if cache_gone {
        tracing::warn!(
            "{}: no decoded images; decoding the folder again",
            images.display()
        );
        let data = decode_folder(config, stop)?;
        cache_folder(run, &data, &config.classes())?;
        return Ok(data);
    }
    let damaged = |why: String| {
        anyhow::anyhow!(
            "{}: {why}; the run's decoded images are damaged: remove {} and resume again \
             to decode the folder anew",
            images.display(),
            images.parent().unwrap_or(run.root.as_path()).display()
        )
    };
    let data = Dataset::from_files(&images, &labels, config.classes().len())
        .map_err(|e| damaged(format!("{e:#}")))?;
    let (have, want) = (data.shape, config.model.generator.image());
    if have != want {
        return Err(damaged(format!(
            "its images are {}x{} of {} channels, not the run's {}x{} of {}",
            have.side, have.side, have.channels, want.side, want.side, want.channels
        )));
    }
    Ok(data)
}

/// A resumed folder run keeps its classes: a class folder added since is
/// named as left out; one removed is an error when the run's decoded images
/// are gone too (nothing is left to train that class on).
fn compare_classes(config: &TrainConfig, run: &RunDir, cache_gone: bool) -> anyhow::Result<()> {
    let Some(dir) = config.data_dir.as_deref().filter(|d| d.is_dir()) else {
        return Ok(());
    };
    let (kept, now) = (config.classes(), crate::data::folder::listed_classes(dir)?);
    let added: Vec<&String> = now.iter().filter(|c| !kept.contains(c)).collect();
    let removed: Vec<&String> = kept.iter().filter(|c| !now.contains(c)).collect();
    if !added.is_empty() {
        tracing::warn!(
            "--data {}: the class folders {added:?} were added since the run started and are \
             not trained on: a resumed run keeps its {} classes; start a new run to include them",
            dir.display(),
            kept.len()
        );
    }
    if removed.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        !cache_gone,
        "--resume {}: the run's decoded images ({}) are gone, and --data {} no longer has the \
         class folders {removed:?} the run trains on; put them back (or the run's data/) to \
         resume, or start a new run",
        run.root.display(),
        run.cached_images()
            .parent()
            .unwrap_or(run.root.as_path())
            .display(),
        dir.display()
    );
    tracing::info!(
        "--data {}: the class folders {removed:?} are gone; the run goes on training on their \
         images decoded in {}",
        dir.display(),
        run.root.join("data").display()
    );
    Ok(())
}

/// Writes an image-folder run's decoded images into the run (IDX files and
/// classes.txt), for resumes.
pub(super) fn cache_folder(run: &RunDir, data: &Dataset, classes: &[String]) -> anyhow::Result<()> {
    let dir = run
        .cached_images()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let (channels, side) = (data.shape.channels, data.shape.side);
    let dims = match channels {
        1 => vec![data.len(), side, side],
        _ => vec![data.len(), channels, side, side],
    };
    let write = |path: &Path, bytes: &[u8]| crate::store::write_atomic(path, bytes);
    write(
        &dir.join("classes.txt"),
        (classes.join("\n") + "\n").as_bytes(),
    )?;
    write(&run.cached_labels(), &encode(&[data.len()], &data.labels)?)?;
    write(&run.cached_images(), &encode(&dims, &data.images)?)
}

/// The data order of `epoch`: a permutation drawn from (seed, epoch). With
/// `even`, as many draws from it, each of a class drawn uniformly and then
/// that class's next image in the permutation (round after round: a small
/// class's images repeat, a large class's wait for the next epoch).
pub fn epoch_order(labels: &[u8], seed: u64, epoch: usize, even: bool) -> Vec<usize> {
    let mut rng = stream(seed, Purpose::Shuffle, epoch as u64);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(&mut rng);
    if !even {
        return order;
    }
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut by_class = vec![Vec::new(); classes];
    for &i in &order {
        by_class[labels[i] as usize].push(i);
    }
    by_class.retain(|images| !images.is_empty());
    let mut taken = vec![0; by_class.len()];
    (0..labels.len())
        .map(|_| {
            let c = rng.random_range(0..by_class.len());
            taken[c] += 1;
            by_class[c][(taken[c] - 1) % by_class[c].len()]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_classes_draw_each_class_equally_often() {
        // 900 images of class 0, 100 of class 2, none of class 1.
        let labels: Vec<u8> = (0..1000).map(|i| if i < 900 { 0 } else { 2 }).collect();
        let mut plain = epoch_order(&labels, 1, 3, false);
        plain.sort_unstable();
        assert_eq!(plain, (0..1000).collect::<Vec<_>>(), "a permutation");
        let even = epoch_order(&labels, 1, 3, true);
        assert_eq!(even, epoch_order(&labels, 1, 3, true), "seeded");
        assert_eq!(even.len(), 1000);
        let small = even.iter().filter(|&&i| labels[i] == 2).count();
        assert!(
            (430..570).contains(&small),
            "{small} of 1000 from the small class"
        );
        // The small class's images come round by round: each 4-6 times.
        let mut seen = [0usize; 100];
        even.iter()
            .filter(|&&i| i >= 900)
            .for_each(|&i| seen[i - 900] += 1);
        assert!(
            seen.iter()
                .all(|&n| n + 1 >= small / 100 && n <= small / 100 + 1)
        );
    }
}
