//! Zabbix's input checks (`CApiInputValidator`) for the types `token.*` uses, with Zabbix's
//! paths (`/1/name`, `/tokenids/1`, `/filter/status/1`) and texts.
//!
//! Values are read as PHP's `json_decode($json, true)` sees them: a JSON object and a JSON array
//! are both "arrays" (an object's values count where a list is expected, an array's keys are
//! `0`, `1`, … where an object is expected).

use serde_json::Value;

/// A Zabbix API error: its JSON-RPC code, message and data.
#[derive(Debug)]
pub struct ApiError {
    pub code: i64,
    pub message: &'static str,
    pub data: String,
}

/// `-32602 Invalid params.`: a parameter error, or a failed authentication.
pub fn invalid_params(data: impl Into<String>) -> ApiError {
    ApiError {
        code: -32602,
        message: "Invalid params.",
        data: data.into(),
    }
}

/// `-32500 Application error.`: permissions (`ZBX_API_ERROR_PERMISSIONS`) and internal errors.
pub fn application(data: impl Into<String>) -> ApiError {
    ApiError {
        code: -32500,
        message: "Application error.",
        data: data.into(),
    }
}

/// `-32600 Invalid request.`: the JSON-RPC envelope is wrong.
pub fn invalid_request(data: impl Into<String>) -> ApiError {
    ApiError {
        code: -32600,
        message: "Invalid request.",
        data: data.into(),
    }
}

/// `Invalid parameter "<path>": <what>.`
pub fn bad(path: &str, what: &str) -> ApiError {
    invalid_params(format!("Invalid parameter \"{path}\": {what}."))
}

/// The path of a member of `path` (`/` + `name` at the top).
pub fn member(path: &str, name: &str) -> String {
    if path == "/" {
        format!("/{name}")
    } else {
        format!("{path}/{name}")
    }
}

/// The path of the `i`-th (0-based) element of `path`, written 1-based as Zabbix does.
pub fn element(path: &str, i: usize) -> String {
    member(path, &(i + 1).to_string())
}

/// The most elements one array parameter or one batch may carry. Zabbix itself has no such
/// bound (PHP's memory limit is the only one); the example refuses more with the validator's
/// own text for an over-long array, `value is too long`.
pub const MAX_ELEMENTS: usize = 10_000;

/// A key as PHP's `json_decode` makes it: canonical decimal integers become integer keys.
fn is_int_key(key: &str) -> bool {
    let digits = key.strip_prefix('-').unwrap_or(key);
    let canonical = match digits.as_bytes() {
        [] => false,
        [b'0'] => !key.starts_with('-'),
        [b'0', ..] => false,
        d => d.iter().all(u8::is_ascii_digit),
    };
    canonical && key.parse::<i64>().is_ok()
}

/// The entries of a PHP array: an object's members, or an array's elements under the keys
/// `0`, `1`, …; `None` for anything else. Refuses more than [`MAX_ELEMENTS`] entries.
pub fn entries<'a>(v: &'a Value, path: &str) -> Result<Option<Vec<(String, &'a Value)>>, ApiError> {
    let out: Vec<(String, &Value)> = match v {
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return Ok(None),
    };
    if out.len() > MAX_ELEMENTS {
        return Err(bad(path, "value is too long"));
    }
    Ok(Some(out))
}

/// The values of a PHP array in order (what `array_values` gives), or `an array is expected`.
pub fn array<'a>(v: &'a Value, path: &str) -> Result<Vec<&'a Value>, ApiError> {
    match entries(v, path)? {
        Some(e) => Ok(e.into_iter().map(|(_, v)| v).collect()),
        None => Err(bad(path, "an array is expected")),
    }
}

/// Whether a PHP array's first key is a string (`API_NORMALIZE` wraps such an array, an
/// object, into a one-element list).
pub fn is_assoc(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.keys().next().is_some_and(|k| !is_int_key(k)),
        _ => false,
    }
}

/// An object parameter (`API_OBJECT`): its members, after refusing members it does not know
/// (`unexpected parameter "x"`, in the order the request gives them).
pub struct Object<'a> {
    pub path: String,
    members: Vec<(String, &'a Value)>,
}

impl<'a> Object<'a> {
    /// Reads `v` at `path`, allowing only `known` members.
    pub fn read(v: &'a Value, path: &str, known: &[&str]) -> Result<Self, ApiError> {
        let members = entries(v, path)?.ok_or_else(|| bad(path, "an array is expected"))?;
        if let Some((k, _)) = members.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(bad(path, &format!("unexpected parameter \"{k}\"")));
        }
        Ok(Self {
            path: path.to_owned(),
            members,
        })
    }

    /// A member, if given.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.members
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// A member that is given and not `null` (`API_ALLOW_NULL`: null is as if absent).
    pub fn get_non_null(&self, name: &str) -> Option<&'a Value> {
        self.get(name).filter(|v| !v.is_null())
    }

    /// A member the object must have (`the parameter "x" is missing`).
    pub fn required(&self, name: &str) -> Result<&'a Value, ApiError> {
        self.get(name)
            .ok_or_else(|| bad(&self.path, &format!("the parameter \"{name}\" is missing")))
    }

    /// The path of a member.
    pub fn at(&self, name: &str) -> String {
        member(&self.path, name)
    }
}

