//! The *API tokens* page (Zabbix's *Users → API tokens*): a server-rendered [`Router`] a host
//! nests, over the same operations and the same request→[`Actor`](api_tokens::Actor) mapping as the
//! [self-service API](crate::manage).
//!
//! ```
//! use api_tokens::{Actor, Tokens, UserId};
//! use api_tokens_axum::Refusal;
//! use api_tokens_axum::manage::actor_from_fn;
//! use api_tokens_axum::page::{PageKey, TokensPage};
//! use axum::Router;
//!
//! /// Whoever the host's own login put in the request.
//! #[derive(Clone)]
//! struct Signed { user: UserId, admin: bool }
//!
//! let tokens = Tokens::in_memory();
//! let app: Router = Router::new().nest_service(
//!     "/tokens",
//!     TokensPage::new(tokens)
//!         .with_key(PageKey::random()) // in a fleet: the same key on every process
//!         .with_actors(actor_from_fn(|parts| {
//!             let s = parts.extensions.get::<Signed>().ok_or(Refusal::no_credentials())?;
//!             Ok(if s.admin { Actor::admin(s.user.clone()) } else { Actor::user(s.user.clone()) })
//!         }))
//!         .router::<()>(),
//! );
//! // … .layer(your_login_layer) that inserts `Signed` into the request's extensions.
//! ```
//!
//! | method and path (under the mount point) | what |
//! | --- | --- |
//! | `GET /` (`?sort=name&order=desc&page=2&name=ci&status=enabled…`) | the list: filter, sortable columns, checkboxes, status buttons, mass actions, pager |
//! | `POST /filter` | reads the filter form and redirects to the list with the filter in its address |
//! | `POST /mass` | mass enable, disable or delete (`action`, `ids`), after a confirmation |
//! | `POST /toggle` | a click on a status: enables or disables one token |
//! | `GET /new`, `POST /new` | the create form; on success, the answer shows the new secret, once |
//! | `GET /{id}/secret` | where a page that showed a secret is reloaded: says it is gone (`410`) |
//! | `GET /{id}`, `POST /{id}` | a token's page: edit (never the user), regenerate, delete |
//! | `POST /{id}/regenerate` | a new secret (the old one stops working at once), after a confirmation; the answer shows it, once |
//! | `GET /assets/page.css`, `GET /assets/page.js` | the style and the small script |
//!
//! The page answers at its mount point with and without a trailing `/` (`/tokens` and
//! `/tokens/` under `nest("/tokens", …)`).
//!
//! **Security.** Every `POST` carries the session's CSRF token (a hidden field) and is refused
//! with `403` without it; the session cookie is `HttpOnly`, `SameSite=Strict`, scoped to the
//! mount point (and `Secure` with [`TokensPage::with_secure_cookie`]). A new secret is never
//! stored, not even for a moment: the `POST` that creates or regenerates it shows it in its own
//! answer, and nowhere else (never in a URL, a cookie or a log). The page's script then
//! replaces that entry of the browser's history with `/{id}/secret`, so a reload or a return
//! says the secret is gone. Without the script a reload sends the form again, and that is
//! refused: a create by the owner's unique token names, a regenerate because the form carries
//! the version of the secret it was shown with (a keyed MAC of its hash), which the first
//! regenerate changed (checked and written as one compare-and-set,
//! [`Tokens::generate_if`](api_tokens::Tokens::generate_if)). Every page is `Cache-Control: no-store` and has a strict
//! `Content-Security-Policy` (scripts and styles from the page's own assets only, no inline
//! script); every string from a user or a token is escaped. Nothing the page logs contains a
//! secret, a CSRF token or a session cookie. Sessions are bounded in time ([`SessionLimits`]).
//!
//! **No state in the process: any number of processes serve the page**, behind any load
//! balancer, without sticky sessions. The page keeps nothing between requests; what it hands
//! the browser is signed with the page's [`PageKey`] (keyed BLAKE3) and checked when it comes
//! back:
//!
//! | what | where it lives |
//! | --- | --- |
//! | who the user is | the host's own login, read by the [`ActorMapping`] on every request |
//! | the page's session | a cookie (`api_tokens_page`): a random id, when it was opened and last renewed, and their MAC for this user; it ends when idle or old ([`SessionLimits`]) |
//! | the CSRF token of every form | the MAC of the session's id and the user: no cookie of its own, the same on every process |
//! | the list's filter, sort and page | the list's address (its query string) |
//! | the message for the next page ("API tokens deleted") | a cookie of a minute (`api_tokens_notice`), signed for the session, cleared by the page that shows it |
//! | a new secret | the answer to the `POST` that made it, only |
//!
//! Give every process the same key with [`TokensPage::with_key`] (from the host's
//! configuration: [`PageKey::from_env`]); a page without one makes a random key, which is
//! right for one process. A session says nothing about who is signed in: a session cookie of
//! another user (a shared browser) proves nothing and a fresh session is opened.
//!
//! **Beside the host's session layer.** A host running `tower-sessions` (or axum-login over
//! it) keeps its login there and maps it to the caller with [`actor_from_fn`](crate::manage::actor_from_fn)
//! (its `Session` is in the request's extensions). The page does not store its own state in
//! that session: it has nothing to store. Its own cookie is kept instead of a row in the host's
//! store because it only binds CSRF tokens to a browser, which a signature does without a
//! store round trip per request, without a `tower-sessions` dependency for hosts that have
//! their own login, and without a secret ever resting in the host's session store.
//!
//! Why the signed cookie and the CSRF MAC are written here rather than taken from a crate is
//! weighed in one place, the crate's *What is hand-written, and why* ([crate docs](crate)).
//!
//! **Lists** read at most [`TokensPage::with_max_rows`] tokens (10,000 by default) and page them
//! in memory (the core's [`Query`] has a limit, no offset); sorting by user or creator (which
//! the core does not sort by) happens there too. Past the cap the page says so.
//!
//! **Without JavaScript** the page works the same: a confirmation is a page of its own instead
//! of a dialog, the mass actions stay enabled (with the script they wait for a selected row;
//! without a selection the server asks for one), the filter folds but is not remembered, and
//! the copy button is left to the keyboard. The script remembers the filter's fold in a cookie
//! of its own (`api_tokens_filter`, a look, nothing the server stores).
//!
//! **Texts and presets.** Every text the page shows comes from one table, [`Texts`]: replace it
//! ([`TokensPage::with_texts`]) to translate or reword the page, refusals of the core included.
//! A [`Preset`] adds the choices in which Zabbix's frontend differs from this page's default
//! (columns per view and their sorting, the create form's defaults, the expiry's input and
//! range): [`TokensPage::with_preset`]`(`[`Preset::zabbix`]`())` is the page as Zabbix's own
//! frontend tests expect it (pair it with [`Policy::zabbix`](api_tokens::Policy::zabbix)).
//! The form's length limits come from the [`Tokens`]' policy in either.
//!
//! ```
//! use api_tokens::{Policy, Tokens};
//! use api_tokens_axum::page::{Preset, Texts, TokensPage};
//!
//! let tokens = Tokens::in_memory().with_policy(Policy::zabbix());
//! let zabbix = TokensPage::new(tokens.clone()).with_preset(Preset::zabbix());
//!
//! let mut texts = Texts::english();
//! texts.lang = "lv".into();
//! texts.create = "Izveidot API marķieri".into();
//! texts.problem("name.empty", "Nosaukums nevar būt tukšs.");
//! let latvian = TokensPage::new(tokens).with_texts(texts);
//! # drop((zabbix, latvian));
//! ```

