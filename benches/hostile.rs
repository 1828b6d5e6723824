//! What hostile input costs: permission sets and list filters at 1,000, 10,000 and
//! the caps, and authentication of a token at and beyond the permission cap. Each cost should
//! grow about linearly with the input (a tenfold input, about a tenfold time), and
//! authentication should not grow at all.
//!
//! `cargo bench -p api-tokens-benches --bench hostile`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;

use api_tokens::store::sqlite::SqliteStore;
use api_tokens::{
    Actor, MemoryStore, NewToken, PermissionSet, Policy, Query, RequestContext, StaticDirectory,
    TokenId, TokenName, TokenStore, Tokens, UserId, UserState,
};
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};

/// The policy the benches use: the default, with the permission cap lifted so that tokens
/// beyond it can be measured too.
fn policy() -> Policy {
    let mut p = Policy::default();
    p.max_permissions = 1_000_000;
    p
}

/// The default cap on permissions per token.
fn permission_cap() -> usize {
    Policy::default().max_permissions
}

/// The default cap on values per list filter.
fn filter_cap() -> usize {
    Policy::default().max_filter_values
}

/// The sizes to measure, ascending, each once (a cap may equal one of the round sizes).
fn sizes(v: &[usize]) -> Vec<usize> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// `n` wildcard permissions, none covering another: the shape that made normalising quadratic.
fn wildcards(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("g{i}.*")).collect()
}

fn permission_sets(c: &mut Criterion) {
    let mut g = c.benchmark_group("hostile/permissions");
    g.sample_size(10);
    // Ten runs of each, not 55: the quadratic code (main) takes seconds per run.
    g.sampling_mode(SamplingMode::Flat);
    // The issue's table measured 2,000 and 20,000 entries.
    for n in sizes(&[1_000, 2_000, 10_000, 20_000, permission_cap()]) {
        let names = wildcards(n);
        g.bench_with_input(
            BenchmarkId::new("parse_wildcards", n),
            &names,
            |b, names| b.iter(|| black_box(PermissionSet::parse(names).unwrap())),
        );
    }
    for n in sizes(&[1_000, 10_000, permission_cap()]) {
        let names = wildcards(n);
        let all = PermissionSet::parse(&names).unwrap();
        let fewer = PermissionSet::parse(names.iter().skip(1)).unwrap();
        g.bench_with_input(BenchmarkId::new("subset", n), &n, |b, _| {
            b.iter(|| black_box(fewer.is_subset(&all)))
        });
        g.bench_with_input(BenchmarkId::new("intersection", n), &n, |b, _| {
            b.iter(|| black_box(all.intersection(&fewer)))
        });
    }
    g.finish();
}

/// A token holding `n` permissions whose owner has lost one of them, in `store`: every
/// authentication intersects the two.
fn big_token<S: TokenStore>(store: S, n: usize) -> (Tokens<S>, String) {
    let names = wildcards(n);
    let owner = UserId::from(2);
    let rights = PermissionSet::parse(names.iter().skip(1)).unwrap();
    let directory = Arc::new(StaticDirectory::new());
    directory.set(owner.clone(), UserState::Active(rights));
    let tokens = Tokens::new(store)
        .with_policy(policy())
        .with_directory(directory);
    let issued = tokens
        .issue(
            &Actor::admin(UserId::from(1)),
            NewToken::new(TokenName::new("big").unwrap())
                .owner(owner)
                .permissions(PermissionSet::parse(&names).unwrap()),
        )
        .unwrap();
    (tokens, issued.secret.expose().to_owned())
}

fn authentication(c: &mut Criterion) {
    let mut g = c.benchmark_group("hostile/authenticate");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    let ctx = RequestContext::from_ip("10.1.2.3".parse::<IpAddr>().unwrap());
    let dir = std::env::temp_dir().join(format!("api-tokens-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for n in sizes(&[3, 1_000, 10_000, permission_cap()]) {
        let (memory, secret) = big_token(MemoryStore::new(), n);
        g.bench_with_input(
            BenchmarkId::new("memory_owner_lost_a_right", n),
            &n,
            |b, _| b.iter(|| black_box(memory.authenticate(&secret, &ctx).unwrap())),
        );
        let path = dir.join(format!("big-{n}.db"));
        let _ = std::fs::remove_file(&path);
        let (sqlite, secret) = big_token(SqliteStore::open(&path).unwrap(), n);
        g.bench_with_input(BenchmarkId::new("sqlite_file", n), &n, |b, _| {
            b.iter(|| black_box(sqlite.authenticate(&secret, &ctx).unwrap()))
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store of 10,000 tokens: 1,000 owners with 10 each.
fn filled<S: TokenStore>(store: S) -> Tokens<S> {
    let tokens = Tokens::new(store).with_policy(policy());
    let admin = Actor::admin(UserId::from(0));
    for owner in 0..1_000u64 {
        let batch = (0..10).map(|i| {
            NewToken::new(TokenName::new(&format!("token-{i}")).unwrap())
                .owner(UserId::from(owner))
                .permissions(PermissionSet::all())
        });
        tokens.create(&admin, batch).unwrap();
    }
    tokens
}

fn filters(c: &mut Criterion) {
    let mut g = c.benchmark_group("hostile/filters");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    let now = time::OffsetDateTime::now_utc();
    let memory = filled(MemoryStore::new());
    let sqlite = filled(SqliteStore::open_in_memory().unwrap());
    for k in sizes(&[1_000, 10_000, filter_cap(), 100_000]) {
        // Every other value names something in the store, those at the end of the list (a
        // list scan finds them last).
        let ids = Query::new().ids((0..k as u64).rev().map(|i| TokenId::new(i * 2 + 1)));
        let owners = Query::new().owners((0..k as u64).rev().map(|i| UserId::from(i * 2)));
        g.bench_with_input(BenchmarkId::new("memory_ids", k), &ids, |b, q| {
            b.iter(|| black_box(memory.store().count(q, now).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("memory_owners", k), &owners, |b, q| {
            b.iter(|| black_box(memory.store().count(q, now).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("sqlite_ids", k), &ids, |b, q| {
            b.iter(|| black_box(sqlite.store().count(q, now).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("sqlite_owners", k), &owners, |b, q| {
            b.iter(|| black_box(sqlite.store().count(q, now).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, permission_sets, authentication, filters);
criterion_main!(benches);
