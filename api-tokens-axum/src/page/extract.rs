//! What every page handler needs, as axum extractors that answer with the page's own HTML:
//! the request's context ([`Ctx`]: the caller, the mount point, the session cookie) and what
//! its path names ([`Page`], `Page<TokenId>` on `/{id}…`), and for a `POST` the form whose
//! CSRF token is the session's ([`Posted`]). A handler then reads as its operation.
//!
//! Their checks run in a fixed order: the caller; for a `POST`, the form and its CSRF token;
//! then the token id of the path (an id that names no token is the caller's "Not found").

use std::future::Future;
use std::sync::Arc;

use api_tokens::{TokenId, TokenStore};
use axum::extract::{FromRequest, FromRequestParts, NestedPath, Path, Request};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, COOKIE};
use axum::http::request::Parts;
use axum::response::Response;

use super::form::Form;
use super::texts::{Texts, fill};
use super::{COOKIE_NAME, FOLD_COOKIE, Shared, render, respond};
use crate::manage::{ActorMapping, Caller};

/// The router's state.
type State<S, M> = Arc<Shared<S, M>>;

/// One request's caller, mount point and session cookie. A request without a caller (the
/// host's [`ActorMapping`] refuses it) is answered with "Not signed in" and the mapping's
/// status.
pub(crate) struct Ctx {
    /// Where the page is mounted (`/tokens`), without a trailing `/`; empty at the root.
    pub(crate) base: String,
    /// The actor, and the calling token's bounds when an API token authenticated the request:
    /// what every operation is asked with, so a token-derived caller cannot mint or widen
    /// tokens beyond itself through the page either.
    pub(crate) caller: Caller,
    /// The value of the page's session cookie, if the request sent one.
    pub(crate) cookie: Option<String>,
    /// Whether the browser folded the filter away (the page's script keeps that in a cookie).
    pub(crate) filter_folded: bool,
}

impl Ctx {
    async fn of<S: TokenStore + 'static, M: ActorMapping<S>>(
        shared: &Shared<S, M>,
        parts: &Parts,
    ) -> Result<Self, Response> {
        let caller = shared.service.caller(parts).await.map_err(|e| {
            let texts = shared.texts();
            let text = fill(&texts.not_signed_in_text, &[("message", &e.to_string())]);
            respond(
                e.status(),
                render::bare_message(texts, &texts.not_signed_in, &text),
                None,
            )
        })?;
        let base = parts
            .extensions
            .get::<NestedPath>()
            .map(|p| p.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(Self {
            base,
            caller,
            cookie: cookie_of(parts, COOKIE_NAME),
            filter_folded: cookie_of(parts, FOLD_COOKIE).as_deref() == Some("folded"),
        })
    }
}

fn cookie_of(parts: &Parts, cookie: &str) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value.to_owned())
}

/// What a page's path names: nothing (`()`), or the token of `/{id}…` (`TokenId`).
pub(crate) trait Target: Sized + Send {
    /// Read from the request's path, or the answer for a path that names no token the caller
    /// may see.
    fn of<S: TokenStore + 'static, M: ActorMapping<S>>(
        parts: &mut Parts,
        shared: &Shared<S, M>,
        ctx: &Ctx,
    ) -> impl Future<Output = Result<Self, Response>> + Send;
}

impl Target for () {
    async fn of<S: TokenStore + 'static, M: ActorMapping<S>>(
        _: &mut Parts,
        _: &Shared<S, M>,
        _: &Ctx,
    ) -> Result<Self, Response> {
        Ok(())
    }
}

impl Target for TokenId {
    async fn of<S: TokenStore + 'static, M: ActorMapping<S>>(
        parts: &mut Parts,
        shared: &Shared<S, M>,
        ctx: &Ctx,
    ) -> Result<Self, Response> {
        match Path::<String>::from_request_parts(parts, &()).await {
            Ok(Path(text)) => text.parse().map_err(|_| shared.not_found(ctx)),
            Err(_) => Err(shared.not_found(ctx)),
        }
    }
}

/// A page request: its [`Ctx`] and what its path names (`Page<TokenId>` on `/{id}…`).
pub(crate) struct Page<T = ()>(pub(crate) Ctx, pub(crate) T);

impl<S, M, T> FromRequestParts<State<S, M>> for Page<T>
where
    S: TokenStore + 'static,
    M: ActorMapping<S>,
    T: Target,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, shared: &State<S, M>) -> Result<Self, Response> {
        let ctx = Ctx::of(shared, parts).await?;
        let target = T::of(parts, shared, &ctx).await?;
        Ok(Self(ctx, target))
    }
}

/// A `POST` of one of the page's forms: its [`Ctx`], the form (at most the page's
/// `max_body_bytes`, `application/x-www-form-urlencoded` only), and what its path names. A
/// form without the session's CSRF token is refused (403) and logged, before anything in it
/// is read.
pub(crate) struct Posted<T = ()>(pub(crate) Ctx, pub(crate) Form, pub(crate) T);

impl<S, M, T> FromRequest<State<S, M>> for Posted<T>
where
    S: TokenStore + 'static,
    M: ActorMapping<S>,
    T: Target,
{
    type Rejection = Response;

    async fn from_request(req: Request, shared: &State<S, M>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let ctx = Ctx::of(shared, &parts).await?;
        let texts = shared.texts();
        let form = read_form(&parts, body, shared.settings.max_body_bytes, texts)
            .await
            .map_err(|(status, text)| shared.message(&ctx, status, &texts.refused, text))?;
        if !shared.csrf_ok(&ctx, form.get("csrf")) {
            tracing::warn!(
                user = %ctx.caller.actor.user,
                path = parts.uri.path(),
                "API tokens page: a form without the session's CSRF token was refused"
            );
            let text = fill(
                &texts.csrf_text,
                &[("user", ctx.caller.actor.user.as_str())],
            );
            return Err(shared.message(&ctx, StatusCode::FORBIDDEN, &texts.csrf_title, &text));
        }
        let target = T::of(&mut parts, shared, &ctx).await?;
        Ok(Self(ctx, form, target))
    }
}

/// The body of a form `POST`.
async fn read_form<'t>(
    parts: &Parts,
    body: axum::body::Body,
    limit: usize,
    texts: &'t Texts,
) -> Result<Form, (StatusCode, &'t str)> {
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, &texts.not_a_form));
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, &*texts.form_too_large))?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| (StatusCode::BAD_REQUEST, &*texts.not_utf8))?;
    Form::parse(text).map_err(|()| (StatusCode::BAD_REQUEST, &*texts.not_utf8))
}
