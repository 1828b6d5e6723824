//! Request bodies read into the core's types, member by member, so that every refusal names the
//! member and the batch item (`serde`'s derive would give one string for the whole body).

use api_tokens::limits::Limits;
use api_tokens::time;
use api_tokens::{
    Expiry, Field, IpAllowlist, NewToken, PermissionSet, Problem, Status, TokenId, TokenName,
    TokenUpdate, UserId, ValidationError,
};
use serde_json::{Map, Value};

use super::error::ApiError;

const NEW_TOKEN: &[&str] = &[
    "name",
    "description",
    "owner",
    "status",
    "expires_at",
    "permissions",
    "allowlist",
    "limits",
];
const UPDATE: &[&str] = &[
    "name",
    "description",
    "status",
    "expires_at",
    "permissions",
    "allowlist",
    "limits",
];
const IDS: &[&str] = &["ids"];
const REGENERATE: &[&str] = &["ids", "grace_seconds"];
const REGENERATE_ONE: &[&str] = &["grace_seconds"];

/// The longest grace period a request can name, in seconds (the policy's own cap, 7 days by
/// default, is checked by the core; this only keeps the number in range).
const MAX_GRACE_SECONDS: i64 = 10 * 365 * 86_400;

/// One object of a create request: `name` (required), `description`, `owner`, `status`
/// (`"enabled"`/`"disabled"`), `expires_at` (RFC 3339, Unix seconds, `"never"` or `null`),
/// `permissions` and `allowlist` (an array, or one comma-separated string), `limits` (their
/// text form, or the object a token's view shows).
///
/// # Errors
/// The first member that is missing, unknown, of the wrong type or refused by the core's
/// parsers, naming it and `index`.
pub fn new_token(value: &Value, index: Option<usize>) -> Result<NewToken, ApiError> {
    let object = object(value, "token", index)?;
    check_members(object, NEW_TOKEN, index)?;
    let name = match object.get("name") {
        Some(v) => name(v, index)?,
        None => return Err(ApiError::required("name", index)),
    };
    let mut new = NewToken::new(name);
    if let Some(v) = object.get("description") {
        new = new.description(string(v, "description", index)?);
    }
    if let Some(v) = object.get("owner") {
        new = new.owner(user(v, "owner", index)?);
    }
    if let Some(v) = object.get("status") {
        new = new.status(status(v, index)?);
    }
    if let Some(v) = object.get("expires_at") {
        new = new.expiry(expiry(v, index)?);
    }
    if let Some(v) = object.get("permissions") {
        new = new.permissions(permissions(v, index)?);
    }
    if let Some(v) = object.get("allowlist") {
        new = new.allowlist(allowlist(v, index)?);
    }
    if let Some(v) = object.get("limits") {
        new = new.limits(limits(v, index)?);
    }
    Ok(new)
}

/// A change of token `id`: any of `name`, `description`, `status`, `expires_at` (`null` or
/// `"never"` clears it), `permissions`, `allowlist`, `limits` (`null` clears them). Members not given do not change; the owner
/// never does.
///
/// # Errors
/// As [`new_token`].
pub fn update(id: TokenId, value: &Value) -> Result<TokenUpdate, ApiError> {
    let object = object(value, "request", None)?;
    check_members(object, UPDATE, None)?;
    let mut u = TokenUpdate::new(id);
    if let Some(v) = object.get("name") {
        u = u.name(name(v, None)?);
    }
    if let Some(v) = object.get("description") {
        u = u.description(string(v, "description", None)?);
    }
    if let Some(v) = object.get("status") {
        u = u.status(status(v, None)?);
    }
    if let Some(v) = object.get("expires_at") {
        u = u.expiry(expiry(v, None)?);
    }
    if let Some(v) = object.get("permissions") {
        u = u.permissions(permissions(v, None)?);
    }
    if let Some(v) = object.get("allowlist") {
        u = u.allowlist(allowlist(v, None)?);
    }
    if let Some(v) = object.get("limits") {
        u = u.limits(limits(v, None)?);
    }
    Ok(u)
}

