//! What the two SQL stores ([`sqlite`](super::sqlite) and [`postgres`](super::postgres))
//! share: how a token's values are written to columns and read back, the parsed-lists cache of
//! their lookups by hash, and how a [`Query`] becomes a `WHERE` clause and an `ORDER BY`.
//!
//! Both keep a token in the same columns with the same values (ids as `bigint`/`INTEGER`,
//! times as Unix seconds, hashes as 32 bytes, key ids as 8, permissions and allowlists as
//! normalised space-separated text). Where the dialects differ, a [`Dialect`] says how:
//!
//! | | SQLite | PostgreSQL |
//! | --- | --- | --- |
//! | a parameter | `?N` | `$N` |
//! | a list of values | one JSON text: `c IN (SELECT value FROM json_each(?N))` | one array: `c = ANY($N)` |
//! | names in byte order | `COLLATE BINARY` | `COLLATE "C"` |
//! | text search (`name_contains`, [`TextSearch`](super::TextSearch)) | a registered Rust function | in Rust, after the SQL |
//!
//! Text search is each store's own: both must agree exactly with [`Query::matches`], and
//! only Rust's lower-casing does.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::{Query, SortField, SortOrder, TimeRange};
use crate::allowlist::IpAllowlist;
use crate::error::StoreError;
use crate::keys::HashScheme;
use crate::legacy::{ImportOrigin, LegacyScheme};
use crate::permission::PermissionSet;
use crate::secret::{KeyId, SecretHash};
use crate::token::{Status, TokenId, TokenName, UserId, from_unix};

/// A value read back that the crate's types refuse: the row was written by something other
/// than this crate, or the schema's checks were dropped.
#[derive(Debug, thiserror::Error)]
#[error("corrupt row in api_tokens: {0}")]
pub(super) struct CorruptRow(pub(super) String);

/// A [`CorruptRow`] as a store error.
pub(super) fn corrupt(what: impl fmt::Display) -> StoreError {
    StoreError::backend(CorruptRow(what.to_string()))
}

/// The row key of an id; `None` for ids no row can have (beyond a signed 64-bit integer),
/// which are simply not found.
pub(super) fn id_key(id: TokenId) -> Option<i64> {
    i64::try_from(id.get()).ok()
}

/// The id a row key stands for.
pub(super) fn id_of(key: i64) -> Result<TokenId, StoreError> {
    u64::try_from(key)
        .map(TokenId::new)
        .map_err(|_| corrupt(format!("id {key}")))
}

/// An instant stored as Unix seconds.
pub(super) fn time_of(secs: i64) -> Result<OffsetDateTime, StoreError> {
    from_unix(secs).ok_or_else(|| corrupt(format!("time {secs}")))
}

/// A column of exactly `N` bytes (or NULL) as the value `make` builds from them; `what` names
/// the value when the length is wrong.
fn bytes_of<const N: usize, T>(
    bytes: Option<Vec<u8>>,
    make: fn([u8; N]) -> T,
    what: &str,
) -> Result<Option<T>, StoreError> {
    bytes
        .map(|b| {
            <[u8; N]>::try_from(b.as_slice())
                .map(make)
                .map_err(|_| corrupt(format!("{what} is not {N} bytes")))
        })
        .transpose()
}

/// A hash column.
pub(super) fn hash_of(bytes: Option<Vec<u8>>) -> Result<Option<SecretHash>, StoreError> {
    bytes_of(bytes, SecretHash::from_bytes, "secret hash")
}

/// The `imported_from` column.
pub(super) fn origin_of(bytes: Option<Vec<u8>>) -> Result<Option<ImportOrigin>, StoreError> {
    bytes_of(bytes, ImportOrigin::from_bytes, "import origin")
}

/// The scheme in a row's key id and legacy columns (`*_key_id`, `*_legacy`); a bad value is
/// refused with what is wrong, in the words of the stores' record rules.
pub(super) fn scheme_of(
    key: Option<Vec<u8>>,
    legacy: Option<String>,
) -> Result<HashScheme, &'static str> {
    let key = key
        .map(|k| {
            <[u8; 8]>::try_from(k.as_slice())
                .map(KeyId::from_bytes)
                .map_err(|_| "a key id that is not 8 bytes")
        })
        .transpose()?;
    let legacy = legacy
        .map(|l| LegacyScheme::from_name(&l).ok_or("an unknown legacy hash scheme"))
        .transpose()?;
    match (key, legacy) {
        (None, None) => Ok(HashScheme::UNRECORDED),
        (None, Some(_)) => Err("a legacy hash without the key id it was made under"),
        (Some(k), None) => Ok(HashScheme::keyed(k)),
        (Some(k), Some(l)) => Ok(HashScheme::legacy(l, k)),
    }
}

/// The key id column of a hash made as `s` says (NULL for no hash, or an unrecorded key).
pub(super) fn key_column(s: Option<HashScheme>) -> Option<Vec<u8>> {
    s.and_then(|s| s.key()).map(|k| k.as_bytes().to_vec())
}

