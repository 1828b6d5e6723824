//! A small WebDriver client over std TCP and `serde_json`: headless Chromium through
//! chromedriver, on 127.0.0.1 only, every step bounded, both processes stopped by `Drop` (also
//! when a test fails). The browser's and the driver's logs are kept under `target/` for a
//! failing run.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Every wait of a browser step is bounded by this.
pub const STEP: Duration = Duration::from_secs(15);
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the screenshots and logs go: `target/tmp/browser/`.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn binary(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "the browser tests need {} ({var}); install Chromium and its driver with \
         `apt-get install -y --no-install-recommends chromium chromium-driver` (.ci/run does), \
         or point {var} at them",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange with the driver: status and JSON body.
fn exchange(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("chromedriver at {addr} refused {method} {path}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    // Read the head, then exactly the body it announces (chromedriver may keep the connection).
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let read = |stream: &mut TcpStream, bytes: &mut Vec<u8>, buf: &mut [u8]| {
        let n = stream
            .read(buf)
            .unwrap_or_else(|e| panic!("chromedriver did not answer {method} {path}: {e}"));
        bytes.extend_from_slice(&buf[..n]);
        n
    };
    let split = loop {
        if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        assert!(
            read(&mut stream, &mut bytes, &mut buf) > 0,
            "chromedriver closed the connection without an answer to {method} {path}"
        );
    };
    let head = String::from_utf8_lossy(&bytes[..split]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &bytes[split + 4..];
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if complete || read(&mut stream, &mut bytes, &mut buf) == 0 {
            break;
        }
    }
    let mut payload = bytes[split + 4..].to_vec();
    if let Some(n) = length {
        payload.truncate(n);
    } else if chunked {
        payload = dechunk(&payload);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let value = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&payload).unwrap_or_else(|e| {
            panic!(
                "chromedriver's answer to {method} {path} is not JSON ({e}): {}",
                String::from_utf8_lossy(&payload)
            )
        })
    };
    (status, value)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// Standard base64 (the screenshots).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

/// Headless Chromium driven by chromedriver. Dropping it ends the session and stops both.
pub struct Browser {
    driver: Option<Child>,
    addr: SocketAddr,
    session: String,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free port of 127.0.0.1 and a headless Chromium session with a
    /// fresh profile.
    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// The same browser with JavaScript turned off: what the page does without its script.
    pub fn start_without_script() -> Self {
        Self::start_with(false)
    }

    fn start_with(script: bool) -> Self {
        let driver_bin = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = binary("CHROMIUM", "/usr/bin/chromium");
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let logs = artifacts();
        let profile =
            std::env::temp_dir().join(format!("api-tokens-browser-{}-{port}", std::process::id()));
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!(
                "--log-path={}",
                logs.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Drop stops chromedriver and every browser process with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{} did not start: {e}", driver_bin.display()));
        let mut browser = Self {
            driver: Some(driver),
            addr,
            session: String::new(),
            profile,
        };
        let deadline = Instant::now() + STEP;
        loop {
            let ready = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && exchange(addr, "GET", "/status", None).1["value"]["ready"] == json!(true);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver was not ready within {STEP:?} (log: {})",
                logs.join("chromedriver.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,1000".to_owned(),
            format!("--user-data-dir={}", browser.profile.display()),
        ];
        if !script {
            args.push("--blink-settings=scriptEnabled=false".to_owned());
        }
        let (status, value) = exchange(
            addr,
            "POST",
            "/session",
            Some(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "unhandledPromptBehavior": "ignore",
                "timeouts": {"implicit": 0, "pageLoad": 20_000, "script": 10_000},
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}})),
        );
        assert_eq!(
            status,
            200,
            "no browser session: {value} (log: {})",
            logs.join("chromedriver.log").display()
        );
        browser.session = value["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let (status, value) = exchange(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        );
        let value = value.get("value").cloned().unwrap_or(Value::Null);
        if status == 200 { Ok(value) } else { Err(value) }
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Loads `url` (an address on 127.0.0.1).
    pub fn goto(&self, url: &str) {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        self.ok("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.ok("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn title(&self) -> String {
        self.ok("GET", "/title", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn source(&self) -> String {
        self.ok("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn refresh(&self) {
        self.ok("POST", "/refresh", Some(json!({})));
    }

    /// Polls `f` until it gives `Some`, for at most [`STEP`].
    pub fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited {STEP:?} for {what}; the page is {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The elements matching a CSS selector now.
    pub fn all(&self, css: &str) -> Vec<String> {
        self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
        .collect()
    }

    /// The first element matching a CSS selector, waiting for it.
    pub fn find(&self, css: &str) -> String {
        self.wait(&format!("an element {css}"), || {
            self.all(css).into_iter().next()
        })
    }

    pub fn click(&self, element: &str) {
        self.ok(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    pub fn type_into(&self, element: &str, text: &str) {
        self.ok(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        );
        if !text.is_empty() {
            self.ok(
                "POST",
                &format!("/element/{element}/value"),
                Some(json!({ "text": text })),
            );
        }
    }

    pub fn text(&self, element: &str) -> String {
        self.ok("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn property(&self, element: &str, name: &str) -> Value {
        self.ok("GET", &format!("/element/{element}/property/{name}"), None)
    }

    pub fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.ok("GET", &format!("/element/{element}/attribute/{name}"), None)
            .as_str()
            .map(str::to_owned)
    }

    /// Whether the element is shown (WebDriver's "displayed").
    pub fn displayed(&self, element: &str) -> bool {
        self.ok("GET", &format!("/element/{element}/displayed"), None) == json!(true)
    }

    /// Runs `script` in the page (its `arguments` are `args`) and returns its result.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.ok(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Waits for a dialog (`confirm()`), returns its text and accepts it.
    pub fn accept_dialog(&self) -> String {
        let text = self.wait("a dialog", || {
            self.call("GET", "/alert/text", None)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        });
        self.ok("POST", "/alert/accept", Some(json!({})));
        text
    }

    /// Saves a PNG of the window as `name` under [`artifacts`].
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.ok("GET", "/screenshot", None);
        let png = base64(data.as_str().expect("base64 PNG"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = artifacts().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Closes the browser; bounded by the exchange's timeouts.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                exchange(
                    self.addr,
                    "DELETE",
                    &format!("/session/{}", self.session),
                    None,
                )
            }));
        }
        if let Some(mut driver) = self.driver.take() {
            // chromedriver and the browser processes it started share its process group: ask
            // them all to stop, then make sure.
            let group = format!("-{}", driver.id());
            let signal = |name: &str| {
                let _ = Command::new("kill")
                    .args([name, "--", &group])
                    .stderr(Stdio::null())
                    .status();
            };
            // chromedriver's own shutdown first: it waits for the browser's processes, which
            // are then not left to an init that may not reap them.
            let _ = std::panic::catch_unwind(|| exchange(self.addr, "GET", "/shutdown", None));
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && !matches!(driver.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            signal("-TERM");
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && !matches!(driver.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            signal("-KILL");
            let _ = driver.kill();
            let _ = driver.wait();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[test]
fn base64_decodes() {
    assert_eq!(base64("aGVsbG8="), b"hello");
    assert_eq!(base64("aGVsbG8h"), b"hello!");
    assert_eq!(base64("aGk="), b"hi");
}