use std::sync::Arc;

use api_tokens::store::{SortField, SortOrder};
use api_tokens::time::Duration as TimeDuration;
use api_tokens::{
    Error, Expiry, Forbidden, IpAllowlist, MemoryStore, PermissionSet, Problem, Query, Status,
    Token, TokenId, TokenName, TokenStore, TokenUpdate, Tokens, UserId, ValidationError,
};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::manage::{ActorMapping, ApiError, FromGrant, SelfService};

mod extract;
mod filter;
mod form;
mod html;
mod preset;
mod render;
mod session;
mod texts;

pub use preset::{ExpiryInput, Preset};
pub use session::{PageKey, PageKeyError, SessionLimits};
pub use texts::{Texts, UnknownText};

use extract::{Ctx, Page, Posted};
use filter::{Filter, MAX_DAYS};
use form::Form;
use render::{Errors, FilterInput, Frame, NewSecret, Reveal, TokenInput};
use session::{Notice, Sessions};
use texts::fill;

/// The session cookie's name.
const COOKIE_NAME: &str = "api_tokens_page";
/// The cookie carrying a message to the next page.
const NOTICE_COOKIE: &str = "api_tokens_notice";
/// The cookie the page's script sets when the filter is folded away (`folded`) or opened
/// again: a look the browser keeps, nothing the server stores.
const FOLD_COOKIE: &str = "api_tokens_filter";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const CSS: &str = include_str!("page/page.css");
const JS: &str = include_str!("page/page.js");

/// The highest page number a request may name.
const MAX_PAGE: usize = 1_000_000;

/// A column of the list the page sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Col {
    Name,
    User,
    Expires,
    Created,
    Creator,
    LastUsed,
    Status,
}

impl Col {
    const ALL: [Self; 7] = [
        Self::Name,
        Self::User,
        Self::Expires,
        Self::Created,
        Self::Creator,
        Self::LastUsed,
        Self::Status,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::User => "user",
            Self::Expires => "expires_at",
            Self::Created => "created_at",
            Self::Creator => "creator",
            Self::LastUsed => "last_used_at",
            Self::Status => "status",
        }
    }

    pub(crate) fn label(self, texts: &Texts) -> &str {
        match self {
            Self::Name => &texts.col_name,
            Self::User => &texts.col_user,
            Self::Expires => &texts.col_expires,
            Self::Created => &texts.col_created,
            Self::Creator => &texts.col_creator,
            Self::LastUsed => &texts.col_last_used,
            Self::Status => &texts.col_status,
        }
    }

    /// The columns of a view, in order: an administrator's, or a user's own.
    pub(crate) fn shown(admin: bool, preset: &Preset) -> Vec<Self> {
        Self::ALL
            .into_iter()
            .filter(|c| match c {
                Self::User => admin,
                Self::Creator => admin || preset.users_in_own_view,
                _ => true,
            })
            .collect()
    }

    /// Whether a view sorts by this column (shown, and sortable in the preset).
    pub(crate) fn sortable(self, admin: bool, preset: &Preset) -> bool {
        Self::shown(admin, preset).contains(&self)
            && (self != Self::Created || preset.created_at_sortable)
    }
}

/// The list's sort and page, from its query string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListView {
    pub(crate) sort: Col,
    pub(crate) desc: bool,
    pub(crate) page: usize,
}

impl Default for ListView {
    fn default() -> Self {
        Self {
            sort: Col::Name,
            desc: false,
            page: 1,
        }
    }
}

impl ListView {
    /// Reads `sort` (one of the view's sortable columns), `order` and `page` (each optional)
    /// from `form`.
    fn parse(form: &Form, admin: bool, preset: &Preset) -> Result<Self, String> {
        let texts = &preset.texts;
        let mut view = Self::default();
        if let Some(s) = form.get("sort") {
            let sortable: Vec<Col> = Col::ALL
                .into_iter()
                .filter(|c| c.sortable(admin, preset))
                .collect();
            view.sort = sortable
                .iter()
                .copied()
                .find(|c| c.name() == s)
                .ok_or_else(|| {
                    let names: Vec<&str> = sortable.iter().map(|c| c.name()).collect();
                    fill(&texts.bad_sort, &[("columns", &names.join(", "))])
                })?;
        }
        view.desc = match form.get("order") {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(texts.bad_order.to_string()),
        };
        if let Some(p) = form.get("page") {
            view.page = p
                .parse::<usize>()
                .ok()
                .filter(|p| (1..=MAX_PAGE).contains(p))
                .ok_or_else(|| texts.bad_page.to_string())?;
        }
        Ok(view)
    }

    /// The list's query string for this view of `filter`.
    fn query_string(&self, filter: &Filter) -> String {
        format!(
            "?sort={}&order={}&page={}{}",
            self.sort.name(),
            if self.desc { "desc" } else { "asc" },
            self.page,
            filter.query()
        )
    }

    /// The view's fields and `filter`'s, for the hidden fields of a form that comes back to
    /// this list.
    fn fields(&self, filter: &Filter) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("sort", self.sort.name().to_owned()),
            ("order", if self.desc { "desc" } else { "asc" }.to_owned()),
            ("page", self.page.to_string()),
        ];
        out.extend(filter.fields());
        out
    }
}

