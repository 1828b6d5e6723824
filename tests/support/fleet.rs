//! A fleet of replicas over one real PostgreSQL: replicas in this process, and replicas in
//! child processes of this test binary ([`ChildReplica`]) that a test may kill, freeze or let
//! run past its own assertions (they are killed when dropped).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use api_tokens::store::postgres::PostgresStore;
use api_tokens::store::replica::{Replica, ReplicaOptions};
use api_tokens::{DenialKind, Tokens};

use super::child::child_test;
use super::ctx;

/// A replica over the database at `url`.
pub fn replica(url: &str, options: ReplicaOptions) -> Tokens<Replica> {
    Tokens::new(Replica::start(PostgresStore::connect(url).unwrap(), options).unwrap())
}

/// Replica options with staleness bound `bound`.
pub fn bounded(bound: Duration) -> ReplicaOptions {
    ReplicaOptions::default().staleness_bound(bound)
}

/// How `t` refuses `secret`, or `None` when it grants it.
pub fn kind(t: &Tokens<Replica>, secret: &str) -> Option<DenialKind> {
    t.authenticate(secret, &ctx()).err().map(|d| d.kind())
}

/// Sends a signal to a process (`kill -SIG pid`).
pub fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

const CHILD_URL: &str = "API_TOKENS_FLEET_CHILD_URL";
const CHILD_BOUND_MS: &str = "API_TOKENS_FLEET_CHILD_BOUND_MS";
const CHILD_NAME: &str = "API_TOKENS_FLEET_CHILD_NAME";

/// The child side of [`ChildReplica`]: a replica in its own process that answers `auth SECRET`
/// lines on stdin. Run alone without its environment (`--include-ignored`), it has nothing to
/// do and passes.
#[test]
#[ignore = "run in a child process by the tests with replicas in other processes"]
fn child_replica() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let bound = std::env::var(CHILD_BOUND_MS)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis);
    let mut options = bounded(bound);
    if let Ok(name) = std::env::var(CHILD_NAME) {
        options = options.name(name);
    }
    let tokens = replica(&url, options);
    println!("READY");
    for line in std::io::stdin().lines() {
        let line = line.unwrap();
        let Some(secret) = line.strip_prefix("auth ") else {
            break;
        };
        match tokens.authenticate(secret, &ctx()) {
            Ok(g) => println!("REPLY ok {}", g.token),
            Err(d) => println!("REPLY denied {:?}", d.kind()),
        }
    }
}

/// A replica in a child process of this test binary, ready when returned.
pub struct ChildReplica {
    pub proc: std::process::Child,
    pub stdin: std::process::ChildStdin,
    out: BufReader<std::process::ChildStdout>,
}

/// A child still running when its test ends (a failed assertion, a frozen child) is killed:
/// it never outlives the test, nor holds the output of whatever ran the tests.
impl Drop for ChildReplica {
    fn drop(&mut self) {
        if self.proc.try_wait().ok().flatten().is_none() {
            let _ = self.proc.kill();
            let _ = self.proc.wait();
        }
    }
}

impl ChildReplica {
    /// A replica named `child` with a staleness bound of 2 s.
    pub fn spawn(url: &str) -> Self {
        Self::spawn_with(url, Duration::from_secs(2), "child")
    }

    /// A replica named `name` with staleness bound `bound`.
    pub fn spawn_with(url: &str, bound: Duration, name: &str) -> Self {
        let mut proc = child_test!(child_replica)
            .env(CHILD_URL, url)
            .env(CHILD_BOUND_MS, bound.as_millis().to_string())
            .env(CHILD_NAME, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = proc.stdin.take().unwrap();
        let out = BufReader::new(proc.stdout.take().unwrap());
        let mut c = Self { proc, stdin, out };
        c.expect("READY");
        c
    }

    /// Reads the child's output up to the line holding `marker`; returns what follows it.
    pub fn expect(&mut self, marker: &str) -> String {
        loop {
            let mut line = String::new();
            assert!(self.out.read_line(&mut line).unwrap() > 0, "child ended");
            if let Some(at) = line.find(marker) {
                return line[at + marker.len()..].trim().to_owned();
            }
        }
    }

    /// The child's answer to `secret`: `ok ID` or `denied KIND`.
    pub fn auth(&mut self, secret: &str) -> String {
        writeln!(self.stdin, "auth {secret}").unwrap();
        self.expect("REPLY ")
    }
}
