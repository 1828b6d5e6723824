//! The API tokens page in a real browser: headless Chromium through chromedriver (Debian's
//! `chromium` and `chromium-driver`; `.ci/run` installs them). Without them this test FAILS
//! with the command that installs them: it never skips.
//!
//! One browser for the whole walk (starting Chromium is most of the cost), the steps in order:
//! the list and its expired flag, a `<script>` name as text, the create form's refusals beside
//! their fields, a token created and its secret read once (a reload shows it gone), filter
//! (remembered for the session), sort, mass disable with the confirmation, a status click,
//! edit and regenerate from a token's page, a user who sees only their own tokens, and a form
//! without its CSRF token refused. Screenshots of the list and of the create result are saved
//! under `target/tmp/browser/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/page/demo.rs"]
#[allow(dead_code)]
mod demo;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::net::SocketAddr;

use api_tokens::{Actor, MemoryStore, NewToken, Query, RequestContext, Status, Tokens, UserId};
use serde_json::json;
use webdriver::Browser;

/// The demo app (the page example's) on 127.0.0.1, with a few more tokens; stopped when the
/// runtime is dropped.
fn serve(tokens: Tokens<MemoryStore>) -> (tokio::runtime::Runtime, SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        axum::serve(listener, demo::app(tokens)).await.unwrap();
    });
    (runtime, addr)
}

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

/// The names in the list's rows, in order.
fn names(b: &Browser) -> Vec<String> {
    b.script(
        "return Array.from(document.querySelectorAll('tbody td.name a')).map(a => a.textContent);",
        json!([]),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_str().unwrap().to_owned())
    .collect()
}

fn status_of(b: &Browser, id: u64) -> String {
    b.wait(&format!("the status of token {id}"), || {
        b.script(
            "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
            json!([format!("status-{id}")]),
        )
        .as_str()
        .map(str::to_owned)
    })
}

fn id_of(tokens: &Tokens<MemoryStore>, name: &str) -> u64 {
    let admin = Actor::admin(user("alice"));
    tokens
        .list(&admin, &Query::new().names([name.parse().unwrap()]))
        .unwrap()
        .first()
        .unwrap_or_else(|| panic!("no token {name:?}"))
        .id
        .get()
}

fn authenticates(tokens: &Tokens<MemoryStore>, secret: &str) -> bool {
    tokens
        .authenticate(secret, &RequestContext::unknown_address())
        .is_ok()
}

