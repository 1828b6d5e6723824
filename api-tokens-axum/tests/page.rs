//! The API tokens page over real HTTP on 127.0.0.1: the security rules a browser test cannot
//! see (statuses, headers, logs), each with the request a hostile page or user would send.

#[path = "../examples/page/demo.rs"]
#[allow(dead_code)]
mod demo;
mod support;

use std::net::SocketAddr;

use api_tokens::{
    Actor, MemoryStore, NewToken, Query, RequestContext, Status, TokenId, Tokens, UserId,
};
use api_tokens_axum::Refusal;
use api_tokens_axum::manage::actor_from_fn;
use api_tokens_axum::page::{SessionLimits, TokensPage};
use axum::Router;
use support::{Logs, Reply, Server, send, serve};

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

/// A browser's worth of state: who is signed in (the demo's cookie) and the page's session.
struct Client {
    addr: SocketAddr,
    user: &'static str,
    session: Option<String>,
}

impl Client {
    fn new(addr: SocketAddr, user: &'static str) -> Self {
        Self {
            addr,
            user,
            session: None,
        }
    }

    fn cookie(&self) -> String {
        match &self.session {
            Some(s) => format!("demo_user={}; api_tokens_page={s}", self.user),
            None => format!("demo_user={}", self.user),
        }
    }

    fn keep(&mut self, reply: &Reply) {
        if let Some(c) = reply.header("set-cookie")
            && let Some(v) = c.strip_prefix("api_tokens_page=")
        {
            self.session = Some(v.split(';').next().unwrap().to_owned());
        }
    }

    async fn get(&mut self, path: &str) -> Reply {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {}\r\n\r\n",
            self.cookie()
        );
        let reply = send(self.addr, request.as_bytes()).await;
        self.keep(&reply);
        reply
    }

    async fn post_as(&mut self, path: &str, content_type: &str, body: &str) -> Reply {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            self.cookie(),
            body.len()
        );
        send(self.addr, request.as_bytes()).await
    }

    async fn post(&mut self, path: &str, body: &str) -> Reply {
        self.post_as(path, "application/x-www-form-urlencoded", body)
            .await
    }

    /// The CSRF token of the caller's session (opening it with a look at the list).
    async fn csrf(&mut self) -> String {
        let page = self.get("/tokens").await;
        assert_eq!(page.status, 200, "{}", page.body);
        value_of(&page.body, "csrf")
    }
}

