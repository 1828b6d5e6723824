//! The API tokens page (Zabbix's *Users → API tokens*) served on 127.0.0.1, with three users and
//! a few tokens:
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

mod demo;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let tokens = if zabbix {
        demo::zabbix_tokens()
    } else {
        demo::tokens()
    };
    // A wrong or missing hash key is an error here, at startup, not a lockout later.
    tokens.check_hash_keys()?;
    demo::seed(&tokens)?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "The API tokens page: http://{}/ (users: {})",
        listener.local_addr()?,
        demo::USERS.join(", ")
    );
    let app = if zabbix {
        demo::app_with(tokens, api_tokens_axum::page::Preset::zabbix())
    } else {
        demo::app(tokens)
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
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
