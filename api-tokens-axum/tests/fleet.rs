//! The page and the self-service API of a fleet: two processes of the page example over one
//! real PostgreSQL (each with its own `Replica`, both with the same page key), behind a
//! round-robin proxy on 127.0.0.1 that sends **every request** to the other process (it closes
//! each connection after one answer, so a browser cannot stay on one). Headless Chromium signs
//! in, creates a token and sees its secret once, reloads (gone: no second token, no second
//! secret), filters, sorts, mass-disables, regenerates (a reload regenerates nothing), and
//! deletes; then the self-service API does the same over HTTP, with the browser's session and
//! with a token. Without PostgreSQL the test skips, except under `CI=true`, where it fails;
//! without Chromium it fails (as `browser.rs`, with the command that installs it). Every child
//! process is killed when the test ends, failing or not.

use crate::pg;
use crate::support::webdriver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use api_tokens::store::postgres::PostgresStore;
use api_tokens::{Actor, Query, RequestContext, Status, Token, Tokens, UserId};
use serde_json::{Value, json};
use webdriver::Browser;

/// Every wait is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A process of the page example, killed when dropped; its log is kept in a file.
struct Process {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn start(name: &str, url: &str, key: &str) -> Self {
        let exe = std::env::current_exe().unwrap();
        let path = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples")
            .join("page");
        let log = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("fleet-{name}-{}.log", std::process::id()));
        let mut child = Command::new(&path)
            .env("API_TOKENS_PAGE_ADDR", "127.0.0.1:0")
            .env("API_TOKENS_PG_URL", url)
            .env("API_TOKENS_PAGE_KEY", key)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): cargo test builds the examples",
                    path.display()
                )
            });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut process = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let line = rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
            panic!(
                "process {name} did not say where it listens; its log: {}",
                process.log.display()
            )
        });
        process.addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{line:?}; log: {}", process.log.display()));
        process
    }
}

/// A round-robin balancer of one request per connection: it reads a request, sends it to the
/// next backend with `Connection: close`, returns the whole answer and closes. Stopped when
/// dropped.
struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Which backend served each request, and its request line.
    served: Arc<Mutex<Vec<(usize, String)>>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request (head and `Content-Length` body) from `client`; `None` on a connection
/// that closes or idles without one (a browser's preconnect).
fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut buf).ok().filter(|n| *n > 0)?;
        bytes.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while bytes.len() < head_end + length {
        let n = client.read(&mut buf).ok().filter(|n| *n > 0)?;
        bytes.extend_from_slice(&buf[..n]);
    }
    let mut request = String::new();
    for line in head.trim_end().lines() {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    Some((request, bytes[head_end..head_end + length].to_vec()))
}

impl Proxy {
    fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let (s, log) = (stop.clone(), served.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut client) = client else { continue };
                let (backends, next, log) = (backends.clone(), next.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = client.set_read_timeout(Some(TIMEOUT));
                    let Some((head, body)) = read_request(&mut client) else {
                        return;
                    };
                    let i = next.fetch_add(1, Ordering::SeqCst) % backends.len();
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    log.lock().unwrap().push((i, line));
                    let mut backend = TcpStream::connect(backends[i]).unwrap();
                    backend.set_read_timeout(Some(TIMEOUT)).unwrap();
                    backend.write_all(head.as_bytes()).unwrap();
                    backend.write_all(&body).unwrap();
                    let mut answer = Vec::new();
                    let _ = backend.read_to_end(&mut answer);
                    let _ = client.write_all(&answer);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self { addr, stop, served }
    }

    /// How many requests each backend served.
    fn counts(&self) -> [usize; 2] {
        let mut counts = [0; 2];
        for (i, _) in self.served.lock().unwrap().iter() {
            counts[*i] += 1;
        }
        counts
    }
}

/// One HTTP exchange through `addr`: status, the `Set-Cookie` values and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, rest) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(rest).unwrap_or(Value::Null))
}