#[derive(Clone, Debug)]
struct Settings {
    preset: Preset,
    users: Vec<UserId>,
    page_size: usize,
    max_rows: usize,
    max_body_bytes: usize,
    secure_cookie: bool,
    sessions: SessionLimits,
    key: PageKey,
}

/// The *API tokens* page over a [`Tokens`]: see the [module](self) for its routes and rules.
pub struct TokensPage<S = MemoryStore, M = FromGrant> {
    service: SelfService<S, M>,
    settings: Settings,
}

impl<S, M: std::fmt::Debug> std::fmt::Debug for TokensPage<S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokensPage")
            .field("service", &self.service)
            .field("settings", &self.settings)
            .finish()
    }
}

impl<S: TokenStore + 'static> TokensPage<S, FromGrant> {
    /// The page over `tokens`, the caller from an [`AuthLayer`](crate::AuthLayer)'s grant
    /// ([`FromGrant`]); most hosts map their own login with [`TokensPage::with_actors`].
    pub fn new(tokens: Tokens<S>) -> Self {
        Self::from_service(SelfService::new(tokens))
    }
}

/// `with_*` methods that set one of the page's settings: `name(arg: Type) field = value;`.
macro_rules! settings {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $ty:ty) $($field:ident).+ = $value:expr;)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.settings.$($field).+ = $value;
            self
        }
    )*};
}

impl<S: TokenStore + 'static, M: ActorMapping<S>> TokensPage<S, M> {
    /// The page over a [`SelfService`] (its actor mapping and limits), to serve beside its JSON
    /// API.
    pub fn from_service(service: SelfService<S, M>) -> Self {
        Self {
            service,
            settings: Settings {
                preset: Preset::standard(),
                users: Vec::new(),
                page_size: 50,
                max_rows: 10_000,
                max_body_bytes: 64 * 1024,
                secure_cookie: false,
                sessions: SessionLimits::default(),
                key: PageKey::random(),
            },
        }
    }

    /// Maps requests to callers with `actors` (the host's login).
    pub fn with_actors<M2: ActorMapping<S>>(self, actors: M2) -> TokensPage<S, M2> {
        TokensPage {
            service: self.service.with_actors(actors),
            settings: self.settings,
        }
    }

    settings! {
        /// The users an admin picks from (the create form's *User*, the filter's *Users* and
        /// *Created by*). Without them those fields are text (user ids, comma-separated).
        /// At most 1,000 are kept.
        with_users(users: impl IntoIterator<Item = UserId>) users =
            users.into_iter().take(1_000).collect();
        /// Tokens per page (1 to 1,000; default 50).
        with_page_size(n: usize) page_size = n.clamp(1, 1_000);
        /// Most tokens one list reads (default 10,000): past it the page asks for a narrower
        /// filter. At least one page.
        with_max_rows(n: usize) max_rows = n.max(1);
        /// Marks the session cookie `Secure` (send it over HTTPS only). Turn it on behind HTTPS.
        with_secure_cookie(secure: bool) secure_cookie = secure;
        /// The key the page signs its session cookies, CSRF tokens and messages with: **the same
        /// on every process serving the page** (see the [module](self) docs). Without it the page
        /// makes a random key, right for one process only.
        with_key(key: PageKey) key = key;
        /// How long the page's sessions last.
        with_session_limits(limits: SessionLimits) sessions = limits;
        /// The page's texts and the choices of its look ([`Preset::standard`] by default;
        /// [`Preset::zabbix`] for Zabbix's frontend). Replaces the texts too: give other texts
        /// after it with [`TokensPage::with_texts`].
        with_preset(preset: Preset) preset = preset;
        /// Every text the page shows (a translation, other wording), keeping the rest of the
        /// preset.
        with_texts(texts: Texts) preset.texts = texts;
    }

    /// The page's routes, to mount under a path of the host's choosing. Mount them with
    /// `Router::nest_service("/tokens", page.router::<()>())` to answer at `/tokens` and at
    /// `/tokens/` alike (axum's `nest` answers only the first).
    pub fn router<St: Clone + Send + Sync + 'static>(self) -> Router<St> {
        let shared = Arc::new(Shared {
            sessions: Sessions::new(self.settings.key.clone(), self.settings.sessions),
            service: self.service,
            settings: self.settings,
        });
        Router::new()
            .route("/", get(list_page::<S, M>))
            .route("/filter", post(set_filter::<S, M>))
            .route("/mass", post(mass::<S, M>))
            .route("/toggle", post(toggle::<S, M>))
            .route("/new", get(new_page::<S, M>).post(create::<S, M>))
            .route(
                "/assets/page.css",
                get(|| async { asset("text/css; charset=utf-8", CSS) }),
            )
            .route(
                "/assets/page.js",
                get(|| async { asset("text/javascript; charset=utf-8", JS) }),
            )
            .route("/{id}", get(token_page::<S, M>).post(update::<S, M>))
            .route("/{id}/secret", get(secret_page::<S, M>))
            .route("/{id}/regenerate", post(regenerate::<S, M>))
            .with_state(shared)
    }
}

struct Shared<S, M> {
    service: SelfService<S, M>,
    settings: Settings,
    sessions: Sessions,
}

type St<S, M> = State<Arc<Shared<S, M>>>;

/// The cookies an answer sets.
type Cookies = Vec<HeaderValue>;

/// The caller's session as a page opens it: the CSRF token for the page's forms, and the
/// cookie to set when the session is new or due for renewal.
struct PageSession {
    /// Its CSRF token, for the page's forms.
    csrf: String,
    /// The session itself.
    session: session::Session,
    /// `Set-Cookie` for a session opened or renewed by this request.
    cookies: Cookies,
}

impl Ctx {
    fn admin(&self) -> bool {
        self.caller.actor.manage_others
    }

