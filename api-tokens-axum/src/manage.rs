//! A self-service JSON API for tokens: a [`Router`] a host nests (under `/api/tokens`, say)
//! that lets a caller list, create, regenerate, enable/disable and delete its own tokens, and an
//! admin anyone's, over the core's [`Tokens`] operations.
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `GET /` | — (filters in the query string: [`list::query`]) | 200 `{"tokens": [view, …]}` |
//! | `POST /` | one token ([`request::new_token`]) | 201 its view and `"secret"`, shown this once |
//! | `POST /` | an array of tokens | 201 `{"ids": […]}`: created without secrets (Zabbix `token.create`); `regenerate` gives them one |
//! | `GET /{id}` | — | 200 the view |
//! | `PATCH /{id}` | the members to change ([`request::update`]) | 200 the view |
//! | `DELETE /{id}` | — | 204 |
//! | `POST /{id}/regenerate` | optional `{"grace_seconds": n}` | 200 `{"id", "secret"}` |
//! | `POST /regenerate` | `{"ids": […], "grace_seconds"?: n}` | 200 `{"secrets": [{"id", "secret"}, …]}` |
//! | `POST /enable`, `POST /disable` | `{"ids": […]}` (mass enable/disable) | 200 `{"ids": […]}` |
//! | `POST /delete` | `{"ids": […]}` | 200 `{"ids": […]}` |
//!
//! A view is the core's [`TokenView`](api_tokens::TokenView): never a hash, and a secret only
//! in the answer that creates or regenerates it. Every answer carries `Cache-Control:
//! no-store`; failures are [`ApiError`]s. Batches are all-or-nothing, at most
//! [`Limits::max_batch`] items. Bodies must be `application/json`, at most
//! [`Limits::max_body_bytes`].
//!
//! **Who the caller is** is the host's: an [`ActorMapping`] turns a request into an
//! [`Actor`]. The default, [`FromGrant`], takes the [`Grant`] of an
//! [`AuthLayer`](crate::AuthLayer) in front: the token's owner, holding the token's effective
//! permissions, managing its own tokens only when the grant holds the management permission
//! the host names ([`FromGrant::new`]; without it every call is refused, 403), and everyone's
//! when it holds the admin permission the host names. [`actor_from_fn`] maps a request any
//! other way (a session), and [`TokenOrSession`] takes the calling token when the request
//! presented one, else the host's session.
//!
//! **The first management token.** A customer who holds no token yet gets one through the
//! host's session: the [page](crate::page)'s create form, or `POST /` with the session through
//! [`TokenOrSession`] (`{"name": "ci", "permissions": "tokens.manage"}`, the permission the
//! host's [`FromGrant`] names); that token then manages their tokens from scripts. An operator
//! can issue one with [`Tokens::issue`] or the `api-tokens` command line.
//!
//! **No state in the process.** The router keeps nothing between requests (the caller comes
//! from each request, every token from the store, a secret only in the answer that made it),
//! so any number of processes serve it behind any balancer.
//!
//! **A token cannot outlive or outreach itself**: when the request was authenticated with an
//! API token (it carries a [`Grant`], whatever the mapping), the tokens it
//! creates, changes, regenerates or enables may not expire later than the calling token nor
//! admit an address its allowlist refuses ([`TokenBounds`]; `beyond_calling_token`, 403).
//!
//! **A caller acts only on tokens that can do no more than it can**: regenerating, changing,
//! enabling, disabling or deleting a token whose effective permissions (its own, within its
//! owner's current rights) exceed the caller's privileges is refused (`permissions_not_held`,
//! 403). Without it, a token holding only `dns.read` could regenerate its owner's `*` token and
//! read the new secret. Creating is bounded by the core already (a caller cannot grant what it
//! does not hold). When a token's owner is inactive or unknown to the directory, the token's
//! own permissions (not intersected with the owner's current rights, which are none) are
//! compared: they bound what the token carries if the owner comes back, so a limited admin
//! cannot take a secret that regains `*` later (fail closed), and can still disable or delete
//! the token when its permissions are within its own.
//!
//! **Cross-site requests**: a request whose `Content-Type` is present and not
//! `application/json` is refused (415) on every state-changing route, even with an empty body.
//! A browser sends a cross-site form post (`application/x-www-form-urlencoded`,
//! `multipart/form-data`, `text/plain`) without asking the server first, but not a JSON one.
//! That is the only guard against cross-site request forgery here: an [`ActorMapping`] that
//! reads a browser session (a cookie) also needs `SameSite` cookies or a CSRF token of the
//! host's; API tokens in `Authorization` are not sent by browsers on their own and need
//! neither.
//!
//! **Management never blocks the executor**: each call runs on tokio's blocking pool
//! ([`Blocking`], the core's one path for stores that wait on a
//! network), so a slow database holds a blocking thread, not an async worker; a call that
//! panics there answers 503 `store_unavailable`, and the panic goes to the log only.

