//! Resident bytes per token of a replica holding 1,000,000 tokens shaped like those of
//! `examples/memory.rs` (a 16-character name, 2 allowlist entries, 3 of 12 ACL names, an
//! expiry, a secret hash), loaded from PostgreSQL. The rows are written by SQL (no secrets are
//! needed to measure memory). `API_TOKENS_MEMORY_COUNT` sets the count.
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

#[path = "../tests/support/pg.rs"]
mod pg;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let count: u64 = std::env::var("API_TOKENS_MEMORY_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let Some(server) = pg::PgServer::start() else {
        return;
    };
    let url = server.create_db("memory");
    let store = PostgresStore::connect(&url).unwrap();
    let t = Instant::now();
    server.psql(
        "memory",
        &format!(
            "INSERT INTO api_tokens (id, owner, name, description, creator, status, created_at,
                 expires_at, permissions, allowlist, secret_hash, generated_at, revision, change_seq)
             SELECT i, (i / 10)::text, 'deploy-key-' || lpad((i % 100000)::text, 5, '0'), '',
                 '0', 0, 1700000000, 1900000000,
                 array_to_string(ARRAY(SELECT DISTINCT p COLLATE \"C\" FROM unnest(ARRAY[a[1 + i % 12],
                     a[1 + (i / 12) % 12], a[1 + (i / 144) % 12]]) AS p ORDER BY 1),
                     ' '),
                 '10.' || (i * 7 % 256) || '.' || (i * 13 % 256) || '.0/24 192.168.'
                     || (i * 17 % 256) || '.' || (i * 31 % 256),
                 decode(md5(i::text) || md5((-i)::text), 'hex'), 1700000000, 0, 1
             FROM generate_series(1, {count}) AS i,
                  (SELECT ARRAY['create-acct', 'kill-acct', 'suspend-acct', 'edit-dns',
                      'list-accts', 'show-bandwidth', 'ssl', 'mail', 'backup', 'restart',
                      'upgrade-acct', 'passwd'] AS a) AS acls;
             UPDATE api_token_clock SET seq = 1;"
        ),
    );
    println!("wrote {count} rows in {:.1} s", t.elapsed().as_secs_f64());
    let before = resident_bytes();
    let t = Instant::now();
    let replica = Replica::start(
        store,
        ReplicaOptions::default().staleness_bound(Duration::from_secs(60)),
    )
    .unwrap();
    let loaded = t.elapsed();
    let after = resident_bytes();
    assert_eq!(replica.len() as u64, count);
    println!("tokens: {count}");
    println!("load time: {:.1} s", loaded.as_secs_f64());
    println!("resident bytes before: {before}");
    println!("resident bytes after: {after}");
    println!(
        "resident bytes per token: {:.0}",
        after.saturating_sub(before) as f64 / count as f64
    );
}
