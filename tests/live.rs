//! The live training page: `cdcgan train --serve` and `cdcgan serve --run R`
//! beside a separate `train`, watched in a real browser while real runs
//! train; and what the page says of a run that was stopped or killed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::browser::{Browser, agent, browser_available};
use common::{Process, TINY_TRAIN, cdcgan, serving, start_server};

/// A run of a few seconds an epoch on 2 cores: 100 steps of 20 images, six
/// epochs (600 steps), so a page that a loaded machine opens late still sees
/// three of them end.
const WATCHED: [&str; 10] = [
    "--limit",
    "2000",
    "--batch-size",
    "20",
    "--epochs",
    "6",
    "--eval-every",
    "0",
    "--log-every",
    "5",
];

/// `cdcgan train --out RUN --quiet FLAGS`, not yet started.
fn train_command(run: &Path, flags: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdcgan"));
    command
        .args(["train", "--out", run.to_str().unwrap(), "--quiet"])
        .args(flags)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    command
}

/// GET `url` as JSON.
fn json_at(agent: &ureq::Agent, url: &str) -> Value {
    let mut response = agent.get(url).call().expect("the server answers");
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.body_mut().read_json().unwrap()
}

/// Polls `/api/live` until `done` holds (`seconds` at most).
fn live_until(base: &str, seconds: u64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let agent = agent();
    let started = Instant::now();
    loop {
        let live = json_at(&agent, &format!("{base}/api/live"));
        if done(&live) {
            return live;
        }
        assert!(
            started.elapsed() < Duration::from_secs(seconds),
            "timed out waiting for {what}: {live}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the page showed while it was watched.
#[derive(Default)]
struct Seen {
    steps: BTreeSet<String>,
    loss_points: BTreeSet<String>,
    grids: BTreeSet<String>,
    message: String,
}

/// Opens the page and watches it, without reloading, until it says the run
/// finished; a screenshot is saved to `shot` while the run trains.
fn watch_until_finished(browser: &Browser, base: &str, shot: &Path) -> Seen {
    browser.post("/url", json!({"url": format!("{base}/")}));
    browser.script("window.sameDocument = true;");
    let mut seen = Seen::default();
    let started = Instant::now();
    let mut shot_taken = false;
    loop {
        let now = browser.script(
            r#"const $ = (id) => document.getElementById(id);
            const step = /step ([0-9,]+)/.exec($("live-step").textContent);
            return {same: window.sameDocument === true,
                    message: $("live-message").textContent,
                    step: step ? step[1] : "",
                    points: $("loss-chart").dataset.points || "",
                    grid: $("live-grid").dataset.epoch || ""};"#,
        );
        assert_eq!(now["same"], json!(true), "the page reloaded: {now}");
        let text = |key: &str| now[key].as_str().unwrap().to_string();
        for (set, key) in [
            (&mut seen.steps, "step"),
            (&mut seen.loss_points, "points"),
            (&mut seen.grids, "grid"),
        ] {
            if !text(key).is_empty() {
                set.insert(text(key));
            }
        }
        seen.message = text("message");
        if !shot_taken && seen.grids.len() >= 2 && seen.message.starts_with("training") {
            std::fs::write(shot, browser.screenshot()).unwrap();
            shot_taken = true;
        }
        if seen.message.starts_with("finished") {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the page never said finished; last: {now}"
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Each thing the page follows changed at least twice, with no reload.
fn assert_followed(seen: &Seen) {
    for (what, values) in [
        ("step counter", &seen.steps),
        ("loss curve", &seen.loss_points),
        ("grid", &seen.grids),
    ] {
        assert!(
            values.len() >= 3,
            "the {what} changed {} times: {values:?}",
            values.len().saturating_sub(1)
        );
    }
    assert!(
        seen.message.contains("finished at step 600"),
        "{}",
        seen.message
    );
}

/// Waits until the trainer of `run` has written its config.json (and so holds its lock).
fn wait_for_config(run: &Path) {
    let started = Instant::now();
    while !run.join("config.json").is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no config.json"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGINT, as Ctrl-C sends it.
fn interrupt(process: &Process) {
    let status = Command::new("kill")
        .args(["-INT", &process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("CDCGAN_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf());
    dir.join(name)
}

#[test]
fn train_serve_page_follows_the_run_until_it_finishes() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::start(profile.path());
    let mut command = train_command(&run, &WATCHED);
    command.args(["--serve", "127.0.0.1:0"]);
    let (mut trainer, base) = serving(command);
    let seen = watch_until_finished(&browser, &base, &screenshot_path("live-train.png"));
    assert_followed(&seen);
    // Finished, the page stays up with the last checkpoint until Ctrl-C.
    let grid = browser.wait_for(
        "the generator's grid",
        r#"const g = document.getElementById("grid"); return g.complete && g.naturalWidth === 302;"#,
    );
    assert_eq!(grid, json!(true));
    assert!(
        trainer.0.try_wait().unwrap().is_none(),
        "the page went down"
    );
    interrupt(&trainer);
    let exit = trainer.0.wait().unwrap();
    assert_eq!(
        exit.code(),
        Some(0),
        "a finished run exits 0 when its page stops"
    );
}

#[test]
fn serve_beside_train_follows_the_run_and_draws_from_its_newest_checkpoint() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::start(profile.path());
    let _trainer = Process(train_command(&run, &WATCHED).spawn().unwrap());
    // serve follows a run being trained from its config.json on, before any checkpoint.
    wait_for_config(&run);
    let (_server, base) = start_server(&run);
    let seen = watch_until_finished(&browser, &base, &screenshot_path("live-serve.png"));
    assert_followed(&seen);
    // The following server draws from the last checkpoint, as a new one does.
    let ask = |base: &str| {
        let mut response = agent()
            .get(&format!("{base}/api/grid?seed=3"))
            .call()
            .unwrap();
        response.body_mut().read_to_vec().unwrap()
    };
    let (_fresh, fresh_base) = start_server(&run);
    let fresh = ask(&fresh_base);
    // It looks for a new checkpoint every half second: within a few, it has the last.
    let started = Instant::now();
    while ask(&base) != fresh {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the following server still draws from an old generator"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stopped with Ctrl-C, the page says where; killed, it says the run is not
/// training and where its last checkpoint is. The quality curve and its
/// real-data ceiling come from the in-training evaluation.
#[test]
fn the_page_says_a_run_was_stopped_or_killed() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let flags = [
        "--limit",
        "400",
        "--batch-size",
        "20",
        "--log-every",
        "1",
        "--epochs",
        "10000",
        "--eval-every",
        "1",
        "--eval-samples",
        "200",
    ];
    let mut command = train_command(&run, &flags);
    let mut trainer = Process(command.stderr(Stdio::null()).spawn().unwrap());
    wait_for_config(&run);
    let (_server, base) = start_server(&run);
    let live = live_until(&base, 120, "an evaluation", |l| {
        l["quality"].as_array().is_some_and(|q| q.len() >= 2)
    });
    assert_eq!(live["state"], "training", "{live}");
    for figure in ["accuracy", "precision", "recall"] {
        let v = live["ceiling"][figure].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{figure} {v}");
    }
    assert!(live["eta_s"].as_f64().is_some(), "{live}");
    assert!(live["rows"].as_u64().unwrap() >= 2, "{live}");

    interrupt(&trainer);
    assert_eq!(trainer.0.wait().unwrap().code(), Some(130));
    let live = live_until(&base, 30, "stopped", |l| l["state"] == "stopped");
    let step = live["step"].as_u64().unwrap();
    assert_eq!(live["message"], format!("stopped at step {step}"), "{live}");
    assert_eq!(live["checkpoint_step"].as_u64(), Some(step));

    // Resumed, then killed: it cannot say so; the page tells by the lock.
    let mut resumed = Command::new(env!("CARGO_BIN_EXE_cdcgan"));
    resumed
        .args(["train", "--resume", run.to_str().unwrap(), "--quiet"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn");
    let mut resumed = Process(resumed.spawn().unwrap());
    live_until(&base, 120, "the resumed run's next checkpoint", |l| {
        l["state"] == "training" && l["checkpoint_step"].as_u64() > Some(step)
    });
    resumed.0.kill().unwrap(); // SIGKILL
    resumed.0.wait().unwrap();
    let live = live_until(&base, 30, "not training", |l| l["state"] == "not-training");
    let message = live["message"].as_str().unwrap();
    let checkpoint = live["checkpoint_step"].as_u64().unwrap();
    assert!(checkpoint > step, "{live}");
    assert!(
        message.starts_with(&format!(
            "not training: last checkpoint at step {checkpoint}, "
        )) && message.ends_with(" ago"),
        "{message}"
    );
    assert_eq!(live["eta_s"], Value::Null, "no time left for a dead run");

    // A grid that is a link (a run folder copied from elsewhere) is not served.
    std::os::unix::fs::symlink("/etc/hostname", run.join("samples/epoch_999.png")).unwrap();
    let mut response = agent()
        .get(&format!("{base}/api/epoch-grid?epoch=999"))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body = response.body_mut().read_to_string().unwrap();
    assert!(body.contains("no grid for epoch 999"), "{body}");
}

#[test]
fn train_serve_on_a_taken_port_fails_before_training() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let args = [
        &["train", "--out", run.to_str().unwrap(), "--max-steps", "2"][..],
        &["--serve", &addr],
        &TINY_TRAIN,
    ]
    .concat();
    let out = cdcgan(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--serve") && err.contains(&addr) && err.contains("cannot listen"),
        "{err}"
    );
    assert!(
        !run.exists(),
        "nothing is written when the page cannot start"
    );
}
