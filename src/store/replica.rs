//! [`Replica`]: a process's in-memory copy of the tokens in PostgreSQL, for authentication
//! without I/O, kept current by `LISTEN/NOTIFY` and a change clock, proving on every catch-up
//! that it follows the database's present history, reconciled with the database on a
//! schedule, and refusing to authenticate once it cannot confirm it is current (feature
//! `postgres`).
//!
//! # How it stays current
//! Every batch a [`PostgresStore`] commits moves the change clock (`api_token_clock.seq`) by
//! one, stamps the rows it wrote with that value, records the ids it deleted with it, gives
//! the value a random nonce in `api_token_history`, and notifies the channel [`CHANNEL`]
//! (triggers do this, for hand-made changes too). Batches commit in clock order (the clock's
//! row lock serialises them), so a copy that has applied every change up to `seq = n` is
//! exactly the database as of `n`.
//!
//! Each replica runs a sync task on the store's runtime with its own connection. It `LISTEN`s,
//! then catches up: in one repeatable-read transaction (one round trip, its statements
//! pipelined) it renews its lease, reads the clock, the history's nonce for the copy's clock
//! value, every row stamped after that value and every deletion recorded after it, and
//! installs them in the local [`MemoryStore`](super::MemoryStore) under one write lock. It catches up on every
//! notification, and at every heartbeat even without one, so a lost notification costs at most
//! a heartbeat. When the connection drops (server restart, `pg_terminate_backend`, network),
//! it reconnects with backoff, `LISTEN`s again and catches up before anything else: nothing
//! committed while it was away is missed, because the catch-up reads the clock, not the
//! notifications.
//!
//! # Which history it follows
//! A copy at clock value `n` follows the database only if the database's history still gives
//! `n` the nonce the copy recorded with it. A database restored from a dump, recovered to an
//! earlier point in time, failed over to a standby that missed the last transactions, or
//! replaced by another one hands clock values out again with new nonces — so even once its
//! clock has moved past the copy's (writes after the restore), the copy is told apart, on the
//! first catch-up after. Then, and when the copy is older than the deletion horizon, the
//! replica refuses every token at once and reloads every row in one snapshot.
//!
//! # Reconciliation: changes made by any path
//! Triggers do not see every write: `session_replication_role = replica` (`pg_restore
//! --disable-triggers`, logical replication's apply), `ALTER TABLE … DISABLE TRIGGER`. What
//! PostgreSQL computes for every write by any path is a generated column: each row carries a
//! fingerprint of its security-relevant columns (id, owner, status, expiry, permissions,
//! allowlist, both hashes with their schemes and the previous one's deadline, revocation).
//! Every [`ReplicaOptions::reconcile_every`] (default 30 s) a catch-up also reads the sum of
//! every row's fingerprint — a sequential read of one column in PostgreSQL, two numbers over
//! the network — and compares it with the sum of what the copy installed. When they differ the
//! replica refuses every token, compares the sums of each bucket of 1,024 ids, reads the rows
//! of the buckets that differ, installs exactly those, and authenticates again (a few round
//! trips). A change made by any path is therefore honoured by every replica within the
//! reconciliation interval plus the staleness bound.
//!
//! # The staleness bound (fail closed)
//! A catch-up that succeeds *confirms* the copy: it holds everything committed before the
//! catch-up began. Authentication checks that the last confirmation is younger than the bound
//! (with the kernel's coarse clock while the deadline is far, the precise clock when it is
//! near: see `replica/coarse.rs`); past it, every token is refused with
//! [`Denial::Stale`](crate::Denial::Stale) (public form: "service unavailable") until a
//! catch-up succeeds, and the events [`EventKind::ReplicaStale`](crate::EventKind::ReplicaStale)
//! and then [`EventKind::ReplicaCurrent`](crate::EventKind::ReplicaCurrent) say so. A
//! revocation made by hand in SQL at instant `t` is therefore refused on every replica from
//! `t + bound` at the latest — usually within milliseconds, through the notification. No
//! state of the connection extends that: a replica that cannot confirm refuses.
//!
//! # Writes, and revocation that is final when it returns
//! Management calls go to PostgreSQL: reads see the database, and a batch commits there first.
//! The replica then installs the batch's rows in its copy (or, if another batch committed in
//! between, catches up). A batch that replaces or deletes a token then waits for the fleet:
//! every replica holds a lease in `api_token_replicas`, renewed by each confirming catch-up and
//! always longer than its staleness bound, and acknowledges each change it installs; the write
//! returns once every replica with a live lease acknowledged it, or once the longest lease has
//! passed since the commit (by then each of them has applied it or stopped authenticating). So
//! when `delete`, `set_status`, `update`, `generate` or `revoke_by_secret` returns, no replica
//! accepts what it took away. A replica killed with `kill -9` holds writes back at most until
//! its lease ends; [`Replica::shutdown`] leaves at once.
//! [`PostgresStore::propagation`] says which replicas confirmed a write; hosts that prefer a
//! write not to wait turn it off with
//! [`PostgresOptions::confirm_writes`](super::postgres::PostgresOptions::confirm_writes).
//! The guarantee rests on the database server's clock not jumping forward by more than the
//! lease's margin over the bound (a twentieth of the bound, at least 50 ms) while a write waits.
//!
//! # Last use
//! Each successful authentication that changes a token's last use (at most once per token
//! per second and address) is buffered; the sync task writes the buffer every
//! [`ReplicaOptions::last_use_flush`] in one statement, merged in SQL so a later instant from
//! any replica is never overwritten by an earlier one; [`Replica::shutdown`] (and drop)
//! writes what is left. A crash loses at most one flush interval of last-use times, nothing
//! else.
//!
//! # Health, metrics and shutdown
//! [`Replica::status`] says where the copy stands ([`ReplicaState`]: loading, current,
//! catching up, stale, reloading, stopped), whether it holds a lease, its clock value, how far
//! behind what the database announced it is and when it last confirmed it was current; the
//! replica is ready for traffic ([`StoreHealth`](crate::StoreHealth)) exactly while it is
//! current. [`Replica::spawn`] returns before the first load, so a process answers its
//! probes (not ready) while a large table loads. With the feature `metrics` the replica
//! reports its state, lag, changes, reloads and repairs (the table in
//! `api_tokens::metrics`). A process that is told to stop (SIGTERM) calls
//! [`Replica::shutdown_async`] (or [`Replica::shutdown`]) once it has stopped taking requests:
//! the replica refuses every token from then on, writes its last uses and removes its lease.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

