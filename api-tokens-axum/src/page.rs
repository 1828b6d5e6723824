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
//! of a dialog, and the copy button is left to the keyboard.

use std::sync::Arc;

use api_tokens::store::{SortField, SortOrder};
use api_tokens::time::Duration as TimeDuration;
use api_tokens::{
    Error, Expiry, Forbidden, IpAllowlist, MemoryStore, PermissionSet, Query, Status, Token,
    TokenId, TokenName, TokenSecret, TokenStore, TokenUpdate, Tokens, UserId,
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
mod render;
mod session;

pub use session::SessionLimits;

use extract::{Ctx, Page, Posted};
use form::Form;
use render::{Errors, FilterInput, Frame, TokenInput};
use session::{Filter, Notice, Pending, Reveal, Sessions};

/// The session cookie's name.
const COOKIE_NAME: &str = "api_tokens_page";
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
    /// Reads `sort`, `order` and `page` (each optional) from `form`.
    fn parse(form: &Form) -> Result<Self, String> {
        let mut view = Self::default();
        if let Some(s) = form.get("sort") {
            view.sort = Col::ALL
                .into_iter()
                .find(|c| c.name() == s)
                .ok_or("sort must be one of name, user, expires_at, created_at, creator, last_used_at, status")?;
        }
        view.desc = match form.get("order") {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err("order must be asc or desc".to_owned()),
        };
        if let Some(p) = form.get("page") {
            view.page = p
                .parse::<usize>()
                .ok()
                .filter(|p| (1..=MAX_PAGE).contains(p))
                .ok_or("page must be a whole number from 1")?;
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

    fn frame<'a, S, M>(&'a self, shared: &'a Shared<S, M>, csrf: &'a str) -> Frame<'a> {
        Frame {
            base: &self.base,
            user: &self.caller.actor.user,
            csrf,
            admin: self.admin(),
            users: &shared.settings.users,
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
        self.message(
            ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "No such API token.",
        )
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
        let query = query_of(filter, view, ctx.admin(), max_rows);
        let mut rows = match self.service.list(ctx.caller.clone(), query).await {
            Ok(rows) => rows,
            Err(e) => {
                errors.add(filter_field(&e), e.to_string());
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
fn query_of(filter: &Filter, view: ListView, admin: bool, max_rows: usize) -> Query {
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

async fn list_page<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Page(ctx, ()): Page,
    RawQuery(query): RawQuery,
) -> Response {
    let view = match Form::parse(query.as_deref().unwrap_or_default())
        .map_err(|()| "the query string is not UTF-8".to_owned())
        .and_then(|f| ListView::parse(&f))
    {
        Ok(view) => view,
        Err(text) => return shared.message(&ctx, StatusCode::BAD_REQUEST, "Bad request", &text),
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

fn users_of(form: &Form, name: &str, errors: &mut Errors) -> Vec<UserId> {
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
                errors.add(Some(name), e.to_string());
                return out;
            }
        }
        if out.len() > session::MAX_FILTER_USERS {
            errors.add(
                Some(name),
                format!("at most {} users", session::MAX_FILTER_USERS),
            );
            return out;
        }
    }
    out
}

async fn set_filter<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, ()): Posted,
) -> Response {
    let mut filter = Filter::default();
    let mut errors = Errors::default();
    if !form.checked("reset") {
        let name = form.get("name").unwrap_or_default();
        if name.chars().count() > session::MAX_FILTER_TEXT {
            errors.add(
                Some("name"),
                format!("at most {} characters", session::MAX_FILTER_TEXT),
            );
        }
        filter.name = name.to_owned();
        if ctx.admin() {
            filter.owners = users_of(&form, "owners", &mut errors);
            filter.creators = users_of(&form, "creators", &mut errors);
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
                    format!("the number of days must be a whole number from 0 to {MAX_DAYS}"),
                ),
            }
        }
        filter.status = match form.get("status").unwrap_or("any") {
            "any" => None,
            "enabled" => Some(Status::Enabled),
            "disabled" => Some(Status::Disabled),
            _ => {
                errors.add(Some("status"), "status must be any, enabled or disabled");
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

fn ids_of(form: &Form) -> Result<Vec<TokenId>, String> {
    form.all("ids")
        .map(|v| parse_id(v).ok_or_else(|| "a selected token id is not a token id".to_owned()))
        .collect()
}

async fn mass<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, ()): Posted,
) -> Response {
    let view = ListView::parse(&form).unwrap_or_default();
    let back = ctx.list_url(Some(&view));
    let (status, verb) = match form.get("action") {
        Some("enable") => (Some(Status::Enabled), "enabled"),
        Some("disable") => (Some(Status::Disabled), "disabled"),
        Some("delete") => (None, "deleted"),
        _ => {
            return shared.message(
                &ctx,
                StatusCode::BAD_REQUEST,
                "Bad request",
                "action must be enable, disable or delete",
            );
        }
    };
    let ids = match ids_of(&form) {
        Ok(ids) if ids.is_empty() => {
            shared.notice(
                &ctx,
                Notice {
                    ok: false,
                    text: "Select at least one API token.".to_owned(),
                    token: None,
                },
            );
            return see_other(&back);
        }
        Ok(ids) => ids,
        Err(text) => return shared.message(&ctx, StatusCode::BAD_REQUEST, "Bad request", &text),
    };
    if form.get("confirmed") != Some("1") {
        let n = ids.len();
        let question = format!(
            "{} {n} selected API token{}?",
            match status {
                Some(Status::Enabled) => "Enable",
                Some(_) => "Disable",
                None => "Delete",
            },
            if n == 1 { "" } else { "s" }
        );
        let mut fields: Vec<(&str, String)> =
            ids.iter().map(|id| ("ids", id.get().to_string())).collect();
        fields.push(("action", form.get("action").unwrap_or_default().to_owned()));
        fields.push(("sort", view.sort.name().to_owned()));
        fields.push(("order", if view.desc { "desc" } else { "asc" }.to_owned()));
        fields.push(("page", view.page.to_string()));
        let csrf = shared.csrf(&ctx);
        let action = format!("{}/mass", ctx.base);
        return respond(
            StatusCode::OK,
            render::confirm(&ctx.frame(&shared, &csrf), &question, &action, &fields),
            None,
        );
    }
    let result = match status {
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
            tracing::info!(actor = %ctx.caller.actor.user, tokens = ?done, "API tokens {verb} (page)");
            Notice {
                ok: true,
                text: format!("API token{} {verb}", if done.len() == 1 { "" } else { "s" }),
                token: None,
            }
        }
        Err(e) => refused(&e, &ids),
    };
    shared.notice(&ctx, notice);
    see_other(&back)
}

/// A refused mass action's message, naming the token it is about.
fn refused(e: &ApiError, ids: &[TokenId]) -> Notice {
    let token = match e.index() {
        Some(i) => ids.get(i).copied(),
        None if ids.len() == 1 => ids.first().copied(),
        None => None,
    };
    Notice {
        ok: false,
        text: match token {
            Some(id) => format!("Token {}: {e}", id.get()),
            None => e.to_string(),
        },
        token,
    }
}

async fn toggle<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, ()): Posted,
) -> Response {
    let view = ListView::parse(&form).unwrap_or_default();
    let target = form
        .get("toggle")
        .and_then(|v| v.split_once(':'))
        .and_then(|(id, to)| {
            let status = match to {
                "enabled" => Status::Enabled,
                "disabled" => Status::Disabled,
                _ => return None,
            };
            Some((parse_id(id)?, status))
        });
    let Some((id, status)) = target else {
        return shared.message(
            &ctx,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "toggle must be a token id and enabled or disabled",
        );
    };
    let notice = match shared
        .service
        .set_status(ctx.caller.clone(), vec![id], status)
        .await
    {
        Ok(_) => {
            let verb = if status == Status::Enabled {
                "enabled"
            } else {
                "disabled"
            };
            tracing::info!(actor = %ctx.caller.actor.user, token = id.get(), "API token {verb} (page)");
            Notice {
                ok: true,
                text: format!("API token {verb}"),
                token: None,
            }
        }
        Err(e) => refused(&e, &[id]),
    };
    shared.notice(&ctx, notice);
    see_other(&ctx.list_url(Some(&view)))
}

