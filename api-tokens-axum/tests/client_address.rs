//! Item 3 over real HTTP on 127.0.0.1: the client address from the connection by default;
//! forwarding headers only from trusted proxies, walked from the right; spoofs ignored; unknown
//! addresses fail closed. Every test connects from 127.0.0.1, so "a trusted proxy" is a layer
//! that trusts 127.0.0.0/8 and "an untrusted peer" one that trusts only 10.0.0.0/8.

use std::net::IpAddr;

use crate::support::{Logs, raw, send, serve, serve_without_peer};
use api_tokens::{Actor, NewToken, TokenId, Tokens, UserId};
use api_tokens_axum::{AuthLayer, Authenticated, ClientAddress};
use axum::Router;
use axum::routing::get;

struct Fixture {
    tokens: Tokens,
    alice: Actor,
}

impl Fixture {
    fn new() -> Self {
        Self {
            tokens: Tokens::in_memory(),
            alice: Actor::user(UserId::new("alice").unwrap()),
        }
    }

    /// A token usable only from `allowlist` ("" for anywhere).
    fn token(&self, name: &str, allowlist: &str) -> (TokenId, String) {
        let issued = self
            .tokens
            .issue(
                &self.alice,
                NewToken::new(name.parse().unwrap())
                    .permissions("*".parse().unwrap())
                    .allowlist(allowlist.parse().unwrap()),
            )
            .unwrap();
        (issued.token.id, issued.secret.expose().to_owned())
    }

    fn last_ip(&self, id: TokenId) -> Option<IpAddr> {
        self.tokens
            .get(&self.alice, id)
            .unwrap()
            .last_use
            .and_then(|u| u.ip)
    }
}

fn app(layer: AuthLayer) -> Router {
    Router::new()
        .route(
            "/",
            get(|Authenticated(g): Authenticated| async move { g.name.to_string() }),
        )
        .layer(layer)
}

