//! Authentication against `SqliteStore` with 100,000 tokens, beside `MemoryStore` holding the
//! same tokens, in one run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::hint::black_box;
use std::net::IpAddr;

use api_tokens::store::sqlite::SqliteStore;
use api_tokens::{
    Actor, MemoryStore, NewToken, Permission, RequestContext, TokenName, TokenStore, Tokens, UserId,
};
use criterion::{Criterion, criterion_group, criterion_main};

const N: usize = 100_000;

fn fill<S: TokenStore>(tokens: &Tokens<S>) -> Vec<String> {
    let admin = Actor::admin(UserId::from(0));
    (0..N)
        .map(|i| {
            tokens
                .issue(
                    &admin,
                    NewToken::new(TokenName::new(&format!("token-{i}")).unwrap())
                        .owner(UserId::from((i / 10) as u64))
                        .permissions("create-acct, dns.*, kill-acct".parse().unwrap())
                        .allowlist("10.0.0.0/8, 192.168.0.0/16".parse().unwrap()),
                )
                .unwrap()
                .secret
                .expose()
                .to_owned()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("api-tokens-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Removed when the function returns, however it returns (after the store, declared later,
    // is closed).
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _remove = Remove(dir.clone());
    let sqlite = Tokens::new(SqliteStore::open(dir.join("bench.db")).unwrap());
    let memory = Tokens::new(MemoryStore::new());
    let s_secrets = fill(&sqlite);
    let m_secrets = fill(&memory);
    let client: IpAddr = "10.1.2.3".parse().unwrap();
    let ctx = RequestContext::from_ip(client);
    let perm: Permission = "kill-acct".parse().unwrap();

    let mut g = c.benchmark_group("store_100k");
    let mut i = 0usize;
    g.bench_function("sqlite_file/authenticate", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            let grant = sqlite.authenticate(&s_secrets[i], &ctx).unwrap();
            black_box(grant.require(&perm).is_ok())
        })
    });
    let mut i = 0usize;
    g.bench_function("memory/authenticate", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            let grant = memory.authenticate(&m_secrets[i], &ctx).unwrap();
            black_box(grant.require(&perm).is_ok())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
