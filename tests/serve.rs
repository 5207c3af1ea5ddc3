//! End-to-end: `cdcgan serve` over a tiny real run, first through its HTTP API,
//! then in a real browser (Debian's headless Chromium, driven by ChromeDriver
//! over WebDriver): type "42", wait for the picture, check it, screenshot it.
//!
//! The browser test needs `/usr/bin/chromium` and `/usr/bin/chromedriver`
//! (`apt-get install chromium chromium-driver`; `scripts/test` installs them).
//! Without them it fails, unless `CDCGAN_SKIP_BROWSER=1` is set.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::browser::{Browser, agent, browser_available};
use common::{start_server, start_server_with};

/// One tiny trained run shared by the tests of this file.
fn trained_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let run = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-run");
        let _ = std::fs::remove_dir_all(&run);
        // One whole epoch (400 images in batches of 20), so the run has its epoch files.
        common::train_tiny(&run, 20);
        assert!(run.join("samples/epoch_001.png").is_file());
        assert!(
            run.join("samples/progress.gif").is_file(),
            "training writes the progress GIF each epoch"
        );
        run
    })
}

/// GET `url`: (status, content type, body).
fn get(agent: &ureq::Agent, url: &str) -> (u16, String, Vec<u8>) {
    let mut response = agent.get(url).call().expect("the server answers");
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.body_mut().read_to_vec().unwrap();
    (response.status().as_u16(), kind, body)
}

#[test]
fn api_serves_images_and_refuses_bad_parameters() {
    let (_server, base) = start_server(trained_run());
    let agent = agent();
    let (status, _, body) = get(&agent, &format!("{base}/healthz"));
    assert_eq!((status, body.as_slice()), (200, &br#"{"status":"ok"}"#[..]));

    // Digits: one 28 px cell per digit with 2 px padding; same seed, same bytes.
    let (status, kind, png) = get(&agent, &format!("{base}/api/digits?text=20261128&seed=7"));
    assert_eq!((status, kind.as_str()), (200, "image/png"));
    assert_eq!(common::png_dimensions(&png), (8 * 30 + 2, 32));
    let (_, _, again) = get(&agent, &format!("{base}/api/digits?text=20261128&seed=7"));
    assert_eq!(png, again, "same request, same picture");
    let (_, _, other) = get(&agent, &format!("{base}/api/digits?text=20261128&seed=8"));
    assert_ne!(png, other, "another seed, other handwriting");

    // A page elsewhere that rebinds its name to 127.0.0.1 does not reach the API.
    let mut response = agent
        .get(format!("{base}/api/info"))
        .header("Host", "rebound.example:8080")
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 421);
    let body = response.body_mut().read_to_string().unwrap();
    assert!(
        body.contains("rebound.example") && body.contains("not this machine"),
        "{body}"
    );

    let (status, _, grid) = get(&agent, &format!("{base}/api/grid?seed=3"));
    assert_eq!(status, 200);
    assert_eq!(common::png_dimensions(&grid), (302, 302));

    for query in ["from=3&to=8&steps=5", "from=2&latent=1&steps=4"] {
        let (status, kind, gif) = get(&agent, &format!("{base}/api/morph?{query}"));
        assert_eq!((status, kind.as_str()), (200, "image/gif"), "{query}");
        assert!(gif.starts_with(b"GIF89a"), "{query}");
    }

    let (status, _, info) = get(&agent, &format!("{base}/api/info"));
    assert_eq!(status, 200);
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["classes"], 10);
    assert_eq!(info["config"]["dataset"], "mnist");
    assert_eq!(info["limits"]["max_digits"], 64);

    // Bad parameters: 400 with a JSON message naming the parameter, never a panic.
    let ten_thousand = "7".repeat(10_000);
    for (query, needle) in [
        ("/api/digits?text=4a2", "not a digit"),
        ("/api/digits?text=", "empty"),
        ("/api/digits", "text: missing"),
        (
            &format!("/api/digits?text={ten_thousand}")[..],
            "at most 64",
        ),
        ("/api/digits?text=42&seed=abc", "seed:"),
        ("/api/digits?text=42&seed=-1", "seed:"),
        ("/api/grid?seed=1e9", "seed:"),
        ("/api/morph?from=10", "from:"),
        ("/api/morph?to=x", "to:"),
        ("/api/morph?steps=1000", "steps:"),
        ("/api/morph?latent=maybe", "latent:"),
    ] {
        let (status, kind, body) = get(&agent, &format!("{base}{query}"));
        assert_eq!(status, 400, "{query}");
        assert_eq!(kind, "application/json", "{query}");
        let message = serde_json::from_slice::<Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(needle), "{query}: {message}");
        assert!(message.len() < 300, "{query}: echoes too much");
    }
    let (status, _, _) = get(&agent, &format!("{base}/no/such/page"));
    assert_eq!(status, 404);
    // Still serving after all that.
    let (status, _, _) = get(&agent, &format!("{base}/api/digits?text=1"));
    assert_eq!(status, 200);
}

