//! What goes to stdout: tables for people, JSON and CSV for programs.
//!
//! JSON is the stable form: a token is the library's `TokenView` object (times as RFC 3339 and
//! as Unix seconds). CSV has the same members, in the same order, without the `_unix` twins;
//! lists (permissions, allowlist) are joined with ", ". Tables are for reading and may change.

use std::io::{self, Write};

use api_tokens::time::{OffsetDateTime, UtcOffset};
use api_tokens::{Status, Token};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{DetailFormat, Format};
use crate::error::CliError;

/// The CSV columns of a token: the JSON members, without the `_unix` twins.
pub const TOKEN_COLUMNS: [&str; 15] = [
    "id",
    "name",
    "description",
    "owner",
    "creator",
    "status",
    "permissions",
    "allowlist",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "secret_generated_at",
    "revoked_at",
    "revoked_by",
];

/// Writes `value` as pretty JSON and a newline.
pub fn json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// A value as one CSV or table cell: strings as they are, lists joined with ", ", nothing for
/// null.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Rows of `columns` from JSON objects, as CSV with a header.
pub fn csv_rows(out: &mut impl Write, columns: &[&str], rows: &[Value]) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(columns).map_err(io::Error::other)?;
    for row in rows {
        w.write_record(columns.iter().map(|c| cell(&row[*c])))
            .map_err(io::Error::other)?;
    }
    w.flush()
}

/// Text for a terminal: control characters (escape sequences a token's name or description
/// could carry) written as `\u{..}`, so a table never drives the operator's terminal.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// An aligned table: a header row, two spaces between columns, the last column not padded.
pub fn table(out: &mut impl Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    aligned(out, Some(&headers), rows)
}

/// Lines of field and value, aligned, without a header.
pub fn record(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
    aligned(out, None, rows)
}

fn aligned(
    out: &mut impl Write,
    headers: Option<&[String]>,
    rows: &[Vec<String>],
) -> io::Result<()> {
    let rows: Vec<Vec<String>> = headers
        .into_iter()
        .map(<[String]>::to_vec)
        .chain(
            rows.iter()
                .map(|r| r.iter().map(|c| printable(c)).collect()),
        )
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in &rows {
        let mut text = String::new();
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(c);
            text.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(c.chars().count()),
            ));
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

/// A time for people: UTC, to the second.
pub fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A token's state in a word or two: revoked, disabled, enabled, and whether it is expired or
/// has no secret yet.
pub fn state(t: &Token, now: OffsetDateTime) -> String {
    let mut s = String::from(match (t.revoked.is_some(), t.status) {
        (true, _) => "revoked",
        (false, Status::Enabled) => "enabled",
        (false, Status::Disabled) => "disabled",
    });
    if t.is_expired_at(now) {
        s.push_str(", expired");
    }
    if t.secret.is_none() && t.revoked.is_none() {
        s.push_str(", no secret");
    }
    s
}

fn expires(t: &Token) -> String {
    t.expiry.instant().map_or_else(|| "never".to_owned(), when)
}

fn last_used(t: &Token) -> String {
    t.last_use
        .map_or_else(|| "never".to_owned(), |u| when(u.at))
}

/// A list of tokens in `format`.
///
/// # Errors
/// The output cannot be written.
pub fn tokens(
    out: &mut impl Write,
    format: Format,
    list: &[Token],
    now: OffsetDateTime,
) -> Result<(), CliError> {
    let result = match format {
        Format::Json => json(out, &list),
        Format::Csv => {
            let rows: Vec<Value> = list
                .iter()
                .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
                .collect();
            csv_rows(out, &TOKEN_COLUMNS, &rows)
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.name.to_string(),
                        t.owner.to_string(),
                        state(t, now),
                        expires(t),
                        last_used(t),
                        t.permissions.to_string(),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "ID",
                    "NAME",
                    "OWNER",
                    "STATE",
                    "EXPIRES",
                    "LAST USED",
                    "PERMISSIONS",
                ],
                &rows,
            )
        }
    };
    result.map_err(CliError::Output)
}

/// One token in `format`.
///
/// # Errors
/// The output cannot be written.
pub fn token(
    out: &mut impl Write,
    format: DetailFormat,
    t: &Token,
    now: OffsetDateTime,
) -> Result<(), CliError> {
    let result = match format {
        DetailFormat::Json => json(out, t),
        DetailFormat::Table => {
            let allowlist = if t.allowlist.is_empty() {
                "any address".to_owned()
            } else {
                t.allowlist.to_string()
            };
            let used = match t.last_use {
                None => "never".to_owned(),
                Some(u) => match u.ip {
                    Some(ip) => format!("{} from {ip}", when(u.at)),
                    None => when(u.at),
                },
            };
            let secret = match (&t.secret, &t.revoked) {
                (_, Some(_)) => "none (revoked: its hashes were dropped)".to_owned(),
                (None, None) => "none yet (regenerate gives it one)".to_owned(),
                (Some(s), None) => format!("generated {}", when(s.generated_at)),
            };
            let revoked = t.revoked.map_or_else(
                || "no".to_owned(),
                |r| format!("{} (by {})", when(r.at), r.by.as_str()),
            );
            let rows = vec![
                vec!["id".into(), t.id.to_string()],
                vec!["name".into(), t.name.to_string()],
                vec!["description".into(), t.description.clone()],
                vec!["owner".into(), t.owner.to_string()],
                vec!["creator".into(), t.creator.to_string()],
                vec!["state".into(), state(t, now)],
                vec!["permissions".into(), t.permissions.to_string()],
                vec!["allowlist".into(), allowlist],
                vec!["created".into(), when(t.created_at)],
                vec!["expires".into(), expires(t)],
                vec!["last used".into(), used],
                vec!["secret".into(), secret],
                vec!["revoked".into(), revoked],
            ];
            record(out, &rows)
        }
    };
    result.map_err(CliError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_escape_control_characters() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["NAME", "X"],
            &[vec!["evil\u{1b}[2J".into(), "ok".into()]],
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("evil\\u{1b}[2J"), "{text:?}");
    }

    #[test]
    fn tables_align_columns() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["ID", "NAME", "OWNER"],
            &[
                vec!["1".into(), "a".into(), "alice".into()],
                vec!["10".into(), "longer".into(), "b".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID  NAME    OWNER\n1   a       alice\n10  longer  b\n"
        );
    }
}
