//! The liveness and readiness probes over a real connection: 200 or 503 with a small JSON
//! body, no token needed, the store's health and the host's own checks.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use api_tokens::store::{Candidate, Change};
use api_tokens::time::OffsetDateTime;
use api_tokens::{
    Health, LastUse, MemoryStore, Query, SecretHash, StoreError, StoreHealth, Token, TokenId,
    TokenName, TokenStore, Tokens, UserId,
};
use api_tokens_axum::AuthLayer;
use api_tokens_axum::health::Probes;
use axum::Router;
use axum::routing::get;
use support::{get as http_get, serve};

/// A `MemoryStore` whose health a test switches: a host's own store with a `StoreHealth`.
#[derive(Default)]
struct Switchable {
    inner: MemoryStore,
    down: AtomicBool,
}

impl StoreHealth for Switchable {
    fn health(&self) -> Health {
        if self.down.load(Ordering::SeqCst) {
            Health::not_ready()
        } else {
            Health::ready()
        }
    }
}

impl TokenStore for Switchable {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        self.inner.reserve_ids(n)
    }
    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        self.inner.apply(changes)
    }
    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.inner.get(id)
    }
    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError> {
        self.inner.find_name(owner, name)
    }
    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        self.inner.query(query, now)
    }
    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.inner.count(query, now)
    }
    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError> {
        self.inner.authenticate(hash, check)
    }
}

#[tokio::test]
async fn probes_answer_200_or_503_with_each_checks_verdict_and_need_no_token() {
    let tokens = Tokens::new(Switchable::default());
    let queue_up = Arc::new(AtomicBool::new(true));
    let up = queue_up.clone();
    let probes = Probes::new()
        .with_tokens("tokens", &tokens)
        .with_check("queue", move || {
            let up = up.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(())
                } else {
                    Err("queue unreachable".to_owned())
                }
            }
        });
    let api = Router::new()
        .route("/zones", get(|| async { "zones" }))
        .layer(AuthLayer::new(tokens.clone()));
    let server = serve(api.merge(probes.router())).await;

    assert_eq!(http_get(server.addr, "/zones", None).await.status, 401);
    let r = http_get(server.addr, "/livez", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"status": "alive"}));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = http_get(server.addr, "/readyz", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"status": "ready", "checks": {
            "tokens": {"ready": true}, "queue": {"ready": true}}})
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));

    tokens.store().down.store(true, Ordering::SeqCst);
    let r = http_get(server.addr, "/readyz", None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "not_ready");
    assert_eq!(
        r.json()["checks"]["tokens"],
        serde_json::json!({"ready": false})
    );
    assert_eq!(
        http_get(server.addr, "/livez", None).await.status,
        200,
        "not ready is not dead"
    );

    tokens.store().down.store(false, Ordering::SeqCst);
    queue_up.store(false, Ordering::SeqCst);
    let r = http_get(server.addr, "/readyz", None).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["checks"]["queue"],
        serde_json::json!({"ready": false, "reason": "queue unreachable"})
    );
    assert_eq!(r.json()["checks"]["tokens"]["ready"], true);
}

#[tokio::test]
async fn a_memory_store_is_ready_once_built_and_no_check_means_ready() {
    let tokens = Tokens::in_memory();
    let server = serve(Probes::new().with_tokens("tokens", &tokens).router()).await;
    let r = http_get(server.addr, "/readyz", None).await;
    assert_eq!(
        (r.status, r.json()["checks"]["tokens"]["ready"].clone()),
        (200, true.into())
    );
    let server = serve(Probes::new().router()).await;
    let r = http_get(server.addr, "/readyz", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"status": "ready", "checks": {}})
    );
}
