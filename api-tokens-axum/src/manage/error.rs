//! [`ApiError`]: every failure of the self-service API, with its status and JSON body.

use std::fmt;

use api_tokens::{Error, Field, Problem, ValidationError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Refusal;

/// Why a self-service call failed. As a response: its [`status`](ApiError::status) and the
/// JSON body `{"code", "message", "field"?, "index"?}`, with `Cache-Control: no-store`.
///
/// * The core's errors keep their [`code`](api_tokens::Error::code) and message. Their status
///   is the core's [`http_status`](api_tokens::Error::http_status) hint, except that a value
///   refused by validation is `422 Unprocessable Content` (the request was well-formed JSON;
///   a taken name stays `409`). `field` is the request member at fault (`expires_at` for the
///   core's `expiry`, `ids` for a token id), `index` the item of a batch of more than one.
/// * A member of the request that is missing, of the wrong JSON type, or unknown: 422 with a
///   core code where one fits (`required`, `invalid_syntax`, `too_many_values`) and
///   `unknown_field` otherwise.
/// * A body that is not JSON (`invalid_json`, 400), not `application/json`
///   (`unsupported_media_type`, 415) or too large (`body_too_large`, 413).
/// * A caller without credentials: the [`Refusal`] (401).
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// The core refused the call.
    Tokens(Error),
    /// A member of the request is not acceptable.
    Invalid {
        /// The request member (or query parameter) at fault.
        field: String,
        /// The item of a batch of more than one.
        index: Option<usize>,
        /// A stable snake_case code.
        code: &'static str,
        /// What is wrong, in plain words.
        message: String,
    },
    /// The request as a whole cannot be read.
    BadRequest {
        /// The HTTP status.
        status: StatusCode,
        /// A stable snake_case code.
        code: &'static str,
        /// What is wrong, in plain words.
        message: String,
    },
    /// No caller could be established.
    Refused(Refusal),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self::Tokens(e)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl ApiError {
    /// A refused value of member `field`, item `index`.
    pub fn invalid(field: &str, index: Option<usize>, e: &ValidationError) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            index,
            code: e.code(),
            message: format!("{}{e}", item(index)),
        }
    }

    /// Member `field` is not of the JSON type it must be.
    pub fn wrong_type(field: &str, index: Option<usize>, expected: &str) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            index,
            code: "invalid_syntax",
            message: format!("{}{field} must be {expected}", item(index)),
        }
    }

    /// Member `field` is required and missing.
    pub fn required(field: &str, index: Option<usize>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            index,
            code: Problem::Required.code(),
            message: format!("{}{field} is required", item(index)),
        }
    }

    /// Member `field` is not one this request takes.
    pub fn unknown(field: &str, index: Option<usize>, known: &[&str]) -> Self {
        let shown: String = field.chars().take(64).collect();
        Self::Invalid {
            field: shown.clone(),
            index,
            code: "unknown_field",
            message: format!(
                "{}\"{shown}\" is not a member of this request (it takes {})",
                item(index),
                known.join(", ")
            ),
        }
    }

    pub(crate) fn bad_request(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::BadRequest {
            status,
            code,
            message: message.into(),
        }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Tokens(Error::Invalid { source, .. })
                if !matches!(source.problem, Problem::NameTaken { .. }) =>
            {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Tokens(e) => {
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest { status, .. } => *status,
            Self::Refused(r) => {
                StatusCode::from_u16(r.public().http_status()).unwrap_or(StatusCode::UNAUTHORIZED)
            }
        }
    }

    /// The stable code of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Tokens(e) => e.code(),
            Self::Invalid { code, .. } | Self::BadRequest { code, .. } => code,
            Self::Refused(r) => r.public().code(),
        }
    }

    /// The request member at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Tokens(e) => e.field().map(member),
            Self::Invalid { field, .. } => Some(field),
            Self::BadRequest { .. } | Self::Refused(_) => None,
        }
    }

    /// The item of a batch of more than one, if the error is about one.
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::Tokens(e) => e.index(),
            Self::Invalid { index, .. } => *index,
            Self::BadRequest { .. } | Self::Refused(_) => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tokens(e) => fmt::Display::fmt(e, f),
            Self::Invalid { message, .. } | Self::BadRequest { message, .. } => {
                f.write_str(message)
            }
            Self::Refused(r) => fmt::Display::fmt(&r.public(), f),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Tokens(e) => Some(e),
            _ => None,
        }
    }
}

/// The request member of this API that a core [`Field`] is about.
pub(crate) fn member(field: Field) -> &'static str {
    match field {
        Field::Expiry => "expires_at",
        Field::TokenId => "ids",
        Field::UserId => "owner",
        Field::Grace => "grace_seconds",
        other => other.as_str(),
    }
}

/// `item 2: ` (counting from 1, as the core writes it) for an error about one item of a batch.
pub(crate) fn item(index: Option<usize>) -> String {
    index
        .map(|i| format!("item {}: ", i.saturating_add(1)))
        .unwrap_or_default()
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Refused(refusal) = self {
            return super::no_store(refusal.into_response());
        }
        let status = self.status();
        if status.is_server_error() {
            // The message says what failed; the source chain is for the operator only.
            tracing::error!(
                code = self.code(),
                "self-service call failed: {}",
                crate::refusal::chain(&self)
            );
        } else {
            tracing::debug!(code = self.code(), "self-service call refused: {self}");
        }
        let body = Body {
            code: self.code(),
            field: self.field(),
            index: self.index(),
            message: self.to_string(),
        };
        super::json(status, &body)
    }
}
