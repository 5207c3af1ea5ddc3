//! Colour images at 32 and 64 pixels, end to end, on a small real colour data
//! set (emoji of 9 categories, `common::emoji_subset`): training, the epoch
//! grids and progress GIF, generate, morph and export in colour; the
//! folder's own evaluator and its scores; and bad image settings refused
//! with one message, nothing written.

use std::path::Path;

mod common;
use common::{cdcgan, emoji_subset, png_info, succeeded};

fn train(data: &Path, run: &Path, size: &str, steps: &str) -> String {
    succeeded(&cdcgan(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--image-size",
        size,
        "--out",
        run.to_str().unwrap(),
        "--max-steps",
        steps,
        "--batch-size",
        "16",
        "--eval-every",
        "0",
        "--quiet",
    ]))
}

/// Whether an RGB image holds any pixel that is not grey.
fn has_colour(rgb: &[u8]) -> bool {
    rgb.chunks_exact(3).any(|p| p[0] != p[1] || p[1] != p[2])
}

/// A colour folder trained at 32 px: its config, epoch grids, progress GIF,
/// generate, morph and both export formats are in colour; a resume goes on.
#[test]
fn a_colour_folder_trains_at_32_pixels_and_writes_colour_everywhere() {
    let data = emoji_subset();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // 216 images in batches of 16: 13 steps an epoch, so two epoch grids.
    train(&data, &run, "32", "27");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let g = &config["model"]["generator"];
    assert_eq!(
        (&g["image_size"], &g["image_channels"]),
        (&32.into(), &3.into())
    );
    assert_eq!(config["background"], "ffffff");
    samples_are_colour(&run);
    let r = run.to_str().unwrap();
    generates_and_morphs_in_colour(dir.path(), r);
    idx_export_has_a_channel_dimension(dir.path(), r);
    png_export_is_an_image_folder(dir.path(), r);

    // A resume reads the decoded cache back (colour, 32 px) and goes on.
    succeeded(&cdcgan(&[
        "train",
        "--resume",
        r,
        "--max-steps",
        "30",
        "--quiet",
    ]));
}

/// The run's epoch grid and progress GIF after two epochs, in colour.
fn samples_are_colour(run: &Path) {
    // The epoch grid: a row per class (9), in colour, 32 px cells.
    let (w, h, colour) = png_info(&run.join("samples/epoch_002.png"));
    assert_eq!(colour, png::ColorType::Rgb);
    assert_eq!(h, 9 * 34 + 2, "{w}x{h}");
    let grid = image::open(run.join("samples/epoch_002.png"))
        .unwrap()
        .into_rgb8();
    assert!(has_colour(grid.as_raw()), "the grid came out grey");

    // The progress GIF: one frame per epoch (and two lingering), in colour.
    let gif = std::fs::File::open(run.join("samples/progress.gif")).unwrap();
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(gif).unwrap();
    let mut frames = 0;
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        let rgb: Vec<u8> = frame
            .buffer
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert!(has_colour(&rgb), "GIF frame {frames} is grey");
        frames += 1;
    }
    assert_eq!(frames, 4);
}

/// `generate` by class name and `morph` of the 32 px colour run `r`, into `dir`.
fn generates_and_morphs_in_colour(dir: &Path, r: &str) {
    let at = |name: &str| dir.join(name);
    // generate by class name: four 32 px RGB cells in a row.
    succeeded(&cdcgan(&[
        "generate",
        "--run",
        r,
        "--label",
        "smileys-emotion",
        "--count",
        "4",
        "--out",
        at("smileys.png").to_str().unwrap(),
    ]));
    assert_eq!(
        png_info(&at("smileys.png")),
        (4 * 34 + 2, 36, png::ColorType::Rgb)
    );
    // morph: a colour GIF.
    succeeded(&cdcgan(&[
        "morph",
        "--run",
        r,
        "--out",
        at("m.gif").to_str().unwrap(),
    ]));
    let gif = std::fs::read(at("m.gif")).unwrap();
    assert!(gif.starts_with(b"GIF89a"));
}

/// export: IDX with a channel dimension, [18, 3, 32, 32].
fn idx_export_has_a_channel_dimension(dir: &Path, r: &str) {
    let export = dir.join("export");
    succeeded(&cdcgan(&[
        "export",
        "--run",
        r,
        "--count",
        "18",
        "--out",
        export.to_str().unwrap(),
    ]));
    let images = std::fs::read(export.join("images-idx4-ubyte")).unwrap();
    assert_eq!(&images[..4], &[0, 0, 8, 4]);
    let dims: Vec<u32> = images[4..20]
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(dims, [18, 3, 32, 32]);
    assert_eq!(images.len(), 20 + 18 * 3 * 32 * 32);
    assert!(!export.join("images-idx3-ubyte").exists());
}

