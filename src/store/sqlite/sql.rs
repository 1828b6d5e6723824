//! [`Query`] as SQLite: the filters, sort and limit both SQL stores share
//! ([`store::sql`](crate::store::sql)), with numbered parameters and lists as one JSON
//! parameter each (`IN (SELECT value FROM json_each(?N))`: any number of values, and SQLite
//! builds a temporary index over them, O(k log k)).
//!
//! Name and description search call Rust functions registered on the connection
//! ([`register_functions`]), so that matching agrees exactly with [`Query::matches`].

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, ToSql};
use time::OffsetDateTime;

use super::backend;
use crate::error::StoreError;
use crate::store::sql::{Dialect, filters, limit_sql, order_sql, where_sql};
use crate::store::{Query, TextSearch};

/// The parameters of a statement being built, `?1` first.
#[derive(Default)]
pub(super) struct Args(Vec<Box<dyn ToSql>>);

impl Args {
    /// Adds a parameter; returns its placeholder.
    fn arg(&mut self, v: impl ToSql + 'static) -> String {
        self.0.push(Box::new(v));
        format!("?{}", self.0.len())
    }

    /// The parameters, in order.
    pub(super) fn params(&self) -> impl Iterator<Item = &dyn ToSql> {
        self.0.iter().map(|p| p.as_ref())
    }

    /// `column IN (values)`, `json` being the values as a JSON array.
    fn json_in(&mut self, column: &str, json: String) -> String {
        format!(
            "{column} IN (SELECT value FROM json_each({}))",
            self.arg(json)
        )
    }
}

impl Dialect for Args {
    const BYTE_ORDER: &'static str = "BINARY";

    fn int(&mut self, v: i64) -> String {
        self.arg(v)
    }

    fn int_in(&mut self, column: &str, values: impl Iterator<Item = i64>) -> String {
        self.json_in(column, json_array(values.map(|v| v.to_string())))
    }

    fn text_in<'a>(&mut self, column: &str, values: impl Iterator<Item = &'a str>) -> String {
        self.json_in(column, json_array(values.map(json_string)))
    }
}

/// `[a,b,…]` of items already written as JSON values.
fn json_array(items: impl Iterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Registers the text-matching functions the statements call.
///
/// # Errors
/// The driver refused a registration.
pub(super) fn register_functions(conn: &Connection) -> Result<(), StoreError> {
    conn.create_scalar_function(
        "api_tokens_contains",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let hay: String = ctx.get(0)?;
            let needle: String = ctx.get(1)?;
            Ok(hay.to_lowercase().contains(&needle.to_lowercase()))
        },
    )
    .map_err(backend)?;
    conn.create_scalar_function(
        "api_tokens_search",
        4,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let hay: String = ctx.get(0)?;
            let pattern: String = ctx.get(1)?;
            let search = TextSearch::new()
                .prefix(ctx.get::<bool>(2)?)
                .wildcards(ctx.get::<bool>(3)?);
            // The pattern comes from `TextSearch::conditions`, lower-cased already.
            Ok(search.pattern_matches(&hay.to_lowercase(), &pattern))
        },
    )
    .map_err(backend)
}

/// The conditions of `q`'s name and description search, calling [`register_functions`]'
/// functions.
fn text_filters(a: &mut Args, q: &Query, c: &mut Vec<String>) {
    if let Some(t) = &q.name_contains {
        c.push(format!("api_tokens_contains(name, {})", a.arg(t.clone())));
    }
    if let Some(t) = &q.description_contains {
        c.push(format!(
            "api_tokens_contains(description, {})",
            a.arg(t.clone())
        ));
    }
    if let Some(s) = &q.search
        && !s.is_empty()
    {
        let not = if s.is_exclude() { "NOT " } else { "" };
        let glue = if s.is_any() { " OR " } else { " AND " };
        let mut parts = Vec::new();
        for (on_description, pattern) in s.conditions() {
            let column = if on_description {
                "description"
            } else {
                "name"
            };
            let (pattern, prefix, wildcards) = (
                a.arg(pattern.to_owned()),
                a.arg(s.is_prefix()),
                a.arg(s.has_wildcards()),
            );
            parts.push(format!(
                "{not}api_tokens_search({column}, {pattern}, {prefix}, {wildcards})"
            ));
        }
        c.push(format!("({})", parts.join(glue)));
    }
}

/// ` WHERE …` of every filter of `q`, with its parameters added to `a`.
fn where_clause(a: &mut Args, q: &Query, now: OffsetDateTime) -> String {
    let mut c = filters(a, q, now);
    text_filters(a, q, &mut c);
    where_sql(&c)
}

/// What follows `SELECT <columns> FROM api_tokens` for the tokens `q` matches, sorted and
/// limited, and its parameters.
pub(super) fn select(q: &Query, now: OffsetDateTime) -> (String, Args) {
    let mut a = Args::default();
    let mut sql = where_clause(&mut a, q, now);
    sql.push_str(&order_sql::<Args>(q));
    if let Some(n) = q.limit {
        sql.push_str(&limit_sql(&mut a, n));
    }
    (sql, a)
}

/// `SELECT COUNT(*)` of the tokens `q` matches, and its parameters.
pub(super) fn count(q: &Query, now: OffsetDateTime) -> (String, Args) {
    let mut a = Args::default();
    let w = where_clause(&mut a, q, now);
    (format!("SELECT COUNT(*) FROM api_tokens{w}"), a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
        assert_eq!(
            json_array(["1", "2"].into_iter().map(String::from)),
            "[1,2]"
        );
    }
}
