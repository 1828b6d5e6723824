//! Authentication against a million tokens, beside the bare sequence it cannot beat.
//!
//! * `baseline_*`: keyed BLAKE3 of the presented string, one `HashMap` lookup of the 32-byte hash
//!   among 1,000,000 entries, an expiry compare, an 8-entry `ipnet` scan and a permission lookup.
//! * `authenticate_*`: `Tokens::authenticate_at` on a `MemoryStore` of 1,000,000 tokens (8-entry
//!   allowlists, last-use tracking on) and `Grant::require`.
//! * `*_hot` repeats one token; `*_cold` walks a random permutation of all of them.
//! * `peer/prefixed_api_key_check`: that crate's own check of one key (parse + SHA-256 compare).
//! * `throughput_*`: the same calls from 1 and from 2 threads; time per call should halve.
//! * `steps/*`: the hot call step by step, each beside its bare counterpart, so a regression
//!   shows where it lands: `parse` (format and checksum), `hash` (keyed BLAKE3), `probe` (the
//!   store's lookup by hash, no decision; bare: the `HashMap` lookup), `probe_decide` (lookup and
//!   the pure decision with `Grant::require`; bare: lookup and the three checks) and `full`
//!   (everything, from the presented string). `decide` alone is `probe_decide - probe`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::collections::HashMap;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use api_tokens::store::TokenStore;
use api_tokens::{
    Actor, HashKey, IpAllowlist, MemoryStore, NewToken, Permission, PermissionSet, RequestContext,
    SecretFormat, TokenName, Tokens, UserId, UserState, secret::SecretHash,
};
use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::IpNet;
use prefixed_api_key::{PrefixedApiKey, PrefixedApiKeyController};
use time::OffsetDateTime;

const N: usize = 1_000_000;
const KEY: [u8; 32] = [42; 32];

struct BaseRecord {
    expires_at: i64,
    allowlist: Vec<IpNet>,
    permissions: Vec<String>,
}

struct Fixture {
    tokens: Tokens<MemoryStore>,
    baseline: HashMap<[u8; 32], BaseRecord>,
    presented: Vec<String>,
    order: Vec<u32>,
    client: IpAddr,
    now: OffsetDateTime,
    permission: Permission,
    format: SecretFormat,
}

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn fixture() -> Fixture {
    let tokens = Tokens::new(MemoryStore::new()).with_hash_key(HashKey::new(KEY));
    let admin = Actor::admin(UserId::from(0));
    let entries: Vec<String> = (0..8).map(|i| format!("10.{i}.0.0/16")).collect();
    let allowlist = IpAllowlist::parse(&entries).unwrap();
    let permissions: PermissionSet = "create-acct, dns.*, kill-acct".parse().unwrap();
    let expires = OffsetDateTime::from_unix_timestamp(4_000_000_000).unwrap();
    let mut presented = Vec::with_capacity(N);
    let mut baseline = HashMap::with_capacity(N);
    for i in 0..N {
        let issued = tokens
            .issue(
                &admin,
                NewToken::new(TokenName::new(&format!("token-{i}")).unwrap())
                    .owner(UserId::from((i / 10) as u64))
                    .expires_at(expires)
                    .permissions(permissions.clone())
                    .allowlist(allowlist.clone()),
            )
            .unwrap();
        let s = issued.secret.expose().to_owned();
        let hash = *blake3::keyed_hash(&KEY, s.as_bytes()).as_bytes();
        baseline.insert(
            hash,
            BaseRecord {
                expires_at: expires.unix_timestamp(),
                allowlist: entries.iter().map(|e| e.parse().unwrap()).collect(),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
            },
        );
        presented.push(s);
    }
    let mut order: Vec<u32> = (0..N as u32).collect();
    let mut rng = xorshift(0x1234_5678_9abc_def1);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng() % (i as u64 + 1)) as usize);
    }
    Fixture {
        tokens,
        baseline,
        presented,
        order,
        // In the 6th of 8 ranges: a realistic, not best-case, position for the scans.
        client: "10.5.1.2".parse().unwrap(),
        now: OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap(),
        permission: "kill-acct".parse().unwrap(),
        format: SecretFormat::default(),
    }
}