/// Returns the digits picture once it shows `text`: its size and pixels as a
/// data URL (drawn through a canvas, so it is what the page shows).
fn shown_digits(browser: &Browser, text: &str) -> Value {
    let source = format!(
        r#"const img = document.getElementById("digits");
        const src = img.dataset.src || "";
        const shown = new URLSearchParams(src.split("?")[1] || "").get("text");
        if (shown !== {text:?} || img.classList.contains("busy") || !img.complete || !img.naturalWidth) return null;
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let grey = 0;
        for (let i = 0; i < rgba.length; i += 4) grey += rgba[i];
        return {{src, width: img.naturalWidth, height: img.naturalHeight, grey, pixels: canvas.toDataURL()}};"#
    );
    browser.wait_for(&format!("the page to show {text:?}"), &source)
}

/// `/api/class` draws ten samples of a class given by name or index, and
/// `/api/info` lists the class names the page's picker shows.
#[test]
fn class_rows_by_name_or_index() {
    let (_server, base) = start_server(trained_run());
    let agent = agent();
    let (status, kind, png) = get(&agent, &format!("{base}/api/class?label=7&seed=3"));
    assert_eq!((status, kind.as_str()), (200, "image/png"));
    assert_eq!(common::png_dimensions(&png), (10 * 30 + 2, 32));
    let (status, _, body) = get(&agent, &format!("{base}/api/class?label=cat"));
    assert_eq!(status, 400);
    let message: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        message["error"].as_str().unwrap().contains("not a class"),
        "{message}"
    );
    let (_, _, info) = get(&agent, &format!("{base}/api/info"));
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(
        info["class_names"],
        json!(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
    );
}

/// Under an open-file limit of 256, 300 idle connections and 10 clients
/// sending their headers a byte a second do not stop `/healthz`: connections
/// past the cap (half the limit) get a JSON 503 at once, and the idle and
/// slow ones are closed after the header timeout (2 s here).
#[test]
fn idle_and_slow_clients_do_not_starve_the_server() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let (_server, base) = start_server_with(trained_run(), Some(256), &["--header-timeout", "2"]);
    let addr = base.trim_start_matches("http://").to_string();
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(&addr).expect("the server accepts or refuses, not hangs"))
        .collect();
    let slow: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let writers: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().unwrap()).collect();
    let dribble = std::thread::spawn(move || {
        for byte in b"GET /healthz HTTP/1.1\r\n".iter().take(8) {
            for mut w in &writers {
                let _ = w.write_all(&[*byte]);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });

    // Past the cap: a JSON 503 at once, then the connection is closed.
    let started = Instant::now();
    let mut extra = TcpStream::connect(&addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    extra
        .read_to_string(&mut answer)
        .expect("refused with an answer, then closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"too many open connections"#),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once"
    );

    // /healthz answers once the idle connections time out.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let deadline = Instant::now() + Duration::from_secs(10);
    let healthy = loop {
        let ok = agent
            .get(format!("{base}/healthz"))
            .call()
            .is_ok_and(|r| r.status() == 200);
        if ok || Instant::now() > deadline {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(healthy, "/healthz did not answer within 10 s");

    // The idle and the slow connections were closed by the server: their
    // reads end (the slow ones' 8 bytes never make a whole request).
    for mut s in idle.iter().step_by(10).chain(&slow) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        assert!(
            s.read_to_end(&mut rest).is_ok(),
            "a connection is still open"
        );
    }
    dribble.join().unwrap();
}

/// A request target over 16 KiB gets 414 and headers over 32 KiB get 431,
/// both as JSON like every other error.
#[test]
fn oversized_requests_get_json_errors() {
    let (_server, base) = start_server(trained_run());
    let agent = agent();
    let long = "7".repeat(17 << 10);
    let mut response = agent
        .get(format!("{base}/api/digits?text={long}"))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 414);
    let body: Value = serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("at most 16384"),
        "{body}"
    );
    let mut response = agent
        .get(format!("{base}/healthz"))
        .header("x-padding", "p".repeat(40 << 10))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 431);
    let body: Value = serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("headers"),
        "{body}"
    );
}

