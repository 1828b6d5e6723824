//! The schema and its migrations, applied by the crate itself when a store connects.
//!
//! * `api_tokens_schema` holds the version the database is at. Connecting applies every
//!   migration above it, all in one transaction, under a transaction-scoped advisory lock:
//!   replicas that start together migrate once, and a failed migration leaves nothing behind.
//! * A database at a version newer than [`LATEST`] is refused
//!   ([`StoreError::SchemaTooNew`]): this process is older than another one that migrated it,
//!   and must not write rows it does not fully understand.
//! * Migrations are append-only: a released one is never edited, a change is a new one.

use tokio_postgres::Client;

use crate::error::StoreError;

/// The newest schema version this crate knows.
pub const LATEST: i64 = 7;

/// Key of the advisory lock taken while migrating ("api_toks" in ASCII).
const MIGRATION_LOCK: i64 = 0x6170_695f_746f_6b73;

/// Version 1: tokens, the id sequence, the change clock, and deletion records.
///
/// * `api_tokens`: one row per token, the same columns as the SQLite store, plus
///   `change_seq`: the change clock's value of the transaction that last wrote the row.
///   `UNIQUE (owner, name)` and one `UNIQUE` per hash column are checked at commit
///   (`DEFERRABLE INITIALLY DEFERRED`), so a batch may swap two names; the store also checks
///   before committing, naming the offending owner and name (a hash may also sit in one row's
///   current column and another's previous one, which no single index sees).
/// * `api_token_ids`: the sequence ids come from.
/// * `api_token_clock`: one row; `seq` moves by one per committed batch. Every batch updates
///   it first, so batches are serialised by its row lock and commit in `seq` order: a reader
///   that has seen `seq = n` has seen every batch up to `n`. `pruned_through`: deletion
///   records up to this `seq` are gone, so a replica behind it reloads everything.
/// * `api_token_deleted`: which id a batch deleted, so replicas learn of deletions too.
/// * Triggers stamp every insert, every update of anything but the last use, and every
///   delete with the transaction's clock value (moving the clock once per transaction and
///   notifying), so a change made by hand in SQL reaches the replicas like any other.
const V1: &str = r#"
CREATE SEQUENCE api_token_ids AS bigint MINVALUE 1;
CREATE TABLE api_tokens (
    id                   bigint   PRIMARY KEY CHECK (id >= 0),
    owner                text     NOT NULL CHECK (owner <> ''),
    name                 text     NOT NULL CHECK (name <> ''),
    description          text     NOT NULL,
    creator              text     NOT NULL CHECK (creator <> ''),
    status               smallint NOT NULL CHECK (status IN (0, 1)), -- 0 enabled, 1 disabled
    created_at           bigint   NOT NULL,                          -- Unix seconds
    expires_at           bigint,                                     -- NULL: never
    permissions          text     NOT NULL,                          -- space-separated
    allowlist            text     NOT NULL,                          -- space-separated
    last_used_at         bigint,
    last_used_ip         text,
    secret_hash          bytea    CHECK (octet_length(secret_hash) = 32),
    generated_at         bigint,
    previous_hash        bytea    CHECK (octet_length(previous_hash) = 32),
    previous_valid_until bigint,
    revision             bigint   NOT NULL CHECK (revision BETWEEN 0 AND 4294967295),
    change_seq           bigint   NOT NULL,
    CHECK ((secret_hash IS NULL) = (generated_at IS NULL)),
    CHECK ((previous_hash IS NULL) = (previous_valid_until IS NULL)),
    CHECK (previous_hash IS NULL OR secret_hash IS NOT NULL),
    CHECK (last_used_ip IS NULL OR last_used_at IS NOT NULL),
    CONSTRAINT api_tokens_owner_name UNIQUE (owner, name) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT api_tokens_secret_hash UNIQUE (secret_hash) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT api_tokens_previous_hash UNIQUE (previous_hash) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX api_tokens_change_seq ON api_tokens (change_seq);
CREATE INDEX api_tokens_creator ON api_tokens (creator);
CREATE TABLE api_token_deleted (
    id         bigint      PRIMARY KEY,
    change_seq bigint      NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_token_deleted_change_seq ON api_token_deleted (change_seq);
CREATE TABLE api_token_clock (
    one            smallint PRIMARY KEY CHECK (one = 1),
    seq            bigint   NOT NULL CHECK (seq >= 0),
    pruned_through bigint   NOT NULL CHECK (pruned_through >= 0),
    xact           bigint   -- the transaction that last moved seq
);
INSERT INTO api_token_clock (one, seq, pruned_through) VALUES (1, 0, 0);

-- The clock value of the current transaction: moved once per transaction (taking the clock's
-- row lock, which serialises writers), then reused; notifies replicas at commit.
CREATE FUNCTION api_token_tick() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
BEGIN
    UPDATE api_token_clock SET seq = seq + 1, xact = txid_current()
        WHERE one = 1 AND xact IS DISTINCT FROM txid_current()
        RETURNING seq INTO s;
    IF NOT FOUND THEN
        SELECT seq INTO s FROM api_token_clock WHERE one = 1;
    END IF;
    PERFORM pg_notify('api_tokens', s::text);
    RETURN s;
END $$;

-- Every write that replicas must see is stamped, whoever makes it: the store, or an operator
-- disabling a token by hand during an incident. Last-use writes (only last_used_*) are not
-- stamped: replicas do not need them.
CREATE FUNCTION api_tokens_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := api_token_tick();
    IF TG_OP = 'INSERT' THEN
        DELETE FROM api_token_deleted WHERE id = NEW.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER api_tokens_stamp_insert BEFORE INSERT ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION api_tokens_stamp();
CREATE TRIGGER api_tokens_stamp_update BEFORE UPDATE OF
    id, owner, name, description, creator, status, created_at, expires_at, permissions,
    allowlist, secret_hash, generated_at, previous_hash, previous_valid_until, revision,
    change_seq
    ON api_tokens FOR EACH ROW EXECUTE FUNCTION api_tokens_stamp();

CREATE FUNCTION api_tokens_forget() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s bigint := api_token_tick();
BEGIN
    INSERT INTO api_token_deleted (id, change_seq) VALUES (OLD.id, s)
        ON CONFLICT (id) DO UPDATE SET change_seq = s, deleted_at = now();
    RETURN OLD;
END $$;
CREATE TRIGGER api_tokens_forget AFTER DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION api_tokens_forget();
"#;

/// Version 2: the mark of a token revoked by possession of its secret, and the
/// record rules every store keeps as `CHECK` constraints (a previous hash differs from the
/// current one; a revoked token is disabled, holds no hash, and says when and how). The stamp
/// trigger learns the new columns, so a revocation made by hand reaches the replicas too.
const V2: &str = r#"
ALTER TABLE api_tokens
    ADD COLUMN revoked_at bigint,
    ADD COLUMN revoked_by text,
    ADD CONSTRAINT api_tokens_previous_hash_differs
        CHECK (previous_hash IS NULL OR previous_hash <> secret_hash),
    ADD CONSTRAINT api_tokens_revoked_has_time_and_cause
        CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)),
    ADD CONSTRAINT api_tokens_revoked_by_is_known
        CHECK (revoked_by IS NULL OR revoked_by = 'possession'),
    ADD CONSTRAINT api_tokens_revoked_is_disabled
        CHECK (revoked_at IS NULL OR status = 1),
    ADD CONSTRAINT api_tokens_revoked_has_no_secret
        CHECK (revoked_at IS NULL OR (secret_hash IS NULL AND previous_hash IS NULL));
