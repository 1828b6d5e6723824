//! [`SqliteStore`]: a [`TokenStore`] over SQLite, and the worked example for hosts that keep
//! tokens in SQL.
//!
//! **Needs the crate feature `sqlite`** (`api-tokens = { version = "…", features = ["sqlite"] }`;
//! SQLite is bundled, no system library is needed).
//!
//! * One table, `api_tokens`, with `UNIQUE(owner, name)` and unique indexes on the current and
//!   previous secret hashes; a one-row table `api_token_seq` hands out ids.
//! * Every batch is one transaction. SQLite checks `UNIQUE` per statement, so a batch first
//!   deletes the rows it replaces or removes and then inserts the new versions: renames that
//!   swap two names in one batch work, and a failure anywhere rolls everything back.
//! * `Query` is translated to SQL (filters, sort, limit); name and description search call a
//!   registered Rust function so matching agrees exactly with [`Query::matches`].
//! * Last use is written at most once per token per [`SqliteStore::with_touch_interval`]
//!   (default 60 s); later uses in between wait in memory and are written before any read, by
//!   [`SqliteStore::flush`], and on drop.
//!
//! All access goes through one connection behind a mutex, so calls are serialised; a host that
//! needs parallel reads opens several stores on one file (WAL mode is on for files).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params, params_from_iter};
use time::{Duration, OffsetDateTime};

use super::{
    Candidate, Change, Matched, Query, SortField, SortOrder, TextSearch, TimeRange, TokenStore,
};
use crate::allowlist::IpAllowlist;
use crate::error::StoreError;
use crate::permission::PermissionSet;
use crate::secret::SecretHash;
use crate::token::{
    Expiry, LastUse, PreviousSecret, SecretState, Status, Token, TokenId, TokenName, UserId,
    from_unix,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_tokens (
    id                   INTEGER PRIMARY KEY,
    owner                TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    description          TEXT    NOT NULL,
    creator              TEXT    NOT NULL,
    status               INTEGER NOT NULL,  -- 0 enabled, 1 disabled (as in Zabbix)
    created_at           INTEGER NOT NULL,  -- Unix seconds
    expires_at           INTEGER,           -- NULL: never
    permissions          TEXT    NOT NULL,  -- space-separated
    allowlist            TEXT    NOT NULL,  -- space-separated, normalised
    last_used_at         INTEGER,
    last_used_ip         TEXT,
    secret_hash          BLOB,              -- 32 bytes; NULL until generated
    generated_at         INTEGER,
    previous_hash        BLOB,
    previous_valid_until INTEGER,
    revision             INTEGER NOT NULL,
    UNIQUE (owner, name)
);
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_secret_hash ON api_tokens (secret_hash);
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_previous_hash ON api_tokens (previous_hash);
CREATE TABLE IF NOT EXISTS api_token_seq (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    next INTEGER NOT NULL
);
INSERT OR IGNORE INTO api_token_seq (one, next) VALUES (1, 1);
";

const COLUMNS: &str = "id, owner, name, description, creator, status, created_at, expires_at, \
    permissions, allowlist, last_used_at, last_used_ip, secret_hash, generated_at, \
    previous_hash, previous_valid_until, revision";

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(e)
}

/// A value read back from the database that the crate's types refuse: the database was
/// changed by something other than this store.
#[derive(Debug, thiserror::Error)]
#[error("corrupt row in api_tokens: {0}")]
struct CorruptRow(String);

fn corrupt(what: impl fmt::Display) -> StoreError {
    backend(CorruptRow(what.to_string()))
}

/// Last uses waiting to be written, and when each token's was last written.
#[derive(Default)]
struct Touches {
    written: HashMap<TokenId, i64>,
    pending: HashMap<TokenId, LastUse>,
}

