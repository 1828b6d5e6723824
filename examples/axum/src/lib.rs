//! An axum server that authenticates API tokens with `api-tokens-axum`: the layer, permission
//! requirements per route, and the self-service token API under `/api/tokens`.
//!
//! * `AuthLayer` reads `Authorization: Bearer …` and the client address from the connection
//!   (serve with `into_make_service_with_connect_info`, as [`serve`] does), and puts the
//!   `Grant` in each request.
//! * `require(permission!(…))` guards a route; refusals are the crate's RFC 6750 answers
//!   (401/403 with `WWW-Authenticate`, and the core's public `{"code", "message"}` body).
//! * `/api/tokens` lets a caller list, create, regenerate, enable/disable and delete its own
//!   tokens when its token holds `tokens.manage` (and everyone's with `tokens.admin`).

use std::net::SocketAddr;

use api_tokens::{Permission, Tokens, permission};
use api_tokens_axum::manage::{FromGrant, SelfService};
use api_tokens_axum::{AuthLayer, Authenticated, require};
use axum::routing::get;
use axum::{Json, Router};
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

/// The application: every route behind the token layer.
pub fn app(tokens: Tokens) -> Router {
    let tokens_api = SelfService::new(tokens.clone())
        .with_actors(FromGrant::new(TOKENS_MANAGE).with_admin_permission(TOKENS_ADMIN))
        .router();
    Router::new()
        .route("/whoami", get(whoami))
        .route("/zones", get(list_zones).route_layer(require(DNS_READ)))
        .route(
            "/kill-account",
            get(kill_account).route_layer(require(KILL_ACCT)),
        )
        .nest("/api/tokens", tokens_api)
        .layer(AuthLayer::new(tokens))
}

/// Serves `app` on `listener`, with the peer address available to the layer.
pub async fn serve(listener: tokio::net::TcpListener, tokens: Tokens) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(tokens).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