/// `{"ids": [...]}` (numbers, or their decimal text), at most `max` of them.
///
/// # Errors
/// A missing or unknown member, more than `max` ids, or an id that is not a non-negative
/// integer (naming its index).
pub fn ids(value: &Value, max: usize) -> Result<Vec<TokenId>, ApiError> {
    let object = object(value, "request", None)?;
    check_members(object, IDS, None)?;
    ids_member(object, max)
}

/// `{"ids": [...], "grace_seconds": n}` for a mass regenerate; the grace is optional.
///
/// # Errors
/// As [`ids`], and a grace that is not a non-negative whole number of seconds.
pub fn regenerate(value: &Value, max: usize) -> Result<(Vec<TokenId>, time::Duration), ApiError> {
    let object = object(value, "request", None)?;
    check_members(object, REGENERATE, None)?;
    Ok((ids_member(object, max)?, grace(object)?))
}

/// The optional `{"grace_seconds": n}` of a single regenerate (`Value::Null` for no body).
///
/// # Errors
/// A member other than `grace_seconds`, or a grace that is not a whole number of seconds.
pub fn regenerate_one(value: &Value) -> Result<time::Duration, ApiError> {
    if value.is_null() {
        return Ok(time::Duration::ZERO);
    }
    let object = object(value, "request", None)?;
    check_members(object, REGENERATE_ONE, None)?;
    grace(object)
}

fn ids_member(object: &Map<String, Value>, max: usize) -> Result<Vec<TokenId>, ApiError> {
    let Some(list) = object.get("ids") else {
        return Err(ApiError::required("ids", None));
    };
    let Some(list) = list.as_array() else {
        return Err(ApiError::wrong_type("ids", None, "an array of token ids"));
    };
    if list.len() > max {
        return Err(too_many("ids", list.len(), max));
    }
    let len = list.len();
    list.iter()
        .enumerate()
        .map(|(i, v)| token_id(v, position(i, len)))
        .collect()
}

fn grace(object: &Map<String, Value>) -> Result<time::Duration, ApiError> {
    let Some(v) = object.get("grace_seconds") else {
        return Ok(time::Duration::ZERO);
    };
    match v.as_i64() {
        Some(s) if s < 0 => Err(ApiError::invalid(
            "grace_seconds",
            None,
            &ValidationError::new(Field::Grace, s, Problem::Negative),
        )),
        Some(s) if s <= MAX_GRACE_SECONDS => Ok(time::Duration::seconds(s)),
        _ => Err(ApiError::wrong_type(
            "grace_seconds",
            None,
            "a whole number of seconds",
        )),
    }
}

/// Position of item `i` in errors: only in batches of more than one item, as the core does.
pub(crate) fn position(i: usize, len: usize) -> Option<usize> {
    (len > 1).then_some(i)
}

pub(crate) fn too_many(field: &str, found: usize, max: usize) -> ApiError {
    ApiError::Invalid {
        field: field.to_owned(),
        index: None,
        code: Problem::TooManyValues { found, max }.code(),
        message: format!("{field} has {found} values (at most {max} are allowed)"),
    }
}

fn object<'a>(
    value: &'a Value,
    what: &str,
    index: Option<usize>,
) -> Result<&'a Map<String, Value>, ApiError> {
    value.as_object().ok_or_else(|| {
        ApiError::bad_request(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_json",
            format!(
                "{}the {what} must be a JSON object",
                super::error::item(index)
            ),
        )
    })
}

fn check_members(
    object: &Map<String, Value>,
    known: &[&str],
    index: Option<usize>,
) -> Result<(), ApiError> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::unknown(unknown, index, known)),
        None => Ok(()),
    }
}

fn string(v: &Value, field: &str, index: Option<usize>) -> Result<String, ApiError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::wrong_type(field, index, "a string"))
}

fn name(v: &Value, index: Option<usize>) -> Result<TokenName, ApiError> {
    let s = v
        .as_str()
        .ok_or_else(|| ApiError::wrong_type("name", index, "a string"))?;
    TokenName::new(s).map_err(|e| ApiError::invalid("name", index, &e))
}