/// A [`TokenStore`] over SQLite. See the [module docs](self) for the schema and behaviour.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use api_tokens::{Actor, NewToken, RequestContext, Tokens, UserId, store::sqlite::SqliteStore};
/// let tokens = Tokens::new(SqliteStore::open_in_memory()?);
/// let ci = NewToken::new("ci".parse()?).permissions("deploy.*".parse()?);
/// let issued = tokens.issue(&Actor::user(UserId::from(7)), ci)?;
/// assert!(tokens.authenticate(issued.secret.expose(), &RequestContext::unknown_address()).is_ok());
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteStore {
    conn: Mutex<Connection>,
    touches: Mutex<Touches>,
    touch_interval: i64,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("touch_interval_seconds", &self.touch_interval)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) a database file, in WAL mode.
    ///
    /// # Errors
    /// The file cannot be opened or the schema cannot be created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        Self::with_connection(conn)
    }

    /// A private in-memory database (gone when the store is dropped).
    ///
    /// # Errors
    /// The schema cannot be created.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory().map_err(backend)?)
    }

    /// Uses a connection the host opened (its own pragmas, encryption, …); creates the schema
    /// if missing.
    ///
    /// # Errors
    /// The schema cannot be created.
    pub fn with_connection(conn: Connection) -> Result<Self, StoreError> {
        conn.execute_batch(SCHEMA).map_err(backend)?;
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
        .map_err(backend)?;
        Ok(Self {
            conn: Mutex::new(conn),
            touches: Mutex::new(Touches::default()),
            touch_interval: 60,
        })
    }

    /// Writes a token's last use at most once per `interval` (zero: on every use).
    #[must_use]
    pub fn with_touch_interval(mut self, interval: Duration) -> Self {
        self.touch_interval = interval.whole_seconds().max(0);
        self
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touches(&self) -> MutexGuard<'_, Touches> {
        self.touches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes every pending last use now.
    ///
    /// # Errors
    /// Backend failures.
    pub fn flush(&self) -> Result<(), StoreError> {
        let conn = self.conn();
        self.flush_with(&conn)
    }

    fn flush_with(&self, conn: &Connection) -> Result<(), StoreError> {
        let pending: Vec<(TokenId, LastUse)> = self.touches().pending.drain().collect();
        for (id, used) in pending {
            write_last_use(conn, id, used)?;
            self.touches().written.insert(id, used.at.unix_timestamp());
        }
        Ok(())
    }

    fn touch(&self, conn: &Connection, id: TokenId, used: LastUse) -> Result<(), StoreError> {
        let at = used.at.unix_timestamp();
        {
            let mut t = self.touches();
            if let Some(&w) = t.written.get(&id)
                && at < w.saturating_add(self.touch_interval)
            {
                let keep = t.pending.get(&id).is_some_and(|p| p.at > used.at);
                if !keep {
                    t.pending.insert(id, used);
                }
                return Ok(());
            }
        }
        write_last_use(conn, id, used)?;
        let mut t = self.touches();
        t.written.insert(id, at);
        t.pending.remove(&id);
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Best effort: a failure here has nowhere to go, and loses only last-use times.
        let _ = self.flush();
    }
}

fn write_last_use(conn: &Connection, id: TokenId, used: LastUse) -> Result<(), StoreError> {
    let at = used.at.unix_timestamp();
    conn.execute(
        "UPDATE api_tokens SET last_used_at = ?1, last_used_ip = ?2
         WHERE id = ?3 AND (last_used_at IS NULL OR last_used_at <= ?1)",
        params![at, used.ip.map(|ip| ip.to_string()), id_sql(id)?],
    )
    .map_err(backend)?;
    Ok(())
}

fn id_sql(id: TokenId) -> Result<i64, StoreError> {
    id_key(id).ok_or_else(|| corrupt(format!("token id {id} beyond SQLite's range")))
}

/// The row key of an id; `None` for ids no row can have (beyond `i64`), which are simply
/// not found.
fn id_key(id: TokenId) -> Option<i64> {
    i64::try_from(id.get()).ok()
}

fn time_of(secs: i64) -> Result<OffsetDateTime, StoreError> {
    from_unix(secs).ok_or_else(|| corrupt(format!("time {secs}")))
}

fn hash_of(bytes: Option<Vec<u8>>) -> Result<Option<SecretHash>, StoreError> {
    bytes
        .map(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .map(SecretHash::from_bytes)
                .map_err(|_| corrupt("secret hash is not 32 bytes"))
        })
        .transpose()
}

fn join<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
}

/// The allowlist as stored: normalised entries, space-separated.
fn allowlist_text(list: &IpAllowlist) -> String {
    list.entry_strings().collect::<Vec<_>>().join(" ")
}

