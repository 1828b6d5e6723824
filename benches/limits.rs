//! What limits cost at authentication, each beside its same-run baseline: a token without
//! limits.
//!
//! * `unlimited`: `Tokens::authenticate_at` of one token (again and again: the hot path) in a
//!   `MemoryStore` of 10,000 tokens, no limits.
//! * `rate_limit`: the same with one rate limit counting authentications (a limit no run
//!   reaches, so every call is admitted and counted). Target ≤ 1.15× `unlimited`.
//! * `credits`: the same with a credit balance counting authentications. Target ≤ 1.15×.
//! * `spend`: `Grant::spend` of a cost on a meter with credits and a rate limit (no
//!   authentication).
//! * `throughput_*`: the calls split between 1 and 2 threads, all on the one token (for
//!   `*_limited`, one token with a rate limit and credits): time per call should halve
//!   (target ≥ 1.6× from 1 to 2 threads).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::hint::black_box;
use std::time::{Duration as StdDuration, Instant};

use api_tokens::limits::{Credits, LimitName, Limits, RateLimit};
use api_tokens::{Actor, MemoryStore, NewToken, PermissionSet, RequestContext, Tokens, UserId};
use criterion::{Criterion, criterion_group, criterion_main};
use time::{Duration, OffsetDateTime};

const N: usize = 10_000;
const BIG: u64 = 1 << 52;

struct Fixture {
    tokens: Tokens<MemoryStore>,
    unlimited: String,
    rate: String,
    credits: String,
    both: String,
    meter: String,
    now: OffsetDateTime,
}

fn fixture() -> Fixture {
    let tokens = Tokens::in_memory();
    let admin = Actor::admin(UserId::from(1));
    let now = tokens.now();
    let issue = |name: &str, limits: Option<Limits>| {
        let mut t = NewToken::new(name.parse().unwrap()).permissions(PermissionSet::all());
        if let Some(l) = limits {
            t = t.limits(l);
        }
        tokens.issue(&admin, t).unwrap().secret.expose().to_owned()
    };
    for i in 0..N {
        issue(&format!("t{i}"), None);
    }
    let name = |s: &str| LimitName::new(s).unwrap();
    let rate = || RateLimit::new(name("requests"), BIG, Duration::MINUTE).unwrap();
    let credits = || Credits::new(BIG, now).unwrap();
    let llm = name("llm");
    Fixture {
        unlimited: issue("unlimited", None),
        rate: issue("rate", Some(Limits::none().rate(rate()))),
        credits: issue("credits", Some(Limits::none().credits(credits()))),
        both: issue("both", Some(Limits::none().rate(rate()).credits(credits()))),
        meter: issue(
            "meter",
            Some(
                Limits::none()
                    .credits(credits().on_meter(llm))
                    .rate(rate().on_meter(llm)),
            ),
        ),
        tokens,
        now,
    }
}

/// Runs `iters` calls of `run` split between `threads` threads; the wall time of the whole.
fn split(iters: u64, threads: u64, run: &(dyn Fn(u64) + Sync)) -> StdDuration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for k in 0..threads {
            let share = iters / threads + u64::from(k == threads - 1) * (iters % threads);
            s.spawn(move || run(share));
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let ctx = RequestContext::unknown_address();
    let auth = |s: &str| f.tokens.authenticate_at(black_box(s), &ctx, f.now).unwrap();
    let mut g = c.benchmark_group("limits");
    for (label, secret) in [
        ("unlimited", &f.unlimited),
        ("rate_limit", &f.rate),
        ("credits", &f.credits),
    ] {
        g.bench_function(label, |b| b.iter(|| auth(secret)));
    }
    let grant = auth(&f.meter);
    g.bench_function("spend", |b| {
        b.iter(|| grant.spend_at("llm", black_box(1), f.now).unwrap())
    });
    for (label, secret) in [("unlimited", &f.unlimited), ("limited", &f.both)] {
        let run = |n: u64| {
            for _ in 0..n {
                black_box(auth(secret));
            }
        };
        for threads in [1, 2] {
            g.bench_function(format!("throughput_{label}/{threads}_threads"), |b| {
                b.iter_custom(|iters| split(iters, threads, &run))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
