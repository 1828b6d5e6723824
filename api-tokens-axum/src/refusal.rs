//! What a refused request gets: the status, `WWW-Authenticate` (RFC 6750) and a JSON body made
//! of the core's public denial. The detailed [`Denial`] goes to `tracing`, never to the client.

use std::net::IpAddr;

use api_tokens::limits::{LimitRefusal, Remaining};
use api_tokens::{Denial, Permission, PublicDenial};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::credentials::{Absent, CredentialProblem};

/// A refused request as the client sees it: a [`PublicDenial`] (so an unknown token reads like
/// a disabled one), and, only when the host opted in, the permission that was missing.
///
/// As a response:
///
/// | public denial | status | `WWW-Authenticate` |
/// | --- | --- | --- |
/// | no credentials at all | 401 | `Bearer` (no error code: RFC 6750 §3.1) |
/// | `invalid_token`, `token_expired` | 401 | `Bearer error="invalid_token", error_description="…"` |
/// | `missing_permission` | 403 | `Bearer error="insufficient_scope", error_description="…"` (and `scope="…"` when revealed) |
/// | `address_not_allowed` | 403 | — |
/// | `rate_limited` | 429 | — (`Retry-After`, `RateLimit-Policy` and `RateLimit` instead) |
/// | `usage_exceeded` | 429 | — (`Retry-After` when the credits are refilled) |
/// | `unavailable` (store failure, stale replica) | 503 | — |
///
/// The body is the public denial as the core serializes it, `{"code", "message"}` (and
/// `"retry_after"` for a limit), plus `"permission"` for a missing permission when revealed.
///
/// A refusal by a rate limit tells the token's holder that limit, as the IETF's RateLimit
/// header fields do ([draft-ietf-httpapi-ratelimit-headers-10], §3 `RateLimit-Policy` and §4
/// `RateLimit`, Structured Field lists): `RateLimit-Policy: "requests";q=100;w=60` (quota and
/// window in seconds) and `RateLimit: "requests";r=0;t=12` (remaining and seconds until
/// more is admitted), beside `Retry-After: 12` (RFC 9110 §10.2.3, whole seconds rounded up).
///
/// [draft-ietf-httpapi-ratelimit-headers-10]: https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/10/
///
/// ```
/// use api_tokens_axum::Refusal;
/// use axum::response::IntoResponse;
///
/// let response = Refusal::no_credentials().into_response();
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["www-authenticate"], "Bearer");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    public: PublicDenial,
    no_credentials: bool,
    missing: Option<Permission>,
    /// The refusing rate limit's `RateLimit-Policy` and `RateLimit` members.
    rate: Option<(String, String)>,
}

/// How refusals are written: what the host chose to tell clients.
#[derive(Clone, Debug, Default)]
pub(crate) struct RefusalStyle {
    pub(crate) reveal_missing_permission: bool,
}

impl Refusal {
    /// The request presented no credentials.
    pub fn no_credentials() -> Self {
        Self {
            public: PublicDenial::InvalidToken,
            no_credentials: true,
            missing: None,
            rate: None,
        }
    }

    /// The request presented credentials that are not a valid token.
    pub fn invalid_token() -> Self {
        Self {
            public: PublicDenial::InvalidToken,
            no_credentials: false,
            missing: None,
            rate: None,
        }
    }

    /// Authentication could not complete (503, as a store failure).
    pub(crate) fn unavailable() -> Self {
        Self {
            public: PublicDenial::Unavailable,
            no_credentials: false,
            missing: None,
            rate: None,
        }
    }

    /// The public form of `denial`; the missing permission only with `reveal_missing_permission`.
    pub fn from_denial(denial: &Denial, reveal_missing_permission: bool) -> Self {
        let missing = match denial {
            Denial::MissingPermission { permission, .. } if reveal_missing_permission => {
                Some(permission.clone())
            }
            _ => None,
        };
        let rate = match denial {
            Denial::Limited {
                refusal,
                retry_after,
                ..
            } => match &**refusal {
                LimitRefusal::RateLimited {
                    name,
                    limit,
                    window,
                    ..
                } => Some((
                    policy_member(name.as_str(), *limit, *window),
                    format!(
                        "\"{name}\";r=0;t={}",
                        retry_after.map_or(0, |d| ceil_secs(d.whole_milliseconds()))
                    ),
                )),
                _ => None,
            },
            _ => None,
        };
        Self {
            public: denial.public(),
            no_credentials: false,
            missing,
            rate,
        }
    }

    /// What the client is told.
    pub fn public(&self) -> PublicDenial {
        self.public
    }

