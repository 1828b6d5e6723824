//! Item 5 over real HTTP on 127.0.0.1: the self-service router nested under `/api/tokens`
//! behind the layer: own tokens for users, anyone's for admins, secrets once, typed 422s with
//! the member and the item, no secret in a list or a log, and an executor that never blocks.

use crate::support::{CountingStore, Logs, Reply, call, raw, send, serve};
use api_tokens::{
    Actor, Expiry, NewToken, StaticDirectory, TokenId, Tokens, UserId, UserState, permission,
};
use api_tokens_axum::AuthLayer;
use api_tokens_axum::manage::{FromGrant, Limits, SelfService};
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

type T = Tokens<CountingStore>;

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

fn tokens() -> T {
    let directory = StaticDirectory::new()
        .with(
            user("alice"),
            UserState::Active("dns.*, mail.*, tokens.manage".parse().unwrap()),
        )
        .with(
            user("bob"),
            UserState::Active("dns.*, tokens.manage".parse().unwrap()),
        )
        .with(user("root"), UserState::Unrestricted);
    let t = Tokens::new(CountingStore::new()).with_directory(directory);
    // The startup check a host runs; otherwise the first authentication runs it, in the
    // store, on the executor (and a closed gate would hold it there).
    t.check_hash_keys().unwrap();
    t
}

/// A token issued directly (the bootstrap a host does once).
fn bootstrap(tokens: &T, owner: &str, name: &str, permissions: &str) -> (TokenId, String) {
    let issued = tokens
        .issue(
            &Actor::admin(user("root")),
            NewToken::new(name.parse().unwrap())
                .owner(user(owner))
                .permissions(permissions.parse().unwrap()),
        )
        .unwrap();
    (issued.token.id, issued.secret.expose().to_owned())
}

fn app(tokens: &T, limits: Limits) -> Router {
    Router::new()
        .nest(
            "/api/tokens",
            SelfService::new(tokens.clone())
                .with_actors(
                    FromGrant::new(permission!("tokens.manage"))
                        .with_admin_permission(permission!("tokens.admin")),
                )
                .with_limits(limits)
                .router(),
        )
        .route("/ping", get(|| async { "pong" }))
        .layer(AuthLayer::new(tokens.clone()).with_optional(true))
}

fn ids(v: &Value) -> Vec<u64> {
    v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect()
}

fn assert_no_store(r: &Reply) {
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
}