/// `API_ID`: a non-negative integer (a JSON integer or a string of digits), at most
/// `9223372036854775807`; normalised without leading zeros.
pub fn id(v: &Value, path: &str) -> Result<String, ApiError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return Err(bad(path, "a number is expected")),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(path, "a number is expected"));
    }
    let trimmed = text.trim_start_matches('0');
    let normalised = if trimmed.is_empty() { "0" } else { trimmed };
    if normalised.parse::<i64>().is_err() {
        return Err(bad(path, "a number is too large"));
    }
    Ok(normalised.to_owned())
}

/// `API_IDS`: an array of ids; with `normalize`, a lone id is taken as a one-element array.
pub fn ids(v: &Value, path: &str, normalize: bool) -> Result<Vec<String>, ApiError> {
    if normalize && let Ok(one) = id(v, path) {
        return Ok(vec![one]);
    }
    array(v, path)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| id(v, &element(path, i)))
        .collect()
}

/// `API_INT32`: a JSON integer or a string `-?[0-9]+`, within the signed 32-bit range.
pub fn int32(v: &Value, path: &str) -> Result<i32, ApiError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() => n.to_string(),
        _ => return Err(bad(path, "an integer is expected")),
    };
    let digits = text.strip_prefix('-').unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(path, "an integer is expected"));
    }
    // Leading zeros are allowed ("007"): parse the value, not the text's length.
    let significant = digits.trim_start_matches('0');
    let magnitude: i64 = if significant.is_empty() {
        0
    } else if significant.len() > 12 {
        return Err(bad(path, "a number is too large"));
    } else {
        significant
            .parse()
            .map_err(|_| bad(path, "a number is too large"))?
    };
    let value = if text.starts_with('-') {
        -magnitude
    } else {
        magnitude
    };
    i32::try_from(value).map_err(|_| bad(path, "a number is too large"))
}

/// `API_INT32` with `in`: one of the listed values (`value must be one of 0, 1`).
pub fn int32_in(v: &Value, path: &str, allowed: &[i32]) -> Result<i32, ApiError> {
    let n = int32(v, path)?;
    if allowed.contains(&n) {
        return Ok(n);
    }
    let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
    Err(bad(
        path,
        &if list.len() == 1 {
            format!("value must be {}", list.join(", "))
        } else {
            format!("value must be one of {}", list.join(", "))
        },
    ))
}

/// `API_INTS32`: an array of integers (a lone integer normalised), each checked by `check`.
pub fn ints32(
    v: &Value,
    path: &str,
    check: impl Fn(&Value, &str) -> Result<i32, ApiError>,
) -> Result<Vec<i32>, ApiError> {
    if int32(v, path).is_ok() {
        // Normalised to a one-element array first, so an error names the element.
        return Ok(vec![check(v, &element(path, 0))?]);
    }
    array(v, path)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| check(v, &element(path, i)))
        .collect()
}

/// `API_STRING_UTF8`: a string; not empty when `not_empty`; at most `max` characters.
pub fn string(
    v: &Value,
    path: &str,
    not_empty: bool,
    max: Option<usize>,
) -> Result<String, ApiError> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(path, "a character string is expected"))?;
    if not_empty && s.is_empty() {
        return Err(bad(path, "cannot be empty"));
    }
    if max.is_some_and(|m| s.chars().nth(m).is_some()) {
        return Err(bad(path, "value is too long"));
    }
    Ok(s.to_owned())
}

/// `API_STRING_UTF8` with `in`: one of the listed strings.
pub fn string_in(v: &Value, path: &str, allowed: &[&str]) -> Result<String, ApiError> {
    let s = string(v, path, false, None)?;
    if allowed.contains(&s.as_str()) {
        return Ok(s);
    }
    let quoted = format!("\"{}\"", allowed.join("\", \""));
    Err(bad(
        path,
        &if allowed.len() == 1 {
            format!("value must be {quoted}")
        } else {
            format!("value must be one of {quoted}")
        },
    ))
}

/// `API_STRINGS_UTF8` (normalised): an array of strings, a lone string taken as one; each at
/// most `max` characters.
pub fn strings(v: &Value, path: &str, max: Option<usize>) -> Result<Vec<String>, ApiError> {
    if v.is_string() {
        return Ok(vec![string(v, &element(path, 0), false, max)?]);
    }
    array(v, path)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| string(v, &element(path, i), false, max))
        .collect()
}