/// A colour run (emoji at 32 px, 9 classes) on the page: the class grid is
/// drawn in colour, a row per class, and the picker names the classes.
#[test]
fn page_shows_a_colour_run_in_chromium() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("emoji");
    let data = common::emoji_subset();
    common::train_tiny_with(
        &run,
        12,
        &["--data", data.to_str().unwrap(), "--image-size", "32"],
    );
    let (_server, base) = start_server(&run);
    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::start(profile.path());
    browser.post("/url", json!({"url": format!("{base}/")}));
    let grid = browser.wait_for(
        "the colour grid",
        r#"const g = document.getElementById("grid");
        if (!g.complete || !g.naturalWidth) return null;
        const canvas = document.createElement("canvas");
        canvas.width = g.naturalWidth; canvas.height = g.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(g, 0, 0);
        const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let coloured = 0;
        for (let i = 0; i < rgba.length; i += 4)
            if (rgba[i] !== rgba[i + 1] || rgba[i + 1] !== rgba[i + 2]) coloured++;
        return {width: g.naturalWidth, height: g.naturalHeight, coloured};"#,
    );
    assert_eq!(grid["height"].as_u64(), Some(9 * 34 + 2), "{grid}");
    assert!(grid["coloured"].as_u64().unwrap() > 1000, "{grid}");
    let picker = browser.wait_for(
        "the class picker",
        r#"const o = Array.from(document.getElementById("class").options).map(o => o.text);
        return o.length ? o : null;"#,
    );
    assert!(
        picker
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "smileys-emotion"),
        "{picker}"
    );
}

#[test]
fn page_writes_typed_digits_in_chromium() {
    if !browser_available() {
        return;
    }
    let (_server, base) = start_server(trained_run());
    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::start(profile.path());
    browser.post("/url", json!({"url": format!("{base}/")}));

    // The page opens with "2026"; the grid and the morph load beside it.
    let before = shown_digits(&browser, "2026");
    assert_eq!(
        (before["width"].as_u64(), before["height"].as_u64()),
        (Some(122), Some(32))
    );
    browser.wait_for(
        "the grid",
        r#"const g = document.getElementById("grid"); return g.complete && g.naturalWidth === 302;"#,
    );

    // Type "42": the picture follows.
    browser.type_into("#text", "42");
    let after = shown_digits(&browser, "42");
    assert_eq!(
        (after["width"].as_u64(), after["height"].as_u64()),
        (Some(62), Some(32))
    );
    assert_ne!(
        after["pixels"], before["pixels"],
        "the picture did not change"
    );
    // What the page showed is a real PNG from the API, of the size two digits take.
    let src = after["src"].as_str().unwrap();
    let (status, kind, png) = get(&browser.agent, &format!("{base}{src}"));
    assert_eq!((status, kind.as_str()), (200, "image/png"));
    assert_eq!(common::png_dimensions(&png), (62, 32));
    // ... and the page drew exactly those pixels (the sum of their grey values).
    let mut decoder = png::Decoder::new(std::io::Cursor::new(&png))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; decoder.output_buffer_size()];
    decoder.next_frame(&mut pixels).unwrap();
    let api_grey: u64 = pixels.iter().map(|&p| p as u64).sum();
    assert!(api_grey > 0, "the API sent a black picture");
    assert_eq!(
        after["grey"].as_u64(),
        Some(api_grey),
        "the page shows other pixels"
    );
    // The address bar now links to these digits.
    let search = browser.script("return window.location.search;");
    assert!(search.as_str().unwrap().contains("text=42"), "{search}");

    let shot = browser.screenshot();
    assert!(shot.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let path = std::env::var_os("CDCGAN_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-page.png"));
    std::fs::write(&path, &shot).unwrap();
    eprintln!("screenshot: {}", path.display());

    // A letter: the server's message appears on the page; the last good picture stays.
    browser.type_into("#text", "4a2");
    let message = browser.wait_for(
        "the error message",
        r#"const e = document.getElementById("error").textContent; return e.includes("not a digit") ? e : null;"#,
    );
    assert!(
        message.as_str().unwrap().contains("position 2"),
        "{message}"
    );
}
