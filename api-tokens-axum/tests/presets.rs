//! The page's two presets in a real browser (headless Chromium through chromedriver, as
//! `browser.rs`; without them this test FAILS with the command that installs them).
//!
//! Zabbix's own frontend tests (`testPageApiTokens*`, `testFormApiTokens*`, the token cases of
//! `testPermissionsWithoutCSRF`) see its *API tokens* page differently from this page's
//! default in a few ways. Each of them is a test here, run on the demo host in
//! `Preset::zabbix()` (with `Policy::zabbix()`) and in `Preset::standard()`: the default has
//! Zabbix's habit where it is better for everyone (mass actions that wait for a selection, a
//! filter that folds away, a date-and-time picker, a warning for a token created expired), and
//! keeps its own otherwise. alice is Zabbix's Admin (every user's tokens); bob and carol see
//! their own (Zabbix's *User settings → API tokens*).
//!
//! `UPDATE_DOCS_SCREENSHOTS=1` makes `screenshots_of_both_presets` write the README's
//! `docs/page.png` and `docs/page-zabbix.png`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/page/demo.rs"]
#[allow(dead_code)]
mod demo;
#[path = "support/webdriver.rs"]
mod webdriver;

use api_tokens::{
    Actor, MemoryStore, Query, RequestContext, Status, Token, TokenId, Tokens, UserId,
};
use api_tokens_axum::page::Preset;
use serde_json::{Value, json};
use webdriver::Browser;

/// The demo host on 127.0.0.1 in one preset, stopped when dropped.
struct Host {
    zabbix: bool,
    root: String,
    tokens: Tokens<MemoryStore>,
    _runtime: tokio::runtime::Runtime,
}

fn host(zabbix: bool) -> Host {
    let tokens = if zabbix {
        demo::zabbix_tokens()
    } else {
        demo::tokens()
    };
    demo::seed(&tokens).unwrap();
    let preset = if zabbix {
        Preset::zabbix()
    } else {
        Preset::standard()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = demo::app_with(tokens.clone(), preset);
    runtime.spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Host {
        zabbix,
        root: format!("http://127.0.0.1:{port}"),
        tokens,
        _runtime: runtime,
    }
}

/// Zabbix's preset, then the default.
fn both() -> [Host; 2] {
    [host(true), host(false)]
}

fn admin() -> Actor {
    Actor::admin(UserId::new("alice").unwrap())
}

impl Host {
    fn name(&self) -> &'static str {
        if self.zabbix { "zabbix" } else { "default" }
    }

    /// The preset's value: `zabbix` in Zabbix's, `standard` in the default.
    fn pick<T>(&self, zabbix: T, standard: T) -> T {
        if self.zabbix { zabbix } else { standard }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/tokens{path}", self.root)
    }

    /// Signs in as `user` (the demo's stand-in for a login) and waits for the list.
    fn sign_in(&self, b: &Browser, user: &str) {
        b.goto(&format!("{}/login/{user}", self.root));
        b.wait("the list", || b.url().ends_with("/tokens").then_some(()));
        b.find("#list");
    }

    /// Opens `path` and waits until `css` is on it.
    fn open(&self, b: &Browser, path: &str, css: &str) {
        b.goto(&self.url(path));
        b.find(css);
    }

    fn all(&self) -> Vec<Token> {
        self.tokens.list(&admin(), &Query::new()).unwrap()
    }

    fn token(&self, name: &str) -> Token {
        self.tokens
            .list(&admin(), &Query::new().names([name.parse().unwrap()]))
            .unwrap()
            .pop()
            .unwrap_or_else(|| panic!("{}: no token {name:?}", self.name()))
    }
}

/// An element as a script argument.
fn el(id: &str) -> Value {
    json!({ "element-6066-11e4-a52e-4f735466cecf": id })
}

/// The trimmed text of every element matching `css`, in order.
fn texts(b: &Browser, css: &str) -> Vec<String> {
    b.script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent.trim());",
        json!([css]),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_str().unwrap().to_owned())
    .collect()
}