#[test]
fn the_api_tokens_page_in_a_real_browser() {
    let tokens = demo::tokens();
    demo::seed(&tokens).unwrap();
    let alice = Actor::admin(user("alice"));
    let hostile = "<script>document.title='pwned';window.__xss=1</script>";
    drop(
        tokens
            .issue(
                &alice,
                NewToken::new(hostile.parse().unwrap())
                    .owner(user("bob"))
                    .description("<img src=x onerror=\"window.__xss=2\">"),
            )
            .unwrap(),
    );
    let (runtime, addr) = serve(tokens.clone());
    let root = format!("http://127.0.0.1:{}", addr.port());
    let list = format!("{root}/tokens");

    let b = Browser::start();

    // Sign in (the demo's stand-in for a host's login) and see the list.
    b.goto(&format!("{root}/login/alice"));
    b.wait("the list", || b.url().ends_with("/tokens").then_some(()));
    assert_eq!(b.title(), "API tokens");
    let shown = names(&b);
    assert_eq!(shown.len(), 7, "{shown:?}");
    // The expired token is flagged, as the seed's list flags it.
    let expired = id_of(&tokens, "backup 2025");
    let cell = b.find(&format!("#token-{expired} td.expired"));
    assert!(b.text(&cell).ends_with("Expired"), "{}", b.text(&cell));
    assert!(
        b.all(&format!("#token-{}  td.expired", id_of(&tokens, "deploy")))
            .is_empty()
    );

    // A `<script>` name renders as text and never runs.
    assert!(shown.contains(&hostile.to_owned()), "{shown:?}");
    assert_eq!(
        b.script("return window.__xss === undefined;", json!([])),
        json!(true)
    );
    assert_eq!(b.title(), "API tokens");
    b.goto(&format!("{list}/{}", id_of(&tokens, hostile)));
    let description = b.find("#t-description");
    assert_eq!(
        b.property(&description, "value"),
        json!("<img src=x onerror=\"window.__xss=2\">")
    );
    assert_eq!(b.property(&b.find("#t-name"), "value"), json!(hostile));
    assert_eq!(
        b.script("return window.__xss === undefined;", json!([])),
        json!(true)
    );

    b.goto(&list);
    b.find("#token-1");
    let list_png = b.screenshot("list.png");

    // The create form refuses values beside their fields.
    b.click(&b.find("#create"));
    b.type_into(&b.find("#t-name"), " padded");
    b.click(&b.find("#t-set-expiry"));
    b.click(&b.find("#submit"));
    let name_error = b.text(&b.find("#name-error"));
    assert!(name_error.contains("whitespace"), "{name_error}");
    let expiry_error = b.text(&b.find("#expires_at-error"));
    assert!(expiry_error.contains("cannot be empty"), "{expiry_error}");
    // What was typed is kept.
    assert_eq!(b.property(&b.find("#t-name"), "value"), json!(" padded"));

    // Create a token for bob and read its secret once.
    b.type_into(&b.find("#t-name"), "ci pipeline");
    b.click(&b.find("#t-owner option[value=bob]"));
    b.type_into(&b.find("#t-description"), "Builds & deploys");
    // The expiry is the browser's own date-and-time input: what its picker sets, it sends.
    let expires = b.find("#t-expires_at");
    assert_eq!(b.property(&expires, "type"), json!("datetime-local"));
    b.script(
        "arguments[0].value = '2030-01-02T03:04:05';",
        json!([{ "element-6066-11e4-a52e-4f735466cecf": expires }]),
    );
    b.click(&b.find("#submit"));
    let field = b.find("#auth-token");
    let secret = b.property(&field, "value").as_str().unwrap().to_owned();
    assert!(secret.starts_with("tok_") && secret.len() > 40, "{secret}");
    let created_url = b.url();
    assert!(created_url.ends_with("/secret") && !created_url.contains(&secret));
    assert!(
        b.text(&b.find("#warning"))
            .contains("cannot be viewed again")
    );
    assert!(authenticates(&tokens, &secret));
    let ci = id_of(&tokens, "ci pipeline");
    let created = tokens.get(&alice, api_tokens::TokenId::new(ci)).unwrap();
    assert_eq!(created.owner, user("bob"));
    assert_eq!(created.description, "Builds & deploys");
    assert_eq!(created.expiry.unix(), Some(1_893_553_445));
    b.click(&b.find("#copy"));
    let copied = b.wait("the copy button", || {
        let t = b.text(&b.find("#copy"));
        (t == "Copied").then_some(t)
    });
    assert_eq!(copied, "Copied");
    let created_png = b.screenshot("created.png");

    // A reload shows that it is gone, and no later page has it.
    b.refresh();
    b.find("#gone");
    assert!(b.all("#auth-token").is_empty());
    assert!(!b.source().contains(&secret));
    b.click(&b.find("#close"));
    b.find("#token-1");
    assert!(!b.source().contains(&secret));

    // Filter by name; the filter is remembered for the session.
    b.type_into(&b.find("#f-name"), "ep");
    b.click(&b.find("#filter-apply"));
    b.wait("the filtered list", || (names(&b).len() == 2).then_some(()));
    assert_eq!(names(&b), ["deploy", "reports"]);
    b.goto(&list);
    b.find("tbody");
    assert_eq!(names(&b), ["deploy", "reports"], "remembered");
    b.click(&b.find("#filter-reset"));
    b.wait("the whole list", || (names(&b).len() == 8).then_some(()));
    // Sort by name, both ways, and by user.
    let mut ascending = names(&b);
    let mut sorted = ascending.clone();
    sorted.sort();
    assert_eq!(ascending, sorted, "by name by default");
    b.click(&b.find("#sort-name"));
    b.wait("descending names", || {
        b.url().contains("order=desc").then_some(())
    });
    ascending.reverse();
    assert_eq!(names(&b), ascending);
    b.click(&b.find("#sort-user"));
    b.wait("sorted by user", || {
        b.url().contains("sort=user").then_some(())
    });
    let owners: Vec<String> = b
        .script(
            "return Array.from(document.querySelectorAll('tbody td.user')).map(td => td.textContent);",
            json!([]),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut by_user = owners.clone();
    by_user.sort();
    assert_eq!(owners, by_user);

    // Mass disable two tokens, after the confirmation.
    let (grafana, deploy) = (id_of(&tokens, "grafana"), id_of(&tokens, "deploy"));
    assert_eq!(status_of(&b, grafana), "Enabled");
    assert_eq!(status_of(&b, deploy), "Enabled");
    b.click(&b.find(&format!("#token-{grafana} input[name=ids]")));
    b.click(&b.find(&format!("#token-{deploy} input[name=ids]")));
    assert_eq!(b.text(&b.find("#selected")), "2 selected");
    b.click(&b.find("#mass-disable"));
    assert_eq!(b.accept_dialog(), "Disable 2 selected API tokens?");
    b.wait("the notice", || {
        b.all(".notice.good")
            .first()
            .map(|n| b.text(n))
            .filter(|t| t == "API tokens disabled")
    });
    assert_eq!(status_of(&b, grafana), "Disabled");
    assert_eq!(status_of(&b, deploy), "Disabled");
    assert!(b.url().contains("sort=user"), "back to the same sort");
    for id in [grafana, deploy] {
        let t = tokens.get(&alice, api_tokens::TokenId::new(id)).unwrap();
        assert_eq!(t.status, Status::Disabled);
    }

    // A click on a status toggles it.
    b.click(&b.find(&format!("#status-{grafana}")));
    b.wait("grafana enabled", || {
        (status_of(&b, grafana) == "Enabled").then_some(())
    });
    assert_eq!(status_of(&b, deploy), "Disabled");

    // Edit from the token's page, then regenerate (the old secret stops working at once).
    b.goto(&format!("{list}/{ci}"));
    assert_eq!(
        b.text(&b.find("#t-owner")),
        "bob",
        "the user is shown, not editable"
    );
    b.type_into(&b.find("#t-description"), "Builds only");
    b.click(&b.find("#submit"));
    b.wait("the update notice", || {
        b.all(".notice.good")
            .first()
            .map(|n| b.text(n))
            .filter(|t| t == "API token updated")
    });
    let t = tokens.get(&alice, api_tokens::TokenId::new(ci)).unwrap();
    assert_eq!(t.description, "Builds only");
    b.goto(&format!("{list}/{ci}"));
    b.click(&b.find("#regenerate"));
    assert!(b.accept_dialog().starts_with("Regenerate the auth token?"));
    let field = b.find("#auth-token");
    let fresh = b.property(&field, "value").as_str().unwrap().to_owned();
    assert_ne!(fresh, secret);
    assert!(authenticates(&tokens, &fresh));
    assert!(
        !authenticates(&tokens, &secret),
        "the old secret stopped working"
    );

    // A form posted without its CSRF token is refused, and nothing changes.
    b.goto(&format!("{list}/new"));
    b.type_into(&b.find("#t-name"), "no csrf");
    b.script(
        "document.querySelector('#token input[name=csrf]').remove();",
        json!([]),
    );
    b.click(&b.find("#submit"));
    let refusal = b.text(&b.find("p.notice.bad"));
    assert!(refusal.contains("CSRF token is missing"), "{refusal}");
    let all = tokens.list(&alice, &Query::new()).unwrap();
    assert!(
        all.iter().all(|t| t.name.as_str() != "no csrf"),
        "no token was created"
    );

    // Bob sees his own tokens only, without the User column.
    b.goto(&format!("{root}/login/bob"));
    b.wait("bob's list", || b.url().ends_with("/tokens").then_some(()));
    let mut mine = names(&b);
    mine.sort();
    let mut expected = vec!["ci pipeline", "deploy", "grafana", hostile];
    expected.sort_unstable();
    assert_eq!(mine, expected);
    assert!(b.all("#sort-user").is_empty());

    drop(b);
    drop(runtime);
    for png in [list_png, created_png] {
        assert!(
            std::fs::metadata(&png).unwrap().len() > 1_000,
            "{}",
            png.display()
        );
    }
}