#[cfg(doc)]
use super::postgres::CHANNEL;
use super::postgres::{PostgresStore, apply_batch};
use super::{Candidate, Change, Query, TokenStore};
use crate::error::StoreError;
use crate::events::{EventSink, NoEvents};
use crate::keys::KeyUsage;
use crate::secret::SecretHash;
use crate::store::postgres::{Member, Propagation};
use crate::token::{LastUse, Token, TokenId, TokenName, UserId};
use sync::Shared;

mod coarse;
mod digest;
mod sync;
mod vitals;

pub use crate::health::{ReplicaState, ReplicaStatus};

/// Settings of a [`Replica`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ReplicaOptions {
    /// The longest the replica may go without confirming it is current before it refuses
    /// every token (default 5 s). See the [module docs](self).
    pub staleness_bound: Duration,
    /// How often the replica confirms even when nothing changes (default: a fifth of the
    /// bound). Must be shorter than the bound.
    pub heartbeat: Option<Duration>,
    /// How often buffered last uses are written (default 10 s): what a crash can lose.
    pub last_use_flush: Duration,
    /// How long deletion records are kept for replicas that were away (default 1 day); one
    /// away longer reloads everything.
    pub deletion_retention: Duration,
    /// Where the replica's own events go ([`EventKind::ReplicaStale`](crate::EventKind::ReplicaStale),
    /// [`EventKind::ReplicaCurrent`](crate::EventKind::ReplicaCurrent)).
    pub events: Arc<dyn EventSink>,
    /// The longest a full load of every token may take (default 5 min): at start, and when a
    /// replica comes back from beyond the deletion horizon.
    pub load_timeout: Duration,
    /// How often the replica compares its copy with the database (default 30 s): what bounds
    /// how long a change made without triggers goes unseen. See the [module
    /// docs](self#reconciliation-changes-made-by-any-path).
    pub reconcile_every: Duration,
    /// The replica's name in the fleet's membership (and in [`Propagation`] reports): default
    /// the host name and process id. At most 200 characters.
    pub name: Option<String>,
}

