//! The list endpoint's query string, read into a [`Query`] parameter by parameter.

use api_tokens::store::{SortField, SortOrder, TimeRange};
use api_tokens::time::{Duration, OffsetDateTime};
use api_tokens::{Expiry, Query, TokenId, TokenName, ValidationError};

use super::error::ApiError;
use super::request::{parse_status, too_many, user};
use crate::credentials::decode;

const PARAMETERS: &[&str] = &[
    "ids",
    "owners",
    "creators",
    "names",
    "status",
    "name",
    "description",
    "valid_at",
    "expired_at",
    "expiring_within",
    "created_from",
    "created_until",
    "last_used_from",
    "last_used_until",
    "sort",
    "limit",
];

/// The longest `expiring_within`, in seconds (a hundred years).
const MAX_WITHIN_SECONDS: i64 = 100 * 366 * 86_400;

/// Reads a list request's query string into a [`Query`]. Every parameter is optional:
///
/// | parameter | meaning ([`Query`]) |
/// | --- | --- |
/// | `ids`, `owners`, `creators`, `names` | only these (comma-separated, or the parameter repeated) |
/// | `status` | `enabled` or `disabled` |
/// | `name`, `description` | contains this text (case-insensitive) |
/// | `valid_at`, `expired_at` | valid / expired at this instant (RFC 3339 or Unix seconds) |
/// | `expiring_within` | not expired, and expiring within this many seconds |
/// | `created_from`, `created_until`, `last_used_from`, `last_used_until` | a range `[from, until)` |
/// | `sort` | `id`, `name`, `created_at`, `expires_at`, `last_used_at`, `status`; `-` first for descending; several comma-separated |
/// | `limit` | at most this many, up to `max_limit`; `max_limit` when not given |
///
/// The core bounds the list filters ([`Policy::max_filter_values`](api_tokens::Policy::max_filter_values)).
///
/// # Errors
/// A parameter that is unknown, given twice (those that take one value), or whose value does
/// not parse, naming it.
pub fn query(text: &str, max_limit: usize) -> Result<Query, ApiError> {
    query_ignoring(text, max_limit, None)
}

/// [`query`], skipping every parameter named `ignored` (the query parameter the layer reads
/// credentials from, see [`SelfService::with_credentials_query_parameter`](super::SelfService::with_credentials_query_parameter)).
pub(crate) fn query_ignoring(
    text: &str,
    max_limit: usize,
    ignored: Option<&str>,
) -> Result<Query, ApiError> {
    let mut q = Query::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut limit = None;
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(raw_key).unwrap_or_default();
        if ignored.is_some_and(|name| name == key) {
            continue;
        }
        let Some(&key) = PARAMETERS.iter().find(|p| **p == key) else {
            return Err(ApiError::unknown(&key, None, PARAMETERS));
        };
        let value = decode(raw_value)
            .map_err(|_| ApiError::wrong_type(key, None, "UTF-8 text once percent-decoded"))?;
        let value = value.as_ref();
        let list = matches!(key, "ids" | "owners" | "creators" | "names");
        if !list {
            if seen.contains(&key) {
                return Err(ApiError::Invalid {
                    field: key.to_owned(),
                    index: None,
                    code: "duplicate_parameter",
                    message: format!("{key} is given more than once"),
                });
            }
            seen.push(key);
        }
        match key {
            "ids" => {
                extend(&mut q.ids, key, value, |s| s.parse::<TokenId>()).map_err(|e| match e {
                    // Never the value: it may be a pasted secret.
                    ApiError::Invalid { code, .. } => ApiError::Invalid {
                        field: key.to_owned(),
                        index: None,
                        code,
                        message: format!("{key}: a token id is a non-negative integer"),
                    },
                    other => other,
                })?
            }
            "owners" => extend_users(&mut q.owners, key, value)?,
            "creators" => extend_users(&mut q.creators, key, value)?,
            "names" => extend(&mut q.names, key, value, TokenName::new)?,
            "status" => {
                q.status = Some(
                    parse_status(value)
                        .ok_or_else(|| ApiError::wrong_type(key, None, "enabled or disabled"))?,
                );
            }
            "name" => q.name_contains = Some(value.to_owned()),
            "description" => q.description_contains = Some(value.to_owned()),
            "valid_at" => q.valid_at = Some(instant(key, value)?),
            "expired_at" => q.expired_at = Some(instant(key, value)?),
            "expiring_within" => q.expiring_within = Some(within(key, value)?),
            "created_from" => range(&mut q.created).from = Some(instant(key, value)?),
            "created_until" => range(&mut q.created).until = Some(instant(key, value)?),
            "last_used_from" => range(&mut q.last_used).from = Some(instant(key, value)?),
            "last_used_until" => range(&mut q.last_used).until = Some(instant(key, value)?),
            "sort" => q = sort(q, value)?,
            _ => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| ApiError::wrong_type(key, None, "a whole number"))?;
                if n > max_limit {
                    return Err(ApiError::Invalid {
                        field: key.to_owned(),
                        index: None,
                        code: "too_many",
                        message: format!(
                            "limit {n} is more than {max_limit}, the most one page holds"
                        ),
                    });
                }
                limit = Some(n);
            }
        }
    }
    Ok(q.limit(limit.unwrap_or(max_limit)))
}

