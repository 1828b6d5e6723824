//! What every self-service handler needs, as axum extractors that answer with the router's
//! [`ApiError`]: the caller ([`Caller`], or [`Reader`] for reads), the token id in the path
//! ([`PathId`]), and a JSON body with its content type and size checked ([`JsonBody`],
//! [`JsonOnly`]). A handler then reads as its operation.
//!
//! They are extracted in the order a handler names them, so each handler names them in the
//! order its checks run: content type, caller, path, body.

use std::sync::Arc;

use api_tokens::{Actor, TokenId, TokenStore};
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Path, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde_json::Value;

use super::{ActorMapping, ApiError, Caller, SelfService};

/// The router's state: the service its handlers call.
type Service<S, M> = Arc<SelfService<S, M>>;

/// The caller of a request that changes tokens, by the router's [`ActorMapping`], with the
/// calling token's bounds when a token authenticated the request
/// ([`SelfService::caller`]). Refused with the mapping's [`ApiError`] (401 without a caller).
impl<S, M> FromRequestParts<Service<S, M>> for Caller
where
    S: TokenStore + 'static,
    M: ActorMapping<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Service<S, M>,
    ) -> Result<Self, ApiError> {
        service.caller(parts).await
    }
}

/// The actor of a request that only reads (list, get), by the router's [`ActorMapping`]
/// ([`SelfService::actor`]). The calling token's bounds are not read: reading creates and
/// widens nothing.
pub(crate) struct Reader(pub(crate) Actor);

impl<S, M> FromRequestParts<Service<S, M>> for Reader
where
    S: TokenStore + 'static,
    M: ActorMapping<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Service<S, M>,
    ) -> Result<Self, ApiError> {
        service.actor(parts).await.map(Self)
    }
}

/// The token id of the path (`/{id}`). One that does not parse is refused with 422 and the
/// core's code, without repeating it: it may be a pasted secret.
pub(crate) struct PathId(pub(crate) TokenId);

impl<St: Send + Sync> FromRequestParts<St> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::bad_request(
                    rejection.status(),
                    "invalid_path",
                    "the path does not hold a token id",
                )
            })?;
        text.parse()
            .map(Self)
            .map_err(|e| ApiError::invalid_id("id", None, &e))
    }
}

/// Refuses a request whose `Content-Type` is present and not `application/json` (415), body
/// or not: a cross-site form post is sent so, and must not reach a state-changing route (see
/// the [module docs](super)). For routes without a body; [`JsonBody`] checks it too.
pub(crate) struct JsonOnly;

impl<St: Send + Sync> FromRequestParts<St> for JsonOnly {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        refuse_other_content_types(parts).map(|()| Self)
    }
}

/// The request's JSON body: at most [`Limits::max_body_bytes`](super::Limits::max_body_bytes)
/// (413), sent as `application/json` (415), valid JSON (400). `Option<JsonBody>` takes an
/// empty body as `None`.
pub(crate) struct JsonBody(pub(crate) Value);

impl<S, M> FromRequest<Service<S, M>> for JsonBody
where
    S: TokenStore + 'static,
    M: ActorMapping<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, service: &Service<S, M>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let value = read_json(&parts, body, service.limits.max_body_bytes, true).await?;
        Ok(Self(value.unwrap_or_default()))
    }
}

impl<S, M> OptionalFromRequest<Service<S, M>> for JsonBody
where
    S: TokenStore + 'static,
    M: ActorMapping<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, service: &Service<S, M>) -> Result<Option<Self>, ApiError> {
        let (parts, body) = req.into_parts();
        let value = read_json(&parts, body, service.limits.max_body_bytes, false).await?;
        Ok(value.map(Self))
    }
}

/// The body as JSON; `None` when it is empty, its content type (if any) is JSON, and it is
/// not `required`.
async fn read_json(
    parts: &Parts,
    body: Body,
    limit: usize,
    required: bool,
) -> Result<Option<Value>, ApiError> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::bad_request(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    })?;
    refuse_other_content_types(parts)?;
    if bytes.is_empty() && !required {
        return Ok(None);
    }
    if parts.headers.get(CONTENT_TYPE).is_none() {
        return Err(unsupported_media_type());
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        ApiError::bad_request(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
        )
    })
}

/// 415 when the request has a `Content-Type` other than `application/json`.
fn refuse_other_content_types(parts: &Parts) -> Result<(), ApiError> {
    let Some(value) = parts.headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let is_json = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(unsupported_media_type())
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::bad_request(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "the request body must be JSON, sent as Content-Type: application/json",
    )
}