#[tokio::test]
async fn a_user_issues_lists_changes_regenerates_and_deletes_its_own_tokens() {
    let (logs, _guard) = Logs::capture();
    let t = tokens();
    let (_, alice) = bootstrap(&t, "alice", "console", "*");
    let (bobs_id, _) = bootstrap(&t, "bob", "bobs", "dns.read");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;
    let mut secrets = vec![alice.clone()];

    // Issue: the secret once, in the answer, never cached.
    let r = call(
        a,
        "POST",
        "/api/tokens",
        &alice,
        Some(
            r#"{"name": "ci", "permissions": ["dns.read", "dns.edit", "tokens.manage"],
        "allowlist": "127.0.0.1", "expires_at": "2099-01-01T00:00:00Z", "description": "deploys"}"#,
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_no_store(&r);
    let created = r.json();
    let ci_id = created["id"].as_u64().unwrap();
    let ci = created["secret"].as_str().unwrap().to_owned();
    assert!(ci.starts_with("tok_"));
    assert_eq!(
        created["permissions"],
        json!(["dns.edit", "dns.read", "tokens.manage"])
    );
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00Z");
    secrets.push(ci.clone());
    // The new secret works at once, from here.
    assert_eq!(call(a, "GET", "/api/tokens", &ci, None).await.status, 200);

    // List: own tokens only (bob's is not there even when asked for), no secret, no hash.
    let r = call(a, "GET", "/api/tokens", &alice, None).await;
    assert_eq!(r.status, 200);
    assert_no_store(&r);
    assert_eq!(ids(&r.json()), [1, ci_id]);
    let r = call(a, "GET", "/api/tokens?owners=bob", &alice, None).await;
    assert_eq!(ids(&r.json()), Vec::<u64>::new());
    let r = call(
        a,
        "GET",
        "/api/tokens?name=C&sort=-id&limit=1",
        &alice,
        None,
    )
    .await;
    assert_eq!(ids(&r.json()), [ci_id]);

    // Get, change, and the owner's other token reads "not found" for someone else.
    let r = call(a, "GET", &format!("/api/tokens/{ci_id}"), &alice, None).await;
    assert_eq!((r.status, r.json()["name"].as_str()), (200, Some("ci")));
    let r = call(a, "GET", &format!("/api/tokens/{bobs_id}"), &alice, None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = call(
        a,
        "PATCH",
        &format!("/api/tokens/{ci_id}"),
        &alice,
        Some(r#"{"name": "ci-2", "expires_at": null, "status": "disabled"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (
            v["name"].as_str(),
            v["expires_at"].clone(),
            v["status"].as_str()
        ),
        (Some("ci-2"), Value::Null, Some("disabled"))
    );
    assert_eq!(
        call(a, "GET", "/api/tokens", &ci, None).await.status,
        401,
        "disabled now"
    );

    // Mass enable, then regenerate: the old secret stops, the new one works.
    let r = call(
        a,
        "POST",
        "/api/tokens/enable",
        &alice,
        Some(&format!(r#"{{"ids": [{ci_id}]}}"#)),
    )
    .await;
    assert_eq!((r.status, r.json()), (200, json!({"ids": [ci_id]})));
    assert_eq!(call(a, "GET", "/api/tokens", &ci, None).await.status, 200);
    let r = call(
        a,
        "POST",
        &format!("/api/tokens/{ci_id}/regenerate"),
        &alice,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_no_store(&r);
    let fresh = r.json()["secret"].as_str().unwrap().to_owned();
    secrets.push(fresh.clone());
    assert_eq!(call(a, "GET", "/api/tokens", &ci, None).await.status, 401);
    assert_eq!(
        call(a, "GET", "/api/tokens", &fresh, None).await.status,
        200
    );

    // With a grace period the old secret keeps working; a mass regenerate returns each secret.
    let r = call(
        a,
        "POST",
        "/api/tokens/regenerate",
        &alice,
        Some(&format!(r#"{{"ids": [{ci_id}], "grace_seconds": 600}}"#)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let newest = r.json()["secrets"][0]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.json()["secrets"][0]["id"], ci_id);
    secrets.push(newest.clone());
    assert_eq!(
        call(a, "GET", "/api/tokens", &fresh, None).await.status,
        200
    );
    assert_eq!(
        call(a, "GET", "/api/tokens", &newest, None).await.status,
        200
    );

    // Delete: one, then gone.
    let r = call(a, "DELETE", &format!("/api/tokens/{ci_id}"), &alice, None).await;
    assert_eq!(r.status, 204);
    assert_no_store(&r);
    assert_eq!(
        call(a, "GET", "/api/tokens", &newest, None).await.status,
        401
    );
    assert_eq!(
        call(a, "DELETE", &format!("/api/tokens/{ci_id}"), &alice, None)
            .await
            .status,
        404
    );

    // No list, and no log line, ever held a secret.
    let r = call(a, "GET", "/api/tokens", &alice, None).await;
    let listed = r.body;
    let logged = logs.all();
    assert!(
        logged.contains("token issued") && logged.contains("token regenerated"),
        "{logged}"
    );
    for secret in &secrets {
        assert!(!listed.contains(secret.as_str()), "a secret in a list");
        assert!(!logged.contains(secret.as_str()), "a secret in the log");
    }
    assert!(!listed.contains("hash"), "{listed}");
}

#[tokio::test]
async fn an_admin_manages_everyones_tokens_and_a_user_only_its_own() {
    let t = tokens();
    let (_, root) = bootstrap(&t, "root", "root-console", "*");
    let (alices_id, alice) = bootstrap(&t, "alice", "console", "dns.*, mail.*, tokens.manage");
    let (bobs_id, bob) = bootstrap(&t, "bob", "bobs", "dns.read, tokens.manage");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;

    let r = call(a, "GET", "/api/tokens?owners=bob", &root, None).await;
    assert_eq!(ids(&r.json()), [bobs_id.get()]);
    let r = call(
        a,
        "POST",
        "/api/tokens/disable",
        &root,
        Some(&format!(r#"{{"ids": [{bobs_id}]}}"#)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(call(a, "GET", "/api/tokens", &bob, None).await.status, 401);
    // The admin creates a token for bob, within bob's own rights and its own.
    let r = call(
        a,
        "POST",
        "/api/tokens",
        &root,
        Some(r#"{"name": "for-bob", "owner": "bob", "permissions": "dns.read"}"#),
    )
    .await;
    assert_eq!((r.status, r.json()["owner"].as_str()), (201, Some("bob")));

    // Alice may not touch bob's token, in a batch or alone: "not found", nothing changed.
    let r = call(
        a,
        "POST",
        "/api/tokens/enable",
        &alice,
        Some(&format!(r#"{{"ids": [{alices_id}, {bobs_id}]}}"#)),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"code": "not_found", "index": 1, "message": format!("item 2: token {bobs_id} not found")})
    );
    let r = call(
        a,
        "POST",
        "/api/tokens",
        &alice,
        Some(r#"{"name": "x", "owner": "bob", "permissions": "dns.read"}"#),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("other_users_tokens"))
    );
}

#[tokio::test]
async fn a_narrow_token_cannot_act_on_a_wider_one() {
    let t = tokens();
    let (wide, _) = bootstrap(&t, "alice", "wide", "*");
    let (narrow_id, narrow) = bootstrap(&t, "alice", "narrow", "dns.read, tokens.manage");
    let (_, other_narrow) = bootstrap(&t, "alice", "narrow-2", "dns.read, tokens.manage");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;

    // Regenerating its owner's wider token would hand it a secret that can do more.
    let r = call(
        a,
        "POST",
        &format!("/api/tokens/{wide}/regenerate"),
        &narrow,
        None,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "permissions_not_held");
    assert!(
        r.json()["message"].as_str().unwrap().contains("mail.*"),
        "{}",
        r.body
    );
    for (method, path, body) in [
        (
            "PATCH",
            format!("/api/tokens/{wide}"),
            Some(r#"{"allowlist": ""}"#.to_owned()),
        ),
        ("DELETE", format!("/api/tokens/{wide}"), None),
        (
            "POST",
            "/api/tokens/disable".to_owned(),
            Some(format!(r#"{{"ids": [{narrow_id}, {wide}]}}"#)),
        ),
    ] {
        let r = call(a, method, &path, &narrow, body.as_deref()).await;
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (403, Some("permissions_not_held")),
            "{method} {path}"
        );
    }
    let r = call(
        a,
        "POST",
        "/api/tokens/disable",
        &narrow,
        Some(&format!(r#"{{"ids": [{narrow_id}, {wide}]}}"#)),
    )
    .await;
    assert_eq!(r.json()["index"], 1);
    // Nor can it create one beyond itself.
    let r = call(
        a,
        "POST",
        "/api/tokens",
        &narrow,
        Some(r#"{"name": "more", "permissions": "dns.*"}"#),
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.json()["code"].as_str(),
            r.json()["field"].as_str()
        ),
        (403, Some("permissions_not_held"), Some("permissions"))
    );
    // Tokens as narrow as itself are fine.
    let r = call(a, "POST", "/api/tokens/3/regenerate", &narrow, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        call(a, "GET", "/api/tokens", &other_narrow, None)
            .await
            .status,
        401,
        "regenerated"
    );
}

#[tokio::test]
async fn refused_values_answer_422_with_the_member_and_the_item() {
    let t = tokens();
    let (_, alice) = bootstrap(&t, "alice", "console", "*");
    let mut limits = Limits::default();
    limits.max_batch = 3;
    limits.max_body_bytes = 1024;
    let server = serve(app(&t, limits)).await;
    let a = server.addr;
    let post = |body: String| {
        let alice = alice.clone();
        async move { call(a, "POST", "/api/tokens", &alice, Some(&body)).await }
    };

    for (body, status, code, field, index) in [
        (
            r#"[{"name": "a", "permissions": "dns.read"}, {"name": "b", "permissions": "dns:*"}]"#,
            422,
            "misplaced_wildcard",
            Some("permissions"),
            Some(1),
        ),
        (
            r#"[{"name": "a", "permissions": "dns.read"}, {"name": "b", "permission": "dns.read"}]"#,
            422,
            "unknown_field",
            Some("permission"),
            Some(1),
        ),
        (
            r#"[{"name": "a", "permissions": "dns.read"}, {"name": "a", "permissions": "dns.read"}]"#,
            409,
            "name_taken",
            Some("name"),
            Some(1),
        ),
        (
            r#"{"name": "c"}"#,
            422,
            "required",
            Some("permissions"),
            None,
        ),
        (
            r#"{"name": "c", "permissions": "dns.read", "expires_at": "2001-01-01T00:00:00Z"}"#,
            422,
            "expiry_not_in_future",
            Some("expires_at"),
            None,
        ),
        (
            r#"{"name": "c", "permissions": "dns.read", "allowlist": ["10.0.0.1/8"]}"#,
            422,
            "host_bits_set",
            Some("allowlist"),
            None,
        ),
        (
            r#"{"name": "c", "permissions": "billing.read"}"#,
            403,
            "permissions_not_held",
            Some("permissions"),
            None,
        ),
        (
            r#"{"permissions": "dns.read"}"#,
            422,
            "required",
            Some("name"),
            None,
        ),
        (
            r#"{"name": 7, "permissions": "dns.read"}"#,
            422,
            "invalid_syntax",
            Some("name"),
            None,
        ),
        (
            r#"[{"name": "a", "permissions": "*"}, {"name": "b", "permissions": "*"}, {"name": "c", "permissions": "*"}, {"name": "d", "permissions": "*"}]"#,
            422,
            "too_many_values",
            Some("tokens"),
            None,
        ),
        ("{\"name\": ", 400, "invalid_json", None, None),
        ("\"just a string\"", 400, "invalid_json", None, None),
    ] {
        let r = post(body.to_owned()).await;
        let v = r.json();
        assert_eq!(
            (
                r.status,
                v["code"].as_str(),
                v["field"].as_str(),
                v["index"].as_u64()
            ),
            (status, Some(code), field, index.map(|i: u64| i)),
            "{body}: {}",
            r.body
        );
        assert_no_store(&r);
    }
    // Nothing of a refused batch was created.
    let r = call(a, "GET", "/api/tokens", &alice, None).await;
    assert_eq!(ids(&r.json()), [1]);

    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(2000));
    let r = post(big).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let form = [
        ("Authorization", format!("Bearer {alice}")),
        ("Content-Type", "text/plain".to_owned()),
        ("Content-Length", "2".to_owned()),
    ];
    let headers: Vec<(&str, &[u8])> = form.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let mut req = raw("POST", "/api/tokens", &headers, None);
    req.extend_from_slice(b"{}");
    let r = send(a, &req).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let r = call(
        a,
        "POST",
        "/api/tokens/delete",
        &alice,
        Some(r#"{"ids": [1, 2, 3, 4]}"#),
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.json()["code"].as_str(),
            r.json()["field"].as_str()
        ),
        (422, Some("too_many_values"), Some("ids"))
    );
    let r = call(
        a,
        "POST",
        "/api/tokens/delete",
        &alice,
        Some(r#"{"ids": [1, "x"]}"#),
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.json()["field"].as_str(),
            r.json()["index"].as_u64()
        ),
        (422, Some("ids"), Some(1))
    );
    let r = call(a, "GET", "/api/tokens/abc", &alice, None).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (422, Some("id")));
    let r = call(a, "GET", "/api/tokens?statuss=enabled", &alice, None).await;
    assert_eq!(
        (
            r.status,
            r.json()["code"].as_str(),
            r.json()["field"].as_str()
        ),
        (422, Some("unknown_field"), Some("statuss"))
    );
    let r = call(
        a,
        "PATCH",
        "/api/tokens/1",
        &alice,
        Some(r#"{"owner": "bob"}"#),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (422, Some("unknown_field"))
    );
    let r = call(
        a,
        "POST",
        "/api/tokens/1/regenerate",
        &alice,
        Some(r#"{"grace_seconds": 99999999}"#),
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.json()["code"].as_str(),
            r.json()["field"].as_str()
        ),
        (422, Some("grace_too_long"), Some("grace_seconds"))
    );

    // Without credentials: the layer's refusal.
    let r = send(a, &raw("GET", "/api/tokens", &[], None)).await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some("Bearer"))
    );
}

/// A management call that waits in the store holds a blocking-pool thread, not the executor:
/// on this single-threaded runtime another request is answered meanwhile.
#[tokio::test]
async fn a_slow_store_does_not_block_the_executor() {
    let t = tokens();
    let (_, alice) = bootstrap(&t, "alice", "console", "*");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;
    t.store().gate().close();
    let listing = tokio::spawn({
        let alice = alice.clone();
        async move { call(a, "GET", "/api/tokens", &alice, None).await }
    });
    let deadline = std::time::Instant::now() + crate::support::TIMEOUT;
    while t.store().gate().waiting() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        t.store().gate().waiting(),
        1,
        "the list call reached the store"
    );
    let r = call(a, "GET", "/ping", &alice, None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "pong"));
    assert_eq!(
        t.store().gate().waiting(),
        1,
        "answered while the list call still waited"
    );
    t.store().gate().open();
    let r = listing.await.unwrap();
    assert_eq!(r.status, 200);
}

/// One rule for bodies: a route that needs one refuses an empty body (415 without a content
/// type, 400 as JSON that is not there), a route whose body is optional takes an empty one,
/// and a path id that is not a number is refused after the caller, before the body.
#[tokio::test]
async fn bodies_and_path_ids_are_read_by_one_rule() {
    let t = tokens();
    let (id, alice) = bootstrap(&t, "alice", "console", "*");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;
    let auth = format!("Bearer {alice}");
    let empty = |path: &str, json: bool| {
        let mut headers: Vec<(&str, &[u8])> = vec![("Authorization", auth.as_bytes())];
        if json {
            headers.push(("Content-Type", b"application/json"));
        }
        headers.push(("Content-Length", b"0"));
        raw("POST", path, &headers, None)
    };
    let r = send(a, &empty("/api/tokens/enable", false)).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let r = send(a, &empty("/api/tokens/enable", true)).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let r = send(
        a,
        &empty(&format!("/api/tokens/{}/regenerate", id.get()), false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let r = send(a, &raw("POST", "/api/tokens/x/regenerate", &[], Some("{"))).await;
    assert_eq!(r.status, 401, "the caller first");
    let auth = format!("Bearer {secret}");
    let headers: Vec<(&str, &[u8])> = vec![("Authorization", auth.as_bytes())];
    let r = send(
        a,
        &raw("POST", "/api/tokens/x/regenerate", &headers, Some("{")),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("id")),
        "the path before the body"
    );
}

/// A management call that panics on the blocking pool (a bug in a host's store) answers 503
/// `store_unavailable` in the API's JSON, and the router serves the next call.
#[tokio::test]
async fn a_panicking_management_call_answers_503_and_the_router_keeps_serving() {
    let (logs, _guard) = Logs::capture();
    let t = tokens();
    let (_, alice) = bootstrap(&t, "alice", "console", "*");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;
    // The calling token's bounds are read (a store call) before the create: it panics there.
    t.store().panic_on_management(true);
    let r = call(
        a,
        "POST",
        "/api/tokens",
        &alice,
        Some(r#"{"name": "ci", "permissions": "dns.read"}"#),
    )
    .await;
    t.store().panic_on_management(false);
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (503, Some("store_unavailable")),
        "{}",
        r.body
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // The client reads that the store failed; what panicked is the operator's, in the log.
    assert_eq!(r.json()["message"], "the token store failed");
    let all = logs.all();
    assert!(
        all.contains("panicked on the blocking pool") && all.contains("code=store_unavailable"),
        "{all}"
    );
    let r = call(
        a,
        "POST",
        "/api/tokens",
        &alice,
        Some(r#"{"name": "ci", "permissions": "dns.read"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

// ------------------------------------------------------------------------------------------
// Review 3: a token must not mint or widen tokens beyond itself, containment fails closed,
// no cross-site form posts, no secret echoed, query-string credentials and the list.

/// A token issued by root with every field given.
fn bootstrap_with(tokens: &T, new: NewToken) -> (TokenId, String) {
    let issued = tokens.issue(&Actor::admin(user("root")), new).unwrap();
    (issued.token.id, issued.secret.expose().to_owned())
}

fn in_seconds(s: i64) -> i64 {
    api_tokens::time::OffsetDateTime::now_utc().unix_timestamp() + s
}

#[tokio::test]
async fn managing_tokens_needs_the_management_permission_the_host_names() {
    let t = tokens();
    // alice's rights include tokens.manage; this token does not carry it.
    let (_, reader) = bootstrap(&t, "alice", "reader", "dns.read");
    let (_, manager) = bootstrap(&t, "alice", "manager", "dns.read, tokens.manage");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;
    let r = call(a, "GET", "/api/tokens", &reader, None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("cannot_manage_tokens"))
    );
    let new = r#"{"name": "forever", "permissions": "dns.read"}"#;
    assert_eq!(
        call(a, "POST", "/api/tokens", &reader, Some(new))
            .await
            .status,
        403
    );
    assert_eq!(
        call(a, "GET", "/api/tokens", &manager, None).await.status,
        200
    );

    // `SelfService::new` alone names no management permission: everyone is refused.
    let (_, star) = bootstrap(&t, "root", "all", "*");
    let bare = serve(
        Router::new()
            .nest("/api/tokens", SelfService::new(t.clone()).router())
            .layer(AuthLayer::new(t.clone())),
    )
    .await;
    assert_eq!(
        call(bare.addr, "GET", "/api/tokens", &star, None)
            .await
            .status,
        403
    );
}

/// Review 3, #2: a token bound to an hour and 127.0.0.1/32 cannot mint a permanent or
/// address-free token, strip its own bounds, or take the secret of a sibling beyond them.
#[tokio::test]
async fn a_short_lived_address_bound_token_cannot_mint_or_widen_beyond_itself() {
    let t = tokens();
    let hour = in_seconds(3600);
    let (id, secret) = bootstrap_with(
        &t,
        NewToken::new("ci-job".parse().unwrap())
            .owner(user("alice"))
            .permissions("dns.read, tokens.manage".parse().unwrap())
            .expiry(Expiry::from_unix(hour).unwrap())
            .allowlist("127.0.0.1/32".parse().unwrap()),
    );
    let (forever, _) = bootstrap(&t, "alice", "forever", "dns.read");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;
    let beyond = |r: &Reply, field: &str| {
        assert_eq!(r.status, 403, "{}", r.body);
        let v = r.json();
        assert_eq!(v["code"], "beyond_calling_token", "{}", r.body);
        assert_eq!(v["field"], field, "{}", r.body);
    };

    // Minting: no expiry, a later one, no allowlist, a wider one: refused.
    let r = call(
        a,
        "POST",
        "/api/tokens",
        &secret,
        Some(r#"{"name": "x", "permissions": "dns.read"}"#),
    )
    .await;
    beyond(&r, "expires_at");
    let later = format!(
        r#"{{"name": "x", "expires_at": {}, "allowlist": "127.0.0.1"}}"#,
        hour + 60
    );
    beyond(
        &call(a, "POST", "/api/tokens", &secret, Some(&later)).await,
        "expires_at",
    );
    let open = format!(r#"{{"name": "x", "expires_at": {hour}}}"#);
    beyond(
        &call(a, "POST", "/api/tokens", &secret, Some(&open)).await,
        "allowlist",
    );
    let wider = format!(r#"{{"name": "x", "expires_at": {hour}, "allowlist": "127.0.0.0/8"}}"#);
    beyond(
        &call(a, "POST", "/api/tokens", &secret, Some(&wider)).await,
        "allowlist",
    );
    // A batch: the item beyond is named.
    let batch = format!(
        r#"[{{"name": "y", "expires_at": {hour}, "allowlist": "127.0.0.1"}}, {{"name": "z"}}]"#
    );
    let r = call(a, "POST", "/api/tokens", &secret, Some(&batch)).await;
    beyond(&r, "expires_at");
    assert_eq!(r.json()["index"], 1);
    // Within the bounds: created.
    let within = format!(
        r#"{{"name": "x", "expires_at": {}, "allowlist": "127.0.0.1", "permissions": "dns.read"}}"#,
        hour - 60
    );
    assert_eq!(
        call(a, "POST", "/api/tokens", &secret, Some(&within))
            .await
            .status,
        201
    );

    // Widening itself: refused; a change that keeps it within its bounds: fine.
    let me = format!("/api/tokens/{id}");
    beyond(
        &call(a, "PATCH", &me, &secret, Some(r#"{"expires_at": null}"#)).await,
        "expires_at",
    );
    beyond(
        &call(a, "PATCH", &me, &secret, Some(r#"{"allowlist": []}"#)).await,
        "allowlist",
    );
    let r = call(
        a,
        "PATCH",
        &me,
        &secret,
        Some(r#"{"description": "nightly"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(a, "GET", &me, &secret, None).await;
    assert_eq!(r.json()["allowlist"], json!(["127.0.0.1"]), "{}", r.body);
    assert!(r.json()["expires_at"].is_string(), "{}", r.body);

    // A permanent sibling: not regenerated (its secret would outlive the caller), not enabled
    // again, but it may be disabled (that only takes away).
    let sib = format!("/api/tokens/{forever}/regenerate");
    beyond(&call(a, "POST", &sib, &secret, None).await, "expires_at");
    let ids = format!(r#"{{"ids": [{forever}]}}"#);
    assert_eq!(
        call(a, "POST", "/api/tokens/disable", &secret, Some(&ids))
            .await
            .status,
        200
    );
    beyond(
        &call(a, "POST", "/api/tokens/enable", &secret, Some(&ids)).await,
        "expires_at",
    );
    // Its own secret it may regenerate (within its bounds by definition).
    assert_eq!(
        call(a, "POST", &format!("{me}/regenerate"), &secret, None)
            .await
            .status,
        200
    );
}

/// A directory whose users' states a test changes.
#[derive(Default, Clone)]
struct Directory(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<UserId, UserState>>>);

impl Directory {
    fn set(&self, u: &str, s: UserState) {
        self.0.lock().unwrap().insert(user(u), s);
    }
}

impl api_tokens::UserDirectory for Directory {
    fn user(&self, id: &UserId) -> UserState {
        self.0
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap_or(UserState::Unknown)
    }
}

/// Review 3, #3: while a token's owner is suspended, a limited admin cannot regenerate the
/// owner's `*` token and keep a secret that regains `*` when the owner returns; it can still
/// disable a token whose own permissions are within its own.
#[tokio::test]
async fn containment_compares_a_suspended_owners_token_by_its_own_permissions() {
    let dir = Directory::default();
    dir.set("root", UserState::Unrestricted);
    dir.set(
        "helpdesk",
        UserState::Active("tokens.admin, dns.read".parse().unwrap()),
    );
    dir.set("bob", UserState::Unrestricted);
    let t = Tokens::new(CountingStore::new()).with_directory(dir.clone());
    t.check_hash_keys().unwrap();
    let (_, helpdesk) = bootstrap_with(
        &t,
        NewToken::new("desk".parse().unwrap())
            .owner(user("helpdesk"))
            .permissions("tokens.admin, dns.read".parse().unwrap()),
    );
    let (bobs_star, _) = bootstrap_with(
        &t,
        NewToken::new("all".parse().unwrap())
            .owner(user("bob"))
            .permissions("*".parse().unwrap()),
    );
    let (bobs_read, _) = bootstrap_with(
        &t,
        NewToken::new("read".parse().unwrap())
            .owner(user("bob"))
            .permissions("dns.read".parse().unwrap()),
    );
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;
    let regenerate = format!("/api/tokens/{bobs_star}/regenerate");
    let r = call(a, "POST", &regenerate, &helpdesk, None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    dir.set("bob", UserState::Inactive);
    let r = call(a, "POST", &regenerate, &helpdesk, None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("permissions_not_held")),
        "{}",
        r.body
    );
    assert!(!r.body.contains("tok_"), "{}", r.body);
    dir.set("bob", UserState::Unknown);
    assert_eq!(
        call(a, "POST", &regenerate, &helpdesk, None).await.status,
        403
    );
    // Within its own permissions: allowed while bob is away.
    let ids = format!(r#"{{"ids": [{bobs_read}]}}"#);
    let r = call(a, "POST", "/api/tokens/disable", &helpdesk, Some(&ids)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Review 3, #5: a cross-site form post carries a form `Content-Type`; with a session-based
/// mapping it must not regenerate (or delete) a token, even with no body.
#[tokio::test]
async fn a_form_content_type_is_refused_even_without_a_body() {
    let t = tokens();
    let (id, _) = bootstrap(&t, "alice", "deploy", "*");
    let actors = api_tokens_axum::manage::actor_from_fn(|parts| {
        match parts.headers.get("cookie").and_then(|v| v.to_str().ok()) {
            Some("session=alice") => Ok(Actor::user(user("alice"))),
            _ => Err(api_tokens_axum::Refusal::no_credentials().into()),
        }
    });
    let app: Router = Router::new().nest(
        "/api/tokens",
        SelfService::new(t.clone()).with_actors(actors).router(),
    );
    let server = serve(app).await;
    let path = format!("/api/tokens/{id}/regenerate");
    for (method, path) in [
        ("POST", path.as_str()),
        ("DELETE", &format!("/api/tokens/{id}")),
    ] {
        for content_type in [
            &b"application/x-www-form-urlencoded"[..],
            b"multipart/form-data; boundary=x",
            b"text/plain",
        ] {
            let r = send(
                server.addr,
                &raw(
                    method,
                    path,
                    &[
                        ("Cookie", b"session=alice"),
                        ("Content-Type", content_type),
                        ("Content-Length", b"0"),
                    ],
                    None,
                ),
            )
            .await;
            assert_eq!(r.status, 415, "{method} {path}: {} {}", r.status, r.body);
        }
    }
    // No Content-Type and no body (a client's plain POST): still fine.
    let r = send(
        server.addr,
        &raw(
            "POST",
            &path,
            &[("Cookie", b"session=alice"), ("Content-Length", b"0")],
            None,
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Review 3, #6: a secret pasted where a token id belongs is neither echoed nor logged.
#[tokio::test]
async fn a_secret_given_as_a_token_id_is_never_echoed_or_logged() {
    let (logs, _guard) = Logs::capture();
    let t = tokens();
    let (_, alice) = bootstrap(&t, "alice", "console", "*");
    let (_, other) = bootstrap(&t, "alice", "other", "*");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;
    let body = format!(r#"{{"ids": ["{other}"]}}"#);
    for r in [
        call(a, "POST", "/api/tokens/disable", &alice, Some(&body)).await,
        call(a, "POST", "/api/tokens/regenerate", &alice, Some(&body)).await,
        call(a, "GET", &format!("/api/tokens/{other}"), &alice, None).await,
        call(
            a,
            "PATCH",
            &format!("/api/tokens/{other}"),
            &alice,
            Some("{}"),
        )
        .await,
        call(a, "GET", &format!("/api/tokens?ids={other}"), &alice, None).await,
    ] {
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(!r.body.contains(&other), "echoed: {}", r.body);
        assert!(
            r.json()["field"] == "ids" || r.json()["field"] == "id",
            "{}",
            r.body
        );
    }
    assert!(!logs.all().contains(&other), "logged: {}", logs.all());
    assert!(
        logs.all().contains("self-service call refused"),
        "{}",
        logs.all()
    );
}

/// Review 3, #7: with credentials in the query string, the list ignores that parameter once
/// the router is told its name.
#[tokio::test]
async fn the_list_ignores_the_credentials_query_parameter() {
    let t = tokens();
    let (_, alice) = bootstrap(&t, "alice", "hook", "*");
    let layer = || {
        AuthLayer::new(t.clone()).with_secret_sources(
            api_tokens_axum::SecretSources::default().with_query_parameter_leak_risk("api_key"),
        )
    };
    let actors = || FromGrant::new(permission!("tokens.manage"));
    let told = serve(
        Router::new()
            .nest(
                "/api/tokens",
                SelfService::new(t.clone())
                    .with_actors(actors())
                    .with_credentials_query_parameter("api_key")
                    .router(),
            )
            .layer(layer()),
    )
    .await;
    let r = crate::support::get(told.addr, &format!("/api/tokens?api_key={alice}"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r.json()), [1]);
    let r = crate::support::get(
        told.addr,
        &format!("/api/tokens?status=disabled&api_key={alice}"),
        None,
    )
    .await;
    assert_eq!((r.status, ids(&r.json())), (200, vec![]), "{}", r.body);
    // Not told: the parameter is an unknown filter, named without its value.
    let untold = serve(
        Router::new()
            .nest(
                "/api/tokens",
                SelfService::new(t.clone()).with_actors(actors()).router(),
            )
            .layer(layer()),
    )
    .await;
    let r = crate::support::get(untold.addr, &format!("/api/tokens?api_key={alice}"), None).await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("api_key"))
    );
    assert!(!r.body.contains(&alice), "{}", r.body);
}

/// The host's session stand-in for [`TokenOrSession`]: a `session=<user>` cookie (root is an
/// admin). Anyone can be anyone here; a host reads its own login.
fn session_of(
    parts: &axum::http::request::Parts,
) -> Result<Actor, api_tokens_axum::manage::ApiError> {
    let cookie = parts
        .headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.strip_prefix("session="))
        .ok_or(api_tokens_axum::Refusal::no_credentials())?;
    let who = user(cookie);
    Ok(if cookie == "root" {
        Actor::admin(who)
    } else {
        Actor::user(who)
    })
}

fn token_or_session_app(tokens: &T) -> Router {
    use api_tokens_axum::manage::{TokenOrSession, actor_from_fn};
    Router::new()
        .nest(
            "/api/tokens",
            SelfService::new(tokens.clone())
                .with_actors(TokenOrSession::new(
                    FromGrant::new(permission!("tokens.manage")),
                    actor_from_fn(session_of),
                ))
                .router(),
        )
        .layer(AuthLayer::new(tokens.clone()).with_optional(true))
}

/// `TokenOrSession`: the calling token when there is one, else the host's session; a token
/// never acts as the session's user, and credentials no layer checked are refused.
#[tokio::test]
async fn the_calling_token_if_present_else_the_session() {
    let tokens = tokens();
    let (_, bobs) = bootstrap(&tokens, "bob", "bob-manage", "tokens.manage");
    bootstrap(&tokens, "alice", "alice-ci", "dns.read");
    let server = serve(token_or_session_app(&tokens)).await;
    let a = server.addr;
    let session = |user: &str, method: &str, path: &str, body: Option<&str>| {
        let cookie = format!("session={user}");
        raw(method, path, &[("Cookie", cookie.as_bytes())], body)
    };
    let names = |r: &Reply| -> Vec<String> {
        let mut n: Vec<String> = r.json()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };

    // The session: the first management token of a signed-in user, without any token yet.
    let created = send(
        a,
        &session(
            "alice",
            "POST",
            "/api/tokens",
            Some(r#"{"name": "first", "permissions": "tokens.manage"}"#),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let first = created.json()["secret"].as_str().unwrap().to_owned();
    let listed = send(a, &session("alice", "GET", "/api/tokens", None)).await;
    assert_eq!(names(&listed), ["alice-ci", "first"]);
    // The token it made manages alice's tokens from then on.
    let listed = call(a, "GET", "/api/tokens", &first, None).await;
    assert_eq!(names(&listed), ["alice-ci", "first"]);

    // A token with a session of another user (root, an admin) in the same request: the token.
    let both = |method: &str, path: &str, body: Option<&str>| {
        let auth = format!("Bearer {bobs}");
        raw(
            method,
            path,
            &[
                ("Authorization", auth.as_bytes()),
                ("Cookie", b"session=root"),
            ],
            body,
        )
    };
    let listed = send(a, &both("GET", "/api/tokens", None)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(names(&listed), ["bob-manage"], "bob's own, not root's view");
    let made = send(
        a,
        &both(
            "POST",
            "/api/tokens",
            Some(r#"{"name": "sneaky", "owner": "alice", "permissions": "tokens.manage"}"#),
        ),
    )
    .await;
    assert_eq!(made.status, 403, "{}", made.body);
    let made = send(
        a,
        &both(
            "POST",
            "/api/tokens",
            Some(r#"{"name": "wide", "permissions": "dns.*"}"#),
        ),
    )
    .await;
    assert_eq!(
        made.status, 403,
        "no more than the token holds: {}",
        made.body
    );

    // Credentials no layer checked: refused, never the session.
    let unchecked = Router::new().nest(
        "/api/tokens",
        SelfService::new(tokens.clone())
            .with_actors(api_tokens_axum::manage::TokenOrSession::new(
                FromGrant::new(permission!("tokens.manage")),
                api_tokens_axum::manage::actor_from_fn(session_of),
            ))
            .router(),
    );
    let bare = serve(unchecked).await;
    let reply = send(bare.addr, &both("GET", "/api/tokens", None)).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    // Neither a token nor a session: the session's refusal.
    let reply = send(a, &raw("GET", "/api/tokens", &[], None)).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
}

/// The self-service API shows a token's limits and what is left of its credits, sets them at
/// creation and by a change (text form or the view's object; `null` clears), refuses limits
/// out of bounds naming the member, and never lets a token change its own limits.
#[tokio::test]
async fn limits_are_shown_and_set_but_never_by_the_token_they_limit() {
    let t = tokens();
    let (console_id, console) = bootstrap(&t, "alice", "console", "*");
    let server = serve(app(&t, Limits::default())).await;
    let a = server.addr;
    let r = call(
        a,
        "POST",
        "/api/tokens",
        &console,
        Some(
            r#"{"name": "bot", "permissions": "dns.read",
                "limits": "credits 5 at 1767225600; rate requests 100 per 60000ms"}"#,
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    let bot_id = created["id"].as_u64().unwrap();
    assert_eq!(created["credits_remaining"], 5);
    assert_eq!(created["limits"]["rates"][0]["name"], "requests");
    assert_eq!(created["limits"]["rates"][0]["window"], 60_000);
    // The view's object sets them too.
    let mut limits = created["limits"].clone();
    limits["rates"][0]["limit"] = 10.into();
    let r = call(
        a,
        "PATCH",
        &format!("/api/tokens/{bot_id}"),
        &console,
        Some(&serde_json::json!({"limits": limits}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(a, "GET", &format!("/api/tokens/{bot_id}"), &console, None).await;
    assert_eq!(r.json()["limits"]["rates"][0]["limit"], 10);
    // Out of bounds: 422 naming the member.
    let r = call(
        a,
        "PATCH",
        &format!("/api/tokens/{bot_id}"),
        &console,
        Some(r#"{"limits": "rate requests 0 per 60000ms"}"#),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["field"], "limits");
    // The calling token's own limits: refused, even to clear them.
    let r = call(
        a,
        "PATCH",
        &format!("/api/tokens/{console_id}"),
        &console,
        Some(r#"{"limits": "rate requests 1000000 per 1000ms"}"#),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "own_limits");
    // `null` clears another token's limits.
    let r = call(
        a,
        "PATCH",
        &format!("/api/tokens/{bot_id}"),
        &console,
        Some(r#"{"limits": null}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(a, "GET", &format!("/api/tokens/{bot_id}"), &console, None).await;
    assert!(r.json().get("limits").is_none(), "{}", r.body);
}
