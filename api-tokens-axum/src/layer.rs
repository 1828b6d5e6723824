//! [`AuthLayer`]: authenticates every request and puts the [`Grant`] in its extensions;
//! [`Authenticated`]: the extractor handlers take it with.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use api_tokens::limits::Remaining;
use api_tokens::{
    Blocking, Denial, Grant, MemoryStore, Permission, RequestContext, TokenStore, Tokens,
};
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
/// **Which stores may authenticate in place.** [`AuthLayer::new`] calls
/// [`Tokens::authenticate`] in place, on the request's task: right for stores whose lookup
/// never waits, `MemoryStore` and a `Replica` (an in-memory copy). A `SqliteStore` runs a
/// `SELECT` (and at times a last-use write that can wait for the write lock up to its busy
/// timeout), and a bare `PostgresStore` waits on the network: in place, such a lookup blocks an
/// executor thread, and on a current-thread runtime or with few workers every connection
/// waits, public routes too. With those stores use [`AuthLayer::blocking`] (each
/// authentication on tokio's blocking pool), or put a `Replica` in front. Both are the same
/// layer, service and response future; only where `authenticate` runs differs.
///
/// Public routes: put them beside the layered router (`Router::merge`), layer only a nested
/// router, or make the layer optional ([`with_optional(true)`](AuthLayer::with_optional)).
pub struct AuthLayer<S = MemoryStore> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    tokens: Tokens<S>,
    sources: SecretSources,
    client: ClientAddress,
    optional: bool,
    style: RefusalStyle,
    /// Authenticate on tokio's blocking pool ([`AuthLayer::blocking`]) rather than in place.
    blocking: bool,
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
            blocking: self.blocking,
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
            .field("blocking", &self.shared.blocking)
            .finish_non_exhaustive()
    }
}

/// Put in the extensions of a request that presented no credentials and passed an optional
/// layer ([`AuthLayer::with_optional`]), so extractors can tell "anonymous" from "no layer".
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anonymous;

/// The client address a grant was given to, as the layer established it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GrantedTo(pub(crate) Option<std::net::IpAddr>);

impl<S: TokenStore + 'static> AuthLayer<S> {
    /// Authenticates with `tokens`, in place: `Authorization: Bearer` only, the client address
    /// from the connection, every request must present a valid token.
    pub fn new(tokens: Tokens<S>) -> Self {
        Self {
            shared: Arc::new(Shared {
                tokens,
                sources: SecretSources::default(),
                client: ClientAddress::peer(),
                optional: false,
                style: RefusalStyle::default(),
                blocking: false,
                warned_no_peer: AtomicBool::new(false),
            }),
        }
    }

    /// As [`new`](AuthLayer::new), but each authentication runs on tokio's blocking pool
    /// ([`Blocking`]) instead of in place: for stores whose lookup waits on a database
    /// (`SqliteStore`, a bare `PostgresStore`), so a slow lookup holds a blocking thread and
    /// never an executor thread. Costs a blocking-pool hop per request; `MemoryStore` and
    /// `Replica` do not need it. A lookup that panics, or a runtime shutting down, answers 503
    /// (as a store failure) and is logged. Outside a tokio runtime it authenticates in place.
    ///
    /// ```
    /// use api_tokens::Tokens;
    /// use api_tokens_axum::{AuthLayer, Authenticated};
    /// use axum::{Router, routing::get};
    ///
    /// # let tokens = Tokens::in_memory(); // a SqliteStore or PostgresStore in practice
    /// let app: Router = Router::new()
    ///     .route("/zones", get(|Authenticated(g): Authenticated| async move { g.owner.to_string() }))
    ///     .layer(AuthLayer::blocking(tokens));
    /// ```
    pub fn blocking(tokens: Tokens<S>) -> Self {
        Self::new(tokens).configure(|s| s.blocking = true)
    }

    fn configure(mut self, change: impl FnOnce(&mut Shared<S>)) -> Self {
        change(Arc::make_mut(&mut self.shared));
        self
    }

    /// Where secrets are read from (see [`SecretSources`]).
    #[must_use]
    pub fn with_secret_sources(self, sources: SecretSources) -> Self {
        self.configure(|s| s.sources = sources)
    }

    /// How the client address is established (see [`ClientAddress`]).
    #[must_use]
    pub fn with_client_address(self, client: ClientAddress) -> Self {
        self.configure(|s| s.client = client)
    }

    /// With `true`, lets requests without any credentials through, without a grant: handlers
    /// take `Option<Authenticated>`, and [`require`](crate::require) still refuses them. A
    /// request that presents credentials must present valid ones. Off by default.
    #[must_use]
    pub fn with_optional(self, optional: bool) -> Self {
        self.configure(|s| s.optional = optional)
    }

    /// With `true`, names the missing permission in 403 answers (body `"permission"`, and
    /// `scope=` in `WWW-Authenticate`) of the [`require`](AuthLayer::require) layers made from
    /// this one. Off by default: it tells a client holding a stolen token what to look for.
    #[must_use]
    pub fn with_reveal_missing_permission(self, reveal: bool) -> Self {
        self.configure(|s| s.style.reveal_missing_permission = reveal)
    }

    /// A [`RequireLayer`] for `permission` that answers in this layer's style (see
    /// [`with_reveal_missing_permission`](AuthLayer::with_reveal_missing_permission)).
    pub fn require(&self, permission: Permission) -> RequireLayer {
        RequireLayer::all([permission])
            .with_reveal_missing_permission(self.shared.style.reveal_missing_permission)
    }

    /// The `Tokens` the layer authenticates with.
    pub fn tokens(&self) -> &Tokens<S> {
        &self.shared.tokens
    }
}

