//! Safetensors files on disk, written atomically.
//!
//! This module depends on nothing else in the crate (the fuzz targets in
//! `fuzz/` compile it on its own).
//!
//! Every file is written to a temporary name in the same directory, synced,
//! then renamed over the old one, and the directory is synced: a crash at any
//! moment leaves either the old file or the new one, never a mix.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// One tensor on the host: shape and row-major f32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// The dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The values, row-major: the product of `shape` of them.
    pub values: Vec<f32>,
}

/// Tensors by name, in sorted order.
pub type NamedTensors = std::collections::BTreeMap<String, HostTensor>;

/// String metadata stored in a safetensors header (`__metadata__`).
pub type Metadata = HashMap<String, String>;

/// Writes `bytes` to `path` atomically (temp file + fsync + rename + dir fsync).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_via_temporary(path, bytes, true)
}

/// Replaces `path` with `bytes` atomically (temp file + rename) without
/// waiting for the disk: for small files rewritten every second, where a
/// crash may leave the previous version but never a mix.
pub fn replace(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_via_temporary(path, bytes, false)
}

fn write_via_temporary(path: &Path, bytes: &[u8], durable: bool) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    remove_stale_temporaries(dir, &prefix);
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        match durable {
            true => File::open(dir)?.sync_all(),
            false => Ok(()),
        }
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        let hint = match e.raw_os_error() {
            Some(28) => " (the disk is full: free space and resume; the previous file is intact)",
            Some(30) | Some(13) => " (the directory is not writable; the previous file is intact)",
            _ => " (the previous file, if any, is intact)",
        };
        return Err(e).with_context(|| format!("{}: cannot write{hint}", path.display()));
    }
    Ok(())
}

/// Removes `dir/{prefix}PID` files whose process is gone: what a write
/// killed between creating its temporary file and renaming it left behind.
/// Where /proc cannot say whether a process lives, nothing is removed.
fn remove_stale_temporaries(dir: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let alive = pid.parse::<u32>().is_ok_and(|pid| {
            pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
        });
        if !alive && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Serialises named f32 tensors and metadata as safetensors bytes.
pub fn to_bytes(tensors: &NamedTensors, metadata: &Metadata) -> anyhow::Result<Vec<u8>> {
    let raw: Vec<(&String, &HostTensor, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let bytes = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, t, bytes)
        })
        .collect();
    let views = raw
        .iter()
        .map(|(name, t, bytes)| {
            Ok((
                name.as_str(),
                TensorView::new(Dtype::F32, t.shape.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    // safetensors 0.6 writes an unreadable header for an empty metadata map
    // when there are no tensors (`{},"__metadata__":{}}`; found by fuzzing):
    // leave the map out when it is empty.
    let metadata = (!metadata.is_empty()).then(|| metadata.clone());
    Ok(safetensors::serialize(views, metadata)?)
}

/// Writes named tensors to `path` atomically.
pub fn save(path: &Path, tensors: &NamedTensors, metadata: &Metadata) -> anyhow::Result<()> {
    write_atomic(path, &to_bytes(tensors, metadata)?)
}

/// Reads a safetensors file of f32 tensors. Errors name the file.
pub fn load(path: &Path) -> anyhow::Result<(NamedTensors, Metadata)> {
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    from_bytes(&bytes)
        .with_context(|| format!("{}: not a valid cdcgan weights file", path.display()))
}

/// The `__metadata__` of safetensors `bytes` (the whole file), without
/// reading its tensors.
pub fn metadata_of(bytes: &[u8]) -> anyhow::Result<Metadata> {
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    Ok(header.metadata().clone().unwrap_or_default())
}

/// Parses safetensors bytes holding f32 tensors.
pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<(NamedTensors, Metadata)> {
    let metadata = metadata_of(bytes)?;
    let file = SafeTensors::deserialize(bytes)?;
    let mut tensors = NamedTensors::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            bail!("tensor `{name}` is {:?}, cdcgan stores f32", view.dtype());
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect::<Vec<f32>>();
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            bail!(
                "tensor `{name}` holds {bad}: the file is damaged, or the run that wrote it diverged"
            );
        }
        tensors.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    Ok((tensors, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NamedTensors {
        let mut t = NamedTensors::new();
        t.insert(
            "deconv1.weight".into(),
            HostTensor {
                shape: vec![2, 3],
                values: vec![1.0, -2.5, 3.0, f32::MIN_POSITIVE, 0.0, 7.0],
            },
        );
        t
    }

    #[test]
    fn save_load_round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.safetensors");
        let meta = Metadata::from([("step".to_string(), "42".to_string())]);
        save(&path, &sample(), &meta).unwrap();
        let (back, meta_back) = load(&path).unwrap();
        assert_eq!(back, sample());
        assert_eq!(meta_back["step"], "42");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".g.png.tmp-4294967295");
        let other = dir.path().join(".h.png.tmp-4294967295");
        let living = dir.path().join(format!(
            ".g.png.tmp-{}",
            std::os::unix::process::parent_id()
        ));
        for file in [&dead, &other, &living] {
            fs::write(file, b"torn").unwrap();
        }
        write_atomic(&dir.path().join("g.png"), b"new").unwrap();
        assert!(!dead.exists(), "a dead writer's temporary is removed");
        assert!(
            other.exists() && living.exists(),
            "another file's, and a living writer's, stay"
        );
    }

    #[test]
    fn empty_files_round_trip() {
        for meta in [
            Metadata::new(),
            Metadata::from([("a".to_string(), "b".to_string())]),
        ] {
            let bytes = to_bytes(&NamedTensors::new(), &meta).unwrap();
            let (tensors, back) = from_bytes(&bytes).unwrap();
            assert!(tensors.is_empty());
            assert_eq!(back, meta);
        }
    }

    #[test]
    fn corrupt_files_are_rejected_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.safetensors");
        let good = to_bytes(&sample(), &Metadata::new()).unwrap();
        for bad in [good[..good.len() - 5].to_vec(), b"garbage".to_vec(), vec![]] {
            fs::write(&path, &bad).unwrap();
            let err = format!("{:#}", load(&path).unwrap_err());
            assert!(err.contains("g.safetensors"), "{err}");
        }
    }
}
