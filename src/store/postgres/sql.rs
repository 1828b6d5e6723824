//! [`Query`] as SQL: filters, sort and limit, with numbered parameters.
//!
//! Name and description search (`name_contains`, `description_contains` and [`Query::search`])
//! stay in Rust ([`Query::matches`]): PostgreSQL's `lower()`
//! follows the database's collation, Rust's `to_lowercase` follows Unicode, and the two must
//! agree exactly. A query with such a filter is narrowed by every other filter in SQL, then
//! filtered and limited in Rust.

use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use super::row::{columns, id_key};
use crate::store::{Query, SortField, SortOrder, TimeRange};
use crate::token::Status;

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

/// Whether the query filters on text that only Rust can match.
pub(super) fn needs_rust_filter(q: &Query) -> bool {
    q.name_contains.is_some()
        || q.description_contains.is_some()
        || q.search.as_ref().is_some_and(|s| !s.is_empty())
}

/// An instant as the whole seconds a column holds; `None` for an instant with a fraction of a
/// second, which no stored value equals.
fn exact_secs(t: OffsetDateTime) -> Option<i64> {
    (t.nanosecond() == 0).then(|| t.unix_timestamp())
}

/// `column = ANY(values)`, or also `column IS NULL` when `null` is set.
fn any_or_null(st: &mut Statement, column: &str, null: bool, values: Vec<i64>) -> String {
    let any = format!("{column} = ANY({})", st.arg(values));
    if null {
        format!("({column} IS NULL OR {any})")
    } else {
        any
    }
}

/// The first whole second at or after `t`: for comparing integer seconds with an instant.
fn ceil_secs(t: OffsetDateTime) -> i64 {
    let s = t.unix_timestamp();
    if t.nanosecond() > 0 {
        s.saturating_add(1)
    } else {
        s
    }
}

fn where_clause(st: &mut Statement, q: &Query, now: OffsetDateTime) -> String {
    let mut c: Vec<String> = Vec::new();
    if let Some(ids) = &q.ids {
        let keys: Vec<i64> = ids.iter().filter_map(|id| id_key(*id)).collect();
        c.push(format!("id = ANY({})", st.arg(keys)));
    }
    if let Some(owners) = &q.owners {
        let v: Vec<String> = owners.iter().map(|o| o.to_string()).collect();
        c.push(format!("owner = ANY({})", st.arg(v)));
    }
    if let Some(creators) = &q.creators {
        let v: Vec<String> = creators.iter().map(|o| o.to_string()).collect();
        c.push(format!("creator = ANY({})", st.arg(v)));
    }
    if let Some(s) = q.status {
        c.push(format!(
            "status = {}",
            st.arg(i16::from(s == Status::Disabled))
        ));
    }
    // Expired at t  <=>  expires_at <= t  <=>  expires_at <= floor(t) (whole seconds).
    if let Some(t) = q.valid_at {
        c.push(format!(
            "(expires_at IS NULL OR expires_at > {})",
            st.arg(t.unix_timestamp())
        ));
    }
    if let Some(t) = q.expired_at {
        c.push(format!("expires_at <= {}", st.arg(t.unix_timestamp())));
    }
    if let Some(d) = q.expiring_within {
        let from = st.arg(now.unix_timestamp());
        let until = st.arg(now.saturating_add(d).unix_timestamp());
        c.push(format!("expires_at > {from} AND expires_at <= {until}"));
    }
    let mut range = |column: &str, r: &TimeRange, c: &mut Vec<String>| {
        if let Some(from) = r.from {
            c.push(format!("{column} >= {}", st.arg(ceil_secs(from))));
        }
        if let Some(until) = r.until {
            c.push(format!("{column} < {}", st.arg(ceil_secs(until))));
        }
    };
    if let Some(r) = &q.created {
        range("created_at", r, &mut c);
    }
    if let Some(r) = &q.last_used {
        c.push("last_used_at IS NOT NULL".to_owned());
        range("last_used_at", r, &mut c);
    }
    if let Some(names) = &q.names {
        let v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        c.push(format!("name = ANY({})", st.arg(v)));
    }
    if let Some(expiries) = &q.expires_at {
        let never = expiries.iter().any(|e| e.is_never());
        let at: Vec<i64> = expiries.iter().filter_map(|e| e.unix()).collect();
        c.push(any_or_null(st, "expires_at", never, at));
    }
    if let Some(instants) = &q.created_at {
        let at: Vec<i64> = instants.iter().filter_map(|t| exact_secs(*t)).collect();
        c.push(any_or_null(st, "created_at", false, at));
    }
    if let Some(instants) = &q.last_used_at {
        let never = instants.iter().any(Option::is_none);
        let at: Vec<i64> = instants
            .iter()
            .flatten()
            .filter_map(|t| exact_secs(*t))
            .collect();
        c.push(any_or_null(st, "last_used_at", never, at));
    }
    if c.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", c.join(" AND "))
    }
}

fn order_clause(q: &Query) -> String {
    let first = q.sort.unwrap_or((SortField::Id, SortOrder::Ascending));
    let keys: Vec<String> = std::iter::once(first)
        .chain(q.then_sort.iter().copied())
        .map(|(field, order)| sort_key(field, order))
        .collect();
    format!(" ORDER BY {}, id ASC", keys.join(", "))
}

fn sort_key(field: SortField, order: SortOrder) -> String {
    let asc = order == SortOrder::Ascending;
    let dir = if asc { "ASC" } else { "DESC" };
    match field {
        SortField::Id => format!("id {dir}"),
        // Byte order, as `TokenName`'s `Ord`, whatever the database's collation.
        SortField::Name => format!("name COLLATE \"C\" {dir}"),
        SortField::Created => format!("created_at {dir}"),
        // Never-expiring tokens sort after all others (ascending).
        SortField::Expiry => {
            format!(
                "expires_at {dir} NULLS {}",
                if asc { "LAST" } else { "FIRST" }
            )
        }
        // Never-used tokens sort before all others (ascending).
        SortField::LastUsed => {
            format!(
                "last_used_at {dir} NULLS {}",
                if asc { "FIRST" } else { "LAST" }
            )
        }
        SortField::Status => format!("status {dir}"),
        // Never-expiring tokens sort before all others (ascending), as Zabbix's 0 does.
        SortField::ExpiryNeverFirst => {
            format!(
                "expires_at {dir} NULLS {}",
                if asc { "FIRST" } else { "LAST" }
            )
        }
    }
}

/// `SELECT` of the tokens `q` matches (before any Rust-side text filter), sorted; limited in
/// SQL only when no Rust-side filter follows.
pub(super) fn select(q: &Query, now: OffsetDateTime) -> Statement {
    let mut st = Statement::default();
    let w = where_clause(&mut st, q, now);
    let mut sql = format!(
        "SELECT {} FROM api_tokens{w}{}",
        columns(""),
        order_clause(q)
    );
    if let Some(n) = q.limit
        && !needs_rust_filter(q)
    {
        sql.push_str(&format!(
            " LIMIT {}",
            st.arg(i64::try_from(n).unwrap_or(i64::MAX))
        ));
    }
    st.sql = sql;
    st
}

/// `SELECT count(*)` of the tokens `q` matches (only without a Rust-side filter).
pub(super) fn count(q: &Query, now: OffsetDateTime) -> Statement {
    let mut st = Statement::default();
    let w = where_clause(&mut st, q, now);
    st.sql = format!("SELECT count(*) FROM api_tokens{w}");
    st
}
