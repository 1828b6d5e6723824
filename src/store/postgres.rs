//! [`PostgresStore`]: a [`TokenStore`] over PostgreSQL (feature `postgres`), and the source of
//! truth a fleet of [`Replica`](super::replica::Replica)s reads from.
//!
//! * **Schema**: created and migrated by the store itself when it connects (`schema.rs`:
//!   versioned, idempotent, serialised between processes; a newer schema is refused with
//!   [`StoreError::SchemaTooNew`]).
//! * **Batches**: each [`TokenStore::apply`] is one transaction. It first moves the change
//!   clock (`api_token_clock.seq`), whose row lock serialises writers, so batches commit in
//!   clock order; then deletes, replaces (`UPDATE … WHERE revision = $rev`: a stale read is
//!   refused in SQL, [`StoreError::Conflict`]), inserts, and the `UNIQUE (owner, name)` and
//!   hash-uniqueness checks. Triggers stamp each written row with the clock value, record
//!   deleted ids, and `NOTIFY api_tokens` (they do the same for a change made by hand in SQL).
//!   A batch is one statement per kind of change, however many tokens it holds.
//! * **Ids** come from the sequence `api_token_ids`.
//! * **Last use** is buffered in memory and written in one statement per flush, merged in SQL
//!   so a later instant is never overwritten by an earlier one (several processes write it).
//!   The buffer is written when [`PostgresStore::flush`] is called, before every read and
//!   write the store makes, in the background once the touch interval has passed (an
//!   authentication never waits for it nor fails because of it: a row locked elsewhere or a
//!   slow database delays only the bookkeeping, and a failed write keeps the uses for the next
//!   flush), and on drop; a crash loses at most the uses of the last interval. Flushes go
//!   through one connection of their own besides the pool (so a write waiting on a row lock
//!   never holds a connection a lookup needs), one at a time: a read waits for a flush in
//!   flight and sees every use noted before it.
//! * **Changes made by hand** in SQL are stamped like the store's own (clock, `NOTIFY`) and
//!   move the revision (schema version 5), so a write the store prepared before them is
//!   refused as a conflict rather than applied over them; a hash set to NULL loses its scheme
//!   with it, so a process older than the scheme columns can still revoke.
//! * **Lists parsed once**: authentication without a replica keeps each looked-up token's
//!   parsed permissions and allowlist, keyed on the row's revision *and* change clock value,
//!   so an `UPDATE` made by hand in SQL is seen at the next request.
//! * **`TRUNCATE api_tokens`** by hand moves the clock and the deletion horizon (schema
//!   version 4): every replica reloads.
//! * **History and fingerprints** (schema version 6): every clock value gets a random nonce,
//!   so replicas tell a restored or replaced database apart; every row carries a generated
//!   fingerprint of its security-relevant columns, so replicas find changes that no trigger
//!   saw (see [`replica`](super::replica)).
//! * **Revocation is final when it returns**: a batch that replaces or deletes a token waits,
//!   after its commit, until every replica of the fleet applied it or its lease ran out
//!   (`fleet.rs`; [`PostgresOptions::confirm_writes`], [`PostgresStore::propagation`]). A
//!   store without replicas in the fleet waits for nothing.
//! * **Runtime**: the driver is `tokio-postgres`, run on a small runtime the store owns. Every
//!   call of the sync [`TokenStore`] API hands its work to that runtime and waits, so it works
//!   the same from a plain thread, from `spawn_blocking` and from inside an async task (where it
//!   never panics, but does block that task's thread: see [`AsyncTokens`](crate::AsyncTokens)
//!   for the way an async host calls management).
//!
//! Without a replica, every authentication is one round trip to the database; with one, none.
//!
//! # TLS
//!
//! Every connection (the pool's, the last-use flush's, a replica's listener) uses rustls as
//! libpq's `sslmode` and `sslrootcert` say, written as operators write them for `psql`: in a
//! `key=value` string (`sslmode=verify-full sslrootcert=/etc/ssl/db-ca.pem`, values quoted
//! libpq's way) or a URL (`postgresql://app@db.internal/app?sslmode=verify-full&sslrootcert=…`,
//! percent-encoded), or in code ([`PostgresOptions::ssl_mode`],
//! [`PostgresOptions::ssl_root_cert`]).
//!
//! | `sslmode` | encrypted | the certificate is checked | protects against |
//! | --- | --- | --- | --- |
//! | `disable` | never | — | nothing |
//! | `allow`, `prefer` (the default) | when the server offers TLS | no (the chain, if `sslrootcert` is a file) | a passive eavesdropper, while no one interferes |
//! | `require` | always, or no connection | no; with an `sslrootcert` file, as `verify-ca` | a passive eavesdropper |
//! | `verify-ca` | always | chains to a trusted root | an active attacker without a certificate from that CA |
//! | `verify-full` | always | chains to a trusted root **and** names `host=` (DNS name or IP address) | an active attacker: **use this** |
//!
//! * `sslrootcert` is a PEM file of CA certificates (read when the store connects), or
//!   `system`: the system's trust store, which implies `verify-full` and refuses any weaker
//!   mode (libpq's rule). `verify-ca`/`verify-full` without `sslrootcert` use the system's
//!   trust store too (`SSL_CERT_FILE` / `SSL_CERT_DIR` replace it when set); libpq would look
//!   for `~/.postgresql/root.crt` instead, which is not read here.
//! * `allow` is read as `prefer`: neither resists an attacker, and `prefer` encrypts whenever
//!   it can. `prefer` falls back to plaintext when the server answers that it has no TLS; a
//!   certificate refused under `prefer` with an `sslrootcert` file is an error, not a
//!   fallback.
//! * Unix-socket hosts never use TLS, whatever the mode (PostgreSQL offers none there; the
//!   socket's file permissions guard it). A host list mixing sockets and TCP hosts is refused
//!   under a mode that requires TLS.
//! * A refusal is [`StoreError::Tls`] from [`PostgresStore::connect`], naming the host and the
//!   cause ([`TlsFailure`]: unknown CA, name mismatch, expired, a server without TLS under
//!   `require` or stronger, an unreadable root file), with rustls' error as its source. No
//!   error or log carries the password.
//! * Other libpq TLS options (`sslcert`/`sslkey` client certificates, `sslcrl`, `sslsni`, …)
//!   are refused by name, as every option tokio-postgres does not know; channel binding
//!   (`channel_binding=require`, SCRAM-SHA-256-PLUS) works over TLS.
//! * The crypto is rustls with the `ring` provider, set on this store's connections only: the
//!   process-wide default provider is neither read nor installed.

mod conninfo;
mod fleet;
mod row;
pub mod schema;
mod sql;
mod tls;

pub use fleet::Propagation;
pub(crate) use fleet::{Member, RENEW, forget_departed, report};
pub(crate) use row::{FINGERPRINT, fingerprint};

