//! Revocation propagation between replicas: replica A disables a token, replica B is asked
//! until it refuses it. 1,000 revocations; prints p50/p90/p99/max of the time from A's call
//! returning (the commit is its last round trip) to B's first refusal, and from A's call
//! starting, and of the write itself.
//!
//! `cargo bench -p api-tokens-benches --bench propagation` (starts a throwaway PostgreSQL, or
//! uses `API_TOKENS_PG_URL`). `API_TOKENS_REVOCATIONS` sets the count.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::time::{Duration, Instant};

use api_tokens::store::postgres::PostgresStore;
use api_tokens::store::replica::{Replica, ReplicaOptions};
use api_tokens::{Actor, NewToken, RequestContext, Status, TokenName, Tokens, UserId};

#[path = "../tests/support/pg.rs"]
mod pg;

fn percentiles(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "{name:<34} p50 {:>9.3} ms   p90 {:>9.3} ms   p99 {:>9.3} ms   max {:>9.3} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.90).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3,
    );
}

fn main() {
    let n: usize = std::env::var("API_TOKENS_REVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let server;
    let url = match std::env::var("API_TOKENS_PG_URL") {
        Ok(u) => u,
        Err(_) => {
            server = pg::PgServer::start();
            match &server {
                Some(s) => s.create_db("propagation"),
                None => return,
            }
        }
    };
    let replica = || {
        Tokens::new(
            Replica::start(
                PostgresStore::connect(&url).unwrap(),
                ReplicaOptions::default().staleness_bound(Duration::from_secs(5)),
            )
            .unwrap(),
        )
    };
    let (a, b) = (replica(), replica());
    let admin = Actor::admin(UserId::from(1));
    let ctx = RequestContext::unknown_address();
    let ids = a
        .create(
            &admin,
            (0..n).map(|i| {
                NewToken::new(TokenName::new(&format!("t{i}")).unwrap())
                    .permissions("deploy.*".parse().unwrap())
            }),
        )
        .unwrap();
    let secrets: Vec<(api_tokens::TokenId, String)> = a
        .generate(&admin, ids)
        .unwrap()
        .into_iter()
        .map(|(id, s)| (id, s.expose().to_owned()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.authenticate(&secrets[n - 1].1, &ctx).is_err() {
        assert!(Instant::now() < deadline, "B never saw the tokens");
        std::thread::yield_now();
    }
    let (mut from_return, mut from_start, mut writes) = (vec![], vec![], vec![]);
    for (id, secret) in &secrets {
        assert!(b.authenticate(secret, &ctx).is_ok());
        let start = Instant::now();
        a.set_status(&admin, [*id], Status::Disabled).unwrap();
        let returned = Instant::now();
        let limit = returned + Duration::from_secs(10);
        while b.authenticate(secret, &ctx).is_ok() {
            assert!(
                Instant::now() < limit,
                "B still honours token {id} after 10 s"
            );
            // Poll, don't spin: on a small machine a spinning observer would steal the core
            // the replicas and the database need.
            std::thread::sleep(Duration::from_micros(20));
        }
        let refused = Instant::now();
        from_return.push(refused.saturating_duration_since(returned));
        from_start.push(refused - start);
        writes.push(returned - start);
    }
    println!("{n} revocations, replica A writes, replica B refuses (bound 5 s):");
    percentiles("A's call returned -> B refuses", from_return);
    percentiles("A's call started  -> B refuses", from_start);
    percentiles("A's write (set_status) itself", writes);
}
