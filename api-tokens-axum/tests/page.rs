//! The API tokens page over real HTTP on 127.0.0.1: the security rules a browser test cannot
//! see (statuses, headers, logs), each with the request a hostile page or user would send; and
//! its texts, every one of which a host can replace.

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
use api_tokens_axum::page::{ExpiryInput, Preset, SessionLimits, Texts, TokensPage};
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

/// A second language for the page (Latvian, the language of the seed's own Zabbix
/// documentation): every text of the table, and the refusals by code.
fn latvian() -> Texts {
    let table = [
        ("lang", "lv"),
        ("app", "API marķieri"),
        ("tab_title", "{page} — API marķieri"),
        ("signed_in_as", "Pieteicies kā {user}"),
        ("create", "Izveidot API marķieri"),
        ("filter", "Filtrs"),
        ("filter_active", "Filtrs (ieslēgts)"),
        ("filter_name", "Nosaukums"),
        ("filter_users", "Lietotāji"),
        ("filter_creators", "Izveidoja"),
        ("users_placeholder", "lietotāju ID, atdalīti ar komatu"),
        ("filter_expires", "Beidzas ātrāk nekā pēc"),
        ("filter_days", "dienām"),
        ("filter_status", "Statuss"),
        ("status_any", "Jebkurš"),
        ("enabled", "Iespējots"),
        ("disabled", "Atspējots"),
        ("revoked", "Atsaukts"),
        ("apply", "Lietot"),
        ("reset", "Atiestatīt"),
        ("col_name", "Nosaukums"),
        ("col_user", "Lietotājs"),
        ("col_expires", "Derīgs līdz"),
        ("col_created", "Izveidots"),
        ("col_creator", "Izveidoja lietotājs"),
        ("col_last_used", "Pēdējā piekļuve"),
        ("col_status", "Statuss"),
        ("select_all", "Atlasīt visus"),
        ("select_token", "Atlasīt {name}"),
        ("no_data", "Dati nav atrasti."),
        ("never", "Nekad"),
        ("expired", "Beidzies"),
        ("refused_here", "noraidīts: skatīt ziņojumu augstāk"),
        ("click_to_disable", "Noklikšķiniet, lai atspējotu"),
        ("click_to_enable", "Noklikšķiniet, lai iespējotu"),
        ("selected", "Atlasīti: {n}"),
        ("mass_enable", "Iespējot"),
        ("mass_disable", "Atspējot"),
        ("mass_delete", "Dzēst"),
        ("confirm_enable_one", "Iespējot atlasīto API marķieri?"),
        (
            "confirm_enable_many",
            "Iespējot atlasītos API marķierus ({n})?",
        ),
        ("confirm_disable_one", "Atspējot atlasīto API marķieri?"),
        (
            "confirm_disable_many",
            "Atspējot atlasītos API marķierus ({n})?",
        ),
        ("confirm_delete_one", "Dzēst atlasīto API marķieri?"),
        (
            "confirm_delete_many",
            "Dzēst atlasītos API marķierus ({n})?",
        ),
        ("count_one_page", "Parādīti {shown} no {total}"),
        ("count_pages", "Parādīti {first}–{last} no {total}"),
        ("pages", "Lapas"),
        (
            "capped",
            "Atbilst vairāk marķieru, nekā saraksts parāda: sašauriniet filtru.",
        ),
        ("new_token", "Jauns API marķieris"),
        ("token", "API marķieris"),
        ("label_name", "Nosaukums"),
        ("label_user", "Lietotājs"),
        ("label_description", "Apraksts"),
        (
            "label_set_expiry",
            "Iestatīt derīguma beigu datumu un laiku",
        ),
        ("label_expires_at", "Derīgs līdz (UTC)"),
        ("expires_placeholder", "GGGG-MM-DD hh:mm:ss"),
        ("calendar", "Kalendārs"),
        ("label_permissions", "Atļaujas"),
        (
            "permissions_placeholder",
            "dns.*, mail.send (* — visas lietotāja atļaujas)",
        ),
        ("label_allowlist", "Atļautās adreses"),
        (
            "allowlist_placeholder",
            "jebkura; vai 10.0.0.0/8, 2001:db8::/32",
        ),
        ("label_enabled", "Iespējots"),
        ("token_expired", "Šī marķiera derīgums ir beidzies."),
        ("add", "Pievienot"),
        ("update", "Atjaunināt"),
        ("regenerate", "Ģenerēt no jauna"),
        ("delete", "Dzēst"),
        ("cancel", "Atcelt"),
        (
            "confirm_regenerate",
            "Ģenerēt marķieri no jauna? Pašreizējais uzreiz vairs nedarbosies.",
        ),
        ("confirm_delete_token", "Dzēst šo API marķieri?"),
        ("add_failed", "Nevar pievienot API marķieri"),
        ("update_failed", "Nevar atjaunināt API marķieri"),
        ("added", "API marķieris pievienots"),
        ("regenerated", "API marķieris ģenerēts no jauna"),
        ("updated", "API marķieris atjaunināts"),
        ("enabled_one", "API marķieris iespējots"),
        ("enabled_many", "API marķieri iespējoti"),
        ("disabled_one", "API marķieris atspējots"),
        ("disabled_many", "API marķieri atspējoti"),
        ("deleted_one", "API marķieris dzēsts"),
        ("deleted_many", "API marķieri dzēsti"),
        ("select_first", "Atlasiet vismaz vienu API marķieri."),
        ("refused_token", "Marķieris {id}: {message}"),
        ("auth_token", "Autentifikācijas marķieris"),
        ("copy", "Kopēt starpliktuvē"),
        ("copied", "Nokopēts"),
        ("yes", "Jā"),
        ("no", "Nē"),
        (
            "copy_warning",
            "Nokopējiet autentifikācijas marķieri: pēc lapas aizvēršanas tas vairs nebūs apskatāms.",
        ),
        (
            "expired_on_create",
            "Marķiera derīgums jau ir beidzies. Lai marķieri lietotu, atjauniniet derīguma beigu datumu.",
        ),
        (
            "secret_gone",
            "Autentifikācijas marķieris tika parādīts vienreiz un vairs nav apskatāms. Ja tas ir pazaudēts, {link}.",
        ),
        ("secret_gone_link", "ģenerējiet jaunu"),
        ("close", "Aizvērt"),
        ("confirm", "Apstiprināt"),
        ("ok", "Labi"),
        ("bad_request", "Nederīgs pieprasījums"),
        ("not_found", "Nav atrasts"),
        ("no_such_token", "Šāda API marķiera nav."),
        ("back", "Atpakaļ uz sarakstu"),
        ("refused", "Noraidīts"),
        ("csrf_title", "Piekļuve liegta"),
        (
            "csrf_text",
            "Jūs esat pieteicies kā „{user}”. Šī veidlapa nav nosūtīta no šīs lapas; nekas netika mainīts.",
        ),
        (
            "not_a_form",
            "Lapa pieņem tikai veidlapas (application/x-www-form-urlencoded).",
        ),
        ("form_too_large", "Veidlapa ir pārāk liela."),
        ("not_utf8", "Veidlapa nav UTF-8 teksts."),
        ("bad_sort", "kārtot var tikai pēc: {columns}"),
        ("bad_order", "secība ir asc vai desc"),
        ("bad_page", "lapas numurs ir vesels skaitlis, sākot ar 1"),
        ("bad_action", "darbība ir enable, disable vai delete"),
        ("bad_ids", "atlasītais ID nav marķiera ID"),
        (
            "bad_toggle",
            "toggle ir marķiera ID un enabled vai disabled",
        ),
        ("filter_too_long", "ne vairāk kā {max} rakstzīmes"),
        ("filter_too_many", "ne vairāk kā {max} lietotāji"),
        (
            "filter_bad_days",
            "dienu skaits ir vesels skaitlis no 0 līdz {max}",
        ),
        ("filter_bad_status", "statuss ir any, enabled vai disabled"),
        (
            "session_ended_added",
            "Marķieris pievienots, bet sesija beidzās, pirms varēja parādīt tā autentifikācijas marķieri: ģenerējiet jaunu tā lapā.",
        ),
        (
            "session_ended_regenerated",
            "Sesija beidzās, pirms varēja parādīt jauno autentifikācijas marķieri: ģenerējiet vēlreiz.",
        ),
        ("not_signed_in", "Nav pieteikšanās"),
        (
            "not_signed_in_text",
            "Lai pārvaldītu API marķierus, piesakieties.",
        ),
        ("problem", "Nepieņemama vērtība laukā „{field}”."),
    ];
    let mut texts = Texts::english();
    for (key, text) in table {
        texts.set(key, text).unwrap();
    }
    // The table is whole: a text added to the page without a translation here fails this.
    let english = Texts::english();
    for (key, text) in texts.entries() {
        assert_ne!(Some(text), english.get(key), "{key} is not translated");
    }
    texts.problems.clear();
    texts
        .problem("empty", "Lauks „{field}” nevar būt tukšs.")
        .problem(
            "name_taken",
            "Lietotājam „{owner}” jau ir API marķieris „{value}”.",
        )
        .problem("not_found", "Šāda API marķiera nav.")
        .problem(
            "other_users_tokens",
            "Jūs varat pārvaldīt tikai savus marķierus.",
        );
    texts
}