impl fmt::Debug for ReplicaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaOptions")
            .field("staleness_bound", &self.staleness_bound)
            .field("heartbeat", &self.heartbeat)
            .field("last_use_flush", &self.last_use_flush)
            .field("deletion_retention", &self.deletion_retention)
            .field("load_timeout", &self.load_timeout)
            .field("reconcile_every", &self.reconcile_every)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self {
            staleness_bound: Duration::from_secs(5),
            heartbeat: None,
            last_use_flush: Duration::from_secs(10),
            deletion_retention: Duration::from_secs(24 * 3600),
            events: Arc::new(NoEvents),
            load_timeout: Duration::from_secs(300),
            reconcile_every: Duration::from_secs(30),
            name: None,
        }
    }
}

impl ReplicaOptions {
    /// Sets the staleness bound.
    #[must_use]
    pub fn staleness_bound(mut self, d: Duration) -> Self {
        self.staleness_bound = d;
        self
    }

    /// Sets the heartbeat.
    #[must_use]
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = Some(d);
        self
    }

    /// Sets the last-use flush interval.
    #[must_use]
    pub fn last_use_flush(mut self, d: Duration) -> Self {
        self.last_use_flush = d;
        self
    }

    /// Sets how long deletion records are kept.
    #[must_use]
    pub fn deletion_retention(mut self, d: Duration) -> Self {
        self.deletion_retention = d;
        self
    }

    /// Sets the load timeout.
    #[must_use]
    pub fn load_timeout(mut self, d: Duration) -> Self {
        self.load_timeout = d;
        self
    }

    /// Sends the replica's events to `sink`.
    #[must_use]
    pub fn events(mut self, sink: impl EventSink + 'static) -> Self {
        self.events = Arc::new(sink);
        self
    }

    /// Sets how often the copy is compared with the database.
    #[must_use]
    pub fn reconcile_every(mut self, d: Duration) -> Self {
        self.reconcile_every = d;
        self
    }

    /// Sets the replica's name in the fleet.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    fn heartbeat_or_default(&self) -> Duration {
        self.heartbeat.unwrap_or(self.staleness_bound / 5)
    }
}

/// What [`Replica::reconcile_now`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconciliation {
    /// Whether the copy differed from the database.
    pub differed: bool,
    /// How many rows were read again to repair it.
    pub rows_repaired: u64,
    /// Whether the copy was loaded in full (the database's history changed, or repairing the
    /// rows that differed did not make it equal).
    pub reloaded: bool,
    /// How long the comparison (and the repair) took.
    pub took: Duration,
}

/// The default name of a replica: the host's name (where the system says it) and the
/// process id.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("{h}/{}", std::process::id()),
        None => format!("pid {}", std::process::id()),
    }
}

/// How much longer than its staleness bound a replica's lease runs: a twentieth of the bound,
/// at least 50 ms, for the database's and the replica's clocks running at slightly different
/// rates.
fn lease_for(bound: Duration) -> Duration {
    bound + (bound / 20).max(Duration::from_millis(50))
}

/// A [`TokenStore`] that authenticates from memory and keeps PostgreSQL as the truth. See
/// the [module docs](self).
///
/// ```no_run
/// use api_tokens::Tokens;
/// use api_tokens::store::postgres::PostgresStore;
/// use api_tokens::store::replica::{Replica, ReplicaOptions};
/// use std::time::Duration;
///
/// let store = PostgresStore::connect("host=127.0.0.1 user=app dbname=app")?;
/// let replica = Replica::start(
///     store,
///     ReplicaOptions::default().staleness_bound(Duration::from_secs(5)),
/// )?;
/// let tokens = Tokens::new(replica); // authenticate: no I/O; management: PostgreSQL
/// # Ok::<(), api_tokens::StoreError>(())
/// ```
pub struct Replica {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    done: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    // Last: dropping it shuts the runtime down, after the tasks have stopped.
    store: PostgresStore,
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("tokens", &self.shared.local.len())
            .field("current", &self.is_current())
            .field("bound", &self.shared.bound)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Loads every token from `store`'s database, starts listening, and returns once the copy
    /// is current.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a bound under 10 ms or a heartbeat not shorter than the
    /// bound; the database cannot be reached or read within the store's timeout.
    pub fn start(store: PostgresStore, options: ReplicaOptions) -> Result<Self, StoreError> {
        Self::launch(store, options, true)
    }