/// Where a row's fingerprint is when it is selected after the record's columns.
pub(crate) const FINGERPRINT_AT: usize = row::NAMES.len();

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{
    AtomicBool, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::OwnedMutexGuard;
use tokio_postgres::{Client, Config, Statement, Transaction};

use super::{Candidate, Change, Query, TokenStore, batch_ids};
use crate::error::StoreError;
use crate::keys::{KeyUsage, sort_usage};
use crate::legacy::ImportOrigin;
use crate::secret::SecretHash;
use crate::store::sql::{corrupt, id_key, id_of, origin_of, scheme_of};
use crate::token::{LastUse, Token, TokenId, TokenName, UserId};
pub(crate) use row::token_of;
use row::{Columns, RuleCache, columns, token_cached, unnest};
pub(crate) use tls::PgConnection;
pub use tls::{SslMode, SslRootCert, TlsFailure, UnknownSslMode};

/// The channel every committed batch notifies, with the new clock value as payload.
pub const CHANNEL: &str = "api_tokens";

/// A pooled connection: reconnected on the next use once the server closed it.
type Slot = Arc<tokio::sync::Mutex<Option<Session>>>;

/// A connection and the statements prepared on it: each statement is parsed once per
/// connection, so a query costs one round trip, not two.
pub(crate) struct Session {
    pub(crate) client: Client,
    stmts: HashMap<String, Statement>,
    /// False while a hand-written transaction is open on it: a session abandoned in that
    /// state (its future was dropped) is closed rather than reused.
    pub(crate) clean: bool,
}

/// Query texts vary with a query's filters; the cache is bounded.
const MAX_STATEMENTS: usize = 256;

impl Session {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            stmts: HashMap::new(),
            clean: true,
        }
    }

    /// `sql` prepared on this connection (once).
    pub(crate) async fn stmt(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await.map_err(db)?;
        if self.stmts.len() >= MAX_STATEMENTS {
            self.stmts.clear();
        }
        self.stmts.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn usable(&self) -> bool {
        self.clean && !self.client.is_closed()
    }
}

/// What the store's runtime shares with its tasks (the runtime itself stays with the
/// [`PostgresStore`], so no task ever holds the last reference to it).
pub(crate) struct Pg {
    pub(crate) handle: Handle,
    pub(crate) config: Config,
    /// How connections use TLS (settled when the store connected).
    tls: tls::Tls,
    slots: Vec<Slot>,
    next_slot: AtomicUsize,
    pub(crate) timeout: Duration,
    pending: Mutex<Pending>,
    last_flush: Mutex<Instant>,
    touch_interval: Duration,
    /// A last-use flush started by authentication is running (at most one at a time).
    flushing: AtomicBool,
    /// The connection last-use writes go through, outside the pool: a write waiting on a row
    /// locked elsewhere never holds a connection a lookup or a management call needs. Its lock
    /// also orders flushes, so a read that flushes first waits for one in flight and sees
    /// every use noted before it.
    flush_slot: Slot,
    /// Parsed permission lists and allowlists of looked-up tokens, by id, revision and change
    /// clock value.
    rules: RuleCache,
    /// Writes that take rights away wait for every replica ([`PostgresOptions::confirm_writes`]).
    pub(crate) confirm_writes: bool,
    /// Propagation, last-use and error metrics (feature `metrics`), resolved at connect.
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::StoreMetrics,
}

/// The operation took longer than the store's timeout; it was abandoned (a transaction in
/// flight is rolled back).
#[derive(Debug, thiserror::Error)]
#[error("database operation timed out after {0:?}")]
pub(crate) struct TimedOut(pub(crate) Duration);

/// The store's runtime is gone (the store is being dropped).
#[derive(Debug, thiserror::Error)]
#[error("the store's runtime has shut down")]
struct RuntimeGone;

pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::backend(e)
}

/// A connection taken from the pool for one operation.
pub(crate) struct Conn(OwnedMutexGuard<Option<Session>>);

impl Conn {
    pub(crate) fn session(&mut self) -> Result<&mut Session, StoreError> {
        self.0
            .as_mut()
            .ok_or_else(|| corrupt("connection slot empty"))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A connection the server closed, or one left inside a transaction, is replaced on
        // the next use.
        if self.0.as_ref().is_some_and(|s| !s.usable()) {
            *self.0 = None;
        }
    }
}

impl Pg {
    /// Opens a connection with `config` (the store's, or a copy of it) over the store's TLS
    /// settings; the caller drives the connection.
    ///
    /// # Errors
    /// [`StoreError::Tls`] when TLS refused the server, else backend failures.
    pub(crate) async fn open(&self, config: &Config) -> Result<(Client, PgConnection), StoreError> {
        self.tls.connect(config).await
    }

