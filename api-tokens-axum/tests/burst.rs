//! Item 6: a bounded burst of bad tokens from 127.0.0.1. The server stays up, every request
//! gets a clean 401, malformed input never reaches the store, and a well-formed unknown secret
//! costs exactly one lookup.

use crate::support::{CountingStore, get as http_get, raw, send, serve};
use api_tokens::{Actor, NewToken, SecretFormat, Tokens, UserId};
use api_tokens_axum::{AuthLayer, Authenticated, SecretSources};
use axum::Router;
use axum::http::HeaderName;
use axum::routing::get;

/// Requests per task, and tasks at once.
const PER_TASK: usize = 150;
const TASKS: usize = 8;

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Junk(u64);

impl Junk {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Bytes a header value may carry on the wire (visible ASCII, space, tab, obs-text),
    /// none of them CR, LF or NUL; up to 16 KiB.
    fn value(&mut self) -> Vec<u8> {
        let len = match self.next() % 4 {
            0 => 16 * 1024,
            1 => (self.next() % 200) as usize + 1,
            2 => (self.next() % 4096) as usize + 1,
            _ => 53,
        };
        let mut v: Vec<u8> = (0..len)
            .map(|_| match (self.next() % 224) as u8 {
                b if b < 95 => b + 0x20,
                b if b < 96 => b'\t',
                b => b + 32,
            })
            .collect();
        // Header values are trimmed on the wire: keep the ends visible.
        if let Some(first) = v.first_mut() {
            *first = b'x';
        }
        if let Some(last) = v.last_mut() {
            *last = b'x';
        }
        v
    }

    /// One malformed request of a few shapes.
    fn request(&mut self) -> Vec<u8> {
        let value = self.value();
        let prefixed = [&b"Bearer "[..], &value].concat();
        let secret = format!("Bearer {}", SecretFormat::default().generate().expose());
        let headers: Vec<(&str, &[u8])> = match self.next() % 6 {
            0 => vec![("Authorization", &value)],
            1 => vec![("Authorization", &prefixed)],
            2 => vec![("X-API-Key", &value)],
            3 => vec![
                ("Authorization", secret.as_bytes()),
                ("Authorization", secret.as_bytes()),
            ],
            4 => vec![("Authorization", b"Bearer ")],
            _ => vec![("Authorization", &prefixed), ("X-API-Key", b"tok_other")],
        };
        raw("GET", "/whoami", &headers, None)
    }
}

#[tokio::test]
async fn a_burst_of_bad_tokens_leaves_the_server_up_and_the_store_untouched() {
    let tokens = Tokens::new(CountingStore::new());
    let alice = Actor::user(UserId::new("alice").unwrap());
    let good = tokens
        .issue(
            &alice,
            NewToken::new("good".parse().unwrap()).permissions("*".parse().unwrap()),
        )
        .unwrap()
        .secret
        .expose()
        .to_owned();
    let app = Router::new()
        .route(
            "/whoami",
            get(|Authenticated(g): Authenticated| async move { g.owner.to_string() }),
        )
        .layer(AuthLayer::new(tokens.clone()).with_secret_sources(
            SecretSources::default().with_header(HeaderName::from_static("x-api-key")),
        ));
    // The startup check a host runs (it reads the store once; otherwise the first
    // authentication would run it, and that read is not the burst's doing).
    tokens.check_hash_keys().unwrap();
    let server = serve(app).await;
    let addr = server.addr;
    let before = tokens.store().calls();

    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            tokio::spawn(async move {
                let mut junk = Junk(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                let mut statuses = Vec::with_capacity(PER_TASK);
                for _ in 0..PER_TASK {
                    statuses.push(send(addr, &junk.request()).await.status);
                }
                statuses
            })
        })
        .collect();
    let mut seen = 0;
    for task in tasks {
        for status in task.await.unwrap() {
            assert_eq!(status, 401);
            seen += 1;
        }
    }
    assert_eq!(seen, PER_TASK * TASKS);
    assert_eq!(
        tokens.store().calls(),
        before,
        "{seen} malformed requests, no store call"
    );

    // Well-formed secrets nobody holds: one lookup each, refused.
    for _ in 0..50 {
        let guess = SecretFormat::default().generate();
        assert_eq!(
            http_get(addr, "/whoami", Some(guess.expose())).await.status,
            401
        );
    }
    assert_eq!(tokens.store().lookups(), 50);

    // Still up, still right.
    let r = http_get(addr, "/whoami", Some(&good)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice"));
}
