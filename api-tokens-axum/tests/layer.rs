//! Items 1, 2 and 4 over real HTTP on 127.0.0.1: the layer and the extractor, permissions per
//! route and per router, public routes, where the secret comes from, malformed credentials (no
//! store lookup), and every refusal's status, header and body.

use std::sync::Arc;

use crate::support::{CountingStore, Logs, call, get as http_get, raw, send, serve};
use api_tokens::time::Duration;
use api_tokens::time::OffsetDateTime;
use api_tokens::{
    Actor, Grant, NewToken, Permission, Status, StoreError, Tokens, UserId, clock::ManualClock,
    permission,
};
use api_tokens_axum::{AuthLayer, Authenticated, SecretSources, require};
use axum::http::HeaderName;
use axum::routing::{get, post};
use axum::{Extension, Router};

const DNS_READ: Permission = permission!("dns.read");
const DNS_EDIT: Permission = permission!("dns.edit");

type T = Tokens<CountingStore>;

struct Fixture {
    tokens: T,
    clock: Arc<ManualClock>,
    alice: Actor,
}

impl Fixture {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(
            OffsetDateTime::from_unix_timestamp(1_767_258_000).unwrap(),
        ));
        Self {
            tokens: Tokens::new(CountingStore::new()).with_clock(clock.clone()),
            clock,
            alice: Actor::user(UserId::new("alice").unwrap()),
        }
    }

    fn issue(&self, name: &str, permissions: &str) -> String {
        self.issue_with(
            NewToken::new(name.parse().unwrap()).permissions(permissions.parse().unwrap()),
        )
    }

    fn issue_with(&self, new: NewToken) -> String {
        self.tokens
            .issue(&self.alice, new)
            .unwrap()
            .secret
            .expose()
            .to_owned()
    }
}

async fn whoami(Authenticated(grant): Authenticated) -> String {
    format!("{} via token {}", grant.owner, grant.token)
}

async fn by_extension(Extension(grant): Extension<Grant>) -> String {
    grant.owner.to_string()
}

async fn maybe(grant: Option<Authenticated>) -> String {
    grant.map_or_else(|| "anonymous".to_owned(), |g| g.owner.to_string())
}

/// The application under test: per-route and per-router requirements, a public route.
fn app(layer: AuthLayer<CountingStore>) -> Router {
    let dns = Router::new()
        .route("/dns/zones", get(|| async { "zones" }))
        .route(
            "/dns/zones/edit",
            post(|| async { "edited" }).route_layer(layer.require(DNS_EDIT)),
        )
        .route_layer(layer.require(DNS_READ));
    Router::new()
        .route("/whoami", get(whoami))
        .route("/extension", get(by_extension))
        .route("/maybe", get(maybe))
        .route(
            "/admin",
            get(|| async { "admin" }).route_layer(require(permission!("admin"))),
        )
        .merge(dns)
        .layer(layer)
        .route("/health", get(|| async { "ok" }))
}

#[tokio::test]
async fn the_grant_reaches_handlers_and_requirements_apply_per_route_and_router() {
    let f = Fixture::new();
    let reader = f.issue("reader", "dns.read");
    let editor = f.issue("editor", "dns.*");
    let server = serve(app(AuthLayer::new(f.tokens.clone()))).await;

    let r = http_get(server.addr, "/whoami", Some(&reader)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice via token 1"));
    let r = http_get(server.addr, "/extension", Some(&editor)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice"));

    // The router's requirement (dns.read) and the route's own (dns.edit).
    assert_eq!(
        http_get(server.addr, "/dns/zones", Some(&reader))
            .await
            .status,
        200
    );
    assert_eq!(
        call(server.addr, "POST", "/dns/zones/edit", &editor, None)
            .await
            .status,
        200
    );
    let r = call(server.addr, "POST", "/dns/zones/edit", &reader, None).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer error="insufficient_scope", error_description="No permissions for this operation.""#
        )
    );
    assert_eq!(
        r.json(),
        serde_json::json!({"code": "missing_permission", "message": "No permissions for this operation."}),
        "the missing permission is not named unless the host opts in"
    );
    assert_eq!(
        http_get(server.addr, "/admin", Some(&editor)).await.status,
        403
    );

    // A public route needs nothing; a protected one without credentials is a 401 without an
    // error code (RFC 6750 §3.1).
    let r = http_get(server.addr, "/health", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = http_get(server.addr, "/dns/zones", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(r.json()["code"], "invalid_token");
}

#[tokio::test]
async fn the_missing_permission_is_named_only_when_the_host_opts_in() {
    let f = Fixture::new();
    let reader = f.issue("reader", "dns.read");
    let server = serve(app(
        AuthLayer::new(f.tokens.clone()).with_reveal_missing_permission(true)
    ))
    .await;
    let r = call(server.addr, "POST", "/dns/zones/edit", &reader, None).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer error="insufficient_scope", error_description="No permissions for this operation.", scope="dns.edit""#
        )
    );
    assert_eq!(r.json()["permission"], "dns.edit");
}

