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
//! [`Actor`]. The default, [`FromGrant`], takes the [`Grant`](api_tokens::Grant) of an
//! [`AuthLayer`](crate::AuthLayer) in front: the token's owner, holding the token's effective
//! permissions, managing its own tokens (and everyone's when the grant holds the admin
//! permission the host names). [`actor_from_fn`] maps a request any other way (a session).
//!
//! **A caller acts only on tokens that can do no more than it can**: regenerating, changing,
//! enabling, disabling or deleting a token whose effective permissions (its own, within its
//! owner's current rights) exceed the caller's privileges is refused (`permissions_not_held`,
//! 403). Without it, a token holding only `dns.read` could regenerate its owner's `*` token and
//! read the new secret. Creating is bounded by the core already (a caller cannot grant what it
//! does not hold).
//!
//! **Management never blocks the executor**: each call runs on tokio's blocking pool
//! (`spawn_blocking`, the core's documented path for stores that wait on a network), so a slow
//! database holds a blocking thread, not an async worker.

use std::future::Future;
use std::sync::Arc;

use api_tokens::{
    Actor, Error, Forbidden, Issued, MemoryStore, NewToken, Permission, Query, Status, StoreError,
    Token, TokenId, TokenSecret, TokenStore, TokenUpdate, Tokens,
};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;

mod error;
pub mod list;
pub mod request;

pub use error::ApiError;

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
/// token's, within the owner's current rights), managing its own tokens; and everyone's when
/// the grant allows the [admin permission](FromGrant::admin_permission).
///
/// A request without a grant is refused with 401.
#[derive(Clone, Debug, Default)]
pub struct FromGrant {
    admin: Option<Permission>,
}

impl FromGrant {
    /// No admins: every caller manages its own tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Callers whose grant allows `permission` manage everyone's tokens (Zabbix's Super
    /// admin), within their own privileges.
    #[must_use]
    pub fn admin_permission(mut self, permission: Permission) -> Self {
        self.admin = Some(permission);
        self
    }
}