    fn frame<'a, S: TokenStore + 'static, M: ActorMapping<S>>(
        &'a self,
        shared: &'a Shared<S, M>,
        csrf: &'a str,
    ) -> Frame<'a> {
        let policy = shared.service.tokens().policy();
        Frame {
            base: &self.base,
            user: &self.caller.actor.user,
            csrf,
            admin: self.admin(),
            users: &shared.settings.users,
            preset: &shared.settings.preset,
            texts: &shared.settings.preset.texts,
            name_max: policy.max_name_chars.min(api_tokens::token::MAX_NAME_LEN),
            description_max: policy.max_description_chars,
            filter_folded: self.filter_folded,
        }
    }

    /// The list's address: its root, or the view `view` of `filter`.
    fn list_url(&self, view: Option<&ListView>, filter: &Filter) -> String {
        let root = if self.base.is_empty() {
            "/"
        } else {
            &self.base
        };
        match view {
            Some(v) => format!("{root}{}", v.query_string(filter)),
            None if filter.is_empty() => root.to_owned(),
            None => format!("{root}?{}", filter.query().trim_start_matches('&')),
        }
    }
}

/// An HTML answer with the page's headers (and its cookies).
fn respond(status: StatusCode, body: String, cookies: Cookies) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    for cookie in cookies {
        h.append(SET_COOKIE, cookie);
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `303 See Other` to `location` (a path of the page: never a secret in it), with `cookies`.
fn see_other(location: &str, cookies: Cookies) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match HeaderValue::from_str(location) {
        Ok(v) => {
            h.insert(LOCATION, v);
        }
        Err(_) => {
            h.insert(LOCATION, HeaderValue::from_static("/"));
        }
    }
    for cookie in cookies {
        h.append(SET_COOKIE, cookie);
    }
    response
}

impl<S: TokenStore + 'static, M: ActorMapping<S>> Shared<S, M> {
    /// The caller's session: the one its cookie proves, or a new one (see [`PageSession`]).
    fn session(&self, ctx: &Ctx) -> PageSession {
        let user = &ctx.caller.actor.user;
        let (session, renewed) = match ctx.session {
            Some(s) => (s, self.sessions.renewed(&s, ctx.now)),
            None => {
                let s = self.sessions.open(ctx.now);
                (s, Some(s))
            }
        };
        let cookies = renewed
            .and_then(|s| self.cookie(ctx, COOKIE_NAME, &self.sessions.cookie(user, &s), None))
            .into_iter()
            .collect();
        PageSession {
            csrf: self.sessions.csrf(user, &session),
            session: renewed.unwrap_or(session),
            cookies,
        }
    }

    /// A `Set-Cookie` of the page: scoped to its mount point, `HttpOnly`, `SameSite=Strict`
    /// (and `Secure` when configured); a session cookie unless `max_age` is given.
    fn cookie(
        &self,
        ctx: &Ctx,
        name: &str,
        value: &str,
        max_age: Option<i64>,
    ) -> Option<HeaderValue> {
        let path = if ctx.base.is_empty() { "/" } else { &ctx.base };
        let text = format!(
            "{name}={value}; Path={path}{}; HttpOnly; SameSite=Strict{}",
            max_age.map_or_else(String::new, |s| format!("; Max-Age={s}")),
            if self.settings.secure_cookie {
                "; Secure"
            } else {
                ""
            }
        );
        HeaderValue::from_str(&text).ok()
    }

    /// The cookie that leaves `notice` for the caller's next page (none without a session:
    /// a form that passed its CSRF check always has one).
    fn notice(&self, ctx: &Ctx, notice: &Notice) -> Cookies {
        let Some(session) = &ctx.session else {
            return Vec::new();
        };
        let value = self
            .sessions
            .notice_cookie(&ctx.caller.actor.user, session, notice, ctx.now);
        self.cookie(ctx, NOTICE_COOKIE, &value, Some(session::NOTICE_SECS))
            .into_iter()
            .collect()
    }

    /// The message the caller's previous answer left for this page, if one was left for this
    /// session; the cookie that carried it is cleared either way.
    fn take_notice(&self, ctx: &Ctx, page: &mut PageSession) -> Option<Notice> {
        let cookie = ctx.notice.as_deref()?;
        page.cookies
            .extend(self.cookie(ctx, NOTICE_COOKIE, "", Some(0)));
        self.sessions
            .notice_of(Some(cookie), &ctx.caller.actor.user, &page.session, ctx.now)
    }

    /// A message page (with the status) for the caller.
    fn message(&self, ctx: &Ctx, status: StatusCode, title: &str, text: &str) -> Response {
        respond(
            status,
            render::message(&ctx.frame(self, ""), title, text),
            Vec::new(),
        )
    }

    /// The answer for an id that names no token the caller may see (or is no id at all).
    fn not_found(&self, ctx: &Ctx) -> Response {
        let t = self.texts();
        self.message(ctx, StatusCode::NOT_FOUND, &t.not_found, &t.no_such_token)
    }

    /// A bad request's message page.
    fn bad_request(&self, ctx: &Ctx, text: &str) -> Response {
        self.message(
            ctx,
            StatusCode::BAD_REQUEST,
            &self.texts().bad_request,
            text,
        )
    }

    fn texts(&self) -> &Texts {
        &self.settings.preset.texts
    }

    fn preset(&self) -> &Preset {
        &self.settings.preset
    }

    /// The CSRF token of the caller's session (empty without one).
    fn csrf(&self, ctx: &Ctx) -> String {
        ctx.session
            .map(|s| self.sessions.csrf(&ctx.caller.actor.user, &s))
            .unwrap_or_default()
    }

    /// Whether `presented` is the CSRF token of the session the caller's cookie proves.
    fn csrf_ok(&self, ctx: &Ctx, presented: Option<&str>) -> bool {
        match (&ctx.session, presented) {
            (Some(s), Some(p)) => self.sessions.csrf_ok(&ctx.caller.actor.user, s, p),
            _ => false,
        }
    }

    /// Renders the list for `view` with the caller's filter.
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        ctx: &Ctx,
        csrf: &str,
        filter: &Filter,
        input: &FilterInput,
        mut errors: Errors,
        notice: Option<Notice>,
        mut view: ListView,
        status: StatusCode,
        cookies: Cookies,
    ) -> Response {
        let max_rows = self.settings.max_rows;
        let never_first = self.preset().never_expires_first;
        let query = query_of(filter, view, ctx.admin(), max_rows, never_first);
        let mut rows = match self.service.list(ctx.caller.clone(), query).await {
            Ok(rows) => rows,
            Err(e) => {
                let field = filter_field(&e);
                errors.add(field, api_problem(self.texts(), field, &e));
                Vec::new()
            }
        };
        let capped = rows.len() > max_rows;
        rows.truncate(max_rows);
        let by_user = |a: &Token, b: &Token, user: fn(&Token) -> &str| {
            user(a)
                .cmp(user(b))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.id.cmp(&b.id))
        };
        match view.sort {
            Col::User => rows.sort_by(|a, b| by_user(a, b, |t| t.owner.as_str())),
            Col::Creator => rows.sort_by(|a, b| by_user(a, b, |t| t.creator.as_str())),
            _ => {}
        }
        if view.desc && matches!(view.sort, Col::User | Col::Creator) {
            rows.reverse();
        }
        let total = rows.len();
        let size = self.settings.page_size;
        let pages = total.div_ceil(size).max(1);
        view.page = view.page.min(pages);
        let start = (view.page - 1) * size;
        let shown = rows.get(start..(start + size).min(total)).unwrap_or(&[]);
        let now = self.service.tokens().now();
        let body = render::list(
            &ctx.frame(self, csrf),
            filter,
            input,
            &errors,
            notice.as_ref(),
            &view,
            shown,
            total,
            capped,
            size,
            now,
        );
        respond(status, body, cookies)
    }
}

