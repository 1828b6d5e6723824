//! The demo host of the page example (and of the browser tests): three users, a sign-in that is
//! only a cookie naming one of them, a few tokens (some of them used), and the page nested at
//! `/tokens`, in the page's default preset or in Zabbix's.
//!
//! The sign-in is a stand-in for the host's own login: anyone can be anyone here.

use api_tokens::time::Duration;
use api_tokens::{
    Actor, MemoryStore, NewToken, Policy, RequestContext, SecretFormat, Status, Tokens, UserId,
};
use api_tokens_axum::Refusal;
use api_tokens_axum::manage::actor_from_fn;
use api_tokens_axum::page::{Preset, TokensPage};
use axum::Router;
use axum::extract::Path;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The users: `alice` manages everyone's tokens (Zabbix's Super admin), `bob` and `carol`
/// their own.
pub const USERS: [&str; 3] = ["alice", "bob", "carol"];
const DEMO_COOKIE: &str = "demo_user";

/// Zabbix's rules (tokens act with all of their user's rights; a past expiry is accepted, so
/// the list can show an expired token), with this library's default secret format (a `tok_`
/// prefix for secret scanners and a checksum).
pub fn tokens() -> Tokens<MemoryStore> {
    let mut policy = Policy::zabbix();
    policy.secret_format = SecretFormat::default();
    Tokens::in_memory().with_policy(policy)
}

/// Zabbix's rules as they are, its secrets too: 64 hex digits (for [`Preset::zabbix`]).
pub fn zabbix_tokens() -> Tokens<MemoryStore> {
    Tokens::in_memory().with_policy(Policy::zabbix())
}

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|_| UserId::from(0))
}

/// A few tokens: enabled and disabled, never expiring, expiring soon and expired; four of them
/// used (a few minutes, hours and days ago), so that "Last accessed at" has an order.
///
/// # Errors
/// As [`Tokens::issue`].
pub fn seed(tokens: &Tokens<MemoryStore>) -> Result<(), api_tokens::Error> {
    let alice = Actor::admin(user("alice"));
    let now = tokens.now();
    // Name, user, description, expires in, status, used … ago.
    let items = [
        (
            "grafana",
            "bob",
            "Dashboards read the metrics API.",
            Some(Duration::days(90)),
            Status::Enabled,
            Some(Duration::hours(2)),
        ),
        (
            "deploy",
            "bob",
            "CI deploys to production.",
            Some(Duration::days(3)),
            Status::Enabled,
            Some(Duration::minutes(5)),
        ),
        (
            "backup 2025",
            "carol",
            "Nightly backups (replaced).",
            Some(Duration::days(-20)),
            Status::Enabled,
            Some(Duration::days(30)),
        ),
        (
            "monitoring",
            "alice",
            "",
            None,
            Status::Enabled,
            Some(Duration::days(3)),
        ),
        (
            "old laptop",
            "carol",
            "Lost laptop.",
            None,
            Status::Disabled,
            None,
        ),
        (
            "reports",
            "carol",
            "Monthly reports.",
            Some(Duration::days(40)),
            Status::Enabled,
            None,
        ),
    ];
    for (name, owner, description, expires_in, status, used_ago) in items {
        let mut new = NewToken::new(name.parse()?)
            .owner(user(owner))
            .description(description)
            .status(status);
        if let Some(d) = expires_in {
            new = new.expires_at(now + d);
        }
        let issued = tokens.issue(&alice, new)?;
        if let Some(ago) = used_ago {
            // A use recorded as it happened then: the token authenticated at that instant.
            let _ = tokens.authenticate_at(
                issued.secret.expose(),
                &RequestContext::unknown_address(),
                now - ago,
            );
        }
        // The secrets of the demo's tokens are never shown: dropped (and wiped) here.
        drop(issued);
    }
    Ok(())
}

fn signed_in(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == DEMO_COOKIE)
        .and_then(|(_, value)| USERS.into_iter().find(|u| *u == value))
}

async fn home() -> Response {
    let links: String = USERS
        .iter()
        .map(|u| format!("<li><a href=\"/login/{u}\">Sign in as {u}</a></li>"))
        .collect();
    (
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>api-tokens demo</title></head>\
             <body><h1>api-tokens: the API tokens page</h1><p>alice manages everyone's tokens; bob and carol their own.</p>\
             <ul>{links}</ul></body></html>"
        ),
    )
        .into_response()
}

async fn login(Path(name): Path<String>) -> Response {
    match USERS.into_iter().find(|u| *u == name) {
        Some(u) => (
            StatusCode::SEE_OTHER,
            [
                (
                    SET_COOKIE,
                    format!("{DEMO_COOKIE}={u}; Path=/; HttpOnly; SameSite=Lax"),
                ),
                (LOCATION, "/tokens".to_owned()),
            ],
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The demo's app: `/` (sign in), `/login/{user}`, and the page at `/tokens`.
pub fn app(tokens: Tokens<MemoryStore>) -> Router {
    app_with(tokens, Preset::standard())
}

/// The demo's app with the page in `preset`.
pub fn app_with(tokens: Tokens<MemoryStore>, preset: Preset) -> Router {
    let page = TokensPage::new(tokens)
        .with_preset(preset)
        .with_users(USERS.map(user))
        .with_actors(actor_from_fn(|parts| {
            let name = signed_in(&parts.headers).ok_or(Refusal::no_credentials())?;
            let id = user(name);
            Ok(if name == "alice" {
                Actor::admin(id)
            } else {
                Actor::user(id)
            })
        }));
    Router::new()
        .route("/", get(home))
        .route("/login/{user}", get(login))
        .nest("/tokens", page.router())
}