impl<S: TokenStore + 'static> ActorMapping<S> for FromGrant {
    async fn actor(&self, parts: &Parts, _: &Tokens<S>) -> Result<Actor, ApiError> {
        let grant = grant_of(&parts.extensions)?;
        let mut actor = Actor::user(grant.owner.clone()).privileges(grant.permissions.clone());
        actor.manage_others = self.admin.as_ref().is_some_and(|p| grant.allows(p));
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
///             .actors(FromGrant::new().admin_permission(permission!("tokens.admin")))
///             .router(),
///     )
///     .layer(AuthLayer::new(tokens));
/// ```
pub struct SelfService<S = MemoryStore, M = FromGrant> {
    tokens: Tokens<S>,
    actors: M,
    limits: Limits,
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
    /// ([`FromGrant`]), default [`Limits`].
    pub fn new(tokens: Tokens<S>) -> Self {
        Self {
            tokens,
            actors: FromGrant::new(),
            limits: Limits::default(),
        }
    }
}

impl<S: TokenStore + 'static, M: ActorMapping<S>> SelfService<S, M> {
    /// Maps requests to callers with `actors`.
    pub fn actors<M2: ActorMapping<S>>(self, actors: M2) -> SelfService<S, M2> {
        SelfService {
            tokens: self.tokens,
            actors,
            limits: self.limits,
        }
    }

    /// Uses `limits`.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
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

    /// [`Tokens::list`].
    ///
    /// # Errors
    /// As [`Tokens::list`].
    pub async fn list(&self, actor: Actor, query: Query) -> Result<Vec<Token>, ApiError> {
        run(&self.tokens, move |t| t.list(&actor, &query)).await
    }

    /// [`Tokens::get`].
    ///
    /// # Errors
    /// As [`Tokens::get`].
    pub async fn get(&self, actor: Actor, id: TokenId) -> Result<Token, ApiError> {
        run(&self.tokens, move |t| t.get(&actor, id)).await
    }

    /// [`Tokens::issue`]: a token and its secret in one step.
    ///
    /// # Errors
    /// As [`Tokens::issue`].
    pub async fn issue(&self, actor: Actor, new: NewToken) -> Result<Issued, ApiError> {
        run(&self.tokens, move |t| t.issue(&actor, new)).await
    }

    /// [`Tokens::create`]: tokens without secrets, all or none.
    ///
    /// # Errors
    /// More than [`Limits::max_batch`] items; as [`Tokens::create`].
    pub async fn create(&self, actor: Actor, new: Vec<NewToken>) -> Result<Vec<TokenId>, ApiError> {
        self.check_batch("tokens", new.len())?;
        run(&self.tokens, move |t| t.create(&actor, new)).await
    }

    /// [`Tokens::update`] of one token; returns it as it is now.
    ///
    /// # Errors
    /// As [`Tokens::update`], and the containment rule (see the [module](self)).
    pub async fn update(&self, actor: Actor, update: TokenUpdate) -> Result<Token, ApiError> {
        run(&self.tokens, move |t| {
            let id = update.id;
            contained(t, &actor, &[id])?;
            t.update(&actor, [update])?;
            t.get(&actor, id)
        })
        .await
    }

    /// [`Tokens::generate_with`]: new secrets, the old ones valid for `grace` (zero: not at
    /// all, the default).
    ///
    /// # Errors
    /// As [`Tokens::generate_with`], more than [`Limits::max_batch`] ids, and the containment
    /// rule.
    pub async fn regenerate(
        &self,
        actor: Actor,
        ids: Vec<TokenId>,
        grace: api_tokens::time::Duration,
    ) -> Result<Vec<(TokenId, TokenSecret)>, ApiError> {
        self.check_batch("ids", ids.len())?;
        run(&self.tokens, move |t| {
            contained(t, &actor, &ids)?;
            t.generate_with(&actor, ids, grace, &mut rand::rng())
        })
        .await
    }

    /// [`Tokens::set_status`]: mass enable/disable.
    ///
    /// # Errors
    /// As [`Tokens::set_status`], more than [`Limits::max_batch`] ids, and the containment rule.
    pub async fn set_status(
        &self,
        actor: Actor,
        ids: Vec<TokenId>,
        status: Status,
    ) -> Result<Vec<TokenId>, ApiError> {
        self.check_batch("ids", ids.len())?;
        run(&self.tokens, move |t| {
            contained(t, &actor, &ids)?;
            t.set_status(&actor, ids, status)
        })
        .await
    }

    /// [`Tokens::delete`].
    ///
    /// # Errors
    /// As [`Tokens::delete`], more than [`Limits::max_batch`] ids, and the containment rule.
    pub async fn delete(&self, actor: Actor, ids: Vec<TokenId>) -> Result<Vec<TokenId>, ApiError> {
        self.check_batch("ids", ids.len())?;
        run(&self.tokens, move |t| {
            contained(t, &actor, &ids)?;
            t.delete(&actor, ids)
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

/// Runs a management call on tokio's blocking pool.
async fn run<S, T, F>(tokens: &Tokens<S>, op: F) -> Result<T, ApiError>
where
    S: TokenStore + 'static,
    T: Send + 'static,
    F: FnOnce(&Tokens<S>) -> Result<T, Error> + Send + 'static,
{
    let tokens = tokens.clone();
    match tokio::task::spawn_blocking(move || op(&tokens)).await {
        Ok(result) => result.map_err(ApiError::from),
        // The call panicked (in a host's store or directory) or the runtime is shutting down.
        Err(e) => Err(ApiError::Tokens(Error::Store(StoreError::backend(e)))),
    }
}

/// The containment rule: every token of `ids` the actor can see may do no more than the actor
/// (its permissions, within its owner's current rights, are within the actor's privileges).
fn contained<S: TokenStore>(
    tokens: &Tokens<S>,
    actor: &Actor,
    ids: &[TokenId],
) -> Result<(), Error> {
    if actor.privileges.is_all() || ids.is_empty() {
        return Ok(());
    }
    let mut visible = tokens.list(actor, &Query::new().ids(ids.iter().copied()))?;
    let at = |id: TokenId| ids.iter().position(|i| *i == id).unwrap_or(usize::MAX);
    visible.sort_by_key(|t| at(t.id));
    for token in visible {
        // An owner the directory no longer knows as active: the token works for nobody.
        let Ok(owner) = tokens.actor(&token.owner) else {
            continue;
        };
        let effective = token.permissions.intersection(&owner.privileges);
        let missing = effective.not_covered_by(&actor.privileges);
        if !missing.is_empty() {
            return Err(Error::Forbidden {
                index: request::position(at(token.id), ids.len()),
                source: Forbidden::PermissionsBeyondActor { missing },
            });
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

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The request's JSON body; `Value::Null` when it is empty and `required` is false.
async fn body_json(
    parts: &Parts,
    body: Body,
    limit: usize,
    required: bool,
) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::bad_request(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    })?;
    if bytes.is_empty() && !required {
        return Ok(Value::Null);
    }
    let is_json = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::bad_request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON, sent as Content-Type: application/json",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
        )
    })
}

fn path_id(text: &str) -> Result<TokenId, ApiError> {
    text.parse().map_err(|e| ApiError::invalid("id", None, &e))
}

async fn list_tokens<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    req: Request,
) -> Response {
    respond(
        async {
            let (parts, _) = req.into_parts();
            let actor = svc.actor(&parts).await?;
            let query = list::query(parts.uri.query().unwrap_or_default(), svc.limits.max_page)?;
            let tokens = svc.list(actor, query).await?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "tokens": tokens }),
            ))
        }
        .await,
    )
}

