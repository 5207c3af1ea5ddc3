//! The red team's round 3, each finding as a real process against real
//! files: outputs that would replace a FIFO, a link, a hard link or a run's
//! own weights; a `.lock` symlink; class folders renamed while a run starts;
//! a user's `latest` link; a damaged decode cache; finite weights that make
//! non-finite images; an oversized `eval --images`; two exports into one
//! folder; numbers that name classes; clients that never read; class folder
//! names that are not UTF-8. (SIGTERM from `timeout`: tests/crash.rs.)

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{
    cdcgan, ok, path, refused, shared_run, start_server_with, text, train_folder, train_tiny,
    write_class,
};

/// One tiny trained run (one epoch), shared by the tests that only read it.
fn tiny_run() -> &'static Path {
    shared_run("hostile-run", |run| train_tiny(run, 20))
}

/// D1: a FIFO, a symbolic link, a hard link, a folder and the run's own
/// files stay as they were; so does a file of another kind.
#[test]
fn outputs_never_replace_what_is_not_theirs() {
    let run = tiny_run();
    let r = path(run);
    let dir = tempfile::tempdir().unwrap();
    fifos_stay_fifos(r, dir.path());
    links_stay_links(r, dir.path());
    the_runs_own_files_stay(run);
    other_kinds_and_folders_stay(r, dir.path());
}

/// Fails unless `generate --run R --grid --out OUT` is refused with `needles`.
fn grid_refused(r: &str, out: &Path, needles: &[&str]) {
    refused(
        &["generate", "--run", r, "--grid", "--out", path(out)],
        needles,
    );
}

/// generate, export --onnx and morph refuse a FIFO, which stays one.
fn fifos_stay_fifos(r: &str, dir: &Path) {
    let at = |name: &str| dir.join(name);
    assert!(
        Command::new("mkfifo")
            .arg(at("fifo.png"))
            .status()
            .unwrap()
            .success()
            && Command::new("mkfifo")
                .arg(at("fifo.onnx"))
                .status()
                .unwrap()
                .success()
    );
    grid_refused(r, &at("fifo.png"), &["is a FIFO"]);
    refused(
        &["export", "--run", r, "--onnx", path(&at("fifo.onnx"))],
        &["--onnx", "is a FIFO"],
    );
    refused(
        &["morph", "--run", r, "--out", path(&at("fifo.png"))],
        &["is a FIFO"],
    );
    for fifo in ["fifo.png", "fifo.onnx"] {
        let kind = std::fs::symlink_metadata(at(fifo)).unwrap().file_type();
        assert!(kind.is_fifo(), "{fifo} is still a FIFO");
    }
}

/// A symbolic link and a hard link to a PNG are refused; both, and the PNG, stay.
fn links_stay_links(r: &str, dir: &Path) {
    let at = |name: &str| dir.join(name);
    std::fs::write(at("target.png"), b"\x89PNG\r\n\x1a\nthe target").unwrap();
    std::os::unix::fs::symlink(at("target.png"), at("link.png")).unwrap();
    grid_refused(r, &at("link.png"), &["symbolic link"]);
    assert!(at("link.png").is_symlink());
    std::fs::hard_link(at("target.png"), at("hard.png")).unwrap();
    grid_refused(r, &at("hard.png"), &["2 hard links"]);
    assert_eq!(std::fs::metadata(at("target.png")).unwrap().nlink(), 2);
    assert_eq!(
        std::fs::read(at("target.png")).unwrap(),
        b"\x89PNG\r\n\x1a\nthe target"
    );
}

/// The run's weights and epoch grids are refused as outputs, untouched.
fn the_runs_own_files_stay(run: &Path) {
    let r = path(run);
    let weights = run.join("checkpoint/generator.safetensors");
    let before = std::fs::read(&weights).unwrap();
    grid_refused(r, &weights, &["name the file .png"]);
    let grid = run.join("samples/epoch_001.png");
    grid_refused(r, &grid, &["own files"]);
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        before,
        "the run's weights untouched"
    );
}

