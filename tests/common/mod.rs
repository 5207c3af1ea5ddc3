//! Running the `cdcgan` binary from the end-to-end tests.
#![allow(dead_code)]

pub mod browser;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdcgan"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn");
    command
}

/// Runs `cdcgan ARGS` to completion.
pub fn cdcgan(args: &[&str]) -> Output {
    command(args).output().expect("the binary runs")
}

/// Runs `cdcgan generate --run RUN --grid --out OUT`.
pub fn generate_grid(run: &str, out: &std::path::Path) -> Output {
    cdcgan(&[
        "generate",
        "--run",
        run,
        "--grid",
        "--out",
        out.to_str().unwrap(),
    ])
}

/// Starts `cdcgan ARGS` with stderr captured.
pub fn spawn(args: &[&str]) -> Child {
    command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// A tiny real training run: 400 MNIST images, batches of 20, a metrics row
/// per step, no evaluation.
pub const TINY_TRAIN: [&str; 8] = [
    "--limit",
    "400",
    "--batch-size",
    "20",
    "--log-every",
    "1",
    "--eval-every",
    "0",
];

/// Trains the tiny run into `run` for `steps` iterations (no progress bar).
pub fn train_tiny(run: &std::path::Path, steps: u64) {
    train_tiny_with(run, steps, &[]);
}

/// [`train_tiny`] with more training flags.
pub fn train_tiny_with(run: &std::path::Path, steps: u64, flags: &[&str]) {
    let steps = steps.to_string();
    let out = cdcgan(
        &[
            &[
                "train",
                "--out",
                run.to_str().unwrap(),
                "--max-steps",
                &steps,
                "--quiet",
            ][..],
            &TINY_TRAIN,
            flags,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "tiny training failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (width, height) of PNG bytes.
pub fn png_dimensions(bytes: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    (reader.info().width, reader.info().height)
}

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cdcgan serve` on a free port; returns the process and its base URL.
pub fn start_server(run: &Path) -> (Process, String) {
    start_server_with(run, None, &[])
}

/// `cdcgan serve` on a free port with `extra` flags, under an open-file limit
/// of `max_files` when given.
pub fn start_server_with(run: &Path, max_files: Option<u32>, extra: &[&str]) -> (Process, String) {
    let serve = [
        "serve",
        "--run",
        run.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ];
    let mut command = match max_files {
        None => Command::new(env!("CARGO_BIN_EXE_cdcgan")),
        Some(n) => {
            let mut sh = Command::new("sh");
            sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                .arg(env!("CARGO_BIN_EXE_cdcgan"));
            sh
        }
    };
    command
        .args(serve)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    serving(command)
}

/// Starts `command` (`serve`, or `train --serve`), whose first line on
/// stdout names the address; returns the process and its base URL.
pub fn serving(mut command: Command) -> (Process, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("cdcgan starts");
    // The first line names the address; a server stuck before it fails the test, not hangs it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("cdcgan printed no address within 120 s");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    (Process(child), url)
}

/// The small real colour data set the colour tests train on: 24 emoji of each
/// of the 9 categories of emoji-datasource-google, laid out as an image folder
/// by `scripts/emoji data/emoji-subset --per-class 24` (scripts/test runs it).
pub fn emoji_subset() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/emoji-subset");
    assert!(
        dir.join("flags").is_dir(),
        "{} is missing: run scripts/test (it lays it out), or \
         scripts/emoji data/emoji-subset --per-class 24",
        dir.display()
    );
    dir
}

/// (width, height, colour type) of the PNG file at `path`.
pub fn png_info(path: &Path) -> (u32, u32, png::ColorType) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let info = reader.info();
    (info.width, info.height, info.color_type)
}

/// The stderr of a finished command, as text.
pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The stderr of a command that must have succeeded.
pub fn succeeded(out: &Output) -> String {
    let said = text(out);
    assert!(out.status.success(), "failed:\n{said}");
    said
}

/// Runs `cdcgan ARGS`, which must succeed; its stderr.
pub fn ok(args: &[&str]) -> String {
    let out = cdcgan(args);
    let said = text(&out);
    assert!(out.status.success(), "cdcgan {args:?} failed:\n{said}");
    said
}

/// The step of the run's checkpoint (from train_state.safetensors's
/// header), `None` without one; every checkpoint file there must load.
pub fn checkpoint_step(run: &Path) -> Option<u64> {
    let path = run.join("checkpoint/train_state.safetensors");
    if !path.exists() {
        return None;
    }
    let (_, meta) = cdcgan::store::load(&path).expect("every checkpoint on disk loads");
    let generator = run.join("checkpoint/generator.safetensors");
    if generator.exists() {
        cdcgan::sample::Sampler::load(&generator).expect("the generator loads");
    }
    let progress: serde_json::Value = serde_json::from_str(&meta["progress"]).unwrap();
    progress["step"].as_u64()
}

/// Fails unless `cdcgan ARGS` fails, without a panic, with a message
/// containing each of `needles`; returns the message.
pub fn refused(args: &[&str], needles: &[&str]) -> String {
    let out = cdcgan(args);
    let err = text(&out);
    assert!(!out.status.success(), "{args:?} was accepted:\n{err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A path as a command-line argument.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `n` PNG files of one grey level in `dir/class`.
pub fn write_class(dir: &Path, class: &str, n: usize, level: u8) {
    let folder = dir.join(class);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..n {
        let file = folder.join(format!("{i:03}.png"));
        cdcgan::sample::image::write_png(&file, 28, 28, 1, &[level; 784]).unwrap();
    }
}

/// `cdcgan train` on the image folder `img` into `run`: batches of 10,
/// `steps` steps, no evaluation, and `extra` flags.
pub fn train_folder(img: &Path, run: &Path, steps: &str, extra: &[&str]) -> Output {
    let flags = [
        "--batch-size",
        "10",
        "--max-steps",
        steps,
        "--eval-every",
        "0",
    ];
    let places = ["train", "--quiet", "--data", path(img), "--out", path(run)];
    cdcgan(&[&places[..], &flags[..], extra].concat())
}

/// (width, height) of the PNG file at `path`.
pub fn png_size(path: &Path) -> (u32, u32) {
    let (width, height, _) = png_info(path);
    (width, height)
}

/// A run trained once per test binary by `train` (into `NAME` under the
/// target's temporary folder), shared by the tests that only read it.
pub fn shared_run(name: &str, train: impl FnOnce(&Path)) -> &'static Path {
    static RUN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let run = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&run);
        train(&run);
        run
    })
}