/// GET / with the token and extra headers; the status.
async fn status(addr: std::net::SocketAddr, secret: &str, headers: &[(&str, &str)]) -> u16 {
    let auth = format!("Bearer {secret}");
    let mut all: Vec<(&str, &[u8])> = vec![("Authorization", auth.as_bytes())];
    all.extend(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
    send(addr, &raw("GET", "/", &all, None)).await.status
}

#[tokio::test]
async fn by_default_the_connection_decides_and_headers_are_never_read() {
    let f = Fixture::new();
    let (local, local_secret) = f.token("local", "127.0.0.1");
    let (_, office) = f.token("office", "10.0.0.0/8");
    let server = serve(app(AuthLayer::new(f.tokens.clone()))).await;
    assert_eq!(status(server.addr, &local_secret, &[]).await, 200);
    assert_eq!(f.last_ip(local), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(status(server.addr, &office, &[]).await, 403);
    for spoof in [
        ("X-Forwarded-For", "10.1.2.3"),
        ("Forwarded", "for=10.1.2.3"),
        ("X-Real-IP", "10.1.2.3"),
    ] {
        assert_eq!(
            status(server.addr, &office, &[spoof]).await,
            403,
            "{spoof:?}"
        );
    }
}

#[tokio::test]
async fn a_spoofed_header_from_an_untrusted_peer_is_ignored() {
    let f = Fixture::new();
    let (_, office) = f.token("office", "10.0.0.0/8");
    let (local, local_secret) = f.token("local", "127.0.0.1");
    let proxies = ClientAddress::behind_proxies("10.0.0.0/8".parse().unwrap())
        .with_x_forwarded_for(true)
        .with_forwarded(true);
    let server = serve(app(
        AuthLayer::new(f.tokens.clone()).with_client_address(proxies)
    ))
    .await;
    assert_eq!(
        status(server.addr, &office, &[("X-Forwarded-For", "10.1.2.3")]).await,
        403
    );
    assert_eq!(
        status(server.addr, &office, &[("Forwarded", "for=10.1.2.3")]).await,
        403
    );
    assert_eq!(
        status(
            server.addr,
            &local_secret,
            &[("X-Forwarded-For", "10.1.2.3")]
        )
        .await,
        200
    );
    assert_eq!(f.last_ip(local), Some("127.0.0.1".parse().unwrap()));
}

#[tokio::test]
async fn behind_a_trusted_proxy_x_forwarded_for_is_walked_from_the_right() {
    let f = Fixture::new();
    let (office_id, office) = f.token("office", "10.0.0.0/8");
    let (_, local) = f.token("local", "127.0.0.1");
    let (open_id, open) = f.token("open", "");
    let proxies = ClientAddress::behind_proxies("127.0.0.0/8, 172.16.0.0/12".parse().unwrap())
        .with_x_forwarded_for(true);
    let server = serve(app(
        AuthLayer::new(f.tokens.clone()).with_client_address(proxies)
    ))
    .await;
    let xff = |v| [("X-Forwarded-For", v)];

    // The proxy names the client: the client, not the proxy, is checked and recorded.
    assert_eq!(status(server.addr, &office, &xff("10.1.2.3")).await, 200);
    assert_eq!(f.last_ip(office_id), Some("10.1.2.3".parse().unwrap()));
    assert_eq!(status(server.addr, &local, &xff("10.1.2.3")).await, 403);
    // Through two trusted proxies.
    assert_eq!(
        status(server.addr, &office, &xff("10.1.2.3, 172.16.0.5")).await,
        200
    );
    // A client that prepends a spoofed address gains nothing: the rightmost untrusted counts.
    assert_eq!(
        status(server.addr, &office, &xff("10.1.2.3, 192.0.2.1")).await,
        403
    );
    // Several header lines are one list.
    let two = [
        ("X-Forwarded-For", "192.0.2.1"),
        ("X-Forwarded-For", "10.1.2.3"),
    ];
    assert_eq!(status(server.addr, &office, &two).await, 200);
    // Junk where the client should be: unknown, so allowlists refuse; open tokens still pass
    // and no address is recorded.
    assert_eq!(
        status(server.addr, &office, &xff("10.1.2.3, unknown")).await,
        403
    );
    assert_eq!(
        status(server.addr, &open, &xff("10.1.2.3, not-an-ip")).await,
        200
    );
    assert_eq!(f.last_ip(open_id), None);
    // No header from the proxy: the proxy itself is the client.
    assert_eq!(status(server.addr, &local, &[]).await, 200);
    // The header it was not told to read.
    assert_eq!(
        status(server.addr, &office, &[("Forwarded", "for=10.1.2.3")]).await,
        403
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_forwarded_is_read_and_two_headers_must_agree() {
    let f = Fixture::new();
    let (_, office) = f.token("office", "10.0.0.0/8");
    let (v6_id, v6) = f.token("v6", "2001:db8::/32");
    let trusted = || "127.0.0.0/8".parse().unwrap();
    let server = serve(app(AuthLayer::new(f.tokens.clone()).with_client_address(
        ClientAddress::behind_proxies(trusted()).with_forwarded(true),
    )))
    .await;
    let fwd = |v| [("Forwarded", v)];
    assert_eq!(
        status(server.addr, &office, &fwd("for=10.1.2.3;proto=https")).await,
        200
    );
    assert_eq!(
        status(server.addr, &office, &fwd("for=\"10.1.2.3:5000\"")).await,
        200
    );
    assert_eq!(
        status(server.addr, &v6, &fwd("For=\"[2001:db8::7]:443\"")).await,
        200
    );
    assert_eq!(f.last_ip(v6_id), Some("2001:db8::7".parse().unwrap()));
    assert_eq!(
        status(server.addr, &office, &fwd("for=10.1.2.3, for=192.0.2.1")).await,
        403
    );
    assert_eq!(status(server.addr, &office, &fwd("for=_hidden")).await, 403);
    assert_eq!(
        status(server.addr, &office, &[("X-Forwarded-For", "10.1.2.3")]).await,
        403
    );

    let both = serve(app(AuthLayer::new(f.tokens.clone()).with_client_address(
        ClientAddress::behind_proxies(trusted())
            .with_forwarded(true)
            .with_x_forwarded_for(true),
    )))
    .await;
    let agree = [
        ("Forwarded", "for=10.1.2.3"),
        ("X-Forwarded-For", "10.1.2.3"),
    ];
    assert_eq!(status(both.addr, &office, &agree).await, 200);
    let disagree = [
        ("Forwarded", "for=10.1.2.3"),
        ("X-Forwarded-For", "192.0.2.1"),
    ];
    assert_eq!(status(both.addr, &office, &disagree).await, 403);
    assert_eq!(
        status(both.addr, &office, &[("X-Forwarded-For", "10.1.2.3")]).await,
        200
    );
}

#[tokio::test]
async fn without_the_peer_address_allowlists_fail_closed() {
    let (logs, _guard) = Logs::capture();
    let f = Fixture::new();
    let (_, local) = f.token("local", "127.0.0.1");
    let (_, open) = f.token("open", "");
    let server = serve_without_peer(app(AuthLayer::new(f.tokens.clone()))).await;
    assert_eq!(status(server.addr, &local, &[]).await, 403);
    assert_eq!(status(server.addr, &open, &[]).await, 200);
    assert_eq!(status(server.addr, &local, &[]).await, 403);
    let warnings = logs
        .lines()
        .into_iter()
        .filter(|l| l.contains("no peer address"))
        .count();
    assert_eq!(warnings, 1, "warned once: {}", logs.all());
}

/// Review 3, #1: the client sent `Forwarded: for=1.2.3.4;x="` and the trusted proxy appended its
/// own element to the same field. The unclosed quote must not swallow the proxy's element and
/// hand the client the address it chose: the element is malformed, so the address is unknown.
#[test]
fn forwarded_with_an_unclosed_quote_does_not_let_the_client_choose_its_address() {
    let proxies = ClientAddress::behind_proxies("10.0.0.0/8".parse().unwrap()).with_forwarded(true);
    let peer = Some("10.0.0.1".parse().unwrap());
    for value in [
        r#"for=1.2.3.4;x=", for=6.6.6.6"#,
        r#"for=1.2.3.4;x=", for="[2001:db8::66]:4711""#,
        r#"for=1.2.3.4;x="abc\"#,
        // A malformed element where the walk reads: unknown.
        r#"for=6.6.6.6, for=1.2.3.4;x"#,
        r#"for=6.6.6.6, for=1.2.3.4;x="a"b"#,
        r#"for=6.6.6.6, for=1.2.3.4 by=x"#,
    ] {
        let mut h = axum::http::HeaderMap::new();
        h.insert("forwarded", value.parse().unwrap());
        assert_eq!(proxies.resolve(peer, &h), None, "{value}");
    }
    // A malformed element left of the client is never read (as junk in X-Forwarded-For).
    let mut h = axum::http::HeaderMap::new();
    h.insert(
        "forwarded",
        r#"for=1.2.3.4;x, for=6.6.6.6"#.parse().unwrap(),
    );
    assert_eq!(proxies.resolve(peer, &h), Some("6.6.6.6".parse().unwrap()));
    // Quoted `;` and `,` inside another parameter are that parameter's, not separators.
    let mut h = axum::http::HeaderMap::new();
    h.insert(
        "forwarded",
        r#"for=1.2.3.4;x="a;for=9.9.9.9, for=8.8.8.8", for=6.6.6.6"#
            .parse()
            .unwrap(),
    );
    assert_eq!(proxies.resolve(peer, &h), Some("6.6.6.6".parse().unwrap()));
}

#[tokio::test]
async fn a_forwarded_spoof_with_an_unclosed_quote_does_not_pass_an_ip_allowlist() {
    let f = Fixture::new();
    let (_, office) = f.token("office-only", "1.2.3.4/32");
    let server = serve(app(AuthLayer::new(f.tokens.clone()).with_client_address(
        ClientAddress::behind_proxies("127.0.0.0/8".parse().unwrap()).with_forwarded(true),
    )))
    .await;
    // 127.0.0.1 plays the trusted proxy, which appended the real client 6.6.6.6.
    let spoof = [("Forwarded", r#"for=1.2.3.4;x=", for=6.6.6.6"#)];
    assert_eq!(status(server.addr, &office, &spoof).await, 403);
    // The well-formed header from the client's address still passes.
    let honest = [("Forwarded", "for=1.2.3.4;proto=https")];
    assert_eq!(status(server.addr, &office, &honest).await, 200);
}