async fn new_page<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Page(ctx, ()): Page,
) -> Response {
    let session = shared.session(&ctx);
    let input = TokenInput {
        owner: ctx.caller.actor.user.as_str().to_owned(),
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

fn token_input(form: &Form) -> TokenInput {
    let text = |name: &str| form.get(name).unwrap_or_default().to_owned();
    TokenInput {
        name: text("name"),
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

fn parse_token(input: &TokenInput, errors: &mut Errors) -> Parsed {
    let name = TokenName::new(&input.name)
        .map_err(|e| errors.add(Some("name"), e.to_string()))
        .ok();
    let expiry = if input.set_expiry {
        form::expiry(&input.expires_at)
            .map_err(|e| {
                errors.add(
                    Some("expires_at"),
                    format!("{e} (write YYYY-MM-DD hh:mm:ss, in UTC)"),
                );
            })
            .unwrap_or(Expiry::NEVER)
    } else {
        Expiry::NEVER
    };
    let permissions = if input.permissions.trim().is_empty() {
        None
    } else {
        input
            .permissions
            .parse::<PermissionSet>()
            .map_err(|e| errors.add(Some("permissions"), e.to_string()))
            .ok()
    };
    let allowlist = if input.allowlist.trim().is_empty() {
        IpAllowlist::default()
    } else {
        input
            .allowlist
            .parse::<IpAllowlist>()
            .map_err(|e| errors.add(Some("allowlist"), e.to_string()))
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
    let input = token_input(&form);
    let mut errors = Errors::default();
    let parsed = parse_token(&input, &mut errors);
    let owner = if ctx.admin() {
        UserId::new(input.owner.trim())
            .map_err(|e| errors.add(Some("owner"), e.to_string()))
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
                    "API token added",
                    "The token was added, but your session ended before its auth token could be shown: regenerate it from its page.",
                )
            }
        }
        Err(e) => {
            errors.add(token_field(&e), e.to_string());
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
    respond(
        status,
        render::secret(
            &ctx.frame(&shared, &session.csrf),
            id,
            token.as_ref(),
            pending.as_ref(),
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
        Err(e) => shared.message(ctx, e.status(), "API token", &e.to_string()),
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
    let current = match shared.service.get(ctx.caller.clone(), id).await {
        Ok(t) => t,
        Err(e) => return shared.message(&ctx, e.status(), "API token", &e.to_string()),
    };
    let input = token_input(&form);
    let mut errors = Errors::default();
    let parsed = parse_token(&input, &mut errors);
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
            errors.add(token_field(&e), e.to_string());
            return show_token(&shared, &ctx, id, Some(&input), &errors, e.status(), None).await;
        }
        tracing::info!(actor = %ctx.caller.actor.user, token = id.get(), "API token updated (page)");
    }
    shared.notice(
        &ctx,
        Notice {
            ok: true,
            text: "API token updated".to_owned(),
            token: None,
        },
    );
    see_other(&ctx.list_url(None))
}

async fn regenerate<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(shared): St<S, M>,
    Posted(ctx, form, id): Posted<TokenId>,
) -> Response {
    if form.get("confirmed") != Some("1") {
        let csrf = shared.csrf(&ctx);
        let action = format!("{}/{}/regenerate", ctx.base, id.get());
        return respond(
            StatusCode::OK,
            render::confirm(
                &ctx.frame(&shared, &csrf),
                "Regenerate the auth token? The current one stops working at once.",
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
            errors.add(None, e.to_string());
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
                "API token regenerated",
                "Your session ended before the new auth token could be shown: regenerate it again.",
            )
        }
        _ => shared.not_found(&ctx),
    }
}
