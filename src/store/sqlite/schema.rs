//! The SQLite schema: the table with a named `CHECK` constraint per record rule, its version
//! (`PRAGMA user_version`), and the migrations from every earlier version.

use std::time::Duration as StdDuration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{backend, db_error};
use crate::error::StoreError;
use crate::token::TokenId;

/// The schema version this store writes and reads (`PRAGMA user_version`). Version 3 records
/// how each hash was made: the key id and, for an imported hash, its legacy scheme. Version 4
/// records what each imported token was imported from (`imported_from`, indexed). Version 5
/// adds the table `api_token_limits`: each limited token's limits as set and their state.
pub const SCHEMA_VERSION: i64 = 5;

/// The rules every row keeps: the name of its `CHECK` constraint, the condition, and what a row
/// that breaks it looks like. The table's constraints and the migration's scan use this list;
/// reads check the same rules in Rust ([`token_of`](super::row::token_of)), naming them from it.
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

/// The tables of the current version.
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
{limits}
PRAGMA user_version = {SCHEMA_VERSION};
",
        limits = super::limits::TABLE_SQL
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
pub(super) fn rule_problem(name: &str) -> &'static str {
    RULES
        .iter()
        .find(|(n, ..)| *n == name)
        .map_or("a rule of the schema is broken", |(.., problem)| problem)
}

/// A database whose schema this version cannot use.
#[derive(Debug, thiserror::Error)]
#[error("api_tokens schema: {0}")]
struct SchemaError(String);

/// What a database holds, as far as this store is concerned.
enum SchemaState {
    Empty,
    V1,
    V2,
    V3,
    V4,
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
        (true, 4) => Ok(SchemaState::V4),
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
pub(super) fn ensure_schema(conn: &mut Connection, waited: StdDuration) -> Result<(), StoreError> {
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
        // Version 4 has every column: only the limits' table is new (no token has limits).
        SchemaState::V4 => tx
            .execute_batch(&format!(
                "{}\nPRAGMA user_version = {SCHEMA_VERSION};",
                super::limits::TABLE_SQL
            ))
            .map_err(err)?,
    }
    tx.commit().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_name_every_check_and_the_schema_carries_them() {
        let sql = table_sql();
        for (name, cond, problem) in RULES {
            assert!(sql.contains(&format!("CONSTRAINT {name} CHECK ({cond})")));
            assert_eq!(rule_problem(name), *problem);
        }
    }
}