/// export --format png: CLASS/00000.png (ImageFolder), two RGB 32 px images
/// a class; it and an IDX export replace each other, never a user's folder.
fn png_export_is_an_image_folder(dir: &Path, r: &str) {
    let pngs = dir.join("pngs");
    let p = pngs.to_str().unwrap();
    let png_export = [
        "export", "--run", r, "--count", "18", "--format", "png", "--out", p,
    ];
    succeeded(&cdcgan(&png_export));
    let classes = std::fs::read_to_string(pngs.join("classes.txt")).unwrap();
    assert_eq!(classes.lines().count(), 9);
    for class in classes.lines() {
        for n in ["00000.png", "00001.png"] {
            let (w, h, colour) = png_info(&pngs.join(class).join(n));
            assert_eq!((w, h, colour), (32, 32, png::ColorType::Rgb), "{class}/{n}");
        }
        assert!(!pngs.join(class).join("00002.png").exists());
    }
    // An IDX export into it replaces the whole PNG set, and the reverse.
    succeeded(&cdcgan(&[
        "export", "--run", r, "--count", "18", "--out", p,
    ]));
    assert!(!pngs.join("flags").exists() && pngs.join("images-idx4-ubyte").is_file());
    succeeded(&cdcgan(&png_export));
    assert!(pngs.join("flags/00001.png").is_file() && !pngs.join("images-idx4-ubyte").exists());
    // A folder of the user's own is refused untouched.
    let mine = dir.join("mine");
    std::fs::create_dir_all(mine.join("flags")).unwrap();
    std::fs::write(mine.join("flags/holiday.png"), b"mine").unwrap();
    let m = mine.to_str().unwrap();
    let out = cdcgan(&[
        "export", "--run", r, "--count", "18", "--format", "png", "--out", m,
    ]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no cdcgan export wrote"), "{said}");
    assert_eq!(
        std::fs::read(mine.join("flags/holiday.png")).unwrap(),
        b"mine"
    );
}

#[test]
fn a_colour_folder_trains_at_64_pixels() {
    let data = emoji_subset();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(&data, &run, "64", "3");
    let r = run.to_str().unwrap();
    let out = dir.path().join("grid.png");
    succeeded(&cdcgan(&[
        "generate",
        "--run",
        r,
        "--grid",
        "--out",
        out.to_str().unwrap(),
    ]));
    let (_, h, colour) = png_info(&out);
    assert_eq!((h, colour), (9 * 66 + 2, png::ColorType::Rgb));
}

#[test]
fn bad_image_settings_are_refused_and_nothing_is_written() {
    let data = emoji_subset();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    for (flags, says) in [
        (&["--data", d, "--image-size", "48"][..], "image size 48"),
        (&["--data", d, "--channels", "2"][..], "2 image channels"),
        (&["--data", d, "--background", "white"][..], "RRGGBB"),
        (
            &["--image-size", "32"][..],
            "--image-size applies to image folders",
        ),
        (
            &["--background", "000000"][..],
            "--background applies to image folders",
        ),
    ] {
        let out = cdcgan(&[&["train", "--out", r, "--max-steps", "1"][..], flags].concat());
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} was taken");
        assert!(said.contains(says), "{flags:?}: {said}");
        assert!(!run.exists(), "{flags:?} wrote {r}");
    }
}