    /// Opens a connection of the store and drives it on the current runtime.
    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.open(&self.config).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "api-tokens: database connection closed");
            }
        });
        Ok(client)
    }

    /// Runs `fut` on the store's runtime with the store's timeout and waits for it on the
    /// calling thread (which need not belong to any runtime).
    pub(crate) fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let limit = self.timeout;
        self.block_unbounded(async move {
            tokio::time::timeout(limit, fut)
                .await
                .unwrap_or_else(|_| Err(StoreError::backend(TimedOut(limit))))
        })
    }

    /// [`Pg::block`] for a future that bounds itself.
    pub(crate) fn block_unbounded<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let out = rx
            .recv()
            .unwrap_or_else(|_| Err(StoreError::backend(RuntimeGone)));
        #[cfg(feature = "metrics")]
        if let Err(StoreError::Backend(_) | StoreError::Unconfirmed { .. }) = &out {
            self.metrics.errors.increment(1);
        }
        out
    }

    /// A connection of the pool: a free one if any, else the next in turn once it is free.
    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        let n = self.slots.len().max(1);
        let start = self.next_slot.fetch_add(1, Relaxed) % n;
        let mut guard = None;
        for i in 0..n {
            if let Some(slot) = self.slots.get((start + i) % n)
                && let Ok(g) = slot.clone().try_lock_owned()
            {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => match self.slots.get(start) {
                Some(slot) => slot.clone().lock_owned().await,
                None => return Err(corrupt("empty connection pool")),
            },
        };
        if guard.as_ref().is_none_or(|s| !s.usable()) {
            *guard = Some(Session::new(self.connect().await?));
        }
        Ok(Conn(guard))
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Buffers a last use (the later one wins when the buffer is compacted).
    pub(crate) fn note_use(&self, id: TokenId, used: LastUse) {
        let mut pending = self.pending();
        pending.push(id, used);
        #[cfg(feature = "metrics")]
        self.metrics.backlog.set(pending.uses.len() as f64);
    }

    /// Whether the touch interval has passed since the last flush.
    fn flush_due(&self) -> bool {
        self.last_flush
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            >= self.touch_interval
    }

    /// Writes every buffered last use in one statement on the flush connection, within the
    /// store's timeout; on failure (a timeout included) they stay buffered. Waits for a flush
    /// in flight first.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let mut slot = self.flush_slot.clone().lock_owned().await;
        let batch = self.pending().take();
        *self.last_flush.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        if batch.is_empty() {
            return Ok(());
        }
        let limit = self.timeout;
        let write = async {
            if slot.as_ref().is_none_or(|s| !s.usable()) {
                *slot = Some(Session::new(self.connect().await?));
            }
            match slot.as_mut() {
                Some(session) => write_last_uses(session, &batch).await,
                None => Err(corrupt("flush connection missing")),
            }
        };
        let r = tokio::time::timeout(limit, write)
            .await
            .unwrap_or_else(|_| Err(StoreError::backend(TimedOut(limit))));
        if r.is_err() {
            // The connection may have been left mid-transaction: the next flush opens another.
            *slot = None;
            for (id, used) in batch {
                self.note_use(id, used);
            }
        }
        #[cfg(feature = "metrics")]
        {
            let m = &self.metrics;
            match r {
                Ok(()) => m.flushed.increment(1),
                Err(_) => m.flush_failed.increment(1),
            }
            m.backlog.set(self.pending().uses.len() as f64);
        }
        r
    }

    /// Starts a flush on the store's runtime and returns at once: authentication never waits
    /// for last-use bookkeeping, and never fails because of it (a row lock held elsewhere, a
    /// slow or unreachable database). A failed flush keeps the uses buffered for the next one
    /// and is logged. At most one such flush runs at a time.
    fn flush_in_background(self: &Arc<Self>) {
        if self
            .flushing
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_err()
        {
            return;
        }
        let pg = self.clone();
        self.handle.spawn(async move {
            let r = pg.flush().await;
            pg.flushing.store(false, Release);
            if let Err(e) = r {
                tracing::warn!(error = %e, "api-tokens: writing last uses failed; kept for the next flush");
            }
        });
    }

    /// After a batch that took rights away committed: waits for the fleet (`fleet.rs`),
    /// reports what it waited for, and logs it.
    pub(crate) async fn confirm(
        &self,
        seq: u64,
        committed: Instant,
        me: Option<i64>,
    ) -> Result<Propagation, StoreError> {
        let p = fleet::await_replicas(self, seq, committed, me).await?;
        #[cfg(feature = "metrics")]
        {
            self.metrics.propagation.record(p.waited.as_secs_f64());
            self.metrics.lapsed.increment(p.lapsed.len() as u64);
        }
        if p.lapsed.is_empty() {
            tracing::debug!(
                seq = p.seq,
                confirmed = p.confirmed.len(),
                waited_us = p.waited.as_micros() as u64,
                "api-tokens: change applied by every replica"
            );
        } else {
            tracing::warn!(
                seq = p.seq,
                confirmed = p.confirmed.len(),
                lapsed = ?p.lapsed,
                waited_ms = p.waited.as_millis() as u64,
                "api-tokens: change not confirmed by some replicas before their leases ran out; they no longer authenticate"
            );
        }
        Ok(p)
    }

    async fn flush_if_pending(&self) -> Result<(), StoreError> {
        if self.pending().is_empty() && !self.flushing.load(Acquire) {
            Ok(())
        } else {
            self.flush().await
        }
    }
}

/// Last uses waiting to be written. A push is an append (the hot path of a replica pays a
/// short lock and no hashing); the list is compacted — one entry per token, the latest — when
/// it doubles, so it stays within twice the number of tokens used since the last flush.
#[derive(Default)]
struct Pending {
    uses: Vec<(TokenId, LastUse)>,
    compact_at: usize,
}

impl Pending {
    const MIN_COMPACT: usize = 4096;

    fn push(&mut self, id: TokenId, used: LastUse) {
        self.uses.push((id, used));
        if self.uses.len() >= self.compact_at.max(Self::MIN_COMPACT) {
            self.compact();
            self.compact_at = self.uses.len().saturating_mul(2);
        }
    }

    /// One entry per token: its latest use.
    fn compact(&mut self) {
        self.uses
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.at.cmp(&a.1.at)));
        self.uses.dedup_by_key(|u| u.0);
    }

    fn is_empty(&self) -> bool {
        self.uses.is_empty()
    }

    fn take(&mut self) -> Vec<(TokenId, LastUse)> {
        self.compact();
        self.compact_at = 0;
        std::mem::take(&mut self.uses)
    }
}

/// The merge rule for last use, in SQL: a later instant is never overwritten by an earlier one,
/// whichever process writes last. Rows are locked in id order, the order every batch locks
/// them in, so writers never deadlock.
async fn write_last_uses(
    session: &mut Session,
    batch: &[(TokenId, LastUse)],
) -> Result<(), StoreError> {
    let mut ids = Vec::with_capacity(batch.len());
    let mut ats = Vec::with_capacity(batch.len());
    let mut ips: Vec<Option<String>> = Vec::with_capacity(batch.len());
    for (id, used) in batch {
        if let Some(key) = id_key(*id) {
            ids.push(key);
            ats.push(used.at.unix_timestamp());
            ips.push(used.ip.map(|ip| ip.to_string()));
        }
    }
    let lock = session.stmt(LOCK_ROWS).await?;
    let write = session
        .stmt(
            "UPDATE api_tokens AS t SET last_used_at = v.at, last_used_ip = v.ip
             FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS v(id, at, ip)
             WHERE t.id = v.id AND (t.last_used_at IS NULL OR t.last_used_at <= v.at)",
        )
        .await?;
    let tx = session.client.transaction().await.map_err(db)?;
    tx.execute(&lock, &[&ids]).await.map_err(db)?;
    tx.execute(&write, &[&ids, &ats, &ips]).await.map_err(db)?;
    tx.commit().await.map_err(db)
}

/// What a committed batch wrote: the clock value it committed at (with the history's nonces
/// for it and the value before it), the rows as stored with their fingerprints, and the ids it
/// deleted. A replica installs exactly this.
pub(crate) struct Committed {
    pub(crate) seq: u64,
    /// The history's nonce for `seq - 1`: the batch follows a copy at `seq - 1` only if that
    /// copy recorded the same one.
    pub(crate) before: Option<Nonce>,
    /// The history's nonce for `seq`.
    pub(crate) nonce: Option<Nonce>,
    pub(crate) rows: Vec<(Token, u64)>,
    pub(crate) deleted: Vec<TokenId>,
    /// When the commit was seen: a write waits for the fleet from here.
    pub(crate) at: Instant,
    /// Whether the batch replaced or deleted a token (and so may have taken rights away).
    pub(crate) takes_rights: bool,
}

/// A clock value's nonce in `api_token_history` (schema version 6): a random UUID as 128 bits.
pub(crate) type Nonce = u128;