/// Polls `f` until it gives `Some`, for at most [`TIMEOUT`].
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < TIMEOUT, "waited {TIMEOUT:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn names(b: &Browser) -> Vec<String> {
    b.script(
        "return Array.from(document.querySelectorAll('tbody td.name a')).map(a => a.textContent);",
        json!([]),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_str().unwrap().to_owned())
    .collect()
}

#[test]
fn two_processes_over_one_postgresql_behind_a_round_robin_balancer() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Some(pg) = pg::PgServer::start() else {
        assert!(!ci, "PostgreSQL is required under CI=true");
        eprintln!("skipped: no PostgreSQL (set API_TOKENS_PG_BIN)");
        return;
    };
    let url = pg.create_db("fleet_page");
    let key = "3c".repeat(32);
    // The first process adds the demo's tokens to the empty database; the second finds them.
    let a = Process::start("a", &url, &key);
    let b_ = Process::start("b", &url, &key);
    let proxy = Proxy::start(vec![a.addr, b_.addr]);
    let root = format!("http://{}", proxy.addr);
    let list = format!("{root}/tokens");
    // The database itself, for checks (no replica: every read is the database's present).
    let db = Tokens::new(PostgresStore::connect(&url).unwrap());
    let admin = Actor::admin(UserId::new("alice").unwrap());
    let named = |name: &str| -> Vec<Token> {
        db.list(&admin, &Query::new().names([name.parse().unwrap()]))
            .unwrap()
    };
    let works = |secret: &str| {
        db.authenticate(secret, &RequestContext::unknown_address())
            .is_ok()
    };

    let b = Browser::start();
    // Sign in (the demo's stand-in for a host's login).
    b.goto(&format!("{root}/login/alice"));
    b.wait("the list", || b.url().ends_with("/tokens").then_some(()));
    assert_eq!(names(&b).len(), 6);

    // Create a token for bob and see its secret once.
    b.click(&b.find("#create"));
    b.type_into(&b.find("#t-name"), "ci pipeline");
    b.click(&b.find("#t-owner option[value=bob]"));
    b.click(&b.find("#submit"));
    let secret = b
        .property(&b.find("#auth-token"), "value")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("tok_"), "{secret}");
    b.wait("the address of a shown secret", || {
        b.url().ends_with("/secret").then_some(())
    });
    assert!(works(&secret));
    let ci = named("ci pipeline")[0].id.get();
    // Reload: gone; no second token, no second secret.
    b.refresh();
    b.find("#gone");
    assert!(!b.source().contains(&secret));
    assert_eq!(named("ci pipeline").len(), 1);
    assert!(works(&secret), "the reload regenerated nothing");

    // Filter, then sort.
    b.goto(&list);
    b.type_into(&b.find("#f-name"), "ep");
    b.click(&b.find("#filter-apply"));
    b.wait("the filtered list", || {
        (names(&b) == ["deploy", "reports"]).then_some(())
    });
    b.click(&b.find("#sort-name"));
    b.wait("sorted descending", || {
        (b.url().contains("order=desc") && names(&b) == ["reports", "deploy"]).then_some(())
    });
    assert!(
        b.url().contains("name=ep"),
        "the sort kept the filter: {}",
        b.url()
    );

    // Mass-disable two tokens (the confirmation, then the message the next page shows).
    b.click(&b.find("#filter-reset"));
    b.wait("the whole list", || (names(&b).len() == 7).then_some(()));
    let id = |name: &str| named(name)[0].id.get();
    let (grafana, deploy) = (id("grafana"), id("deploy"));
    b.click(&b.find(&format!("#token-{grafana} input[name=ids]")));
    b.click(&b.find(&format!("#token-{deploy} input[name=ids]")));
    b.click(&b.find("#mass-disable"));
    assert_eq!(b.accept_dialog(), "Disable 2 selected API tokens?");
    b.wait("the notice", || {
        b.all(".notice.good")
            .first()
            .map(|n| b.text(n))
            .filter(|t| t == "API tokens disabled")
    });
    for name in ["grafana", "deploy"] {
        assert_eq!(named(name)[0].status, Status::Disabled, "{name}");
    }

    // Regenerate from the token's page; a reload of the answer regenerates nothing.
    b.goto(&format!("{list}/{ci}"));
    b.click(&b.find("#regenerate"));
    assert!(b.accept_dialog().starts_with("Regenerate the auth token?"));
    let fresh = b
        .property(&b.find("#auth-token"), "value")
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, secret);
    assert!(works(&fresh) && !works(&secret));
    b.wait("the address of a shown secret", || {
        b.url().ends_with("/secret").then_some(())
    });
    b.refresh();
    b.find("#gone");
    assert!(works(&fresh), "the reload regenerated nothing");

    // Delete it from its page.
    b.goto(&format!("{list}/{ci}"));
    b.click(&b.find("#delete"));
    assert!(!b.accept_dialog().is_empty());
    b.wait("the deletion", || {
        named("ci pipeline").is_empty().then_some(())
    });
    drop(b);

    // The self-service API, through the same balancer: with the browser's session, then with a
    // token, every request to the other process.
    let bob = [("Cookie", "demo_user=bob")];
    let (status, made) = http(
        proxy.addr,
        "POST",
        "/api/tokens",
        &bob,
        Some(&json!({"name": "api", "permissions": "tokens.manage"})),
    );
    assert_eq!(status, 201, "{made}");
    let api_id = made["id"].as_u64().unwrap();
    let api_secret = made["secret"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {api_secret}");
    let by_token = [("Authorization", bearer.as_str())];
    // The other process learns of the new token through PostgreSQL: polled, bounded.
    let listed = wait_for("the token on both processes", || {
        let both: Vec<(u16, Value)> = (0..2)
            .map(|_| http(proxy.addr, "GET", "/api/tokens", &by_token, None))
            .collect();
        both.iter()
            .all(|(s, _)| *s == 200)
            .then(|| both[0].1.clone())
    });
    let mine: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        mine.contains(&"api") && !mine.contains(&"reports"),
        "{mine:?}"
    );
    let (status, again) = http(
        proxy.addr,
        "POST",
        &format!("/api/tokens/{api_id}/regenerate"),
        &bob,
        Some(&json!({})),
    );
    assert_eq!(status, 200, "{again}");
    let newer = again["secret"].as_str().unwrap().to_owned();
    assert!(works(&newer) && !works(&api_secret));
    // Revoking writes return once every process applied them: refused at once, everywhere.
    let (status, _) = http(
        proxy.addr,
        "POST",
        "/api/tokens/disable",
        &bob,
        Some(&json!({"ids": [api_id]})),
    );
    assert_eq!(status, 200);
    let newer_bearer = format!("Bearer {newer}");
    for _ in 0..2 {
        let (status, _) = http(
            proxy.addr,
            "GET",
            "/api/tokens",
            &[("Authorization", newer_bearer.as_str())],
            None,
        );
        assert_eq!(status, 401, "a disabled token is refused by both processes");
    }
    let (status, _) = http(
        proxy.addr,
        "DELETE",
        &format!("/api/tokens/{api_id}"),
        &bob,
        None,
    );
    assert_eq!(status, 204);
    assert!(named("api").is_empty());

    // Both processes served, alternately: every second request went to each.
    let served = proxy.served.lock().unwrap().clone();
    let counts = proxy.counts();
    assert!(counts[0] >= 15 && counts[1] >= 15, "{counts:?}");
    let posts: Vec<usize> = served
        .iter()
        .filter(|(_, line)| line.starts_with("POST "))
        .map(|(i, _)| *i)
        .collect();
    assert!(posts.contains(&0) && posts.contains(&1), "{served:?}");
    for log in [&a.log, &b_.log] {
        let text = std::fs::read_to_string(log).unwrap();
        for s in [&secret, &fresh, &api_secret, &newer] {
            assert!(!text.contains(s.as_str()), "a secret in {}", log.display());
        }
    }
}
