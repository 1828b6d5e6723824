//! `cargo run -p api-tokens-axum-example`: serves on 127.0.0.1:3000 and prints a token to try:
//! `curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:3000/zones`, or list your tokens
//! with `curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:3000/api/tokens`.
//!
//! | variable | default | what |
//! | --- | --- | --- |
//! | `API_TOKENS_ADDR` | `127.0.0.1:3000` | where to listen (`127.0.0.1:0`: any free port) |
//! | `API_TOKENS_PG_URL` | (none: tokens in memory) | a PostgreSQL connection string: the server runs a `Replica` of it, as each process of a fleet does |
//! | `API_TOKENS_LAST_USE_FLUSH` | `10` | seconds between writes of buffered last uses (with PostgreSQL) |
//! | `RUST_LOG` | `info` | the log filter (`api_tokens=debug,info`, …) |
//!
//! `/livez`, `/readyz` and `/metrics` need no token. SIGTERM or SIGINT stops it cleanly: no
//! new connections, the requests in flight finish, then (with PostgreSQL) the buffered last
//! uses are written and the replica leaves the fleet before the process exits.

use std::time::Duration;

use api_tokens::store::postgres::PostgresStore;
use api_tokens::store::replica::{Replica, ReplicaOptions};
use api_tokens::{Actor, NewToken, StoreHealth, TokenStore, Tokens, UserId};
use api_tokens_axum_example::{init_logs, serve, shutdown_signal};
use metrics_exporter_prometheus::PrometheusBuilder;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logs();
    // The recorder first: tokens, stores and replicas resolve their counters when built.
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let addr = std::env::var("API_TOKENS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;

    let Ok(url) = std::env::var("API_TOKENS_PG_URL") else {
        let tokens = Tokens::in_memory();
        start(&listener, &tokens).await?;
        serve(listener, tokens, Some(metrics), shutdown_signal()).await?;
        tracing::info!("stopped");
        return Ok(());
    };
    let flush = std::env::var("API_TOKENS_LAST_USE_FLUSH")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_secs);
    // Connecting blocks (the store's own runtime does the I/O): off the executor.
    let tokens = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let store = PostgresStore::connect(&url)?;
        // Returns at once and loads in the background: /readyz says 503 until it is current.
        let replica = Replica::spawn(store, ReplicaOptions::default().last_use_flush(flush))?;
        Ok(Tokens::new(replica))
    })
    .await??;
    start(&listener, &tokens).await?;
    serve(listener, tokens.clone(), Some(metrics), shutdown_signal()).await?;
    // Every request has finished: write the buffered last uses and leave the fleet (writers
    // stop waiting for this replica at once), without blocking the executor.
    match tokens.store().shutdown_async().await {
        Ok(()) => tracing::info!("stopped: last uses written, left the fleet"),
        Err(e) => tracing::error!(error = %e, "stopped, but the last uses were not written"),
    }
    Ok(())
}

/// Checks the hash key and issues a demo token (management may reach the database: on the
/// blocking pool), then says where to find the server.
async fn start<S>(listener: &tokio::net::TcpListener, tokens: &Tokens<S>) -> Result<(), Error>
where
    S: TokenStore + StoreHealth + 'static,
{
    let t = tokens.clone();
    let secret = tokio::task::spawn_blocking(move || -> Result<String, Error> {
        // A wrong or missing hash key is an error here, not a lockout at the first request
        // (which would otherwise run this check, reading the store on the executor).
        t.check_hash_keys()?;
        let name = format!("demo-{}", std::process::id());
        let issued = t.issue(
            &Actor::user(UserId::new("alice")?),
            NewToken::new(name.parse()?).permissions("dns.*, tokens.manage".parse()?),
        )?;
        Ok(issued.secret.expose().to_owned())
    })
    .await??;
    println!("listening on http://{}", listener.local_addr()?);
    println!("token (dns.*, tokens.manage): {secret}");
    Ok(())
}