DROP TRIGGER api_tokens_stamp_update ON api_tokens;
CREATE TRIGGER api_tokens_stamp_update BEFORE UPDATE OF
    id, owner, name, description, creator, status, created_at, expires_at, permissions,
    allowlist, secret_hash, generated_at, previous_hash, previous_valid_until, revision,
    revoked_at, revoked_by, change_seq
    ON api_tokens FOR EACH ROW EXECUTE FUNCTION api_tokens_stamp();
"#;

/// Version 3: how each hash was made, so a store opened under the wrong key says
/// so: the id of the key (8 bytes) and, for an imported hash, its legacy scheme. Rows from
/// before keep NULL key ids (unrecorded: looked up under every key held, labelled when a
/// secret first matches). The stamp trigger learns the new columns, so a re-hash reaches the
/// replicas.
const V3: &str = r#"
ALTER TABLE api_tokens
    ADD COLUMN secret_key_id bytea CHECK (octet_length(secret_key_id) = 8),
    ADD COLUMN secret_legacy text,
    ADD COLUMN previous_key_id bytea CHECK (octet_length(previous_key_id) = 8),
    ADD COLUMN previous_legacy text,
    ADD CONSTRAINT api_tokens_secret_scheme_needs_hash
        CHECK ((secret_key_id IS NULL AND secret_legacy IS NULL) OR secret_hash IS NOT NULL),
    ADD CONSTRAINT api_tokens_previous_scheme_needs_hash
        CHECK ((previous_key_id IS NULL AND previous_legacy IS NULL) OR previous_hash IS NOT NULL),
    ADD CONSTRAINT api_tokens_legacy_is_known
        CHECK ((secret_legacy IS NULL OR secret_legacy IN ('zabbix-sha512', 'sha256'))
           AND (previous_legacy IS NULL OR previous_legacy IN ('zabbix-sha512', 'sha256'))),
    ADD CONSTRAINT api_tokens_legacy_has_key_id
        CHECK ((secret_legacy IS NULL OR secret_key_id IS NOT NULL)
           AND (previous_legacy IS NULL OR previous_key_id IS NOT NULL));