use std::future::Future;
use std::sync::Arc;

use api_tokens::{
    Actor, Blocking, Error, Forbidden, Grant, Issued, MemoryStore, NewToken, Permission, Query,
    Status, Token, TokenId, TokenSecret, TokenStore, TokenUpdate, Tokens,
};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;

mod bounds;
mod error;
mod extract;
pub mod list;
pub mod request;

pub use bounds::TokenBounds;
pub use error::ApiError;

use extract::{JsonBody, JsonOnly, PathId, Reader};

use crate::layer::grant_of;

/// Bounds on what one request may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most items in one batch (ids, or tokens to create). Default 100.
    pub max_batch: usize,
    /// Largest request body, in bytes. Default 64 KiB.
    pub max_body_bytes: usize,
    /// Most tokens one list answer holds (and its `limit` when none is given). Default 1,000.
    pub max_page: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch: 100,
            max_body_bytes: 64 * 1024,
            max_page: 1_000,
        }
    }
}

/// How a request maps to the [`Actor`] that calls the management API: the host's decision.
pub trait ActorMapping<S>: Send + Sync + 'static {
    /// The caller of the request `parts`. `tokens` is there for [`Tokens::actor`] (the
    /// directory's view of a user).
    ///
    /// # Errors
    /// An [`ApiError`] to answer with, typically [`ApiError::Refused`] when the request has no
    /// caller.
    fn actor(
        &self,
        parts: &Parts,
        tokens: &Tokens<S>,
    ) -> impl Future<Output = Result<Actor, ApiError>> + Send;
}

/// The default [`ActorMapping`]: the caller is the owner of the token the
/// [`AuthLayer`](crate::AuthLayer) authenticated, holding the grant's permissions (the
/// token's, within the owner's current rights). It manages its own tokens only when the grant
/// allows the management permission the host names (Zabbix's *Manage API tokens* role right),
/// and everyone's when the grant allows the [admin permission](FromGrant::with_admin_permission).
/// A grant with neither is refused every call (403, `cannot_manage_tokens`): a token made to
/// read DNS zones is not, by default, a token that mints tokens.
///
/// A request without a grant is refused with 401. The tokens such a caller creates or changes
/// stay within its token's expiry and allowlist ([`TokenBounds`]).
///
/// [`FromGrant::default`] names no management permission and so refuses every caller: it is
/// what [`SelfService::new`] starts with, until the host names one with
/// [`SelfService::with_actors`].
///
/// ```
/// use api_tokens::permission;
/// use api_tokens_axum::manage::FromGrant;
///
/// let actors = FromGrant::new(permission!("tokens.manage"))
///     .with_admin_permission(permission!("tokens.admin"));
/// # let _ = actors;
/// ```
#[derive(Clone, Debug, Default)]
pub struct FromGrant {
    manage: Option<Permission>,
    admin: Option<Permission>,
}

impl FromGrant {
    /// Callers whose grant allows `manage` manage their own tokens; no admins.
    pub fn new(manage: Permission) -> Self {
        Self {
            manage: Some(manage),
            admin: None,
        }
    }

    /// Callers whose grant allows `permission` manage everyone's tokens (Zabbix's Super
    /// admin), within their own privileges. It implies the management permission.
    #[must_use]
    pub fn with_admin_permission(mut self, permission: Permission) -> Self {
        self.admin = Some(permission);
        self
    }
}

