//! [`Query`] as PostgreSQL: the filters, sort and limit both SQL stores share
//! ([`store::sql`](crate::store::sql)), with numbered parameters and arrays for lists.
//!
//! Name and description search (`name_contains`, `description_contains` and [`Query::search`])
//! stay in Rust ([`Query::matches`]): PostgreSQL's `lower()`
//! follows the database's collation, Rust's `to_lowercase` follows Unicode, and the two must
//! agree exactly. A query with such a filter is narrowed by every other filter in SQL, then
//! filtered and limited in Rust.

use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use super::row::columns;
use crate::store::Query;
use crate::store::sql::{Dialect, filters, limit_sql, order_sql, where_sql};

/// A statement being built: SQL text and its parameters, `$1` first.
#[derive(Default)]
pub(super) struct Statement {
    pub(super) sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Statement {
    /// Adds a parameter; returns its placeholder.
    fn arg(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

impl Dialect for Statement {
    const BYTE_ORDER: &'static str = "\"C\"";

    fn int(&mut self, v: i64) -> String {
        self.arg(v)
    }

    fn int_in(&mut self, column: &str, values: impl Iterator<Item = i64>) -> String {
        format!("{column} = ANY({})", self.arg(values.collect::<Vec<i64>>()))
    }

    fn text_in<'a>(&mut self, column: &str, values: impl Iterator<Item = &'a str>) -> String {
        let values: Vec<String> = values.map(str::to_owned).collect();
        format!("{column} = ANY({})", self.arg(values))
    }
}

/// Whether the query filters on text that only Rust can match.
pub(super) fn needs_rust_filter(q: &Query) -> bool {
    q.name_contains.is_some()
        || q.description_contains.is_some()
        || q.search.as_ref().is_some_and(|s| !s.is_empty())
}

/// `SELECT` of the tokens `q` matches (before any Rust-side text filter), sorted; limited in
/// SQL only when no Rust-side filter follows.
pub(super) fn select(q: &Query, now: OffsetDateTime) -> Statement {
    let mut st = Statement::default();
    let w = where_sql(&filters(&mut st, q, now));
    let mut sql = format!(
        "SELECT {} FROM api_tokens{w}{}",
        columns(""),
        order_sql::<Statement>(q)
    );
    if let Some(n) = q.limit
        && !needs_rust_filter(q)
    {
        sql.push_str(&limit_sql(&mut st, n));
    }
    st.sql = sql;
    st
}

/// `SELECT count(*)` of the tokens `q` matches (only without a Rust-side filter).
pub(super) fn count(q: &Query, now: OffsetDateTime) -> Statement {
    let mut st = Statement::default();
    let w = where_sql(&filters(&mut st, q, now));
    st.sql = format!("SELECT count(*) FROM api_tokens{w}");
    st
}
