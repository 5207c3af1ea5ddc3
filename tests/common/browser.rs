//! A real browser for the page tests: Debian's headless Chromium, driven by
//! ChromeDriver over WebDriver.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Process;

/// An HTTP client that hands back error statuses as answers.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A minimal WebDriver session (W3C protocol, JSON over HTTP).
pub struct Browser {
    pub agent: ureq::Agent,
    session: String,
    _driver: Process,
}

/// The W3C key under which WebDriver returns element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    pub fn start(profile: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = Process(
            Command::new("/usr/bin/chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let agent = agent();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        // Ready means ChromeDriver itself says so (not just anything answering on the port).
        let ready = |agent: &ureq::Agent| -> bool {
            let Ok(mut response) = agent.get(&format!("{base}/status")).call() else {
                return false;
            };
            let status: Value = response.body_mut().read_json().unwrap_or_default();
            status["value"]["ready"] == json!(true)
        };
        while !ready(&agent) {
            if let Ok(Some(exit)) = driver.0.try_wait() {
                panic!("chromedriver exited at start ({exit}); port {port} taken?");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,800",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let answer: Value = agent
            .post(&format!("{base}/session"))
            .send_json(&capabilities)
            .expect("chromedriver answers")
            .body_mut()
            .read_json()
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_string();
        Self {
            agent,
            session: format!("{base}/session/{session}"),
            _driver: driver,
        }
    }

    /// POST a WebDriver command; returns its `value`.
    pub fn post(&self, path: &str, body: Value) -> Value {
        let answer: Value = self
            .agent
            .post(&format!("{}{path}", self.session))
            .send_json(&body)
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        assert!(
            answer["value"].get("error").is_none(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    pub fn script(&self, source: &str) -> Value {
        self.post("/execute/sync", json!({"script": source, "args": []}))
    }

    /// Polls `source` until it returns something truthy (30 s at most).
    pub fn wait_for(&self, what: &str, source: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.script(source);
            if !(value.is_null() || value == json!(false)) {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.post("/element", json!({"using": "css selector", "value": css}))
            [ELEMENT]
            .as_str()
            .unwrap()
            .to_string();
        self.post(&format!("/element/{element}/clear"), json!({}));
        self.post(&format!("/element/{element}/value"), json!({"text": text}));
    }

    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let mut response = self
            .agent
            .get(&format!("{}/screenshot", self.session))
            .call()
            .unwrap();
        let answer: Value = response.body_mut().read_json().unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(answer["value"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.session).call();
    }
}

/// Whether the browser tests can run: they fail without chromedriver unless
/// CDCGAN_SKIP_BROWSER is set.
pub fn browser_available() -> bool {
    if Path::new("/usr/bin/chromedriver").exists() {
        return true;
    }
    assert!(
        std::env::var_os("CDCGAN_SKIP_BROWSER").is_some(),
        "the browser test needs Debian's chromium and chromium-driver \
         (apt-get install chromium chromium-driver); set CDCGAN_SKIP_BROWSER=1 to skip it"
    );
    eprintln!("skipped: no /usr/bin/chromedriver (CDCGAN_SKIP_BROWSER is set)");
    false
}