impl<S: TokenStore + 'static> ActorMapping<S> for FromGrant {
    async fn actor(&self, parts: &Parts, _: &Tokens<S>) -> Result<Actor, ApiError> {
        let grant = grant_of(&parts.extensions)?;
        let mut actor = Actor::user(grant.owner.clone())
            .privileges(grant.permissions.clone())
            .via_token(grant.token);
        actor.manage_others = self.admin.as_ref().is_some_and(|p| grant.allows(p));
        actor.manage_tokens =
            actor.manage_others || self.manage.as_ref().is_some_and(|p| grant.allows(p));
        if self.manage.is_none() && self.admin.is_none() {
            tracing::warn!(
                "self-service refused: FromGrant names no management permission \
                 (use `FromGrant::new(permission!(\"tokens.manage\"))`)"
            );
        }
        Ok(actor)
    }
}

/// An [`ActorMapping`] from a function of the request, for hosts that know their caller some
/// other way (a session in the extensions, a header set by a gateway).
///
/// ```
/// use api_tokens::{Actor, UserId};
/// use api_tokens_axum::Refusal;
/// use api_tokens_axum::manage::{ApiError, actor_from_fn};
///
/// #[derive(Clone)]
/// struct Session { user: UserId, admin: bool }
///
/// let actors = actor_from_fn(|parts| {
///     let session = parts.extensions.get::<Session>().ok_or(Refusal::no_credentials())?;
///     Ok(if session.admin { Actor::admin(session.user.clone()) } else { Actor::user(session.user.clone()) })
/// });
/// # let _ = actors;
/// ```
pub fn actor_from_fn<F>(f: F) -> ActorFn<F>
where
    F: Fn(&Parts) -> Result<Actor, ApiError> + Send + Sync + 'static,
{
    ActorFn(f)
}

/// The [`ActorMapping`] [`actor_from_fn`] makes.
#[derive(Clone)]
pub struct ActorFn<F>(F);

impl<F> std::fmt::Debug for ActorFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActorFn")
    }
}

impl<S, F> ActorMapping<S> for ActorFn<F>
where
    S: TokenStore + 'static,
    F: Fn(&Parts) -> Result<Actor, ApiError> + Send + Sync + 'static,
{
    fn actor(
        &self,
        parts: &Parts,
        _: &Tokens<S>,
    ) -> impl Future<Output = Result<Actor, ApiError>> + Send {
        std::future::ready((self.0)(parts))
    }
}

/// An [`ActorMapping`] for "the calling token if the request presented one, else the host's
/// session": a request the [`AuthLayer`](crate::AuthLayer) authenticated (it carries a
/// [`Grant`]) is mapped by `token` ([`FromGrant`]: the token's owner, within the token's
/// permissions and bounds); any other request by `session` (the host's login, typically
/// [`actor_from_fn`]). Put the layer in front with
/// [`with_optional(true)`](crate::AuthLayer::with_optional), so requests without a token reach
/// the session.
///
/// A token never acts as the session's user: with a grant the session is not read at all, so
/// a script holding a narrow token in a browser that is signed in as an admin still acts as
/// the token. A request that presents credentials no layer checked (no grant, but an
/// `Authorization` header) is refused (401) rather than mapped to the session: a token that
/// was meant to be checked never silently becomes a session request.
///
/// ```
/// use api_tokens::{Actor, Tokens, UserId, permission};
/// use api_tokens_axum::{AuthLayer, Refusal};
/// use api_tokens_axum::manage::{FromGrant, SelfService, TokenOrSession, actor_from_fn};
/// use axum::Router;
///
/// #[derive(Clone)]
/// struct SignedIn(UserId);
///
/// let tokens = Tokens::in_memory();
/// let actors = TokenOrSession::new(
///     FromGrant::new(permission!("tokens.manage")),
///     actor_from_fn(|parts| {
///         let who = parts.extensions.get::<SignedIn>().ok_or(Refusal::no_credentials())?;
///         Ok(Actor::user(who.0.clone()))
///     }),
/// );
/// let app: Router = Router::new()
///     .nest("/api/tokens", SelfService::new(tokens.clone()).with_actors(actors).router())
///     .layer(AuthLayer::new(tokens).with_optional(true));
/// // … .layer(your_login_layer) that inserts `SignedIn` for a signed-in browser.
/// ```
#[derive(Clone, Debug)]
pub struct TokenOrSession<M> {
    token: FromGrant,
    session: M,
}