/// A nonce read as text (`nonce::text`); `None` for NULL or anything that is not a UUID.
pub(crate) fn nonce_of(text: Option<&str>) -> Option<Nonce> {
    let hex: String = text?.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

/// A row's fingerprint column (after the [`row::NAMES`] columns, at `at`).
pub(crate) fn fingerprint_at(row: &tokio_postgres::Row, at: usize) -> Result<u64, StoreError> {
    row.try_get::<_, i64>(at).map(|v| v as u64).map_err(db)
}

fn seq_of(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(format!("change clock at {v}")))
}

/// Moves the change clock for this transaction (see schema.rs).
const TICK: &str = "SELECT api_token_tick()";

/// The history's nonces of the transaction's clock value and the one before it: a statement
/// of its own after [`TICK`], whose snapshot sees the nonce the tick wrote.
const NONCES: &str = "SELECT h.seq, h.nonce::text FROM api_token_history AS h, api_token_clock AS c
     WHERE c.one = 1 AND h.seq IN (c.seq - 1, c.seq)";

/// Locks existing rows in id order: every writer locks in this order, so none deadlock.
const LOCK_ROWS: &str = "SELECT id FROM api_tokens WHERE id = ANY($1) ORDER BY id FOR UPDATE";

fn update_sql() -> String {
    let set: Vec<String> = row::NAMES
        .iter()
        .filter(|n| !matches!(**n, "id" | "revision" | "last_used_at" | "last_used_ip"))
        .map(|n| format!("{n} = v.{n}"))
        .collect();
    format!(
        "UPDATE api_tokens AS t SET {},
             revision = (t.revision + 1) % 4294967296,
             change_seq = ${seq},
             -- A use recorded since the caller read the token is kept.
             last_used_at = CASE WHEN t.last_used_at > v.last_used_at OR v.last_used_at IS NULL
                                 THEN t.last_used_at ELSE v.last_used_at END,
             last_used_ip = CASE WHEN t.last_used_at > v.last_used_at OR v.last_used_at IS NULL
                                 THEN t.last_used_ip ELSE v.last_used_ip END
         FROM {}
         WHERE t.id = v.id AND t.revision = v.revision
         RETURNING {}, t.{}",
        set.join(", "),
        unnest(1),
        columns("t."),
        row::FINGERPRINT,
        seq = row::NAMES.len() + 1,
    )
}

fn insert_sql() -> String {
    format!(
        "INSERT INTO api_tokens ({}, change_seq) SELECT v.*, ${} FROM {} RETURNING {}, {}",
        columns(""),
        row::NAMES.len() + 1,
        unnest(1),
        columns(""),
        row::FINGERPRINT,
    )
}

/// `UNIQUE (owner, name)` over the rows a batch wrote.
const NAME_CLASH: &str = "SELECT t.owner, t.name FROM api_tokens AS t
     JOIN unnest($1::text[], $2::text[]) AS v(owner, name)
       ON t.owner = v.owner AND t.name = v.name
     GROUP BY t.owner, t.name HAVING count(DISTINCT t.id) > 1 LIMIT 1";

/// A hash held twice, in either column (no single index sees both).
const HASH_CLASH: &str = "SELECT h FROM (
         SELECT secret_hash AS h FROM api_tokens WHERE secret_hash = ANY($1)
         UNION ALL
         SELECT previous_hash FROM api_tokens WHERE previous_hash = ANY($1)
     ) AS x GROUP BY h HAVING count(*) > 1 LIMIT 1";

/// The statements of a batch, prepared before its transaction begins.
struct BatchStatements {
    clock: Statement,
    nonces: Statement,
    lock: Statement,
    delete: Statement,

    update: Statement,
    insert: Statement,

    names: Statement,
    hashes: Statement,
}

impl BatchStatements {
    async fn prepare(s: &mut Session) -> Result<Self, StoreError> {
        Ok(Self {
            // The triggers' clock value for this transaction, taken first (see schema.rs).
            clock: s.stmt(TICK).await?,
            nonces: s.stmt(NONCES).await?,
            lock: s.stmt(LOCK_ROWS).await?,
            delete: s.stmt("DELETE FROM api_tokens WHERE id = ANY($1)").await?,

            update: s.stmt(&update_sql()).await?,
            insert: s.stmt(&insert_sql()).await?,

            names: s.stmt(NAME_CLASH).await?,
            hashes: s.stmt(HASH_CLASH).await?,
        })
    }
}

/// One batch, in one transaction (see the module docs for the steps).
pub(crate) async fn apply_batch(
    session: &mut Session,
    changes: Vec<Change>,
) -> Result<Committed, StoreError> {
    let seen = batch_ids(&changes)?;
    let (mut inserts, mut replaces, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    for c in &changes {
        if let Change::Insert(t) | Change::Replace(t) = c {
            t.check_consistent()?;
            // The fleet keeps no limits' state yet: a token with limits is refused, never
            // stored without them (it would be unlimited on every replica).
            if t.limits.is_some() {
                return Err(StoreError::LimitsUnsupported);
            }
        }
        match c {
            Change::Insert(t) => inserts.push(t),
            Change::Replace(t) => replaces.push(t),
            Change::Delete(id) => deletes.push(*id),
        }
    }
    let st = BatchStatements::prepare(session).await?;
    let tx = session.client.transaction().await.map_err(db)?;
    // The change clock first: its row lock serialises batches, so they commit in clock order.
    let (tick, nonces) = tokio::join!(tx.query_one(&st.clock, &[]), tx.query(&st.nonces, &[]));
    let seq: i64 = tick.map_err(db)?.try_get(0).map_err(db)?;
    let (mut before, mut nonce) = (None, None);
    for r in nonces.map_err(db)? {
        let at: i64 = r.try_get(0).map_err(db)?;
        let n = nonce_of(r.try_get::<_, Option<&str>>(1).map_err(db)?);
        if at == seq {
            nonce = n;
        } else if at == seq - 1 {
            before = n;
        }
    }
    let touched: Vec<i64> = seen.iter().filter_map(|id| id_key(*id)).collect();
    let existing: HashSet<i64> = tx
        .query(&st.lock, &[&touched])
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.try_get::<_, i64>(0))
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let exists = |id: TokenId| id_key(id).is_some_and(|k| existing.contains(&k));
    for c in &changes {
        match c {
            Change::Insert(t) if exists(t.id) => return Err(StoreError::IdTaken(t.id)),
            Change::Replace(t) if !exists(t.id) => return Err(StoreError::NotFound(t.id)),
            Change::Delete(id) if !exists(*id) => return Err(StoreError::NotFound(*id)),
            _ => {}
        }
    }
    let mut rows = Vec::new();
    if !deletes.is_empty() {
        let keys: Vec<i64> = deletes.iter().filter_map(|id| id_key(*id)).collect();
        // The delete trigger records each id for the replicas.
        tx.execute(&st.delete, &[&keys]).await.map_err(db)?;
    }
    if !replaces.is_empty() {
        let cols = Columns::of(replaces.iter().copied())?;
        let mut params = cols.params().to_vec();
        params.push(&seq);
        // Revisions are enforced here: a row read at an older revision is not updated.
        let updated = tx.query(&st.update, &params).await.map_err(db)?;
        let done: HashSet<TokenId> = updated
            .iter()
            .map(|r| r.try_get::<_, i64>(0).map_err(db).and_then(id_of))
            .collect::<Result<_, _>>()?;
        if let Some(stale) = replaces.iter().find(|t| !done.contains(&t.id)) {
            return Err(StoreError::Conflict(stale.id));
        }
        for r in &updated {
            rows.push((token_of(r)?, fingerprint_at(r, row::NAMES.len())?));
        }
    }
    if !inserts.is_empty() {
        let cols = Columns::of(inserts.iter().copied())?;
        let mut params = cols.params().to_vec();
        params.push(&seq);
        let inserted = tx.query(&st.insert, &params).await.map_err(db)?;
        for r in &inserted {
            rows.push((token_of(r)?, fingerprint_at(r, row::NAMES.len())?));
        }
    }
    check_unique(&tx, &st, rows.iter().map(|(t, _)| t)).await?;
    tx.commit().await.map_err(db)?;
    let takes_rights = !replaces.is_empty() || !deletes.is_empty();
    Ok(Committed {
        seq: seq_of(seq)?,
        before,
        nonce,
        rows,
        deleted: deletes,
        at: Instant::now(),
        takes_rights,
    })
}

