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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration as StdDuration;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Row, ToSql, TransactionBehavior, params,
    params_from_iter,
};
use time::{Duration, OffsetDateTime};

use super::{Candidate, Change, Query, SortField, SortOrder, TextSearch, TimeRange, TokenStore};
use crate::allowlist::IpAllowlist;
use crate::error::StoreError;
use crate::keys::{HashScheme, KeyUsage, sort_usage};
use crate::legacy::{ImportOrigin, LegacyScheme};
use crate::permission::PermissionSet;
use crate::secret::{KeyId, SecretHash};
use crate::token::{
    Expiry, LastUse, PreviousSecret, Revoked, RevokedBy, SecretState, Status, Token, TokenId,
    TokenName, UserId, from_unix,
};

/// The schema version this store writes and reads (`PRAGMA user_version`). Version 3 (issue 14)
/// records how each hash was made: the key id and, for an imported hash, its legacy scheme.
/// Version 4 records what each imported token was imported from (`imported_from`, indexed).
pub const SCHEMA_VERSION: i64 = 4;

/// How long a write waits for another connection's write lock, unless told otherwise.
pub const DEFAULT_BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(5);

/// How many tokens' parsed permissions and allowlists are kept.
const RULE_CACHE: usize = 4_096;

/// The rules every row keeps: the name of its `CHECK` constraint, the condition, and what a row
/// that breaks it looks like. The table's constraints and the migration's scan use this list;
/// reads check the same rules in Rust ([`token_of`]), naming them from it.
const RULES: &[(&str, &str, &str)] = &[
    (
        "status_is_0_or_1",
        "status IN (0, 1)",
        "the status is neither 0 nor 1",
    ),
    (
        "secret_hash_is_32_bytes",
        "secret_hash IS NULL OR (typeof(secret_hash) = 'blob' AND length(secret_hash) = 32)",
        "a secret hash that is not 32 bytes",
    ),
    (
        "secret_hash_has_generated_at",
        "(secret_hash IS NULL) = (generated_at IS NULL)",
        "a secret hash without a generation time, or a generation time without a hash",
    ),
    (
        "previous_hash_is_32_bytes",
        "previous_hash IS NULL OR (typeof(previous_hash) = 'blob' AND length(previous_hash) = 32)",
        "a previous secret hash that is not 32 bytes",
    ),
    (
        "previous_hash_has_end",
        "(previous_hash IS NULL) = (previous_valid_until IS NULL)",
        "a previous secret hash without an end time, or an end time without a hash",
    ),
    (
        "previous_hash_needs_current",
        "previous_hash IS NULL OR secret_hash IS NOT NULL",
        "a previous secret hash without a current one",
    ),
    (
        "previous_hash_differs",
        "previous_hash IS NULL OR previous_hash <> secret_hash",
        "the previous secret hash equals the current one",
    ),
    (
        "revoked_has_time_and_cause",
        "(revoked_at IS NULL) = (revoked_by IS NULL)",
        "a revocation time without a cause, or a cause without a time",
    ),
    (
        "revoked_by_is_known",
        "revoked_by IS NULL OR revoked_by = 'possession'",
        "an unknown revocation cause",
    ),
    (
        "revoked_is_disabled",
        "revoked_at IS NULL OR status = 1",
        "a revoked token is enabled",
    ),
    (
        "revoked_has_no_secret",
        "revoked_at IS NULL OR (secret_hash IS NULL AND previous_hash IS NULL)",
        "a revoked token still has a secret hash",
    ),
    (
        "last_used_ip_has_time",
        "last_used_ip IS NULL OR last_used_at IS NOT NULL",
        "a last-use address without a time",
    ),
    (
        "revision_in_range",
        "revision BETWEEN 0 AND 4294967295",
        "a revision outside 0..2^32",
    ),
    (
        "secret_key_id_is_8_bytes",
        "secret_key_id IS NULL OR (typeof(secret_key_id) = 'blob' AND length(secret_key_id) = 8)",
        "a key id that is not 8 bytes",
    ),
    (
        "previous_key_id_is_8_bytes",
        "previous_key_id IS NULL OR (typeof(previous_key_id) = 'blob' AND length(previous_key_id) = 8)",
        "a previous key id that is not 8 bytes",
    ),
    (
        "secret_scheme_needs_hash",
        "(secret_key_id IS NULL AND secret_legacy IS NULL) OR secret_hash IS NOT NULL",
        "a hash scheme without a hash",
    ),
    (
        "previous_scheme_needs_hash",
        "(previous_key_id IS NULL AND previous_legacy IS NULL) OR previous_hash IS NOT NULL",
        "a previous hash scheme without a previous hash",
    ),
    (
        "legacy_is_known",
        "(secret_legacy IS NULL OR secret_legacy IN ('zabbix-sha512', 'sha256')) \
         AND (previous_legacy IS NULL OR previous_legacy IN ('zabbix-sha512', 'sha256'))",
        "an unknown legacy hash scheme",
    ),
    (
        "legacy_has_key_id",
        "(secret_legacy IS NULL OR secret_key_id IS NOT NULL) \
         AND (previous_legacy IS NULL OR previous_key_id IS NOT NULL)",
        "a legacy hash without the key id it was made under",
    ),
    (
        "imported_from_is_32_bytes",
        "imported_from IS NULL OR (typeof(imported_from) = 'blob' AND length(imported_from) = 32)",
        "an import origin that is not 32 bytes",
    ),
];