/// The legacy column of a hash made as `s` says (NULL for a hash of this crate's own).
pub(super) fn legacy_column(s: Option<HashScheme>) -> Option<&'static str> {
    s.and_then(|s| s.legacy_scheme()).map(LegacyScheme::as_str)
}

/// The permissions as stored: canonical names, space-separated.
pub(super) fn permissions_text(p: &PermissionSet) -> String {
    p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(" ")
}

/// The allowlist as stored: normalised entries, space-separated.
pub(super) fn allowlist_text(list: &IpAllowlist) -> String {
    list.entry_strings().collect::<Vec<_>>().join(" ")
}

/// How many tokens' parsed lists a [`RuleCache`] keeps.
const RULE_CACHE: usize = 4_096;

/// The parsed permissions and allowlists of the tokens a store looked up by hash, so that
/// authenticating a token of many permissions parses them once per change, not per request.
///
/// An entry serves a row only with the same id and `stamp`: whatever the store knows moves
/// with every change of the row (its revision; in PostgreSQL also its change clock value,
/// which a hand-made `UPDATE` moves too), so a narrowed list is never served from it.
pub(super) struct RuleCache<S>(Mutex<HashMap<TokenId, (S, PermissionSet, IpAllowlist)>>);

impl<S> Default for RuleCache<S> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<S: PartialEq> RuleCache<S> {
    /// The lists of the row of `id` at `stamp`: cached, or made by `parse` and kept.
    ///
    /// # Errors
    /// What `parse` returns.
    pub(super) fn lists(
        &self,
        id: TokenId,
        stamp: S,
        parse: impl FnOnce() -> Result<(PermissionSet, IpAllowlist), StoreError>,
    ) -> Result<(PermissionSet, IpAllowlist), StoreError> {
        let lock = || self.0.lock().unwrap_or_else(|p| p.into_inner());
        let cached = lock()
            .get(&id)
            .filter(|(s, ..)| *s == stamp)
            .map(|(_, p, a)| (p.clone(), a.clone()));
        if let Some(lists) = cached {
            return Ok(lists);
        }
        let (p, a) = parse()?;
        let mut cache = lock();
        if cache.len() >= RULE_CACHE {
            cache.clear();
        }
        cache.insert(id, (stamp, p.clone(), a.clone()));
        Ok((p, a))
    }

    /// Drops what is kept for `id` (a token deleted or replaced).
    #[cfg(feature = "sqlite")]
    pub(super) fn forget(&self, id: TokenId) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// What differs between the SQL dialects when a [`Query`] is translated (see the table in the
/// [module docs](self)): how a statement takes its parameters, and the collation that orders
/// names byte by byte, as [`TokenName`]'s `Ord` does.
pub(super) trait Dialect {
    /// The collation of byte order.
    const BYTE_ORDER: &'static str;

    /// Adds an integer parameter; returns the text that stands for it.
    fn int(&mut self, v: i64) -> String;

    /// `column` is one of `values` (none: nothing matches), as one parameter.
    fn int_in(&mut self, column: &str, values: impl Iterator<Item = i64>) -> String;

    /// `column` is one of `values` (none: nothing matches), as one parameter.
    fn text_in<'a>(&mut self, column: &str, values: impl Iterator<Item = &'a str>) -> String;
}