/// The list's column headers (the sort arrow left out).
fn headers(b: &Browser) -> Vec<String> {
    texts(b, "table.list thead th:not(.check)")
        .into_iter()
        .map(|h| h.trim_end_matches([' ', '▲', '▼']).to_owned())
        .collect()
}

/// The filter's field labels.
fn filter_labels(b: &Browser) -> Vec<String> {
    texts(b, "#filter-form .fields > div > :first-child")
}

/// The column of `css` cells (`td.expires`), in the list's order.
fn column(b: &Browser, css: &str) -> Vec<String> {
    texts(b, &format!("tbody {css}"))
}

fn disabled(b: &Browser, css: &str) -> bool {
    b.property(&b.find(css), "disabled") == json!(true)
}

/// Sets a field's value as its picker would, and tells the page.
fn set_value(b: &Browser, css: &str, value: &str) {
    b.script(
        "const e = arguments[0]; e.value = arguments[1]; \
         e.dispatchEvent(new Event('input', {bubbles: true})); \
         e.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([el(&b.find(css)), value]),
    );
}

/// Types an expiry the preset's way: text in Zabbix's, the picker's value in the default.
fn set_expiry(b: &Browser, h: &Host, at: &str) {
    if h.zabbix {
        b.type_into(&b.find("#t-expires_at"), at);
    } else {
        set_value(b, "#t-expires_at", &at.replacen(' ', "T", 1));
    }
}

/// Waits for the first good notice to read `text`.
fn wait_notice(b: &Browser, text: &str) {
    b.wait(&format!("the notice {text:?}"), || {
        b.all(".notice.good")
            .first()
            .map(|n| b.text(n))
            .filter(|t| t == text)
    });
}

/// The rows' token names, in order.
fn names(b: &Browser) -> Vec<String> {
    column(b, "td.name a")
}

/// Fills the create form (alice's: `owner` picked) and submits it.
fn create(b: &Browser, h: &Host, name: &str, owner: Option<&str>, expiry: Option<&str>) {
    h.open(b, "/new", "#t-name");
    b.type_into(&b.find("#t-name"), name);
    if let Some(o) = owner {
        b.click(&b.find(&format!("#t-owner option[value='{o}']")));
    }
    let checked = b.property(&b.find("#t-set-expiry"), "checked") == json!(true);
    if checked != expiry.is_some() {
        b.click(&b.find("#t-set-expiry"));
    }
    if let Some(at) = expiry {
        set_expiry(b, h, at);
    }
    b.click(&b.find("#submit"));
}

/// Enable, Disable and Delete are greyed out until a row is selected (Zabbix's and now the
/// default's); the question asked names one token or many.
#[test]
fn mass_actions_wait_for_a_selected_row() {
    let b = Browser::start();
    for h in both() {
        let name = h.name();
        h.sign_in(&b, "alice");
        let n = h.all().len();
        let buttons = ["#mass-enable", "#mass-disable", "#mass-delete"];
        for css in buttons {
            assert!(disabled(&b, css), "{name}: {css} waits for a selection");
        }
        assert_eq!(b.text(&b.find("#selected")), "0 selected", "{name}");
        b.click(&b.find("#select-all"));
        assert_eq!(b.text(&b.find("#selected")), format!("{n} selected"));
        for css in buttons {
            assert!(!disabled(&b, css), "{name}: {css} with every row selected");
        }
        b.click(&b.find("#select-all"));
        assert_eq!(b.text(&b.find("#selected")), "0 selected", "{name}");
        for css in buttons {
            assert!(disabled(&b, css), "{name}: {css} after unselecting");
        }
        let grafana = h.token("grafana").id.get();
        b.click(&b.find(&format!("#token-{grafana} input[name=ids]")));
        assert!(!disabled(&b, "#mass-disable"));
        b.click(&b.find("#mass-disable"));
        assert_eq!(
            b.accept_dialog(),
            h.pick(
                "Disable selected API token?",
                "Disable the selected API token?"
            )
        );
        wait_notice(&b, "API token disabled");
        assert_eq!(h.token("grafana").status, Status::Disabled, "{name}");
        assert!(
            disabled(&b, "#mass-disable"),
            "{name}: the new page waits again"
        );
    }
}