fn token_of(row: &Row<'_>) -> Result<Token, StoreError> {
    let get_err = |e: rusqlite::Error| backend(e);
    let id: i64 = row.get(0).map_err(get_err)?;
    let owner: String = row.get(1).map_err(get_err)?;
    let name: String = row.get(2).map_err(get_err)?;
    let status: i64 = row.get(5).map_err(get_err)?;
    let expires_at: Option<i64> = row.get(7).map_err(get_err)?;
    let permissions: String = row.get(8).map_err(get_err)?;
    let allowlist: String = row.get(9).map_err(get_err)?;
    let last_used_at: Option<i64> = row.get(10).map_err(get_err)?;
    let last_used_ip: Option<String> = row.get(11).map_err(get_err)?;
    let hash = hash_of(row.get(12).map_err(get_err)?)?;
    let generated_at: Option<i64> = row.get(13).map_err(get_err)?;
    let previous = hash_of(row.get(14).map_err(get_err)?)?;
    let previous_until: Option<i64> = row.get(15).map_err(get_err)?;
    let revision: i64 = row.get(16).map_err(get_err)?;
    let secret = match hash {
        None => None,
        Some(hash) => Some(SecretState {
            hash,
            generated_at: time_of(generated_at.unwrap_or_default())?,
            previous: match (previous, previous_until) {
                (Some(hash), Some(until)) => Some(PreviousSecret {
                    hash,
                    valid_until: time_of(until)?,
                }),
                _ => None,
            },
        }),
    };
    Ok(Token {
        id: TokenId::new(u64::try_from(id).map_err(|_| corrupt(format!("id {id}")))?),
        name: TokenName::new(&name).map_err(corrupt)?,
        description: row.get(3).map_err(get_err)?,
        owner: UserId::new(&owner).map_err(corrupt)?,
        creator: UserId::new(&row.get::<_, String>(4).map_err(get_err)?).map_err(corrupt)?,
        status: if status == 0 {
            Status::Enabled
        } else {
            Status::Disabled
        },
        created_at: time_of(row.get(6).map_err(get_err)?)?,
        expiry: match expires_at {
            None => Expiry::NEVER,
            Some(s) => Expiry::from_unix(s).map_err(corrupt)?,
        },
        permissions: permissions.parse::<PermissionSet>().map_err(corrupt)?,
        allowlist: allowlist.parse::<IpAllowlist>().map_err(corrupt)?,
        last_use: match last_used_at {
            None => None,
            Some(at) => Some(LastUse {
                at: time_of(at)?,
                ip: last_used_ip.and_then(|ip| ip.parse().ok()),
            }),
        },
        secret,
        revision: u32::try_from(revision).map_err(|_| corrupt(format!("revision {revision}")))?,
    })
}

/// The first whole second at or after `t`: for comparing integer seconds with an instant.
fn ceil_secs(t: OffsetDateTime) -> i64 {
    let s = t.unix_timestamp();
    if t.nanosecond() > 0 { s + 1 } else { s }
}

/// A SQL parameter.
type Arg = Box<dyn ToSql>;

/// A `WHERE` clause being built: conditions joined by `AND`, and their parameters in order.
#[derive(Default)]
struct Where {
    sql: Vec<String>,
    args: Vec<Arg>,
}

impl Where {
    fn push(&mut self, clause: impl Into<String>, args: impl IntoIterator<Item = Arg>) {
        self.sql.push(clause.into());
        self.args.extend(args);
    }

    /// `column IN (…)`; an empty list matches nothing, as in [`Query::matches`].
    fn one_of(&mut self, column: &str, values: Vec<Arg>) {
        if values.is_empty() {
            self.push("0", []);
        } else {
            let marks = vec!["?"; values.len()].join(", ");
            self.push(format!("{column} IN ({marks})"), values);
        }
    }

    /// `[from, until)` over a column of whole seconds.
    fn range(&mut self, column: &str, r: &TimeRange) {
        if let Some(from) = r.from {
            self.push(format!("{column} >= ?"), [Box::new(ceil_secs(from)) as Arg]);
        }
        if let Some(until) = r.until {
            self.push(format!("{column} < ?"), [Box::new(ceil_secs(until)) as Arg]);
        }
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        }
    }
}

fn arg(v: impl ToSql + 'static) -> Arg {
    Box::new(v)
}

