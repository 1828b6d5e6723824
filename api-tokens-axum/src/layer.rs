//! [`AuthLayer`]: authenticates every request and puts the [`Grant`] in its extensions;
//! [`Authenticated`]: the extractor handlers take it with.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use api_tokens::{Grant, MemoryStore, Permission, RequestContext, TokenStore, Tokens};
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::Request;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::client_ip::ClientAddress;
use crate::credentials::{Presented, SecretSources};
use crate::refusal::{self, Refusal, RefusalStyle};
use crate::require::RequireLayer;

/// A tower [`Layer`] that authenticates each request's API token with
/// [`Tokens::authenticate`] and puts the [`Grant`] in the request's extensions, where the
/// [`Authenticated`] extractor (or `Extension<Grant>`) finds it and [`require`](crate::require)
/// checks it. A request it refuses never reaches the inner service: the client gets the public
/// denial ([`Refusal`]), the log gets the detailed one (`tracing`).
///
/// ```
/// use api_tokens::{Tokens, permission};
/// use api_tokens_axum::{AuthLayer, Authenticated, require};
/// use axum::{Router, routing::get};
///
/// async fn zones(Authenticated(grant): Authenticated) -> String {
///     format!("zones of {}", grant.owner)
/// }
///
/// let tokens = Tokens::in_memory();
/// let app: Router = Router::new()
///     .route("/zones", get(zones).route_layer(require(permission!("dns.read"))))
///     .layer(AuthLayer::new(tokens));
/// // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
/// ```
///
/// Authentication does no I/O with the in-memory and SQLite stores and replicas (the core's
/// rule), so the layer calls it in place, on the request's task.
///
/// Public routes: put them beside the layered router (`Router::merge`), layer only a nested
/// router, or make the layer [`optional`](AuthLayer::optional).
pub struct AuthLayer<S = MemoryStore> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    tokens: Tokens<S>,
    sources: SecretSources,
    client: ClientAddress,
    optional: bool,
    style: RefusalStyle,
    warned_no_peer: AtomicBool,
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Self {
            tokens: self.tokens.clone(),
            sources: self.sources.clone(),
            client: self.client.clone(),
            optional: self.optional,
            style: self.style.clone(),
            warned_no_peer: AtomicBool::new(self.warned_no_peer.load(Ordering::Relaxed)),
        }
    }
}

impl<S> Clone for AuthLayer<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> fmt::Debug for AuthLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("sources", &self.shared.sources)
            .field("client", &self.shared.client)
            .field("optional", &self.shared.optional)
            .finish_non_exhaustive()
    }
}

/// Put in the extensions of a request that presented no credentials and passed an
/// [`optional`](AuthLayer::optional) layer, so extractors can tell "anonymous" from "no layer".
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anonymous;

impl<S: TokenStore + 'static> AuthLayer<S> {
    /// Authenticates with `tokens`: `Authorization: Bearer` only, the client address from the
    /// connection, every request must present a valid token.
    pub fn new(tokens: Tokens<S>) -> Self {
        Self {
            shared: Arc::new(Shared {
                tokens,
                sources: SecretSources::default(),
                client: ClientAddress::peer(),
                optional: false,
                style: RefusalStyle::default(),
                warned_no_peer: AtomicBool::new(false),
            }),
        }
    }

    fn configure(mut self, change: impl FnOnce(&mut Shared<S>)) -> Self {
        change(Arc::make_mut(&mut self.shared));
        self
    }

    /// Where secrets are read from (see [`SecretSources`]).
    #[must_use]
    pub fn secret_sources(self, sources: SecretSources) -> Self {
        self.configure(|s| s.sources = sources)
    }

    /// How the client address is established (see [`ClientAddress`]).
    #[must_use]
    pub fn client_address(self, client: ClientAddress) -> Self {
        self.configure(|s| s.client = client)
    }

    /// Lets requests without any credentials through, without a grant: handlers take
    /// `Option<Authenticated>`, and [`require`](crate::require) still refuses them. A request
    /// that presents credentials must present valid ones.
    #[must_use]
    pub fn optional(self) -> Self {
        self.configure(|s| s.optional = true)
    }

    /// Names the missing permission in 403 answers (body `"permission"`, and `scope=` in
    /// `WWW-Authenticate`) of the [`require`](AuthLayer::require) layers made from this one.
    /// Off by default: it tells a client holding a stolen token what to look for.
    #[must_use]
    pub fn reveal_missing_permission(self) -> Self {
        self.configure(|s| s.style.reveal_missing_permission = true)
    }

    /// A [`RequireLayer`] for `permission` that answers in this layer's style (see
    /// [`reveal_missing_permission`](AuthLayer::reveal_missing_permission)).
    pub fn require(&self, permission: Permission) -> RequireLayer {
        RequireLayer::all([permission])
            .reveal_missing_permission(self.shared.style.reveal_missing_permission)
    }

    /// The `Tokens` the layer authenticates with.
    pub fn tokens(&self) -> &Tokens<S> {
        &self.shared.tokens
    }
}

