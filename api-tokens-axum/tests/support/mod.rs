//! The HTTP tests' fixture: a server on 127.0.0.1 (stopped when dropped), a raw HTTP/1.1
//! client (so tests can send what no polite client sends), a store that counts and can fail,
//! and a `tracing` subscriber that keeps what was logged.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The WebDriver client the browser tests drive Chromium with.
#[cfg(feature = "page")]
pub mod webdriver;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use api_tokens::store::{Candidate, Change};
use api_tokens::time::OffsetDateTime;
use api_tokens::{
    MemoryStore, Query, StoreError, Token, TokenId, TokenName, TokenStore, UserId,
    secret::SecretHash, token::LastUse,
};
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every network step of a test is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A server on 127.0.0.1 at a free port, aborted when dropped (also when a test fails).
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` with the peer address available (`ConnectInfo<SocketAddr>`).
pub async fn serve(app: Router) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server { addr, task }
}

/// Serves `app` without `ConnectInfo` (a host that forgot it).
pub async fn serve_without_peer(app: Router) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, task }
}

/// An answer: status, headers (names lowercased) and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// A request as bytes: any header value, even one no client library would send.
pub fn raw(method: &str, path: &str, headers: &[(&str, &[u8])], body: Option<&str>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n")
        .into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(body) = body {
        out.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Sends `request` on a new connection and reads the whole answer.
pub async fn send(addr: SocketAddr, request: &[u8]) -> Reply {
    tokio::time::timeout(TIMEOUT, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        parse(&bytes)
    })
    .await
    .expect("the server answers within the timeout")
}

fn parse(bytes: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// GET `path` with `Authorization: Bearer <secret>` (or nothing).
pub async fn get(addr: SocketAddr, path: &str, secret: Option<&str>) -> Reply {
    let auth = secret.map(|s| format!("Bearer {s}"));
    let headers: Vec<(&str, &[u8])> = auth
        .iter()
        .map(|a| ("Authorization", a.as_bytes()))
        .collect();
    send(addr, &raw("GET", path, &headers, None)).await
}

/// A request with a bearer token and an optional JSON body.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    secret: &str,
    body: Option<&str>,
) -> Reply {
    let auth = format!("Bearer {secret}");
    send(
        addr,
        &raw(method, path, &[("Authorization", auth.as_bytes())], body),
    )
    .await
}

/// A `MemoryStore` that counts lookups by secret hash (and every other call), and fails or
/// blocks on demand.
#[derive(Default)]
pub struct CountingStore {
    inner: MemoryStore,
    lookups: AtomicUsize,
    calls: AtomicUsize,
    fail: Mutex<Option<fn() -> StoreError>>,
    panic_lookups: AtomicBool,
    panic_management: AtomicBool,
    gate: Gate,
    auth_gate: Gate,
}

impl CountingStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lookups by secret hash (`authenticate`) so far.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// Every call so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Makes every call fail with `error()` from now on (`None`: work again).
    pub fn fail_with(&self, error: Option<fn() -> StoreError>) {
        *self.fail.lock().unwrap() = error;
    }

    /// Makes lookups by secret hash panic from now on (a host store's bug; `false`: work again).
    pub fn panic_on_lookups(&self, on: bool) {
        self.panic_lookups.store(on, Ordering::SeqCst);
    }

    /// Makes every call but lookups by secret hash panic from now on (`false`: work again).
    pub fn panic_on_management(&self, on: bool) {
        self.panic_management.store(on, Ordering::SeqCst);
    }

    /// The gate `query` waits at while closed.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The gate `authenticate` waits at while closed (a database lookup that waits).
    pub fn auth_gate(&self) -> &Gate {
        &self.auth_gate
    }

    fn enter_managed(&self) -> Result<(), StoreError> {
        if self.panic_management.load(Ordering::SeqCst) {
            panic!("a bug in the host's store");
        }
        self.enter()
    }

    fn enter(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match *self.fail.lock().unwrap() {
            Some(error) => Err(error()),
            None => Ok(()),
        }
    }
}

/// A gate a store call waits at while it is closed (bounded by the timeout), so a test can hold
/// a management call inside the store.
#[derive(Default)]
pub struct Gate {
    closed: AtomicBool,
    waiting: Mutex<usize>,
    changed: Condvar,
}

impl Gate {
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        let _guard = self.waiting.lock().unwrap();
        self.changed.notify_all();
    }

    /// How many calls wait at the gate now.
    pub fn waiting(&self) -> usize {
        *self.waiting.lock().unwrap()
    }

    fn pass(&self) {
        let mut waiting = self.waiting.lock().unwrap();
        *waiting += 1;
        let deadline = std::time::Instant::now() + TIMEOUT;
        while self.closed.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            waiting = self
                .changed
                .wait_timeout(waiting, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        *waiting -= 1;
    }
}

impl TokenStore for CountingStore {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        self.enter_managed()?;
        self.inner.reserve_ids(n)
    }
    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        self.enter_managed()?;
        self.inner.apply(changes)
    }
    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.enter_managed()?;
        self.inner.get(id)
    }
    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError> {
        self.enter_managed()?;
        self.inner.find_name(owner, name)
    }
    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        self.enter_managed()?;
        self.gate.pass();
        self.inner.query(query, now)
    }
    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.enter_managed()?;
        self.inner.count(query, now)
    }
    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.panic_lookups.load(Ordering::SeqCst) {
            panic!("a bug in the host's store");
        }
        self.enter()?;
        self.auth_gate.pass();
        self.inner.authenticate(hash, check)
    }
    fn enforces_limits(&self) -> bool {
        self.inner.enforces_limits()
    }
}

/// What was logged through `tracing` while a [`Logs::capture`] guard lives (this thread).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

thread_local! {
    /// Where this thread's events go while a capture lives.
    static CURRENT: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// Ends a capture of this thread's events.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

impl Logs {
    /// Captures this thread's events until the guard drops. `#[tokio::test]` runs the test and
    /// the server's tasks on one thread, so the server's events are captured too.
    ///
    /// One global subscriber routes each event to its thread's capture: a scoped subscriber
    /// per test (`set_default`) made `tracing` rebuild its cached callsite interest whenever
    /// one came or went, and a test running beside others could miss events.
    pub fn capture() -> (Self, CaptureGuard) {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            tracing::subscriber::set_global_default(Capture).unwrap();
        });
        let logs = Self::default();
        CURRENT.with(|c| *c.borrow_mut() = Some(logs.clone()));
        (logs, CaptureGuard(()))
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn all(&self) -> String {
        self.lines().join("\n")
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

struct Capture;

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(event.metadata().level().to_string());
        event.record(&mut fields);
        CURRENT.with(|c| {
            if let Some(logs) = c.borrow().as_ref() {
                logs.0.lock().unwrap().push(fields.0);
            }
        });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