impl Fixture {
    fn baseline(&self, s: &str) -> bool {
        let hash = blake3::keyed_hash(&KEY, s.as_bytes());
        let Some(r) = self.baseline.get(hash.as_bytes()) else {
            return false;
        };
        self.bare_checks(r)
    }

    /// The baseline plus our format and checksum check: DESIGN.md's "bare sequence".
    fn baseline_with_format(&self, s: &str) -> bool {
        self.format.parse(s).is_ok() && self.baseline(s)
    }

    /// The bare checks on a record found by hash.
    fn bare_checks(&self, r: &BaseRecord) -> bool {
        r.expires_at > self.now.unix_timestamp()
            && r.allowlist.iter().any(|n| n.contains(&self.client))
            && r.permissions
                .binary_search_by(|p| p.as_str().cmp(self.permission.as_str()))
                .is_ok()
    }

    /// The store's lookup, then the pure decision and `require`, as the facade makes them.
    fn probe_decide(&self, hash: &SecretHash) -> bool {
        let mut ok = false;
        let found = self.tokens.store().authenticate(hash, &mut |c| {
            let grant =
                api_tokens::decide(&c, self.now, Some(self.client), |_| UserState::Unrestricted);
            ok = grant.is_ok_and(|g| g.require(&self.permission).is_ok());
            None
        });
        found.is_ok_and(|f| f) && ok
    }

    fn authenticate(&self, s: &str) -> bool {
        let ctx = RequestContext::from_ip(self.client);
        match self.tokens.authenticate_at(s, &ctx, self.now) {
            Ok(g) => g.require(&self.permission).is_ok(),
            Err(_) => false,
        }
    }

    fn cold(&self, i: u64) -> &str {
        let k = self.order[(i % N as u64) as usize] as usize;
        &self.presented[k]
    }

    /// Runs `iters` cold authentications starting at `offset`, on this thread.
    fn run_cold(&self, offset: u64, iters: u64) {
        for i in 0..iters {
            assert!(self.authenticate(self.cold(offset + i)));
        }
    }

    /// Runs `iters` cold baseline checks starting at `offset`, on this thread.
    fn run_baseline_cold(&self, offset: u64, iters: u64) {
        for i in 0..iters {
            assert!(self.baseline(self.cold(offset + i)));
        }
    }
}