/// Without JavaScript the mass actions stay enabled and still work: the server asks for a
/// selection, and confirms on a page of its own; the filter still folds (it is a
/// `<details>`).
#[test]
fn mass_actions_and_the_filter_work_without_the_script() {
    let b = Browser::start_without_script();
    for h in both() {
        let name = h.name();
        h.sign_in(&b, "alice");
        for css in ["#mass-enable", "#mass-disable", "#mass-delete"] {
            assert!(!disabled(&b, css), "{name}: {css} (no script to wait for)");
        }
        b.click(&b.find("#mass-disable"));
        b.wait("the refusal", || {
            b.all(".notice.bad")
                .first()
                .map(|n| b.text(n))
                .filter(|t| t == "Select at least one API token.")
        });
        let deploy = h.token("deploy").id.get();
        b.click(&b.find(&format!("#token-{deploy} input[name=ids]")));
        b.click(&b.find("#mass-disable"));
        assert_eq!(
            b.text(&b.find("#question")),
            h.pick(
                "Disable selected API token?",
                "Disable the selected API token?"
            ),
            "{name}"
        );
        assert_eq!(h.token("deploy").status, Status::Enabled, "asked first");
        b.click(&b.find("#confirm"));
        wait_notice(&b, "API token disabled");
        assert_eq!(h.token("deploy").status, Status::Disabled, "{name}");

        let form = b.find("#filter-form");
        assert!(b.displayed(&form), "{name}");
        b.click(&b.find("#filter-tab"));
        b.wait("the filter folded", || (!b.displayed(&form)).then_some(()));
    }
}

/// The filter folds away under its "Filter" tab and stays folded on the next page (Zabbix's
/// and now the default's).
#[test]
fn the_filter_folds_away_under_its_tab_and_stays_folded() {
    let b = Browser::start();
    for h in both() {
        let name = h.name();
        h.sign_in(&b, "alice");
        assert_eq!(b.text(&b.find("#filter-tab")), "Filter", "{name}");
        let form = b.find("#filter-form");
        assert!(b.displayed(&form), "{name}: open at first");
        b.click(&b.find("#filter-tab"));
        b.wait("the filter folded", || (!b.displayed(&form)).then_some(()));
        h.open(&b, "", "#list");
        assert!(
            !b.displayed(&b.find("#filter-form")),
            "{name}: still folded on the next page"
        );
        b.click(&b.find("#filter-tab"));
        let form = b.find("#filter-form");
        b.wait("the filter open", || b.displayed(&form).then_some(()));
        h.open(&b, "", "#list");
        assert!(b.displayed(&b.find("#filter-form")), "{name}: open again");
    }
}

/// Zabbix: "Displaying 6 of 6 found"; the default: "Displaying 1 to 6 of 6 found".
#[test]
fn the_count_under_the_list() {
    let b = Browser::start();
    for h in both() {
        h.sign_in(&b, "alice");
        let n = h.all().len();
        assert_eq!(
            b.text(&b.find("#count")),
            h.pick(
                format!("Displaying {n} of {n} found"),
                format!("Displaying 1 to {n} of {n} found")
            ),
            "{}",
            h.name()
        );
    }
}

