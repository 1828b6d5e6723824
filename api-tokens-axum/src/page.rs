//! The *API tokens* page (Zabbix's *Users → API tokens*): a server-rendered [`Router`] a host
//! nests, over the same operations and the same request→[`Actor`](api_tokens::Actor) mapping as the
//! [self-service API](crate::manage).
//!
//! ```
//! use api_tokens::{Actor, Tokens, UserId};
//! use api_tokens_axum::Refusal;
//! use api_tokens_axum::manage::actor_from_fn;
//! use api_tokens_axum::page::TokensPage;
//! use axum::Router;
//!
//! /// Whoever the host's own login put in the request.
//! #[derive(Clone)]
//! struct Signed { user: UserId, admin: bool }
//!
//! let tokens = Tokens::in_memory();
//! let app: Router = Router::new().nest(
//!     "/tokens",
//!     TokensPage::new(tokens)
//!         .with_actors(actor_from_fn(|parts| {
//!             let s = parts.extensions.get::<Signed>().ok_or(Refusal::no_credentials())?;
//!             Ok(if s.admin { Actor::admin(s.user.clone()) } else { Actor::user(s.user.clone()) })
//!         }))
//!         .router(),
//! );
//! // … .layer(your_login_layer) that inserts `Signed` into the request's extensions.
//! ```
//!
//! | method and path (under the mount point) | what |
//! | --- | --- |
//! | `GET /` (`?sort=name&order=desc&page=2`) | the list: filter, sortable columns, checkboxes, status buttons, mass actions, pager |
//! | `POST /filter` | sets (or resets) the filter, kept in the session |
//! | `POST /mass` | mass enable, disable or delete (`action`, `ids`), after a confirmation |
//! | `POST /toggle` | a click on a status: enables or disables one token |
//! | `GET /new`, `POST /new` | the create form; on success, a redirect to the secret |
//! | `GET /{id}/secret` | the new secret, **once** (with a copy button and a warning) |
//! | `GET /{id}`, `POST /{id}` | a token's page: edit (never the user), regenerate, delete |
//! | `POST /{id}/regenerate` | a new secret (the old one stops working at once), after a confirmation |
//! | `GET /assets/page.css`, `GET /assets/page.js` | the style and the small script |
//!
//! **Security.** Every `POST` carries the session's CSRF token (a hidden field) and is refused
//! with `403` without it; the session cookie is `HttpOnly`, `SameSite=Strict`, scoped to the
//! mount point (and `Secure` with [`TokensPage::with_secure_cookie`]). A new secret never travels in
//! a URL: the `POST` keeps it in the server-side session and redirects (`303`) to
//! `/{id}/secret`, which shows it once and forgets it; a reload shows that it is gone. Every
//! page is `Cache-Control: no-store` and has a strict `Content-Security-Policy` (scripts and
//! styles from the page's own assets only, no inline script); every string from a user or a
//! token is escaped. Nothing the page logs contains a secret or a CSRF token. Sessions are
//! bounded ([`SessionLimits`]).
//!
//! **Sessions live in the process** that serves the page (in memory, bounded): behind a load
//! balancer over several processes, send each browser to one of them (sticky sessions), or a
//! form posted to another process is refused as without its CSRF token.
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
    Token, TokenId, TokenName, TokenSecret, TokenStore, TokenUpdate, Tokens, UserId,
    ValidationError,
};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::manage::{ActorMapping, ApiError, FromGrant, SelfService};

mod extract;
mod form;
mod html;
mod preset;
mod render;
mod session;
mod texts;

pub use preset::{ExpiryInput, Preset};
pub use session::SessionLimits;
pub use texts::{Texts, UnknownText};

use extract::{Ctx, Page, Posted};
use form::Form;
use render::{Errors, FilterInput, Frame, TokenInput};
use session::{Filter, Notice, Pending, Reveal, Sessions};
use texts::fill;

/// The session cookie's name.
const COOKIE_NAME: &str = "api_tokens_page";
/// The cookie the page's script sets when the filter is folded away (`folded`) or opened
/// again: a look the browser keeps, nothing the server stores.
const FOLD_COOKIE: &str = "api_tokens_filter";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const CSS: &str = include_str!("page/page.css");
const JS: &str = include_str!("page/page.js");

