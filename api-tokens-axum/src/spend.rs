//! [`spend`]: a route that costs something on one of the token's meters, checked against the
//! [`Grant`](api_tokens::Grant) the [`AuthLayer`](crate::AuthLayer) found.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Request;
use axum::response::Response;
use tower_layer::Layer;
use tower_service::Service;

use crate::layer::{GrantedTo, ResponseFuture, grant_of};
use crate::refusal::{self, Refusal};

/// A layer that spends `cost` on the meter `meter` of the request's token before the route
/// runs ([`Grant::spend`](api_tokens::Grant::spend)): when a limit of the token on that meter
/// refuses, the route does not run and the client gets 429 with `Retry-After` (and, for a
/// rate limit, `RateLimit-Policy` / `RateLimit`: see [`Refusal`]); when it is admitted, the
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
/// [`Refusal::from_denial`].
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

impl<I> Layer<I> for SpendLayer {
    type Service = SpendService<I>;

    fn layer(&self, inner: I) -> Self::Service {
        SpendService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SpendLayer`] wraps around the inner one.
#[derive(Clone)]
pub struct SpendService<I> {
    inner: I,
    layer: SpendLayer,
}

impl<I: fmt::Debug> fmt::Debug for SpendService<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpendService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<I, B> Service<Request<B>> for SpendService<I>
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
        let spent = grant_of(req.extensions()).and_then(|grant| {
            grant
                .spend(&self.layer.meter, self.layer.cost)
                .map_err(|denial| {
                    let ip = req.extensions().get::<GrantedTo>().and_then(|g| g.0);
                    refusal::log_denial(&denial, ip);
                    Refusal::from_denial(&denial, false)
                })
        });
        match spent {
            Ok(remaining) => {
                let limits = (!remaining.is_empty()).then(|| remaining.into_boxed_slice());
                ResponseFuture::inner_limited(self.inner.call(req), limits)
            }
            Err(refusal) => ResponseFuture::refused(refusal),
        }
    }
}