async fn create_tokens<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    req: Request,
) -> Response {
    respond(
        async {
            let (parts, body) = req.into_parts();
            let actor = svc.actor(&parts).await?;
            let value = body_json(&parts, body, svc.limits.max_body_bytes, true).await?;
            if let Value::Array(items) = &value {
                svc.check_batch("tokens", items.len())?;
                let news = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| request::new_token(v, request::position(i, items.len())))
                    .collect::<Result<Vec<_>, _>>()?;
                let user = actor.user.clone();
                let ids = svc.create(actor, news).await?;
                tracing::info!(actor = %user, tokens = ?ids, "tokens created");
                return Ok(json(
                    StatusCode::CREATED,
                    &serde_json::json!({ "ids": ids }),
                ));
            }
            let new = request::new_token(&value, None)?;
            let user = actor.user.clone();
            let issued = svc.issue(actor, new).await?;
            tracing::info!(actor = %user, token = issued.token.id.get(), "token issued");
            Ok(json(StatusCode::CREATED, &issued.reveal()))
        }
        .await,
    )
}

async fn get_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    respond(
        async {
            let (parts, _) = req.into_parts();
            let actor = svc.actor(&parts).await?;
            let token = svc.get(actor, path_id(&id)?).await?;
            Ok(json(StatusCode::OK, &token))
        }
        .await,
    )
}

async fn update_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    respond(
        async {
            let (parts, body) = req.into_parts();
            let actor = svc.actor(&parts).await?;
            let id = path_id(&id)?;
            let value = body_json(&parts, body, svc.limits.max_body_bytes, true).await?;
            let update = request::update(id, &value)?;
            let user = actor.user.clone();
            let token = svc.update(actor, update).await?;
            tracing::info!(actor = %user, token = id.get(), "token updated");
            Ok(json(StatusCode::OK, &token))
        }
        .await,
    )
}

async fn delete_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    respond(
        async {
            let (parts, _) = req.into_parts();
            let actor = svc.actor(&parts).await?;
            let id = path_id(&id)?;
            let user = actor.user.clone();
            svc.delete(actor, vec![id]).await?;
            tracing::info!(actor = %user, token = id.get(), "token deleted");
            Ok(no_store(StatusCode::NO_CONTENT.into_response()))
        }
        .await,
    )
}

async fn regenerate_token<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    respond(
        async {
            let (parts, body) = req.into_parts();
            let actor = svc.actor(&parts).await?;
            let id = path_id(&id)?;
            let value = body_json(&parts, body, svc.limits.max_body_bytes, false).await?;
            let grace = request::regenerate_one(&value)?;
            let user = actor.user.clone();
            let mut secrets = svc.regenerate(actor, vec![id], grace).await?;
            tracing::info!(actor = %user, token = id.get(), "token regenerated");
            match secrets.pop() {
                Some((id, secret)) => Ok(json(StatusCode::OK, &NewSecret { id, secret })),
                None => Err(ApiError::Tokens(Error::NotFound { index: None, id })),
            }
        }
        .await,
    )
}

async fn regenerate_many<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    req: Request,
) -> Response {
    respond(
        async {
            let (parts, body) = req.into_parts();
            let actor = svc.actor(&parts).await?;
            let value = body_json(&parts, body, svc.limits.max_body_bytes, true).await?;
            let (ids, grace) = request::regenerate(&value, svc.limits.max_batch)?;
            let user = actor.user.clone();
            let secrets = svc.regenerate(actor, ids, grace).await?;
            let secrets: Vec<NewSecret> = secrets
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
        .await,
    )
}

async fn mass<S: TokenStore + 'static, M: ActorMapping<S>>(
    svc: &SelfService<S, M>,
    req: Request,
    status: Option<Status>,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let actor = svc.actor(&parts).await?;
    let value = body_json(&parts, body, svc.limits.max_body_bytes, true).await?;
    let ids = request::ids(&value, svc.limits.max_batch)?;
    let user = actor.user.clone();
    let done = match status {
        Some(status) => svc.set_status(actor, ids, status).await?,
        None => svc.delete(actor, ids).await?,
    };
    let what = match status {
        Some(Status::Enabled) => "tokens enabled",
        Some(Status::Disabled) => "tokens disabled",
        None => "tokens deleted",
    };
    tracing::info!(actor = %user, tokens = ?done, "{what}");
    Ok(json(StatusCode::OK, &serde_json::json!({ "ids": done })))
}

async fn enable<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    req: Request,
) -> Response {
    respond(mass(&svc, req, Some(Status::Enabled)).await)
}

async fn disable<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    req: Request,
) -> Response {
    respond(mass(&svc, req, Some(Status::Disabled)).await)
}

async fn delete_many<S: TokenStore + 'static, M: ActorMapping<S>>(
    State(svc): Svc<S, M>,
    req: Request,
) -> Response {
    respond(mass(&svc, req, None).await)
}
