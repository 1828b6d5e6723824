//! The hot path with and without a metrics recorder, in one run (not criterion: every
//! variant is timed interleaved, so the machine's load moves all of them alike).
//!
//! Two `Tokens` sharing one `MemoryStore` of 100,000 tokens (8-entry allowlists, last-use
//! tracking on; the same memory, so only the counting differs), authenticating with
//! `authenticate_at` and `Grant::require`:
//!
//! * `plain`: built with no recorder installed: its counters are the facade's no-ops (what a
//!   host without an exporter runs; one predictable branch over a build without the feature);
//! * `prometheus`: built after `metrics-exporter-prometheus`' recorder was installed, the way
//!   a host does it: each authentication adds one to a counter it resolved once;
//! * `by_name`: `plain` plus what resolving the counter by name on every call would cost
//!   (`counter!(name, "outcome" => …)` against the same recorder): why the crate does not.
//!
//! `hot` repeats one token; `cold` walks a random permutation of all of them. 201 rounds of
//! 20,000 calls, the order of the variants rotating each round; the table gives each
//! variant's median time per call and its median ratio to `plain` over the rounds.
//!
//! `cargo bench -p api-tokens-benches --bench metrics`
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tokens::{
    Actor, HashKey, IpAllowlist, MemoryStore, NewToken, Permission, PermissionSet, RequestContext,
    TokenName, Tokens, UserId,
};
use metrics_exporter_prometheus::PrometheusBuilder;
use time::OffsetDateTime;

const N: usize = 100_000;
const KEY: [u8; 32] = [42; 32];
const ROUNDS: usize = 201;
const CALLS: u64 = 20_000;

struct Fixture {
    plain: Tokens<Arc<MemoryStore>>,
    counted: Tokens<Arc<MemoryStore>>,
    presented: Vec<String>,
    order: Vec<u32>,
    client: IpAddr,
    now: OffsetDateTime,
    permission: Permission,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let plain = Tokens::new(store.clone()).with_hash_key(HashKey::new(KEY));
    let admin = Actor::admin(UserId::from(0));
    let entries: Vec<String> = (0..8).map(|i| format!("10.{i}.0.0/16")).collect();
    let allowlist = IpAllowlist::parse(&entries).unwrap();
    let permissions: PermissionSet = "create-acct, dns.*, kill-acct".parse().unwrap();
    let expires = OffsetDateTime::from_unix_timestamp(4_000_000_000).unwrap();
    let presented: Vec<String> = (0..N)
        .map(|i| {
            let issued = plain
                .issue(
                    &admin,
                    NewToken::new(TokenName::new(&format!("token-{i}")).unwrap())
                        .owner(UserId::from((i / 10) as u64))
                        .expires_at(expires)
                        .permissions(permissions.clone())
                        .allowlist(allowlist.clone()),
                )
                .unwrap();
            issued.secret.expose().to_owned()
        })
        .collect();
    // The host's order: the recorder first, then the `Tokens` it counts.
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    let counted = Tokens::new(store).with_hash_key(HashKey::new(KEY));
    let mut order: Vec<u32> = (0..N as u32).collect();
    let mut x = 0x1234_5678_9abc_def1_u64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let f = Fixture {
        plain,
        counted,
        presented,
        order,
        client: "10.5.1.2".parse().unwrap(),
        now: OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap(),
        permission: "kill-acct".parse().unwrap(),
    };
    // The recorder really counts the `prometheus` variant, and only it.
    assert!(f.run(Variant::Prometheus, Some(0), 1) && f.run(Variant::Plain, Some(0), 1));
    let page = handle.render();
    assert!(
        page.contains("api_tokens_authentications_total{outcome=\"granted\"} 1"),
        "{page}"
    );
    f
}

#[derive(Clone, Copy, Debug)]
enum Variant {
    Plain,
    Prometheus,
    ByName,
}

impl Fixture {
    fn secret(&self, i: u64, cold: bool) -> &str {
        let k = if cold {
            self.order[(i % N as u64) as usize] as usize
        } else {
            N / 2
        };
        &self.presented[k]
    }

    /// `calls` authentications (`Some(offset)`: cold, from `offset` in the permutation);
    /// whether every one was granted.
    fn run(&self, v: Variant, cold: Option<u64>, calls: u64) -> bool {
        let ctx = RequestContext::from_ip(self.client);
        let tokens = match v {
            Variant::Prometheus => &self.counted,
            Variant::Plain | Variant::ByName => &self.plain,
        };
        let mut all = true;
        for i in 0..calls {
            let s = self.secret(cold.unwrap_or(0) + i, cold.is_some());
            let ok = match tokens.authenticate_at(black_box(s), &ctx, self.now) {
                Ok(g) => g.require(&self.permission).is_ok(),
                Err(_) => false,
            };
            if let Variant::ByName = v {
                let outcome = if ok { "granted" } else { "denied" };
                metrics::counter!("api_tokens_authentications_total", "outcome" => outcome)
                    .increment(1);
            }
            all &= black_box(ok);
        }
        all
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--list` asks for nothing to run here.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let started = Instant::now();
    let f = fixture();
    eprintln!("fixture of {N} tokens built in {:?}", started.elapsed());
    let variants = [Variant::Plain, Variant::Prometheus, Variant::ByName];
    for cold in [false, true] {
        let mut ns: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut offset = 0;
        for round in 0..ROUNDS {
            let mut took = [Duration::ZERO; 3];
            for k in 0..variants.len() {
                let i = (round + k) % variants.len();
                let start = Instant::now();
                assert!(f.run(variants[i], cold.then_some(offset), CALLS));
                took[i] = start.elapsed();
            }
            offset += CALLS;
            for i in 0..variants.len() {
                ns[i].push(took[i].as_nanos() as f64 / CALLS as f64);
                ratios[i].push(took[i].as_secs_f64() / took[0].as_secs_f64());
            }
        }
        let which = if cold { "cold" } else { "hot" };
        println!("{which} ({ROUNDS} rounds of {CALLS} calls, interleaved; medians):");
        for (i, v) in variants.iter().enumerate() {
            println!(
                "  {:<11} {:>7.1} ns/call  {:.3}x plain",
                format!("{v:?}").to_lowercase(),
                median(&mut ns[i]),
                median(&mut ratios[i])
            );
        }
    }
}
