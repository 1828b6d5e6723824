//! Authentication on a `Replica` beside `MemoryStore` (same tokens, same run), and on
//! `PostgresStore` without a replica (one round trip per request), 100,000 tokens each.
//! `replica` writes last uses every 10 s (the default) to the database on the same machine;
//! `replica_quiet` once an hour, to show the replica's own path.
//!
//! Needs PostgreSQL: a throwaway server is started (tests/support/pg.rs), or set
//! `API_TOKENS_PG_URL` to use yours (the bench writes tables into that database).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::hint::black_box;
use std::net::IpAddr;

use api_tokens::store::postgres::PostgresStore;
use api_tokens::store::replica::{Replica, ReplicaOptions};
use api_tokens::{
    Actor, MemoryStore, NewToken, Permission, RequestContext, TokenName, TokenStore, Tokens, UserId,
};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/support/pg.rs"]
mod pg;

const N: usize = 100_000;

/// `N` tokens through the API (create and generate in batches of 1,000); their secrets.
fn fill<S: TokenStore>(tokens: &Tokens<S>, n: usize) -> Vec<String> {
    let admin = Actor::admin(UserId::from(0));
    let mut secrets = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(1000) {
        let items = (chunk * 1000..((chunk + 1) * 1000).min(n)).map(|i| {
            NewToken::new(TokenName::new(&format!("token-{i}")).unwrap())
                .owner(UserId::from((i / 10) as u64))
                .permissions("create-acct, dns.*, kill-acct".parse().unwrap())
                .allowlist("10.0.0.0/8, 192.168.0.0/16".parse().unwrap())
        });
        let ids = tokens.create(&admin, items).unwrap();
        for (_, s) in tokens.generate(&admin, ids).unwrap() {
            secrets.push(s.expose().to_owned());
        }
    }
    secrets
}

fn bench(c: &mut Criterion) {
    let server;
    let url = match std::env::var("API_TOKENS_PG_URL") {
        Ok(u) => u,
        Err(_) => {
            server = pg::PgServer::start();
            match &server {
                Some(s) => s.create_db("bench"),
                None => return,
            }
        }
    };
    let memory = Tokens::new(MemoryStore::new());
    let m_secrets = fill(&memory, N);
    let direct = Tokens::new(PostgresStore::connect(&url).unwrap());
    let p_secrets = fill(&direct, N);
    let replica = Tokens::new(
        Replica::start(
            PostgresStore::connect(&url).unwrap(),
            ReplicaOptions::default(),
        )
        .unwrap(),
    );
    assert_eq!(replica.store().len(), N);
    // The same, with last uses written once an hour: here the database shares the machine's
    // two cores, and writing 100,000 last uses every 10 s is work the database does, not the
    // replica; this one measures the replica's own path.
    let quiet = Tokens::new(
        Replica::start(
            PostgresStore::connect(&url).unwrap(),
            ReplicaOptions::default().last_use_flush(std::time::Duration::from_secs(3600)),
        )
        .unwrap(),
    );
    let client: IpAddr = "10.1.2.3".parse().unwrap();
    let ctx = RequestContext::from_ip(client);
    let perm: Permission = "kill-acct".parse().unwrap();

    let mut g = c.benchmark_group("fleet_100k");
    for (name, tokens, secrets) in [
        ("memory", None, &m_secrets),
        ("replica_quiet", Some(&quiet), &p_secrets),
        ("replica", Some(&replica), &p_secrets),
    ] {
        let mut i = 0usize;
        g.bench_function(format!("{name}/authenticate_cold"), |b| {
            b.iter(|| {
                i = (i + 7919) % N;
                let grant = match tokens {
                    None => memory.authenticate(&secrets[i], &ctx),
                    Some(t) => t.authenticate(&secrets[i], &ctx),
                }
                .unwrap();
                black_box(grant.require(&perm).is_ok())
            })
        });
        g.bench_function(format!("{name}/authenticate_hot"), |b| {
            b.iter(|| {
                let grant = match tokens {
                    None => memory.authenticate(&secrets[42], &ctx),
                    Some(t) => t.authenticate(&secrets[42], &ctx),
                }
                .unwrap();
                black_box(grant.require(&perm).is_ok())
            })
        });
    }
    g.sample_size(30);
    let mut i = 0usize;
    g.bench_function("postgres_no_replica/authenticate_cold", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            let grant = direct.authenticate(&p_secrets[i], &ctx).unwrap();
            black_box(grant.require(&perm).is_ok())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