impl<M> TokenOrSession<M> {
    /// Callers by `token` when a token authenticated the request, else by `session`.
    pub fn new(token: FromGrant, session: M) -> Self {
        Self { token, session }
    }
}

impl<S: TokenStore + 'static, M: ActorMapping<S>> ActorMapping<S> for TokenOrSession<M> {
    async fn actor(&self, parts: &Parts, tokens: &Tokens<S>) -> Result<Actor, ApiError> {
        if parts.extensions.get::<Grant>().is_some() {
            return self.token.actor(parts, tokens).await;
        }
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            tracing::warn!(
                "self-service refused: credentials were presented but no AuthLayer checked them \
                 (put AuthLayer::new(tokens).with_optional(true) in front)"
            );
            return Err(ApiError::Refused(crate::Refusal::invalid_token()));
        }
        self.session.actor(parts, tokens).await
    }
}

/// The self-service API over a [`Tokens`]: its operations as async methods (each on the
/// blocking pool), and [`SelfService::router`], the JSON API over them.
///
/// ```
/// use api_tokens::{Tokens, permission};
/// use api_tokens_axum::AuthLayer;
/// use api_tokens_axum::manage::{FromGrant, SelfService};
/// use axum::Router;
///
/// let tokens = Tokens::in_memory();
/// let app: Router = Router::new()
///     .nest(
///         "/api/tokens",
///         SelfService::new(tokens.clone())
///             .with_actors(
///                 FromGrant::new(permission!("tokens.manage"))
///                     .with_admin_permission(permission!("tokens.admin")),
///             )
///             .router(),
///     )
///     .layer(AuthLayer::new(tokens));
/// ```
pub struct SelfService<S = MemoryStore, M = FromGrant> {
    tokens: Tokens<S>,
    actors: M,
    limits: Limits,
    credentials_parameter: Option<String>,
}

/// Who calls a self-service operation: the [`Actor`], and when the request was authenticated
/// with an API token, that token's [`TokenBounds`]. An `Actor` converts into a caller without
/// bounds (for hosts calling the operations themselves); [`SelfService::caller`] reads both
/// from a request, and so does `Caller` as an axum extractor on a router whose state is an
/// `Arc<SelfService>` (rejecting with the mapping's [`ApiError`]), as the router's own
/// handlers take it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caller {
    /// The actor the core checks.
    pub actor: Actor,
    /// The calling token's bounds, if a token authenticated the request.
    pub bounds: Option<TokenBounds>,
}

impl Caller {
    /// `actor`, bounded by `bounds` when given.
    pub fn new(actor: Actor, bounds: Option<TokenBounds>) -> Self {
        Self { actor, bounds }
    }
}

impl From<Actor> for Caller {
    fn from(actor: Actor) -> Self {
        Self {
            actor,
            bounds: None,
        }
    }
}

impl<S, M: std::fmt::Debug> std::fmt::Debug for SelfService<S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfService")
            .field("actors", &self.actors)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore + 'static> SelfService<S, FromGrant> {
    /// The API over `tokens`, callers from the [`AuthLayer`](crate::AuthLayer)'s grant
    /// ([`FromGrant`]), default [`Limits`]. No management permission is named yet, so every
    /// caller is refused (403) until [`with_actors`](SelfService::with_actors) names one, e.g.
    /// `.with_actors(FromGrant::new(permission!("tokens.manage")))`.
    pub fn new(tokens: Tokens<S>) -> Self {
        Self {
            tokens,
            actors: FromGrant::default(),
            limits: Limits::default(),
            credentials_parameter: None,
        }
    }
}