    /// [`Replica::start`] without waiting: returns at once and loads every token in the
    /// background, retrying with backoff while the database cannot be reached. Until the
    /// first load is done its [`status`](Replica::status) says
    /// [`ReplicaState::Loading`] and it refuses every token (as stale): a process can answer
    /// its orchestrator's liveness probe, and say "not ready" to its readiness probe, while a
    /// large table loads.
    ///
    /// # Errors
    /// [`StoreError::Config`] for settings [`Replica::start`] refuses; nothing reaches the
    /// database before it returns.
    pub fn spawn(store: PostgresStore, options: ReplicaOptions) -> Result<Self, StoreError> {
        Self::launch(store, options, false)
    }

    fn launch(
        store: PostgresStore,
        options: ReplicaOptions,
        wait: bool,
    ) -> Result<Self, StoreError> {
        let bound = options.staleness_bound;
        let heartbeat = options.heartbeat_or_default();
        if bound < Duration::from_millis(10) {
            return Err(StoreError::Config(format!(
                "staleness bound {bound:?} (at least 10 ms)"
            )));
        }
        if heartbeat.is_zero() || heartbeat >= bound {
            return Err(StoreError::Config(format!(
                "heartbeat {heartbeat:?} must be above zero and shorter than the bound {bound:?}"
            )));
        }
        if options.last_use_flush.is_zero() {
            return Err(StoreError::Config("a zero last-use flush interval".into()));
        }
        if options.reconcile_every < Duration::from_millis(10) {
            return Err(StoreError::Config(format!(
                "reconciliation every {:?} (at least 10 ms)",
                options.reconcile_every
            )));
        }
        let name = options.name.clone().unwrap_or_else(default_name);
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(StoreError::Config(
                "a replica name must have 1 to 200 characters, none of them control characters"
                    .into(),
            ));
        }
        let member = Member {
            id: rand::random::<i64>(),
            name,
            lease: lease_for(bound),
        };
        let shared = Arc::new(Shared::new(
            store.pg.clone(),
            bound,
            heartbeat,
            options,
            member,
        ));
        let (stop, stop_rx) = watch::channel(false);
        let (first_tx, first_rx) = std::sync::mpsc::sync_channel(1);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let handle = &store.pg.handle;
        let (s, rx) = (shared.clone(), stop_rx.clone());
        let first = wait.then_some(first_tx);
        handle.spawn(async move {
            sync::sync(s, rx, first).await;
            let _ = done_tx.send(());
        });
        handle.spawn(sync::maintenance(shared.clone(), stop_rx.clone()));
        handle.spawn(sync::watchdog(shared.clone(), stop_rx));
        let replica = Self {
            shared,
            stop,
            done: std::sync::Mutex::new(Some(done_rx)),
            store,
        };
        if !wait {
            return Ok(replica);
        }
        match first_rx.recv() {
            Ok(Ok(())) => Ok(replica),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Config(
                "replica task ended before loading".into(),
            )),
        }
    }

    /// Whether the copy is within its staleness bound (authentication works).
    pub fn is_current(&self) -> bool {
        self.shared.is_current()
    }

    /// Where the copy stands: its [state](ReplicaState) (loading, current, catching up,
    /// stale, reloading, stopped), whether it holds a lease in the fleet, how far behind the
    /// database it is and when it last confirmed it was current. A few atomic reads, no I/O:
    /// what health probes call (through [`StoreHealth`](crate::StoreHealth)).
    ///
    /// ```no_run
    /// # use api_tokens::store::{postgres::PostgresStore, replica::{Replica, ReplicaOptions, ReplicaState}};
    /// let replica = Replica::spawn(PostgresStore::connect("host=127.0.0.1 dbname=app")?, ReplicaOptions::default())?;
    /// let status = replica.status();
    /// if status.state != ReplicaState::Current {
    ///     println!("not serving: {} ({:?} since the last confirmation)", status.state, status.unconfirmed_for);
    /// }
    /// # Ok::<(), api_tokens::StoreError>(())
    /// ```
    pub fn status(&self) -> ReplicaStatus {
        let s = &self.shared;
        let confirmed = self.shared.unconfirmed_for();
        s.vitals.status(
            s.is_current(),
            (confirmed != Duration::MAX).then_some(confirmed),
            self.reloads(),
            s.bound,
            s.member.lease,
        )
    }

    /// How long since the copy was last confirmed current.
    pub fn unconfirmed_for(&self) -> Duration {
        self.shared.unconfirmed_for()
    }

    /// The change-clock value the copy is at (`None` while a catch-up holds it, or before
    /// the first load).
    pub fn clock(&self) -> Option<u64> {
        self.shared.applied.try_lock().ok().and_then(|a| a.seq)
    }

    /// The replica's name in the fleet ([`ReplicaOptions::name`]).
    pub fn name(&self) -> &str {
        &self.shared.member.name
    }

    /// How many rows reconciliation (or a repair after it) has read again because they
    /// differed from the copy, since the replica started.
    pub fn repaired_rows(&self) -> u64 {
        self.shared
            .repaired
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Compares the copy with the database now (as reconciliation does every
    /// [`ReplicaOptions::reconcile_every`]) and repairs what differs before it returns: for an
    /// operator who has just changed tokens by hand with triggers off, or a check before
    /// traffic is let in. Refuses every token while it repairs, as reconciliation does.
    ///
    /// # Errors
    /// The database cannot be reached or read within the store's timeout (a full reload, if
    /// one is needed, within the load timeout).
    pub fn reconcile_now(&self) -> Result<Reconciliation, StoreError> {
        let shared = self.shared.clone();
        self.store.pg.block_unbounded(async move {
            let limit = shared
                .pg
                .timeout
                .saturating_add(shared.options.load_timeout);
            let work = async {
                let before = shared.repaired.load(std::sync::atomic::Ordering::Acquire);
                let started = std::time::Instant::now();
                let mut conn = shared.pg.conn().await?;
                let caught = shared.catch_up(conn.session()?, true).await?;
                Ok(Reconciliation {
                    differed: caught.differed,
                    rows_repaired: shared
                        .repaired
                        .load(std::sync::atomic::Ordering::Acquire)
                        .saturating_sub(before),
                    reloaded: caught.reloaded,
                    took: started.elapsed(),
                })
            };
            tokio::time::timeout(limit, work)
                .await
                .unwrap_or_else(|_| Err(StoreError::backend(super::postgres::TimedOut(limit))))
        })
    }

    /// How many times the replica loaded every token since it started: once at start, and
    /// again for each change of the database's history, each return from beyond the deletion
    /// horizon, and each repair that did not make the sums agree.
    pub fn reloads(&self) -> u64 {
        self.shared
            .reloads
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// [`PostgresStore::propagation`] for writes through this replica: what each write that
    /// took rights away waited for.
    pub fn propagation<T>(&self, write: impl FnOnce() -> T) -> (T, Vec<Propagation>) {
        self.store.propagation(write)
    }

    /// Number of tokens in the copy.
    pub fn len(&self) -> usize {
        self.shared.local.len()
    }

    /// Whether the copy holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The store underneath (management goes there).
    pub fn store(&self) -> &PostgresStore {
        &self.store
    }

    /// Writes buffered last uses now.
    ///
    /// # Errors
    /// Backend failures; the uses stay buffered.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.store.flush()
    }

    /// Leaves the fleet cleanly, for a process that is about to exit: refuses every token
    /// from now on (as stale), stops the sync task, writes the buffered last uses and removes
    /// the replica's lease (writers stop waiting for it at once), then returns. Waits at most
    /// twice the store's timeout. A second call does nothing more. Dropping the replica does
    /// the same without reporting.
    ///
    /// This blocks the calling thread: async hosts await [`Replica::shutdown_async`].
    ///
    /// # Errors
    /// The buffered last uses could not be written (they are lost), or the sync task did not
    /// finish within twice the store's timeout.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        self.begin_shutdown();
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(done) = done {
            let limit = self.shutdown_limit();
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(limit) {
                return Err(StoreError::backend(super::postgres::TimedOut(limit)));
            }
        }
        self.shared.vitals.take_shutdown_error().map_or(Ok(()), Err)
    }

    /// [`Replica::shutdown`] for async hosts: the same steps, awaited without ever blocking
    /// the executor (the work runs on the store's own runtime; this future only waits for its
    /// end). Call it once the server has stopped taking requests, e.g. after axum's
    /// `with_graceful_shutdown` returns on SIGTERM:
    ///
    /// ```no_run
    /// # use api_tokens::{Tokens, store::replica::Replica};
    /// # async fn after_serving(tokens: Tokens<Replica>) {
    /// if let Err(e) = tokens.store().shutdown_async().await {
    ///     eprintln!("last uses not written: {e}");
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Replica::shutdown`].
    pub async fn shutdown_async(&self) -> Result<(), StoreError> {
        self.begin_shutdown();
        let limit = self.shutdown_limit();
        let mut finished = self.shared.vitals.finished.subscribe();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Timed on the store's runtime: the host's runtime may have no timer.
        self.store.pg.handle.spawn(async move {
            let ended = tokio::time::timeout(limit, finished.wait_for(|f| *f)).await;
            let _ = tx.send(ended.is_ok());
        });
        let ended = rx.await.unwrap_or(false);
        if !ended {
            return Err(StoreError::backend(super::postgres::TimedOut(limit)));
        }
        // The sync task has ended: dropping the replica has nothing left to wait for.
        drop(self.done.lock().unwrap_or_else(|p| p.into_inner()).take());
        self.shared.vitals.take_shutdown_error().map_or(Ok(()), Err)
    }

    fn shutdown_limit(&self) -> Duration {
        self.shared.pg.timeout.saturating_mul(2)
    }

    /// From here on nothing confirms the copy: it refuses every token before it leaves the
    /// fleet, so a write that stops waiting for it is never accepted by it.
    fn begin_shutdown(&self) {
        self.shared
            .vitals
            .stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.mark_stale();
        let _ = self.stop.send(true);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.begin_shutdown();
        let done = self
            .done
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(done) = done {
            let _ = done.recv_timeout(self.shutdown_limit());
        }
    }
}

/// Ready exactly while the copy is current ([`Replica::status`]).
impl crate::health::StoreHealth for Replica {
    fn health(&self) -> crate::health::Health {
        crate::health::Health::of_replica(self.status())
    }
}

impl Replica {
    /// [`TokenStore::apply`]: commit, install in the copy, then wait for the fleet after a
    /// batch that takes rights away when `confirm` says so.
    fn apply_confirmed(&self, changes: Vec<Change>, confirm: bool) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let report = self.store.pg.block_unbounded(async move {
            let limit = shared.pg.timeout;
            let write = async {
                shared.pg.flush().await.ok();
                let mut conn = shared.pg.conn().await?;
                let committed = apply_batch(conn.session()?, changes).await?;
                Ok::<_, StoreError>((conn, committed))
            };
            let (mut conn, committed) = match tokio::time::timeout(limit, write).await {
                Ok(Ok(done)) => done,
                Ok(Err(e @ StoreError::Backend(_))) => {
                    // The commit may or may not have happened: refuse until caught up.
                    shared.mark_stale();
                    return Err(e);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    shared.mark_stale();
                    return Err(StoreError::backend(super::postgres::TimedOut(limit)));
                }
            };
            let wait = committed.takes_rights && confirm;
            let (seq, at) = (committed.seq, committed.at);
            // Installed here before the wait: the writer's own replica refuses what the
            // write took away from the moment it committed on this side.
            let install = shared.install(committed, conn.session()?);
            if tokio::time::timeout(limit, install).await.is_err() {
                shared.mark_stale();
            }
            drop(conn);
            if !wait {
                return Ok(None);
            }
            shared
                .pg
                .confirm(seq, at, Some(shared.member.id))
                .await
                .map(Some)
        })?;
        if let Some(p) = report {
            super::postgres::report(p);
        }
        Ok(())
    }
}

impl TokenStore for Replica {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        self.store.reserve_ids(n)
    }

    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        self.apply_confirmed(changes, self.shared.pg.confirm_writes)
    }

    /// Installed like any write, never waiting for the fleet: a re-hash takes nothing away.
    fn apply_rehash(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        self.apply_confirmed(changes, false)
    }

    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.store.get(id)
    }

    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError> {
        self.store.find_name(owner, name)
    }

    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        self.store.query(query, now)
    }

    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.store.count(query, now)
    }

    /// From the local copy: the hashes this replica authenticates against.
    fn key_usage(&self, now: OffsetDateTime) -> Result<Vec<KeyUsage>, StoreError> {
        self.shared.local.key_usage(now)
    }

    /// From the database (by index), which an import writes to next.
    fn find_imported(
        &self,
        origins: &[crate::ImportOrigin],
    ) -> Result<Vec<(TokenId, crate::ImportOrigin)>, StoreError> {
        self.store.find_imported(origins)
    }

    /// From memory, with no I/O: refused with [`StoreError::Stale`] past the bound.
    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError> {
        let s = &*self.shared;
        if !s.is_current_fast() {
            return Err(StoreError::Stale {
                unconfirmed_for: s.unconfirmed_for(),
            });
        }
        Ok(s.local
            .authenticate_noting(hash, check, &mut |id, used| s.pg.note_use(id, used)))
    }
}