/// The columns of version 1, which a migration copies.
const V1_COLUMNS: &str = "id, owner, name, description, creator, status, created_at, expires_at, \
    permissions, allowlist, last_used_at, last_used_ip, secret_hash, generated_at, \
    previous_hash, previous_valid_until, revision";

/// The columns of version 2, which a migration copies.
const V2_COLUMNS: &str = "id, owner, name, description, creator, status, created_at, expires_at, \
    last_used_at, last_used_ip, secret_hash, generated_at, previous_hash, previous_valid_until, \
    revoked_at, revoked_by, revision, allowlist, permissions";

/// The columns of version 3, which a migration copies.
const V3_COLUMNS: &str = "id, owner, name, description, creator, status, created_at, expires_at, \
    last_used_at, last_used_ip, secret_hash, generated_at, previous_hash, previous_valid_until, \
    revoked_at, revoked_by, revision, secret_key_id, secret_legacy, previous_key_id, \
    previous_legacy, allowlist, permissions";

/// The columns in table order; the permission list is last, so a read that finds it cached
/// never touches it (long values spill into overflow pages).
const COLUMNS: &str = "id, owner, name, description, creator, status, created_at, expires_at, \
    last_used_at, last_used_ip, secret_hash, generated_at, previous_hash, previous_valid_until, \
    revoked_at, revoked_by, revision, secret_key_id, secret_legacy, previous_key_id, \
    previous_legacy, imported_from, allowlist, permissions";

/// Column positions in [`COLUMNS`].
mod col {
    pub const ID: usize = 0;
    pub const OWNER: usize = 1;
    pub const NAME: usize = 2;
    pub const DESCRIPTION: usize = 3;
    pub const CREATOR: usize = 4;
    pub const STATUS: usize = 5;
    pub const CREATED_AT: usize = 6;
    pub const EXPIRES_AT: usize = 7;
    pub const LAST_USED_AT: usize = 8;
    pub const LAST_USED_IP: usize = 9;
    pub const SECRET_HASH: usize = 10;
    pub const GENERATED_AT: usize = 11;
    pub const PREVIOUS_HASH: usize = 12;
    pub const PREVIOUS_VALID_UNTIL: usize = 13;
    pub const REVOKED_AT: usize = 14;
    pub const REVOKED_BY: usize = 15;
    pub const REVISION: usize = 16;
    pub const SECRET_KEY_ID: usize = 17;
    pub const SECRET_LEGACY: usize = 18;
    pub const PREVIOUS_KEY_ID: usize = 19;
    pub const PREVIOUS_LEGACY: usize = 20;
    pub const IMPORTED_FROM: usize = 21;
    pub const ALLOWLIST: usize = 22;
    pub const PERMISSIONS: usize = 23;
}

/// The table of version 4.
fn table_sql() -> String {
    let checks: String = RULES
        .iter()
        .map(|(name, cond, _)| format!(",\n    CONSTRAINT {name} CHECK ({cond})"))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS api_tokens (
    id                   INTEGER PRIMARY KEY,
    owner                TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    description          TEXT    NOT NULL,
    creator              TEXT    NOT NULL,
    status               INTEGER NOT NULL,  -- 0 enabled, 1 disabled (as in Zabbix)
    created_at           INTEGER NOT NULL,  -- Unix seconds
    expires_at           INTEGER,           -- NULL: never
    last_used_at         INTEGER,
    last_used_ip         TEXT,
    secret_hash          BLOB,              -- 32 bytes; NULL until generated and once revoked
    generated_at         INTEGER,
    previous_hash        BLOB,
    previous_valid_until INTEGER,
    revoked_at           INTEGER,           -- set once, when revoked for good
    revoked_by           TEXT,              -- 'possession': its secret was reported leaked
    revision             INTEGER NOT NULL,
    secret_key_id        BLOB,              -- 8 bytes: the id of the key secret_hash was made under;
                                            -- NULL with a hash: stored before version 3 (unrecorded)
    secret_legacy        TEXT,              -- 'zabbix-sha512', 'sha256': an imported hash
    previous_key_id      BLOB,
    previous_legacy      TEXT,
    imported_from        BLOB,              -- 32 bytes: what an imported token was imported from
                                            -- (never used for authentication)
    allowlist            TEXT    NOT NULL,  -- space-separated, normalised
    permissions          TEXT    NOT NULL,  -- space-separated, normalised; last: may be long
    UNIQUE (owner, name){checks}
);
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_secret_hash ON api_tokens (secret_hash);
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_previous_hash ON api_tokens (previous_hash);
CREATE INDEX IF NOT EXISTS api_tokens_imported_from ON api_tokens (imported_from)
    WHERE imported_from IS NOT NULL;
CREATE TABLE IF NOT EXISTS api_token_seq (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    next INTEGER NOT NULL
);
INSERT OR IGNORE INTO api_token_seq (one, next) VALUES (1, 1);
PRAGMA user_version = {SCHEMA_VERSION};
"
    )
}