#[tokio::test]
async fn an_optional_layer_lets_anonymous_requests_through_but_not_bad_tokens() {
    let f = Fixture::new();
    let reader = f.issue("reader", "dns.read");
    let server = serve(app(AuthLayer::new(f.tokens.clone()).with_optional(true))).await;
    let r = http_get(server.addr, "/maybe", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "anonymous"));
    let r = http_get(server.addr, "/maybe", Some(&reader)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice"));
    assert_eq!(
        http_get(server.addr, "/maybe", Some("tok_guess"))
            .await
            .status,
        401
    );
    // Requirements and the plain extractor still refuse the anonymous.
    assert_eq!(http_get(server.addr, "/dns/zones", None).await.status, 401);
    assert_eq!(http_get(server.addr, "/whoami", None).await.status, 401);

    // A switch given `false` is off: the anonymous are refused again.
    let layer = AuthLayer::new(f.tokens.clone())
        .with_optional(true)
        .with_optional(false);
    let server = serve(app(layer)).await;
    assert_eq!(http_get(server.addr, "/maybe", None).await.status, 401);
}

#[tokio::test]
async fn a_handler_without_the_layer_is_refused_not_let_through() {
    let (logs, _guard) = Logs::capture();
    let app = Router::new().route("/whoami", get(whoami)).route(
        "/zones",
        get(|| async { "zones" }).route_layer(require(DNS_READ)),
    );
    let server = serve(app).await;
    assert_eq!(http_get(server.addr, "/whoami", None).await.status, 401);
    assert_eq!(http_get(server.addr, "/zones", None).await.status, 401);
    assert!(
        logs.all().contains("no AuthLayer ran before it"),
        "{}",
        logs.all()
    );
}