/// The longest "expires in less than N days".
const MAX_DAYS: u32 = 36_500;
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

    fn query_string(&self) -> String {
        format!(
            "?sort={}&order={}&page={}",
            self.sort.name(),
            if self.desc { "desc" } else { "asc" },
            self.page
        )
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

    /// The users an admin picks from (the create form's *User*, the filter's *Users* and
    /// *Created by*). Without them those fields are text (user ids, comma-separated).
    /// At most 1,000 are kept.
    #[must_use]
    pub fn with_users(mut self, users: impl IntoIterator<Item = UserId>) -> Self {
        self.settings.users = users.into_iter().take(1_000).collect();
        self
    }

    /// Tokens per page (1 to 1,000; default 50).
    #[must_use]
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.settings.page_size = n.clamp(1, 1_000);
        self
    }

    /// Most tokens one list reads (default 10,000): past it the page asks for a narrower
    /// filter. At least one page.
    #[must_use]
    pub fn with_max_rows(mut self, n: usize) -> Self {
        self.settings.max_rows = n.max(1);
        self
    }

    /// Marks the session cookie `Secure` (send it over HTTPS only). Turn it on behind HTTPS.
    #[must_use]
    pub fn with_secure_cookie(mut self, secure: bool) -> Self {
        self.settings.secure_cookie = secure;
        self
    }

    /// Bounds on the page's sessions.
    #[must_use]
    pub fn with_session_limits(mut self, limits: SessionLimits) -> Self {
        self.settings.sessions = limits;
        self
    }

    /// The page's texts and the choices of its look ([`Preset::standard`] by default;
    /// [`Preset::zabbix`] for Zabbix's frontend). Replaces the texts too: give other texts
    /// after it with [`TokensPage::with_texts`].
    #[must_use]
    pub fn with_preset(mut self, preset: Preset) -> Self {
        self.settings.preset = preset;
        self
    }

    /// Every text the page shows (a translation, other wording), keeping the rest of the
    /// preset.
    #[must_use]
    pub fn with_texts(mut self, texts: Texts) -> Self {
        self.settings.preset.texts = texts;
        self
    }

    /// The page's routes, to nest under a path of the host's choosing.
    pub fn router<St: Clone + Send + Sync + 'static>(self) -> Router<St> {
        let shared = Arc::new(Shared {
            sessions: Sessions::new(self.settings.sessions),
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

/// The caller's session as a page opens it: what the page shows from it, and the cookie to
/// set when it is new. All the page keeps between requests is behind the `Shared` methods
/// that read and write it (`session`, `csrf`, `notice`, `filter`, `hold`, `take`).
struct PageSession {
    /// The session's id (the cookie's value).
    id: String,
    /// Its CSRF token, for the page's forms.
    csrf: String,
    /// The list's filter.
    filter: Filter,
    /// The message left for this page, taken out of the session.
    notice: Option<Notice>,
    /// `Set-Cookie` for a session opened by this request.
    set_cookie: Option<HeaderValue>,
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
            name_max: policy.max_name_chars.min(api_tokens::MAX_NAME_LEN),
            description_max: policy.max_description_chars,
            filter_folded: self.filter_folded,
        }
    }

    fn list_url(&self, view: Option<&ListView>) -> String {
        let root = if self.base.is_empty() {
            "/"
        } else {
            &self.base
        };
        match view {
            Some(v) => format!("{root}{}", v.query_string()),
            None => root.to_owned(),
        }
    }
}

