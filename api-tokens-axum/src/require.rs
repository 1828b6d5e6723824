//! [`require`]: permission requirements declared per route or router, checked against the
//! [`Grant`](api_tokens::Grant) the [`AuthLayer`](crate::AuthLayer) found.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use api_tokens::Permission;
use axum::http::Request;
use axum::response::Response;
use tower_layer::Layer;
use tower_service::Service;

use crate::layer::{GrantedTo, ResponseFuture, grant_of};
use crate::refusal::{self, Refusal};

/// A layer that lets a request through only when its grant allows `permission`; otherwise 403
/// with `WWW-Authenticate: Bearer error="insufficient_scope"` (the permission named only if the
/// host opts in: [`AuthLayer::require`](crate::AuthLayer::require) with
/// [`AuthLayer::with_reveal_missing_permission`](crate::AuthLayer::with_reveal_missing_permission)). A
/// request without a grant gets 401. Use it with `route_layer` (one route, or every route of a
/// router) under an [`AuthLayer`](crate::AuthLayer):
///
/// ```
/// use api_tokens::{Tokens, permission};
/// use api_tokens_axum::{AuthLayer, require};
/// use axum::{Router, routing::{get, post}};
///
/// let app: Router = Router::new()
///     .route("/zones", get(|| async { "zones" }).route_layer(require(permission!("dns.read"))))
///     .route("/zones/edit", post(|| async { "edited" }))
///     .route_layer(require(permission!("dns.edit"))) // every route above this line
///     .layer(AuthLayer::new(Tokens::in_memory()));
/// ```
///
/// The permission is a compile-time constant ([`permission!`](api_tokens::permission!)):
/// nothing is parsed per request.
pub fn require(permission: Permission) -> RequireLayer {
    RequireLayer::all([permission])
}

/// The layer [`require`] makes.
#[derive(Clone)]
pub struct RequireLayer {
    permissions: Arc<[Permission]>,
    reveal: bool,
}

impl fmt::Debug for RequireLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireLayer")
            .field("permissions", &self.permissions)
            .field("reveal", &self.reveal)
            .finish()
    }
}

impl RequireLayer {
    /// Requires every one of `permissions`.
    pub fn all(permissions: impl IntoIterator<Item = Permission>) -> Self {
        Self {
            permissions: permissions.into_iter().collect(),
            reveal: false,
        }
    }

    /// Whether 403 answers name the missing permission.
    #[must_use]
    pub fn with_reveal_missing_permission(mut self, reveal: bool) -> Self {
        self.reveal = reveal;
        self
    }
}

impl<I> Layer<I> for RequireLayer {
    type Service = RequireService<I>;

    fn layer(&self, inner: I) -> Self::Service {
        RequireService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`RequireLayer`] wraps around the inner one.
#[derive(Clone)]
pub struct RequireService<I> {
    inner: I,
    layer: RequireLayer,
}

impl<I: fmt::Debug> fmt::Debug for RequireService<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<I, B> Service<Request<B>> for RequireService<I>
where
    I: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = I::Error;
    type Future = ResponseFuture<I, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let checked = grant_of(req.extensions()).and_then(|grant| {
            self.layer
                .permissions
                .iter()
                .try_for_each(|p| grant.require(p))
                .map_err(|denial| {
                    let ip = req.extensions().get::<GrantedTo>().and_then(|g| g.0);
                    refusal::log_denial(&denial, ip);
                    Refusal::from_denial(&denial, self.layer.reveal)
                })
        });
        match checked {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err(refusal) => ResponseFuture::refused(refusal),
        }
    }
}
