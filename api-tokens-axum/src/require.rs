//! [`require`]: permission requirements declared per route or router, checked against the
//! [`Grant`](api_tokens::Grant) the [`AuthLayer`](crate::AuthLayer) found.

use std::fmt;
use std::sync::Arc;

use api_tokens::limits::Remaining;
use api_tokens::{Denial, Grant, Permission};

use crate::layer::{RouteCheck, route_service};

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

impl RouteCheck for RequireLayer {
    fn check(&self, grant: &Grant) -> Result<Option<Box<[Remaining]>>, Denial> {
        self.permissions.iter().try_for_each(|p| grant.require(p))?;
        Ok(None)
    }

    fn reveal(&self) -> bool {
        self.reveal
    }
}

route_service! {
    /// The service [`RequireLayer`] wraps around the inner one.
    RequireService, RequireLayer
}