pub(crate) fn user(v: &Value, field: &str, index: Option<usize>) -> Result<UserId, ApiError> {
    match v {
        Value::String(s) => UserId::new(s).map_err(|e| ApiError::invalid(field, index, &e)),
        Value::Number(n) => n
            .as_u64()
            .map(UserId::from)
            .ok_or_else(|| ApiError::wrong_type(field, index, "a user id")),
        _ => Err(ApiError::wrong_type(
            field,
            index,
            "a user id (a string or a number)",
        )),
    }
}

pub(crate) fn parse_status(s: &str) -> Option<Status> {
    match s {
        "enabled" => Some(Status::Enabled),
        "disabled" => Some(Status::Disabled),
        _ => None,
    }
}

fn status(v: &Value, index: Option<usize>) -> Result<Status, ApiError> {
    v.as_str()
        .and_then(parse_status)
        .ok_or_else(|| ApiError::wrong_type("status", index, "\"enabled\" or \"disabled\""))
}

fn expiry(v: &Value, index: Option<usize>) -> Result<Expiry, ApiError> {
    let invalid = |e: ValidationError| ApiError::invalid("expires_at", index, &e);
    match v {
        Value::Null => Ok(Expiry::NEVER),
        Value::String(s) => s.parse().map_err(invalid),
        Value::Number(n) => match n.as_i64() {
            Some(secs) => Expiry::from_unix(secs).map_err(invalid),
            None => Err(ApiError::wrong_type(
                "expires_at",
                index,
                "an RFC 3339 time, whole Unix seconds, \"never\" or null",
            )),
        },
        _ => Err(ApiError::wrong_type(
            "expires_at",
            index,
            "an RFC 3339 time, Unix seconds, \"never\" or null",
        )),
    }
}

fn strings<'a>(v: &'a Value, field: &str, index: Option<usize>) -> Result<Vec<&'a str>, ApiError> {
    let expected = "an array of strings, or one comma-separated string";
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .ok_or_else(|| ApiError::wrong_type(field, index, expected))
            })
            .collect(),
        _ => Err(ApiError::wrong_type(field, index, expected)),
    }
}

fn permissions(v: &Value, index: Option<usize>) -> Result<PermissionSet, ApiError> {
    let parsed = match v {
        Value::String(s) => s.parse(),
        _ => PermissionSet::parse(strings(v, "permissions", index)?),
    };
    parsed.map_err(|e| ApiError::invalid("permissions", index, &e))
}

fn allowlist(v: &Value, index: Option<usize>) -> Result<IpAllowlist, ApiError> {
    let parsed = match v {
        Value::String(s) => s.parse(),
        _ => IpAllowlist::parse(strings(v, "allowlist", index)?),
    };
    parsed.map_err(|e| ApiError::invalid("allowlist", index, &e))
}

/// `limits`: their text form (`"credits 1000 at 1767225600; rate requests 100 per 60000ms"`),
/// the object a token's view shows, or `null` (none: clears them on an update).
fn limits(v: &Value, index: Option<usize>) -> Result<Limits, ApiError> {
    let parsed = match v {
        Value::Null => Ok(Limits::none()),
        Value::String(s) => s.parse(),
        _ => serde_json::from_value::<Limits>(v.clone())
            .map_err(|e| {
                ValidationError::new(
                    Field::Limits,
                    e.to_string(),
                    Problem::Syntax {
                        expected: "the limits object a token's view shows, or their text form",
                    },
                )
            })
            .and_then(|l| l.check().map(|()| l)),
    };
    parsed.map_err(|e| ApiError::invalid("limits", index, &e))
}