/// `API_BOOLEAN`: `true` or `false`.
pub fn boolean(v: &Value, path: &str) -> Result<bool, ApiError> {
    v.as_bool()
        .ok_or_else(|| bad(path, "a boolean is expected"))
}

/// `API_FLAG`: a boolean; any other value counts as set unless it is `null` (Zabbix accepts
/// non-boolean flags, deprecated since 3.4).
pub fn flag(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Null => false,
        _ => true,
    }
}

/// `uniq`: the second occurrence of a value is refused (`value (x) already exists`).
pub fn unique(values: &[String], path: &str) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        if !seen.insert(v.as_str()) {
            return Err(bad(
                &element(path, i),
                &format!("value ({v}) already exists"),
            ));
        }
    }
    Ok(())
}

/// `uniq` over objects: the first object whose `fields` values repeat an earlier object's
/// (`value (name, userid)=(x, 1) already exists`). Objects without every field are skipped.
pub fn unique_objects(
    objects: &[Vec<Option<String>>],
    fields: &[&str],
    path: &str,
) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::with_capacity(objects.len());
    for (i, values) in objects.iter().enumerate() {
        let Some(values) = values.iter().cloned().collect::<Option<Vec<String>>>() else {
            continue;
        };
        let shown = values.join(", ");
        if !seen.insert(values) {
            return Err(bad(
                &element(path, i),
                &format!("value ({})=({shown}) already exists", fields.join(", ")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(e: ApiError) -> String {
        e.data
    }

    #[test]
    fn ids_and_their_texts() {
        assert_eq!(id(&json!("0012"), "/1").unwrap(), "12");
        assert_eq!(id(&json!(7), "/1").unwrap(), "7");
        for bad_id in [
            json!("x"),
            json!(-1),
            json!(1.5),
            json!(true),
            json!(""),
            json!([]),
        ] {
            assert_eq!(
                data(id(&bad_id, "/1").unwrap_err()),
                "Invalid parameter \"/1\": a number is expected."
            );
        }
        assert_eq!(
            data(id(&json!("9223372036854775808"), "/1").unwrap_err()),
            "Invalid parameter \"/1\": a number is too large."
        );
        assert_eq!(ids(&json!("5"), "/tokenids", true).unwrap(), ["5"]);
        assert_eq!(
            data(ids(&json!("x"), "/tokenids", true).unwrap_err()),
            "Invalid parameter \"/tokenids\": an array is expected."
        );
        assert_eq!(
            data(ids(&json!(["1", "x"]), "/tokenids", true).unwrap_err()),
            "Invalid parameter \"/tokenids/2\": a number is expected."
        );
        assert_eq!(
            ids(&json!({"a": "3", "b": 4}), "/tokenids", false).unwrap(),
            ["3", "4"],
            "a JSON object is a PHP array too"
        );
    }

    #[test]
    fn integers_and_their_texts() {
        assert_eq!(int32(&json!("-20"), "/x").unwrap(), -20);
        assert_eq!(int32(&json!("007"), "/x").unwrap(), 7);
        assert_eq!(
            data(int32(&json!("2147483648"), "/x").unwrap_err()),
            "Invalid parameter \"/x\": a number is too large."
        );
        for not_int in [
            json!("1.0"),
            json!(1.5),
            json!("+1"),
            json!(""),
            json!(null),
        ] {
            assert_eq!(
                data(int32(&not_int, "/x").unwrap_err()),
                "Invalid parameter \"/x\": an integer is expected."
            );
        }
        assert_eq!(
            data(int32_in(&json!(2), "/1/status", &[0, 1]).unwrap_err()),
            "Invalid parameter \"/1/status\": value must be one of 0, 1."
        );
        assert_eq!(
            data(ints32(&json!(2), "/filter/status", |v, p| int32_in(v, p, &[0, 1])).unwrap_err()),
            "Invalid parameter \"/filter/status/1\": value must be one of 0, 1."
        );
    }

    #[test]
    fn php_integer_keys() {
        for (k, int) in [
            ("0", true),
            ("12", true),
            ("-3", true),
            ("01", false),
            ("-0", false),
            ("a", false),
            ("", false),
        ] {
            assert_eq!(is_int_key(k), int, "{k:?}");
        }
    }

    #[test]
    fn uniqueness_texts() {
        assert_eq!(
            data(unique(&["9".into(), "9".into()], "/").unwrap_err()),
            "Invalid parameter \"/2\": value (9) already exists."
        );
        let objects = vec![
            vec![Some("x".into()), Some("1".into())],
            vec![Some("y".into()), Some("1".into())],
            vec![Some("x".into()), Some("1".into())],
        ];
        assert_eq!(
            data(unique_objects(&objects, &["name", "userid"], "/").unwrap_err()),
            "Invalid parameter \"/3\": value (name, userid)=(x, 1) already exists."
        );
    }
}