/// A `.png` that is not a PNG stays; names other than `.png`, and a folder, are refused.
fn other_kinds_and_folders_stay(r: &str, dir: &Path) {
    let at = |name: &str| dir.join(name);
    std::fs::write(at("notes.png"), "my notes").unwrap();
    grid_refused(r, &at("notes.png"), &["not a PNG"]);
    assert_eq!(
        std::fs::read_to_string(at("notes.png")).unwrap(),
        "my notes"
    );
    grid_refused(r, &at("user.txt"), &[".png"]);
    grid_refused(r, &at("x.jpg"), &["name the file .png"]);
    grid_refused(r, dir, &[".png"]);
}

/// D1: another tool's IDX files in an export folder are not replaced; an
/// earlier export, and a PNG cdcgan wrote, are.
#[test]
fn exports_replace_only_their_own() {
    let r = path(tiny_run());
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let other = at("theirs");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("labels-idx1-ubyte"), b"their labels").unwrap();
    refused(
        &["export", "--run", r, "--count", "10", "--out", path(&other)],
        &["no cdcgan export wrote"],
    );
    assert_eq!(
        std::fs::read(other.join("labels-idx1-ubyte")).unwrap(),
        b"their labels"
    );
    let ours = at("ours");
    for count in ["10", "12"] {
        let out = cdcgan(&["export", "--run", r, "--count", count, "--out", path(&ours)]);
        assert!(out.status.success(), "{}", text(&out));
    }
    // And what is new is written: a PNG over our earlier PNG.
    let grid_png = at("grid.png");
    for _ in 0..2 {
        let out = cdcgan(&["generate", "--run", r, "--grid", "--out", path(&grid_png)]);
        assert!(out.status.success(), "{}", text(&out));
    }
}

/// D1b: a `.lock` that is a symbolic link is never followed.
#[test]
fn a_lock_symlink_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train_tiny(&run, 3);
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::remove_file(run.join(".lock")).unwrap();
    std::os::unix::fs::symlink("../victim.txt", run.join(".lock")).unwrap();
    refused(
        &[
            "train",
            "--resume",
            path(&run),
            "--max-steps",
            "5",
            "--quiet",
        ],
        &[".lock", "symbolic link"],
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// The grey level of each class's first cached image, by class name.
fn cached_levels(run: &Path) -> Vec<(String, u8)> {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let names: Vec<String> = serde_json::from_value(config["class_names"].clone()).unwrap();
    let data = cdcgan::data::Dataset::from_files(
        &run.join("data/images-idx3-ubyte"),
        &run.join("data/labels-idx1-ubyte"),
        names.len(),
    )
    .unwrap();
    names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let i = data.labels.iter().position(|&l| l as usize == c).unwrap();
            (name.clone(), data.image(i)[0])
        })
        .collect()
}