impl<S: TokenStore + 'static, M: ActorMapping<S>> SelfService<S, M> {
    /// Maps requests to callers with `actors`.
    pub fn with_actors<M2: ActorMapping<S>>(self, actors: M2) -> SelfService<S, M2> {
        SelfService {
            tokens: self.tokens,
            actors,
            limits: self.limits,
            credentials_parameter: self.credentials_parameter,
        }
    }

    /// The query parameter the [`AuthLayer`](crate::AuthLayer) reads secrets from
    /// ([`SecretSources::with_query_parameter_leak_risk`](crate::SecretSources::with_query_parameter_leak_risk)):
    /// the list ignores it instead of refusing it as an unknown filter.
    #[must_use]
    pub fn with_credentials_query_parameter(mut self, name: &str) -> Self {
        self.credentials_parameter = Some(name.to_owned());
        self
    }

    /// Uses `limits`.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The `Tokens` underneath.
    pub fn tokens(&self) -> &Tokens<S> {
        &self.tokens
    }

    /// The caller of a request, by the [`ActorMapping`].
    ///
    /// # Errors
    /// The mapping's refusal.
    pub async fn actor(&self, parts: &Parts) -> Result<Actor, ApiError> {
        self.actors.actor(parts, &self.tokens).await
    }

    /// The caller of a request: its [`actor`](SelfService::actor), and when the request
    /// carries a [`Grant`] (an API token authenticated it), the bounds of that token, read
    /// from the store. The router's handlers call the operations with this.
    ///
    /// # Errors
    /// The mapping's refusal; 401 when the calling token is gone from the store; a store
    /// failure.
    pub async fn caller(&self, parts: &Parts) -> Result<Caller, ApiError> {
        let actor = self.actor(parts).await?;
        let Some(id) = parts.extensions.get::<Grant>().map(|g| g.token) else {
            return Ok(Caller::from(actor));
        };
        let token = run(&self.tokens, move |t| {
            t.store().get(id).map_err(Error::Store)
        })
        .await?;
        match token {
            Some(token) => Ok(Caller::new(actor, Some(TokenBounds::of(&token)))),
            // Deleted since it authenticated this request: no bounds to keep, refuse.
            None => Err(ApiError::Refused(crate::Refusal::invalid_token())),
        }
    }

    /// [`Tokens::list`].
    ///
    /// # Errors
    /// As [`Tokens::list`].
    pub async fn list(
        &self,
        caller: impl Into<Caller>,
        query: Query,
    ) -> Result<Vec<Token>, ApiError> {
        let actor = caller.into().actor;
        run(&self.tokens, move |t| t.list(&actor, &query)).await
    }

    /// [`Tokens::get`].
    ///
    /// # Errors
    /// As [`Tokens::get`].
    pub async fn get(&self, caller: impl Into<Caller>, id: TokenId) -> Result<Token, ApiError> {
        let actor = caller.into().actor;
        run(&self.tokens, move |t| t.get(&actor, id)).await
    }

    /// [`Tokens::issue`]: a token and its secret in one step.
    ///
    /// # Errors
    /// As [`Tokens::issue`], and the caller's [`TokenBounds`].
    pub async fn issue(
        &self,
        caller: impl Into<Caller>,
        new: NewToken,
    ) -> Result<Issued, ApiError> {
        let Caller { actor, bounds } = caller.into();
        if let Some(b) = &bounds {
            b.check(new.expiry, &new.allowlist, None)?;
        }
        run(&self.tokens, move |t| t.issue(&actor, new)).await
    }

    /// [`Tokens::create`]: tokens without secrets, all or none.
    ///
    /// # Errors
    /// More than [`Limits::max_batch`] items; as [`Tokens::create`]; the caller's
    /// [`TokenBounds`].
    pub async fn create(
        &self,
        caller: impl Into<Caller>,
        new: Vec<NewToken>,
    ) -> Result<Vec<TokenId>, ApiError> {
        self.check_batch("tokens", new.len())?;
        let Caller { actor, bounds } = caller.into();
        if let Some(b) = &bounds {
            for (i, n) in new.iter().enumerate() {
                b.check(n.expiry, &n.allowlist, request::position(i, new.len()))?;
            }
        }
        run(&self.tokens, move |t| t.create(&actor, new)).await
    }

    /// [`Tokens::update`] of one token; returns it as it is now.
    ///
    /// # Errors
    /// As [`Tokens::update`], the containment rule (see the [module](self)), and the caller's
    /// [`TokenBounds`] (the token as it would be after the change).
    pub async fn update(
        &self,
        caller: impl Into<Caller>,
        update: TokenUpdate,
    ) -> Result<Token, ApiError> {
        let Caller { actor, bounds } = caller.into();
        run(&self.tokens, move |t| -> Result<Token, ApiError> {
            let id = update.id;
            contained(t, &actor, &[id], None)?;
            if let Some(b) = &bounds {
                let now = t.get(&actor, id)?;
                b.check(
                    update.expiry.unwrap_or(now.expiry),
                    update.allowlist.as_ref().unwrap_or(&now.allowlist),
                    None,
                )?;
            }
            t.update(&actor, [update])?;
            Ok(t.get(&actor, id)?)
        })
        .await
    }

    /// [`Tokens::generate_with`]: new secrets, the old ones valid for `grace` (zero: not at
    /// all, the default).
    ///
    /// # Errors
    /// As [`Tokens::generate_with`], more than [`Limits::max_batch`] ids, the containment
    /// rule, and the caller's [`TokenBounds`] (each token regenerated).
    pub async fn regenerate(
        &self,
        caller: impl Into<Caller>,
        ids: Vec<TokenId>,
        grace: api_tokens::time::Duration,
    ) -> Result<Vec<(TokenId, TokenSecret)>, ApiError> {
        self.check_batch("ids", ids.len())?;
        let Caller { actor, bounds } = caller.into();
        run(&self.tokens, move |t| -> Result<_, ApiError> {
            contained(t, &actor, &ids, bounds.as_ref())?;
            Ok(t.generate_with(&actor, ids, grace, &mut rand::rng())?)
        })
        .await
    }

    /// [`SelfService::regenerate`] of one token when `current` holds for it as the store has it
    /// ([`Tokens::generate_if`]: the page's "this form was shown with this secret"): `None`,
    /// nothing changed, when it does not; else the token as it is after and its new secret.
    #[cfg(feature = "page")]
    pub(crate) async fn regenerate_if(
        &self,
        caller: impl Into<Caller>,
        id: TokenId,
        grace: api_tokens::time::Duration,
        current: impl Fn(&Token) -> bool + Send + 'static,
    ) -> Result<Option<(Token, TokenSecret)>, ApiError> {
        let Caller { actor, bounds } = caller.into();
        run(&self.tokens, move |t| -> Result<_, ApiError> {
            contained(t, &actor, &[id], bounds.as_ref())?;
            // The check and the write are one compare-and-set in the store.
            let Some(secret) = t.generate_if(&actor, id, grace, &mut rand::rng(), current)? else {
                return Ok(None);
            };
            Ok(Some((t.get(&actor, id)?, secret)))
        })
        .await
    }

    /// [`Tokens::set_status`]: mass enable/disable.
    ///
    /// # Errors
    /// As [`Tokens::set_status`], more than [`Limits::max_batch`] ids, the containment rule,
    /// and, when enabling, the caller's [`TokenBounds`] (each token enabled).
    pub async fn set_status(
        &self,
        caller: impl Into<Caller>,
        ids: Vec<TokenId>,
        status: Status,
    ) -> Result<Vec<TokenId>, ApiError> {
        self.check_batch("ids", ids.len())?;
        let Caller { actor, bounds } = caller.into();
        let bounds = bounds.filter(|_| status == Status::Enabled);
        run(&self.tokens, move |t| -> Result<_, ApiError> {
            contained(t, &actor, &ids, bounds.as_ref())?;
            Ok(t.set_status(&actor, ids, status)?)
        })
        .await
    }

    /// [`Tokens::delete`].
    ///
    /// # Errors
    /// As [`Tokens::delete`], more than [`Limits::max_batch`] ids, and the containment rule.
    pub async fn delete(
        &self,
        caller: impl Into<Caller>,
        ids: Vec<TokenId>,
    ) -> Result<Vec<TokenId>, ApiError> {
        self.check_batch("ids", ids.len())?;
        let actor = caller.into().actor;
        run(&self.tokens, move |t| -> Result<_, ApiError> {
            contained(t, &actor, &ids, None)?;
            Ok(t.delete(&actor, ids)?)
        })
        .await
    }

    fn check_batch(&self, field: &str, n: usize) -> Result<(), ApiError> {
        if n > self.limits.max_batch {
            return Err(request::too_many(field, n, self.limits.max_batch));
        }
        Ok(())
    }

    /// The JSON API (the table in the [module docs](self)), to nest under a path of the
    /// host's choosing.
    pub fn router<St: Clone + Send + Sync + 'static>(self) -> Router<St> {
        Router::new()
            .route("/", get(list_tokens::<S, M>).post(create_tokens::<S, M>))
            .route("/enable", post(enable::<S, M>))
            .route("/disable", post(disable::<S, M>))
            .route("/delete", post(delete_many::<S, M>))
            .route("/regenerate", post(regenerate_many::<S, M>))
            .route(
                "/{id}",
                get(get_token::<S, M>)
                    .patch(update_token::<S, M>)
                    .delete(delete_token::<S, M>),
            )
            .route("/{id}/regenerate", post(regenerate_token::<S, M>))
            .with_state(Arc::new(self))
    }
}