/// `UNIQUE (owner, name)` and unique hashes across both hash columns, checked against the
/// state the batch produced (before commit, so the error can name the owner and name). Writers
/// are serialised by the change clock, so no other batch can slip in between.
async fn check_unique<'a>(
    tx: &Transaction<'_>,
    st: &BatchStatements,
    rows: impl ExactSizeIterator<Item = &'a Token>,
) -> Result<(), StoreError> {
    if rows.len() == 0 {
        return Ok(());
    }
    let cols = Columns::of(rows)?;
    let (owners, names) = cols.owners_and_names();
    if let Some(r) = tx
        .query_opt(&st.names, &[&owners, &names])
        .await
        .map_err(db)?
    {
        let owner: String = r.try_get(0).map_err(db)?;
        return Err(StoreError::NameTaken {
            owner: UserId::new(&owner).map_err(corrupt)?,
            name: r.try_get(1).map_err(db)?,
        });
    }
    let hashes = cols.hashes();
    if tx
        .query_opt(&st.hashes, &[&hashes])
        .await
        .map_err(db)?
        .is_some()
    {
        return Err(StoreError::HashTaken);
    }
    Ok(())
}

async fn get_token(s: &mut Session, id: TokenId) -> Result<Option<Token>, StoreError> {
    let Some(key) = id_key(id) else {
        return Ok(None);
    };
    let sql = format!("SELECT {} FROM api_tokens WHERE id = $1", columns(""));
    one_token(s, &sql, &key, token_of).await
}

async fn by_hash(
    s: &mut Session,
    hash: SecretHash,
    rules: &RuleCache,
) -> Result<Option<Token>, StoreError> {
    let bytes = hash.as_bytes().to_vec();
    let cols = columns("");
    let sql = format!(
        "SELECT {cols}, change_seq FROM api_tokens WHERE secret_hash = $1
         UNION ALL SELECT {cols}, change_seq FROM api_tokens WHERE previous_hash = $1 LIMIT 1"
    );
    one_token(s, &sql, &bytes, |r| token_cached(r, rules)).await
}

/// The token in the row (if any) that `sql` selects with the one parameter `key`, read by
/// `read`.
async fn one_token(
    s: &mut Session,
    sql: &str,
    key: &(dyn tokio_postgres::types::ToSql + Sync),
    read: impl FnOnce(&tokio_postgres::Row) -> Result<Token, StoreError>,
) -> Result<Option<Token>, StoreError> {
    let st = s.stmt(sql).await?;
    s.client
        .query_opt(&st, &[key])
        .await
        .map_err(db)?
        .as_ref()
        .map(read)
        .transpose()
}

async fn query_tokens(
    s: &mut Session,
    query: &Query,
    now: OffsetDateTime,
) -> Result<Vec<Token>, StoreError> {
    let st = sql::select(query, now);
    let prepared = s.stmt(&st.sql).await?;
    let rows = s.client.query(&prepared, &st.params()).await.map_err(db)?;
    let mut out = rows.iter().map(token_of).collect::<Result<Vec<_>, _>>()?;
    if sql::needs_rust_filter(query) {
        out.retain(|t| query.matches(t, now));
        if let Some(n) = query.limit {
            out.truncate(n);
        }
    }
    Ok(out)
}

/// A [`TokenStore`] over PostgreSQL. See the [module docs](self).
///
/// ```no_run
/// use api_tokens::Tokens;
/// use api_tokens::store::postgres::PostgresStore;
/// let store = PostgresStore::connect("host=127.0.0.1 user=app dbname=app")?;
/// let tokens = Tokens::new(store);
/// # Ok::<(), api_tokens::StoreError>(())
/// ```
pub struct PostgresStore {
    rt: Option<Runtime>,
    pub(crate) pg: Arc<Pg>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pg.slots.len())
            .field("timeout", &self.pg.timeout)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`PostgresStore`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Connections in the pool (default 4). Management calls and, without a replica,
    /// authentications share them.
    pub pool_size: usize,
    /// The longest a call may take before it fails (default 10 s); a transaction in flight is
    /// rolled back.
    pub timeout: Duration,
    /// Buffered last uses are written at least this often (default 10 s).
    pub touch_interval: Duration,
    /// Whether a write that replaces or deletes a token returns only once every replica of
    /// the fleet applied it or has provably stopped authenticating (default: yes). See
    /// [`Propagation`] and the module docs, *Revocation is final when it returns*.
    pub confirm_writes: bool,
    /// How connections use TLS (libpq's `sslmode`), when set in code. Default: the
    /// connection string's, else `prefer` (`verify-full` with [`SslRootCert::System`]). A
    /// connection string that names another is refused.
    pub ssl_mode: Option<SslMode>,
    /// The certificates that vouch for the server (libpq's `sslrootcert`), when set in code.
    /// Default: the connection string's, else the system's roots where the mode checks the
    /// certificate. A connection string that names another is refused.
    pub ssl_root_cert: Option<SslRootCert>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 4,
            timeout: Duration::from_secs(10),
            touch_interval: Duration::from_secs(10),
            confirm_writes: true,
            ssl_mode: None,
            ssl_root_cert: None,
        }
    }
}

impl PostgresOptions {
    /// Connections in the pool.
    #[must_use]
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// The longest a call may take.
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// How often buffered last uses are written at least.
    #[must_use]
    pub fn touch_interval(mut self, d: Duration) -> Self {
        self.touch_interval = d;
        self
    }