DROP TRIGGER api_tokens_stamp_update ON api_tokens;
CREATE TRIGGER api_tokens_stamp_update BEFORE UPDATE OF
    id, owner, name, description, creator, status, created_at, expires_at, permissions,
    allowlist, secret_hash, generated_at, previous_hash, previous_valid_until, revision,
    revoked_at, revoked_by, secret_key_id, secret_legacy, previous_key_id, previous_legacy,
    change_seq
    ON api_tokens FOR EACH ROW EXECUTE FUNCTION api_tokens_stamp();
"#;

/// Version 4: a `TRUNCATE api_tokens` made by hand (say, wiping every token after a breach)
/// reaches the replicas. `TRUNCATE` fires no row trigger, so without this the clock would not
/// move, no deletion would be recorded and replicas would keep honouring every token. The
/// statement trigger moves the clock (notifying) and sets `pruned_through` to the new value:
/// every replica is then behind the deletion horizon and reloads everything. A rolled-back
/// `TRUNCATE` rolls the clock back with it.
const V4: &str = r#"
CREATE FUNCTION api_tokens_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s bigint := api_token_tick();
BEGIN
    UPDATE api_token_clock SET pruned_through = s WHERE one = 1;
    DELETE FROM api_token_deleted;
    RETURN NULL;
END $$;
CREATE TRIGGER api_tokens_truncated BEFORE TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_truncated();
"#;

/// Version 5: the stamp trigger keeps two rules for writers that do not know them.
///
/// * **A change made by hand moves the revision.** The store's own updates move it
///   themselves; an operator's `UPDATE api_tokens SET status = 1 …` during an incident did
///   not, so a write the store had prepared before it (a re-hash on use, say) still matched
///   its revision and put the old row back. Now any stamped update that leaves the revision
///   as it was moves it by one: a write read before the change is refused as a conflict.
/// * **A hash gone takes its scheme with it.** A process built before version 3 (still
///   connected while another migrates) revokes by setting the hash to NULL and knows nothing
///   of the scheme columns; version 3's rules then refused its revocation. The trigger clears
///   the scheme of a NULL hash before the rules are checked, so such a revocation commits.
const V5: &str = r#"
CREATE OR REPLACE FUNCTION api_tokens_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := api_token_tick();
    IF TG_OP = 'INSERT' THEN
        DELETE FROM api_token_deleted WHERE id = NEW.id;
    ELSIF NEW.revision = OLD.revision THEN
        NEW.revision := (OLD.revision + 1) % 4294967296;
    END IF;
    IF NEW.secret_hash IS NULL THEN
        NEW.secret_key_id := NULL;
        NEW.secret_legacy := NULL;
    END IF;
    IF NEW.previous_hash IS NULL THEN
        NEW.previous_key_id := NULL;
        NEW.previous_legacy := NULL;
    END IF;
    RETURN NEW;