/// The `value` of the first input named `name`.
fn value_of(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The secret on a page that shows one.
fn secret_of(html: &str) -> String {
    let field = html
        .find("id=\"auth-token\"")
        .expect("a secret on the page");
    let at = field + html[field..].find("value=\"").unwrap() + 7;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

/// Percent-encodes a form value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Demo {
    tokens: Tokens<MemoryStore>,
    server: Server,
}

impl Demo {
    async fn start() -> Self {
        let tokens = demo::tokens();
        demo::seed(&tokens).unwrap();
        let server = serve(demo::app(tokens.clone())).await;
        Self { tokens, server }
    }

    fn id(&self, name: &str) -> TokenId {
        let admin = Actor::admin(user("alice"));
        self.tokens
            .list(&admin, &Query::new().names([name.parse().unwrap()]))
            .unwrap()
            .first()
            .unwrap()
            .id
    }

    fn all(&self) -> Vec<api_tokens::Token> {
        self.tokens
            .list(&Actor::admin(user("alice")), &Query::new())
            .unwrap()
    }
}

#[tokio::test]
async fn every_state_changing_form_needs_the_sessions_csrf_token() {
    let d = Demo::start().await;
    let deploy = d.id("deploy").get();
    let mut alice = Client::new(d.server.addr, "alice");
    let csrf = alice.csrf().await;
    let mut bob = Client::new(d.server.addr, "bob");
    let bobs = bob.csrf().await;
    let before = d.all();
    let forms = [
        ("/tokens/filter".to_owned(), "name=deploy".to_owned()),
        (
            "/tokens/mass".to_owned(),
            format!("action=disable&ids={deploy}&confirmed=1"),
        ),
        (
            "/tokens/toggle".to_owned(),
            format!("toggle={deploy}:disabled"),
        ),
        (
            "/tokens/new".to_owned(),
            "name=forged&owner=bob&enabled=on".to_owned(),
        ),
        (
            format!("/tokens/{deploy}"),
            "name=renamed&enabled=on".to_owned(),
        ),
        (
            format!("/tokens/{deploy}/regenerate"),
            "confirmed=1".to_owned(),
        ),
    ];
    for (path, body) in &forms {
        for (why, token) in [
            ("no token", String::new()),
            ("an empty token", "&csrf=".to_owned()),
            ("a wrong token", format!("&csrf={}", "ab".repeat(32))),
            ("another user's token", format!("&csrf={bobs}")),
            ("a prefix of the token", format!("&csrf={}", &csrf[..63])),
        ] {
            let reply = alice.post(path, &format!("{body}{token}")).await;
            assert_eq!(reply.status, 403, "{path} with {why}: {}", reply.body);
            assert!(reply.body.contains("CSRF token"), "{path}: {}", reply.body);
        }
        // The right token without the session cookie: refused too.
        let mut stranger = Client::new(d.server.addr, "alice");
        let reply = stranger.post(path, &format!("{body}&csrf={csrf}")).await;
        assert_eq!(reply.status, 403, "{path} without the session");
    }
    assert_eq!(d.all(), before, "nothing changed");

    // The same forms with the token go through (the refusals above were the token's).
    for (path, body) in &forms {
        let reply = alice.post(path, &format!("{body}&csrf={csrf}")).await;
        assert_eq!(reply.status, 303, "{path}: {}", reply.body);
    }
    assert_ne!(d.all(), before);
}

#[tokio::test]
async fn the_secret_is_shown_once_never_in_a_url_a_log_or_a_later_page() {
    let (logs, _guard) = Logs::capture();
    let d = Demo::start().await;
    let mut alice = Client::new(d.server.addr, "alice");
    let csrf = alice.csrf().await;
    let reply = alice
        .post(
            "/tokens/new",
            &format!("csrf={csrf}&name=ci&owner=bob&enabled=on&description=x"),
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let id = d.id("ci").get();
    let location = reply.header("location").unwrap().to_owned();
    assert_eq!(location, format!("/tokens/{id}/secret"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    // A HEAD (a link checker, a prefetch) does not spend it.
    let request = format!(
        "HEAD {location} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {}\r\n\r\n",
        alice.cookie()
    );
    send(d.server.addr, request.as_bytes()).await;
    let shown = alice.get(&location).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    assert_eq!(shown.header("referrer-policy"), Some("no-referrer"));
    let secret = secret_of(&shown.body);
    assert!(
        d.tokens
            .authenticate(&secret, &RequestContext::unknown_address())
            .is_ok(),
        "the shown secret works"
    );

    // Gone on the next look, for this session and for any other.
    let again = alice.get(&location).await;
    assert_eq!(again.status, 410);
    assert!(!again.body.contains(&secret));
    let mut bob = Client::new(d.server.addr, "bob");
    assert!(!bob.get(&location).await.body.contains(&secret));
    for path in ["/tokens".to_owned(), format!("/tokens/{id}")] {
        assert!(!alice.get(&path).await.body.contains(&secret), "{path}");
    }

    // Regenerating: the same path, the same rules.
    let reply = alice
        .post(
            &format!("/tokens/{id}/regenerate"),
            &format!("csrf={csrf}&confirmed=1"),
        )
        .await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location").unwrap(), location);
    let shown = alice.get(&location).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("API token regenerated"));
    assert!(!shown.body.contains(&secret), "the old secret is not shown");
    assert!(
        d.tokens
            .authenticate(&secret, &RequestContext::unknown_address())
            .is_err(),
        "the old secret stopped working"
    );
    let fresh = &secret_of(&shown.body);

    let logged = logs.all();
    assert!(logged.contains("API token added (page)"), "{logged}");
    assert!(logged.contains("API token regenerated (page)"), "{logged}");
    for s in [secret.as_str(), fresh, csrf.as_str()] {
        assert!(!logged.contains(s), "a secret or CSRF token was logged");
    }
}

#[tokio::test]
async fn every_user_string_is_escaped_and_pages_forbid_inline_script() {
    let d = Demo::start().await;
    let alice_actor = Actor::admin(user("alice"));
    let name = "\"><script>alert(1)</script>";
    let description = "</textarea><script>alert(2)</script>&amp;";
    let issued = d
        .tokens
        .issue(
            &alice_actor,
            NewToken::new(name.parse().unwrap())
                .owner(user("bob"))
                .description(description),
        )
        .unwrap();
    let id = issued.token.id.get();
    drop(issued);
    let mut alice = Client::new(d.server.addr, "alice");
    let csrf = alice.csrf().await;
    // A filter with markup in it, echoed back in the filter's field.
    let reply = alice
        .post(
            "/tokens/filter",
            &format!("csrf={csrf}&name={}", enc("\"><script>")),
        )
        .await;
    assert_eq!(reply.status, 303);
    alice
        .post("/tokens/filter", &format!("csrf={csrf}&reset=1"))
        .await;
    alice
        .post(
            "/tokens/filter",
            &format!("csrf={csrf}&name={}", enc("script")),
        )
        .await;
    for path in ["/tokens".to_owned(), format!("/tokens/{id}")] {
        let page = alice.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("</textarea><script>"), "{path}");
        assert!(
            page.body
                .contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
        let csp = page.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
    }
    let page = alice.get(&format!("/tokens/{id}")).await;
    assert!(
        page.body
            .contains("&lt;/textarea&gt;&lt;script&gt;alert(2)&lt;/script&gt;&amp;amp;")
    );
    // A filter with markup: written back escaped.
    alice
        .post(
            "/tokens/filter",
            &format!("csrf={csrf}&name={}", enc("\"><b>x")),
        )
        .await;
    let page = alice.get("/tokens").await;
    assert!(
        page.body.contains("value=\"&quot;&gt;&lt;b&gt;x\""),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn the_filter_is_kept_for_the_session_and_refused_values_are_shown_beside_their_field() {
    let d = Demo::start().await;
    let mut alice = Client::new(d.server.addr, "alice");
    let csrf = alice.csrf().await;
    let rows = |body: &str| body.matches("<tr id=\"token-").count();
    assert_eq!(rows(&alice.get("/tokens").await.body), 6);
    let reply = alice
        .post(
            "/tokens/filter",
            &format!("csrf={csrf}&name=&owners=bob&creators=alice&status=enabled&expires_soon=on&expires_days=7"),
        )
        .await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), Some("/tokens"));
    let page = alice.get("/tokens").await;
    assert_eq!(
        rows(&page.body),
        1,
        "bob's enabled token expiring within 7 days"
    );
    assert!(page.body.contains(">deploy</a>"));
    assert!(page.body.contains("Filter (active)"));
    // Another session (another browser) has its own.
    let mut other = Client::new(d.server.addr, "alice");
    assert_eq!(rows(&other.get("/tokens").await.body), 6);
    // Disabled only.
    alice
        .post("/tokens/filter", &format!("csrf={csrf}&status=disabled"))
        .await;
    let page = alice.get("/tokens").await;
    assert_eq!(rows(&page.body), 1);
    assert!(page.body.contains(">old laptop</a>"));

    // Refused values: 422, the message beside its field, the saved filter unchanged.
    for (body, field) in [
        ("expires_soon=on&expires_days=soon", "expires_days"),
        ("expires_soon=on&expires_days=99999999", "expires_days"),
        ("status=maybe", "status"),
        ("owners=a%07b", "owners"),
        (&*format!("name={}", "x".repeat(300)), "name"),
    ] {
        let reply = alice
            .post("/tokens/filter", &format!("csrf={csrf}&{body}"))
            .await;
        assert_eq!(reply.status, 422, "{body}");
        assert!(
            reply.body.contains(&format!("id=\"{field}-error\"")),
            "{body}: {}",
            reply.body
        );
    }
    let page = alice.get("/tokens").await;
    assert_eq!(rows(&page.body), 1, "the saved filter did not change");

    // Bob's filter cannot reach other users' tokens: he sees his own whatever he sends.
    let mut bob = Client::new(d.server.addr, "bob");
    let bobs = bob.csrf().await;
    bob.post("/tokens/filter", &format!("csrf={bobs}&owners=carol"))
        .await;
    let page = bob.get("/tokens").await;
    assert_eq!(rows(&page.body), 2, "{}", page.body);
    assert!(!page.body.contains("carol"));
}

#[tokio::test]
async fn mass_actions_ask_first_and_are_all_or_nothing() {
    let d = Demo::start().await;
    let (grafana, deploy, monitoring) = (d.id("grafana"), d.id("deploy"), d.id("monitoring"));
    let mut alice = Client::new(d.server.addr, "alice");
    let csrf = alice.csrf().await;
    // Without `confirmed=1` (a browser without JavaScript): a confirmation page, nothing done.
    let body = format!(
        "csrf={csrf}&action=delete&ids={}&ids={}&confirmed=0&sort=status&order=desc&page=1",
        grafana.get(),
        deploy.get()
    );
    let ask = alice.post("/tokens/mass", &body).await;
    assert_eq!(ask.status, 200);
    assert!(
        ask.body.contains("Delete 2 selected API tokens?"),
        "{}",
        ask.body
    );
    assert!(ask.body.contains("name=\"confirmed\" value=\"1\""));
    assert_eq!(d.all().len(), 6);
    let done = alice
        .post("/tokens/mass", &body.replace("confirmed=0", "confirmed=1"))
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.header("location"),
        Some("/tokens?sort=status&order=desc&page=1")
    );
    assert_eq!(d.all().len(), 4);
    let page = alice.get("/tokens").await;
    assert!(page.body.contains("API tokens deleted"));

    // Bob disabling his token and alice's: refused as a whole, the message names the token.
    let mut bob = Client::new(d.server.addr, "bob");
    let bobs = bob.csrf().await;
    let carol_reports = d.id("reports");
    let reply = bob
        .post(
            "/tokens/mass",
            &format!(
                "csrf={bobs}&action=disable&confirmed=1&ids={}&ids={}",
                monitoring.get(),
                carol_reports.get()
            ),
        )
        .await;
    assert_eq!(reply.status, 303);
    let page = bob.get("/tokens").await;
    assert!(page.body.contains("notice bad"), "{}", page.body);
    assert!(
        page.body.contains(&format!("Token {}", monitoring.get())),
        "{}",
        page.body
    );
    assert!(
        d.all()
            .iter()
            .all(|t| t.status == Status::Enabled || t.name.as_str() == "old laptop")
    );

    // Nothing selected.
    let reply = alice
        .post(
            "/tokens/mass",
            &format!("csrf={csrf}&action=enable&confirmed=1"),
        )
        .await;
    assert_eq!(reply.status, 303);
    assert!(
        alice
            .get("/tokens")
            .await
            .body
            .contains("Select at least one API token.")
    );
}

#[tokio::test]
async fn bad_requests_are_refused_not_guessed() {
    let d = Demo::start().await;
    let mut alice = Client::new(d.server.addr, "alice");
    let csrf = alice.csrf().await;
    for (path, status) in [
        ("/tokens?sort=size", 400),
        ("/tokens?order=up", 400),
        ("/tokens?page=0", 400),
        ("/tokens?page=%ff", 400),
        ("/tokens/abc", 404),
        ("/tokens/999", 404),
        ("/tokens/999/secret", 410),
        ("/tokens?sort=created_at&order=desc&page=99", 200),
    ] {
        let reply = alice.get(path).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
    }
    let reply = alice
        .post_as(
            "/tokens/new",
            "application/json",
            &format!("{{\"csrf\": \"{csrf}\"}}"),
        )
        .await;
    assert_eq!(reply.status, 415);
    let huge = format!("csrf={csrf}&description={}", "x".repeat(70 * 1024));
    assert_eq!(alice.post("/tokens/new", &huge).await.status, 413);
    assert_eq!(
        alice
            .post(
                "/tokens/mass",
                &format!("csrf={csrf}&action=explode&ids=1&confirmed=1")
            )
            .await
            .status,
        400
    );
    assert_eq!(
        alice
            .post("/tokens/toggle", &format!("csrf={csrf}&toggle=1:maybe"))
            .await
            .status,
        400
    );
    // Refused values of the create form: 422, each beside its field, nothing created.
    let reply = alice
        .post(
            "/tokens/new",
            &format!(
                "csrf={csrf}&name=&owner={}&set_expiry=on&expires_at=tomorrow&permissions={}&allowlist=10.0.0.1/8",
                enc("a\u{7}b"),
                enc("dns:*")
            ),
        )
        .await;
    assert_eq!(reply.status, 422);
    for field in ["name", "owner", "expires_at", "permissions", "allowlist"] {
        assert!(
            reply.body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            reply.body
        );
    }
    // A name taken for that user: the core's refusal, beside the name.
    let reply = alice
        .post("/tokens/new", &format!("csrf={csrf}&name=deploy&owner=bob"))
        .await;
    assert_eq!(reply.status, 409);
    assert!(reply.body.contains("id=\"name-error\""), "{}", reply.body);
    assert_eq!(d.all().len(), 6);

    // Nobody signed in: the host's refusal, as a page.
    let reply = send(
        d.server.addr,
        b"GET /tokens HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("Not signed in"));
}

/// Every page request is checked in one order: the caller, then (for a form) the form and
/// its CSRF token, then the token the path names, whose refusal is the caller's own "Not
/// found" page.
#[tokio::test]
async fn a_page_checks_the_caller_then_the_form_then_the_path() {
    let d = Demo::start().await;
    let mut alice = Client::new(d.server.addr, "alice");
    let csrf = alice.csrf().await;
    let nobody = |method: &str| {
        format!(
            "{method} /tokens/abc HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n"
        )
    };
    for method in ["GET", "POST"] {
        let reply = send(d.server.addr, nobody(method).as_bytes()).await;
        assert_eq!(reply.status, 401, "{method}: {}", reply.body);
        assert!(reply.body.contains("Not signed in"), "{method}");
    }
    for path in ["/tokens/abc", "/tokens/abc/regenerate"] {
        let reply = alice.post(path, "confirmed=1").await;
        assert_eq!(reply.status, 403, "{path}: the form's token first");
        assert!(reply.body.contains("CSRF token"), "{path}: {}", reply.body);
        let reply = alice.post(path, &format!("confirmed=1&csrf={csrf}")).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert!(
            reply.body.contains("No such API token.")
                && reply.body.contains("Signed in as <b>alice</b>"),
            "{path}: {}",
            reply.body
        );
    }
    for path in ["/tokens/abc", "/tokens/abc/secret", "/tokens/-1"] {
        let reply = alice.get(path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert!(reply.body.contains("Signed in as <b>alice</b>"), "{path}");
    }
}

#[tokio::test]
async fn sessions_are_bounded_and_cookies_are_strict() {
    let tokens = demo::tokens();
    let mut limits = SessionLimits::default();
    limits.max_sessions = 2;
    let page = TokensPage::new(tokens.clone())
        .with_session_limits(limits)
        .with_secure_cookie(true)
        .with_actors(actor_from_fn(|parts| {
            let _ = parts
                .headers
                .get("cookie")
                .ok_or(Refusal::no_credentials())?;
            Ok(Actor::admin(UserId::new("alice").unwrap()))
        }));
    let server = serve(Router::new().nest("/tokens", page.router())).await;
    let mut first = Client::new(server.addr, "alice");
    let csrf = first.csrf().await;
    let first_cookie = first.get("/tokens").await;
    assert!(
        first_cookie.header("set-cookie").is_none(),
        "an open session keeps its cookie"
    );
    let reply = send(
        server.addr,
        b"GET /tokens HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: x=1\r\n\r\n",
    )
    .await;
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        cookie.contains("; Path=/tokens; HttpOnly; SameSite=Strict; Secure"),
        "{cookie}"
    );
    assert_eq!(
        first
            .post("/tokens/filter", &format!("csrf={csrf}&name=a"))
            .await
            .status,
        303
    );
    // Two more sessions: the first (the least recently used) is closed.
    for _ in 0..2 {
        Client::new(server.addr, "alice").csrf().await;
    }
    assert_eq!(
        first
            .post("/tokens/filter", &format!("csrf={csrf}&name=b"))
            .await
            .status,
        403,
        "the evicted session's CSRF token no longer works"
    );
}

/// The rows' token ids, in order.
fn row_ids(html: &str) -> Vec<u64> {
    html.split("<tr id=\"token-")
        .skip(1)
        .map(|r| r[..r.find('"').unwrap()].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn every_column_sorts_both_ways_and_pages_split_the_list() {
    let tokens = demo::tokens();
    demo::seed(&tokens).unwrap();
    let admin = Actor::admin(user("alice"));
    // Last uses, so that the column has an order: "grafana" used before "deploy".
    for (name, at) in [("grafana", 10), ("deploy", 20)] {
        let secret = tokens
            .generate(
                &admin,
                [tokens
                    .list(&admin, &Query::new().names([name.parse().unwrap()]))
                    .unwrap()[0]
                    .id],
            )
            .unwrap()
            .pop()
            .unwrap()
            .1;
        tokens
            .authenticate_at(
                secret.expose(),
                &RequestContext::unknown_address(),
                tokens.now() + api_tokens::time::Duration::seconds(at),
            )
            .unwrap();
    }
    let page = TokensPage::new(tokens.clone())
        .with_page_size(4)
        .with_actors(actor_from_fn(|_| {
            Ok(Actor::admin(UserId::new("alice").unwrap()))
        }));
    let server = serve(Router::new().nest("/tokens", page.router())).await;
    let mut alice = Client::new(server.addr, "alice");
    let all = tokens.list(&admin, &Query::new()).unwrap();
    let by_id = |id: u64| all.iter().find(|t| t.id.get() == id).unwrap();
    type Key = Box<dyn Fn(&api_tokens::Token) -> (i128, String)>;
    let never_last = |e: api_tokens::Expiry| e.unix().map_or(i128::MAX, i128::from);
    let columns: Vec<(&str, Key)> = vec![
        ("name", Box::new(|t| (0, t.name.as_str().to_owned()))),
        ("user", Box::new(|t| (0, t.owner.as_str().to_owned()))),
        (
            "expires_at",
            Box::new(move |t| (never_last(t.expiry), String::new())),
        ),
        (
            "created_at",
            Box::new(|t| (t.created_at.unix_timestamp_nanos(), String::new())),
        ),
        ("creator", Box::new(|t| (0, t.creator.as_str().to_owned()))),
        (
            "last_used_at",
            Box::new(|t| {
                (
                    t.last_use
                        .map_or(i128::MIN, |u| u.at.unix_timestamp_nanos()),
                    String::new(),
                )
            }),
        ),
        (
            "status",
            Box::new(|t| (i128::from(t.status != Status::Enabled), String::new())),
        ),
    ];
    for (column, key) in &columns {
        for order in ["asc", "desc"] {
            let mut ids = Vec::new();
            for page in 1..=2 {
                let reply = alice
                    .get(&format!("/tokens?sort={column}&order={order}&page={page}"))
                    .await;
                assert_eq!(reply.status, 200, "{column} {order}");
                assert!(reply.body.contains(&format!("id=\"sort-{column}\"")));
                ids.extend(row_ids(&reply.body));
            }
            assert_eq!(
                ids.len(),
                all.len(),
                "{column} {order}: two pages hold every token once"
            );
            let keys: Vec<_> = ids.iter().map(|id| key(by_id(*id))).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            if order == "desc" {
                sorted.reverse();
            }
            assert_eq!(keys, sorted, "{column} {order}: {ids:?}");
        }
    }
    // The used tokens sort after the unused ones, in the order they were used.
    let reply = alice.get("/tokens?sort=last_used_at&order=desc").await;
    let ids = row_ids(&reply.body);
    let names: Vec<&str> = ids[..2].iter().map(|id| by_id(*id).name.as_str()).collect();
    assert_eq!(names, ["deploy", "grafana"]);

    // The pager: 4 a page, page 2 holds the rest, a page past the end shows the last.
    let first = alice.get("/tokens").await;
    assert!(
        first.body.contains("Displaying 1 to 4 of 6 found"),
        "{}",
        first.body
    );
    assert!(
        first
            .body
            .contains("<a href=\"/tokens?sort=name&amp;order=asc&amp;page=2\">2</a>")
    );
    let last = alice.get("/tokens?page=9").await;
    assert!(last.body.contains("Displaying 5 to 6 of 6 found"));
    assert_eq!(row_ids(&last.body).len(), 2);

    // More matches than one list reads: said, not silently cut.
    let page = TokensPage::new(tokens.clone())
        .with_max_rows(3)
        .with_actors(actor_from_fn(|_| {
            Ok(Actor::admin(UserId::new("alice").unwrap()))
        }));
    let server = serve(Router::new().nest("/tokens", page.router())).await;
    let reply = Client::new(server.addr, "alice").get("/tokens").await;
    assert_eq!(row_ids(&reply.body).len(), 3);
    assert!(reply.body.contains("of 3+ found") && reply.body.contains("narrow the filter"));
}

#[tokio::test]
async fn a_token_signed_in_on_the_page_cannot_create_beyond_itself() {
    // Behind the auth layer with a grant-derived actor, the page asks every operation with the
    // calling token's bounds, as the JSON router does: a token that expires in an hour and
    // works from 127.0.0.1 only cannot create one that never expires from anywhere.
    use api_tokens::permission;
    use api_tokens_axum::AuthLayer;
    use api_tokens_axum::manage::FromGrant;
    let tokens = Tokens::in_memory();
    let caller = tokens
        .issue(
            &Actor::user(user("alice")),
            NewToken::new("short".parse().unwrap())
                .permissions("tokens.manage".parse().unwrap())
                .expiry(api_tokens::Expiry::at(
                    tokens.now() + std::time::Duration::from_secs(3600),
                ))
                .allowlist("127.0.0.1/32".parse().unwrap()),
        )
        .unwrap();
    let app = Router::new()
        .nest(
            "/tokens",
            TokensPage::new(tokens.clone())
                .with_actors(FromGrant::new(permission!("tokens.manage")))
                .router(),
        )
        .layer(AuthLayer::new(tokens.clone()));
    let server = serve(app).await;
    let bearer = format!("Authorization: Bearer {}\r\n", caller.secret.expose());
    let form = send(
        server.addr,
        format!("GET /tokens/new HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{bearer}\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(form.status, 200, "{}", form.body);
    let session = form
        .header("set-cookie")
        .and_then(|c| c.strip_prefix("api_tokens_page="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("a page session");
    let body = format!(
        "csrf={}&name=forever&permissions=tokens.manage&enabled=1",
        value_of(&form.body, "csrf")
    );
    let reply = send(
        server.addr,
        format!(
            "POST /tokens/new HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{bearer}\
             Cookie: api_tokens_page={session}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let names: Vec<String> = tokens
        .list(&Actor::admin(user("admin")), &Query::new())
        .unwrap()
        .into_iter()
        .map(|t| t.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["short"], "nothing beyond the caller was created");
}
