//! `cdcgan train --data DIR` on a folder of the user's own images, one
//! sub-folder per class: real MNIST digits written as PNG files (and a few
//! colour PNG and JPEG images), a corrupt file skipped and named, class
//! names round-tripping to `generate --label NAME`, a resume reading the
//! decoded cache, and a folder of one class refused.

use std::path::Path;

use cdcgan::data::{Dataset, DatasetKind, Split};

mod common;
use common::{cdcgan, text};

const NAMES: [&str; 3] = ["one", "seven", "zero"];

/// DIR/{one,seven,zero}/NNN.png from the MNIST test digits 1, 7 and 0
/// (40 each), a colour PNG and a JPEG in `seven`, and a corrupt PNG in `one`.
fn write_folder(dir: &Path) {
    let test = Dataset::load(DatasetKind::Mnist, None, Split::Test).unwrap();
    for (name, digit) in NAMES.iter().zip([1u8, 7, 0]) {
        let class = dir.join(name);
        std::fs::create_dir_all(&class).unwrap();
        let picks = (0..test.len())
            .filter(|&i| test.labels[i] == digit)
            .take(40);
        for (n, i) in picks.enumerate() {
            let path = class.join(format!("{n:03}.png"));
            cdcgan::sample::image::write_png(&path, 28, 28, 1, test.image(i)).unwrap();
        }
    }
    let colour =
        image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]));
    colour.save(dir.join("seven/colour.png")).unwrap();
    colour.save(dir.join("seven/photo.jpg")).unwrap();
    std::fs::write(dir.join("one/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::write(dir.join("zero/notes.txt"), b"not an image").unwrap();
}

#[test]
fn a_folder_of_pngs_trains_and_writes_its_classes_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("images");
    write_folder(&data);
    let run = dir.path().join("run");
    let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
    let train = [
        "train",
        "--data",
        data_s,
        "--out",
        run_s,
        "--batch-size",
        "20",
    ];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdcgan"))
        .args(train)
        .args(["--max-steps", "4", "--eval-every", "0", "--quiet"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    // The scan says what it found and what it skipped, naming each file and why.
    assert!(
        said.contains("122 images in 3 classes (one: 40, seven: 42, zero: 40)"),
        "{said}"
    );
    assert!(said.contains("broken.png: unreadable"), "{said}");
    assert!(said.contains("notes.txt: not a PNG or JPEG file"), "{said}");
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains(r#""dataset": "folder""#), "{config}");
    assert!(config.contains(r#""class_names": ["#), "{config}");
    assert_eq!(
        std::fs::read_to_string(run.join("data/classes.txt")).unwrap(),
        "one\nseven\nzero\n"
    );

    // Class names round-trip to generate --label and export.
    let png = dir.path().join("sevens.png");
    let args = [
        "generate", "--run", run_s, "--label", "seven", "--count", "5",
    ];
    let out = cdcgan(&[&args[..], &["--out", png.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        common::png_dimensions(&std::fs::read(&png).unwrap()),
        (5 * 30 + 2, 32)
    );
    let out = cdcgan(&[
        "generate", "--run", run_s, "--label", "eight", "--count", "1", "--out", "x.png",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not a class; give a name (one, seven, zero)"),
        "{}",
        text(&out)
    );
    let exported = dir.path().join("export");
    let out = cdcgan(&[
        "export",
        "--run",
        run_s,
        "--count",
        "30",
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(exported.join("classes.txt")).unwrap(),
        "one\nseven\nzero\n"
    );

    // A resume reads the decoded cache: it trains on even with the folder gone.
    std::fs::remove_dir_all(&data).unwrap();
    let out = cdcgan(&["train", "--resume", run_s, "--max-steps", "6", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_folder_of_one_class_or_no_images_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("one-class");
    std::fs::create_dir_all(data.join("cats")).unwrap();
    cdcgan::sample::image::write_png(&data.join("cats/a.png"), 28, 28, 1, &[9; 784]).unwrap();
    let run = dir.path().join("run");
    let train = || {
        cdcgan(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ])
    };
    let out = train();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("only one class (cats)"),
        "{}",
        text(&out)
    );
    std::fs::create_dir_all(data.join("dogs")).unwrap();
    let out = train();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("class \"dogs\" has no usable images"),
        "{}",
        text(&out)
    );
    assert!(!run.exists(), "nothing written for a refused folder");
}