/// `classifier train --data DIR` trains the evaluator on the folder (every
/// tenth image of each class held out) at the run's size, and `eval --run`
/// scores a colour run with it beside the real-image ceiling.
#[test]
fn a_folders_evaluator_scores_its_colour_run() {
    let data = emoji_subset();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(&data, &run, "32", "13");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let clf32 = train_classifier(dir.path(), d, "32");
    let (tensors, meta) = cdcgan::store::load(&clf32).unwrap();
    assert_eq!(tensors["conv1.weight"].shape, [32, 3, 5, 5]);
    assert_eq!(tensors["fc1.weight"].shape, [128, 64, 8, 8]);
    assert_eq!(meta["dataset"], "folder");
    assert!(meta["classes"].contains("smileys-emotion"), "{meta:?}");
    let c = clf32.to_str().unwrap();
    eval_scores_the_run(r, c);
    the_quality_curve_uses_it(dir.path(), d, c);
    cas_scores_the_run(r, c);
    let clf64 = train_classifier(dir.path(), d, "64");
    let pngs = its_png_export_scores_as_the_run(dir.path(), d, r, c);
    other_sizes_are_refused(dir.path(), d, r, clf64.to_str().unwrap());
    let out = cdcgan(&["eval", "--images", &pngs, "--data", d, "--classifier"]);
    assert!(!out.status.success());
    let out = cdcgan(&[
        "eval",
        "--images",
        &pngs,
        "--data",
        d,
        "--classifier",
        clf64.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("32x32 pixels") && said.contains("--image-size 32"),
        "{said}"
    );
}

/// `eval --images DIR` scores a folder of samples (another tool's, here the
/// run's own PNG export) against the folder `d`: the same images as
/// `eval --run --class-mix even` draws score the same. Returns the samples' folder.
fn its_png_export_scores_as_the_run(dir: &Path, d: &str, r: &str, c: &str) -> String {
    let pngs = dir.join("scored-pngs");
    let p = pngs.to_str().unwrap().to_string();
    let export = ["export", "--run", r, "--count", "200", "--format", "png"];
    succeeded(&cdcgan(&[&export[..], &["--out", &p]].concat()));
    let score = |flags: &[&str]| -> serde_json::Value {
        let out = cdcgan(&[&["eval", "--classifier", c, "--json"], flags].concat());
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", succeeded(&out)))
    };
    let mut from_run = score(&["--run", r, "--count", "200", "--class-mix", "even"]);
    let mut from_pngs = score(&["--images", &p, "--data", d]);
    // The Frechet distance up to the order of its sums (the folder's
    // classes come interleaved); every other figure exactly.
    let frechet = |v: &mut serde_json::Value| v["generated"]["frechet"].take().as_f64().unwrap();
    let (a, b) = (frechet(&mut from_run), frechet(&mut from_pngs));
    assert!((a - b).abs() < 1e-6 * a.abs().max(1.0), "{a} vs {b}");
    assert_eq!(from_pngs["generated"], from_run["generated"]);
    assert!(from_pngs["generated"]["samples"] == 200);
    p
}

/// `classifier train` on the folder `d` at `size` pixels, 2 epochs; its file.
fn train_classifier(dir: &Path, d: &str, size: &str) -> std::path::PathBuf {
    let out = dir.join(format!("clf{size}.safetensors"));
    let said = succeeded(&cdcgan(&[
        "classifier",
        "train",
        "--data",
        d,
        "--image-size",
        size,
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(said.contains("held-out accuracy"), "{said}");
    out
}

/// `eval --run` with the folder's evaluator: every figure of both sides in [0, 1].
fn eval_scores_the_run(r: &str, c: &str) {
    let out = cdcgan(&[
        "eval",
        "--run",
        r,
        "--classifier",
        c,
        "--count",
        "200",
        "--json",
    ]);
    succeeded(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dataset"], "folder");
    for figure in ["accuracy", "precision", "recall"] {
        for side in ["generated", "ceiling"] {
            let v = report[side][figure].as_f64().unwrap_or(-1.0);
            assert!(
                (0.0..=1.0).contains(&v),
                "{side} {figure}: {}",
                report[side]
            );
        }
    }
}

/// `train` at 32 px on the folder `d` into `run`, 13 steps, scored in training with `clf`.
fn train_scored(d: &str, clf: &str, run: &str) -> std::process::Output {
    cdcgan(&[
        "train",
        "--data",
        d,
        "--image-size",
        "32",
        "--out",
        run,
        "--max-steps",
        "13",
        "--batch-size",
        "16",
        "--eval-samples",
        "20",
        "--classifier",
        clf,
        "--quiet",
    ])
}

/// The in-training quality curve with the folder's evaluator (--classifier).
fn the_quality_curve_uses_it(dir: &Path, d: &str, c: &str) {
    let scored = dir.join("scored");
    succeeded(&train_scored(d, c, scored.to_str().unwrap()));
    let metrics = std::fs::read_to_string(scored.join("metrics.csv")).unwrap();
    let last: Vec<&str> = metrics.lines().last().unwrap().split(',').collect();
    let accuracy: f64 = last[8].parse().unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&accuracy), "{metrics}");
}

/// The classification accuracy score: trained on samples, tested on the held-out images.
fn cas_scores_the_run(r: &str, c: &str) {
    let out = cdcgan(&[
        "eval",
        "--run",
        r,
        "--classifier",
        c,
        "--count",
        "200",
        "--cas",
        "--json",
    ]);
    succeeded(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // As many samples as the evaluator's training split holds: 24 images a
    // class, every tenth held out.
    assert_eq!(report["cas"]["samples"], 9 * (24 - 24_usize.div_ceil(10)));
    for side in ["generated", "real"] {
        let v = report["cas"][side].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&v), "CAS {side}: {}", report["cas"]);
    }
}

/// Without an evaluator, or with one of another size (`clf64`): one clear
/// refusal each; training with one of another size is refused before it
/// writes anything.
fn other_sizes_are_refused(dir: &Path, d: &str, r: &str, clf64: &str) {
    let other = dir.join("other");
    let out = train_scored(d, clf64, other.to_str().unwrap());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("this run makes 32x32"),
        "{said}"
    );
    assert!(!other.exists());
    for (flags, says) in [
        (vec!["eval", "--run", r], "--classifier FILE"),
        (
            vec!["eval", "--run", r, "--classifier", clf64],
            "--image-size 32",
        ),
    ] {
        let out = cdcgan(&flags);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && said.contains(says),
            "{flags:?}: {said}"
        );
    }
}