/// The text a reader sees in `html`: its text and the attributes that are read out or shown
/// (titles, placeholders, labels, the script's questions and counts), unescaped.
fn visible(html: &str) -> String {
    const SHOWN: [&str; 7] = [
        "title",
        "placeholder",
        "aria-label",
        "data-confirm",
        "data-confirm-one",
        "data-confirm-many",
        "data-template",
    ];
    let mut out = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push('\n');
        let close = rest[open..].find('>').map_or(rest.len(), |c| open + c);
        let tag = &rest[open..close];
        for attr in SHOWN.iter().copied().chain(["data-copied"]) {
            let key = format!(" {attr}=\"");
            if let Some(at) = tag.find(&key) {
                let value = &tag[at + key.len()..];
                out.push_str(&value[..value.find('"').unwrap_or(value.len())]);
                out.push('\n');
            }
        }
        rest = rest.get(close + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Whether `phrase` stands in `text` as words of its own (not inside another word).
fn has_phrase(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Every piece of English the default table would put on a page: each text's words between
/// its `{values}`.
fn english_phrases() -> Vec<String> {
    let mut phrases = Vec::new();
    for (key, text) in Texts::english().entries() {
        if key == "lang" {
            continue;
        }
        let mut rest = text;
        loop {
            let (piece, after) = match rest.find('{') {
                Some(open) => {
                    let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
                    (&rest[..open], &rest[close..])
                }
                None => (rest, ""),
            };
            let piece = piece.trim_matches(|c: char| !c.is_alphanumeric());
            if piece.chars().filter(|c| c.is_alphabetic()).count() >= 2 {
                phrases.push(piece.to_owned());
            }
            if after.is_empty() {
                break;
            }
            rest = after;
        }
    }
    // The library's own English, which the default shows for refused values.
    phrases.extend(
        [
            "cannot be empty",
            "already exists",
            "not found",
            "is not",
            "you may only",
        ]
        .map(str::to_owned),
    );
    phrases
}

#[tokio::test]
async fn a_second_language_leaves_no_default_text_on_any_page() {
    let tokens = demo::tokens();
    let alice_actor = Actor::admin(user("alice"));
    let now = tokens.now();
    for (name, owner, expires, status) in [
        ("atskaites", "bob", Some(-3), Status::Enabled),
        ("rezerves kopijas", "bob", Some(30), Status::Enabled),
        ("uzraudzība", "alice", None, Status::Disabled),
        ("izvietošana", "carol", None, Status::Enabled),
        ("noplūdis", "carol", None, Status::Enabled),
    ] {
        let mut new = NewToken::new(name.parse().unwrap())
            .owner(user(owner))
            .status(status);
        if let Some(days) = expires {
            new = new.expires_at(now + api_tokens::time::Duration::days(days));
        }
        let issued = tokens.issue(&alice_actor, new).unwrap();
        if name == "izvietošana" {
            tokens
                .authenticate(issued.secret.expose(), &RequestContext::unknown_address())
                .unwrap();
        }
        if name == "noplūdis" {
            tokens.revoke_by_secret(issued.secret.expose()).unwrap();
        }
    }
    let mut preset = Preset::standard();
    preset.texts = latvian();
    preset.expiry_input = ExpiryInput::Text;
    let page = TokensPage::new(tokens.clone())
        .with_preset(preset)
        .with_page_size(2)
        .with_max_rows(4)
        .with_actors(actor_from_fn(|parts| {
            let cookie = parts
                .headers
                .get("cookie")
                .and_then(|c| c.to_str().ok())
                .unwrap_or_default();
            if cookie.contains("demo_user=alice") {
                Ok(Actor::admin(UserId::new("alice").unwrap()))
            } else if cookie.contains("demo_user=bob") {
                Ok(Actor::user(UserId::new("bob").unwrap()))
            } else {
                Err(Refusal::no_credentials().into())
            }
        }));
    let server = serve(Router::new().nest("/tokens", page.router())).await;
    let id = |name: &str| {
        tokens
            .list(&alice_actor, &Query::new().names([name.parse().unwrap()]))
            .unwrap()[0]
            .id
            .get()
    };
    let (reports, backups, monitoring) =
        (id("atskaites"), id("rezerves kopijas"), id("uzraudzība"));
    let mut alice = Client::new(server.addr, "alice");
    let csrf = alice.csrf().await;
    let mut bob = Client::new(server.addr, "bob");
    let bobs = bob.csrf().await;
    let mut pages: Vec<(String, Reply)> = Vec::new();
    macro_rules! page {
        ($what:expr, $reply:expr) => {{
            let reply = $reply;
            pages.push(($what.to_owned(), reply));
        }};
    }
    // The list: paged and capped, a row of every kind; a filter refused, then one set.
    page!("the list", alice.get("/tokens").await);
    page!("page 2", alice.get("/tokens?page=2").await);
    page!(
        "a refused filter",
        alice
            .post(
                "/tokens/filter",
                &format!(
                    "csrf={csrf}&name={}&owners=a%07b&expires_soon=on&expires_days=x&status=maybe",
                    "x".repeat(300)
                )
            )
            .await
    );
    for users in ["owners", "creators"] {
        let many: String = (0..102).map(|i| format!("&{users}=u{i}")).collect();
        page!(
            "too many users",
            alice
                .post("/tokens/filter", &format!("csrf={csrf}{many}"))
                .await
        );
    }
    alice
        .post("/tokens/filter", &format!("csrf={csrf}&name=atsk"))
        .await;
    page!("a filter set", alice.get("/tokens").await);
    alice
        .post("/tokens/filter", &format!("csrf={csrf}&name=nekas"))
        .await;
    page!("no data", alice.get("/tokens").await);
    alice
        .post("/tokens/filter", &format!("csrf={csrf}&reset=1"))
        .await;
    // The forms: refusals (under the heading), a name taken, a token created expired.
    page!("the create form", alice.get("/tokens/new").await);
    page!(
        "a refused create",
        alice
            .post(
                "/tokens/new",
                &format!(
                    "csrf={csrf}&name=&owner=&set_expiry=on&expires_at=rīt&permissions={}&allowlist=10.0.0.1/8",
                    enc("dns:*")
                )
            )
            .await
    );
    page!(
        "a name taken",
        alice
            .post(
                "/tokens/new",
                &format!("csrf={csrf}&name=atskaites&owner=bob")
            )
            .await
    );
    let created = alice
        .post(
            "/tokens/new",
            &format!(
                "csrf={csrf}&name=jauns&owner=bob&set_expiry=on&expires_at={}&enabled=on",
                enc("2001-01-01 00:00:00")
            ),
        )
        .await;
    let secret_path = created.header("location").unwrap().to_owned();
    page!("the new secret", alice.get(&secret_path).await);
    page!("the secret gone", alice.get(&secret_path).await);
    page!(
        "a token's page",
        alice.get(&format!("/tokens/{reports}")).await
    );
    page!(
        "a refused update",
        alice
            .post(&format!("/tokens/{reports}"), &format!("csrf={csrf}&name="))
            .await
    );
    page!(
        "regenerate, asked",
        alice
            .post(
                &format!("/tokens/{reports}/regenerate"),
                &format!("csrf={csrf}&confirmed=0")
            )
            .await
    );
    alice
        .post(
            &format!("/tokens/{reports}/regenerate"),
            &format!("csrf={csrf}&confirmed=1"),
        )
        .await;
    page!(
        "regenerated",
        alice.get(&format!("/tokens/{reports}/secret")).await
    );
    alice
        .post(
            &format!("/tokens/{reports}"),
            &format!("csrf={csrf}&name=atskaites&enabled=on"),
        )
        .await;
    page!("updated", alice.get("/tokens").await);
    // Mass actions: asked (one, many), done (one, many), nothing selected, refused.
    for (action, ids) in [
        ("enable", vec![monitoring]),
        ("enable", vec![monitoring, backups]),
        ("disable", vec![backups]),
        ("disable", vec![monitoring, backups]),
        ("delete", vec![backups]),
        ("delete", vec![monitoring, backups]),
    ] {
        let ids: String = ids.iter().map(|i| format!("&ids={i}")).collect();
        page!(
            "a mass action asked",
            alice
                .post(
                    "/tokens/mass",
                    &format!("csrf={csrf}&action={action}{ids}&confirmed=0")
                )
                .await
        );
    }
    for (action, ids) in [
        ("disable", format!("&ids={monitoring}")),
        ("enable", format!("&ids={monitoring}&ids={backups}")),
        ("disable", format!("&ids={monitoring}&ids={backups}")),
        ("enable", format!("&ids={monitoring}")),
        ("delete", String::new()),
    ] {
        alice
            .post(
                "/tokens/mass",
                &format!("csrf={csrf}&action={action}{ids}&confirmed=1"),
            )
            .await;
        page!("a mass action done", alice.get("/tokens").await);
    }
    bob.post(
        "/tokens/mass",
        &format!("csrf={bobs}&action=disable&ids={monitoring}&confirmed=1"),
    )
    .await;
    page!("a mass action refused", bob.get("/tokens").await);
    bob.post(
        "/tokens/toggle",
        &format!("csrf={bobs}&toggle={backups}:disabled"),
    )
    .await;
    page!("a status toggled", bob.get("/tokens").await);
    alice
        .post(
            "/tokens/mass",
            &format!("csrf={csrf}&action=delete&ids={backups}&ids={reports}&confirmed=1"),
        )
        .await;
    page!("tokens deleted", alice.get("/tokens").await);
    alice
        .post(
            "/tokens/mass",
            &format!("csrf={csrf}&action=delete&ids={monitoring}&confirmed=1"),
        )
        .await;
    page!("a token deleted", alice.get("/tokens").await);
    // Everything refused: a path, a query, a form the page cannot read, no CSRF token, no user.
    page!("not found", alice.get("/tokens/abc").await);
    page!("not found by id", alice.get("/tokens/999999").await);
    for query in ["sort=size", "order=up", "page=0", "page=%ff"] {
        page!("a bad query", alice.get(&format!("/tokens?{query}")).await);
    }
    for (path, body) in [
        ("/tokens/mass", "action=explode&ids=1"),
        ("/tokens/mass", "action=enable&ids=x"),
        ("/tokens/toggle", "toggle=1:maybe"),
    ] {
        page!(
            "a bad form",
            alice.post(path, &format!("csrf={csrf}&{body}")).await
        );
    }
    page!(
        "not a form",
        alice.post_as("/tokens/new", "application/json", "{}").await
    );
    page!(
        "too large",
        alice
            .post(
                "/tokens/new",
                &format!("csrf={csrf}&d={}", "x".repeat(70 * 1024))
            )
            .await
    );
    page!(
        "not UTF-8",
        alice
            .post("/tokens/new", &format!("csrf={csrf}&name=%ff"))
            .await
    );
    page!("no CSRF token", alice.post("/tokens/new", "name=x").await);
    page!(
        "not signed in",
        send(
            server.addr,
            b"GET /tokens HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .await
    );

    let phrases = english_phrases();
    let mut seen = String::new();
    for (what, reply) in &pages {
        assert!(
            reply.body.contains("<html lang=\"lv\">"),
            "{what}: {}",
            reply.body
        );
        let text = visible(&reply.body);
        for phrase in &phrases {
            assert!(
                !has_phrase(&text, phrase),
                "{what} ({}) shows the default's {phrase:?}:\n{text}",
                reply.status
            );
        }
        seen.push_str(&text);
    }
    // The pages showed what they were meant to (the test is not vacuous).
    for shown in [
        "Atlasīti: 0",
        "Parādīti 1–2 no 4+",
        "Parādīti 1 no 1",
        "Lapas",
        "Filtrs (ieslēgts)",
        "Dati nav atrasti.",
        "Atsaukts",
        "Beidzies",
        "Nekad",
        "Nevar pievienot API marķieri",
        "Nevar atjaunināt API marķieri",
        "Lauks „Nosaukums” nevar būt tukšs.",
        "Lietotājam „bob” jau ir API marķieris „atskaites”.",
        "Nepieņemama vērtība laukā „Derīgs līdz (UTC)”.",
        "Marķiera derīgums jau ir beidzies.",
        "ģenerējiet jaunu",
        "API marķieris ģenerēts no jauna",
        "API marķieris atjaunināts",
        "Dzēst atlasītos API marķierus (2)?",
        "Iespējot atlasīto API marķieri?",
        "API marķieri iespējoti",
        "API marķieris atspējots",
        "API marķieri dzēsti",
        "API marķieris dzēsts",
        "Atlasiet vismaz vienu API marķieri.",
        &format!("Marķieris {monitoring}: Šāda API marķiera nav."),
        "Piekļuve liegta",
        "Jūs esat pieteicies kā „alice”.",
        "Nav pieteikšanās",
        "Kalendārs",
        "lietotāju ID, atdalīti ar komatu",
        "ne vairāk kā 100 lietotāji",
    ] {
        assert!(seen.contains(shown), "no page showed {shown:?}");
    }
}