fn extend<T>(
    list: &mut Option<Vec<T>>,
    key: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, ValidationError>,
) -> Result<(), ApiError> {
    let out = list.get_or_insert_with(Vec::new);
    for item in value.split(',') {
        let item = item.trim();
        out.push(parse(item).map_err(|e| ApiError::invalid(key, None, &e))?);
        // The core refuses lists over its cap; this only stops a huge query string early.
        if out.len() > 100_000 {
            return Err(too_many(key, out.len(), 100_000));
        }
    }
    Ok(())
}

fn extend_users(
    list: &mut Option<Vec<api_tokens::UserId>>,
    key: &str,
    value: &str,
) -> Result<(), ApiError> {
    let out = list.get_or_insert_with(Vec::new);
    for item in value.split(',') {
        out.push(user(&serde_json::Value::from(item.trim()), key, None)?);
        if out.len() > 100_000 {
            return Err(too_many(key, out.len(), 100_000));
        }
    }
    Ok(())
}

fn range(r: &mut Option<TimeRange>) -> &mut TimeRange {
    r.get_or_insert_with(TimeRange::default)
}

fn instant(key: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    let expected = "an RFC 3339 time or Unix seconds";
    match value.parse::<Expiry>() {
        Ok(e) => e
            .instant()
            .ok_or_else(|| ApiError::wrong_type(key, None, expected)),
        Err(_) => Err(ApiError::wrong_type(key, None, expected)),
    }
}

fn within(key: &str, value: &str) -> Result<Duration, ApiError> {
    match value.parse::<i64>() {
        Ok(s) if (0..=MAX_WITHIN_SECONDS).contains(&s) => Ok(Duration::seconds(s)),
        _ => Err(ApiError::wrong_type(
            key,
            None,
            "a whole number of seconds (up to 100 years)",
        )),
    }
}

fn sort(mut q: Query, value: &str) -> Result<Query, ApiError> {
    for key in value.split(',') {
        let key = key.trim();
        let (order, name) = match key.strip_prefix('-') {
            Some(name) => (SortOrder::Descending, name),
            None => (SortOrder::Ascending, key),
        };
        let field = match name {
            "id" => SortField::Id,
            "name" => SortField::Name,
            "created_at" => SortField::Created,
            "expires_at" => SortField::Expiry,
            "last_used_at" => SortField::LastUsed,
            "status" => SortField::Status,
            _ => {
                return Err(ApiError::wrong_type(
                    "sort",
                    None,
                    "id, name, created_at, expires_at, last_used_at or status, each optionally after -",
                ));
            }
        };
        q = q.then_sort(field, order);
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_tokens::{Status, UserId};

    #[test]
    fn parameters_become_query_filters() {
        let q = query(
            "ids=1,2&ids=3&owners=alice&status=disabled&name=de%20ploy&sort=-expires_at,name&limit=5\
             &created_from=2026-01-01T00:00:00Z&expiring_within=3600",
            100,
        )
        .unwrap();
        assert_eq!(q.ids.unwrap(), [1, 2, 3].map(TokenId::new));
        assert_eq!(q.owners.unwrap(), [UserId::new("alice").unwrap()]);
        assert_eq!(q.status, Some(Status::Disabled));
        assert_eq!(q.name_contains.as_deref(), Some("de ploy"));
        assert_eq!(q.sort, Some((SortField::Expiry, SortOrder::Descending)));
        assert_eq!(q.then_sort, [(SortField::Name, SortOrder::Ascending)]);
        assert_eq!(q.limit, Some(5));
        assert!(q.created.unwrap().from.is_some());
        assert_eq!(q.expiring_within, Some(Duration::hours(1)));
        assert_eq!(
            query("", 100).unwrap().limit,
            Some(100),
            "a page is bounded by default"
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        for (text, code, field) in [
            ("statuss=enabled", "unknown_field", "statuss"),
            ("status=on", "invalid_syntax", "status"),
            (
                "status=enabled&status=disabled",
                "duplicate_parameter",
                "status",
            ),
            ("ids=1,x", "invalid_syntax", "ids"),
            ("owners=a,,b", "empty", "owners"),
            ("valid_at=never", "invalid_syntax", "valid_at"),
            ("limit=101", "too_many", "limit"),
            ("limit=-1", "invalid_syntax", "limit"),
            ("sort=size", "invalid_syntax", "sort"),
            ("expiring_within=-5", "invalid_syntax", "expiring_within"),
            ("name=%ff", "invalid_syntax", "name"),
        ] {
            let e = query(text, 100).unwrap_err();
            assert_eq!((e.code(), e.field()), (code, Some(field)), "{text}: {e}");
        }
    }
}
