//! `cdcgan export --onnx` writes a generator that an independent runtime
//! (onnxruntime, from PyPI; `scripts/test` installs it in a venv) runs to the
//! same images as cdcgan for the same noise and labels, for any batch size:
//! grey digits at 28 pixels, and colour emoji at 32 and 64.

use std::path::PathBuf;
use std::process::Command;

use cdcgan::model::one_hot_values;
use cdcgan::run::RunDir;
use cdcgan::sample::Sampler;

mod common;

/// The Python that has onnxruntime: $CDCGAN_PYTHON (scripts/test sets it).
fn python() -> String {
    let python = std::env::var("CDCGAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import onnxruntime, numpy"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{python} cannot import onnxruntime and numpy: run scripts/test (it makes a venv with them), \
         or `python3 -m pip install onnxruntime numpy`, or set CDCGAN_PYTHON"
    );
    python
}

fn raw<T: Copy>(values: &[T], to_le: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    values.iter().flat_map(|v| to_le(*v)).collect()
}

#[test]
fn exported_generator_matches_cdcgan_in_onnxruntime() {
    exported_generator_matches_cdcgan(&[]);
}

#[test]
fn exported_class_norm_generator_matches_cdcgan_in_onnxruntime() {
    exported_generator_matches_cdcgan(&["--class-norm"]);
}

#[test]
fn exported_colour_generators_at_32_and_64_pixels_match_cdcgan_in_onnxruntime() {
    let data = common::emoji_subset();
    for size in ["32", "64"] {
        exported_generator_matches_cdcgan(&[
            "--data",
            data.to_str().unwrap(),
            "--image-size",
            size,
        ]);
    }
}

/// A run trained with `flags`, exported, run by onnxruntime for 1 and 13
/// images: the same images as cdcgan's.
fn exported_generator_matches_cdcgan(flags: &[&str]) {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    // Enough steps that the images span most of [-1, 1].
    common::train_tiny_with(&run_dir, 40, flags);
    let model = dir.path().join("g.onnx");
    let out = common::cdcgan(&[
        "export",
        "--run",
        run_dir.to_str().unwrap(),
        "--onnx",
        model.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let sampler = Sampler::load(&RunDir::new(&run_dir).sampling_generator()).unwrap();
    let check = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/onnx_check.py");
    let (classes, image) = (sampler.num_classes(), sampler.image());
    let folder = flags.contains(&"--data");
    for n in [1usize, 13] {
        let labels: Vec<u8> = (0..n).map(|i| (i * 7 % classes) as u8).collect();
        let z = sampler.noise(5, 0, n);
        let expected = sampler.forward(&z, &one_hot_values(&labels, classes));
        let path = |name: &str| dir.path().join(format!("{name}-{n}"));
        std::fs::write(path("z"), raw(&z, |v: f32| v.to_le_bytes().to_vec())).unwrap();
        let wide: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        std::fs::write(
            path("labels"),
            raw(&wide, |v: i64| v.to_le_bytes().to_vec()),
        )
        .unwrap();
        std::fs::write(
            path("expected"),
            raw(&expected, |v: f32| v.to_le_bytes().to_vec()),
        )
        .unwrap();
        let out = Command::new(&python)
            .arg(&check)
            .arg(&model)
            .args([path("z"), path("labels"), path("expected")])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        eprintln!("n = {n}: {said}");
        assert!(
            out.status.success(),
            "n = {n}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (c, side) = (image.channels, image.side);
        assert!(
            said.contains(&format!("shape=[{n}, {c}, {side}, {side}]")),
            "{said}"
        );
        let names = sampler.class_names().join(",");
        let dataset = if folder { "folder" } else { "mnist" };
        let meta = format!("classes={names} dataset={dataset}");
        assert!(said.contains(&meta), "{said}");
        // The run's noise scale travels with the graph, for whoever draws z.
        let scale = format!("noise_scale={}", sampler.noise_scale());
        assert!(said.contains(&scale), "{said}");
    }
}
