//! Disk trouble done for real (as root, like CI): a full file system (a small
//! tmpfs) and a read-only one (a read-only bind mount). Each write fails with
//! a clear message and the previous checkpoint stays intact and loadable.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{cdcgan, checkpoint_step, generate_grid};

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mount(PathBuf);

impl Mount {
    fn run(args: &[&str], target: &Path) -> Mount {
        let status = Command::new("mount")
            .args(args)
            .arg(target)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mount {args:?} {} failed: these tests need root",
            target.display()
        );
        Mount(target.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

const TINY: [&str; 8] = [
    "--limit",
    "200",
    "--batch-size",
    "20",
    "--eval-every",
    "0",
    "--quiet",
    "--checkpoint-every",
];

#[test]
fn a_full_disk_fails_clearly_and_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    // One checkpoint of the seed network (about 50 MB) fits; writing the second
    // beside it does not.
    let _mount = Mount::run(&["-t", "tmpfs", "-o", "size=70M", "tmpfs"], &mnt);
    let run = mnt.join("run");
    let out = cdcgan(
        &[
            &["train", "--out", run.to_str().unwrap(), "--max-steps", "6"],
            &["--recipe", "seed"][..],
            &TINY[..],
            &["2"],
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "training on a full disk should fail");
    assert!(
        stderr.contains("disk is full") && stderr.contains("previous file is intact"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        checkpoint_step(&run).unwrap(),
        2,
        "the step-2 checkpoint survives"
    );
    cdcgan::sample::Sampler::load(&run.join("checkpoint/generator.safetensors")).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(run.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_read_only_run_directory_fails_clearly_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let out = cdcgan(
        &[
            &["train", "--out", run_s, "--max-steps", "2"],
            &TINY[..],
            &["2"],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = std::fs::read(run.join("checkpoint/train_state.safetensors")).unwrap();

    let _bind = Mount::run(&["--bind", run_s], &run);
    let _ro = Command::new("mount")
        .args(["-o", "remount,ro,bind"])
        .arg(&run)
        .status()
        .unwrap();
    assert!(_ro.success());
    let out = cdcgan(&["train", "--resume", run_s, "--max-steps", "4", "--quiet"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("not writable") && stderr.contains(run_s),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(std::fs::read(run.join("checkpoint/train_state.safetensors")).unwrap() == before);
    // Reading still works: generation from a read-only run into a writable place.
    let grid = dir.path().join("grid.png");
    let out = generate_grid(run_s, &grid);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Writing the picture into the read-only run fails with the path named.
    let inside = run.join("grid.png");
    let out = generate_grid(run_s, &inside);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("grid.png") && stderr.contains("not writable"),
        "{stderr}"
    );
}
