//! What old keys and legacy hashes cost ordinary tokens (the target: at most 1.05×,
//! measured in one run), and what the miss path costs.
//!
//! One `MemoryStore` of 200,000 ordinary tokens under the current key, 1,000 under an old key
//! and 1,000 imported Zabbix hashes, authenticated through two `Tokens` over that same store:
//!
//! * `plain`: the current key alone (what a host without a rotation or imports has);
//! * `legacy_on`: the current key, one old key, and both legacy schemes honoured.
//!
//! `*/ordinary_hot` repeats one ordinary token, `*/ordinary_cold` walks a random permutation of
//! them; the two configurations are measured alternately, twice each, so drift on a shared
//! machine shows. `legacy_on/unknown_*` is the miss path: a secret that matches nothing, of the
//! host's own shape and of Zabbix's (old key, then both legacy schemes under both keys).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tokens::{
    Actor, HashKey, ImportedToken, MemoryStore, NewToken, PermissionSet, RequestContext,
    SecretFormat, TokenName, Tokens, UserId, legacy::LegacyHash, legacy::LegacyScheme,
};
use criterion::{Criterion, criterion_group, criterion_main};
use time::OffsetDateTime;

const N: usize = 200_000;
const OLD: usize = 1_000;

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Fixture {
    plain: Tokens<Arc<MemoryStore>>,
    legacy_on: Tokens<Arc<MemoryStore>>,
    presented: Vec<String>,
    order: Vec<u32>,
    now: OffsetDateTime,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let current = HashKey::new([1; 32]);
    let old = HashKey::new([2; 32]);
    let admin = Actor::admin(UserId::from(0));
    let perms: PermissionSet = "reports.read".parse().unwrap();
    let plain = Tokens::new(store.clone()).with_hash_key(current.clone());
    let mut presented = Vec::with_capacity(N);
    for i in 0..N {
        let issued = plain
            .issue(
                &admin,
                NewToken::new(TokenName::new(&format!("token-{i}")).unwrap())
                    .owner(UserId::from((i / 10) as u64))
                    .permissions(perms.clone()),
            )
            .unwrap();
        presented.push(issued.secret.expose().to_owned());
    }
    // `plain` passes its startup check now, while the store holds only its own hashes (the
    // outcome is kept); the old-key and imported tokens come after, for `legacy_on`.
    plain.check_hash_keys().unwrap();
    let under_old = Tokens::new(store.clone()).with_hash_key(old.clone());
    for i in 0..OLD {
        under_old
            .issue(
                &admin,
                NewToken::new(TokenName::new(&format!("old-{i}")).unwrap())
                    .owner(UserId::from((i / 10) as u64))
                    .permissions(perms.clone()),
            )
            .unwrap();
    }
    let legacy_on = Tokens::new(store.clone())
        .with_hash_key(current)
        .with_old_hash_key(old)
        .with_legacy_scheme(LegacyScheme::ZabbixSha512)
        .with_legacy_scheme(LegacyScheme::Sha256);
    let imported: Vec<ImportedToken> = (0..OLD)
        .map(|i| {
            let secret = format!("{:064x}", i + 1);
            let digest = <sha2::Sha512 as sha2::Digest>::digest(secret.as_bytes());
            ImportedToken::new(
                TokenName::new(&format!("zabbix-{i}")).unwrap(),
                UserId::from((i / 10) as u64),
            )
            .permissions(PermissionSet::all())
            .hash(LegacyHash::parse(LegacyScheme::ZabbixSha512, &hex(&digest)).unwrap())
        })
        .collect();
    legacy_on.import(&admin, imported).unwrap();
    legacy_on.check_hash_keys().unwrap();
    let mut order: Vec<u32> = (0..N as u32).collect();
    let mut rng = xorshift(0x5eed_1234_abcd_0001);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng() % (i as u64 + 1)) as usize);
    }
    Fixture {
        plain,
        legacy_on,
        presented,
        order,
        now: OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap(),
    }
}

fn ok(t: &Tokens<Arc<MemoryStore>>, s: &str, now: OffsetDateTime) -> bool {
    t.authenticate_at(s, &RequestContext::unknown_address(), now)
        .is_ok()
}

fn bench(c: &mut Criterion) {
    let started = Instant::now();
    let f = fixture();
    eprintln!("fixture built in {:?}", started.elapsed());
    let hot = f.presented[N / 2].clone();
    let plain = &f.plain;
    assert!(ok(&f.legacy_on, &hot, f.now) && ok(plain, &hot, f.now));

    let mut g = c.benchmark_group("rotation");
    g.measurement_time(Duration::from_secs(4));
    for round in ["a", "b"] {
        g.bench_function(format!("plain/ordinary_hot/{round}"), |b| {
            b.iter(|| black_box(ok(plain, black_box(&hot), f.now)))
        });
        g.bench_function(format!("legacy_on/ordinary_hot/{round}"), |b| {
            b.iter(|| black_box(ok(&f.legacy_on, black_box(&hot), f.now)))
        });
        let mut i = 0u64;
        g.bench_function(format!("plain/ordinary_cold/{round}"), |b| {
            b.iter(|| {
                i += 1;
                let k = f.order[(i % N as u64) as usize] as usize;
                black_box(ok(plain, &f.presented[k], f.now))
            })
        });
        let mut i = 0u64;
        g.bench_function(format!("legacy_on/ordinary_cold/{round}"), |b| {
            b.iter(|| {
                i += 1;
                let k = f.order[(i % N as u64) as usize] as usize;
                black_box(ok(&f.legacy_on, &f.presented[k], f.now))
            })
        });
    }
    let unknown = SecretFormat::default().generate().expose().to_owned();
    let unknown_zabbix = "f".repeat(64);
    g.bench_function("plain/unknown_own_shape", |b| {
        b.iter(|| black_box(ok(plain, black_box(&unknown), f.now)))
    });
    g.bench_function("legacy_on/unknown_own_shape", |b| {
        b.iter(|| black_box(ok(&f.legacy_on, black_box(&unknown), f.now)))
    });
    g.bench_function("legacy_on/unknown_zabbix_shape", |b| {
        b.iter(|| black_box(ok(&f.legacy_on, black_box(&unknown_zabbix), f.now)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