/// An instant as the whole seconds a column holds; `None` for an instant with a fraction of a
/// second, which no stored value equals.
fn exact_secs(t: OffsetDateTime) -> Option<i64> {
    (t.nanosecond() == 0).then(|| t.unix_timestamp())
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

/// `[from, until)` over a column of whole seconds.
fn range(d: &mut impl Dialect, c: &mut Vec<String>, column: &str, r: &TimeRange) {
    if let Some(from) = r.from {
        c.push(format!("{column} >= {}", d.int(ceil_secs(from))));
    }
    if let Some(until) = r.until {
        c.push(format!("{column} < {}", d.int(ceil_secs(until))));
    }
}

/// `column` is one of `values`, or (when `null`) also NULL.
fn any_or_null(
    d: &mut impl Dialect,
    column: &str,
    null: bool,
    values: impl Iterator<Item = i64>,
) -> String {
    let any = d.int_in(column, values);
    if null {
        format!("({column} IS NULL OR {any})")
    } else {
        any
    }
}

/// Every filter of `q` but text search, as conditions to join with `AND` ([`where_sql`]),
/// with their parameters added to `d`. `now` resolves [`Query::expiring_within`].
pub(super) fn filters(d: &mut impl Dialect, q: &Query, now: OffsetDateTime) -> Vec<String> {
    let mut c = Vec::new();
    if let Some(ids) = &q.ids {
        c.push(d.int_in("id", ids.iter().filter_map(|id| id_key(*id))));
    }
    if let Some(owners) = &q.owners {
        c.push(d.text_in("owner", owners.iter().map(UserId::as_str)));
    }
    if let Some(creators) = &q.creators {
        c.push(d.text_in("creator", creators.iter().map(UserId::as_str)));
    }
    if let Some(s) = q.status {
        // 0 enabled, 1 disabled: a constant, as the column holds it.
        c.push(format!("status = {}", u8::from(s == Status::Disabled)));
    }
    // Expired at t  <=>  expires_at <= t  <=>  expires_at <= floor(t) (whole seconds).
    if let Some(t) = q.valid_at {
        let t = d.int(t.unix_timestamp());
        c.push(format!("(expires_at IS NULL OR expires_at > {t})"));
    }
    if let Some(t) = q.expired_at {
        c.push(format!("expires_at <= {}", d.int(t.unix_timestamp())));
    }
    if let Some(within) = q.expiring_within {
        let from = d.int(now.unix_timestamp());
        let until = d.int(now.saturating_add(within).unix_timestamp());
        c.push(format!("expires_at > {from} AND expires_at <= {until}"));
    }
    if let Some(r) = &q.created {
        range(d, &mut c, "created_at", r);
    }
    if let Some(r) = &q.last_used {
        c.push("last_used_at IS NOT NULL".to_owned());
        range(d, &mut c, "last_used_at", r);
    }
    if let Some(names) = &q.names {
        c.push(d.text_in("name", names.iter().map(TokenName::as_str)));
    }
    if let Some(expiries) = &q.expires_at {
        let never = expiries.iter().any(|e| e.is_never());
        let at = expiries.iter().filter_map(|e| e.unix());
        c.push(any_or_null(d, "expires_at", never, at));
    }
    if let Some(instants) = &q.created_at {
        let at = instants.iter().filter_map(|t| exact_secs(*t));
        c.push(d.int_in("created_at", at));
    }
    if let Some(instants) = &q.last_used_at {
        let never = instants.iter().any(Option::is_none);
        let at = instants.iter().flatten().filter_map(|t| exact_secs(*t));
        c.push(any_or_null(d, "last_used_at", never, at));
    }
    c
}

/// ` WHERE a AND b …`, or nothing for no condition.
pub(super) fn where_sql(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// ` LIMIT n`, `n` as a parameter.
pub(super) fn limit_sql(d: &mut impl Dialect, n: usize) -> String {
    format!(" LIMIT {}", d.int(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// ` ORDER BY …` of `q`'s sort keys (by id when it has none), ties broken by id ascending.
pub(super) fn order_sql<D: Dialect>(q: &Query) -> String {
    let first = q.sort.unwrap_or((SortField::Id, SortOrder::Ascending));
    let keys: Vec<String> = std::iter::once(first)
        .chain(q.then_sort.iter().copied())
        .map(|(field, order)| sort_key(field, order, D::BYTE_ORDER))
        .collect();
    format!(" ORDER BY {}, id ASC", keys.join(", "))
}

/// One sort key, with where NULLs go said outright (the dialects' defaults differ).
fn sort_key(field: SortField, order: SortOrder, byte_order: &str) -> String {
    let asc = order == SortOrder::Ascending;
    let dir = if asc { "ASC" } else { "DESC" };
    // NULLs first when ascending (and so last when descending), or the other way round.
    let nulls = |first_when_ascending: bool| {
        if first_when_ascending == asc {
            "NULLS FIRST"
        } else {
            "NULLS LAST"
        }
    };
    match field {
        SortField::Id => format!("id {dir}"),
        SortField::Name => format!("name COLLATE {byte_order} {dir}"),
        SortField::Created => format!("created_at {dir}"),
        // Never-expiring tokens sort after all others (ascending).
        SortField::Expiry => format!("expires_at {dir} {}", nulls(false)),
        // Never-used tokens sort before all others (ascending).
        SortField::LastUsed => format!("last_used_at {dir} {}", nulls(true)),
        SortField::Status => format!("status {dir}"),
        // Never-expiring tokens sort before all others (ascending), as Zabbix's 0 does.
        SortField::ExpiryNeverFirst => format!("expires_at {dir} {}", nulls(true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_compare_with_whole_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(100).unwrap();
        let later = t + time::Duration::milliseconds(1);
        assert_eq!((ceil_secs(t), ceil_secs(later)), (100, 101));
        assert_eq!((exact_secs(t), exact_secs(later)), (Some(100), None));
    }

    #[test]
    fn columns_of_the_wrong_length_are_refused() {
        assert!(hash_of(Some(vec![1; 31])).is_err());
        assert_eq!(
            hash_of(Some(vec![1; 32])).unwrap(),
            Some(SecretHash::from_bytes([1; 32]))
        );
        assert_eq!(origin_of(None).unwrap(), None);
        assert_eq!(
            scheme_of(Some(vec![1; 7]), None),
            Err("a key id that is not 8 bytes")
        );
        assert_eq!(
            scheme_of(None, Some("sha256".into())),
            Err("a legacy hash without the key id it was made under")
        );
        let k = KeyId::from_bytes([2; 8]);
        let s = HashScheme::legacy(LegacyScheme::Sha256, k);
        assert_eq!(
            scheme_of(key_column(Some(s)), legacy_column(Some(s)).map(Into::into)),
            Ok(s)
        );
    }
}