/// The core query for the list: the filter, the sort where the core sorts, a bound.
fn query_of(
    filter: &Filter,
    view: ListView,
    admin: bool,
    max_rows: usize,
    never_first: bool,
) -> Query {
    let mut q = Query::new();
    if !filter.name.is_empty() {
        q = q.name_contains(filter.name.clone());
    }
    if admin && !filter.owners.is_empty() {
        q = q.owners(filter.owners.iter().cloned());
    }
    if admin && !filter.creators.is_empty() {
        q = q.creators(filter.creators.iter().cloned());
    }
    if let Some(days) = filter.expires_within_days {
        q = q.expiring_within(TimeDuration::days(i64::from(days)));
    }
    if let Some(status) = filter.status {
        q = q.status(status);
    }
    let order = if view.desc {
        SortOrder::Descending
    } else {
        SortOrder::Ascending
    };
    let field = match view.sort {
        Col::Name => Some(SortField::Name),
        Col::Expires if never_first => Some(SortField::ExpiryNeverFirst),
        Col::Expires => Some(SortField::Expiry),
        Col::Created => Some(SortField::Created),
        Col::LastUsed => Some(SortField::LastUsed),
        Col::Status => Some(SortField::Status),
        // Sorted by the page after reading (the core sorts by its own fields only).
        Col::User | Col::Creator => None,
    };
    q = match field {
        Some(f) => q
            .sort(f, order)
            .then_sort(SortField::Name, SortOrder::Ascending),
        None => q.sort(SortField::Id, SortOrder::Ascending),
    };
    q.then_sort(SortField::Id, SortOrder::Ascending)
        .limit(max_rows.saturating_add(1))
}

/// The filter field a refused list query is about.
fn filter_field(e: &ApiError) -> Option<&'static str> {
    match e.field()? {
        "owners" | "owner" => Some("owners"),
        "name" => Some("name"),
        _ => None,
    }
}

/// The form field a refused token operation is about.
fn token_field(e: &ApiError) -> Option<&'static str> {
    if let ApiError::Tokens(Error::Forbidden {
        source: Forbidden::OtherUsersTokens,
        ..
    }) = e
    {
        return Some("owner");
    }
    match e.field()? {
        "name" => Some("name"),
        "owner" => Some("owner"),
        "description" => Some("description"),
        "expires_at" => Some("expires_at"),
        "permissions" => Some("permissions"),
        "allowlist" => Some("allowlist"),
        "status" => Some("status"),
        _ => None,
    }
}

fn parse_id(text: &str) -> Option<TokenId> {
    text.parse().ok()
}

/// The text of a refused value (see [`Texts`]): the template for its field and code, filled.
fn problem_text(
    texts: &Texts,
    field: Option<&str>,
    code: &str,
    message: &str,
    vars: &[(&str, &str)],
) -> String {
    let label = field.map(|f| texts.field_label(f)).unwrap_or_default();
    let mut all = vec![("message", message), ("field", label)];
    all.extend_from_slice(vars);
    fill(texts.problem_template(field, code), &all)
}

/// The text of a value the page refused while reading a form.
fn invalid_text(texts: &Texts, field: &str, e: &ValidationError) -> String {
    problem_text(
        texts,
        Some(field),
        e.code(),
        &e.to_string(),
        &[("value", &e.value)],
    )
}

/// The text of an operation's refusal, about form field `field` if any.
fn api_problem(texts: &Texts, field: Option<&str>, e: &ApiError) -> String {
    let (value, owner) = match e {
        ApiError::Tokens(Error::Invalid { source, .. }) => (
            source.value.clone(),
            match &source.problem {
                Problem::NameTaken { owner } => owner.to_string(),
                _ => String::new(),
            },
        ),
        _ => (String::new(), String::new()),
    };
    let id = match e {
        ApiError::Tokens(Error::NotFound { id, .. } | Error::Revoked { token: id, .. }) => {
            id.get().to_string()
        }
        _ => String::new(),
    };
    problem_text(
        texts,
        field,
        e.code(),
        &e.to_string(),
        &[("value", &value), ("owner", &owner), ("id", &id)],
    )
}

async fn list_page<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Page(ctx, ()): Page,
    RawQuery(query): RawQuery,
) -> Response {
    let texts = shared.texts();
    let form = match Form::parse(query.as_deref().unwrap_or_default()) {
        Ok(form) => form,
        Err(()) => return shared.bad_request(&ctx, &texts.not_utf8),
    };
    let view = match ListView::parse(&form, ctx.admin(), shared.preset()) {
        Ok(view) => view,
        Err(text) => return shared.bad_request(&ctx, &text),
    };
    let mut errors = Errors::default();
    let filter = Filter::read(&form, ctx.admin(), texts, &mut errors);
    let (input, status) = if errors.is_empty() {
        (FilterInput::of(&filter), StatusCode::OK)
    } else {
        (FilterInput::typed(&form), StatusCode::UNPROCESSABLE_ENTITY)
    };
    let mut session = shared.session(&ctx);
    let notice = shared.take_notice(&ctx, &mut session);
    shared
        .list(
            &ctx,
            &session.csrf,
            &filter,
            &input,
            errors,
            notice,
            view,
            status,
            session.cookies,
        )
        .await
}

