//! Every refusal is one log line, in one place: `token refused: …` with its code, the token
//! when one was found and the client address; never the secret.

mod support;

use std::sync::Arc;

use api_tokens::time::{Duration, OffsetDateTime};
use api_tokens::{Actor, ManualClock, NewToken, Status, StoreError, Tokens, UserId, permission};
use api_tokens_axum::{AuthLayer, require};
use axum::Router;
use axum::routing::get;
use support::{CountingStore, Logs, get as http_get, raw, send, serve};

#[tokio::test]
async fn each_refusal_is_one_line_with_its_code_token_and_client_address() {
    let (logs, _guard) = Logs::capture();
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_767_258_000).unwrap(),
    ));
    let tokens = Tokens::new(CountingStore::new()).with_clock(clock.clone());
    let alice = Actor::user(UserId::new("alice").unwrap());
    let issue = |new: NewToken| {
        let issued = tokens.issue(&alice, new).unwrap();
        (issued.token.id.get(), issued.secret.expose().to_owned())
    };
    let perms = || "dns.read".parse().unwrap();
    let (good_id, good) = issue(NewToken::new("good".parse().unwrap()).permissions(perms()));
    let (off_id, off) = issue(
        NewToken::new("off".parse().unwrap())
            .permissions(perms())
            .status(Status::Disabled),
    );
    let (short_id, short) = issue(
        NewToken::new("short".parse().unwrap())
            .permissions(perms())
            .expires_at(tokens.now() + Duration::hours(1)),
    );
    let (office_id, office) = issue(
        NewToken::new("office".parse().unwrap())
            .permissions(perms())
            .allowlist("10.0.0.0/8".parse().unwrap()),
    );
    clock.advance(Duration::hours(1));
    let app = Router::new()
        .route(
            "/admin",
            get(|| async { "admin" }).route_layer(require(permission!("admin"))),
        )
        .route("/zones", get(|| async { "zones" }))
        .layer(AuthLayer::new(tokens.clone()));
    let server = serve(app).await;
    let unknown = api_tokens::SecretFormat::default().generate();

    // (what, path, secret, code, token): one request each, one line each.
    let cases: Vec<(&str, &str, &str, &str, Option<u64>)> = vec![
        ("unknown", "/zones", unknown.expose(), "unknown", None),
        ("disabled", "/zones", &off, "disabled", Some(off_id)),
        ("expired", "/zones", &short, "expired", Some(short_id)),
        (
            "outside the allowlist",
            "/zones",
            &office,
            "address_not_allowed",
            Some(office_id),
        ),
        ("malformed", "/zones", "tok_nonsense", "malformed", None),
        (
            "a missing permission (require)",
            "/admin",
            &good,
            "missing_permission",
            Some(good_id),
        ),
    ];
    let mut secrets = vec![good.clone(), off.clone(), short.clone(), office.clone()];
    secrets.push(unknown.expose().to_owned());
    let check = |what: &str, code: &str, token: Option<u64>| {
        let lines: Vec<String> = logs
            .lines()
            .into_iter()
            .filter(|l| l.contains("token refused"))
            .collect();
        assert_eq!(lines.len(), 1, "{what}: one line, got {lines:#?}");
        let line = &lines[0];
        assert!(line.contains(&format!("code={code}")), "{what}: {line}");
        let token = token.map_or("none".to_owned(), |t| t.to_string());
        assert!(line.contains(&format!("token={token}")), "{what}: {line}");
        assert!(line.contains("client_ip=127.0.0.1"), "{what}: {line}");
        for s in &secrets {
            assert!(
                !line.contains(s.as_str()),
                "{what}: a secret was logged: {line}"
            );
        }
        logs.clear();
    };
    for (what, path, secret, code, token) in cases {
        logs.clear();
        let r = http_get(server.addr, path, Some(secret)).await;
        assert!(r.status == 401 || r.status == 403, "{what}: {r:?}");
        check(what, code, token);
    }

    // Credentials refused before authentication: the same line, the problem's code.
    let repeated = format!("Bearer {good}");
    let r = send(
        server.addr,
        &raw(
            "GET",
            "/zones",
            &[
                ("Authorization", repeated.as_bytes()),
                ("Authorization", repeated.as_bytes()),
            ],
            None,
        ),
    )
    .await;
    assert_eq!(r.status, 401);
    check("two Authorization headers", "credentials_repeated", None);

    // The store fails, then the replica is stale: one line each, at error and warn.
    tokens.store().fail_with(Some(|| {
        StoreError::backend(std::io::Error::other("disk on fire"))
    }));
    assert_eq!(
        http_get(server.addr, "/zones", Some(&good)).await.status,
        503
    );
    assert!(logs.all().starts_with("ERROR") && logs.all().contains("disk on fire"));
    check("store failure", "store_unavailable", None);
    tokens.store().fail_with(Some(|| StoreError::Stale {
        unconfirmed_for: std::time::Duration::from_secs(9),
    }));
    assert_eq!(
        http_get(server.addr, "/zones", Some(&good)).await.status,
        503
    );
    assert!(logs.all().starts_with("WARN"), "{}", logs.all());
    check("stale replica", "replica_stale", None);
}