/// `query` as a `WHERE` clause and its parameters.
fn where_clause(q: &Query, now: OffsetDateTime) -> Where {
    let mut w = Where::default();
    if let Some(ids) = &q.ids {
        w.one_of(
            "id",
            ids.iter().filter_map(|id| id_key(*id)).map(arg).collect(),
        );
    }
    if let Some(owners) = &q.owners {
        w.one_of("owner", owners.iter().map(|o| arg(o.to_string())).collect());
    }
    if let Some(creators) = &q.creators {
        w.one_of(
            "creator",
            creators.iter().map(|c| arg(c.to_string())).collect(),
        );
    }
    if let Some(s) = q.status {
        w.push("status = ?", [arg(i64::from(s == Status::Disabled))]);
    }
    if let Some(t) = &q.name_contains {
        w.push("api_tokens_contains(name, ?)", [arg(t.clone())]);
    }
    if let Some(t) = &q.description_contains {
        w.push("api_tokens_contains(description, ?)", [arg(t.clone())]);
    }
    // Expired at t  <=>  expires_at <= t  <=>  expires_at <= floor(t) (whole seconds).
    if let Some(t) = q.valid_at {
        w.push(
            "(expires_at IS NULL OR expires_at > ?)",
            [arg(t.unix_timestamp())],
        );
    }
    if let Some(t) = q.expired_at {
        w.push("expires_at <= ?", [arg(t.unix_timestamp())]);
    }
    if let Some(d) = q.expiring_within {
        w.push(
            "expires_at > ? AND expires_at <= ?",
            [
                arg(now.unix_timestamp()),
                arg(now.saturating_add(d).unix_timestamp()),
            ],
        );
    }
    if let Some(r) = &q.created {
        w.range("created_at", r);
    }
    if let Some(r) = &q.last_used {
        w.push("last_used_at IS NOT NULL", []);
        w.range("last_used_at", r);
    }
    exact_filters(q, &mut w);
    w
}

/// An instant as the whole seconds a column holds; `None` for an instant with a fraction of a
/// second, which no stored value equals.
fn exact_secs(t: OffsetDateTime) -> Option<i64> {
    (t.nanosecond() == 0).then(|| t.unix_timestamp())
}

/// The exact-match filters and the search of `q`.
fn exact_filters(q: &Query, w: &mut Where) {
    if let Some(names) = &q.names {
        w.one_of("name", names.iter().map(|n| arg(n.to_string())).collect());
    }
    if let Some(expiries) = &q.expires_at {
        let never = expiries.iter().any(|e| e.is_never());
        let at: Vec<Arg> = expiries.iter().filter_map(|e| e.unix()).map(arg).collect();
        or_null(w, "expires_at", never, at);
    }
    if let Some(instants) = &q.created_at {
        w.one_of(
            "created_at",
            instants
                .iter()
                .filter_map(|t| exact_secs(*t))
                .map(arg)
                .collect(),
        );
    }
    if let Some(instants) = &q.last_used_at {
        let never = instants.iter().any(Option::is_none);
        let at: Vec<Arg> = instants
            .iter()
            .flatten()
            .filter_map(|t| exact_secs(*t))
            .map(arg)
            .collect();
        or_null(w, "last_used_at", never, at);
    }
    if let Some(s) = &q.search
        && !s.is_empty()
    {
        let not = if s.is_exclude() { "NOT " } else { "" };
        let glue = if s.is_any() { " OR " } else { " AND " };
        let mut parts = Vec::new();
        let mut args = Vec::new();
        for (on_description, pattern) in s.conditions() {
            let column = if on_description {
                "description"
            } else {
                "name"
            };
            parts.push(format!("{not}api_tokens_search({column}, ?, ?, ?)"));
            args.extend([
                arg(pattern.to_owned()),
                arg(s.is_prefix()),
                arg(s.has_wildcards()),
            ]);
        }
        w.push(format!("({})", parts.join(glue)), args);
    }
}

/// `column IN (…) OR column IS NULL` (the `NULL` arm when `null` is set); nothing matches when
/// both are empty.
fn or_null(w: &mut Where, column: &str, null: bool, values: Vec<Arg>) {
    match (null, values.is_empty()) {
        (false, _) => w.one_of(column, values),
        (true, true) => w.push(format!("{column} IS NULL"), []),
        (true, false) => {
            let marks = vec!["?"; values.len()].join(", ");
            w.push(
                format!("({column} IS NULL OR {column} IN ({marks}))"),
                values,
            );
        }
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
    let dir = match order {
        SortOrder::Ascending => "ASC",
        SortOrder::Descending => "DESC",
    };
    match field {
        SortField::Id => format!("id {dir}"),
        SortField::Name => format!("name {dir}"),
        SortField::Created => format!("created_at {dir}"),
        // Never-expiring tokens sort after all others (ascending).
        SortField::Expiry => format!("expires_at IS NULL {dir}, expires_at {dir}"),
        // Never-used tokens sort before all others (ascending): NULLs first, as SQLite does.
        SortField::LastUsed => format!("last_used_at {dir}"),
        SortField::Status => format!("status {dir}"),
        // Never-expiring tokens (NULL) sort before all others (ascending), as SQLite does.
        SortField::ExpiryNeverFirst => format!("expires_at {dir}"),
    }
}

fn is_unique_violation(e: &rusqlite::Error, columns: &str) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(msg))
        if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(columns))
}