/// Reads the filter form, and sends the browser to the list with the filter in its address.
async fn set_filter<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, ()): Posted,
) -> Response {
    if form.checked("reset") {
        return see_other(&ctx.list_url(None, &Filter::default()), Vec::new());
    }
    let mut errors = Errors::default();
    let filter = Filter::read(&form, ctx.admin(), shared.texts(), &mut errors);
    if !errors.is_empty() {
        let csrf = shared.csrf(&ctx);
        return shared
            .list(
                &ctx,
                &csrf,
                &Filter::default(),
                &FilterInput::typed(&form),
                errors,
                None,
                ListView::default(),
                StatusCode::UNPROCESSABLE_ENTITY,
                Vec::new(),
            )
            .await;
    }
    see_other(&ctx.list_url(None, &filter), Vec::new())
}

fn ids_of(form: &Form) -> Option<Vec<TokenId>> {
    form.all("ids").map(parse_id).collect()
}

/// A mass action of the list.
#[derive(Clone, Copy)]
enum Mass {
    Enable,
    Disable,
    Delete,
}

impl Mass {
    fn status(self) -> Option<Status> {
        match self {
            Self::Enable => Some(Status::Enabled),
            Self::Disable => Some(Status::Disabled),
            Self::Delete => None,
        }
    }

    /// The question asked before it, for `n` tokens.
    fn question(self, texts: &Texts, n: usize) -> String {
        let template = match (self, n == 1) {
            (Self::Enable, true) => &texts.confirm_enable_one,
            (Self::Enable, false) => &texts.confirm_enable_many,
            (Self::Disable, true) => &texts.confirm_disable_one,
            (Self::Disable, false) => &texts.confirm_disable_many,
            (Self::Delete, true) => &texts.confirm_delete_one,
            (Self::Delete, false) => &texts.confirm_delete_many,
        };
        fill(template, &[("n", &n.to_string())])
    }

    /// What is said once it is done, for `n` tokens.
    fn done(self, texts: &Texts, n: usize) -> &str {
        match (self, n == 1) {
            (Self::Enable, true) => &texts.enabled_one,
            (Self::Enable, false) => &texts.enabled_many,
            (Self::Disable, true) => &texts.disabled_one,
            (Self::Disable, false) => &texts.disabled_many,
            (Self::Delete, true) => &texts.deleted_one,
            (Self::Delete, false) => &texts.deleted_many,
        }
    }

    /// The log's verb.
    fn verb(self) -> &'static str {
        match self {
            Self::Enable => "enabled",
            Self::Disable => "disabled",
            Self::Delete => "deleted",
        }
    }
}

async fn mass<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, ()): Posted,
) -> Response {
    let texts = shared.texts();
    let (view, filter) = back_to(&shared, &ctx, &form);
    let back = ctx.list_url(Some(&view), &filter);
    let action = match form.get("action") {
        Some("enable") => Mass::Enable,
        Some("disable") => Mass::Disable,
        Some("delete") => Mass::Delete,
        _ => return shared.bad_request(&ctx, &texts.bad_action),
    };
    let ids = match ids_of(&form) {
        Some(ids) if ids.is_empty() => {
            let notice = Notice {
                ok: false,
                text: texts.select_first.to_string(),
                token: None,
            };
            return see_other(&back, shared.notice(&ctx, &notice));
        }
        Some(ids) => ids,
        None => return shared.bad_request(&ctx, &texts.bad_ids),
    };
    if form.get("confirmed") != Some("1") {
        let question = action.question(texts, ids.len());
        let mut fields: Vec<(&str, String)> =
            ids.iter().map(|id| ("ids", id.get().to_string())).collect();
        fields.push(("action", form.get("action").unwrap_or_default().to_owned()));
        fields.extend(view.fields(&filter));
        let csrf = shared.csrf(&ctx);
        let target = format!("{}/mass", ctx.base);
        return respond(
            StatusCode::OK,
            render::confirm(&ctx.frame(&shared, &csrf), &question, &target, &fields),
            Vec::new(),
        );
    }
    let result = match action.status() {
        Some(s) => {
            shared
                .service
                .set_status(ctx.caller.clone(), ids.clone(), s)
                .await
        }
        None => shared.service.delete(ctx.caller.clone(), ids.clone()).await,
    };
    let notice = match result {
        Ok(done) => {
            tracing::info!(actor = %ctx.caller.actor.user, tokens = ?done, "API tokens {} (page)", action.verb());
            Notice {
                ok: true,
                text: action.done(texts, done.len()).to_owned(),
                token: None,
            }
        }
        Err(e) => refused(texts, &e, &ids),
    };
    see_other(&back, shared.notice(&ctx, &notice))
}

/// The list a form of the list came from (its view and filter, sent back as hidden fields),
/// to return to: what does not read is left out.
fn back_to<S: TokenStore + 'static, M: ActorMapping<S>>(
    shared: &Shared<S, M>,
    ctx: &Ctx,
    form: &Form,
) -> (ListView, Filter) {
    let view = ListView::parse(form, ctx.admin(), shared.preset()).unwrap_or_default();
    let filter = Filter::read(form, ctx.admin(), shared.texts(), &mut Errors::default());
    (view, filter)
}

/// A refused mass action's message, naming the token it is about.
fn refused(texts: &Texts, e: &ApiError, ids: &[TokenId]) -> Notice {
    let token = match e.index() {
        Some(i) => ids.get(i).copied(),
        None if ids.len() == 1 => ids.first().copied(),
        None => None,
    };
    let message = api_problem(texts, None, e);
    Notice {
        ok: false,
        text: match token {
            Some(id) => fill(
                &texts.refused_token,
                &[("id", &id.get().to_string()), ("message", &message)],
            ),
            None => message,
        },
        token,
    }
}

async fn toggle<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, ()): Posted,
) -> Response {
    let texts = shared.texts();
    let (view, filter) = back_to(&shared, &ctx, &form);
    let target = form
        .get("toggle")
        .and_then(|v| v.split_once(':'))
        .and_then(|(id, to)| {
            let action = match to {
                "enabled" => Mass::Enable,
                "disabled" => Mass::Disable,
                _ => return None,
            };
            Some((parse_id(id)?, action))
        });
    let Some((id, action)) = target else {
        return shared.bad_request(&ctx, &texts.bad_toggle);
    };
    let status = action.status().unwrap_or(Status::Disabled);
    let notice = match shared
        .service
        .set_status(ctx.caller.clone(), vec![id], status)
        .await
    {
        Ok(_) => {
            tracing::info!(actor = %ctx.caller.actor.user, token = id.get(), "API token {} (page)", action.verb());
            Notice {
                ok: true,
                text: action.done(texts, 1).to_owned(),
                token: None,
            }
        }
        Err(e) => refused(texts, &e, &[id]),
    };
    see_other(
        &ctx.list_url(Some(&view), &filter),
        shared.notice(&ctx, &notice),
    )
}