/// `run(offset, n)`: `n` calls, the cold ones starting at `offset` in the permutation.
type Run<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Runs `iters` calls of `run` shared between `threads` threads (each given its share and a
/// starting offset spread over the million tokens; one thread is this one) and returns the
/// wall time of the whole.
fn split_across_threads(iters: u64, threads: u64, run: Run<'_>) -> Duration {
    let start = Instant::now();
    if threads == 1 {
        run(0, iters);
        return start.elapsed();
    }
    std::thread::scope(|s| {
        for k in 0..threads {
            let share = iters / threads + u64::from(k == threads - 1) * (iters % threads);
            s.spawn(move || run(k * (N as u64 / threads), share));
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let started = Instant::now();
    let f = fixture();
    eprintln!("fixture of {N} tokens built in {:?}", started.elapsed());
    let hot = f.presented[N / 2].clone();
    assert!(f.baseline(&hot) && f.authenticate(&hot));

    let mut g = c.benchmark_group("authenticate");
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("baseline_hot", |b| {
        b.iter(|| black_box(f.baseline(black_box(&hot))))
    });
    g.bench_function("baseline_hot_with_format", |b| {
        b.iter(|| black_box(f.baseline_with_format(black_box(&hot))))
    });
    g.bench_function("authenticate_hot", |b| {
        b.iter(|| black_box(f.authenticate(black_box(&hot))))
    });
    let mut i = 0u64;
    g.bench_function("baseline_cold", |b| {
        b.iter(|| {
            i += 1;
            black_box(f.baseline(f.cold(i)))
        })
    });
    let mut i = 0u64;
    g.bench_function("authenticate_cold", |b| {
        b.iter(|| {
            i += 1;
            black_box(f.authenticate(f.cold(i)))
        })
    });

    let controller = PrefixedApiKeyController::configure()
        .prefix("mycompany".to_owned())
        .seam_defaults()
        .finalize()
        .unwrap();
    let (key, hash) = controller.generate_key_and_hash();
    let key = key.to_string();
    g.bench_function("peer/prefixed_api_key_check", |b| {
        b.iter(|| {
            let pak = PrefixedApiKey::from_string(black_box(&key)).unwrap();
            black_box(controller.check_hash(&pak, &hash))
        })
    });

    // What this machine allows: the bare sequence from 1 and from 2 threads, beside ours. Each
    // thread runs its share of the calls; cold ones start at its own offset in the permutation.
    let hot_baseline = |_: u64, n: u64| (0..n).for_each(|_| assert!(f.baseline(&hot)));
    let hot_authenticate = |_: u64, n: u64| (0..n).for_each(|_| assert!(f.authenticate(&hot)));
    let runs: [(&str, Run<'_>); 4] = [
        ("throughput_baseline_cold", &|at, n| {
            f.run_baseline_cold(at, n)
        }),
        ("throughput_cold", &|at, n| f.run_cold(at, n)),
        ("throughput_baseline_hot", &hot_baseline),
        ("throughput_hot", &hot_authenticate),
    ];
    for (name, run) in runs {
        for (threads, label) in [(1, "1_thread"), (2, "2_threads")] {
            g.bench_function(format!("{name}/{label}"), |b| {
                b.iter_custom(|iters| split_across_threads(iters, threads, run))
            });
        }
    }
    g.finish();

    // The hot call step by step, each beside the bare sequence's step, in one run.
    let mut g = c.benchmark_group("steps");
    g.measurement_time(Duration::from_secs(3));
    let key = HashKey::new(KEY);
    let parsed = f.format.parse(&hot).unwrap();
    let hash = SecretHash::of(&key, &parsed);
    let bare_hash = *blake3::keyed_hash(&KEY, hot.as_bytes()).as_bytes();
    let record = &f.baseline[&bare_hash];
    assert!(f.probe_decide(&hash) && f.bare_checks(record));
    g.bench_function("parse", |b| {
        b.iter(|| black_box(f.format.parse(black_box(&hot)).is_ok()))
    });
    g.bench_function("hash", |b| {
        b.iter(|| {
            let p = f.format.parse(black_box(&hot)).unwrap();
            black_box(SecretHash::of(&key, &p))
        })
    });
    g.bench_function("bare/hash", |b| {
        b.iter(|| black_box(blake3::keyed_hash(&KEY, black_box(&hot).as_bytes())))
    });
    g.bench_function("probe", |b| {
        b.iter(|| {
            let found = f
                .tokens
                .store()
                .authenticate(black_box(&hash), &mut |_| None);
            black_box(found.is_ok_and(|x| x))
        })
    });
    g.bench_function("bare/probe", |b| {
        b.iter(|| black_box(f.baseline.contains_key(black_box(&bare_hash))))
    });
    g.bench_function("probe_decide", |b| {
        b.iter(|| black_box(f.probe_decide(black_box(&hash))))
    });
    g.bench_function("bare/probe_checks", |b| {
        b.iter(|| {
            let r = f.baseline.get(black_box(&bare_hash));
            black_box(r.is_some_and(|r| f.bare_checks(r)))
        })
    });
    g.bench_function("full", |b| {
        b.iter(|| black_box(f.authenticate(black_box(&hot))))
    });
    g.bench_function("bare/full", |b| {
        b.iter(|| black_box(f.baseline(black_box(&hot))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