impl<S: TokenStore + 'static> Shared<S> {
    /// Authenticates `req` in place: `Ok` with the grant (or the anonymous mark) inserted and
    /// what remains of the limits it charged (for the response's `RateLimit` fields; `None`
    /// for a token without limits), or the refusal to answer with.
    fn check<B>(&self, req: &mut Request<B>) -> Result<Option<Box<[Remaining]>>, Refusal> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        // Read before written: requests without a peer address write the shared flag once, not
        // each time.
        if peer.is_none()
            && !self.warned_no_peer.load(Ordering::Relaxed)
            && !self.warned_no_peer.swap(true, Ordering::Relaxed)
        {
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
                    Ok(grant) => Some((grant, ip)),
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
            Some((grant, ip)) => {
                let limits = grant.limits();
                let limits = (!limits.is_empty()).then(|| Box::from(limits));
                let extensions = req.extensions_mut();
                extensions.insert(grant);
                // For the log line of a later refusal (`require`), which must name the client.
                extensions.insert(GrantedTo(ip));
                Ok(limits)
            }
            None => {
                req.extensions_mut().insert(Anonymous);
                Ok(None)
            }
        }
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
    I: Service<Request<B>, Response = Response> + Clone,
    S: TokenStore + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = ResponseFuture<I, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if self.shared.blocking {
            // The service made ready by `poll_ready` serves this request once the check is
            // done; its clone takes its place here.
            let clone = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, clone);
            let shared = Arc::clone(&self.shared);
            let checked = Blocking::spawn(move || {
                let result = shared.check(&mut req);
                (req, result)
            });
            return ResponseFuture::checking(checked, inner);
        }
        match self.shared.check(&mut req) {
            Ok(limits) => ResponseFuture::inner_limited(self.inner.call(req), limits),
            Err(refusal) => ResponseFuture::refused(refusal),
        }
    }
}

/// What the blocking pool hands back: the request (with the grant in it) and the verdict.
type Checked<B> = (Request<B>, Result<Option<Box<[Remaining]>>, Refusal>);

pin_project_lite::pin_project! {
    /// The response future of [`AuthService`] and [`RequireService`](crate::RequireService):
    /// a refusal ready at once, or the inner service's future; on a
    /// [blocking](AuthLayer::blocking) layer, first the authentication on the blocking pool.
    /// No box either way.
    pub struct ResponseFuture<I, B>
    where
        I: Service<Request<B>>,
    {
        #[pin]
        state: State<I, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<I, B>
    where
        I: Service<Request<B>>,
    {
        Checking { checked: Blocking<Checked<B>>, inner: Option<I> },
        Inner { #[pin] future: I::Future, limits: Option<Box<[Remaining]>> },
        Refused { response: Option<Response> },
    }
}

impl<I: Service<Request<B>>, B> ResponseFuture<I, B> {
    /// The inner service's future, whose response gets the `RateLimit` header fields of
    /// `limits` (none when it is `None`).
    pub(crate) fn inner_limited(future: I::Future, limits: Option<Box<[Remaining]>>) -> Self {
        Self {
            state: State::Inner { future, limits },
        }
    }

    pub(crate) fn refused(refusal: Refusal) -> Self {
        Self {
            state: State::Refused {
                response: Some(refusal.into_response()),
            },
        }
    }

    fn checking(checked: Blocking<Checked<B>>, inner: I) -> Self {
        Self {
            state: State::Checking {
                checked,
                inner: Some(inner),
            },
        }
    }
}

impl<I, B> Future for ResponseFuture<I, B>
where
    I: Service<Request<B>, Response = Response>,
{
    type Output = Result<Response, I::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The inner service's future, the path of every request let through, first and alone;
        // the other states out of line.
        if let StateProj::Inner { future, limits } = self.as_mut().project().state.project() {
            let polled = future.poll(cx);
            return match limits.take() {
                None => polled,
                Some(limits) => with_limits(polled, limits),
            };
        }
        self.poll_other(cx)
    }
}

impl<I, B> ResponseFuture<I, B>
where
    I: Service<Request<B>, Response = Response>,
{
    /// A refusal, or the authentication on the blocking pool and then the inner service.
    #[inline(never)]
    fn poll_other(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response, I::Error>> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Inner { future, limits } => {
                    let polled = future.poll(cx);
                    return match limits.take() {
                        None => polled,
                        Some(limits) => with_limits(polled, limits),
                    };
                }
                // Polled again after completion: answer again rather than panic.
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .unwrap_or_else(|| Refusal::invalid_token().into_response())));
                }
                StateProj::Checking { checked, inner } => match Pin::new(checked).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok((req, Ok(limits)))) => match inner.take() {
                        Some(mut inner) => State::Inner {
                            future: inner.call(req),
                            limits,
                        },
                        None => refused_state(Refusal::unavailable()),
                    },
                    Poll::Ready(Ok((_, Err(refusal)))) => refused_state(refusal),
                    // A panic in the store, or the runtime shutting down: as a store failure.
                    Poll::Ready(Err(e)) => {
                        tracing::error!(
                            "authentication did not complete on the blocking pool: {}",
                            refusal::chain(&e)
                        );
                        refused_state(Refusal::unavailable())
                    }
                },
            };
            this.state.set(next);
        }
    }
}