async fn new_page<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Page(ctx, ()): Page,
) -> Response {
    let session = shared.session(&ctx);
    let preset = shared.preset();
    let input = TokenInput {
        owner: if preset.owner_preselected {
            ctx.caller.actor.user.as_str().to_owned()
        } else {
            String::new()
        },
        set_expiry: preset.expiry_checked,
        enabled: true,
        ..TokenInput::default()
    };
    let now = shared.service.tokens().now();
    respond(
        StatusCode::OK,
        render::token_form(
            &ctx.frame(&shared, &session.csrf),
            None,
            "",
            &input,
            &Errors::default(),
            now,
        ),
        session.cookies,
    )
}

fn token_input(form: &Form, preset: &Preset) -> TokenInput {
    let text = |name: &str| form.get(name).unwrap_or_default().to_owned();
    let name = text("name");
    TokenInput {
        name: if preset.trim_names {
            name.trim().to_owned()
        } else {
            name
        },
        owner: text("owner"),
        description: text("description"),
        set_expiry: form.checked("set_expiry"),
        expires_at: text("expires_at"),
        enabled: form.checked("enabled"),
        permissions: text("permissions"),
        allowlist: text("allowlist"),
    }
}

/// The typed values of a token form, every refused one named in `errors`.
struct Parsed {
    name: Option<TokenName>,
    expiry: Expiry,
    permissions: Option<PermissionSet>,
    allowlist: IpAllowlist,
}

/// `secs` as the page writes times, or the number when it is no time.
fn unix_text(secs: i64) -> String {
    api_tokens::time::OffsetDateTime::from_unix_timestamp(secs)
        .map_or_else(|_| secs.to_string(), html::datetime)
}

fn parse_token(input: &TokenInput, errors: &mut Errors, preset: &Preset) -> Parsed {
    let texts = &preset.texts;
    let name = TokenName::new(&input.name)
        .map_err(|e| errors.add(Some("name"), invalid_text(texts, "name", &e)))
        .ok();
    let expiry = if input.set_expiry {
        match form::expiry(&input.expires_at) {
            Ok(expiry) => {
                let outside = preset
                    .expiry_range
                    .as_ref()
                    .zip(expiry.unix())
                    .filter(|(range, at)| !range.contains(at));
                if let Some((range, at)) = outside {
                    let (value, min, max) = (
                        unix_text(at),
                        unix_text(*range.start()),
                        unix_text(*range.end()),
                    );
                    let message = format!(
                        "expiry {value} is outside the range allowed (from {min} to {max})"
                    );
                    errors.add(
                        Some("expires_at"),
                        problem_text(
                            texts,
                            Some("expires_at"),
                            Problem::OutOfRange.code(),
                            &message,
                            &[("value", &value), ("min", &min), ("max", &max)],
                        ),
                    );
                }
                expiry
            }
            Err(e) => {
                errors.add(Some("expires_at"), invalid_text(texts, "expires_at", &e));
                Expiry::NEVER
            }
        }
    } else {
        Expiry::NEVER
    };
    let permissions = if input.permissions.trim().is_empty() {
        None
    } else {
        input
            .permissions
            .parse::<PermissionSet>()
            .map_err(|e| errors.add(Some("permissions"), invalid_text(texts, "permissions", &e)))
            .ok()
    };
    let allowlist = if input.allowlist.trim().is_empty() {
        IpAllowlist::default()
    } else {
        input
            .allowlist
            .parse::<IpAllowlist>()
            .map_err(|e| errors.add(Some("allowlist"), invalid_text(texts, "allowlist", &e)))
            .unwrap_or_default()
    };
    Parsed {
        name,
        expiry,
        permissions,
        allowlist,
    }
}

async fn create<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, ()): Posted,
) -> Response {
    let texts = shared.texts();
    let input = token_input(&form, shared.preset());
    let mut errors = Errors::default();
    let parsed = parse_token(&input, &mut errors, shared.preset());
    let owner = if ctx.admin() {
        UserId::new(input.owner.trim())
            .map_err(|e| errors.add(Some("owner"), invalid_text(texts, "owner", &e)))
            .ok()
    } else {
        None
    };
    let now = shared.service.tokens().now();
    let csrf = shared.csrf(&ctx);
    let show_form = |errors: &Errors, status: StatusCode| {
        respond(
            status,
            render::token_form(&ctx.frame(&shared, &csrf), None, "", &input, errors, now),
            Vec::new(),
        )
    };
    let (Some(name), true) = (parsed.name, errors.is_empty()) else {
        return show_form(&errors, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let mut new = api_tokens::NewToken::new(name)
        .description(input.description.clone())
        .status(if input.enabled {
            Status::Enabled
        } else {
            Status::Disabled
        })
        .expiry(parsed.expiry)
        .allowlist(parsed.allowlist);
    if let Some(p) = parsed.permissions {
        new = new.permissions(p);
    }
    if let Some(o) = owner {
        new = new.owner(o);
    }
    // Sent twice (a reload of this answer, a second click), the same name for the same owner
    // is refused the second time: one token, one secret, shown once.
    match shared.service.issue(ctx.caller.clone(), new).await {
        Ok(issued) => {
            let id = issued.token.id;
            tracing::info!(actor = %ctx.caller.actor.user, token = id.get(), "API token added (page)");
            let shown = NewSecret {
                name: &issued.token.name,
                secret: &issued.secret,
                why: Reveal::Created,
            };
            respond(
                StatusCode::OK,
                render::secret(
                    &ctx.frame(&shared, &csrf),
                    id,
                    Some(&issued.token),
                    Some(&shown),
                    now,
                ),
                Vec::new(),
            )
        }
        Err(e) => {
            let field = token_field(&e);
            errors.add(field, api_problem(texts, field, &e));
            show_form(&errors, e.status())
        }
    }
}

/// Where a page that showed a new secret lands when it is reloaded or returned to (the page's
/// script puts this address in the browser's history): the secret was shown once and is gone.
async fn secret_page<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Page(ctx, id): Page<TokenId>,
) -> Response {
    let session = shared.session(&ctx);
    let token = shared.service.get(ctx.caller.clone(), id).await.ok();
    let now = shared.service.tokens().now();
    respond(
        StatusCode::GONE,
        render::secret(
            &ctx.frame(&shared, &session.csrf),
            id,
            token.as_ref(),
            None,
            now,
        ),
        session.cookies,
    )
}

/// A token's page, or the answer that there is none for this caller.
#[allow(clippy::too_many_arguments)]
async fn show_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    shared: &Shared<S, M>,
    ctx: &Ctx,
    csrf: &str,
    id: TokenId,
    input: Option<&TokenInput>,
    errors: &Errors,
    status: StatusCode,
    cookies: Cookies,
) -> Response {
    match shared.service.get(ctx.caller.clone(), id).await {
        Ok(token) => {
            let now = shared.service.tokens().now();
            let own = TokenInput::of(&token);
            let version = shared.sessions.secret_version(&token);
            respond(
                status,
                render::token_form(
                    &ctx.frame(shared, csrf),
                    Some(&token),
                    &version,
                    input.unwrap_or(&own),
                    errors,
                    now,
                ),
                cookies,
            )
        }
        Err(e) => {
            let texts = shared.texts();
            shared.message(ctx, e.status(), &texts.token, &api_problem(texts, None, &e))
        }
    }
}

