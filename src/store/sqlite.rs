//! [`SqliteStore`]: a [`TokenStore`] over SQLite, and the worked example for hosts that keep
//! tokens in SQL.
//!
//! **Needs the crate feature `sqlite`** (`api-tokens = { version = "…", features = ["sqlite"] }`;
//! SQLite is bundled, no system library is needed).
//!
//! * One table, `api_tokens`, with `UNIQUE(owner, name)`, unique indexes on the current and
//!   previous secret hashes, and named `CHECK` constraints for every rule a record keeps (a
//!   previous hash has an end time and the reverse, a revoked token is disabled and holds no
//!   hash, …); a one-row table `api_token_seq` hands out ids. `PRAGMA user_version` is the
//!   schema version ([`SCHEMA_VERSION`]); a version-1 database (before the constraints and the
//!   revocation columns) is migrated when opened, and refused at open, naming the row and the
//!   rule, when a row breaks a rule.
//! * Reads fail closed too: every row read is checked against the same rules in Rust, so a row
//!   that breaks one (written with the constraints switched off) is refused with
//!   [`StoreError::Inconsistent`] and its secret denied.
//! * Every batch is one transaction that takes the write lock up front (`BEGIN IMMEDIATE`).
//!   SQLite checks `UNIQUE` per statement, so a batch first deletes the rows it replaces or
//!   removes and then inserts the new versions: renames that swap two names in one batch work,
//!   and a failure anywhere rolls everything back.
//! * `Query` is translated to SQL (filters, sort, limit); list filters travel as one JSON
//!   parameter (`IN (SELECT value FROM json_each(?))`), so they cost O(k log k) whatever their
//!   size; name and description search call a registered Rust function so matching agrees
//!   exactly with [`Query::matches`].
//! * A token's permissions and allowlist are parsed once per revision and kept (up to
//!   4,096 tokens), and the permissions column is the row's last, so authenticating a token of
//!   many permissions reads and parses them only after a change. Change rows only through the
//!   store, or move `revision` on with every change, as the store does.
//! * Last use is bookkeeping, never a reason to wait or to refuse: it is written at most once
//!   per token per [`SqliteStore::with_touch_interval`] (default 60 s), and only if the write
//!   lock is free at that moment. A use that cannot be written yet waits in memory; reads see
//!   it, and it is written by the next write that gets the lock, by [`SqliteStore::flush`],
//!   or on drop.
//! * Writes wait for another connection's write lock at most the busy timeout (default 5 s,
//!   [`SqliteStore::open_with_busy_timeout`], [`SqliteStore::with_busy_timeout`]), then fail
//!   with [`StoreError::Busy`]. Opening a database whose schema is current writes nothing, so it
//!   never waits; creating or migrating the schema waits like any write.
//!
//! All access goes through one connection behind a mutex, so calls are serialised; a host that
//! needs parallel reads opens several stores on one file (WAL mode is on for files).

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration as StdDuration;

use rusqlite::{
    Connection, ErrorCode, OptionalExtension, TransactionBehavior, params, params_from_iter,
};
use time::{Duration, OffsetDateTime};

use super::{Candidate, Change, LimitState, Query, TokenStore, batch_ids};
use crate::error::StoreError;
use crate::keys::{KeyUsage, sort_usage};
use crate::legacy::ImportOrigin;
use crate::secret::SecretHash;
use crate::store::sql::{corrupt, id_key, id_of, scheme_of};
use crate::token::{LastUse, SecretState, Token, TokenId, TokenName, UserId};
use row::{Lists, current_state, id_sql, insert_row, read_token, select_sql};
use touch::{Touches, write_last_uses};

mod limits;
mod row;
mod schema;
mod sql;
mod touch;

pub use schema::SCHEMA_VERSION;

/// How long a write waits for another connection's write lock, unless told otherwise.
pub const DEFAULT_BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(5);

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(e)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// A driver error, or [`StoreError::Busy`] when it is SQLite saying another connection holds
/// the lock (after waiting `waited`).
fn db_error(e: rusqlite::Error, waited: StdDuration) -> StoreError {
    if is_busy(&e) {
        StoreError::Busy { waited }
    } else {
        backend(e)
    }
}