/// Runs a management call on tokio's blocking pool ([`Blocking`], which also decides what a
/// panic or a shutting-down runtime answers: a store failure).
async fn run<S, T, E, F>(tokens: &Tokens<S>, op: F) -> Result<T, ApiError>
where
    S: TokenStore + 'static,
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
    F: FnOnce(&Tokens<S>) -> Result<T, E> + Send + 'static,
{
    let tokens = tokens.clone();
    Blocking::spawn(move || op(&tokens).map_err(Into::into)).await?
}

/// The containment rule: every token of `ids` the actor can see may do no more than the actor
/// (its permissions, within its owner's current rights, are within the actor's privileges);
/// and, with `bounds`, each is within the calling token's expiry and allowlist.
///
/// An owner the directory does not know as active has no current rights, so the token's own
/// permissions are compared instead: they bound what it carries if the owner comes back (fail
/// closed). Cost: a hash map of the ids and one sort, n log n.
fn contained<S: TokenStore>(
    tokens: &Tokens<S>,
    actor: &Actor,
    ids: &[TokenId],
    bounds: Option<&TokenBounds>,
) -> Result<(), ApiError> {
    let check_permissions = !actor.privileges.is_all();
    if ids.is_empty() || !(check_permissions || bounds.is_some()) {
        return Ok(());
    }
    let mut first = std::collections::HashMap::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        first.entry(*id).or_insert(i);
    }
    let at = |id: TokenId| first.get(&id).copied().unwrap_or(usize::MAX);
    let mut visible = tokens.list(actor, &Query::new().ids(ids.iter().copied()))?;
    visible.sort_by_key(|t| at(t.id));
    for token in visible {
        let index = request::position(at(token.id), ids.len());
        if check_permissions {
            let effective = match tokens.actor(&token.owner) {
                Ok(owner) => token.permissions.intersection(&owner.privileges),
                // Inactive, unknown, or the directory failed: the token's own permissions.
                Err(_) => token.permissions.clone(),
            };
            let missing = effective.not_covered_by(&actor.privileges);
            if !missing.is_empty() {
                return Err(ApiError::Tokens(Error::Forbidden {
                    index,
                    source: Forbidden::PermissionsBeyondActor { missing },
                }));
            }
        }
        if let Some(b) = bounds {
            b.check(token.expiry, &token.allowlist, index)?;
        }
    }
    Ok(())
}

