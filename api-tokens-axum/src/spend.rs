//! [`spend`]: a route that costs something on one of the token's meters, checked against the
//! [`Grant`](api_tokens::Grant) the [`AuthLayer`](crate::AuthLayer) found.

use std::fmt;
use std::sync::Arc;

use api_tokens::limits::Remaining;
use api_tokens::{Denial, Grant};

use crate::layer::{RouteCheck, route_service};

/// A layer that spends `cost` on the meter `meter` of the request's token before the route
/// runs ([`Grant::spend`](api_tokens::Grant::spend)): when a limit of the token on that meter
/// refuses, the route does not run and the client gets 429 with `Retry-After` (and, for a
/// rate limit, `RateLimit-Policy` / `RateLimit`: see [`Refusal`](crate::Refusal)); when it is admitted, the
/// response carries the `RateLimit` fields of the meter's rate limits. A token without
/// limits on the meter passes freely. A request without a grant gets 401. Use it with
/// `route_layer` under an [`AuthLayer`](crate::AuthLayer):
///
/// ```
/// use api_tokens::Tokens;
/// use api_tokens_axum::{AuthLayer, spend};
/// use axum::{Router, routing::post};
///
/// let app: Router = Router::new()
///     .route("/render", post(|| async { "rendered" }).route_layer(spend("renders", 10)))
///     .layer(AuthLayer::new(Tokens::in_memory()));
/// ```
///
/// A cost known only inside the handler (an LLM's tokens) is spent there: take the grant
/// ([`Authenticated`](crate::Authenticated)), call
/// [`Grant::spend`](api_tokens::Grant::spend), and answer a refusal with
/// [`Refusal::from_denial`](crate::Refusal::from_denial).
pub fn spend(meter: &str, cost: u64) -> SpendLayer {
    SpendLayer {
        meter: meter.into(),
        cost,
    }
}

/// The layer [`spend`] makes.
#[derive(Clone)]
pub struct SpendLayer {
    meter: Arc<str>,
    cost: u64,
}

impl fmt::Debug for SpendLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpendLayer")
            .field("meter", &self.meter)
            .field("cost", &self.cost)
            .finish()
    }
}

impl RouteCheck for SpendLayer {
    fn check(&self, grant: &Grant) -> Result<Option<Box<[Remaining]>>, Denial> {
        let remaining = grant.spend(&self.meter, self.cost)?;
        Ok((!remaining.is_empty()).then(|| remaining.into_boxed_slice()))
    }
}

route_service! {
    /// The service [`SpendLayer`] wraps around the inner one.
    SpendService, SpendLayer
}
