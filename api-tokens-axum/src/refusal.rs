//! What a refused request gets: the status, `WWW-Authenticate` (RFC 6750) and a JSON body made
//! of the core's public denial. The detailed [`Denial`] goes to `tracing`, never to the client.

use std::net::IpAddr;

use api_tokens::{Denial, Permission, PublicDenial};
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
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
/// | `unavailable` (store failure, stale replica) | 503 | — |
///
/// The body is the public denial as the core serializes it, `{"code", "message"}`, plus
/// `"permission"` for a missing permission when revealed.
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
        }
    }

    /// The request presented credentials that are not a valid token.
    pub fn invalid_token() -> Self {
        Self {
            public: PublicDenial::InvalidToken,
            no_credentials: false,
            missing: None,
        }
    }

    /// Authentication could not complete (503, as a store failure).
    pub(crate) fn unavailable() -> Self {
        Self {
            public: PublicDenial::Unavailable,
            no_credentials: false,
            missing: None,
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
        Self {
            public: denial.public(),
            no_credentials: false,
            missing,
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
        if let Some(value) = self
            .www_authenticate()
            .and_then(|v| HeaderValue::try_from(v).ok())
        {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        response
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