fn insert_row(conn: &Connection, t: &Token) -> Result<(), StoreError> {
    let secret = t.secret;
    let r = conn.execute(
        &format!("INSERT INTO api_tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
        params![
            id_sql(t.id)?,
            t.owner.as_str(),
            t.name.as_str(),
            t.description,
            t.creator.as_str(),
            i64::from(t.status == Status::Disabled),
            t.created_at.unix_timestamp(),
            t.expiry.unix(),
            join(t.permissions.iter()),
            allowlist_text(&t.allowlist),
            t.last_use.map(|u| u.at.unix_timestamp()),
            t.last_use.and_then(|u| u.ip).map(|ip| ip.to_string()),
            secret.map(|s| s.hash.as_bytes().to_vec()),
            secret.map(|s| s.generated_at.unix_timestamp()),
            secret.and_then(|s| s.previous).map(|p| p.hash.as_bytes().to_vec()),
            secret.and_then(|s| s.previous).map(|p| p.valid_until.unix_timestamp()),
            i64::from(t.revision),
        ],
    );
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e, "api_tokens.owner, api_tokens.name") => {
            Err(StoreError::NameTaken {
                owner: t.owner.clone(),
                name: t.name.to_string(),
            })
        }
        Err(e) if is_unique_violation(&e, "api_tokens.id") => Err(StoreError::IdTaken(t.id)),
        Err(e) if is_unique_violation(&e, "hash") => Err(StoreError::HashTaken),
        Err(e) => Err(backend(e)),
    }
}

/// The revision and last use of a stored token, if it exists.
fn current_state(
    conn: &Connection,
    id: TokenId,
) -> Result<Option<(u32, Option<LastUse>)>, StoreError> {
    let Some(key) = id_key(id) else {
        return Ok(None);
    };
    conn.query_row(
        "SELECT revision, last_used_at, last_used_ip FROM api_tokens WHERE id = ?1",
        params![key],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        },
    )
    .optional()
    .map_err(backend)?
    .map(|(rev, at, ip)| {
        let last = at.map(time_of).transpose()?.map(|at| LastUse {
            at,
            ip: ip.and_then(|ip| ip.parse().ok()),
        });
        Ok((u32::try_from(rev).map_err(|_| corrupt("revision"))?, last))
    })
    .transpose()
}

