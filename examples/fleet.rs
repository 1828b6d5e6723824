//! Three replicas over one PostgreSQL: issue on one, use everywhere, revoke on another,
//! refused everywhere, with timings.
//!
//! ```sh
//! cargo run --features postgres --example fleet -- "host=127.0.0.1 user=postgres dbname=tokens"
//! ```
//! (or set `API_TOKENS_PG_URL`). The database must exist; the store creates its tables.

use std::time::{Duration, Instant};

use api_tokens::store::postgres::PostgresStore;
use api_tokens::store::replica::{Replica, ReplicaOptions};
use api_tokens::{Actor, DenialKind, NewToken, RequestContext, Status, Tokens, UserId};

type Node = (&'static str, Tokens<Replica>);

/// Waits until `node` gives the expected answer for `secret`; returns how long it took.
fn until(node: &Node, secret: &str, want: Option<DenialKind>) -> Duration {
    let ctx = RequestContext::unknown_address();
    let start = Instant::now();
    loop {
        let got = node.1.authenticate(secret, &ctx).err().map(|d| d.kind());
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "replica {} still answers {got:?}",
            node.0
        );
        std::hint::spin_loop();
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The replicas' own logs (catch-ups, staleness, shutdown) on stderr: RUST_LOG=debug for more.
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| "info".parse().unwrap_or_default());
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    let url = match std::env::args().nth(1) {
        Some(u) => u,
        None => std::env::var("API_TOKENS_PG_URL")
            .map_err(|_| "usage: fleet \"host=… user=… dbname=…\" (or set API_TOKENS_PG_URL)")?,
    };
    let bound = Duration::from_secs(5);
    let start = |name| -> Result<Node, api_tokens::StoreError> {
        let store = PostgresStore::connect(&url)?;
        let replica = Replica::start(store, ReplicaOptions::default().staleness_bound(bound))?;
        Ok((name, Tokens::new(replica)))
    };
    let fleet = [start("A")?, start("B")?, start("C")?];
    println!("3 replicas started, staleness bound {bound:?}");
    let [a, b, c] = &fleet;
    let admin = Actor::admin(UserId::new("admin")?);
    let name = format!("deploy-{}", std::process::id());

    let t = Instant::now();
    let issued = a.1.issue(
        &admin,
        NewToken::new(name.parse()?).permissions("deploy.*".parse()?),
    )?;
    println!(
        "A: issued token {} \"{name}\" in {}",
        issued.token.id,
        ms(t.elapsed())
    );
    let secret = issued.secret.expose();
    println!(
        "A: authenticates it at once ({})",
        ms(until(a, secret, None))
    );
    for node in [b, c] {
        println!(
            "{}: authenticates it after {}",
            node.0,
            ms(until(node, secret, None))
        );
    }

    let t = Instant::now();
    b.1.set_status(&admin, [issued.token.id], Status::Disabled)?;
    println!("B: disabled it in {}", ms(t.elapsed()));
    let disabled = Some(DenialKind::Disabled);
    println!("B: refuses it at once ({})", ms(until(b, secret, disabled)));
    for node in [a, c] {
        println!(
            "{}: refuses it after {}",
            node.0,
            ms(until(node, secret, disabled))
        );
    }

    c.1.delete(&admin, [issued.token.id])?;
    for node in &fleet {
        until(node, secret, Some(DenialKind::Unknown));
    }
    println!("C: deleted it; unknown on A, B and C");
    // Each leaves the fleet: last uses written, lease released (what dropping them does too,
    // without saying whether it worked).
    for (_, node) in &fleet {
        node.store().shutdown()?;
    }
    Ok(())
}