/// `value` as a JSON response with `status` and `Cache-Control: no-store`.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => no_store(
            (
                status,
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body,
            )
                .into_response(),
        ),
        Err(e) => {
            tracing::error!("response not serialized: {e}");
            no_store(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A secret in a response body: the one place it is written out.
#[derive(Serialize)]
struct NewSecret {
    id: TokenId,
    #[serde(serialize_with = "TokenSecret::serialize_exposed")]
    secret: TokenSecret,
}

type Svc<S, M> = State<Arc<SelfService<S, M>>>;

async fn list_tokens<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    Reader(actor): Reader,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = list::query_ignoring(
        query.as_deref().unwrap_or_default(),
        svc.limits.max_page,
        svc.credentials_parameter.as_deref(),
    )?;
    let tokens = svc.list(actor, query).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "tokens": tokens }),
    ))
}

async fn create_tokens<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    caller: Caller,
    JsonBody(value): JsonBody,
) -> Result<Response, ApiError> {
    let user = caller.actor.user.clone();
    if let Value::Array(items) = &value {
        svc.check_batch("tokens", items.len())?;
        let news = items
            .iter()
            .enumerate()
            .map(|(i, v)| request::new_token(v, request::position(i, items.len())))
            .collect::<Result<Vec<_>, _>>()?;
        let ids = svc.create(caller, news).await?;
        tracing::info!(actor = %user, tokens = ?ids, "tokens created");
        return Ok(json(
            StatusCode::CREATED,
            &serde_json::json!({ "ids": ids }),
        ));
    }
    let issued = svc.issue(caller, request::new_token(&value, None)?).await?;
    tracing::info!(actor = %user, token = issued.token.id.get(), "token issued");
    Ok(json(StatusCode::CREATED, &issued.reveal()))
}