#[tokio::test]
async fn the_scheme_is_matched_in_any_case() {
    let f = Fixture::new();
    let secret = f.issue("reader", "dns.read");
    let server = serve(app(AuthLayer::new(f.tokens.clone()))).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let value = format!("{scheme}  {secret}");
        let r = send(
            server.addr,
            &raw(
                "GET",
                "/whoami",
                &[("Authorization", value.as_bytes())],
                None,
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{scheme}");
    }
    // Another scheme is no credentials at all.
    let value = format!("Basic {secret}");
    let r = send(
        server.addr,
        &raw(
            "GET",
            "/whoami",
            &[("Authorization", value.as_bytes())],
            None,
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some("Bearer"))
    );
}

#[tokio::test]
async fn the_hosts_header_and_the_query_string_only_when_configured() {
    let f = Fixture::new();
    let secret = f.issue("reader", "dns.read");
    let plain = serve(app(AuthLayer::new(f.tokens.clone()))).await;
    let header = [("X-API-Key", secret.as_bytes())];
    assert_eq!(
        send(plain.addr, &raw("GET", "/whoami", &header, None))
            .await
            .status,
        401
    );
    let query = format!("/whoami?api_key={secret}");
    assert_eq!(http_get(plain.addr, &query, None).await.status, 401);

    let sources = SecretSources::default()
        .with_header(HeaderName::from_static("x-api-key"))
        .with_query_parameter_leak_risk("api_key");
    let both = serve(app(
        AuthLayer::new(f.tokens.clone()).with_secret_sources(sources)
    ))
    .await;
    assert_eq!(
        send(both.addr, &raw("GET", "/whoami", &header, None))
            .await
            .status,
        200
    );
    assert_eq!(http_get(both.addr, &query, None).await.status, 200);
    // The same secret twice is fine; two different ones are refused.
    assert_eq!(http_get(both.addr, &query, Some(&secret)).await.status, 200);
    let other = f.issue("other", "dns.read");
    let r = http_get(both.addr, &query, Some(&other)).await;
    assert_eq!(r.status, 401);
}

/// Item 2's malformed inputs: each a clean 401, none reaching the store.
#[tokio::test]
async fn malformed_credentials_get_a_clean_401_and_never_a_store_lookup() {
    let (logs, _guard) = Logs::capture();
    let f = Fixture::new();
    let secret = f.issue("reader", "dns.read");
    let sources = SecretSources::default().with_header(HeaderName::from_static("x-api-key"));
    let server = serve(app(
        AuthLayer::new(f.tokens.clone()).with_secret_sources(sources)
    ))
    .await;
    let lookups = f.tokens.store().lookups();

    let junk = vec![b'x'; 16 * 1024];
    let bearer_junk = [&b"Bearer "[..], &junk].concat();
    let long = format!("Bearer tok_{}", "a".repeat(200));
    let bearer = format!("Bearer {secret}");
    let other = f.issue("other", "dns.read");
    // A secret with its last character changed: the right shape, a wrong checksum.
    let mut typo = secret.clone();
    let last = if typo.pop() == Some('A') { 'B' } else { 'A' };
    typo.push(last);
    let typo = format!("Bearer {typo}");
    type Headers<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(&str, Headers)> = vec![
        (
            "non-UTF-8",
            vec![("Authorization", b"Bearer tok_\xff\xfe\xfd")],
        ),
        (
            "Latin-1 in the header",
            vec![("Authorization", "Bearer tok_café".as_bytes())],
        ),
        (
            "two Authorization headers",
            vec![
                ("Authorization", bearer.as_bytes()),
                ("Authorization", bearer.as_bytes()),
            ],
        ),
        ("the scheme alone", vec![("Authorization", b"Bearer")]),
        (
            "the scheme and spaces",
            vec![("Authorization", b"Bearer    ")],
        ),
        ("an empty API key header", vec![("X-API-Key", b"")]),
        ("16 KiB of junk", vec![("Authorization", &junk)]),
        (
            "16 KiB of junk after the scheme",
            vec![("Authorization", &bearer_junk)],
        ),
        (
            "longer than any secret",
            vec![("Authorization", long.as_bytes())],
        ),
        ("not a token68", vec![("Authorization", b"Bearer tok_a b")]),
        (
            "a quoted string",
            vec![("Authorization", b"Bearer \"tok_a\"")],
        ),
        (
            "different secrets in two places",
            vec![
                ("Authorization", bearer.as_bytes()),
                ("X-API-Key", other.as_bytes()),
            ],
        ),
        (
            "a malformed secret",
            vec![("Authorization", b"Bearer tok_not-a-real-token")],
        ),
        ("a wrong checksum", vec![("Authorization", typo.as_bytes())]),
    ];
    for (what, headers) in &cases {
        let r = send(server.addr, &raw("GET", "/whoami", headers, None)).await;
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert_eq!(r.json()["code"], "invalid_token", "{what}");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
    }
    assert_eq!(
        f.tokens.store().lookups(),
        lookups,
        "no malformed request reached the store"
    );

    // The counter counts: a well-formed unknown secret is looked up once.
    let unknown = api_tokens::SecretFormat::default().generate();
    let r = http_get(server.addr, "/whoami", Some(unknown.expose())).await;
    assert_eq!(r.status, 401);
    assert_eq!(f.tokens.store().lookups(), lookups + 1);

    // The log says why; never the secret.
    let all = logs.all();
    for code in [
        "credentials_not_ascii",
        "credentials_repeated",
        "credentials_empty",
        "credentials_too_long",
        "credentials_syntax",
        "credentials_conflicting",
        "code=malformed",
        "checksum",
    ] {
        assert!(all.contains(code), "{code} not logged:\n{all}");
    }
    assert!(!all.contains(&secret), "a secret was logged");
}

#[tokio::test]
async fn refusals_have_the_rfc_6750_status_header_and_the_public_body() {
    let (logs, _guard) = Logs::capture();
    let f = Fixture::new();
    let unknown = api_tokens::SecretFormat::default().generate();
    let disabled = f.issue_with(
        NewToken::new("off".parse().unwrap())
            .permissions("dns.*".parse().unwrap())
            .status(Status::Disabled),
    );
    let expiring = f.issue_with(
        NewToken::new("short".parse().unwrap())
            .permissions("dns.*".parse().unwrap())
            .expires_at(f.tokens.now() + Duration::hours(1)),
    );
    let elsewhere = f.issue_with(
        NewToken::new("office".parse().unwrap())
            .permissions("dns.*".parse().unwrap())
            .allowlist("10.0.0.0/8".parse().unwrap()),
    );
    let good = f.issue("good", "dns.*");
    let server = serve(app(AuthLayer::new(f.tokens.clone()))).await;
    let invalid = r#"Bearer error="invalid_token", error_description="Not authorized.""#;

    let r = http_get(server.addr, "/whoami", Some(unknown.expose())).await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some(invalid))
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let unknown_body = r.body.clone();
    assert_eq!(
        unknown_body,
        r#"{"code":"invalid_token","message":"Not authorized."}"#
    );

    let r = http_get(server.addr, "/whoami", Some(&disabled)).await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some(invalid))
    );
    assert_eq!(
        r.body, unknown_body,
        "a disabled token reads like an unknown one"
    );

    assert_eq!(
        http_get(server.addr, "/whoami", Some(&expiring))
            .await
            .status,
        200
    );
    f.clock.advance(Duration::hours(1));
    let r = http_get(server.addr, "/whoami", Some(&expiring)).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token", error_description="API token expired.""#)
    );
    assert_eq!(r.json()["code"], "token_expired");

    let r = http_get(server.addr, "/whoami", Some(&elsewhere)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("www-authenticate"), None);
    assert_eq!(
        r.json(),
        serde_json::json!({"code": "address_not_allowed", "message": "Not allowed from this address."})
    );

    // The store fails; then a replica is stale: 503, "unavailable", nothing more.
    f.tokens.store().fail_with(Some(|| {
        StoreError::backend(std::io::Error::other("disk on fire"))
    }));
    let r = http_get(server.addr, "/whoami", Some(&good)).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        serde_json::json!({"code": "unavailable", "message": "Service unavailable."})
    );
    f.tokens.store().fail_with(Some(|| StoreError::Stale {
        unconfirmed_for: std::time::Duration::from_secs(9),
    }));
    let r = http_get(server.addr, "/whoami", Some(&good)).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (503, Some("unavailable"))
    );
    f.tokens.store().fail_with(None);
    assert_eq!(
        http_get(server.addr, "/whoami", Some(&good)).await.status,
        200
    );

    // The detailed reasons went to the log, with the token and the client address.
    let all = logs.all();
    for detail in [
        "code=unknown",
        "token refused: token 1 is disabled",
        "code=expired",
        "token refused: token 3: client address 127.0.0.1 not allowed",
        "code=store_unavailable",
        "disk on fire",
        "code=replica_stale",
    ] {
        assert!(all.contains(detail), "{detail} not logged:\n{all}");
    }
    assert!(
        !all.contains(&good) && !all.contains(&disabled),
        "a secret was logged"
    );
}

