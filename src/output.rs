//! The files a user names for output (`--out`, `--onnx`): checked before any
//! work, so a long export fails at once, and never written over something
//! cdcgan did not make for that purpose. Writes go through
//! [`crate::store::write_atomic`] (a temporary file renamed into place),
//! which would replace whatever sits at the name: a device node, a FIFO, a
//! symbolic link (leaving its target as it was), a hard link (breaking it),
//! another program's file or a run's own weights. [`check`] refuses each of
//! those with one line that names the flag, the path and what to do.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, bail, ensure};

/// What an output file holds, and so what an existing file at its name
/// must be for cdcgan to replace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A PNG image (`.png`).
    Png,
    /// A GIF animation (`.gif`).
    Gif,
    /// An ONNX model written by cdcgan (`.onnx`).
    Onnx,
    /// An evaluator classifier written by cdcgan (`.safetensors`).
    Evaluator,
    /// One of the files of an `export` folder (replaced with the export's marker only).
    Export,
}

impl Kind {
    /// The kind `morph --out` writes: a GIF by extension, else a PNG strip.
    pub fn image(path: &Path) -> Self {
        match extension(path).as_deref() {
            Some("gif") => Kind::Gif,
            _ => Kind::Png,
        }
    }

    /// The file name extensions this kind is written under.
    fn extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Png => &["png"],
            Kind::Gif => &["gif"],
            Kind::Onnx => &["onnx"],
            Kind::Evaluator => &["safetensors"],
            Kind::Export => &[],
        }
    }

    /// Whether the existing file at `path`, whose first bytes are `head`,
    /// is this kind as cdcgan writes it.
    fn matches(self, path: &Path, head: &[u8]) -> bool {
        match self {
            Kind::Png => head.starts_with(b"\x89PNG\r\n\x1a\n"),
            Kind::Gif => head.starts_with(b"GIF8"),
            // The model proto's producer_name, near the start of every file cdcgan writes.
            Kind::Onnx => head.windows(6).any(|w| w == b"cdcgan"),
            Kind::Evaluator => head.get(8) == Some(&b'{') && is_evaluator(path),
            Kind::Export => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Png => "a PNG image",
            Kind::Gif => "a GIF animation",
            Kind::Onnx => "an ONNX model that cdcgan wrote",
            Kind::Evaluator => "an evaluator classifier that cdcgan wrote",
            Kind::Export => "an export",
        }
    }
}

/// Whether `path` holds an evaluator that `cdcgan classifier train` wrote
/// (its header says so), not a generator, a checkpoint or another
/// program's weights. An evaluator is a few MB: a file over
/// [`EVALUATOR_MAX_BYTES`] is none.
fn is_evaluator(path: &Path) -> bool {
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() <= EVALUATOR_MAX_BYTES);
    small
        && std::fs::read(path)
            .ok()
            .and_then(|bytes| crate::store::metadata_of(&bytes).ok())
            .and_then(|meta| meta.get("trained_with").cloned())
            .is_some_and(|by| by.starts_with("cdcgan ") && by.contains(" classifier train "))
}

/// The largest file [`is_evaluator`] reads.
const EVALUATOR_MAX_BYTES: u64 = 256 << 20;

/// The lower-case extension of `path`, if it has one.
fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// Checks that `path` (given with `flag`) may be written as `kind`: its
/// folder exists, and the name is free or holds a regular file of that kind,
/// with no other hard link, that is not one of a training run's own files.
pub fn check(path: &Path, flag: &str, kind: Kind) -> anyhow::Result<()> {
    let shown = path.display();
    let wanted = kind.extensions();
    if let Some(&ext) = wanted.first() {
        ensure!(
            extension(path).is_some_and(|e| wanted.contains(&e.as_str())),
            "{flag} {shown}: cdcgan writes {} here; name the file .{ext}",
            kind.name()
        );
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure!(
        parent.is_dir(),
        "{flag} {shown}: the folder {} does not exist; create it first",
        parent.display()
    );
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("{flag} {shown}: cannot inspect")),
    };
    refuse_special(&meta, flag, path)?;
    ensure!(
        meta.nlink() == 1,
        "{flag} {shown}: has {} hard links, and replacing it would break them; choose a new name",
        meta.nlink()
    );
    if let Some(run) = owning_run(path) {
        bail!(
            "{flag} {shown}: is one of the run {}'s own files; write elsewhere",
            run.display()
        );
    }
    let mut head = vec![0u8; 4096];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .with_context(|| format!("{flag} {shown}: cannot read the file there"))?;
    ensure!(
        read == 0 || kind.matches(path, &head[..read]),
        "{flag} {shown}: holds a file that is not {}; cdcgan does not overwrite it: \
         remove it or choose another name",
        kind.name()
    );
    Ok(())
}

