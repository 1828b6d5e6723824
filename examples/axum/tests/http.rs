//! Starts the server on 127.0.0.1 and checks its answers over real connections.

use api_tokens::{Actor, NewToken, Status, Tokens, UserId};
use tokio::net::TcpListener;

use crate::get;

#[tokio::test]
async fn bearer_tokens_over_a_real_connection() {
    let tokens = Tokens::in_memory();
    let alice = Actor::user(UserId::new("alice").unwrap());
    let dns = tokens
        .issue(
            &alice,
            NewToken::new("dns".parse().unwrap())
                .permissions("dns.*, tokens.manage".parse().unwrap()),
        )
        .unwrap();
    let remote = tokens
        .issue(
            &alice,
            NewToken::new("remote-only".parse().unwrap())
                .permissions("dns.*".parse().unwrap())
                .allowlist("10.0.0.0/8".parse().unwrap()),
        )
        .unwrap();
    let disabled = tokens
        .issue(
            &alice,
            NewToken::new("off".parse().unwrap()).permissions("dns.*".parse().unwrap()),
        )
        .unwrap();
    tokens
        .set_status(&alice, [disabled.token.id], Status::Disabled)
        .unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(api_tokens_axum_example::serve(
        listener,
        tokens.clone(),
        None,
        std::future::pending(),
    ));

    let secret = dns.secret.expose();
    let (status, body) = get(addr, "/zones", Some(secret)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("example.com"));
    let (status, body) = get(addr, "/whoami", Some(secret)).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""user":"alice""#), "{body}");

    let (status, body) = get(addr, "/kill-account", Some(secret)).await;
    assert_eq!(status, 403, "a permission the token lacks");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"code": "missing_permission",
                           "message": "No permissions for this operation."}),
        "the body is the public denial as the crate serializes it"
    );

    let (status, _) = get(addr, "/zones", None).await;
    assert_eq!(status, 401, "no token");
    let (status, body) = get(addr, "/zones", Some("tok_not-a-real-token")).await;
    assert_eq!(status, 401, "garbage");
    assert!(body.contains("Not authorized."));
    let (status, body_disabled) = get(addr, "/zones", Some(disabled.secret.expose())).await;
    assert_eq!(status, 401, "disabled");
    assert_eq!(
        body_disabled, body,
        "a disabled token looks like an unknown one"
    );

    let (status, body) = get(addr, "/zones", Some(remote.secret.expose())).await;
    assert_eq!(status, 403, "127.0.0.1 is outside the token's allowlist");
    assert!(body.contains("Not allowed from this address."), "{body}");

    // The self-service API: alice's own tokens, never a secret.
    let (status, body) = get(addr, "/api/tokens", Some(secret)).await;
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 3);
    assert!(!body.contains(secret));

    // Last use records the real peer address.
    let used = tokens.get(&alice, dns.token.id).unwrap().last_use.unwrap();
    assert_eq!(used.ip, Some("127.0.0.1".parse().unwrap()));
    server.abort();
}