    /// Whether writes that take rights away wait for the fleet (`false`: they return once
    /// committed, and replicas apply them within their staleness bound, usually within
    /// milliseconds).
    #[must_use]
    pub fn confirm_writes(mut self, confirm: bool) -> Self {
        self.confirm_writes = confirm;
        self
    }

    /// How connections use TLS (libpq's `sslmode`): [`SslMode::VerifyFull`] in production.
    #[must_use]
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.ssl_mode = Some(mode);
        self
    }

    /// The certificates that vouch for the server (libpq's `sslrootcert`).
    #[must_use]
    pub fn ssl_root_cert(mut self, roots: SslRootCert) -> Self {
        self.ssl_root_cert = Some(roots);
        self
    }
}

/// One TLS setting given in code and in the connection string: the same value, or refused.
fn one_setting<T: PartialEq + fmt::Debug>(
    name: &str,
    in_string: Option<T>,
    in_code: Option<T>,
) -> Result<Option<T>, StoreError> {
    match (in_string, in_code) {
        (Some(a), Some(b)) if a != b => Err(StoreError::Config(format!(
            "{name} is set both in the connection string ({a:?}) and in PostgresOptions ({b:?}): \
             set it in one place"
        ))),
        (a, b) => Ok(b.or(a)),
    }
}

impl PostgresStore {
    /// Connects with a libpq connection string (`host=… user=… dbname=… sslmode=verify-full
    /// sslrootcert=…` or `postgresql://user@host/db?sslmode=verify-full`) and the default
    /// options, and brings the schema up to date. TLS follows `sslmode` and `sslrootcert` (see
    /// the [module docs](self#tls)).
    ///
    /// # Errors
    /// [`StoreError::Config`] when the string does not parse (the message says where, never
    /// what: a password could be anywhere) or asks for TLS that cannot work
    /// (`sslrootcert=system` with a weaker mode than `verify-full`, `verify-full` with only
    /// `hostaddr=`, a Unix socket beside TCP hosts under `require` or stronger);
    /// [`StoreError::Tls`] when TLS refused the server (its certificate, a server without TLS
    /// under a mode that requires it) or the root certificates cannot be loaded (an unreadable
    /// `sslrootcert`); backend failures when the server cannot be reached or
    /// tokio-postgres refuses an option; [`StoreError::SchemaTooNew`] when the schema is newer
    /// than this crate knows; or a migration fails.
    pub fn connect(params: &str) -> Result<Self, StoreError> {
        Self::connect_with(params, PostgresOptions::default())
    }

    /// [`PostgresStore::connect`] with `options`.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`], and [`StoreError::Config`] for a pool of zero
    /// connections, a zero timeout, or a TLS setting given both in the string and in
    /// `options` with different values.
    pub fn connect_with(params: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let info =
            conninfo::ConnInfo::parse(params).map_err(|e| StoreError::Config(e.to_string()))?;
        let in_string = info
            .ssl_mode()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let mode = one_setting("sslmode", in_string, options.ssl_mode)?;
        let root = one_setting(
            "sslrootcert",
            info.ssl_root_cert(),
            options.ssl_root_cert.clone(),
        )?;
        let mut config = info.config().map_err(db)?;
        Self::open(&mut config, mode, root.as_ref(), options)
    }

    /// [`PostgresStore::connect_with`] for a `tokio_postgres::Config` the host built. Its
    /// `ssl_mode` is used unless `options` set one ([`PostgresOptions::ssl_mode`] is the way
    /// to ask for `verify-ca` or `verify-full`, which `Config` cannot express).
    ///
    /// # Errors
    /// As [`PostgresStore::connect_with`].
    pub fn with_config(config: &mut Config, options: PostgresOptions) -> Result<Self, StoreError> {
        use tokio_postgres::config::SslMode as Wire;
        // `prefer` is `Config`'s default: it says nothing the defaults would not.
        let in_config = match config.get_ssl_mode() {
            Wire::Disable => Some(SslMode::Disable),
            Wire::Prefer => None,
            _ => Some(SslMode::Require),
        };
        let mode = options.ssl_mode.or(in_config);
        let root = options.ssl_root_cert.clone();
        Self::open(config, mode, root.as_ref(), options)
    }

    fn open(
        config: &mut Config,
        ssl_mode: Option<SslMode>,
        ssl_root_cert: Option<&SslRootCert>,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        if options.pool_size == 0 || options.pool_size > 1024 {
            return Err(StoreError::Config(format!(
                "pool size {} (1 to 1024)",
                options.pool_size
            )));
        }
        if options.timeout.is_zero() {
            return Err(StoreError::Config("a zero timeout".into()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("api-tokens");
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        let tls = tls::Tls::new(config, ssl_mode, ssl_root_cert)?;
        // Two workers: a replica's sync task keeps confirming while a management call or a
        // last-use flush is being encoded on the other.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("api-tokens-postgres")
            .enable_all()
            .build()
            .map_err(StoreError::backend)?;
        let pg = Arc::new(Pg {
            handle: rt.handle().clone(),
            config: config.clone(),
            tls,
            slots: (0..options.pool_size)
                .map(|_| Arc::new(tokio::sync::Mutex::new(None)))
                .collect(),
            next_slot: AtomicUsize::new(0),
            timeout: options.timeout,
            pending: Mutex::new(Pending::default()),
            last_flush: Mutex::new(Instant::now()),
            touch_interval: options.touch_interval,
            flushing: AtomicBool::new(false),
            flush_slot: Arc::new(tokio::sync::Mutex::new(None)),
            rules: RuleCache::default(),
            confirm_writes: options.confirm_writes,
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::StoreMetrics::resolve(),
        });
        let store = Self { rt: Some(rt), pg };
        let pg = store.pg.clone();
        store.pg.block(async move {
            let mut conn = pg.conn().await?;
            schema::migrate(&mut conn.session()?.client).await
        })?;
        Ok(store)
    }

    /// Writes every buffered last use now.
    ///
    /// # Errors
    /// Backend failures; the uses stay buffered for the next attempt.
    pub fn flush(&self) -> Result<(), StoreError> {
        let pg = self.pg.clone();
        // A flush in flight (started by authentication) is waited for: none is left behind.
        self.pg.block(async move { pg.flush().await })
    }

    /// Runs `write` (calls that write through this store, on this thread) and returns, beside
    /// its result, what each of its writes that took rights away waited for: which replicas
    /// confirmed it, which had stopped authenticating instead ([`Propagation`]). A write that
    /// returned `Ok` had been refused everywhere it took rights away by the time it returned.
    ///
    /// ```no_run
    /// # use api_tokens::{Actor, Tokens, UserId, TokenId};
    /// # use api_tokens::store::postgres::PostgresStore;
    /// # let tokens = Tokens::new(PostgresStore::connect("host=127.0.0.1 dbname=app")?);
    /// # let admin = Actor::admin(UserId::from(1));
    /// let (deleted, reports) = tokens.store().propagation(|| tokens.delete(&admin, [TokenId::new(7)]));
    /// deleted?;
    /// for p in reports {
    ///     println!("confirmed by {:?}; stopped meanwhile: {:?}", p.confirmed, p.lapsed);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn propagation<T>(&self, write: impl FnOnce() -> T) -> (T, Vec<Propagation>) {
        fleet::collect(write)
    }

    /// Forgets deletion records older than `keep` (replicas use them to learn of deletions).
    /// A replica that was disconnected for longer reloads everything when it returns. Returns
    /// how many were removed. A [`Replica`](super::replica::Replica) calls this itself.
    ///
    /// # Errors
    /// Backend failures.
    pub fn prune_deletions(&self, keep: Duration) -> Result<u64, StoreError> {
        let pg = self.pg.clone();
        self.pg
            .block(async move { prune_deletions(&pg, keep).await })
    }

    /// [`TokenStore::apply`], waiting for the fleet after a batch that takes rights away when
    /// `confirm` says so.
    fn apply_confirmed(&self, changes: Vec<Change>, confirm: bool) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let committed = self.run(true, move |mut conn| async move {
            apply_batch(conn.session()?, changes).await
        })?;
        if committed.takes_rights && confirm {
            let pg = self.pg.clone();
            let (seq, at) = (committed.seq, committed.at);
            let p = self
                .pg
                .block_unbounded(async move { pg.confirm(seq, at, None).await })?;
            fleet::report(p);
        }
        Ok(())
    }

    /// Runs `op` with a pooled connection on the store's runtime and waits for it.
    fn run<T: Send + 'static, F>(
        &self,
        flush_first: bool,
        op: impl FnOnce(Conn) -> F + Send + 'static,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let pg = self.pg.clone();
        self.pg.block(async move {
            if flush_first {
                pg.flush_if_pending().await?;
            }
            op(pg.conn().await?).await
        })
    }

