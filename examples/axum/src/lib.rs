//! An axum server that authenticates `Authorization: Bearer` API tokens with api-tokens.
//!
//! * The middleware reads the bearer token and the client address **from the connection**
//!   (`ConnectInfo`), never from forwarding headers: behind a proxy, the host decides which
//!   header it trusts and passes that address instead.
//! * A refused request gets the public form of the denial, with the status and the
//!   `{"code", "message"}` body the crate gives it: 401 for an invalid or expired token, 403 for
//!   an address outside the token's allowlist or a missing permission.
//! * Routes require permissions from the `Grant` the middleware puts in the request.

use std::net::SocketAddr;

use api_tokens::{Denial, Grant, Permission, RequestContext, Tokens, permission};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;

/// The status and body a refused request gets: only the public form of the denial.
pub fn refusal(denial: &Denial) -> Response {
    let public = denial.public();
    let status =
        StatusCode::from_u16(public.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(json!({ "error": public }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

async fn authenticate(
    State(tokens): State<Tokens>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match tokens.authenticate(presented, &RequestContext::from_ip(peer.ip())) {
        Ok(grant) => {
            request.extensions_mut().insert(grant);
            next.run(request).await
        }
        Err(denial) => {
            eprintln!("refused {peer}: {denial}"); // the detailed reason goes to the log only
            refusal(&denial)
        }
    }
}

/// Runs `handler` when the grant holds `permission`; otherwise answers with the refusal.
fn with_permission(
    grant: &Grant,
    permission: &Permission,
    handler: impl FnOnce() -> Response,
) -> Response {
    match grant.require(permission) {
        Ok(()) => handler(),
        Err(denial) => refusal(&denial),
    }
}

/// The routes' permissions, checked at compile time: nothing is parsed per request.
const DNS_READ: Permission = permission!("dns.read");
const KILL_ACCT: Permission = permission!("kill-acct");

async fn whoami(Extension(grant): Extension<Grant>) -> Json<serde_json::Value> {
    Json(json!({
        "user": grant.owner.as_str(),
        "token": grant.token.get(),
        "permissions": grant.permissions.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    }))
}

async fn list_zones(Extension(grant): Extension<Grant>) -> Response {
    with_permission(&grant, &DNS_READ, || {
        Json(json!({ "zones": ["example.com", "example.org"] })).into_response()
    })
}

async fn kill_account(Extension(grant): Extension<Grant>) -> Response {
    with_permission(&grant, &KILL_ACCT, || {
        Json(json!({ "killed": true })).into_response()
    })
}

/// The application: every route behind the token middleware. `Tokens` is cheap to clone and
/// every clone shares one store, so it is the router's state as it is.
pub fn app(tokens: Tokens) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/zones", get(list_zones))
        .route("/kill-account", get(kill_account))
        .layer(middleware::from_fn_with_state(tokens.clone(), authenticate))
        .with_state(tokens)
}

/// Serves `app` on `listener`, with the peer address available to the middleware.
pub async fn serve(listener: tokio::net::TcpListener, tokens: Tokens) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(tokens).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