/// An HTML answer with the page's headers (and a new session cookie).
fn respond(status: StatusCode, body: String, set_cookie: Option<HeaderValue>) -> Response {
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
    if let Some(cookie) = set_cookie {
        h.insert(SET_COOKIE, cookie);
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

/// `303 See Other` to `location` (a path of the page: never a secret in it).
fn see_other(location: &str) -> Response {
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
    response
}

impl<S: TokenStore + 'static, M: ActorMapping<S>> Shared<S, M> {
    /// The caller's session, opened if needed (see [`PageSession`]).
    fn session(&self, ctx: &Ctx) -> PageSession {
        let (id, new) = self
            .sessions
            .open(ctx.cookie.as_deref(), &ctx.caller.actor.user);
        let (csrf, filter, notice) = self
            .sessions
            .with(Some(&id), &ctx.caller.actor.user, |s| {
                (s.csrf().to_owned(), s.filter.clone(), s.notice.take())
            })
            .unwrap_or_default();
        let set_cookie = new.then(|| {
            let path = if ctx.base.is_empty() { "/" } else { &ctx.base };
            let text = format!(
                "{COOKIE_NAME}={id}; Path={path}; HttpOnly; SameSite=Strict{}",
                if self.settings.secure_cookie {
                    "; Secure"
                } else {
                    ""
                }
            );
            HeaderValue::from_str(&text).ok()
        });
        PageSession {
            id,
            csrf,
            filter,
            notice,
            set_cookie: set_cookie.flatten(),
        }
    }

    /// A message page (with the status) for the caller.
    fn message(&self, ctx: &Ctx, status: StatusCode, title: &str, text: &str) -> Response {
        respond(
            status,
            render::message(&ctx.frame(self, ""), title, text),
            None,
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

    /// Leaves `notice` for the caller's next page.
    fn notice(&self, ctx: &Ctx, notice: Notice) {
        self.sessions
            .with(ctx.cookie.as_deref(), &ctx.caller.actor.user, |s| {
                s.notice = Some(notice)
            });
    }

    /// The CSRF token of the caller's session (empty without one).
    fn csrf(&self, ctx: &Ctx) -> String {
        self.sessions
            .with(ctx.cookie.as_deref(), &ctx.caller.actor.user, |s| {
                s.csrf().to_owned()
            })
            .unwrap_or_default()
    }

    /// Whether `presented` is the CSRF token of the caller's session.
    fn csrf_ok(&self, ctx: &Ctx, presented: Option<&str>) -> bool {
        self.sessions
            .csrf_ok(ctx.cookie.as_deref(), &ctx.caller.actor.user, presented)
    }

    /// The list's filter kept in the caller's session.
    fn filter(&self, ctx: &Ctx) -> Filter {
        self.sessions
            .with(ctx.cookie.as_deref(), &ctx.caller.actor.user, |s| {
                s.filter.clone()
            })
            .unwrap_or_default()
    }

    /// Keeps `filter` in the caller's session.
    fn set_filter(&self, ctx: &Ctx, filter: Filter) {
        self.sessions
            .with(ctx.cookie.as_deref(), &ctx.caller.actor.user, |s| {
                s.filter = filter
            });
    }

    /// Keeps a new secret for the caller's next look at its token; false when the session
    /// ended in between (the secret is then dropped, wiped).
    fn hold(
        &self,
        ctx: &Ctx,
        id: TokenId,
        name: TokenName,
        secret: TokenSecret,
        why: Reveal,
    ) -> bool {
        self.sessions.hold(
            ctx.cookie.as_deref(),
            &ctx.caller.actor.user,
            id,
            name,
            secret,
            why,
        )
    }

    /// The secret waiting in `session` for token `id`, taken out: it is never shown twice.
    fn take(&self, ctx: &Ctx, session: &PageSession, id: TokenId) -> Option<Pending> {
        self.sessions
            .take(Some(&session.id), &ctx.caller.actor.user, id)
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
        cookie: Option<HeaderValue>,
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
        respond(status, body, cookie)
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
    let view = match Form::parse(query.as_deref().unwrap_or_default())
        .map_err(|()| shared.texts().not_utf8.to_string())
        .and_then(|f| ListView::parse(&f, ctx.admin(), shared.preset()))
    {
        Ok(view) => view,
        Err(text) => return shared.bad_request(&ctx, &text),
    };
    let session = shared.session(&ctx);
    let input = FilterInput::of(&session.filter);
    shared
        .list(
            &ctx,
            &session.csrf,
            &session.filter,
            &input,
            Errors::default(),
            session.notice,
            view,
            StatusCode::OK,
            session.set_cookie,
        )
        .await
}

fn users_of(form: &Form, name: &str, errors: &mut Errors, texts: &Texts) -> Vec<UserId> {
    let mut out = Vec::new();
    for item in form.all(name).flat_map(|v| v.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        match UserId::new(item) {
            Ok(u) if !out.contains(&u) => out.push(u),
            Ok(_) => {}
            Err(e) => {
                errors.add(Some(name), invalid_text(texts, name, &e));
                return out;
            }
        }
        if out.len() > session::MAX_FILTER_USERS {
            let max = session::MAX_FILTER_USERS.to_string();
            errors.add(Some(name), fill(&texts.filter_too_many, &[("max", &max)]));
            return out;
        }
    }
    out
}

async fn set_filter<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, ()): Posted,
) -> Response {
    let texts = shared.texts();
    let mut filter = Filter::default();
    let mut errors = Errors::default();
    if !form.checked("reset") {
        let name = form.get("name").unwrap_or_default();
        if name.chars().count() > session::MAX_FILTER_TEXT {
            let max = session::MAX_FILTER_TEXT.to_string();
            errors.add(Some("name"), fill(&texts.filter_too_long, &[("max", &max)]));
        }
        filter.name = name.to_owned();
        if ctx.admin() {
            filter.owners = users_of(&form, "owners", &mut errors, texts);
            filter.creators = users_of(&form, "creators", &mut errors, texts);
        }
        if form.checked("expires_soon") {
            match form
                .get("expires_days")
                .and_then(|d| d.trim().parse::<u32>().ok())
                .filter(|d| *d <= MAX_DAYS)
            {
                Some(days) => filter.expires_within_days = Some(days),
                None => errors.add(
                    Some("expires_days"),
                    fill(&texts.filter_bad_days, &[("max", &MAX_DAYS.to_string())]),
                ),
            }
        }
        filter.status = match form.get("status").unwrap_or("any") {
            "any" => None,
            "enabled" => Some(Status::Enabled),
            "disabled" => Some(Status::Disabled),
            _ => {
                errors.add(Some("status"), texts.filter_bad_status.to_string());
                None
            }
        };
    }
    if !errors.is_empty() {
        let input = FilterInput {
            name: form.get("name").unwrap_or_default().to_owned(),
            owners: form.all("owners").collect::<Vec<_>>().join(","),
            creators: form.all("creators").collect::<Vec<_>>().join(","),
            expires_soon: form.checked("expires_soon"),
            expires_days: form.get("expires_days").unwrap_or_default().to_owned(),
            status: form.get("status").unwrap_or("any").to_owned(),
        };
        let csrf = shared.csrf(&ctx);
        let saved = shared.filter(&ctx);
        return shared
            .list(
                &ctx,
                &csrf,
                &saved,
                &input,
                errors,
                None,
                ListView::default(),
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            )
            .await;
    }
    shared.set_filter(&ctx, filter);
    see_other(&ctx.list_url(None))
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
    let view = ListView::parse(&form, ctx.admin(), shared.preset()).unwrap_or_default();
    let back = ctx.list_url(Some(&view));
    let action = match form.get("action") {
        Some("enable") => Mass::Enable,
        Some("disable") => Mass::Disable,
        Some("delete") => Mass::Delete,
        _ => return shared.bad_request(&ctx, &texts.bad_action),
    };
    let ids = match ids_of(&form) {
        Some(ids) if ids.is_empty() => {
            shared.notice(
                &ctx,
                Notice {
                    ok: false,
                    text: texts.select_first.to_string(),
                    token: None,
                },
            );
            return see_other(&back);
        }
        Some(ids) => ids,
        None => return shared.bad_request(&ctx, &texts.bad_ids),
    };
    if form.get("confirmed") != Some("1") {
        let question = action.question(texts, ids.len());
        let mut fields: Vec<(&str, String)> =
            ids.iter().map(|id| ("ids", id.get().to_string())).collect();
        fields.push(("action", form.get("action").unwrap_or_default().to_owned()));
        fields.push(("sort", view.sort.name().to_owned()));
        fields.push(("order", if view.desc { "desc" } else { "asc" }.to_owned()));
        fields.push(("page", view.page.to_string()));
        let csrf = shared.csrf(&ctx);
        let target = format!("{}/mass", ctx.base);
        return respond(
            StatusCode::OK,
            render::confirm(&ctx.frame(&shared, &csrf), &question, &target, &fields),
            None,
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
    shared.notice(&ctx, notice);
    see_other(&back)
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
    let view = ListView::parse(&form, ctx.admin(), shared.preset()).unwrap_or_default();
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
    shared.notice(&ctx, notice);
    see_other(&ctx.list_url(Some(&view)))
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
            &input,
            &Errors::default(),
            now,
        ),
        session.set_cookie,
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
    let show_form = |errors: &Errors, status: StatusCode| {
        let csrf = shared.csrf(&ctx);
        respond(
            status,
            render::token_form(&ctx.frame(&shared, &csrf), None, &input, errors, now),
            None,
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
    match shared.service.issue(ctx.caller.clone(), new).await {
        Ok(issued) => {
            let id = issued.token.id;
            tracing::info!(actor = %ctx.caller.actor.user, token = id.get(), "API token added (page)");
            let name = issued.token.name.clone();
            if shared.hold(&ctx, id, name, issued.secret, Reveal::Created) {
                see_other(&format!("{}/{}/secret", ctx.base, id.get()))
            } else {
                // The session closed in between: the secret cannot wait for the next page.
                shared.message(
                    &ctx,
                    StatusCode::OK,
                    &texts.added,
                    &texts.session_ended_added,
                )
            }
        }
        Err(e) => {
            let field = token_field(&e);
            errors.add(field, api_problem(texts, field, &e));
            show_form(&errors, e.status())
        }
    }
}

async fn secret_page<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    method: Method,
    Page(ctx, id): Page<TokenId>,
) -> Response {
    let session = shared.session(&ctx);
    // Only a GET shows (and so spends) the secret: a HEAD (a link checker, a prefetch) leaves it.
    let pending = if method == Method::GET {
        shared.take(&ctx, &session, id)
    } else {
        None
    };
    let token = shared.service.get(ctx.caller.clone(), id).await.ok();
    let status = if pending.is_some() {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    let now = shared.service.tokens().now();
    respond(
        status,
        render::secret(
            &ctx.frame(&shared, &session.csrf),
            id,
            token.as_ref(),
            pending.as_ref(),
            now,
        ),
        session.set_cookie,
    )
}

/// A token's page, or the answer that there is none for this caller.
async fn show_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    shared: &Shared<S, M>,
    ctx: &Ctx,
    id: TokenId,
    input: Option<&TokenInput>,
    errors: &Errors,
    status: StatusCode,
    cookie: Option<HeaderValue>,
) -> Response {
    match shared.service.get(ctx.caller.clone(), id).await {
        Ok(token) => {
            let csrf = shared.csrf(ctx);
            let now = shared.service.tokens().now();
            let own = TokenInput::of(&token);
            respond(
                status,
                render::token_form(
                    &ctx.frame(shared, &csrf),
                    Some(&token),
                    input.unwrap_or(&own),
                    errors,
                    now,
                ),
                cookie,
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
        id,
        None,
        &Errors::default(),
        StatusCode::OK,
        session.set_cookie,
    )
    .await
}

async fn update<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, id): Posted<TokenId>,
) -> Response {
    let texts = shared.texts();
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
            id,
            Some(&input),
            &errors,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
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
            return show_token(&shared, &ctx, id, Some(&input), &errors, e.status(), None).await;
        }
        tracing::info!(actor = %ctx.caller.actor.user, token = id.get(), "API token updated (page)");
    }
    shared.notice(
        &ctx,
        Notice {
            ok: true,
            text: texts.updated.to_string(),
            token: None,
        },
    );
    see_other(&ctx.list_url(None))
}

async fn regenerate<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, id): Posted<TokenId>,
) -> Response {
    let texts = shared.texts();
    if form.get("confirmed") != Some("1") {
        let csrf = shared.csrf(&ctx);
        let action = format!("{}/{}/regenerate", ctx.base, id.get());
        return respond(
            StatusCode::OK,
            render::confirm(
                &ctx.frame(&shared, &csrf),
                &texts.confirm_regenerate,
                &action,
                &[],
            ),
            None,
        );
    }
    let result = shared
        .service
        .regenerate(ctx.caller.clone(), vec![id], TimeDuration::ZERO)
        .await;
    let secret = match result {
        Ok(mut secrets) => secrets.pop(),
        Err(e) => {
            let mut errors = Errors::default();
            errors.add(None, api_problem(texts, None, &e));
            return show_token(&shared, &ctx, id, None, &errors, e.status(), None).await;
        }
    };
    let name = shared
        .service
        .get(ctx.caller.clone(), id)
        .await
        .map(|t| t.name);
    match (secret, name) {
        (Some((id, secret)), Ok(name)) => {
            tracing::info!(actor = %ctx.caller.actor.user, token = id.get(), "API token regenerated (page)");
            if shared.hold(&ctx, id, name, secret, Reveal::Regenerated) {
                return see_other(&format!("{}/{}/secret", ctx.base, id.get()));
            }
            shared.message(
                &ctx,
                StatusCode::OK,
                &texts.regenerated,
                &texts.session_ended_regenerated,
            )
        }
        _ => shared.not_found(&ctx),
    }
}
