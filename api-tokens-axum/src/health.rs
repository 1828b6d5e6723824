//! Liveness and readiness probes for orchestrators (Kubernetes, Nomad, a load balancer's
//! health check): [`Probes`].
//!
//! * `GET /livez`: 200 `{"status":"alive"}` while the process answers. A replica that cannot
//!   reach its database is *not* dead (restarting it would not help, and would reload every
//!   token): that is readiness.
//! * `GET /readyz`: 200 `{"status":"ready", "checks": {…}}` when every check passes, else 503
//!   `{"status":"not_ready", "checks": {…}}`. The `Tokens` check passes when its store is
//!   ready ([`StoreHealth`]): a `MemoryStore`, `SqliteStore` or bare `PostgresStore` once
//!   built, a `Replica` only while its copy is current (it refuses every token otherwise), and
//!   says the replica's state, lag and lease. A host adds its own checks with
//!   [`Probes::with_check`].
//!
//! Both answer `Cache-Control: no-store` and never need credentials: merge the probes beside
//! the router the [`AuthLayer`](crate::AuthLayer) guards, not under it.
//!
//! ```
//! use api_tokens::Tokens;
//! use api_tokens_axum::{AuthLayer, health::Probes};
//! use axum::{Router, routing::get};
//!
//! let tokens = Tokens::in_memory(); // or Tokens::new(replica)
//! let probes = Probes::new().with_tokens("tokens", &tokens).with_check("queue", || async {
//!     Ok(()) // or Err("queue unreachable".to_owned())
//! });
//! let api = Router::new()
//!     .route("/zones", get(|| async { "zones" }))
//!     .layer(AuthLayer::new(tokens));
//! let app: Router = api.merge(probes.router()); // /livez and /readyz, without a token
//! ```
//!
//! A readiness body for a replica:
//!
//! ```json
//! {"status":"ready","checks":{"tokens":{"ready":true,"state":"current","holds_lease":true,
//!  "clock":812,"behind":0,"unconfirmed_ms":143,"staleness_bound_ms":5000,
//!  "last_confirmed":1767258000}}}
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use api_tokens::{Health, StoreHealth, TokenStore, Tokens};
use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

type Verdict = Pin<Box<dyn Future<Output = (bool, Value)> + Send>>;

/// One named check: a function that starts it.
#[derive(Clone)]
struct Check {
    name: String,
    run: Arc<dyn Fn() -> Verdict + Send + Sync>,
}

/// The liveness and readiness probes (see the [module docs](self)): cheap to clone, every clone
/// runs the same checks.
#[derive(Clone, Default)]
pub struct Probes {
    checks: Arc<Vec<Check>>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes")
            .field(
                "checks",
                &self.checks.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Probes {
    /// Probes with no check yet: always ready.
    pub fn new() -> Self {
        Self::default()
    }

    fn with(mut self, name: String, run: Arc<dyn Fn() -> Verdict + Send + Sync>) -> Self {
        Arc::make_mut(&mut self.checks).push(Check { name, run });
        self
    }

    /// Adds a check named `name` that passes while `tokens`' store is ready
    /// ([`Tokens::health`]). Its entry in the body says the replica's state, lag and lease.
    #[must_use]
    pub fn with_tokens<S>(self, name: impl Into<String>, tokens: &Tokens<S>) -> Self
    where
        S: TokenStore + StoreHealth + 'static,
    {
        let tokens = tokens.clone();
        self.with(
            name.into(),
            Arc::new(move || {
                let health = tokens.health();
                Box::pin(std::future::ready((health.ready, health_body(&health))))
            }),
        )
    }

    /// Adds a check of the host's own: `check` is called on every readiness probe and
    /// passes with `Ok(())`; `Err(reason)` makes the probe answer 503 with the reason in the
    /// check's entry (never put a secret in it). Keep it quick: orchestrators time probes out
    /// (a second, by default in Kubernetes).
    #[must_use]
    pub fn with_check<F, Fut>(self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.with(
            name.into(),
            Arc::new(move || {
                let fut = check();
                Box::pin(async move {
                    match fut.await {
                        Ok(()) => (true, json!({ "ready": true })),
                        Err(reason) => (false, json!({ "ready": false, "reason": reason })),
                    }
                })
            }),
        )
    }

    /// The liveness answer: 200 `{"status":"alive"}`.
    pub fn liveness(&self) -> Response {
        answer(StatusCode::OK, &json!({ "status": "alive" }))
    }

    /// The readiness answer: every check run (one after another, in the order added); 200
    /// when all pass, else 503; the body names each check's verdict.
    pub async fn readiness(&self) -> Response {
        let mut all = true;
        let mut checks = Map::new();
        for c in self.checks.iter() {
            let (ready, body) = (c.run)().await;
            all &= ready;
            checks.insert(c.name.clone(), body);
        }
        let (status, word) = if all {
            (StatusCode::OK, "ready")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
        };
        answer(status, &json!({ "status": word, "checks": checks }))
    }

    /// A router with `GET /livez` and `GET /readyz`, to merge into the host's (beside the
    /// authenticated routes, not under their `AuthLayer`). Hosts that want other paths route
    /// to [`Probes::liveness`] and [`Probes::readiness`] themselves.
    pub fn router<St: Clone + Send + Sync + 'static>(self) -> Router<St> {
        let live = self.clone();
        Router::new()
            .route("/livez", get(move || std::future::ready(live.liveness())))
            .route(
                "/readyz",
                get(move || {
                    let probes = self.clone();
                    async move { probes.readiness().await }
                }),
            )
    }
}

fn answer(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A store's health as a check's entry.
fn health_body(health: &Health) -> Value {
    let mut body = json!({ "ready": health.ready });
    if let (Some(r), Some(map)) = (&health.replica, body.as_object_mut()) {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        map.insert("state".into(), r.state.as_str().into());
        map.insert("holds_lease".into(), r.holds_lease.into());
        map.insert("clock".into(), r.clock.into());
        map.insert("behind".into(), r.behind().into());
        map.insert("unconfirmed_ms".into(), r.unconfirmed_for.map(ms).into());
        map.insert("staleness_bound_ms".into(), ms(r.staleness_bound).into());
        map.insert(
            "last_confirmed".into(),
            r.last_confirmed.map(|t| t.unix_timestamp()).into(),
        );
    }
    body
}