END $$;
"#;

/// Version 6: what a replica needs to prove its copy is the database's, whatever happened to
/// the database.
///
/// * **The history.** `api_token_history` gives every clock value a random nonce, written by
///   the transaction that moved the clock to it. A copy at clock value `n` follows the
///   database's present history iff the database still holds `n` with the nonce the copy
///   recorded: a restore from a dump, a point-in-time recovery, a failover to a standby that
///   missed the last transactions, or another database altogether all hand out clock values
///   again with new nonces, so a copy from before is told apart even when the clock has
///   since moved past it. Rows older than the deletion horizon are pruned with the deletion
///   records.
/// * **The transaction's clock value** is remembered in a transaction-local setting
///   (`api_tokens.tick`) instead of the clock row's `xact`: a transaction id restored from a
///   dump into another cluster can be handed out there again, and a transaction that drew it
///   would not have moved the clock.
/// * **The fingerprint.** `sec_fp` is a generated column: 64 bits of an MD5 over the
///   security-relevant columns (id, owner, status, expiry, permissions, allowlist, both hashes
///   with their schemes and the previous one's deadline, revocation), computed by PostgreSQL on
///   every write by any path — with triggers off too (`session_replication_role = replica`,
///   `pg_restore --disable-triggers`, `DISABLE TRIGGER`), which no trigger-based mechanism
///   sees. Replicas compare sums of it with their copy's (the crate computes the same
///   fingerprint from a record: `row::fingerprint`) and repair what differs. MD5 here is a
///   checksum between two copies the operator controls, not a defence against someone who can
///   write the table (who could write any token directly).
/// * **Membership.** `api_token_replicas` holds one row per running replica: a lease it renews
///   with every confirmation, and the clock value (with its nonce) it last applied. A write
///   that takes rights away waits until every replica with a live lease has applied it; a
///   replica that cannot renew stops authenticating before its lease ends.
const V6: &str = r#"
CREATE TABLE api_token_history (
    seq   bigint      PRIMARY KEY CHECK (seq >= 0),
    nonce uuid        NOT NULL DEFAULT gen_random_uuid(),
    at    timestamptz NOT NULL DEFAULT now()
);
INSERT INTO api_token_history (seq) SELECT seq FROM api_token_clock WHERE one = 1;

CREATE OR REPLACE FUNCTION api_token_tick() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    mine text := current_setting('api_tokens.tick', true);
    s bigint;
BEGIN
    IF mine IS NOT NULL AND mine <> '' THEN
        s := mine::bigint;
    ELSE
        UPDATE api_token_clock SET seq = seq + 1, xact = txid_current()
            WHERE one = 1 RETURNING seq INTO s;
        INSERT INTO api_token_history (seq) VALUES (s)
            ON CONFLICT (seq) DO UPDATE SET nonce = gen_random_uuid(), at = now();
        PERFORM set_config('api_tokens.tick', s::text, true);
    END IF;
    PERFORM pg_notify('api_tokens', s::text);
    RETURN s;
END $$;