impl TokenStore for SqliteStore {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        let n = i64::try_from(n).map_err(|_| StoreError::IdsExhausted)?;
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(backend)?;
        let start: i64 = tx
            .query_row("SELECT next FROM api_token_seq WHERE one = 1", [], |r| {
                r.get(0)
            })
            .map_err(backend)?;
        let end = start.checked_add(n).ok_or(StoreError::IdsExhausted)?;
        tx.execute(
            "UPDATE api_token_seq SET next = ?1 WHERE one = 1",
            params![end],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        (start..end)
            .map(|i| {
                u64::try_from(i)
                    .map(TokenId::new)
                    .map_err(|_| corrupt("negative id sequence"))
            })
            .collect()
    }

    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        self.flush_with(&conn)?;
        let tx = conn.transaction().map_err(backend)?;
        let mut seen = HashSet::new();
        let mut rows: Vec<Token> = Vec::new();
        // First every delete (of removed and replaced rows), then every insert.
        for c in &changes {
            let id = match c {
                Change::Insert(t) | Change::Replace(t) => t.id,
                Change::Delete(id) => *id,
            };
            if !seen.insert(id) {
                return Err(StoreError::IdTaken(id));
            }
            match c {
                Change::Insert(t) => {
                    if current_state(&tx, id)?.is_some() {
                        return Err(StoreError::IdTaken(id));
                    }
                    rows.push(t.clone());
                }
                Change::Replace(t) => {
                    let (revision, last) =
                        current_state(&tx, id)?.ok_or(StoreError::NotFound(id))?;
                    if revision != t.revision {
                        return Err(StoreError::Conflict(id));
                    }
                    let mut t = t.clone();
                    t.revision = t.revision.wrapping_add(1);
                    // An authentication may have happened since the caller read the token.
                    if last.map(|u| u.at) > t.last_use.map(|u| u.at) {
                        t.last_use = last;
                    }
                    tx.execute("DELETE FROM api_tokens WHERE id = ?1", params![id_sql(id)?])
                        .map_err(backend)?;
                    rows.push(t);
                }
                Change::Delete(id) => {
                    let key = id_key(*id).ok_or(StoreError::NotFound(*id))?;
                    let n = tx
                        .execute("DELETE FROM api_tokens WHERE id = ?1", params![key])
                        .map_err(backend)?;
                    if n == 0 {
                        return Err(StoreError::NotFound(*id));
                    }
                }
            }
        }
        for t in &rows {
            insert_row(&tx, t)?;
        }
        // A hash may sit in one row's current column and another's previous column.
        for t in &rows {
            for h in t.secret.iter().flat_map(SecretState::hashes) {
                let n: i64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM api_tokens WHERE secret_hash = ?1 OR previous_hash = ?1",
                        params![h.as_bytes().to_vec()],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                if n > 1 {
                    return Err(StoreError::HashTaken);
                }
            }
        }
        if let Some(max) = rows.iter().map(|t| t.id.get()).max() {
            let next = i64::try_from(max)
                .map_err(|_| corrupt("id"))?
                .saturating_add(1);
            tx.execute(
                "UPDATE api_token_seq SET next = max(next, ?1) WHERE one = 1",
                params![next],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        let mut touches = self.touches();
        for t in &rows {
            touches.written.remove(&t.id);
        }
        Ok(())
    }

    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let conn = self.conn();
        self.flush_with(&conn)?;
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1"))
            .map_err(backend)?;
        let mut rows = stmt.query(params![key]).map_err(backend)?;
        match rows.next().map_err(backend)? {
            Some(row) => token_of(row).map(Some),
            None => Ok(None),
        }
    }

    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT id FROM api_tokens WHERE owner = ?1 AND name = ?2",
            params![owner.as_str(), name.as_str()],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(backend)?
        .map(|id| {
            u64::try_from(id)
                .map(TokenId::new)
                .map_err(|_| corrupt("id"))
        })
        .transpose()
    }

    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        let conn = self.conn();
        self.flush_with(&conn)?;
        let mut w = where_clause(query, now);
        let mut sql = format!(
            "SELECT {COLUMNS} FROM api_tokens{}{}",
            w.clause(),
            order_clause(query)
        );
        if let Some(n) = query.limit {
            sql.push_str(" LIMIT ?");
            w.args.push(arg(i64::try_from(n).unwrap_or(i64::MAX)));
        }
        let mut stmt = conn.prepare(&sql).map_err(backend)?;
        let mut rows = stmt
            .query(params_from_iter(w.args.iter()))
            .map_err(backend)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            out.push(token_of(row)?);
        }
        Ok(out)
    }

    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        let conn = self.conn();
        self.flush_with(&conn)?;
        let w = where_clause(query, now);
        let n: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM api_tokens{}", w.clause()),
                params_from_iter(w.args.iter()),
                |r| r.get(0),
            )
            .map_err(backend)?;
        usize::try_from(n).map_err(|_| corrupt("count"))
    }

    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError> {
        let conn = self.conn();
        let bytes = hash.as_bytes().to_vec();
        let found = {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM api_tokens WHERE secret_hash = ?1 \
                     UNION ALL SELECT {COLUMNS} FROM api_tokens WHERE previous_hash = ?1 LIMIT 1"
                ))
                .map_err(backend)?;
            let mut rows = stmt.query(params![bytes]).map_err(backend)?;
            match rows.next().map_err(backend)? {
                Some(row) => Some(token_of(row)?),
                None => None,
            }
        };
        let Some(t) = found else {
            return Ok(false);
        };
        let matched = match t.secret {
            Some(s) if s.hash == *hash => Matched::Current,
            Some(SecretState {
                previous: Some(p), ..
            }) => Matched::Previous {
                valid_until: p.valid_until,
            },
            _ => Matched::Current,
        };
        let candidate = Candidate {
            id: t.id,
            name: &t.name,
            owner: &t.owner,
            status: t.status,
            expiry: t.expiry,
            permissions: &t.permissions,
            allowlist: &t.allowlist,
            matched,
        };
        if let Some(used) = check(candidate) {
            self.touch(&conn, t.id, used)?;
        }
        Ok(true)
    }
}