/// A [`TokenStore`] over SQLite. See the [module docs](self) for the schema and behaviour.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use api_tokens::{Actor, NewToken, RequestContext, Tokens, UserId};
/// use api_tokens::store::sqlite::SqliteStore;
/// let tokens = Tokens::new(SqliteStore::open_in_memory()?);
/// let ci = NewToken::new("ci".parse()?).permissions("deploy.*".parse()?);
/// let issued = tokens.issue(&Actor::user(UserId::from(7)), ci)?;
/// assert!(tokens.authenticate(issued.secret.expose(), &RequestContext::unknown_address()).is_ok());
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    touches: Mutex<Touches>,
    /// Parsed permission lists and allowlists, by id and revision.
    lists: Lists,
    touch_interval: i64,
    busy_timeout: StdDuration,
    select: String,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("touch_interval_seconds", &self.touch_interval)
            .field("busy_timeout", &self.busy_timeout)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) a database file, in WAL mode, waiting at most
    /// [`DEFAULT_BUSY_TIMEOUT`] for another connection's write lock.
    ///
    /// # Errors
    /// The file cannot be opened; the schema cannot be created or migrated
    /// ([`StoreError::Busy`] when another connection kept the write lock all along,
    /// [`StoreError::Inconsistent`] when a version-1 row breaks a rule); the schema is newer
    /// than this library ([`StoreError::SchemaTooNew`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_busy_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`SqliteStore::open`], waiting at most `busy_timeout` for another connection's write
    /// lock, now and on every later write.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with_busy_timeout(
        path: impl AsRef<Path>,
        busy_timeout: StdDuration,
    ) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        let err = |e| db_error(e, busy_timeout);
        conn.busy_timeout(busy_timeout).map_err(err)?;
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
                .map_err(err)?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        Self::setup(conn, busy_timeout)
    }

    /// A private in-memory database (gone when the store is dropped).
    ///
    /// # Errors
    /// The schema cannot be created.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(
            Connection::open_in_memory().map_err(backend)?,
            DEFAULT_BUSY_TIMEOUT,
        )
    }

    /// Uses a connection the host opened (its own pragmas, encryption, …); creates or migrates
    /// the schema if needed. The store sets the connection's busy timeout
    /// ([`DEFAULT_BUSY_TIMEOUT`] unless [`SqliteStore::with_busy_timeout`] says otherwise).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn with_connection(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)
            .map_err(|e| db_error(e, DEFAULT_BUSY_TIMEOUT))?;
        Self::setup(conn, DEFAULT_BUSY_TIMEOUT)
    }

    fn setup(mut conn: Connection, busy_timeout: StdDuration) -> Result<Self, StoreError> {
        schema::ensure_schema(&mut conn, busy_timeout)?;
        sql::register_functions(&conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            touches: Mutex::new(Touches::default()),
            lists: Lists::default(),
            touch_interval: 60,
            busy_timeout,
            select: select_sql(),
        })
    }

    /// Writes a token's last use at most once per `interval` (zero: on every use the write
    /// lock allows).
    #[must_use]
    pub fn with_touch_interval(mut self, interval: Duration) -> Self {
        self.touch_interval = interval.whole_seconds().max(0);
        self
    }

    /// Waits at most `timeout` for another connection's write lock before a write fails with
    /// [`StoreError::Busy`]. Authentication never waits: its last-use write is skipped and
    /// kept for later when the lock is taken.
    #[must_use]
    pub fn with_busy_timeout(mut self, timeout: StdDuration) -> Self {
        self.busy_timeout = timeout;
        let _ = self.conn().busy_timeout(timeout);
        self
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touches(&self) -> MutexGuard<'_, Touches> {
        self.touches.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn db(&self, e: rusqlite::Error) -> StoreError {
        db_error(e, self.busy_timeout)
    }

    /// A token read from a row of [`select_sql`] (its lists parsed once per revision).
    fn token_of(&self, row: &rusqlite::Row<'_>) -> Result<Token, StoreError> {
        read_token(row, &self.lists)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Best effort: a failure here has nowhere to go, and loses only last-use times.
        let _ = self.flush();
    }
}

