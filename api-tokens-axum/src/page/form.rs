//! Form bodies (`application/x-www-form-urlencoded`) and query strings, and the page's
//! date and time fields.

use api_tokens::{Expiry, Field, Problem, ValidationError};

use crate::credentials::decode;

/// The fields of a form or query string, in order; a field may repeat (`ids=1&ids=2`).
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses `text`.
    ///
    /// # Errors
    /// A name or value that is not UTF-8 once percent-decoded.
    pub(crate) fn parse(text: &str) -> Result<Self, ()> {
        let mut fields = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name).map_err(|_| ())?;
            let value = decode(value).map_err(|_| ())?;
            fields.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self(fields))
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a checkbox `name` was checked (sent at all).
    pub(crate) fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Reads the expiry field: `YYYY-MM-DD hh:mm:ss` (as the seed's form writes it) or
/// `YYYY-MM-DDThh:mm[:ss]` (as a browser's date-time input sends it), in UTC, or a full RFC 3339
/// time.
///
/// # Errors
/// Nothing (`empty`), or anything else, as the core's `invalid_syntax` for the expiry.
pub(crate) fn expiry(text: &str) -> Result<Expiry, ValidationError> {
    let text = text.trim();
    let invalid = || {
        ValidationError::new(
            Field::Expiry,
            text,
            Problem::Syntax {
                expected: "a date and time, YYYY-MM-DD hh:mm:ss",
            },
        )
    };
    if text.is_empty() {
        return Err(ValidationError::new(Field::Expiry, text, Problem::Empty));
    }
    if text.len() > 64 {
        return Err(invalid());
    }
    let (date, time) = text.split_once([' ', 'T', 't']).ok_or_else(invalid)?;
    let zoned = time.ends_with(['Z', 'z']) || time.contains(['+', '-']);
    let time = if time.len() == 5 && !zoned {
        format!("{time}:00")
    } else {
        time.to_owned()
    };
    let rfc3339 = if zoned {
        format!("{date}T{time}")
    } else {
        format!("{date}T{time}Z")
    };
    rfc3339.parse::<Expiry>().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_repeat_and_decode() {
        let f = Form::parse("ids=1&ids=2&name=a+b%3Cc%3E&flag&empty=").unwrap();
        assert_eq!(f.all("ids").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(f.get("name"), Some("a b<c>"));
        assert!(f.checked("flag") && f.checked("empty") && !f.checked("other"));
        assert!(Form::parse("name=%ff").is_err());
    }

    #[test]
    fn expiry_reads_the_forms_formats() {
        let at = |s: &str| expiry(s).map(|e| e.unix());
        let want = Ok(Some(1_790_000_000 - 1_790_000_000 % 60));
        let text = "2026-09-21 14:13:00";
        assert_eq!(at(text), want, "{text}");
        assert_eq!(at("2026-09-21T14:13"), want);
        assert_eq!(at("2026-09-21T14:13:00"), want);
        assert_eq!(at("2026-09-21T14:13:00Z"), want);
        assert_eq!(at("2026-09-21T16:13:00+02:00"), want);
        assert_eq!(expiry("  ").map_err(|e| e.code()), Err("empty"));
        for bad in ["2026-09-21", "soon", "2026-13-01 00:00:00", "never"] {
            assert_eq!(
                expiry(bad).map_err(|e| e.code()),
                Err("invalid_syntax"),
                "{bad}"
            );
        }
    }
}