/// Zabbix: "Created by user" and "Created by users", no "Created by" on a user's own tokens,
/// "Created at" not sortable, "Never" first when sorting by expiry ascending. The default:
/// "Created by" everywhere, every column sortable, "Never" last. Both sort by last access.
#[test]
fn columns_per_view_and_their_sorting() {
    let b = Browser::start();
    for h in both() {
        let name = h.name();
        h.sign_in(&b, "alice");
        assert_eq!(
            headers(&b),
            [
                "Name",
                "User",
                "Expires at",
                "Created at",
                h.pick("Created by user", "Created by"),
                "Last accessed at",
                "Status"
            ],
            "{name}"
        );
        assert_eq!(
            filter_labels(&b),
            [
                "Name",
                "Users",
                "Expires in less than",
                h.pick("Created by users", "Created by"),
                "Status"
            ],
            "{name}"
        );
        for col in [
            "name",
            "user",
            "expires_at",
            "creator",
            "last_used_at",
            "status",
        ] {
            assert_eq!(b.all(&format!("#sort-{col}")).len(), 1, "{name}: {col}");
        }
        assert_eq!(
            b.all("#sort-created_at").len(),
            h.pick(0, 1),
            "{name}: Created at"
        );

        // By expiry: Zabbix stores "never" as 0, so it comes first ascending.
        b.click(&b.find("#sort-expires_at"));
        b.wait("sorted by expiry", || {
            b.url().contains("sort=expires_at&order=asc").then_some(())
        });
        let expiries: Vec<String> = column(&b, "td.expires")
            .into_iter()
            .map(|e| e.trim_end_matches(" Expired").to_owned())
            .collect();
        let never = |e: &String| e == "Never";
        let (first, rest) = expiries.split_at(2);
        let (dated, nevers) = if h.zabbix {
            (rest.to_vec(), first.to_vec())
        } else {
            let (dated, last) = expiries.split_at(expiries.len() - 2);
            (dated.to_vec(), last.to_vec())
        };
        assert!(nevers.iter().all(never), "{name}: {expiries:?}");
        let mut sorted = dated.clone();
        sorted.sort();
        assert!(
            dated.iter().all(|e| !never(e)) && dated == sorted,
            "{name}: {expiries:?}"
        );
        b.click(&b.find("#sort-expires_at"));
        b.wait("descending", || {
            b.url().contains("sort=expires_at&order=desc").then_some(())
        });
        let mut reversed = expiries.clone();
        reversed.reverse();
        let descending: Vec<String> = column(&b, "td.expires")
            .into_iter()
            .map(|e| e.trim_end_matches(" Expired").to_owned())
            .collect();
        assert_eq!(descending, reversed, "{name}");

        // By last access: the demo's tokens used minutes, hours and days ago.
        b.click(&b.find("#sort-last_used_at"));
        b.wait("sorted by last access", || {
            b.url()
                .contains("sort=last_used_at&order=asc")
                .then_some(())
        });
        let used = column(&b, "td.used");
        assert_eq!(used[..2], ["Never", "Never"], "{name}: {used:?}");
        assert_eq!(
            names(&b)[2..],
            ["backup 2025", "monitoring", "grafana", "deploy"],
            "{name}"
        );

        // A sort the view does not offer is refused.
        h.open(&b, "?sort=created_at", "h1");
        assert_eq!(
            b.text(&b.find("h1")),
            h.pick("Bad request", "API tokens"),
            "{name}"
        );

        // A user's own tokens (Zabbix's User settings → API tokens).
        h.sign_in(&b, "bob");
        let own: Vec<&str> = if h.zabbix {
            vec![
                "Name",
                "Expires at",
                "Created at",
                "Last accessed at",
                "Status",
            ]
        } else {
            vec![
                "Name",
                "Expires at",
                "Created at",
                "Created by",
                "Last accessed at",
                "Status",
            ]
        };
        assert_eq!(headers(&b), own, "{name}");
        assert_eq!(
            filter_labels(&b),
            ["Name", "Expires in less than", "Status"],
            "{name}"
        );
    }
}

/// Zabbix's tab title is "API tokens" on every page; the default's list says it once (not
/// "API tokens — API tokens"), its other pages name themselves.
#[test]
fn tab_titles() {
    let b = Browser::start();
    for h in both() {
        h.sign_in(&b, "alice");
        assert_eq!(b.title(), "API tokens", "{}", h.name());
        h.open(&b, "/new", "#t-name");
        assert_eq!(
            b.title(),
            h.pick("API tokens", "New API token — API tokens")
        );
        let id = h.token("grafana").id.get();
        h.open(&b, &format!("/{id}"), "#t-name");
        assert_eq!(b.title(), h.pick("API tokens", "API token — API tokens"));
    }
}