async fn get_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    Reader(actor): Reader,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &svc.get(actor, id).await?))
}

async fn update_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(value): JsonBody,
) -> Result<Response, ApiError> {
    let update = request::update(id, &value)?;
    let user = caller.actor.user.clone();
    let token = svc.update(caller, update).await?;
    tracing::info!(actor = %user, token = id.get(), "token updated");
    Ok(json(StatusCode::OK, &token))
}

async fn delete_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    _: JsonOnly,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let user = caller.actor.user.clone();
    svc.delete(caller, vec![id]).await?;
    tracing::info!(actor = %user, token = id.get(), "token deleted");
    Ok(no_store(StatusCode::NO_CONTENT.into_response()))
}

async fn regenerate_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    caller: Caller,
    PathId(id): PathId,
    body: Option<JsonBody>,
) -> Result<Response, ApiError> {
    let grace = request::regenerate_one(&body.map_or(Value::Null, |JsonBody(v)| v))?;
    let user = caller.actor.user.clone();
    let mut secrets = svc.regenerate(caller, vec![id], grace).await?;
    tracing::info!(actor = %user, token = id.get(), "token regenerated");
    match secrets.pop() {
        Some((id, secret)) => Ok(json(StatusCode::OK, &NewSecret { id, secret })),
        None => Err(ApiError::Tokens(Error::NotFound { index: None, id })),
    }
}

async fn regenerate_many<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    caller: Caller,
    JsonBody(value): JsonBody,
) -> Result<Response, ApiError> {
    let (ids, grace) = request::regenerate(&value, svc.limits.max_batch)?;
    let user = caller.actor.user.clone();
    let secrets: Vec<NewSecret> = svc
        .regenerate(caller, ids, grace)
        .await?
        .into_iter()
        .map(|(id, secret)| NewSecret { id, secret })
        .collect();
    let ids: Vec<u64> = secrets.iter().map(|s| s.id.get()).collect();
    tracing::info!(actor = %user, tokens = ?ids, "tokens regenerated");
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "secrets": secrets }),
    ))
}

/// Mass enable (`Some(Enabled)`), disable or delete (`None`) of `{"ids": [...]}`.
async fn mass<S: TokenStore + 'static, M: ActorMapping<S>>(
    svc: &SelfService<S, M>,
    caller: Caller,
    value: &Value,
    status: Option<Status>,
) -> Result<Response, ApiError> {
    let ids = request::ids(value, svc.limits.max_batch)?;
    let user = caller.actor.user.clone();
    let (done, what) = match status {
        Some(status) => (
            svc.set_status(caller, ids, status).await?,
            if status == Status::Enabled {
                "tokens enabled"
            } else {
                "tokens disabled"
            },
        ),
        None => (svc.delete(caller, ids).await?, "tokens deleted"),
    };
    tracing::info!(actor = %user, tokens = ?done, "{what}");
    Ok(json(StatusCode::OK, &serde_json::json!({ "ids": done })))
}

async fn enable<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    caller: Caller,
    JsonBody(value): JsonBody,
) -> Result<Response, ApiError> {
    mass(&svc, caller, &value, Some(Status::Enabled)).await
}

async fn disable<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    caller: Caller,
    JsonBody(value): JsonBody,
) -> Result<Response, ApiError> {
    mass(&svc, caller, &value, Some(Status::Disabled)).await
}

async fn delete_many<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    caller: Caller,
    JsonBody(value): JsonBody,
) -> Result<Response, ApiError> {
    mass(&svc, caller, &value, None).await
}