ALTER TABLE api_tokens ADD COLUMN sec_fp bigint GENERATED ALWAYS AS (
    ('x' || left(md5(
           id::text
        || '|' || octet_length(owner)::text || ':' || owner
        || '|' || status::text
        || '|' || coalesce(expires_at::text, '-')
        || '|' || octet_length(permissions)::text || ':' || permissions
        || '|' || octet_length(allowlist)::text || ':' || allowlist
        || '|' || coalesce(encode(secret_hash, 'hex'), '-')
        || '|' || coalesce(encode(secret_key_id, 'hex'), '-')
        || '|' || coalesce(octet_length(secret_legacy)::text || ':' || secret_legacy, '-')
        || '|' || coalesce(encode(previous_hash, 'hex'), '-')
        || '|' || coalesce(previous_valid_until::text, '-')
        || '|' || coalesce(encode(previous_key_id, 'hex'), '-')
        || '|' || coalesce(octet_length(previous_legacy)::text || ':' || previous_legacy, '-')
        || '|' || coalesce(revoked_at::text, '-')
        || '|' || coalesce(octet_length(revoked_by)::text || ':' || revoked_by, '-')
    ), 16))::bit(64)::bigint
) STORED;

CREATE TABLE api_token_replicas (
    id            bigint      PRIMARY KEY,
    name          text        NOT NULL,
    lease_until   timestamptz NOT NULL,
    lease_ms      bigint      NOT NULL CHECK (lease_ms > 0),
    applied_seq   bigint,
    applied_nonce uuid,
    started_at    timestamptz NOT NULL DEFAULT now()
);
"#;

/// Version 7: what each imported token was imported from (`imported_from`: 32 bytes, the
/// token's [`ImportOrigin`](crate::ImportOrigin)), kept for the token's life so that the same
/// legacy hash is never imported twice, with a partial index for the import's lookup. Rows
/// from before keep NULL (no origin recorded). The column is not in the stamp trigger's list:
/// it never takes part in authentication, the store's own writes are stamped anyway (they move
/// the revision), and imports look origins up in the database, never in a replica's copy.
const V7: &str = r#"
ALTER TABLE api_tokens
    ADD COLUMN imported_from bytea CHECK (octet_length(imported_from) = 32);
CREATE INDEX api_tokens_imported_from ON api_tokens (imported_from)
    WHERE imported_from IS NOT NULL;
"#;

/// Every migration, in order: `(version it brings the database to, SQL)`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, V1),
    (2, V2),
    (3, V3),
    (4, V4),
    (5, V5),
    (6, V6),
    (7, V7),
];

/// Brings the database to [`LATEST`], or refuses a newer one. Idempotent.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(StoreError::backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(StoreError::backend)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS api_tokens_schema (
             one     smallint PRIMARY KEY CHECK (one = 1),
             version bigint   NOT NULL
         )",
    )
    .await
    .map_err(StoreError::backend)?;
    let found: i64 = tx
        .query_opt("SELECT version FROM api_tokens_schema WHERE one = 1", &[])
        .await
        .map_err(StoreError::backend)?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(StoreError::backend)?
        .unwrap_or(0);
    if found > LATEST {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: LATEST,
        });
    }
    if found == LATEST {
        return tx.commit().await.map_err(StoreError::backend);
    }
    if found == 1 {
        // Version 2 adds constraints: name a row that would break one rather than fail with
        // the database's generic message (the migration then changes nothing).
        if let Some(row) = tx
            .query_opt(
                "SELECT id FROM api_tokens WHERE previous_hash = secret_hash ORDER BY id LIMIT 1",
                &[],
            )
            .await
            .map_err(StoreError::backend)?
        {
            let id: i64 = row.try_get(0).map_err(StoreError::backend)?;
            return Err(StoreError::Inconsistent {
                token: crate::token::TokenId::new(u64::try_from(id).unwrap_or_default()),
                problem: "the previous secret hash equals the current one",
            });
        }
    }
    for (version, sql) in MIGRATIONS {
        if *version > found {
            tx.batch_execute(sql).await.map_err(StoreError::backend)?;
        }
    }
    tx.execute(
        "INSERT INTO api_tokens_schema (one, version) VALUES (1, $1)
         ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
        &[&LATEST],
    )
    .await
    .map_err(StoreError::backend)?;
    tx.commit().await.map_err(StoreError::backend)
}