/// The layer wrapped around a whole `Router` as a tower service (the cheaper form the README
/// names: no per-route boxing), served with `ConnectInfo`: the same grant, the same refusals.
#[tokio::test]
async fn the_layer_wrapped_around_the_whole_router_serves_the_same() {
    use axum::ServiceExt;
    use tower_layer::Layer;

    let f = Fixture::new();
    let reader = f.issue("reader", "dns.read");
    let router = Router::new().route("/whoami", get(whoami)).route(
        "/dns/zones/edit",
        post(|| async { "edited" }).route_layer(require(DNS_EDIT)),
    );
    let app = AuthLayer::new(f.tokens.clone()).layer(router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                std::net::SocketAddr,
            >(app),
        )
        .await
        .unwrap();
    });
    let r = http_get(addr, "/whoami", Some(&reader)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice via token 1"));
    let r = http_get(addr, "/whoami", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = call(addr, "POST", "/dns/zones/edit", &reader, None).await;
    assert_eq!(r.status, 403);
    task.abort();
}

/// Review 3, #4: a store whose lookup waits (a database) must not hold the executor. With
/// `blocking()` the lookup waits on the blocking pool, so on this single-threaded runtime a
/// public route is answered while one authentication waits in the store. (In place, without
/// `blocking()`, the one runtime thread is the one waiting, and `/ping` is not answered until
/// the gate's timeout.)
#[tokio::test]
async fn a_blocking_layer_keeps_the_executor_free_while_a_lookup_waits() {
    let f = Fixture::new();
    f.tokens.check_hash_keys().unwrap();
    let secret = f.issue("t", "*");
    let app = Router::new()
        .route("/zones", get(whoami))
        .layer(AuthLayer::blocking(f.tokens.clone()))
        .merge(Router::new().route("/ping", get(|| async { "pong" })));
    let server = serve(app).await;
    let a = server.addr;

    // The blocking layer answers as the layer does.
    assert_eq!(
        call(a, "GET", "/zones", &secret, None).await.body,
        "alice via token 1"
    );
    assert_eq!(http_get(a, "/zones", None).await.status, 401);
    assert_eq!(call(a, "GET", "/zones", "tok_nope", None).await.status, 401);

    let gate = || f.tokens.store().auth_gate();
    gate().close();
    let held = tokio::spawn({
        let secret = secret.clone();
        async move { call(a, "GET", "/zones", &secret, None).await }
    });
    let deadline = std::time::Instant::now() + crate::support::TIMEOUT;
    while gate().waiting() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(gate().waiting(), 1, "the authentication reached the store");
    let r = http_get(a, "/ping", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "pong"));
    assert_eq!(
        gate().waiting(),
        1,
        "answered while the lookup still waited"
    );
    gate().open();
    let r = held.await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "alice via token 1"));
}