fn token_id(v: &Value, index: Option<usize>) -> Result<TokenId, ApiError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(TokenId::new)
            .ok_or_else(|| ApiError::wrong_type("ids", index, "a non-negative integer")),
        Value::String(s) => s
            .parse()
            .map_err(|e| ApiError::invalid_id("ids", index, &e)),
        _ => Err(ApiError::wrong_type("ids", index, "a non-negative integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(
        r: Result<impl std::fmt::Debug, ApiError>,
    ) -> (String, Option<String>, Option<usize>, String) {
        let e = r.unwrap_err();
        (
            e.code().to_owned(),
            e.field().map(str::to_owned),
            e.index(),
            e.to_string(),
        )
    }

    #[test]
    fn members_are_read_one_by_one_and_named_when_refused() {
        let t = new_token(
            &json!({"name": "ci", "permissions": "dns.*, mail.send", "allowlist": ["10.0.0.0/8"],
                    "expires_at": "2099-01-01T00:00:00Z", "status": "disabled", "owner": 7}),
            None,
        )
        .unwrap();
        assert_eq!(t.permissions.unwrap().to_string(), "dns.*, mail.send");
        assert_eq!(t.owner.unwrap().as_str(), "7");
        assert_eq!(t.status, Status::Disabled);

        assert_eq!(err(new_token(&json!({}), None)).0, "required");
        let (code, field, index, message) =
            err(new_token(&json!({"name": "x", "permisions": "a"}), Some(2)));
        assert_eq!(
            (code.as_str(), field.as_deref(), index),
            ("unknown_field", Some("permisions"), Some(2))
        );
        assert!(
            message.starts_with("item 3: \"permisions\" is not a member"),
            "{message}"
        );
        let (code, field, ..) = err(new_token(
            &json!({"name": "x", "permissions": "reports:*"}),
            None,
        ));
        assert_eq!(
            (code.as_str(), field.as_deref()),
            ("misplaced_wildcard", Some("permissions"))
        );
        let (code, field, ..) = err(new_token(
            &json!({"name": "x", "allowlist": "10.0.0.1/8"}),
            None,
        ));
        assert_eq!(
            (code.as_str(), field.as_deref()),
            ("host_bits_set", Some("allowlist"))
        );
        let (code, field, ..) = err(new_token(&json!({"name": "x", "expires_at": "soon"}), None));
        assert_eq!(
            (code.as_str(), field.as_deref()),
            ("invalid_syntax", Some("expires_at"))
        );
        let (code, field, ..) = err(new_token(&json!({"name": 5}), None));
        assert_eq!(
            (code.as_str(), field.as_deref()),
            ("invalid_syntax", Some("name"))
        );
        let (code, field, ..) = err(new_token(&json!({"name": " x"}), None));
        assert_eq!(
            (code.as_str(), field.as_deref()),
            ("surrounding_whitespace", Some("name"))
        );
        let (code, ..) = err(new_token(&json!({"name": "x", "status": "on"}), None));
        assert_eq!(code, "invalid_syntax");
        let (code, ..) = err(new_token(&json!([1]), None));
        assert_eq!(code, "invalid_json");
    }

    #[test]
    fn ids_are_bounded_and_each_is_named() {
        assert_eq!(
            ids(&json!({"ids": [1, "2"]}), 10).unwrap(),
            [TokenId::new(1), TokenId::new(2)]
        );
        let (code, field, index, _) = err(ids(&json!({"ids": [1, -2, 3]}), 10));
        assert_eq!(
            (code.as_str(), field.as_deref(), index),
            ("invalid_syntax", Some("ids"), Some(1))
        );
        let (code, ..) = err(ids(&json!({"ids": [1, 2, 3]}), 2));
        assert_eq!(code, "too_many_values");
        assert_eq!(err(ids(&json!({}), 2)).0, "required");
        assert_eq!(
            err(regenerate(&json!({"ids": [], "grace_seconds": -1}), 2)).0,
            "negative"
        );
        assert_eq!(regenerate_one(&Value::Null).unwrap(), time::Duration::ZERO);
        assert_eq!(
            regenerate_one(&json!({"grace_seconds": 60})).unwrap(),
            time::Duration::minutes(1)
        );
        // The owner of a token never changes: not a member of an update.
        assert_eq!(
            err(update(TokenId::new(1), &json!({"owner": "bob"}))).0,
            "unknown_field"
        );
        let u = update(TokenId::new(1), &json!({"expires_at": null})).unwrap();
        assert_eq!(u.expiry, Some(Expiry::NEVER));
    }
}