/// The name of the first rule a row breaks, or NULL.
fn broken_rule_sql() -> String {
    let cases: String = RULES
        .iter()
        .map(|(name, cond, _)| format!(" WHEN NOT ({cond}) THEN '{name}'"))
        .collect();
    format!("CASE{cases} ELSE NULL END")
}

/// What a rule's breach looks like, by the rule's name.
fn rule_problem(name: &str) -> &'static str {
    RULES
        .iter()
        .find(|(n, ..)| *n == name)
        .map_or("a rule of the schema is broken", |(.., problem)| problem)
}

/// `SELECT` of every column `FROM api_tokens`.
fn select_sql() -> String {
    format!("SELECT {COLUMNS} FROM api_tokens")
}

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

/// A value read back from the database that the crate's types refuse, or a schema this version
/// does not know: the database was changed by something other than this store.
#[derive(Debug, thiserror::Error)]
#[error("corrupt row in api_tokens: {0}")]
struct CorruptRow(String);

fn corrupt(what: impl fmt::Display) -> StoreError {
    backend(CorruptRow(what.to_string()))
}

/// A database whose schema this version cannot use.
#[derive(Debug, thiserror::Error)]
#[error("api_tokens schema: {0}")]
struct SchemaError(String);

/// Last uses waiting to be written, and when each token's was last written.
#[derive(Default)]
struct Touches {
    written: HashMap<TokenId, i64>,
    pending: HashMap<TokenId, LastUse>,
}

impl Touches {
    /// Keeps `used` as the token's pending last use unless a later one waits already.
    fn keep(&mut self, id: TokenId, used: LastUse) {
        if self.pending.get(&id).is_none_or(|p| p.at <= used.at) {
            self.pending.insert(id, used);
        }
    }

    /// Marks `used` written: it no longer waits, unless a later use came in meanwhile.
    fn written(&mut self, id: TokenId, used: LastUse) {
        self.written.insert(id, used.at.unix_timestamp());
        if self.pending.get(&id).is_some_and(|p| p.at <= used.at) {
            self.pending.remove(&id);
        }
    }

    /// A read's token with the latest last use, written or waiting.
    fn overlay(&self, t: &mut Token) {
        if let Some(p) = self.pending.get(&t.id)
            && t.last_use.is_none_or(|u| u.at < p.at)
        {
            t.last_use = Some(*p);
        }
    }
}

/// A token's parsed permissions and allowlist, valid for one revision.
struct Rules {
    revision: u32,
    permissions: PermissionSet,
    allowlist: IpAllowlist,
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
    rules: Mutex<HashMap<TokenId, Rules>>,
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

/// What a database holds, as far as this store is concerned.
enum SchemaState {
    Empty,
    V1,
    V2,
    V3,
    Current,
}

fn schema_state(conn: &Connection, waited: StdDuration) -> Result<SchemaState, StoreError> {
    let err = |e| db_error(e, waited);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'api_tokens')",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    match (has_table, version) {
        (false, _) => Ok(SchemaState::Empty),
        (true, 0) => Ok(SchemaState::V1),
        (true, 2) => Ok(SchemaState::V2),
        (true, 3) => Ok(SchemaState::V3),
        (true, v) if v == SCHEMA_VERSION => Ok(SchemaState::Current),
        (true, v) if v > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            found: v,
            supported: SCHEMA_VERSION,
        }),
        (true, v) => Err(backend(SchemaError(format!(
            "schema version {v} is not one this library reads (it writes {SCHEMA_VERSION})"
        )))),
    }
}