/// A lookup that panics on the blocking pool (a bug in a host's store) answers 503 as a store
/// failure, is logged, and leaves the server serving: the next request is authenticated.
#[tokio::test]
async fn a_blocking_layer_answers_a_panicking_lookup_with_503_and_keeps_serving() {
    let (logs, _guard) = Logs::capture();
    let f = Fixture::new();
    f.tokens.check_hash_keys().unwrap();
    let secret = f.issue("t", "*");
    let app = Router::new()
        .route("/zones", get(whoami))
        .layer(AuthLayer::blocking(f.tokens.clone()));
    let server = serve(app).await;
    f.tokens.store().panic_on_lookups(true);
    let r = call(server.addr, "GET", "/zones", &secret, None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            503,
            serde_json::json!({"code": "unavailable", "message": "Service unavailable."})
        )
    );
    assert!(
        logs.all()
            .contains("authentication did not complete on the blocking pool"),
        "{}",
        logs.all()
    );
    f.tokens.store().panic_on_lookups(false);
    let r = call(server.addr, "GET", "/zones", &secret, None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice via token 1"));
}

/// A rate limit applied at authentication: admitted requests carry the IETF `RateLimit`
/// fields, the first one over the limit is answered 429 with `Retry-After` and the limit's
/// fields, and a token without limits gets none of them.
#[tokio::test]
async fn a_rate_limited_token_gets_429_with_retry_after_and_ratelimit_fields() {
    use api_tokens::limits::{LimitName, Limits, RateLimit};
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_767_258_000).unwrap(),
    ));
    let tokens = Tokens::in_memory().with_clock(clock.clone());
    let alice = Actor::user(UserId::new("alice").unwrap());
    let per_minute =
        RateLimit::new(LimitName::new("requests").unwrap(), 2, Duration::MINUTE).unwrap();
    let limited = tokens
        .issue(
            &alice,
            NewToken::new("limited".parse().unwrap())
                .permissions("dns.read".parse().unwrap())
                .limits(Limits::none().rate(per_minute)),
        )
        .unwrap();
    let plain = tokens
        .issue(
            &alice,
            NewToken::new("plain".parse().unwrap()).permissions("dns.read".parse().unwrap()),
        )
        .unwrap();
    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(AuthLayer::new(tokens));
    let server = serve(app).await;
    let secret = limited.secret.expose();

    let r = http_get(server.addr, "/whoami", Some(secret)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit-policy"), Some(r#""requests";q=2;w=60"#));
    // `t`: until everything the window counts has left it, a window and at most a slot
    // (1.875 s) from the first request.
    let t = |r: &crate::support::Reply, left: u64| -> u64 {
        let v = r.header("ratelimit").unwrap();
        let prefix = format!(r#""requests";r={left};t="#);
        v.strip_prefix(prefix.as_str())
            .unwrap_or_else(|| panic!("{v}"))
            .parse()
            .unwrap()
    };
    assert!((60..=62).contains(&t(&r, 1)));
    clock.advance(Duration::seconds(10));
    let r = http_get(server.addr, "/whoami", Some(secret)).await;
    assert_eq!(r.status, 200);
    assert!((50..=62).contains(&t(&r, 0)));

    let r = http_get(server.addr, "/whoami", Some(secret)).await;
    assert_eq!(r.status, 429);
    // The first request's slot (1.875 s) leaves the window 50-52 s from now.
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((50..=52).contains(&retry), "{retry}");
    assert_eq!(t(&r, 0), retry);
    assert_eq!(r.header("ratelimit-policy"), Some(r#""requests";q=2;w=60"#));
    assert_eq!(r.header("www-authenticate"), None);
    assert_eq!(
        r.json(),
        serde_json::json!({"code": "rate_limited", "message": "Rate limit exceeded.", "retry_after": retry})
    );
    clock.advance(Duration::seconds(i64::try_from(retry).unwrap()));
    assert_eq!(
        http_get(server.addr, "/whoami", Some(secret)).await.status,
        200
    );

    let r = http_get(server.addr, "/whoami", Some(plain.secret.expose())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit"), None);
    assert_eq!(r.header("ratelimit-policy"), None);
}

/// The blocking mode answers like the plain one: an admitted request of a rate-limited token
/// carries the `RateLimit` fields (its authentication ran on the blocking pool, then the
/// inner service), a token without limits none.
#[tokio::test]
async fn the_blocking_layer_adds_the_ratelimit_fields_too() {
    use api_tokens::limits::{LimitName, Limits, RateLimit};
    let tokens = Tokens::in_memory();
    let alice = Actor::user(UserId::new("alice").unwrap());
    let per_minute =
        RateLimit::new(LimitName::new("requests").unwrap(), 2, Duration::MINUTE).unwrap();
    let issue = |name: &str, limits: Limits| {
        tokens
            .issue(
                &alice,
                NewToken::new(name.parse().unwrap())
                    .permissions("dns.read".parse().unwrap())
                    .limits(limits),
            )
            .unwrap()
    };
    let limited = issue("limited", Limits::none().rate(per_minute));
    let plain = issue("plain", Limits::none());
    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(AuthLayer::blocking(tokens.clone()));
    let server = serve(app).await;
    let r = http_get(server.addr, "/whoami", Some(limited.secret.expose())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit-policy"), Some(r#""requests";q=2;w=60"#));
    assert!(
        r.header("ratelimit").is_some(),
        "{:?}",
        r.header("ratelimit")
    );
    let r = http_get(server.addr, "/whoami", Some(plain.secret.expose())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit"), None);
}

/// A route that costs something: spent on the token's meter before the route runs, refused
/// with 429 (and `Retry-After` when the credits are refilled) once the credits cannot cover
/// it, the route not run.
#[tokio::test]
async fn a_route_spends_its_cost_on_the_tokens_meter() {
    use api_tokens::limits::{Credits, LimitName, Limits, Refill, RefillEvery};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tokens = Tokens::in_memory();
    let alice = Actor::user(UserId::new("alice").unwrap());
    let credits = Credits::new(25, tokens.now())
        .unwrap()
        .refill(Refill::new(25, RefillEvery::Day).unwrap())
        .on_meter(LimitName::new("renders").unwrap());
    let issued = tokens
        .issue(
            &alice,
            NewToken::new("renderer".parse().unwrap())
                .permissions("render".parse().unwrap())
                .limits(Limits::none().credits(credits)),
        )
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let app = Router::new()
        .route(
            "/render",
            post(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "rendered"
            })
            .route_layer(api_tokens_axum::spend("renders", 10)),
        )
        .route("/free", get(whoami))
        .layer(AuthLayer::new(tokens));
    let server = serve(app).await;
    let secret = issued.secret.expose();
    for _ in 0..2 {
        let r = call(server.addr, "POST", "/render", secret, None).await;
        assert_eq!((r.status, r.body.as_str()), (200, "rendered"));
    }
    let r = call(server.addr, "POST", "/render", secret, None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["code"], "usage_exceeded");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "until midnight UTC: {retry}");
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "the refused route did not run"
    );
    // Routes without a cost are not charged.
    assert_eq!(
        http_get(server.addr, "/free", Some(secret)).await.status,
        200
    );
}
