//! Management operations: create+generate one token, and listing one owner's tokens in a small
//! and a large store (the two medians should be close: listing by owner must not scan).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use api_tokens::{Actor, MemoryStore, NewToken, PermissionSet, Query, TokenName, Tokens, UserId};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// A store of `n` tokens: owners with 10 tokens each.
fn store_of(n: u64) -> Tokens<MemoryStore> {
    let tokens = Tokens::in_memory();
    let admin = Actor::admin(UserId::from(0));
    for owner in 0..n / 10 {
        let batch = (0..10).map(|i| {
            NewToken::new(TokenName::new(&format!("token-{i}")).unwrap())
                .owner(UserId::from(owner))
                .permissions(PermissionSet::all())
        });
        tokens.create(&admin, batch).unwrap();
    }
    tokens
}

fn manage(c: &mut Criterion) {
    let mut g = c.benchmark_group("manage");
    g.sample_size(30);

    let tokens = Tokens::in_memory();
    let actor = Actor::user(UserId::from(1));
    let n = AtomicU64::new(0);
    g.bench_function("create_and_generate_one", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let name = TokenName::new(&format!("t{i}")).unwrap();
            let item = NewToken::new(name).permissions(PermissionSet::all());
            let id = tokens.create(&actor, [item]).unwrap()[0];
            black_box(tokens.generate(&actor, [id]).unwrap())
        })
    });

    for size in [1_000u64, 1_000_000] {
        let tokens = store_of(size);
        let admin = Actor::admin(UserId::from(0));
        let query = Query::new().owners([UserId::from(size / 20)]);
        assert_eq!(tokens.list(&admin, &query).unwrap().len(), 10);
        g.bench_with_input(BenchmarkId::new("list_by_owner", size), &query, |b, q| {
            b.iter(|| black_box(tokens.list(&admin, q).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, manage);
criterion_main!(benches);