/// Zabbix's create form: the user empty until chosen, "Set expiration date and time" checked,
/// "Expires at" hidden while it is unchecked, typed as text with a calendar button. The
/// default: the admin preselected, no expiry, the browser's own date-and-time input greyed out
/// until the box is checked.
#[test]
fn the_create_form() {
    let b = Browser::start();
    for h in both() {
        let name = h.name();
        h.sign_in(&b, "alice");
        h.open(&b, "/new", "#t-name");
        let owner = b.find("#t-owner");
        assert_eq!(
            b.property(&owner, "value"),
            json!(h.pick("", "alice")),
            "{name}"
        );
        let set = b.find("#t-set-expiry");
        assert_eq!(
            b.property(&set, "checked"),
            json!(h.zabbix),
            "{name}: Set expiration date and time"
        );
        assert_eq!(b.property(&b.find("#t-enabled"), "checked"), json!(true));
        let expires = b.find("#t-expires_at");
        let row = b.find("#row-expires_at");
        if h.zabbix {
            assert_eq!(b.property(&expires, "type"), json!("text"));
            assert_eq!(
                b.attribute(&expires, "placeholder").as_deref(),
                Some("YYYY-MM-DD hh:mm:ss")
            );
            assert_eq!(b.attribute(&expires, "maxlength").as_deref(), Some("255"));
            let calendar = b.find("#expires_at_calendar");
            assert!(b.displayed(&calendar), "the calendar button");
            // The browser's picker behind it writes its choice into the field.
            set_value(&b, "#t-expires_at-picker", "2030-01-02T03:04:05");
            assert_eq!(b.property(&expires, "value"), json!("2030-01-02 03:04:05"));
            b.click(&set);
            assert!(!b.displayed(&row), "hidden while unchecked");
            b.click(&set);
            assert!(b.displayed(&row) && !disabled(&b, "#t-expires_at"));
        } else {
            assert_eq!(b.property(&expires, "type"), json!("datetime-local"));
            assert!(b.all("#expires_at_calendar").is_empty());
            assert!(
                b.displayed(&row) && disabled(&b, "#t-expires_at"),
                "greyed out"
            );
            b.click(&set);
            assert!(!disabled(&b, "#t-expires_at"));
            b.click(&set);
            assert!(b.displayed(&row) && disabled(&b, "#t-expires_at"));
        }
        // A user's own form has no user.
        h.sign_in(&b, "bob");
        h.open(&b, "/new", "#t-name");
        assert!(b.all("#t-owner").is_empty(), "{name}");
    }
}

/// Zabbix: "API token updated" after regenerating, its copy warning, no user on a user's own
/// token pages; both: a warning when a token is created already expired.
#[test]
fn the_new_secret_and_its_warnings() {
    let b = Browser::start();
    for h in both() {
        let name = h.name();
        h.sign_in(&b, "alice");
        let grafana = h.token("grafana").id.get();
        h.open(&b, &format!("/{grafana}"), "#regenerate");
        assert_eq!(
            b.text(&b.find("#t-owner")),
            "bob",
            "{name}: alice sees the user"
        );
        b.click(&b.find("#regenerate"));
        assert_eq!(
            b.accept_dialog(),
            h.pick(
                "Regenerate selected API token? Previously generated token will become invalid.",
                "Regenerate the auth token? The current one stops working at once."
            )
        );
        b.find("#auth-token");
        assert_eq!(
            b.text(&b.find(".notice.good")),
            h.pick("API token updated", "API token regenerated")
        );
        assert_eq!(
            b.text(&b.find("#warning")),
            h.pick(
                "Make sure to copy the auth token as you won't be able to view it after the page is closed.",
                "Make sure to copy the auth token: it cannot be viewed again after this page is closed."
            )
        );
        assert_eq!(b.text(&b.find("#s-user")), "bob");
        assert!(b.all("#expired-warning").is_empty(), "{name}: not expired");

        // A token created already expired says so.
        create(
            &b,
            &h,
            "expired",
            Some("carol"),
            Some("1970-01-01 00:00:00"),
        );
        b.find("#auth-token");
        assert_eq!(
            b.text(&b.find("#expired-warning")),
            h.pick(
                "The token has expired. Please update the expiry date to use the token.",
                "This token has already expired: it is refused until its expiry is moved later."
            ),
            "{name}"
        );
        assert_eq!(h.token("expired").expiry.unix(), Some(0));

        // bob's own: Zabbix names no user on his token's pages.
        h.sign_in(&b, "bob");
        create(&b, &h, "bobs", None, None);
        b.find("#auth-token");
        assert_eq!(b.all("#s-user").len(), h.pick(0, 1), "{name}: the secret");
        let bobs = h.token("bobs").id.get();
        h.open(&b, &format!("/{bobs}"), "#t-name");
        assert_eq!(b.all("#t-owner").len(), h.pick(0, 1), "{name}: its page");
    }
}

