//! The example server as an orchestrator runs it, over a real PostgreSQL: it becomes ready,
//! serves, exports its metrics, logs a refusal as one line, and on SIGTERM finishes, writes
//! the buffered last uses and leaves the fleet before it exits. SIGINT stops it too.

use crate::pg;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::get;
use pg::PgServer;

/// The example's binary, killed when dropped (also when a test fails).
struct Server {
    child: Child,
    addr: SocketAddr,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_api-tokens-axum-example"))
            .env("API_TOKENS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the example runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = |prefix: &str| {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("the example ended before printing {prefix:?}"))
                .unwrap();
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"))
                .to_owned()
        };
        let addr = next("listening on http://").parse().unwrap();
        let token = next("token (dns.*, tokens.manage): ");
        Self { child, addr, token }
    }

    /// Sends `signal` and waits (30 s at most) for the process to exit; returns its status
    /// and everything it logged.
    fn stop_with(mut self, signal: &str) -> (std::process::ExitStatus, String) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let until = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < until, "still running 30 s after {signal}");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut logs = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        (status, logs)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_the_server_writes_its_last_uses_and_leaves_the_fleet() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let url = pg.create_db("example");
    // Last uses would wait an hour: only the shutdown writes them.
    let server = Server::start(&[
        ("API_TOKENS_PG_URL", url.as_str()),
        ("API_TOKENS_LAST_USE_FLUSH", "3600"),
    ]);
    let addr = server.addr;

    // Ready once the replica is current; the body says so.
    let until = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let (status, body) = get(addr, "/readyz", None).await;
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < until, "not ready within 30 s: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["checks"]["tokens"]["state"], "current", "{ready}");
    assert_eq!(ready["checks"]["tokens"]["holds_lease"], true, "{ready}");
    assert_eq!(get(addr, "/livez", None).await.0, 200);

    // Served; a refusal; the metrics as Prometheus reads them.
    let (status, body) = get(addr, "/zones", Some(&server.token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(addr, "/zones", Some("tok_nonsense")).await.0, 401);
    let (status, page) = get(addr, "/metrics", None).await;
    assert_eq!(status, 200);
    for line in [
        "api_tokens_authentications_total{outcome=\"granted\"} 1",
        "api_tokens_authentications_total{outcome=\"malformed\"} 1",
        "# TYPE api_tokens_replica_current gauge",
        "# TYPE api_tokens_replica_lag_seconds gauge",
        "api_tokens_last_use_backlog 1",
    ] {
        assert!(page.contains(line), "{line:?} not in\n{page}");
    }
    assert!(
        page.contains("api_tokens_replica_current{replica="),
        "{page}"
    );
    assert!(!page.contains(&server.token), "a secret in the metrics");

    let used = "SELECT coalesce(last_used_ip, 'none') FROM api_tokens WHERE name LIKE 'demo-%'";
    assert_eq!(
        pg.psql("example", used).trim(),
        "none",
        "not written before"
    );
    assert_eq!(
        pg.psql("example", "SELECT count(*) FROM api_token_replicas")
            .trim(),
        "1"
    );

    let token = server.token.clone();
    let (status, logs) = server.stop_with("-TERM");
    assert!(status.success(), "exit {status}:\n{logs}");
    assert_eq!(pg.psql("example", used).trim(), "127.0.0.1", "{logs}");
    assert_eq!(
        pg.psql("example", "SELECT count(*) FROM api_token_replicas")
            .trim(),
        "0",
        "the lease row is gone"
    );
    assert!(logs.contains("SIGTERM"), "{logs}");
    assert!(
        logs.contains("stopped: last uses written, left the fleet"),
        "{logs}"
    );
    // The refusal: one line with its code and the client address; never a secret.
    let refused: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("token refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{logs}");
    assert!(
        refused[0].contains("code=\"malformed\"") || refused[0].contains("code=malformed"),
        "{}",
        refused[0]
    );
    assert!(refused[0].contains("client_ip=127.0.0.1"), "{}", refused[0]);
    assert!(!logs.contains(&token), "a secret was logged");
}

#[tokio::test]
async fn sigint_stops_it_too() {
    let server = Server::start(&[]);
    let (status, _) = get(server.addr, "/zones", Some(&server.token)).await;
    assert_eq!(status, 200);
    let (status, logs) = server.stop_with("-INT");
    assert!(status.success(), "exit {status}:\n{logs}");
    assert!(logs.contains("SIGINT"), "{logs}");
}
