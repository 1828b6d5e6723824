//! An axum server that authenticates API tokens with `api-tokens-axum`, ready to run behind an
//! orchestrator: the layer, permission requirements per route, the self-service token API
//! under `/api/tokens`, health probes, Prometheus metrics, logs filtered by `RUST_LOG`, and a
//! clean shutdown on SIGTERM or SIGINT.
//!
//! * `AuthLayer` reads `Authorization: Bearer …` and the client address from the connection
//!   (serve with `into_make_service_with_connect_info`, as [`serve`] does), and puts the
//!   `Grant` in each request.
//! * `require(permission!(…))` guards a route; refusals are the crate's RFC 6750 answers
//!   (401/403 with `WWW-Authenticate`, and the core's public `{"code", "message"}` body), and
//!   one log line each (`token refused: …` with the code, token and client address).
//! * `/api/tokens` lets a caller list, create, regenerate, enable/disable and delete its own
//!   tokens when its token holds `tokens.manage` (and everyone's with `tokens.admin`).
//! * `/livez` and `/readyz` (no token): the orchestrator's probes; ready while the store can
//!   authenticate (a replica: while its copy is current).
//! * `/metrics` (no token): the `api_tokens_*` metrics in Prometheus' text format. In
//!   production, serve it on an address only the scraper reaches.

use std::future::Future;
use std::net::SocketAddr;

use api_tokens::{Permission, StoreHealth, TokenStore, Tokens, permission};
use api_tokens_axum::health::Probes;
use api_tokens_axum::manage::{FromGrant, SelfService};
use api_tokens_axum::{AuthLayer, Authenticated, require};
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};

/// The routes' permissions, checked at compile time: nothing is parsed per request.
const DNS_READ: Permission = permission!("dns.read");
const KILL_ACCT: Permission = permission!("kill-acct");
const TOKENS_MANAGE: Permission = permission!("tokens.manage");
const TOKENS_ADMIN: Permission = permission!("tokens.admin");

async fn whoami(Authenticated(grant): Authenticated) -> Json<Value> {
    Json(json!({
        "user": grant.owner.as_str(),
        "token": grant.token.get(),
        "permissions": grant.permissions.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    }))
}

async fn list_zones() -> Json<Value> {
    Json(json!({ "zones": ["example.com", "example.org"] }))
}

async fn kill_account() -> Json<Value> {
    Json(json!({ "killed": true }))
}

/// The application: the API behind the token layer, and beside it (without a token) the
/// probes and, when given, the Prometheus page.
pub fn app<S>(tokens: Tokens<S>, metrics: Option<PrometheusHandle>) -> Router
where
    S: TokenStore + StoreHealth + 'static,
{
    let tokens_api = SelfService::new(tokens.clone())
        .with_actors(FromGrant::new(TOKENS_MANAGE).with_admin_permission(TOKENS_ADMIN))
        .router();
    let api = Router::new()
        .route("/whoami", get(whoami))
        .route("/zones", get(list_zones).route_layer(require(DNS_READ)))
        .route(
            "/kill-account",
            get(kill_account).route_layer(require(KILL_ACCT)),
        )
        .nest("/api/tokens", tokens_api)
        .layer(AuthLayer::new(tokens.clone()));
    let mut operations = Probes::new().with_tokens("tokens", &tokens).router();
    if let Some(handle) = metrics {
        operations = operations.route(
            "/metrics",
            get(move || {
                let page = handle.render();
                async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4")], page) }
            }),
        );
    }
    api.merge(operations)
}

/// Serves `app` on `listener`, with the peer address available to the layer, until
/// `shutdown` completes; then stops taking connections and lets the requests in flight finish.
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    tokens: Tokens<S>,
    metrics: Option<PrometheusHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: TokenStore + StoreHealth + 'static,
{
    axum::serve(
        listener,
        app(tokens, metrics).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Completes on SIGTERM (what Kubernetes, systemd and Docker send to stop a process) or
/// SIGINT (Ctrl-C), whichever comes first.
///
/// # Panics
/// If the signal handlers cannot be installed (outside a tokio runtime with signals enabled).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!("{name}: no new connections; finishing the requests in flight");
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): `RUST_LOG=api_tokens=debug,info`.
pub fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log collector reads plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