/// Refuses what is not a regular file: a link, a folder, a device, a FIFO, a socket.
fn refuse_special(meta: &std::fs::Metadata, flag: &str, path: &Path) -> anyhow::Result<()> {
    let t = meta.file_type();
    let what = if t.is_symlink() {
        "a symbolic link (cdcgan writes neither through nor over links; give the target's own path)"
    } else if t.is_dir() {
        "a folder; give a file name inside it"
    } else if t.is_fifo() {
        "a FIFO, not a regular file"
    } else if t.is_char_device() || t.is_block_device() {
        "a device, not a regular file"
    } else if t.is_socket() {
        "a socket, not a regular file"
    } else {
        return Ok(());
    };
    bail!("{flag} {}: is {what}", path.display())
}

/// The files and folders a training run keeps at its root (see [`crate::run`]).
const RUN_OWN: [&str; 9] = [
    "config.json",
    "metrics.csv",
    "loss.png",
    "quality.png",
    "eval.json",
    ".lock",
    "samples",
    "checkpoint",
    "data",
];

/// The training run whose own files include `path`: a folder above it that
/// holds a cdcgan config.json and a checkpoint/ folder, with `path` one of
/// [`RUN_OWN`] or inside one of its folders.
fn owning_run(path: &Path) -> Option<std::path::PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let run = absolute.ancestors().skip(1).take(3).find(|dir| {
        dir.join("checkpoint").is_dir()
            && std::fs::read_to_string(dir.join("config.json"))
                .is_ok_and(|text| text.contains("\"cdcgan_version\""))
    })?;
    let first = absolute.strip_prefix(run).ok()?.components().next()?;
    RUN_OWN
        .contains(&first.as_os_str().to_str()?)
        .then(|| run.to_path_buf())
}

/// Whether `name` is one of a PNG export's files (`00042.png`).
pub fn exported_png(name: &str) -> bool {
    name.strip_suffix(".png")
        .is_some_and(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks an `export --out` folder: missing, empty, or an earlier export
/// (it holds `marker`); each file the export writes there must pass
/// [`check`], and each class folder of a PNG export (`folders`) must be a
/// folder holding nothing but an export's PNGs (`00042.png`).
pub fn check_export_dir(
    dir: &Path,
    marker: &str,
    files: &[&str],
    folders: &[&str],
) -> anyhow::Result<()> {
    let shown = dir.display();
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("--out {shown}: cannot inspect")),
    };
    ensure!(
        meta.is_dir(),
        "--out {shown}: is not a folder; export --out names the folder it writes into \
         (missing, empty, or an earlier export)"
    );
    let earlier = dir.join(marker).is_file();
    let not_ours = |name: &str| match earlier {
        false => anyhow::anyhow!(
            "--out {shown}: holds {name}, which no cdcgan export wrote (no {marker}); \
             cdcgan does not overwrite it: choose a new folder"
        ),
        true => anyhow::anyhow!(
            "--out {shown}: holds {name}, which the earlier export there did not write (its \
             class folders hold only NNNNN.png files); cdcgan does not overwrite it: move it \
             away or choose a new folder"
        ),
    };
    for name in files.iter().chain([&marker]) {
        let file = dir.join(name);
        if std::fs::symlink_metadata(&file).is_err() {
            continue;
        }
        ensure!(earlier, not_ours(name));
        check(&file, "--out", Kind::Export)?;
    }
    for name in folders {
        let folder = dir.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&folder) else {
            continue;
        };
        ensure!(earlier && meta.is_dir(), not_ours(name));
        for entry in std::fs::read_dir(&folder)?.filter_map(Result::ok) {
            let file = entry.file_name().to_string_lossy().to_string();
            ensure!(
                exported_png(&file) && entry.file_type().is_ok_and(|t| t.is_file()),
                not_ours(&format!("{name}/{file}"))
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_free_names_and_own_kinds_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        check(&at("new.png"), "--out", Kind::Png).unwrap();
        let err = check(&at("new.jpg"), "--out", Kind::Png).unwrap_err();
        assert!(err.to_string().contains("name the file .png"), "{err}");
        std::fs::write(at("old.png"), b"\x89PNG\r\n\x1a\n rest").unwrap();
        check(&at("old.png"), "--out", Kind::Png).unwrap();
        std::fs::write(at("notes.png"), "my notes").unwrap();
        let err = check(&at("notes.png"), "--out", Kind::Png).unwrap_err();
        assert!(err.to_string().contains("not a PNG image"), "{err}");
        std::os::unix::fs::symlink(at("old.png"), at("link.png")).unwrap();
        let err = check(&at("link.png"), "--out", Kind::Png).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        std::fs::hard_link(at("old.png"), at("hard.png")).unwrap();
        let err = check(&at("hard.png"), "--out", Kind::Png).unwrap_err();
        assert!(err.to_string().contains("2 hard links"), "{err}");
        let err = check(&at("no/such.png"), "--out", Kind::Png).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