impl<S: TokenStore + 'static> Shared<S> {
    /// Authenticates `req` in place: `Ok` with the grant (or the anonymous mark) inserted, or
    /// the refusal to answer with.
    fn check<B>(&self, req: &mut Request<B>) -> Result<(), Refusal> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if peer.is_none() && !self.warned_no_peer.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "no peer address (serve with `into_make_service_with_connect_info::<SocketAddr>()`): \
                 tokens with an allowlist will be refused"
            );
        }
        let grant = match self.sources.presented(req.headers(), req.uri()) {
            Presented::Secret { secret, .. } => {
                let ip = self.client.resolve(peer, req.headers());
                let ctx = ip.map_or_else(RequestContext::unknown_address, RequestContext::from_ip);
                match self.tokens.authenticate(&secret, &ctx) {
                    Ok(grant) => Some(grant),
                    Err(denial) => {
                        refusal::log_denial(&denial, ip);
                        return Err(Refusal::from_denial(&denial, false));
                    }
                }
            }
            Presented::Absent(_) if self.optional => None,
            Presented::Absent(absent) => {
                refusal::log_absent(absent, self.client.resolve(peer, req.headers()));
                return Err(Refusal::no_credentials());
            }
            Presented::Refused(problem) => {
                refusal::log_problem(problem, self.client.resolve(peer, req.headers()));
                return Err(Refusal::invalid_token());
            }
        };
        match grant {
            Some(grant) => req.extensions_mut().insert(grant).map(drop),
            None => req.extensions_mut().insert(Anonymous).map(drop),
        };
        Ok(())
    }
}

impl<I, S> Layer<I> for AuthLayer<S> {
    type Service = AuthService<I, S>;

    fn layer(&self, inner: I) -> Self::Service {
        AuthService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`AuthLayer`] wraps around the inner one.
pub struct AuthService<I, S = MemoryStore> {
    inner: I,
    shared: Arc<Shared<S>>,
}

impl<I: Clone, S> Clone for AuthService<I, S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<I: fmt::Debug, S> fmt::Debug for AuthService<I, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<I, S, B> Service<Request<B>> for AuthService<I, S>
where
    I: Service<Request<B>, Response = Response>,
    S: TokenStore + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = ResponseFuture<I::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match self.shared.check(&mut req) {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err(refusal) => ResponseFuture::refused(refusal.into_response()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`AuthService`] and [`RequireService`](crate::RequireService):
    /// the inner service's, or a refusal ready at once.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response> },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn refused(response: Response) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future.poll(cx),
            // Polled again after completion: answer again rather than panic.
            StateProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| Refusal::invalid_token().into_response()))),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// The [`Grant`] of an authenticated request, as a handler argument. Rejects with the public
/// denial (401) when the request has none: the layer was optional and no credentials came, or
/// no [`AuthLayer`] runs before the handler (a setup error, logged at `error` level; refused
/// rather than let through). `Option<Authenticated>` is `None` instead, on optional layers.
///
/// `Extension<Grant>` works as well; this extractor is the one that answers like the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated(pub Grant);

impl std::ops::Deref for Authenticated {
    type Target = Grant;
    fn deref(&self) -> &Grant {
        &self.0
    }
}

/// The grant of `parts`, or the refusal for a request without one.
pub(crate) fn grant_of(parts: &axum::http::Extensions) -> Result<&Grant, Refusal> {
    match parts.get::<Grant>() {
        Some(grant) => Ok(grant),
        None => {
            if parts.get::<Anonymous>().is_none() {
                tracing::error!(
                    "a route needs a grant but no AuthLayer ran before it: add `.layer(AuthLayer::new(tokens))`; refusing"
                );
            }
            Err(Refusal::no_credentials())
        }
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Authenticated {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Refusal> {
        grant_of(&parts.extensions).cloned().map(Self)
    }
}

impl<St: Send + Sync> OptionalFromRequestParts<St> for Authenticated {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Option<Self>, Refusal> {
        match parts.extensions.get::<Grant>() {
            Some(grant) => Ok(Some(Self(grant.clone()))),
            None if parts.extensions.get::<Anonymous>().is_some() => Ok(None),
            None => grant_of(&parts.extensions).map(|g| Some(Self(g.clone()))),
        }
    }
}