/// D3: class folders renamed while runs start: every run that starts keeps
/// each name with its own images (black `a`, white `b`/`0b`), or stops
/// saying the folder is gone.
#[test]
fn class_folders_renamed_during_starts_never_swap_labels() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    write_class(&img, "a", 20, 0);
    write_class(&img, "b", 20, 255);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renamer = {
        let (img, stop) = (img.clone(), stop.clone());
        std::thread::spawn(move || {
            let (b, zb) = (img.join("b"), img.join("0b"));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::rename(&b, &zb);
                std::thread::sleep(Duration::from_micros(300));
                let _ = std::fs::rename(&zb, &b);
                std::thread::sleep(Duration::from_micros(300));
            }
        })
    };
    let mut started = 0;
    for i in 0..8 {
        let run = dir.path().join(format!("run{i}"));
        let out = train_folder(&img, &run, "1", &["--threads", "1"]);
        if !out.status.success() {
            let err = text(&out);
            assert!(
                err.contains("is not there any more")
                    || err.contains("no class sub-folders")
                    || err.contains("only one class"),
                "{err}"
            );
            continue;
        }
        started += 1;
        for (name, level) in cached_levels(&run) {
            let expected = if name == "a" { 0 } else { 255 };
            assert_eq!(
                level, expected,
                "run{i}: class {name:?} holds another class's images"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    renamer.join().unwrap();
    eprintln!("{started} of 8 runs started during the renames");
}

/// D4: a user's own `latest` link is left alone, and `--out NAME` makes no
/// `./latest`.
#[test]
fn a_users_latest_link_is_not_repointed() {
    let dir = tempfile::tempdir().unwrap();
    let rel = dir.path().join("rel");
    std::fs::create_dir_all(rel.join("v1")).unwrap();
    std::os::unix::fs::symlink("v1", rel.join("latest")).unwrap();
    let train = |out: &str, cwd: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_cdcgan"))
            .args(["train", "--out", out, "--max-steps", "2", "--quiet"])
            .args(["--data", concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")])
            .args(common::TINY_TRAIN)
            .current_dir(cwd)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    train("rel/run", dir.path());
    assert_eq!(
        std::fs::read_link(rel.join("latest")).unwrap(),
        Path::new("v1")
    );
    train("myrun", dir.path());
    assert!(
        std::fs::symlink_metadata(dir.path().join("latest")).is_err(),
        "no ./latest"
    );
    // Under runs/ (the default place) the link follows the newest run.
    train("runs/one", dir.path());
    train("runs/two", dir.path());
    assert_eq!(
        std::fs::read_link(dir.path().join("runs/latest")).unwrap(),
        Path::new("two")
    );
}

/// D5: a damaged decode cache is an error naming it, never a panic or
/// training on garbage; without the cache, resume decodes the folder again.
#[test]
fn a_damaged_decode_cache_is_named_and_a_missing_one_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    write_class(&img, "a", 10, 0);
    write_class(&img, "b", 10, 255);
    let run = dir.path().join("run");
    let train = |extra: &[&str]| cdcgan(&[&["train", "--quiet"], extra].concat());
    let out = train_folder(&img, &run, "2", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let cache = run.join("data/images-idx3-ubyte");
    let idx = |h: usize, w: usize| {
        let mut bytes = vec![0, 0, 8, 3];
        for d in [20, h, w] {
            bytes.extend((d as u32).to_be_bytes());
        }
        bytes.extend(vec![0u8; 20 * h * w]);
        bytes
    };
    for (h, w) in [(10, 10), (14, 56)] {
        std::fs::write(&cache, idx(h, w)).unwrap();
        let out = train(&["--resume", path(&run), "--max-steps", "4"]);
        let err = text(&out);
        assert!(!out.status.success(), "{h}x{w} accepted:\n{err}");
        assert!(
            err.contains(&format!("{h}x{w}")) && err.contains("damaged"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::remove_dir_all(run.join("data")).unwrap();
    let out = train(&["--resume", path(&run), "--max-steps", "4"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        cached_levels(&run),
        [("a".to_string(), 0), ("b".to_string(), 255)]
    );
}

/// D6: finite weights that make non-finite images are an error, not a black PNG.
#[test]
fn finite_weights_with_non_finite_images_are_refused() {
    let run = tiny_run();
    let (tensors, meta) =
        cdcgan::store::load(&run.join("checkpoint/generator.safetensors")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Every bias at 3e38 overflows the next layer's sums to inf - inf = NaN
    // (one such bias, on a wider network than the tiny run's, did it in the
    // red team's file); a negative variance has no square root.
    type Edit = fn(&mut Vec<f32>);
    let edits: [(&str, Edit); 2] = [
        ("bn1.bias", |v| {
            v.iter_mut()
                .enumerate()
                .for_each(|(i, x)| *x = if i % 2 == 0 { 3e38 } else { -3e38 })
        }),
        ("bn1.running_var", |v| v.iter_mut().for_each(|x| *x = -1.0)),
    ];
    for (name, edit) in edits {
        let mut bad = tensors.clone();
        edit(
            &mut bad
                .get_mut(name)
                .unwrap_or_else(|| panic!("no {name}"))
                .values,
        );
        let file = dir.path().join(format!("{name}.safetensors"));
        cdcgan::store::save(&file, &bad, &meta).unwrap();
        let png = dir.path().join(format!("{name}.png"));
        refused(
            &[
                "generate",
                "--checkpoint",
                path(&file),
                "--grid",
                "--out",
                path(&png),
            ],
            &["non-finite pixels"],
        );
        assert!(!png.exists(), "{name}: no PNG written");
    }
}

/// D7: `eval --images` refuses a file of more samples than it scores from
/// the header, at once (a 0.8 MB gzip can hold a million images).
#[test]
fn eval_images_is_bounded_before_reading() {
    use flate2::{Compression, write::GzEncoder};
    let dir = tempfile::tempdir().unwrap();
    let gzip = |name: &str, header: &[u8], payload: usize| {
        let file = dir.path().join(name);
        let mut enc = GzEncoder::new(std::fs::File::create(&file).unwrap(), Compression::fast());
        enc.write_all(header).unwrap();
        enc.write_all(&vec![0u8; payload]).unwrap();
        enc.finish().unwrap();
        file
    };
    let n: u32 = 1_000_000;
    let mut images = vec![0, 0, 8, 3];
    for d in [n, 28, 28] {
        images.extend(d.to_be_bytes());
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend(n.to_be_bytes());
    let images = gzip("images.gz", &images, 1 << 20);
    let labels = gzip("labels.gz", &labels, n as usize);
    let started = Instant::now();
    refused(
        &["eval", "--images", path(&images), "--labels", path(&labels)],
        &["1000000 items, more than the 100000"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// D8: two exports into one folder at once leave one export whole.
#[test]
fn two_exports_into_one_folder_never_mix() {
    let r = path(tiny_run()).to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("race");
    for round in 0..4 {
        let children: Vec<_> = ["3000", "3001"]
            .iter()
            .map(|count| {
                Command::new(env!("CARGO_BIN_EXE_cdcgan"))
                    .args(["export", "--run", &r, "--count", count, "--out", path(&out)])
                    .output()
            })
            .collect();
        for child in children {
            let child = child.unwrap();
            assert!(child.status.success(), "{}", text(&child));
        }
        let count = |file: &str| {
            let mut header = [0u8; 8];
            std::fs::File::open(out.join(file))
                .unwrap()
                .read_exact(&mut header)
                .unwrap();
            u32::from_be_bytes(header[4..8].try_into().unwrap())
        };
        let marker: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("export.json")).unwrap())
                .unwrap();
        let (images, labels) = (count("images-idx3-ubyte"), count("labels-idx1-ubyte"));
        assert_eq!(
            images, labels,
            "round {round}: images of one export, labels of the other"
        );
        assert_eq!(
            marker["count"].as_u64(),
            Some(images as u64),
            "round {round}"
        );
    }
}

/// D9b: where classes are named by numbers (3, 5, 8), a number is a name,
/// never an index, in the CLI and the API; the API's morph defaults stay
/// within the classes.
#[test]
fn numbers_that_name_classes_are_names_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    for (class, level) in [("3", 0), ("5", 120), ("8", 255)] {
        write_class(&img, class, 10, level);
    }
    let run = dir.path().join("run");
    let out = train_folder(&img, &run, "3", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let png = dir.path().join("x.png");
    labels_name_numbered_classes(path(&run), &png);
    digits_and_morphs_name_numbered_classes(path(&run), &png);
    the_api_names_numbered_classes(&run);
}

/// `generate --label`: 3 is the class "3"; 0 and 03 are not classes.
fn labels_name_numbered_classes(r: &str, png: &Path) {
    let said = ok(&[
        "generate",
        "--run",
        r,
        "--label",
        "3",
        "--count",
        "2",
        "--out",
        path(png),
    ]);
    assert!(
        said.contains("class \"3\""),
        "the output names the class drawn: {said}"
    );
    refused(
        &[
            "generate",
            "--run",
            r,
            "--label",
            "0",
            "--count",
            "2",
            "--out",
            path(png),
        ],
        &["not a class; the classes are 3, 5, 8"],
    );
    refused(
        &[
            "generate",
            "--run",
            r,
            "--label",
            "03",
            "--count",
            "2",
            "--out",
            path(png),
        ],
        &["not a class"],
    );
}

/// `generate --digits` takes the classes' digits only; `morph` names classes,
/// and its defaults stay within them.
fn digits_and_morphs_name_numbered_classes(r: &str, png: &Path) {
    ok(&[
        "generate",
        "--run",
        r,
        "--digits",
        "358",
        "--out",
        path(png),
    ]);
    refused(
        &[
            "generate",
            "--run",
            r,
            "--digits",
            "012",
            "--out",
            path(png),
        ],
        &["not a digit of a class (358)"],
    );
    ok(&[
        "morph",
        "--run",
        r,
        "--from",
        "5",
        "--to",
        "8",
        "--steps",
        "2",
        "--out",
        path(png),
    ]);
    ok(&["morph", "--run", r, "--steps", "2", "--out", path(png)]);
}

/// The API of `serve`: class, digits and morph take numbers as class names.
fn the_api_names_numbered_classes(run: &Path) {
    let (_server, base) = start_server_with(run, None, &[]);
    let status = |q: &str| match ureq::get(&format!("{base}{q}")).call() {
        Ok(response) => response.status().as_u16(),
        Err(ureq::Error::StatusCode(code)) => code,
        Err(e) => panic!("{q}: {e}"),
    };
    assert_eq!(status("/api/class?label=3"), 200);
    assert_eq!(status("/api/class?label=0"), 400);
    assert_eq!(status("/api/digits?text=358"), 200);
    assert_eq!(status("/api/digits?text=0"), 400);
    assert_eq!(
        status("/api/morph?steps=2"),
        200,
        "the defaults fit 3 classes"
    );
    assert_eq!(status("/api/morph?steps=2&from=5&to=8"), 200);
}

/// D9: at most 256 classes (labels are bytes): a generator file claiming
/// more is refused, not drawn with wrapped labels.
#[test]
fn more_classes_than_a_byte_holds_are_refused() {
    let run = tiny_run();
    let (tensors, mut meta) =
        cdcgan::store::load(&run.join("checkpoint/generator.safetensors")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&meta["config"]).unwrap();
    config["num_classes"] = 300.into();
    meta.insert("config".into(), config.to_string());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g300.safetensors");
    cdcgan::store::save(&file, &tensors, &meta).unwrap();
    refused(
        &[
            "generate",
            "--checkpoint",
            path(&file),
            "--label",
            "299",
            "--count",
            "1",
            "--out",
            path(&dir.path().join("x.png")),
        ],
        &["num_classes"],
    );
}

/// D9c: clients that send requests and never read the answers lose their
/// connections once a write stalls for the timeout, so the server answers
/// others again soon after (it took over 30 s).
#[test]
fn clients_that_never_read_do_not_hold_the_server() {
    let (_server, base) = start_server_with(
        tiny_run(),
        None,
        &["--max-connections", "8", "--header-timeout", "2"],
    );
    let addr = base.trim_start_matches("http://").to_string();
    let request = "GET /api/morph?steps=64 HTTP/1.1\r\nhost: x\r\n\r\n".repeat(40);
    let hogs: Vec<std::net::TcpStream> = (0..8)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(request.as_bytes());
            s
        })
        .collect();
    let started = Instant::now();
    let healthy = loop {
        let answer = ureq::get(&format!("{base}/healthz")).call();
        if matches!(&answer, Ok(r) if r.status() == 200) {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still refused after 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    drop(hogs);
    assert!(
        healthy < Duration::from_secs(25),
        "healthy again after {healthy:?}"
    );
}

/// D10: a class folder whose name is not UTF-8 is refused by name.
#[test]
fn a_class_folder_named_in_bytes_is_refused_clearly() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    write_class(&img, "a", 10, 0);
    let odd = img.join(std::ffi::OsStr::from_bytes(b"\xff\xfeb"));
    std::fs::create_dir(&odd).unwrap();
    let err = refused(
        &[
            "train",
            "--data",
            path(&img),
            "--out",
            path(&dir.path().join("run")),
            "--max-steps",
            "1",
        ],
        &["not UTF-8", "rename it"],
    );
    assert!(!err.contains("No such file"), "{err}");
}

/// A PNG whose header claims `side` x `side` pixels and holds none of them.
fn huge_png_header(side: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit grey
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(ihdr);
    png.extend(crc.sum().to_be_bytes());
    png
}

/// The smaller findings (M): each now gets one clear answer.
#[test]
fn smaller_findings_each_get_a_clear_answer() {
    let run = tiny_run();
    let r = path(run);
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    // A value, refused by its range, not an unknown flag.
    let png = at("x.png");
    refused(
        &[
            "generate",
            "--run",
            r,
            "--grid",
            "--noise-scale",
            "-inf",
            "--out",
            path(&png),
        ],
        &["--noise-scale"],
    );
    refused(
        &["generate", "--checkpoint", r, "--grid", "--out", path(&png)],
        &["is a folder"],
    );
    // An empty IDX set is refused before the evaluator loads, naming --images.
    std::fs::write(at("i0"), [0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28]).unwrap();
    std::fs::write(at("l0"), [0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    refused(
        &[
            "eval",
            "--images",
            path(&at("i0")),
            "--labels",
            path(&at("l0")),
        ],
        &["--images", "0 samples; scoring needs at least 20"],
    );
    // A flat folder: the folder message, not MNIST's IDX files.
    let flat = at("flat");
    std::fs::create_dir(&flat).unwrap();
    cdcgan::sample::image::write_png(&flat.join("a.png"), 28, 28, 1, &[0; 784]).unwrap();
    refused(
        &[
            "train",
            "--data",
            path(&flat),
            "--out",
            path(&at("r1")),
            "--max-steps",
            "1",
        ],
        &["no class sub-folders"],
    );
}

/// The smaller findings (M), continued: odd entries in class folders, the
/// classifier's default output, and host names for serve --addr.
#[test]
fn odd_class_entries_are_named_and_outputs_stay_local() {
    let r = path(tiny_run());
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    // Odd entries in class folders are skipped and named; a PNG named .jpg is read.
    let img = at("img");
    write_class(&img, "a", 10, 0);
    write_class(&img, "b", 9, 255);
    std::fs::rename(img.join("b/000.png"), img.join("b/disguised.jpg")).unwrap();
    std::fs::copy(img.join("a/001.png"), img.join("a/.hidden.png")).unwrap();
    std::fs::create_dir(img.join("a/nested")).unwrap();
    std::os::unix::fs::symlink("gone.png", img.join("a/broken.png")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(img.join("a/pipe.png"))
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(img.join("a/huge.png"), huge_png_header(22_000)).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_cdcgan"))
        .args([
            "train",
            "--data",
            path(&img),
            "--out",
            path(&at("r2")),
            "--batch-size",
            "9",
        ])
        .args(["--max-steps", "1", "--eval-every", "0", "--quiet"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(log.contains("b: 9"), "the disguised PNG is read: {log}");
    for (name, why) in [
        (".hidden.png", "hidden"),
        ("nested", "a folder"),
        ("broken.png", "a broken link"),
        ("pipe.png", "not a regular file"),
        ("huge.png", "unreadable"),
    ] {
        assert!(
            log.lines().any(|l| l.contains(name) && l.contains(why)),
            "{name} is named as skipped ({why}):\n{log}"
        );
    }
    // The classifier's default output is ./models/, never the shipped evaluator.
    let out = Command::new(env!("CARGO_BIN_EXE_cdcgan"))
        .args(["classifier", "train", "--epochs", "1", "--limit", "100"])
        .args(["--data", concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(at("models/mnist-classifier.safetensors").is_file());
    // serve --addr takes a host name.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cdcgan"))
        .args(["serve", "--run", r, "--addr", "localhost:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("http://"), "serves on localhost: {line:?}");
}
