//! The API tokens page (Zabbix's *Users → API tokens*) served on 127.0.0.1, with three users and
//! a few tokens, and beside it the self-service JSON API (`/api/tokens`):
//!
//! ```text
//! cargo run -p api-tokens-axum --example page
//! ```
//!
//! then open <http://127.0.0.1:3000/> and sign in as `alice` (who manages everyone's tokens),
//! `bob` or `carol`. `API_TOKENS_PAGE_ADDR=127.0.0.1:8080` serves elsewhere.
//!
//! ```text
//! cargo run -p api-tokens-axum --example page -- --zabbix
//! ```
//!
//! serves the page as Zabbix's frontend has it (`Preset::zabbix()`, with `Policy::zabbix()`:
//! Zabbix's texts and columns, secrets of 64 hex digits), the same users and tokens.
//!
//! **A fleet.** With `API_TOKENS_PG_URL` (a PostgreSQL connection string) the tokens live in
//! that database and this process keeps a `Replica` of it; with `API_TOKENS_PAGE_KEY` (32 bytes
//! in hex or base64: `openssl rand -hex 32`) the page signs its sessions with that key. Start
//! as many processes as you like with the same two variables, behind any load balancer: a form
//! shown by one is posted to another. The demo's tokens are added when the database has none.
//!
//! | variable | default | what |
//! | --- | --- | --- |
//! | `API_TOKENS_PAGE_ADDR` | `127.0.0.1:3000` | where to listen (`127.0.0.1:0`: any free port) |
//! | `API_TOKENS_PG_URL` | (none: tokens in memory) | the database of a fleet |
//! | `API_TOKENS_PAGE_KEY` | (none: a random key, one process only) | the page's key, the same on every process |
//! | `RUST_LOG` | `info` | the log filter |

// `app` and `app_with` (tokens in memory) are the tests'.
#[allow(dead_code)]
mod demo;

use api_tokens::store::postgres::PostgresStore;
use api_tokens::store::replica::{Replica, ReplicaOptions};
use api_tokens::{Actor, Query, TokenStore, Tokens, UserId};
use api_tokens_axum::page::{PageKey, Preset};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Logs on stderr (refusals, sign-ins, token changes), filtered by RUST_LOG (default info).
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
    let addr = std::env::var("API_TOKENS_PAGE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let zabbix = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--zabbix") => true,
        Some(other) => {
            return Err(format!("unknown argument {other:?} (the one there is: --zabbix)").into());
        }
    };
    let preset = if zabbix {
        Preset::zabbix()
    } else {
        Preset::standard()
    };
    // The same key on every process of a fleet; without one, a random key (one process).
    let key = match std::env::var_os("API_TOKENS_PAGE_KEY") {
        Some(_) => PageKey::from_env("API_TOKENS_PAGE_KEY")?,
        None => PageKey::random(),
    };
    tracing::info!(key = %key.id(), "the page signs with this key (its id, not the key)");
    let listener = tokio::net::TcpListener::bind(&addr).await?;

    let Ok(url) = std::env::var("API_TOKENS_PG_URL") else {
        let tokens = if zabbix {
            demo::zabbix_tokens()
        } else {
            demo::tokens()
        };
        ready(&tokens).await?;
        say_where(&listener)?;
        serve(listener, demo::app_with_key(tokens, preset, key)).await?;
        return Ok(());
    };
    // Connecting and loading block (the store's own runtime does the I/O): off the executor.
    let policy = if zabbix {
        api_tokens::Policy::zabbix()
    } else {
        demo::policy()
    };
    let tokens = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let store = PostgresStore::connect(&url)?;
        let replica = Replica::start(store, ReplicaOptions::default())?;
        Ok(Tokens::new(replica).with_policy(policy))
    })
    .await??;
    ready(&tokens).await?;
    say_where(&listener)?;
    serve(listener, demo::app_with_key(tokens.clone(), preset, key)).await?;
    // Every request has finished: write the buffered last uses and leave the fleet.
    match tokens.store().shutdown_async().await {
        Ok(()) => tracing::info!("stopped: last uses written, left the fleet"),
        Err(e) => tracing::error!(error = %e, "stopped, but the last uses were not written"),
    }
    Ok(())
}

/// Checks the hash key (a wrong or missing one is an error here, at startup, not a lockout
/// later) and adds the demo's tokens when there are none (on the blocking pool: the store may
/// reach a database).
async fn ready<S: TokenStore + 'static>(tokens: &Tokens<S>) -> Result<(), Error> {
    let tokens = tokens.clone();
    tokio::task::spawn_blocking(move || -> Result<(), Error> {
        tokens.check_hash_keys()?;
        let admin = Actor::admin(UserId::new("alice")?);
        if tokens.count(&admin, &Query::new())? == 0 {
            demo::seed(&tokens)?;
        }
        Ok(())
    })
    .await?
}

fn say_where(listener: &tokio::net::TcpListener) -> std::io::Result<()> {
    println!(
        "The API tokens page: http://{}/ (users: {})",
        listener.local_addr()?,
        demo::USERS.join(", ")
    );
    Ok(())
}

/// Serves `app` with the peer address (the layer's client address) until SIGTERM or SIGINT.
async fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
}

/// SIGTERM (what orchestrators send) or SIGINT (Ctrl-C): stop taking connections, let the
/// requests in flight finish.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