    fn www_authenticate(&self) -> Option<String> {
        if self.no_credentials {
            return Some("Bearer".to_owned());
        }
        let error = match self.public {
            PublicDenial::InvalidToken | PublicDenial::Expired => "invalid_token",
            PublicDenial::Forbidden => "insufficient_scope",
            _ => return None,
        };
        let mut value = format!(
            "Bearer error=\"{error}\", error_description=\"{}\"",
            self.public
        );
        if let Some(p) = &self.missing {
            // Permissions are `[A-Za-z0-9_.*-]`: nothing to escape in a quoted string.
            value.push_str(&format!(", scope=\"{p}\""));
        }
        Some(value)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.public.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match &self.missing {
            None => serde_json::to_vec(&self.public),
            Some(p) => serde_json::to_vec(&serde_json::json!({
                "code": self.public.code(),
                "message": self.public.to_string(),
                "permission": p,
            })),
        }
        .unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.public.retry_after_secs() {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some((policy, state)) = &self.rate
            && let (Ok(policy), Ok(state)) =
                (HeaderValue::try_from(policy), HeaderValue::try_from(state))
        {
            headers.insert(RATELIMIT_POLICY, policy);
            headers.insert(RATELIMIT, state);
        }
        if let Some(value) = self
            .www_authenticate()
            .and_then(|v| HeaderValue::try_from(v).ok())
        {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-10 §3).
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10 §4).
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Milliseconds as whole seconds, rounded up (a client told 0 would retry at once).
fn ceil_secs(ms: i128) -> u64 {
    u64::try_from(ms.max(0).div_euclid(1000) + i128::from(ms.rem_euclid(1000) > 0))
        .unwrap_or(u64::MAX)
}

/// One policy's member of `RateLimit-Policy`: its name (a limit name needs no escaping in an
/// sf-string: `a-z0-9._-`), quota and window in seconds.
fn policy_member(name: &str, limit: u64, window: api_tokens::time::Duration) -> String {
    format!(
        "\"{name}\";q={limit};w={}",
        ceil_secs(window.whole_milliseconds())
    )
}

/// Adds `RateLimit-Policy` and `RateLimit` for the rate limits in `remaining` (what a grant or
/// a spend reports) to `headers`: one list member per rate limit, `r` what the window admits
/// now and `t` the seconds until everything it counts has left it. Credits have no window
/// and are not in these fields. Nothing is added when `remaining` holds no rate limit.
pub fn add_rate_limit_headers(headers: &mut HeaderMap, remaining: &[Remaining]) {
    let mut policy = Vec::new();
    let mut state = Vec::new();
    for r in remaining {
        if let Remaining::Rate {
            name,
            limit,
            window,
            remaining,
            resets_in,
        } = r
        {
            policy.push(policy_member(name.as_str(), *limit, *window));
            state.push(format!(
                "\"{name}\";r={remaining};t={}",
                ceil_secs(resets_in.whole_milliseconds())
            ));
        }
    }
    if policy.is_empty() {
        return;
    }
    if let (Ok(p), Ok(s)) = (
        HeaderValue::try_from(policy.join(", ")),
        HeaderValue::try_from(state.join(", ")),
    ) {
        headers.insert(RATELIMIT_POLICY, p);
        headers.insert(RATELIMIT, s);
    }
}

/// Logs a refused authentication: the one place every refusal of this crate is logged, as
/// one line, `token refused: <why>`, with the fields `code` (the denial's or credential
/// problem's code), `token` (its id when one was found, else `none`) and `client_ip` (the
/// address the layer established, else `unknown`); a store failure adds its `error` chain.
/// Never the secret, nor anything else the client sent. Levels: `info` for what the client
/// caused, `warn` for a stale replica, `error` for a store failure.
pub(crate) fn log_denial(denial: &Denial, client_ip: Option<IpAddr>) {
    let code = denial.code();
    let token = TokenField(denial.token().map(|t| t.get()));
    let client_ip = IpField(client_ip);
    match denial {
        Denial::Store(source) => tracing::error!(
            code,
            %token,
            %client_ip,
            error = %chain(source.as_ref()),
            "token refused: {denial}"
        ),
        Denial::Stale { .. } => {
            tracing::warn!(code, %token, %client_ip, "token refused: {denial}")
        }
        _ => tracing::info!(code, %token, %client_ip, "token refused: {denial}"),
    }
}

/// A token id for the log, or `none`.
struct TokenField(Option<u64>);

impl std::fmt::Display for TokenField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => f.write_str("none"),
        }
    }
}

/// A client address for the log, or `unknown`.
struct IpField(Option<IpAddr>);

impl std::fmt::Display for IpField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

/// An error and its sources, `: `-separated.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// [`log_denial`] for credentials refused before authentication (malformed, repeated, …):
/// the same one line, with the problem's code.
pub(crate) fn log_problem(problem: CredentialProblem, client_ip: Option<IpAddr>) {
    tracing::info!(
        code = problem.code(),
        token = %TokenField(None),
        client_ip = %IpField(client_ip),
        "token refused: {problem}"
    );
}

/// A request without credentials, where credentials are required: `debug` (a browser or a
/// probe without a token is routine), the same fields.
pub(crate) fn log_absent(absent: Absent, client_ip: Option<IpAddr>) {
    let code = match absent {
        Absent::Nothing => "no_credentials",
        Absent::OtherScheme => "unsupported_scheme",
    };
    tracing::debug!(
        code,
        token = %TokenField(None),
        client_ip = %IpField(client_ip),
        "token refused: request without bearer credentials"
    );
}