    /// The record a presented hash belongs to, read from the database.
    fn lookup(&self, hash: &SecretHash) -> Result<Option<Token>, StoreError> {
        let hash = *hash;
        let pg = self.pg.clone();
        self.run(false, move |mut conn| async move {
            by_hash(conn.session()?, hash, &pg.rules).await
        })
    }
}

/// Removes the deletion records older than `$1` seconds; returns their clock values.
const PRUNE_DELETED: &str = "DELETE FROM api_token_deleted
     WHERE deleted_at < now() - make_interval(secs => $1::bigint::double precision)
     RETURNING change_seq";

/// Removes the history's nonces older than `$1` seconds, never the present value's (a copy at
/// a value whose nonce is gone cannot prove its history, and reloads like one behind the
/// horizon); returns their clock values.
const PRUNE_HISTORY: &str = "DELETE FROM api_token_history
     WHERE at < now() - make_interval(secs => $1::bigint::double precision)
       AND seq < (SELECT seq FROM api_token_clock WHERE one = 1)
     RETURNING seq";

/// Deletion records older than `keep` go, and history nonces with them;
/// `pruned_through` says how far.
pub(crate) async fn prune_deletions(pg: &Pg, keep: Duration) -> Result<u64, StoreError> {
    let secs = i64::try_from(keep.as_secs()).unwrap_or(i64::MAX);
    let mut conn = pg.conn().await?;
    let tx = conn.session()?.client.transaction().await.map_err(db)?;
    // The clock's row lock: no batch commits while the horizon moves.
    tx.execute(
        "SELECT seq FROM api_token_clock WHERE one = 1 FOR UPDATE",
        &[],
    )
    .await
    .map_err(db)?;
    let gone = tx.query(PRUNE_DELETED, &[&secs]).await.map_err(db)?;
    let forgotten = tx.query(PRUNE_HISTORY, &[&secs]).await.map_err(db)?;
    let horizon = gone
        .iter()
        .chain(&forgotten)
        .map(|r| r.try_get::<_, i64>(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?
        .into_iter()
        .max();
    if let Some(h) = horizon {
        tx.execute(
            "UPDATE api_token_clock SET pruned_through = GREATEST(pruned_through, $1) WHERE one = 1",
            &[&h],
        )
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(gone.len() as u64)
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Best effort, bounded by the timeout: a failure loses only last-use times.
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "api-tokens: last uses not written at shutdown");
        }
        if let Some(rt) = self.rt.take() {
            // Never blocks, and never panics inside an async context.
            rt.shutdown_background();
        }
    }
}

impl TokenStore for PostgresStore {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        let n = i64::try_from(n).map_err(|_| StoreError::IdsExhausted)?;
        self.run(false, move |mut conn| async move {
            let s = conn.session()?;
            let st = s
                .stmt("SELECT nextval('api_token_ids') FROM generate_series(1, $1::bigint)")
                .await?;
            let rows = s.client.query(&st, &[&n]).await.map_err(db)?;
            rows.iter()
                .map(|r| r.try_get::<_, i64>(0).map_err(db).and_then(id_of))
                .collect()
        })
    }

    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        self.apply_confirmed(changes, self.pg.confirm_writes)
    }

    /// Never waits for the fleet: a re-hash takes nothing away.
    fn apply_rehash(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        self.apply_confirmed(changes, false)
    }

    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.run(true, move |mut conn| async move {
            get_token(conn.session()?, id).await
        })
    }

    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError> {
        let (owner, name) = (owner.to_string(), name.to_string());
        self.run(false, move |mut conn| async move {
            let s = conn.session()?;
            let st = s
                .stmt("SELECT id FROM api_tokens WHERE owner = $1 AND name = $2")
                .await?;
            s.client
                .query_opt(&st, &[&owner, &name])
                .await
                .map_err(db)?
                .map(|r| r.try_get::<_, i64>(0).map_err(db).and_then(id_of))
                .transpose()
        })
    }

    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        let query = query.clone();
        self.run(true, move |mut conn| async move {
            query_tokens(conn.session()?, &query, now).await
        })
    }

    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        let query = query.clone();
        self.run(true, move |mut conn| async move {
            let s = conn.session()?;
            if sql::needs_rust_filter(&query) {
                let mut all = query.clone();
                all.limit = None;
                return Ok(query_tokens(s, &all, now).await?.len());
            }
            let st = sql::count(&query, now);
            let prepared = s.stmt(&st.sql).await?;
            let n: i64 = s
                .client
                .query_one(&prepared, &st.params())
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
            usize::try_from(n).map_err(|_| corrupt("count"))
        })
    }

    fn key_usage(&self, now: OffsetDateTime) -> Result<Vec<KeyUsage>, StoreError> {
        self.run(true, move |mut conn| async move {
            key_usage(conn.session()?, now).await
        })
    }

    /// One statement over the partial index `api_tokens_imported_from` (schema version 7),
    /// the origins as one array parameter: O(k log n).
    fn find_imported(
        &self,
        origins: &[ImportOrigin],
    ) -> Result<Vec<(TokenId, ImportOrigin)>, StoreError> {
        let wanted: Vec<Vec<u8>> = origins.iter().map(|o| o.as_bytes().to_vec()).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        self.run(true, move |mut conn| async move {
            let s = conn.session()?;
            let st = s
                .stmt(
                    "SELECT id, imported_from FROM api_tokens
                     WHERE imported_from = ANY($1::bytea[]) ORDER BY id",
                )
                .await?;
            let rows = s.client.query(&st, &[&wanted]).await.map_err(db)?;
            rows.iter()
                .map(|r| {
                    let id = id_of(r.try_get(0).map_err(db)?)?;
                    let origin = origin_of(Some(r.try_get(1).map_err(db)?))?
                        .ok_or_else(|| corrupt("import origin is NULL"))?;
                    Ok((id, origin))
                })
                .collect()
        })
    }

    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError> {
        let Some(t) = self.lookup(hash)? else {
            return Ok(false);
        };
        // A record without this hash (a lookup gone wrong) is not used: fail closed.
        let Some(candidate) = t.candidate(hash) else {
            return Ok(false);
        };
        if let Some(used) = check(candidate) {
            self.pg.note_use(t.id, used);
            if self.pg.flush_due() {
                self.pg.flush_in_background();
            }
        }
        Ok(true)
    }
}

