//! The test build reuses the release build: every crate that `cargo build --release` compiles is
//! compiled by `cargo test --release` with the same features, so the second command after the first
//! compiles only this crate and its tests. A dev-dependency that turns on another feature of a
//! shared crate (as tempfile and proptest did for fastrand, bitflags and regex-syntax) would make
//! cargo compile burn and gemm a second time; Cargo.toml names those features in [dependencies].

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Package -> the feature sets it is built with, for the dependency kinds in `edges`.
fn features(edges: &str) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "--locked", "-e", edges])
        .args(["--prefix", "none", "-f", "{p}|{f}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -e {edges} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let line = line.trim_end_matches(" (*)");
        if let Some((package, features)) = line.split_once('|') {
            map.entry(package.to_string())
                .or_default()
                .insert(features.to_string());
        }
    }
    map
}

#[test]
fn test_build_adds_no_feature_to_a_release_dependency() {
    let release = features("normal,build");
    let test = features("normal,build,dev");
    assert!(
        release.len() > 100,
        "cargo tree listed only {} packages",
        release.len()
    );
    let changed: Vec<String> = release
        .iter()
        .filter(|(package, features)| test.get(*package) != Some(features))
        .map(|(package, features)| format!("{package}: {features:?} -> {:?}", test.get(package)))
        .collect();
    assert!(
        changed.is_empty(),
        "the dev-dependencies change these crates' features, so `cargo test --release` would \
         recompile them and everything above them; name the features in Cargo.toml's \
         [dependencies]:\n{}",
        changed.join("\n")
    );
}
