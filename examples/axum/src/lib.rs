//! An axum server that authenticates `Authorization: Bearer` API tokens with api-tokens.
//!
//! * The middleware reads the bearer token and the client address **from the connection**
//!   (`ConnectInfo`), never from forwarding headers: behind a proxy, the host decides which
//!   header it trusts and passes that address instead.
//! * A refused request gets the public form of the denial: 401 for an invalid or expired
//!   token, 403 for an address outside the token's allowlist or a missing permission.
//! * Routes require permissions from the `Grant` the middleware puts in the request.

use std::net::SocketAddr;
use std::sync::Arc;

use api_tokens::{Denial, Grant, Permission, PublicDenial, RequestContext, Tokens};
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
    let status = match public {
        PublicDenial::InvalidToken | PublicDenial::Expired => StatusCode::UNAUTHORIZED,
        PublicDenial::AddressNotAllowed | PublicDenial::Forbidden => StatusCode::FORBIDDEN,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut response = (status, Json(json!({ "error": public.to_string() }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

async fn authenticate(
    State(tokens): State<Arc<Tokens>>,
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
    permission: &str,
    handler: impl FnOnce() -> Response,
) -> Response {
    match permission.parse::<Permission>() {
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Ok(p) => match grant.require(&p) {
            Ok(()) => handler(),
            Err(denial) => refusal(&denial),
        },
    }
}

async fn whoami(Extension(grant): Extension<Grant>) -> Json<serde_json::Value> {
    Json(json!({
        "user": grant.owner.as_str(),
        "token": grant.token.get(),
        "permissions": grant.permissions.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    }))
}

async fn list_zones(Extension(grant): Extension<Grant>) -> Response {
    with_permission(&grant, "dns.read", || {
        Json(json!({ "zones": ["example.com", "example.org"] })).into_response()
    })
}

async fn kill_account(Extension(grant): Extension<Grant>) -> Response {
    with_permission(&grant, "kill-acct", || {
        Json(json!({ "killed": true })).into_response()
    })
}

/// The application: every route behind the token middleware.
pub fn app(tokens: Arc<Tokens>) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/zones", get(list_zones))
        .route("/kill-account", get(kill_account))
        .layer(middleware::from_fn_with_state(tokens.clone(), authenticate))
        .with_state(tokens)
}

/// Serves `app` on `listener`, with the peer address available to the middleware.
pub async fn serve(listener: tokio::net::TcpListener, tokens: Arc<Tokens>) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(tokens).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
