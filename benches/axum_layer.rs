//! What `api-tokens-axum`'s layer costs on top of a bare handler, beside what the
//! authentication inside it costs, in one run (the target: the layer adds no more than the
//! `authenticate` call itself plus 10%).
//!
//! * `authenticate`: `Tokens::authenticate` of one token (a `MemoryStore` of 10,000 tokens,
//!   8-entry allowlists, last-use tracking on) from an allowed address; the grant dropped.
//! * `bare_handler`: a request (`Authorization: Bearer`, `ConnectInfo`) built and sent through
//!   an axum `Router` whose handler answers a static body; the response dropped.
//! * `bare_then_authenticate`: `bare_handler`, then `authenticate` beside it: the sum a layer
//!   cannot beat, with `authenticate` paying the cache misses it pays among request handling.
//! * `identity_layer`: the bare router under `Router::layer(tower_layer::Identity)`, a layer
//!   that does nothing: what axum itself charges for any layer added with `Router::layer`
//!   (the route's service cloned and its future boxed per request).
//! * `from_fn`: a hand-written `axum::middleware::from_fn` doing the layer's work in the
//!   plainest way (`Bearer` prefix, peer address, `authenticate`, grant into the extensions);
//!   the handler takes `Authenticated`. The floor for an axum middleware.
//! * `layered_handler`: the bare router under `AuthLayer` (`Router::layer`), the handler
//!   taking `Authenticated`.
//! * `layered_router`: `AuthLayer` wrapped around the whole `Router` as a tower service
//!   (`Layer::layer(&auth, router)`), which skips axum's per-route boxing.
//! * `layered_require`: `layered_handler` plus `require(permission!("dns.edit"))` on the route.
//! * `blocking_in_place`: `layered_handler` with `AuthLayer::blocking`, polled outside a tokio
//!   runtime, where its `Blocking` call runs in place: what the blocking mode's own machinery
//!   costs (the ready service swapped for a clone, the request moved through the check and
//!   back, one more state of the response future), without the blocking pool's hop, which
//!   needs a runtime and is measured apart.
//!
//! The layer's overhead is `layered_handler - bare_handler`; the ratio that matters is that
//! overhead over `authenticate`. Futures are polled in place (no runtime): the handlers never
//! wait, so each completes in one poll.
//!
//! Criterion measures one variant after the other, so on a shared machine a change of load
//! between them moves a difference of two variants more than the layer does. After the
//! criterion groups the bench therefore runs every variant interleaved: 201 rounds, each timing
//! 2,000 calls of every variant in a rotating order. It prints the median ns per call of each
//! variant, and the medians over rounds of `(X - bare_handler) / authenticate` for each layered
//! variant X: those ratios are the ones quoted in BENCHMARKS.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::future::Future;
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use api_tokens::{
    Actor, Grant, HashKey, IpAllowlist, MemoryStore, NewToken, PermissionSet, RequestContext,
    TokenName, Tokens, UserId, permission,
};
use api_tokens_axum::{AuthLayer, Authenticated, require};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request as AxumRequest};
use axum::http::{Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use tower_layer::Layer;
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

/// The plainest hand-written middleware doing the layer's work.
async fn handwritten(tokens: Tokens<MemoryStore>, mut req: AxumRequest, next: Next) -> Response {
    let secret = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ctx = ip.map_or_else(RequestContext::unknown_address, RequestContext::from_ip);
    let grant: Option<Grant> = secret.and_then(|s| tokens.authenticate(s, &ctx).ok());
    match grant {
        Some(grant) => {
            req.extensions_mut().insert(grant);
            next.run(req).await
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Every variant, as a service taking the bench's request (see the module docs).
struct Variants {
    bare: Router,
    identity: Router,
    from_fn: Router,
    layered: Router,
    layered_router: api_tokens_axum::AuthService<Router>,
    required: Router,
    blocking: Router,
}

impl Variants {
    fn new(tokens: &Tokens<MemoryStore>) -> Self {
        let guarded = || Router::new().route("/zones", get(|_: Authenticated| async { "zones" }));
        let mw = tokens.clone();
        Self {
            bare: Router::new().route("/zones", get(|| async { "zones" })),
            identity: Router::new()
                .route("/zones", get(|| async { "zones" }))
                .layer(tower_layer::Identity::new()),
            from_fn: guarded().layer(middleware::from_fn(move |req, next| {
                handwritten(mw.clone(), req, next)
            })),
            layered: guarded().layer(AuthLayer::new(tokens.clone())),
            layered_router: AuthLayer::new(tokens.clone()).layer(guarded()),
            required: Router::new()
                .route(
                    "/zones",
                    get(|_: Authenticated| async { "zones" })
                        .route_layer(require(permission!("dns.edit"))),
                )
                .layer(AuthLayer::new(tokens.clone())),
            blocking: guarded().layer(AuthLayer::blocking(tokens.clone())),
        }
    }

    /// One request through variant `name`; the response's status.
    fn call(&mut self, name: &str, req: Request<Body>) -> StatusCode {
        let response = match name {
            "bare_handler" => block_on(self.bare.call(req)),
            "identity_layer" => block_on(self.identity.call(req)),
            "from_fn" => block_on(self.from_fn.call(req)),
            "layered_handler" => block_on(self.layered.call(req)),
            "layered_router" => block_on(self.layered_router.call(req)),
            "layered_require" => block_on(self.required.call(req)),
            "blocking_in_place" => block_on(self.blocking.call(req)),
            other => panic!("no variant {other}"),
        };
        black_box(response.unwrap()).status()
    }
}

const LAYERED: [&str; 7] = [
    "bare_handler",
    "identity_layer",
    "from_fn",
    "layered_handler",
    "layered_router",
    "layered_require",
    "blocking_in_place",
];

fn bench(c: &mut Criterion) {
    let (tokens, secret) = fixture();
    let peer: SocketAddr = "10.3.2.1:50000".parse().unwrap();
    let ip: IpAddr = peer.ip();
    let authorization = format!("Bearer {secret}");
    let ctx = RequestContext::from_ip(ip);
    let mut variants = Variants::new(&tokens);
    for name in LAYERED {
        assert_eq!(
            variants.call(name, request(&authorization, peer)),
            200,
            "{name}"
        );
    }

    let mut g = c.benchmark_group("axum_layer");
    g.bench_function("authenticate", |b| {
        b.iter(|| black_box(tokens.authenticate(black_box(&secret), &ctx).unwrap()))
    });
    for name in LAYERED {
        g.bench_function(name, |b| {
            b.iter(|| variants.call(name, request(black_box(&authorization), peer)))
        });
    }
    g.finish();

    interleaved(&tokens, &secret, &ctx, &authorization, peer, &mut variants);
}

/// Every variant timed in alternation (see the module docs); prints medians and ratios.
fn interleaved(
    tokens: &Tokens<MemoryStore>,
    secret: &str,
    ctx: &RequestContext,
    authorization: &str,
    peer: SocketAddr,
    variants: &mut Variants,
) {
    const ROUNDS: usize = 201;
    const CALLS: u32 = 2_000;
    let names: Vec<&str> = ["authenticate", "bare_then_authenticate"]
        .into_iter()
        .chain(LAYERED)
        .collect();
    let mut time = |name: &str| {
        let start = Instant::now();
        for _ in 0..CALLS {
            match name {
                "authenticate" => drop(black_box(tokens.authenticate(black_box(secret), ctx))),
                "bare_then_authenticate" => {
                    variants.call("bare_handler", request(black_box(authorization), peer));
                    drop(black_box(tokens.authenticate(black_box(secret), ctx)));
                }
                layered => drop(variants.call(layered, request(black_box(authorization), peer))),
            }
        }
        start.elapsed().as_nanos() as f64 / f64::from(CALLS)
    };
    let mut per: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); names.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); names.len()];
    for round in 0..ROUNDS {
        let mut t = vec![0.0; names.len()];
        for k in 0..names.len() {
            let i = (round + k) % names.len();
            t[i] = time(names[i]);
        }
        for (i, x) in t.iter().enumerate() {
            per[i].push(*x);
            ratios[i].push((x - t[2]) / t[0]);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("interleaved ({ROUNDS} rounds of {CALLS} calls each; medians):");
    println!(
        "  {:<24} {:>8}  {:>26}",
        "variant", "ns/call", "(variant - bare) / auth"
    );
    for (i, name) in names.iter().enumerate() {
        let ns = median(&mut per[i]);
        if i == 0 || i == 2 {
            println!("  {name:<24} {ns:>8.0}");
        } else {
            println!("  {name:<24} {ns:>8.0}  {:>26.2}", median(&mut ratios[i]));
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