/// Zabbix: refusals listed under "Cannot add API token" / "Cannot update API token" in its
/// words, and "Access denied" for a form without its CSRF field. The default: each refusal
/// beside its field, in the library's words. Nothing changes either way.
#[test]
fn refusals_and_their_headings() {
    let b = Browser::start();
    for h in both() {
        let name = h.name();
        let before = h.all();
        h.sign_in(&b, "alice");
        let refusals = |b: &Browser| {
            b.find("#refusals");
            (
                b.text(&b.find("#refusals strong")),
                texts(b, "#refusals li"),
            )
        };
        create(&b, &h, "", None, None);
        if h.zabbix {
            assert_eq!(
                refusals(&b),
                (
                    "Cannot add API token".to_owned(),
                    vec![
                        "Incorrect value for field \"name\": cannot be empty.".to_owned(),
                        "Field \"userid\" is mandatory.".to_owned()
                    ]
                )
            );
        } else {
            assert_eq!(b.text(&b.find("#name-error")), "name cannot be empty");
            assert!(b.all("#refusals").is_empty());
        }
        // Spaces: Zabbix trims them (an empty name); the default refuses them as such.
        create(&b, &h, "   ", Some("bob"), None);
        if h.zabbix {
            assert_eq!(
                refusals(&b).1,
                ["Incorrect value for field \"name\": cannot be empty."]
            );
        } else {
            let error = b.text(&b.find("#name-error"));
            assert!(error.contains("whitespace"), "{error}");
        }
        for at in ["", "01-01-2021 00:00:00", "2021-01-01 24:00:00"] {
            if !h.zabbix && !at.is_empty() {
                continue; // the browser's picker cannot hold these
            }
            create(&b, &h, "expiry", Some("bob"), Some(at));
            if h.zabbix {
                assert_eq!(
                    refusals(&b).1,
                    ["Incorrect value for field \"expires_at\": a time is expected."],
                    "{at}"
                );
            } else {
                assert_eq!(
                    b.text(&b.find("#expires_at-error")),
                    "expiry cannot be empty"
                );
            }
        }
        create(&b, &h, "deploy", Some("bob"), None);
        if h.zabbix {
            assert_eq!(
                refusals(&b).1,
                ["API token \"deploy\" already exists for userid \"bob\"."]
            );
        } else {
            let error = b.text(&b.find("#name-error"));
            assert!(error.contains("already exists"), "{error}");
        }
        // The edit form's heading.
        let grafana = h.token("grafana").id.get();
        h.open(&b, &format!("/{grafana}"), "#t-name");
        b.type_into(&b.find("#t-name"), "");
        b.click(&b.find("#submit"));
        if h.zabbix {
            assert_eq!(
                refusals(&b),
                (
                    "Cannot update API token".to_owned(),
                    vec!["Incorrect value for field \"name\": cannot be empty.".to_owned()]
                )
            );
        } else {
            assert_eq!(b.text(&b.find("#name-error")), "name cannot be empty");
        }
        // A form without its CSRF field.
        h.open(&b, "/new", "#t-name");
        b.type_into(&b.find("#t-name"), "no csrf");
        b.click(&b.find("#t-owner option[value='bob']"));
        b.script(
            "document.querySelector('#token input[name=csrf]').remove();",
            json!([]),
        );
        b.click(&b.find("#submit"));
        b.wait("the refusal", || {
            (b.url().ends_with("/tokens/new") && !b.all("h1").is_empty()).then_some(())
        });
        let heading = b.wait("the refusal's heading", || {
            let h1 = b.text(&b.find("h1"));
            (h1 != "New API token").then_some(h1)
        });
        assert_eq!(heading, h.pick("Access denied", "Refused"), "{name}");
        let text = b.text(&b.find("p.notice.bad"));
        if h.zabbix {
            assert_eq!(
                text,
                "You are logged in as \"alice\". You have no permissions to access this page."
            );
        } else {
            assert!(text.contains("CSRF token is missing"), "{text}");
        }
        assert_eq!(h.all(), before, "{name}: nothing changed");
    }
}