/// Counts hashes by scheme in SQL (see [`TokenStore::key_usage`]).
pub(crate) async fn key_usage(
    s: &mut Session,
    now: OffsetDateTime,
) -> Result<Vec<KeyUsage>, StoreError> {
    let st = s
        .stmt(
            "SELECT secret_key_id, secret_legacy, count(*), false FROM api_tokens
             WHERE secret_hash IS NOT NULL GROUP BY 1, 2
             UNION ALL
             SELECT previous_key_id, previous_legacy, count(*), true FROM api_tokens
             WHERE previous_hash IS NOT NULL AND previous_valid_until > $1 GROUP BY 1, 2",
        )
        .await?;
    let rows = s
        .client
        .query(&st, &[&now.unix_timestamp()])
        .await
        .map_err(db)?;
    let mut usage: Vec<KeyUsage> = Vec::new();
    for r in rows {
        let scheme =
            scheme_of(r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?).map_err(corrupt)?;
        let n = u64::try_from(r.try_get::<_, i64>(2).map_err(db)?)
            .map_err(|_| corrupt("a negative count"))?;
        let previous: bool = r.try_get(3).map_err(db)?;
        let i = match usage.iter().position(|u| u.scheme == scheme) {
            Some(i) => i,
            None => {
                usage.push(KeyUsage {
                    scheme,
                    current: 0,
                    previous: 0,
                });
                usage.len() - 1
            }
        };
        if let Some(u) = usage.get_mut(i) {
            if previous {
                u.previous += n;
            } else {
                u.current += n;
            }
        }
    }
    sort_usage(&mut usage);
    Ok(usage)
}

/// The column list of `SELECT`s that [`token_of`] reads.
pub(crate) fn select_columns() -> String {
    columns("")
}

/// The throwaway server of the integration tests, for the checks that need the crate's private
/// parts against a real PostgreSQL.
#[cfg(test)]
#[path = "../../tests/support/pg.rs"]
mod test_server;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::HashScheme;
    use crate::legacy::LegacyScheme;
    use crate::secret::KeyId;
    use crate::token::{Expiry, PreviousSecret, Revoked, RevokedBy, SecretState, Status};

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    /// Tokens in every shape the fingerprint covers.
    fn shapes(ids: &[TokenId]) -> Vec<Token> {
        let base = |i: usize, owner: &str| Token {
            name: TokenName::new(&format!("t{i}")).unwrap(),
            description: "d".into(),
            owner: UserId::new(owner).unwrap(),
            creator: UserId::from(1),
            created_at: at(1_600_000_000),
            permissions: "dns.*, mail.send".parse().unwrap(),
            ..crate::store::test_record(ids[i])
        };
        let secret = |h: u8, scheme: HashScheme| SecretState {
            hash: SecretHash::from_bytes([h; 32]),
            scheme,
            generated_at: at(1_600_000_100),
            previous: None,
        };
        let mut out = vec![base(0, "alice")];
        let mut t = base(1, "zoë | 2:x");
        t.status = Status::Disabled;
        t.expiry = Expiry::from_unix(1_900_000_000).unwrap();
        t.allowlist = "10.0.0.0/8, 2001:db8::/32, 192.0.2.7".parse().unwrap();
        t.permissions = crate::PermissionSet::all();
        t.secret = Some(secret(1, HashScheme::keyed(KeyId::from_bytes([3; 8]))));
        out.push(t);
        let mut t = base(2, "bob");
        let mut s = secret(2, HashScheme::UNRECORDED);
        s.previous = Some(PreviousSecret {
            hash: SecretHash::from_bytes([3; 32]),
            scheme: HashScheme::legacy(LegacyScheme::ZabbixSha512, KeyId::from_bytes([4; 8])),
            valid_until: at(1_700_000_000),
        });
        t.secret = Some(s);
        out.push(t);
        let mut t = base(3, "carol");
        t.status = Status::Disabled;
        t.revoked = Some(Revoked {
            at: at(1_650_000_000),
            by: RevokedBy::Possession,
        });
        out.push(t);
        out
    }

    /// What the crate computes from a record is what PostgreSQL's generated column holds for
    /// the row the store writes of it: otherwise every row would count as odd (and cost a
    /// replica memory), and a change to one would be repaired on every reconciliation.
    #[test]
    fn the_crate_fingerprints_records_as_postgresql_does() {
        let Some(pg) = test_server::PgServer::start() else {
            return;
        };
        let store = PostgresStore::connect(&pg.create_db("fp")).unwrap();
        let ids = store.reserve_ids(4).unwrap();
        let tokens = shapes(&ids);
        store
            .apply(tokens.iter().cloned().map(Change::Insert).collect())
            .unwrap();
        let pgc = store.pg.clone();
        let rows: Vec<(i64, i64)> = store
            .pg
            .block(async move {
                let mut conn = pgc.conn().await?;
                let s = conn.session()?;
                let rows = s
                    .client
                    .query("SELECT id, sec_fp FROM api_tokens ORDER BY id", &[])
                    .await
                    .map_err(db)?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?)))
                    .collect()
            })
            .unwrap();
        assert_eq!(rows.len(), tokens.len());
        for (t, (id, fp)) in tokens.iter().zip(rows) {
            assert_eq!(id_key(t.id), Some(id));
            assert_eq!(fingerprint(t), fp as u64, "token {id}");
        }
    }
}