/// Odd but usable images decode, and unusable ones are skipped with the
/// reason: a CMYK JPEG (tests/fixtures/flag-cmyk.jpg, ImageMagick's
/// `-colorspace CMYK` of flag24.png, an emoji flag) comes out in the same
/// colours as its RGB source, a 16-bit PNG as its 8-bit self, images of
/// other sizes are cropped and resized, and a 1x1 image is skipped; a class
/// left with nothing usable stops the run before it writes anything.
#[test]
fn cmyk_16_bit_and_odd_sized_images_decode_and_a_1x1_one_is_named() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("odd");
    for class in ["cmyk", "rgb", "deep"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
    }
    std::fs::copy(fixtures.join("flag-cmyk.jpg"), data.join("cmyk/flag.jpg")).unwrap();
    std::fs::copy(fixtures.join("flag24.png"), data.join("rgb/flag.png")).unwrap();
    // The same picture as a 16-bit PNG (each byte doubled: v * 257), and a wide one.
    let rgb = image::open(fixtures.join("flag24.png"))
        .unwrap()
        .into_rgb8();
    let deep = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(24, 24, |x, y| {
        image::Rgb(rgb.get_pixel(x, y).0.map(|v| u16::from(v) * 257))
    });
    deep.save(data.join("deep/flag16.png")).unwrap();
    let wide = image::RgbImage::from_pixel(60, 20, image::Rgb([10, 200, 30]));
    wide.save(data.join("rgb/wide.png")).unwrap();
    image::RgbImage::from_pixel(1, 1, image::Rgb([0, 0, 255]))
        .save(data.join("deep/dot.png"))
        .unwrap();
    let run = dir.path().join("run");
    // At info level: the scan names each file it skipped.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdcgan"))
        .args([
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ])
        .args([
            "--max-steps",
            "1",
            "--batch-size",
            "2",
            "--eval-every",
            "0",
            "--quiet",
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let said = succeeded(&out);
    assert!(said.contains("dot.png: too small (1x1"), "{said}");

    let set = cdcgan::data::Dataset::from_files(
        &run.join("data/images-idx3-ubyte"),
        &run.join("data/labels-idx1-ubyte"),
        3,
    )
    .unwrap();
    assert_eq!((set.len(), set.shape.channels, set.shape.side), (4, 3, 28));
    let means = |i: usize| -> Vec<f64> {
        let planes = set.image(i).chunks(28 * 28);
        planes
            .map(|p| p.iter().map(|&v| f64::from(v)).sum::<f64>() / 784.0)
            .collect()
    };
    // Classes sorted: cmyk, deep, rgb; interleaved: cmyk, deep, rgb (flag), rgb (wide).
    let (cmyk, deep, rgb) = (means(0), means(1), means(2));
    for c in 0..3 {
        assert!(
            (cmyk[c] - rgb[c]).abs() < 12.0,
            "CMYK {cmyk:?} vs RGB {rgb:?}"
        );
        assert!(
            (deep[c] - rgb[c]).abs() < 1.0,
            "16-bit {deep:?} vs 8-bit {rgb:?}"
        );
    }
    assert!(rgb[0] > rgb[2] + 20.0, "the flag came out grey: {rgb:?}");
    assert_eq!(
        set.image(3)[28 * 28 + 14 * 28 + 14],
        200,
        "the wide image's green"
    );

    // A class whose only image is unusable: refused, nothing written.
    std::fs::remove_file(data.join("deep/flag16.png")).unwrap();
    let empty = dir.path().join("empty");
    let out = cdcgan(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        empty.to_str().unwrap(),
        "--max-steps",
        "1",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("class \"deep\" has no usable images"),
        "{said}"
    );
    assert!(!empty.exists());
}