impl TokenStore for SqliteStore {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        let n = i64::try_from(n).map_err(|_| StoreError::IdsExhausted)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        let start: i64 = tx
            .query_row("SELECT next FROM api_token_seq WHERE one = 1", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.db(e))?;
        let end = start.checked_add(n).ok_or(StoreError::IdsExhausted)?;
        tx.execute(
            "UPDATE api_token_seq SET next = ?1 WHERE one = 1",
            params![end],
        )
        .map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))?;
        (start..end)
            .map(|i| {
                u64::try_from(i)
                    .map(TokenId::new)
                    .map_err(|_| corrupt("negative id sequence"))
            })
            .collect()
    }

    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        batch_ids(&changes)?;
        for c in &changes {
            if let Change::Insert(t) | Change::Replace(t) = c {
                t.check_consistent()?;
            }
        }
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        // Last uses waiting for the lock go in with this batch.
        let pending = self.touches().pending();
        write_last_uses(&tx, &pending).map_err(|e| self.db(e))?;
        let mut rows: Vec<Token> = Vec::new();
        let mut gone: Vec<TokenId> = Vec::new();
        let mut old_limits = Vec::new();
        // First every delete (of removed and replaced rows), then every insert.
        for c in &changes {
            let id = c.id();
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
                    old_limits.push((id, limits::read(&tx, id, self.busy_timeout)?));
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
                        .map_err(|e| self.db(e))?;
                    gone.push(id);
                    rows.push(t);
                }
                Change::Delete(id) => {
                    let key = id_key(*id).ok_or(StoreError::NotFound(*id))?;
                    let n = tx
                        .execute("DELETE FROM api_tokens WHERE id = ?1", params![key])
                        .map_err(|e| self.db(e))?;
                    if n == 0 {
                        return Err(StoreError::NotFound(*id));
                    }
                    limits::delete(&tx, *id, self.busy_timeout)?;
                    gone.push(*id);
                }
            }
        }
        for t in &rows {
            insert_row(&tx, t)?;
            let old = old_limits
                .iter_mut()
                .find(|(id, _)| *id == t.id)
                .and_then(|(_, old)| old.take());
            limits::write(&tx, t, old, self.busy_timeout)?;
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
                    .map_err(|e| self.db(e))?;
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
            .map_err(|e| self.db(e))?;
        }
        tx.commit().map_err(|e| self.db(e))?;
        let mut touches = self.touches();
        touches.all_written(pending);
        for t in &rows {
            touches.rewritten(t.id);
        }
        drop(touches);
        for id in gone {
            self.lists.forget(id);
        }
        Ok(())
    }

    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let conn = self.conn();
        self.flush_if_free(&conn);
        let mut stmt = conn
            .prepare_cached(&format!("{} WHERE id = ?1", self.select))
            .map_err(|e| self.db(e))?;
        let mut rows = stmt.query(params![key]).map_err(|e| self.db(e))?;
        match rows.next().map_err(|e| self.db(e))? {
            Some(row) => {
                let mut t = self.token_of(row)?;
                limits::fill(&conn, &mut t, self.busy_timeout)?;
                self.touches().overlay(&mut t);
                Ok(Some(t))
            }
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
        .map_err(|e| self.db(e))?
        .map(id_of)
        .transpose()
    }

    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        let conn = self.conn();
        self.flush_if_free(&conn);
        let (rest, args) = sql::select(query, now);
        let mut stmt = conn
            .prepare(&format!("{}{rest}", self.select))
            .map_err(|e| self.db(e))?;
        let mut rows = stmt
            .query(params_from_iter(args.params()))
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.db(e))? {
            out.push(self.token_of(row)?);
        }
        for t in &mut out {
            limits::fill(&conn, t, self.busy_timeout)?;
        }
        let touches = self.touches();
        for t in &mut out {
            touches.overlay(t);
        }
        Ok(out)
    }

    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        let conn = self.conn();
        self.flush_if_free(&conn);
        let (sql, args) = sql::count(query, now);
        let n: i64 = conn
            .query_row(&sql, params_from_iter(args.params()), |r| r.get(0))
            .map_err(|e| self.db(e))?;
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
                    "{0} WHERE secret_hash = ?1 UNION ALL {0} WHERE previous_hash = ?1 LIMIT 1",
                    self.select
                ))
                .map_err(|e| self.db(e))?;
            let mut rows = stmt.query(params![bytes]).map_err(|e| self.db(e))?;
            match rows.next().map_err(|e| self.db(e))? {
                Some(row) => Some(self.token_of(row)?),
                None => None,
            }
        };
        let Some(mut t) = found else {
            return Ok(false);
        };
        limits::fill(&conn, &mut t, self.busy_timeout)?;
        // The check may charge the token's limits, in the database: not while this call holds
        // the connection.
        drop(conn);
        let state: Option<Arc<dyn LimitState>> = t.limits.as_ref().map(|l| {
            Arc::new(limits::SqliteLimits {
                conn: Arc::clone(&self.conn),
                id: t.id,
                limits: Arc::clone(l),
                waited: self.busy_timeout,
            }) as Arc<dyn LimitState>
        });
        // A record without this hash (a lookup gone wrong) is not used: fail closed.
        let Some(candidate) = t.candidate_limited(hash, state.as_ref()) else {
            return Ok(false);
        };
        if let Some(used) = check(candidate) {
            self.touch(&self.conn(), t.id, used);
        }
        Ok(true)
    }

    /// Limits' state is kept in the database (`api_token_limits`) and charged in a
    /// transaction: exact across every connection to the file.
    fn enforces_limits(&self) -> bool {
        true
    }

    fn key_usage(&self, now: OffsetDateTime) -> Result<Vec<KeyUsage>, StoreError> {
        let conn = self.conn();
        let mut usage = Vec::new();
        for (sql, previous) in [
            (
                "SELECT secret_key_id, secret_legacy, COUNT(*) FROM api_tokens \
                 WHERE secret_hash IS NOT NULL GROUP BY 1, 2",
                false,
            ),
            (
                "SELECT previous_key_id, previous_legacy, COUNT(*) FROM api_tokens \
                 WHERE previous_hash IS NOT NULL AND previous_valid_until > ?1 GROUP BY 1, 2",
                true,
            ),
        ] {
            let mut stmt = conn.prepare_cached(sql).map_err(|e| self.db(e))?;
            let args: Vec<i64> = if previous {
                vec![now.unix_timestamp()]
            } else {
                Vec::new()
            };
            let mut rows = stmt.query(params_from_iter(args)).map_err(|e| self.db(e))?;
            while let Some(row) = rows.next().map_err(|e| self.db(e))? {
                let scheme = scheme_of(row.get(0).map_err(backend)?, row.get(1).map_err(backend)?)
                    .map_err(corrupt)?;
                let n: i64 = row.get(2).map_err(backend)?;
                let n = u64::try_from(n).map_err(|_| corrupt("count"))?;
                let entry = KeyUsage {
                    scheme,
                    current: if previous { 0 } else { n },
                    previous: if previous { n } else { 0 },
                };
                match usage
                    .iter_mut()
                    .find(|u: &&mut KeyUsage| u.scheme == scheme)
                {
                    Some(u) => {
                        u.current += entry.current;
                        u.previous += entry.previous;
                    }
                    None => usage.push(entry),
                }
            }
        }
        sort_usage(&mut usage);
        Ok(usage)
    }

    /// One indexed lookup per origin (`api_tokens_imported_from`): O(k log n).
    fn find_imported(
        &self,
        origins: &[ImportOrigin],
    ) -> Result<Vec<(TokenId, ImportOrigin)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id FROM api_tokens WHERE imported_from = ?1")
            .map_err(|e| self.db(e))?;
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        for origin in origins.iter().filter(|o| seen.insert(**o)) {
            let mut rows = stmt
                .query(params![origin.as_bytes().to_vec()])
                .map_err(|e| self.db(e))?;
            while let Some(row) = rows.next().map_err(|e| self.db(e))? {
                found.push((id_of(row.get(0).map_err(backend)?)?, *origin));
            }
        }
        found.sort_by_key(|(id, _)| *id);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::PermissionSet;
    use crate::permission::tests::counting;
    use crate::{Actor, NewToken, Policy, RequestContext, TokenUpdate, Tokens};

    /// A token's permissions are parsed and normalised once per revision, not on every
    /// authentication (a token of 10,000 permissions cost 265 ms a request, holding the only
    /// connection, when they were): the count of `covers` tests (normalising's unit of work)
    /// proves it.
    #[test]
    fn a_token_of_many_permissions_is_parsed_once_per_revision() {
        let n = 10_000;
        let names: Vec<String> = (0..n).map(|i| format!("g{i}.*")).collect();
        let tokens = Tokens::new(SqliteStore::open_in_memory().unwrap()).with_policy(Policy {
            max_permissions: n,
            ..Policy::default()
        });
        let admin = Actor::admin(UserId::from(1));
        let issued = tokens
            .issue(
                &admin,
                NewToken::new("big".parse().unwrap())
                    .permissions(PermissionSet::parse(&names).unwrap()),
            )
            .unwrap();
        let ctx = RequestContext::unknown_address();
        let ((), work) = counting(|| {
            for _ in 0..100 {
                let grant = tokens.authenticate(issued.secret.expose(), &ctx).unwrap();
                assert_eq!(grant.permissions.len(), n);
            }
        });
        assert!(work <= 2 * n as u64, "{work} covers tests for 100 requests");
        // A change moves the revision: the next read parses the new list.
        tokens
            .update(
                &admin,
                [TokenUpdate::new(issued.token.id).permissions("only.this".parse().unwrap())],
            )
            .unwrap();
        let grant = tokens.authenticate(issued.secret.expose(), &ctx).unwrap();
        assert_eq!(grant.permissions.to_string(), "only.this");
    }
}