/// The first row of a version-1 table that breaks a rule, if any. Version 1 had no revocation
/// columns and none before version 3 had the scheme columns (nor before version 4 the import
/// origin), so the rules see them as NULL.
fn first_broken_v1_row(conn: &Connection) -> Result<Option<(i64, String)>, rusqlite::Error> {
    conn.query_row(
        &format!(
            "SELECT id, rule FROM (SELECT id, {} AS rule FROM \
             (SELECT *, NULL AS revoked_at, NULL AS revoked_by, {NO_SCHEMES} FROM api_tokens)) \
             WHERE rule IS NOT NULL ORDER BY id LIMIT 1",
            broken_rule_sql()
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// The scheme and origin columns as NULL, for rules checked over a table of version 1 or 2.
const NO_SCHEMES: &str = "NULL AS secret_key_id, NULL AS secret_legacy, \
    NULL AS previous_key_id, NULL AS previous_legacy, NULL AS imported_from";

/// Rebuilds the table at the current version, copying `columns` of the old one: every column
/// this version adds starts NULL (a hash's key then reads as unrecorded).
fn rebuild_sql(columns: &str) -> String {
    format!(
        "DROP INDEX IF EXISTS api_tokens_secret_hash;
         DROP INDEX IF EXISTS api_tokens_previous_hash;
         DROP INDEX IF EXISTS api_tokens_imported_from;
         ALTER TABLE api_tokens RENAME TO api_tokens_old;
         {}
         INSERT INTO api_tokens ({columns}) SELECT {columns} FROM api_tokens_old;
         DROP TABLE api_tokens_old;",
        table_sql()
    )
}

/// Creates or migrates the schema, unless it is current (then nothing is written, so opening
/// never waits for another writer).
fn ensure_schema(conn: &mut Connection, waited: StdDuration) -> Result<(), StoreError> {
    let err = |e| db_error(e, waited);
    if matches!(schema_state(conn, waited)?, SchemaState::Current) {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    // Another connection may have done it while this one waited for the lock.
    match schema_state(&tx, waited)? {
        SchemaState::Current => {}
        SchemaState::Empty => tx.execute_batch(&table_sql()).map_err(err)?,
        SchemaState::V1 => {
            if let Some((id, rule)) = first_broken_v1_row(&tx).map_err(err)? {
                return Err(StoreError::Inconsistent {
                    token: TokenId::new(u64::try_from(id).unwrap_or_default()),
                    problem: rule_problem(&rule),
                });
            }
            tx.execute_batch(&rebuild_sql(V1_COLUMNS)).map_err(err)?;
        }
        // Version 2 and 3 rows keep every rule of the current version (the new columns start
        // NULL: tokens imported before version 4 have no recorded origin). The table is
        // rebuilt rather than altered so that the permission list stays its last column.
        SchemaState::V2 => tx.execute_batch(&rebuild_sql(V2_COLUMNS)).map_err(err)?,
        SchemaState::V3 => tx.execute_batch(&rebuild_sql(V3_COLUMNS)).map_err(err)?,
    }
    tx.commit().map_err(err)
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
        ensure_schema(&mut conn, busy_timeout)?;
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
            rules: Mutex::new(HashMap::new()),
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

    fn rules(&self) -> MutexGuard<'_, HashMap<TokenId, Rules>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn db(&self, e: rusqlite::Error) -> StoreError {
        db_error(e, self.busy_timeout)
    }

    /// Writes every pending last use now, waiting for the write lock like any write.
    ///
    /// # Errors
    /// [`StoreError::Busy`] when another connection kept the lock; backend failures. What was
    /// not written keeps waiting.
    pub fn flush(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let pending: Vec<(TokenId, LastUse)> = self
            .touches()
            .pending
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        for (id, used) in &pending {
            write_last_use(&tx, *id, *used).map_err(|e| self.db(e))?;
        }
        tx.commit().map_err(|e| self.db(e))?;
        let mut t = self.touches();
        for (id, used) in pending {
            t.written(id, used);
        }
        Ok(())
    }

    /// One last-use write that does not wait: `false` when the lock is taken (or the write
    /// failed otherwise); the use then stays pending.
    fn try_write(&self, conn: &Connection, id: TokenId, used: LastUse) -> bool {
        if conn.busy_timeout(StdDuration::ZERO).is_err() {
            return false;
        }
        let ok = write_last_use(conn, id, used).is_ok();
        // Restoring the timeout cannot fail for a valid connection; if it did, later writes
        // would fail fast with `Busy` rather than wait, which is still safe.
        let _ = conn.busy_timeout(self.busy_timeout);
        ok
    }

    /// Writes what is pending in one transaction, if the write lock is free right now; else
    /// leaves it pending.
    fn flush_if_free(&self, conn: &Connection) {
        let pending: Vec<(TokenId, LastUse)> = self
            .touches()
            .pending
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        if pending.is_empty() || conn.busy_timeout(StdDuration::ZERO).is_err() {
            return;
        }
        let written = conn.unchecked_transaction().and_then(|tx| {
            for (id, used) in &pending {
                write_last_use(&tx, *id, *used)?;
            }
            tx.commit()
        });
        let _ = conn.busy_timeout(self.busy_timeout);
        if written.is_ok() {
            let mut t = self.touches();
            for (id, used) in pending {
                t.written(id, used);
            }
        }
    }

    /// Records a last use: written now if due and the lock is free, else kept for later. Never
    /// fails and never waits: authentication does not depend on bookkeeping.
    fn touch(&self, conn: &Connection, id: TokenId, used: LastUse) {
        let at = used.at.unix_timestamp();
        {
            let mut t = self.touches();
            if let Some(&w) = t.written.get(&id)
                && at < w.saturating_add(self.touch_interval)
            {
                t.keep(id, used);
                return;
            }
        }
        if self.try_write(conn, id, used) {
            self.touches().written(id, used);
        } else {
            self.touches().keep(id, used);
        }
    }

    /// Builds a token from a row of [`select_sql`], taking its permissions and allowlist from
    /// the cache when the row's revision is the cached one.
    fn token_of(&self, row: &Row<'_>) -> Result<Token, StoreError> {
        let get_err = |e: rusqlite::Error| backend(e);
        let id: i64 = row.get(col::ID).map_err(get_err)?;
        let id = TokenId::new(u64::try_from(id).map_err(|_| corrupt(format!("id {id}")))?);
        let revision: i64 = row.get(col::REVISION).map_err(get_err)?;
        let revision = u32::try_from(revision).map_err(|_| StoreError::Inconsistent {
            token: id,
            problem: rule_problem("revision_in_range"),
        })?;
        let cached = self
            .rules()
            .get(&id)
            .filter(|r| r.revision == revision)
            .map(|r| (r.permissions.clone(), r.allowlist.clone()));
        let (permissions, allowlist) = match cached {
            Some(rules) => rules,
            None => {
                let permissions = text(row, col::PERMISSIONS)?
                    .parse::<PermissionSet>()
                    .map_err(corrupt)?;
                let allowlist = text(row, col::ALLOWLIST)?
                    .parse::<IpAllowlist>()
                    .map_err(corrupt)?;
                let mut rules = self.rules();
                if rules.len() >= RULE_CACHE {
                    rules.clear();
                }
                rules.insert(
                    id,
                    Rules {
                        revision,
                        permissions: permissions.clone(),
                        allowlist: allowlist.clone(),
                    },
                );
                (permissions, allowlist)
            }
        };
        let token = token_of(row, id, revision, permissions, allowlist)?;
        token.check_consistent()?;
        Ok(token)
    }
}

/// A text column, borrowed.
fn text<'r>(row: &'r Row<'_>, i: usize) -> Result<&'r str, StoreError> {
    match row.get_ref(i).map_err(backend)? {
        ValueRef::Text(b) => std::str::from_utf8(b).map_err(corrupt),
        _ => Err(corrupt(format!("column {i} is not text"))),
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Best effort: a failure here has nowhere to go, and loses only last-use times.
        let _ = self.flush();
    }
}

fn write_last_use(conn: &Connection, id: TokenId, used: LastUse) -> Result<(), rusqlite::Error> {
    let at = used.at.unix_timestamp();
    // Ids beyond i64 cannot be rows: nothing to write.
    let Some(key) = id_key(id) else {
        return Ok(());
    };
    conn.prepare_cached(
        "UPDATE api_tokens SET last_used_at = ?1, last_used_ip = ?2
         WHERE id = ?3 AND (last_used_at IS NULL OR last_used_at <= ?1)",
    )?
    .execute(params![at, used.ip.map(|ip| ip.to_string()), key])?;
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

fn origin_of(bytes: Option<Vec<u8>>) -> Result<Option<ImportOrigin>, StoreError> {
    bytes
        .map(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .map(ImportOrigin::from_bytes)
                .map_err(|_| corrupt("import origin is not 32 bytes"))
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

/// The token in a row of [`select_sql`], with its parsed permissions and allowlist, checked
/// against every rule of [`RULES`] (the schema's constraints may have been switched off when
/// the row was written): a row that breaks one is refused, never read as something that works.
fn token_of(
    row: &Row<'_>,
    id: TokenId,
    revision: u32,
    permissions: PermissionSet,
    allowlist: IpAllowlist,
) -> Result<Token, StoreError> {
    let get_err = |e: rusqlite::Error| backend(e);
    let owner: String = row.get(col::OWNER).map_err(get_err)?;
    let name: String = row.get(col::NAME).map_err(get_err)?;
    let status: i64 = row.get(col::STATUS).map_err(get_err)?;
    let expires_at: Option<i64> = row.get(col::EXPIRES_AT).map_err(get_err)?;
    let last_used_at: Option<i64> = row.get(col::LAST_USED_AT).map_err(get_err)?;
    let last_used_ip: Option<String> = row.get(col::LAST_USED_IP).map_err(get_err)?;
    let inconsistent = |rule| StoreError::Inconsistent {
        token: id,
        problem: rule_problem(rule),
    };
    let hash = hash_of(row.get(col::SECRET_HASH).map_err(get_err)?)
        .map_err(|_| inconsistent("secret_hash_is_32_bytes"))?;
    let generated_at: Option<i64> = row.get(col::GENERATED_AT).map_err(get_err)?;
    let previous = hash_of(row.get(col::PREVIOUS_HASH).map_err(get_err)?)
        .map_err(|_| inconsistent("previous_hash_is_32_bytes"))?;
    let previous_until: Option<i64> = row.get(col::PREVIOUS_VALID_UNTIL).map_err(get_err)?;
    let revoked_at: Option<i64> = row.get(col::REVOKED_AT).map_err(get_err)?;
    let revoked_by: Option<String> = row.get(col::REVOKED_BY).map_err(get_err)?;
    let scheme = scheme_of(
        row.get(col::SECRET_KEY_ID).map_err(get_err)?,
        row.get(col::SECRET_LEGACY).map_err(get_err)?,
    )
    .map_err(inconsistent)?;
    let previous_scheme = scheme_of(
        row.get(col::PREVIOUS_KEY_ID).map_err(get_err)?,
        row.get(col::PREVIOUS_LEGACY).map_err(get_err)?,
    )
    .map_err(inconsistent)?;
    if previous.is_some() != previous_until.is_some() {
        return Err(inconsistent("previous_hash_has_end"));
    }
    if hash.is_some() != generated_at.is_some() {
        return Err(inconsistent("secret_hash_has_generated_at"));
    }
    // Checked after the record rules, which name the more telling problem first.
    let scheme_without_hash = if hash.is_none() && scheme != HashScheme::UNRECORDED {
        Some("secret_scheme_needs_hash")
    } else if previous.is_none() && previous_scheme != HashScheme::UNRECORDED {
        Some("previous_scheme_needs_hash")
    } else {
        None
    };
    let previous = match (previous, previous_until) {
        (Some(hash), Some(until)) => Some(PreviousSecret {
            hash,
            scheme: previous_scheme,
            valid_until: time_of(until)?,
        }),
        _ => None,
    };
    let secret = match (hash, generated_at) {
        (Some(hash), Some(generated_at)) => Some(SecretState {
            hash,
            scheme,
            generated_at: time_of(generated_at)?,
            previous,
        }),
        _ if previous.is_some() => return Err(inconsistent("previous_hash_needs_current")),
        _ => None,
    };
    let revoked = match (revoked_at, revoked_by) {
        (None, None) => None,
        (Some(at), Some(by)) => Some(Revoked {
            at: time_of(at)?,
            by: RevokedBy::from_name(&by).ok_or_else(|| inconsistent("revoked_by_is_known"))?,
        }),
        _ => return Err(inconsistent("revoked_has_time_and_cause")),
    };
    let imported_from = origin_of(row.get(col::IMPORTED_FROM).map_err(get_err)?)
        .map_err(|_| inconsistent("imported_from_is_32_bytes"))?;
    let token = Token {
        id,
        name: TokenName::new(&name).map_err(corrupt)?,
        description: row.get(col::DESCRIPTION).map_err(get_err)?,
        owner: UserId::new(&owner).map_err(corrupt)?,
        creator: UserId::new(&row.get::<_, String>(col::CREATOR).map_err(get_err)?)
            .map_err(corrupt)?,
        status: match status {
            0 => Status::Enabled,
            1 => Status::Disabled,
            _ => return Err(inconsistent("status_is_0_or_1")),
        },
        created_at: time_of(row.get(col::CREATED_AT).map_err(get_err)?)?,
        expiry: match expires_at {
            None => Expiry::NEVER,
            Some(s) => Expiry::from_unix(s).map_err(corrupt)?,
        },
        permissions,
        allowlist,
        last_use: match (last_used_at, last_used_ip) {
            (None, None) => None,
            (None, Some(_)) => return Err(inconsistent("last_used_ip_has_time")),
            (Some(at), ip) => Some(LastUse {
                at: time_of(at)?,
                ip: ip.and_then(|ip| ip.parse().ok()),
            }),
        },
        secret,
        revision,
        revoked,
        imported_from,
    };
    token.check_consistent()?;
    match scheme_without_hash {
        Some(rule) => Err(inconsistent(rule)),
        None => Ok(token),
    }
}

/// The scheme in a row's key id and legacy columns; the name of the rule a bad value breaks.
fn scheme_of(key: Option<Vec<u8>>, legacy: Option<String>) -> Result<HashScheme, &'static str> {
    let key = key
        .map(|k| {
            <[u8; 8]>::try_from(k.as_slice())
                .map(KeyId::from_bytes)
                .map_err(|_| "secret_key_id_is_8_bytes")
        })
        .transpose()?;
    let legacy = legacy
        .map(|l| LegacyScheme::from_name(&l).ok_or("legacy_is_known"))
        .transpose()?;
    match (key, legacy) {
        (None, None) => Ok(HashScheme::UNRECORDED),
        (None, Some(_)) => Err("legacy_has_key_id"),
        (Some(k), None) => Ok(HashScheme::keyed(k)),
        (Some(k), Some(l)) => Ok(HashScheme::legacy(l, k)),
    }
}

/// A scheme as the row's key id and legacy columns.
fn scheme_columns(s: Option<HashScheme>) -> (Option<Vec<u8>>, Option<&'static str>) {
    match s {
        None => (None, None),
        Some(s) => (
            s.key().map(|k| k.as_bytes().to_vec()),
            s.legacy_scheme().map(LegacyScheme::as_str),
        ),
    }
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

    /// `column IN (values)`, the values as one JSON array parameter: any number of them, and
    /// SQLite builds a temporary index over them (O(k log k)). An empty list matches nothing, as
    /// in [`Query::matches`].
    fn one_of(&mut self, column: &str, json: String) {
        self.push(
            format!("{column} IN (SELECT value FROM json_each(?))"),
            [arg(json)],
        );
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

/// `query` as a `WHERE` clause and its parameters.
fn where_clause(q: &Query, now: OffsetDateTime) -> Where {
    let mut w = Where::default();
    if let Some(ids) = &q.ids {
        let keys = ids
            .iter()
            .filter_map(|id| id_key(*id))
            .map(|k| k.to_string());
        w.one_of("id", json_array(keys));
    }
    if let Some(owners) = &q.owners {
        w.one_of(
            "owner",
            json_array(owners.iter().map(|o| json_string(o.as_str()))),
        );
    }
    if let Some(creators) = &q.creators {
        w.one_of(
            "creator",
            json_array(creators.iter().map(|c| json_string(c.as_str()))),
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

/// The exact-match filters and the search of `q`. Lists travel as one JSON parameter each, like
/// the id, owner and creator lists.
fn exact_filters(q: &Query, w: &mut Where) {
    if let Some(names) = &q.names {
        w.one_of(
            "name",
            json_array(names.iter().map(|n| json_string(n.as_str()))),
        );
    }
    if let Some(expiries) = &q.expires_at {
        let never = expiries.iter().any(|e| e.is_never());
        let at = expiries.iter().filter_map(|e| e.unix());
        or_null(
            w,
            "expires_at",
            never,
            json_array(at.map(|s| s.to_string())),
        );
    }
    if let Some(instants) = &q.created_at {
        let at = instants.iter().filter_map(|t| exact_secs(*t));
        w.one_of("created_at", json_array(at.map(|s| s.to_string())));
    }
    if let Some(instants) = &q.last_used_at {
        let never = instants.iter().any(Option::is_none);
        let at = instants.iter().flatten().filter_map(|t| exact_secs(*t));
        or_null(
            w,
            "last_used_at",
            never,
            json_array(at.map(|s| s.to_string())),
        );
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

/// `column IN (values) OR column IS NULL` (the `NULL` arm when `null` is set); nothing matches
/// when both are empty. `json` is the values as a JSON array.
fn or_null(w: &mut Where, column: &str, null: bool, json: String) {
    if null {
        w.push(
            format!("({column} IS NULL OR {column} IN (SELECT value FROM json_each(?)))"),
            [arg(json)],
        );
    } else {
        w.one_of(column, json);
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
    let (key_id, legacy) = scheme_columns(secret.map(|s| s.scheme));
    let (previous_key_id, previous_legacy) =
        scheme_columns(secret.and_then(|s| s.previous).map(|p| p.scheme));
    let r = conn
        .prepare_cached(&format!(
            "INSERT INTO api_tokens ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
              ?18, ?19, ?20, ?21, ?22, ?23, ?24)"
        ))
        .and_then(|mut stmt| {
            stmt.execute(params![
                id_sql(t.id).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                t.owner.as_str(),
                t.name.as_str(),
                t.description,
                t.creator.as_str(),
                i64::from(t.status == Status::Disabled),
                t.created_at.unix_timestamp(),
                t.expiry.unix(),
                t.last_use.map(|u| u.at.unix_timestamp()),
                t.last_use.and_then(|u| u.ip).map(|ip| ip.to_string()),
                secret.map(|s| s.hash.as_bytes().to_vec()),
                secret.map(|s| s.generated_at.unix_timestamp()),
                secret
                    .and_then(|s| s.previous)
                    .map(|p| p.hash.as_bytes().to_vec()),
                secret
                    .and_then(|s| s.previous)
                    .map(|p| p.valid_until.unix_timestamp()),
                t.revoked.map(|r| r.at.unix_timestamp()),
                t.revoked.map(|r| r.by.as_str()),
                i64::from(t.revision),
                key_id,
                legacy,
                previous_key_id,
                previous_legacy,
                t.imported_from.map(|o| o.as_bytes().to_vec()),
                allowlist_text(&t.allowlist),
                join(t.permissions.iter()),
            ])
        });
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
        Err(rusqlite::Error::SqliteFailure(f, Some(msg)))
            if f.code == ErrorCode::ConstraintViolation && msg.starts_with("CHECK constraint") =>
        {
            let rule = msg.rsplit(": ").next().unwrap_or_default();
            Err(StoreError::Inconsistent {
                token: t.id,
                problem: rule_problem(rule),
            })
        }
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
    .map_err(|e| db_error(e, StdDuration::ZERO))?
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
        let pending: Vec<(TokenId, LastUse)> = self
            .touches()
            .pending
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        for (id, used) in &pending {
            write_last_use(&tx, *id, *used).map_err(|e| self.db(e))?;
        }
        let mut seen = HashSet::new();
        let mut rows: Vec<Token> = Vec::new();
        let mut gone: Vec<TokenId> = Vec::new();
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
                    gone.push(*id);
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
        for (id, used) in pending {
            touches.written(id, used);
        }
        for t in &rows {
            touches.written.remove(&t.id);
        }
        drop(touches);
        let mut rules = self.rules();
        for id in gone {
            rules.remove(&id);
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
        .map(|id| {
            u64::try_from(id)
                .map(TokenId::new)
                .map_err(|_| corrupt("id"))
        })
        .transpose()
    }

    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        let conn = self.conn();
        self.flush_if_free(&conn);
        let mut w = where_clause(query, now);
        let mut sql = format!("{}{}{}", self.select, w.clause(), order_clause(query));
        if let Some(n) = query.limit {
            sql.push_str(" LIMIT ?");
            w.args.push(arg(i64::try_from(n).unwrap_or(i64::MAX)));
        }
        let mut stmt = conn.prepare(&sql).map_err(|e| self.db(e))?;
        let mut rows = stmt
            .query(params_from_iter(w.args.iter()))
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.db(e))? {
            out.push(self.token_of(row)?);
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
        let w = where_clause(query, now);
        let n: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM api_tokens{}", w.clause()),
                params_from_iter(w.args.iter()),
                |r| r.get(0),
            )
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
        let Some(t) = found else {
            return Ok(false);
        };
        // A record without this hash (a lookup gone wrong) is not used: fail closed.
        let Some(candidate) = t.candidate(hash) else {
            return Ok(false);
        };
        if let Some(used) = check(candidate) {
            self.touch(&conn, t.id, used);
        }
        Ok(true)
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
                    .map_err(|rule| corrupt(rule_problem(rule)))?;
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
                let id: i64 = row.get(0).map_err(backend)?;
                let id = u64::try_from(id).map_err(|_| corrupt(format!("id {id}")))?;
                found.push((TokenId::new(id), *origin));
            }
        }
        found.sort_by_key(|(id, _)| *id);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::tests::counting;
    use crate::{Actor, NewToken, Policy, RequestContext, TokenUpdate, Tokens};

    /// Issue 17: authenticating a token of 10,000 permissions parsed and normalised them from
    /// the row every time (265 ms each, holding the only connection). Now they are parsed once
    /// per revision; the count of `covers` tests (normalising's unit of work) proves it.
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

    #[test]
    fn the_rules_name_every_check_and_the_schema_carries_them() {
        let sql = table_sql();
        for (name, cond, problem) in RULES {
            assert!(sql.contains(&format!("CONSTRAINT {name} CHECK ({cond})")));
            assert_eq!(rule_problem(name), *problem);
        }
        assert_eq!(json_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
    }
}
