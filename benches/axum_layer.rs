//! What `api-tokens-axum`'s layer costs on top of a bare handler, beside what the
//! authentication inside it costs, in one run (issue 11's target: the layer adds no more than
//! the `authenticate` call itself plus 10%).
//!
//! * `authenticate`: `Tokens::authenticate` of one token (a `MemoryStore` of 10,000 tokens,
//!   8-entry allowlists, last-use tracking on) from an allowed address; the grant dropped.
//! * `bare_handler`: a request (`Authorization: Bearer`, `ConnectInfo`) built and sent through
//!   an axum `Router` whose handler answers a static body; the response dropped.
//! * `layered_handler`: the same router under `AuthLayer` (the handler takes `Authenticated`).
//! * `layered_require`: the same plus `require(permission!("dns.edit"))` on the route.
//!
//! The layer's overhead is `layered_handler - bare_handler`; the ratio that matters is that
//! overhead over `authenticate`. Futures are polled in place (no runtime): the handlers never
//! wait, so each completes in one poll.
use std::future::Future;
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use api_tokens::{
    Actor, HashKey, IpAllowlist, MemoryStore, NewToken, PermissionSet, RequestContext, TokenName,
    Tokens, UserId, permission,
};
use api_tokens_axum::{AuthLayer, Authenticated, require};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use tower_service::Service;

const N: usize = 10_000;

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn fixture() -> (Tokens<MemoryStore>, String) {
    let tokens = Tokens::new(MemoryStore::new()).with_hash_key(HashKey::new([42; 32]));
    let admin = Actor::admin(UserId::from(0));
    let entries: Vec<String> = (0..8).map(|i| format!("10.{i}.0.0/16")).collect();
    let allowlist = IpAllowlist::parse(&entries).unwrap();
    let permissions: PermissionSet = "create-acct, dns.*, kill-acct".parse().unwrap();
    let mut hot = String::new();
    for i in 0..N {
        let issued = tokens
            .issue(
                &admin,
                NewToken::new(TokenName::new(&format!("token-{i}")).unwrap())
                    .owner(UserId::from((i / 10) as u64))
                    .permissions(permissions.clone())
                    .allowlist(allowlist.clone()),
            )
            .unwrap();
        if i == N / 2 {
            hot = issued.secret.expose().to_owned();
        }
    }
    (tokens, hot)
}

fn request(authorization: &str, peer: SocketAddr) -> Request<Body> {
    let mut req = Request::builder()
        .uri("/zones")
        .header("authorization", authorization)
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

fn bench(c: &mut Criterion) {
    let (tokens, secret) = fixture();
    let peer: SocketAddr = "10.3.2.1:50000".parse().unwrap();
    let ip: IpAddr = peer.ip();
    let authorization = format!("Bearer {secret}");
    let ctx = RequestContext::from_ip(ip);

    let bare: Router = Router::new().route("/zones", get(|| async { "zones" }));
    let layered: Router = Router::new()
        .route("/zones", get(|_: Authenticated| async { "zones" }))
        .layer(AuthLayer::new(tokens.clone()));
    let required: Router = Router::new()
        .route(
            "/zones",
            get(|_: Authenticated| async { "zones" }).route_layer(require(permission!("dns.edit"))),
        )
        .layer(AuthLayer::new(tokens.clone()));
    for router in [&bare, &layered, &required] {
        let response = block_on(router.clone().call(request(&authorization, peer))).unwrap();
        assert_eq!(response.status(), 200);
    }

    let mut g = c.benchmark_group("axum_layer");
    g.bench_function("authenticate", |b| {
        b.iter(|| black_box(tokens.authenticate(black_box(&secret), &ctx).unwrap()))
    });
    for (name, router) in [
        ("bare_handler", bare),
        ("layered_handler", layered),
        ("layered_require", required),
    ] {
        let mut router = router;
        g.bench_function(name, |b| {
            b.iter(|| {
                let response = block_on(router.call(request(black_box(&authorization), peer)));
                black_box(response.unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