/// Zabbix: a name of at most 64 characters and a description of at most 65,535 (its policy,
/// on the fields), expiries within a 32-bit Unix time (2050 and 1021 refused). The default:
/// the host's policy's limits on the fields too (the demo's is Zabbix's), any expiry the core
/// takes.
#[test]
fn field_limits_and_the_expiry_range() {
    let b = Browser::start();
    for h in both() {
        let name = h.name();
        h.sign_in(&b, "alice");
        h.open(&b, "/new", "#t-name");
        let field = b.find("#t-name");
        assert_eq!(b.attribute(&field, "maxlength").as_deref(), Some("64"));
        b.type_into(&field, &"n".repeat(70));
        assert_eq!(
            b.property(&field, "value").as_str().unwrap().len(),
            64,
            "{name}: typing stops at 64"
        );
        assert_eq!(
            b.attribute(&b.find("#t-description"), "maxlength")
                .as_deref(),
            Some("65535")
        );
        let before = h.all().len();
        for at in ["2050-01-01 00:00:00", "1021-01-01 00:00:00"] {
            create(&b, &h, "far", Some("bob"), Some(at));
            if h.zabbix {
                b.find("#refusals");
                assert_eq!(
                    texts(&b, "#refusals li"),
                    ["Invalid parameter \"/1/expires_at\": a number is too large."],
                    "{at}"
                );
            } else {
                b.find("#auth-token");
                h.tokens.delete(&admin(), [h.token("far").id]).unwrap();
            }
        }
        assert_eq!(h.all().len(), before, "{name}");
        create(
            &b,
            &h,
            "till 2038",
            Some("bob"),
            Some("2038-01-01 00:00:00"),
        );
        b.find("#auth-token");
        assert_eq!(h.token("till 2038").expiry.unix(), Some(2_145_916_800));
    }
}

/// Zabbix's auth token is 64 hex digits (`Policy::zabbix()`); the demo's default host keeps
/// the library's `tok_` format. Either authenticates once shown.
#[test]
fn the_auth_token_format() {
    let b = Browser::start();
    for h in both() {
        h.sign_in(&b, "alice");
        create(&b, &h, "format", Some("bob"), None);
        let secret = b
            .property(&b.find("#auth-token"), "value")
            .as_str()
            .unwrap()
            .to_owned();
        if h.zabbix {
            assert!(
                secret.len() == 64
                    && secret
                        .bytes()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{secret}"
            );
        } else {
            assert!(secret.starts_with("tok_"), "{secret}");
        }
        let grant = h
            .tokens
            .authenticate(&secret, &RequestContext::unknown_address())
            .unwrap();
        assert_eq!(grant.token, h.token("format").id);
        assert_ne!(grant.token, TokenId::new(0));
    }
}

/// The list as alice sees it, in each preset: `target/tmp/browser/page.png` and
/// `page-zabbix.png`, copied to the README's `docs/` with `UPDATE_DOCS_SCREENSHOTS=1`.
#[test]
fn screenshots_of_both_presets() {
    let b = Browser::start();
    for h in both() {
        h.sign_in(&b, "alice");
        // Fonts and layout settle before the picture.
        b.wait("the page loaded", || {
            (b.script("return document.readyState;", json!([])) == json!("complete")).then_some(())
        });
        let file = h.pick("page-zabbix.png", "page.png");
        let png = b.screenshot(file);
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000);
        if std::env::var_os("UPDATE_DOCS_SCREENSHOTS").is_some() {
            let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
            std::fs::write(docs.join(file), bytes).unwrap();
        }
    }
}
