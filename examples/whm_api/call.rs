//! One WHM API 1 call written as its URL path and query, with the bounds the example keeps.

/// The most parameters one call may carry (the example's bound: WHM's own limit is its HTTP
/// server's). Enough for every ACL of the catalogue and the whitelist's 100 entries.
pub const MAX_PARAMS: usize = 1_000;

/// The longest call line read, in bytes (the example's bound).
pub const MAX_LINE: usize = 1024 * 1024;

/// `%XX` and `+` decoding of one query component.
fn decode(s: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                let v = u8::from_str_radix(&hex, 16)
                    .map_err(|_| format!("Invalid URL escape \"%{hex}\"."))?;
                out.push(v);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| "The request is not valid UTF-8.".to_owned())
}

/// A parsed call: the function and its parameters in order.
pub struct Call {
    pub function: String,
    pub params: Vec<(String, String)>,
}

impl Call {
    /// Reads `function?key=value&…`, with or without a leading `/json-api/`.
    ///
    /// # Errors
    /// A bad escape, text that is not UTF-8, or more than [`MAX_PARAMS`] parameters.
    pub fn parse(line: &str) -> Result<Self, (String, String)> {
        let line = line.trim().trim_start_matches('/');
        let line = line.strip_prefix("json-api/").unwrap_or(line);
        let (function, query) = line.split_once('?').unwrap_or((line, ""));
        let function = function.to_owned();
        let pieces: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        if pieces.len() > MAX_PARAMS {
            return Err((
                function,
                format!(
                    "You have entered \"{}\" parameters, which is above the limit of {MAX_PARAMS}.",
                    pieces.len()
                ),
            ));
        }
        let params = pieces
            .into_iter()
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Ok((decode(k)?, decode(v)?))
            })
            .collect::<Result<_, String>>()
            .map_err(|e| (function.clone(), e))?;
        Ok(Self { function, params })
    }

    /// Every parameter name that is not `key`, `key-N` for any of `keys`, or `api.version`.
    pub fn unknown(&self, keys: &[&str]) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (k, _) in &self.params {
            let known = k == "api.version"
                || keys.iter().any(|key| {
                    k == key
                        || k.strip_prefix(key)
                            .and_then(|r| r.strip_prefix('-'))
                            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                });
            if !known && !out.contains(&k.as_str()) {
                out.push(k);
            }
        }
        out
    }

    /// A parameter given once; `Err` names it when it is given more than once.
    pub fn one(&self, key: &str) -> Result<Option<&str>, String> {
        let mut found = self.params.iter().filter(|(k, _)| k == key);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(format!("The \"{key}\" argument may be given only once."));
        }
        Ok(first)
    }

    /// `key`, `key-0`, `key-1`, … in that order (`key` first, then by number); `None` when
    /// none is given.
    pub fn many(&self, key: &str) -> Option<Vec<&str>> {
        let mut found: Vec<(u128, &str)> = self
            .params
            .iter()
            .filter_map(|(k, v)| {
                if k == key {
                    Some((0, v.as_str()))
                } else {
                    k.strip_prefix(key)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                        .map(|n| {
                            (
                                n.parse::<u128>().map_or(u128::MAX, |n| n.saturating_add(1)),
                                v.as_str(),
                            )
                        })
                }
            })
            .collect();
        found.sort_by_key(|(n, _)| *n);
        (!found.is_empty()).then(|| found.into_iter().map(|(_, v)| v).collect())
    }
}

/// Joins names as an English list: `a`, `a and b`, `a, b, and c`.
pub fn list_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}