/// A ready response with the `RateLimit` header fields of `limits` (a pending one as it is;
/// `limits` is used once).
#[inline(never)]
fn with_limits<E>(
    polled: Poll<Result<Response, E>>,
    limits: Box<[Remaining]>,
) -> Poll<Result<Response, E>> {
    match polled {
        Poll::Ready(Ok(mut response)) => {
            refusal::add_rate_limit_headers(response.headers_mut(), &limits);
            Poll::Ready(Ok(response))
        }
        other => other,
    }
}

fn refused_state<I: Service<Request<B>>, B>(refusal: Refusal) -> State<I, B> {
    State::Refused {
        response: Some(refusal.into_response()),
    }
}

impl<I: Service<Request<B>>, B> fmt::Debug for ResponseFuture<I, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Checking { .. } => "checking",
            State::Inner { .. } => "inner",
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

/// The [`Grant`] of an authenticated request, as a handler argument. Rejects with the public
/// denial (401) when the request has none: the layer was optional and no credentials came, or
/// no [`AuthLayer`] runs before the handler (a setup error, logged at `error` level; refused
/// rather than let through). `Option<Authenticated>` is `None` instead, on optional layers.
///
/// `Extension<Grant>` works as well; this extractor is the one that answers like the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a wrapper whose one field is the point"
)]
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

/// What a route layer (`require`, `spend`) checks on the request's grant: the limits the route
/// was charged to (for the response's `RateLimit` fields), or the denial.
pub(crate) trait RouteCheck: Clone {
    /// The check.
    fn check(&self, grant: &Grant) -> Result<Option<Box<[Remaining]>>, Denial>;

    /// Whether a 403 names the missing permission.
    fn reveal(&self) -> bool {
        false
    }
}

/// `check` on the request's grant; a refusal is logged with the client the grant was given to.
/// No grant (no [`AuthLayer`] before the route) is 401.
pub(crate) fn check_route<C: RouteCheck, B>(
    check: &C,
    req: &Request<B>,
) -> Result<Option<Box<[Remaining]>>, Refusal> {
    let grant = grant_of(req.extensions())?;
    check.check(grant).map_err(|denial| {
        let ip = req.extensions().get::<GrantedTo>().and_then(|g| g.0);
        refusal::log_denial(&denial, ip);
        Refusal::from_denial(&denial, check.reveal())
    })
}

/// The service of a route layer: `$service` runs `$layer`'s [`RouteCheck`] before the inner
/// service, and answers its refusal instead.
macro_rules! route_service {
    ($(#[$doc:meta])* $service:ident, $layer:ty) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $service<I> {
            inner: I,
            layer: $layer,
        }

        impl<I: std::fmt::Debug> std::fmt::Debug for $service<I> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($service))
                    .field("inner", &self.inner)
                    .field("layer", &self.layer)
                    .finish()
            }
        }

        impl<I> tower_layer::Layer<I> for $layer {
            type Service = $service<I>;

            fn layer(&self, inner: I) -> Self::Service {
                $service {
                    inner,
                    layer: self.clone(),
                }
            }
        }

        impl<I, B> tower_service::Service<axum::http::Request<B>> for $service<I>
        where
            I: tower_service::Service<axum::http::Request<B>, Response = axum::response::Response>,
        {
            type Response = axum::response::Response;
            type Error = I::Error;
            type Future = $crate::layer::ResponseFuture<I, B>;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
                match $crate::layer::check_route(&self.layer, &req) {
                    Ok(limits) => {
                        $crate::layer::ResponseFuture::inner_limited(self.inner.call(req), limits)
                    }
                    Err(refusal) => $crate::layer::ResponseFuture::refused(refusal),
                }
            }
        }
    };
}
pub(crate) use route_service;