async fn token_page<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Page(ctx, id): Page<TokenId>,
) -> Response {
    let session = shared.session(&ctx);
    show_token(
        &shared,
        &ctx,
        &session.csrf,
        id,
        None,
        &Errors::default(),
        StatusCode::OK,
        session.cookies,
    )
    .await
}

async fn update<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, id): Posted<TokenId>,
) -> Response {
    let texts = shared.texts();
    let csrf = shared.csrf(&ctx);
    let current = match shared.service.get(ctx.caller.clone(), id).await {
        Ok(t) => t,
        Err(e) => {
            return shared.message(
                &ctx,
                e.status(),
                &texts.token,
                &api_problem(texts, None, &e),
            );
        }
    };
    let input = token_input(&form, shared.preset());
    let mut errors = Errors::default();
    let parsed = parse_token(&input, &mut errors, shared.preset());
    let (Some(name), true) = (parsed.name, errors.is_empty()) else {
        return show_token(
            &shared,
            &ctx,
            &csrf,
            id,
            Some(&input),
            &errors,
            StatusCode::UNPROCESSABLE_ENTITY,
            Vec::new(),
        )
        .await;
    };
    // Only what changed is sent, as the seed's form does.
    let mut u = TokenUpdate::new(id);
    let mut changed = false;
    if name != current.name {
        u = u.name(name);
        changed = true;
    }
    if input.description != current.description {
        u = u.description(input.description.clone());
        changed = true;
    }
    let status = if input.enabled {
        Status::Enabled
    } else {
        Status::Disabled
    };
    if status != current.status {
        u = u.status(status);
        changed = true;
    }
    if parsed.expiry != current.expiry {
        u = u.expiry(parsed.expiry);
        changed = true;
    }
    let permissions = parsed.permissions.unwrap_or_else(PermissionSet::empty);
    if permissions != current.permissions {
        u = u.permissions(permissions);
        changed = true;
    }
    if parsed.allowlist != current.allowlist {
        u = u.allowlist(parsed.allowlist);
        changed = true;
    }
    if changed {
        if let Err(e) = shared.service.update(ctx.caller.clone(), u).await {
            let field = token_field(&e);
            errors.add(field, api_problem(texts, field, &e));
            return show_token(
                &shared,
                &ctx,
                &csrf,
                id,
                Some(&input),
                &errors,
                e.status(),
                Vec::new(),
            )
            .await;
        }
        tracing::info!(actor = %ctx.caller.actor.user, token = id.get(), "API token updated (page)");
    }
    let notice = Notice {
        ok: true,
        text: texts.updated.to_string(),
        token: None,
    };
    see_other(
        &ctx.list_url(None, &Filter::default()),
        shared.notice(&ctx, &notice),
    )
}

/// Regenerates a token's secret, once per form: the form carries the version of the secret it
/// was shown with, and a form whose token was regenerated since (sent again by a reload, a
/// second click, another tab) is refused with nothing changed. The new secret is shown in this
/// answer, and only here.
async fn regenerate<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, id): Posted<TokenId>,
) -> Response {
    let texts = shared.texts();
    let csrf = shared.csrf(&ctx);
    let version = form.get("version").unwrap_or_default();
    if form.get("confirmed") != Some("1") {
        let action = format!("{}/{}/regenerate", ctx.base, id.get());
        return respond(
            StatusCode::OK,
            render::confirm(
                &ctx.frame(&shared, &csrf),
                &texts.confirm_regenerate,
                &action,
                &[("version", version.to_owned())],
            ),
            Vec::new(),
        );
    }
    let result = shared
        .service
        .regenerate_if(ctx.caller.clone(), id, TimeDuration::ZERO, {
            let version = version.to_owned();
            let shared = Arc::clone(&shared);
            move |token: &Token| shared.sessions.secret_version(token) == version
        })
        .await;
    let (token, secret) = match result {
        Ok(Some(done)) => done,
        Ok(None) => {
            let mut errors = Errors::default();
            errors.add(None, texts.regenerate_stale.to_string());
            return show_token(
                &shared,
                &ctx,
                &csrf,
                id,
                None,
                &errors,
                StatusCode::CONFLICT,
                Vec::new(),
            )
            .await;
        }
        Err(e) => {
            let mut errors = Errors::default();
            errors.add(None, api_problem(texts, None, &e));
            return show_token(
                &shared,
                &ctx,
                &csrf,
                id,
                None,
                &errors,
                e.status(),
                Vec::new(),
            )
            .await;
        }
    };
    tracing::info!(actor = %ctx.caller.actor.user, token = id.get(), "API token regenerated (page)");
    let shown = NewSecret {
        name: &token.name,
        secret: &secret,
        why: Reveal::Regenerated,
    };
    let now = shared.service.tokens().now();
    respond(
        StatusCode::OK,
        render::secret(
            &ctx.frame(&shared, &csrf),
            id,
            Some(&token),
            Some(&shown),
            now,
        ),
        Vec::new(),
    )
}
