//! [`Replica`]: a process's in-memory copy of the tokens in PostgreSQL, for authentication
//! without I/O, kept current by `LISTEN/NOTIFY` and a change clock, and refusing to
//! authenticate once it cannot confirm it is current (feature `postgres`).
//!
//! # How it stays current
//! Every batch a [`PostgresStore`] commits moves the change clock (`api_token_clock.seq`) by
//! one, stamps the rows it wrote with that value, records the ids it deleted with it, and
//! notifies the channel [`CHANNEL`] (triggers do this, for hand-made changes too). Batches
//! commit in clock order
//! (the clock's row lock serialises them), so a copy that has applied every change up to
//! `seq = n` is exactly the database as of `n`.
//!
//! Each replica runs a sync task on the store's runtime with its own connection. It `LISTEN`s,
//! then catches up: in one repeatable-read transaction it reads the clock, every row stamped
//! after the copy's clock value and every deletion recorded after it, and installs them in the
//! local [`MemoryStore`] under one write lock. It catches up on every notification, and at
//! every heartbeat even without one, so a lost notification costs at most a heartbeat. When
//! the connection drops (server restart, `pg_terminate_backend`, network), it reconnects with
//! backoff, `LISTEN`s again and catches up before anything else: nothing committed while it
//! was away is missed, because the catch-up reads the clock, not the notifications.
//!
//! # The staleness bound (fail closed)
//! A catch-up that succeeds *confirms* the copy: it holds everything committed before the
//! catch-up began. Authentication checks that the last confirmation is younger than the bound
//! (with the kernel's coarse clock while the deadline is far, the precise clock when it is
//! near: see `replica/coarse.rs`); past it, every token is refused with
//! [`Denial::Stale`](crate::Denial::Stale) (public form: "service unavailable") until a
//! catch-up succeeds, and the events [`EventKind::ReplicaStale`] and then
//! [`EventKind::ReplicaCurrent`] say so. A revocation committed at instant `t` is therefore
//! refused on every replica from `t + bound` at the latest — usually within milliseconds,
//! through the notification. No state of the connection extends that: a replica that cannot
//! confirm refuses.
//!
//! # Writes
//! Management calls go to PostgreSQL: reads see the database, and a batch commits there first.
//! The replica then installs the batch's rows in its copy before the call returns (or, if
//! another batch committed in between, catches up), so a token disabled through a replica is
//! refused by that replica the moment the call returns. If that step fails, the replica marks
//! itself stale at once rather than serve a copy without the write.
//!
//! # Last use
//! Each successful authentication that changes a token's last use (at most once per token
//! per second and address) is buffered; the sync task writes the buffer every
//! [`ReplicaOptions::last_use_flush`] in one statement, merged in SQL so a later instant from
//! any replica is never overwritten by an earlier one; [`Replica::shutdown`] (and drop)
//! writes what is left. A crash loses at most one flush interval of last-use times, nothing
//! else.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, watch};
use tokio_postgres::{AsyncMessage, IsolationLevel};

use super::postgres::{CHANNEL, Pg, PostgresStore, Session, TimedOut, apply_batch, db, token_of};
use super::{Candidate, Change, MemoryStore, Query, TokenStore};
use crate::error::StoreError;
use crate::events::{EventKind, EventSink, NoEvents, TokenEvent};
use crate::keys::KeyUsage;
use crate::secret::SecretHash;
use crate::token::{LastUse, Token, TokenId, TokenName, UserId, whole_seconds};
use coarse::Clocks;

mod coarse;

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
    /// Where the replica's own events go ([`EventKind::ReplicaStale`],
    /// [`EventKind::ReplicaCurrent`]).
    pub events: Arc<dyn EventSink>,
    /// The longest a full load of every token may take (default 5 min): at start, and when a
    /// replica comes back from beyond the deletion horizon.
    pub load_timeout: Duration,
}

impl fmt::Debug for ReplicaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaOptions")
            .field("staleness_bound", &self.staleness_bound)
            .field("heartbeat", &self.heartbeat)
            .field("last_use_flush", &self.last_use_flush)
            .field("deletion_retention", &self.deletion_retention)
            .field("load_timeout", &self.load_timeout)
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

    fn heartbeat_or_default(&self) -> Duration {
        self.heartbeat.unwrap_or(self.staleness_bound / 5)
    }
}

/// What the replica's tasks share with the [`Replica`].
struct Shared {
    pg: Arc<Pg>,
    local: MemoryStore,
    /// The clock value the local copy is at; `None` before the first load.
    applied: tokio::sync::Mutex<Option<u64>>,
    /// The monotonic clock every instant below is read on (nanoseconds).
    clocks: Clocks,
    /// The instant from which the copy no longer counts as current (0: stale).
    deadline: AtomicU64,
    /// The coarse-clock reading below which the copy counts as current without a precise
    /// clock read: `deadline` less the margin ([`Clocks::margin`]); 0 when there is none.
    fast_until: AtomicU64,
    /// The start of the last confirmed catch-up.
    confirmed: AtomicU64,
    stale_reported: AtomicBool,
    bound: Duration,
    heartbeat: Duration,
    options: ReplicaOptions,
    /// Asks the sync task to catch up now.
    wake: Notify,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Shared {
    fn now(&self) -> u64 {
        self.clocks.now()
    }

    fn unconfirmed_for(&self) -> Duration {
        let c = self.confirmed.load(Ordering::Acquire);
        if c == 0 {
            return Duration::MAX;
        }
        Duration::from_nanos(self.now().saturating_sub(c))
    }

    fn emit(&self, kind: EventKind) {
        self.options.events.record(TokenEvent {
            at: whole_seconds(OffsetDateTime::now_utc()),
            actor: None,
            token: None,
            owner: None,
            kind,
        });
    }

    /// The copy held everything committed before `started` (a catch-up began then).
    fn confirm(&self, started: u64) {
        let started = started.max(1);
        self.confirmed.fetch_max(started, Ordering::AcqRel);
        let deadline = started.saturating_add(nanos(self.bound));
        self.deadline.fetch_max(deadline, Ordering::AcqRel);
        let margin = self.clocks.margin(nanos(self.bound));
        self.fast_until
            .fetch_max(deadline.saturating_sub(margin), Ordering::AcqRel);
        if self.stale_reported.swap(false, Ordering::AcqRel) {
            tracing::info!("api-tokens replica: caught up, authenticating again");
            self.emit(EventKind::ReplicaCurrent);
        }
    }

    /// Refuse every token until the next successful catch-up.
    fn mark_stale(&self) {
        self.fast_until.store(0, Ordering::Release);
        self.deadline.store(0, Ordering::Release);
        self.wake.notify_one();
    }

    fn is_current(&self) -> bool {
        self.now() < self.deadline.load(Ordering::Acquire)
    }

    /// [`Shared::is_current`] for every authentication: the coarse clock while the deadline
    /// is far, the precise one when it is near.
    fn is_current_fast(&self) -> bool {
        current(
            self.clocks.coarse(),
            self.fast_until.load(Ordering::Acquire),
            || self.is_current(),
        )
    }

    /// Brings the copy up to the database's clock. One round trip: the transaction's
    /// statements are pipelined, and its three reads share one repeatable-read snapshot.
    async fn catch_up(&self, session: &mut Session) -> Result<(), StoreError> {
        let mut applied = self.applied.lock().await;
        if let Some(a) = *applied {
            let since = i64::try_from(a).unwrap_or(i64::MAX);
            let clock = session.stmt(CLOCK).await?;
            let rows = session.stmt(&rows_since()).await?;
            let gone = session.stmt(GONE_SINCE).await?;
            // Left open if this future is dropped mid-way: the session is then discarded.
            session.clean = false;
            let c = &session.client;
            let since: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&since];
            let limit = self.pg.timeout;
            let (begin, clock, rows, gone, commit) = tokio::time::timeout(limit, async {
                tokio::join!(
                    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
                    c.query_one(&clock, &[]),
                    c.query(&rows, &since),
                    c.query(&gone, &since),
                    c.batch_execute("COMMIT"),
                )
            })
            .await
            .map_err(|_| StoreError::backend(TimedOut(limit)))?;
            begin.map_err(db)?;
            let (clock, rows, gone) = (clock.map_err(db)?, rows.map_err(db)?, gone.map_err(db)?);
            commit.map_err(db)?;
            session.clean = true;
            let seq = seq_of(clock.try_get(0).map_err(db)?)?;
            let pruned = seq_of(clock.try_get(1).map_err(db)?)?;
            // Past the deletion horizon, or the database went back in time (restored from a
            // backup): reload everything below.
            if pruned <= a && seq >= a {
                if seq > a {
                    let (tokens, mut deleted) = self.parse(&rows, &mut HashSet::new());
                    for r in &gone {
                        let id: i64 = r.try_get(0).map_err(db)?;
                        if let Ok(id) = u64::try_from(id) {
                            deleted.push(TokenId::new(id));
                        }
                    }
                    self.log_refused(self.local.replicate(tokens, &deleted));
                    *applied = Some(seq);
                }
                return Ok(());
            }
        }
        // The first load, or a reload: every row, in chunks, into a fresh copy swapped in at
        // once (bounded by the load timeout, not the store's).
        let limit = self.options.load_timeout;
        let (fresh, seq) = tokio::time::timeout(limit, self.load_all(session))
            .await
            .map_err(|_| StoreError::backend(TimedOut(limit)))??;
        self.local.replace_contents(fresh);
        *applied = Some(seq);
        Ok(())
    }

    /// Every row, read in one repeatable-read snapshot, and the clock value it is at.
    async fn load_all(&self, session: &mut Session) -> Result<(MemoryStore, u64), StoreError> {
        let select = format!(
            "SELECT {} FROM api_tokens",
            super::postgres::select_columns()
        );
        let tx = session
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let clock = tx.query_one(CLOCK, &[]).await.map_err(db)?;
        let seq = seq_of(clock.try_get(0).map_err(db)?)?;
        let fresh = MemoryStore::new();
        let portal = tx.bind(select.as_str(), &[]).await.map_err(db)?;
        let mut users = HashSet::new();
        loop {
            let rows = tx.query_portal(&portal, 10_000).await.map_err(db)?;
            if rows.is_empty() {
                break;
            }
            let (tokens, _) = self.parse(&rows, &mut users);
            self.log_refused(fresh.replicate(tokens, &[]));
        }
        tx.commit().await.map_err(db)?;
        Ok((fresh, seq))
    }

    /// Rows as tokens. A row the crate cannot read is dropped from the copy (it cannot
    /// authenticate: fail closed) and logged, instead of stopping every other token. Equal
    /// user ids share one allocation (`users`): an owner's tokens, and every token one admin
    /// created, cost one string, as in a store filled through the API.
    fn parse(
        &self,
        rows: &[tokio_postgres::Row],
        users: &mut HashSet<UserId>,
    ) -> (Vec<Token>, Vec<TokenId>) {
        let mut shared = |u: UserId| match users.get(&u) {
            Some(known) => known.clone(),
            None => {
                users.insert(u.clone());
                u
            }
        };
        let mut tokens = Vec::with_capacity(rows.len());
        let mut refused = Vec::new();
        for r in rows {
            match token_of(r) {
                Ok(mut t) => {
                    t.owner = shared(t.owner);
                    t.creator = shared(t.creator);
                    tokens.push(t);
                }
                Err(e) => {
                    let id = r
                        .try_get::<_, i64>(0)
                        .ok()
                        .and_then(|i| u64::try_from(i).ok());
                    tracing::error!(error = %e, id, "api-tokens replica: unreadable row left out");
                    if let Some(id) = id {
                        refused.push(TokenId::new(id));
                    }
                }
            }
        }
        (tokens, refused)
    }

    fn log_refused(&self, refused: Vec<TokenId>) {
        for id in refused {
            tracing::error!(
                id = id.get(),
                "api-tokens replica: record clashes with another's name or hash; left out"
            );
        }
    }

    /// After this replica committed a batch: install it, or catch up if another batch came
    /// in between. On failure the replica goes stale: it never serves a copy without a write
    /// it made.
    async fn install(&self, committed: super::postgres::Committed, session: &mut Session) {
        {
            let mut applied = self.applied.lock().await;
            if let Some(a) = *applied {
                if committed.seq <= a {
                    return;
                }
                if committed.seq == a.saturating_add(1) {
                    self.log_refused(self.local.replicate(committed.rows, &committed.deleted));
                    *applied = Some(committed.seq);
                    return;
                }
            }
        }
        let started = self.now();
        match self.catch_up(session).await {
            Ok(()) => self.confirm(started),
            Err(e) => {
                tracing::warn!(error = %e, "api-tokens replica: catch-up after a write failed");
                self.mark_stale();
            }
        }
    }
}

/// Whether the copy is current: at once when the coarse reading is below the fast-path limit
/// (which [`Shared::confirm`] keeps a margin before the deadline), else by `precise`.
fn current(coarse: Option<u64>, fast_until: u64, precise: impl FnOnce() -> bool) -> bool {
    coarse.is_some_and(|c| c < fast_until) || precise()
}

const CLOCK: &str = "SELECT seq, pruned_through FROM api_token_clock WHERE one = 1";

fn rows_since() -> String {
    format!(
        "SELECT {} FROM api_tokens WHERE change_seq > $1",
        super::postgres::select_columns()
    )
}

const GONE_SINCE: &str = "SELECT id FROM api_token_deleted WHERE change_seq > $1";

fn seq_of(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Config(format!("change clock at {v}")))
}

/// A connection that listens on [`CHANNEL`]: the client, and a channel that yields once per
/// notification and closes when the connection does.
async fn listen(pg: &Pg) -> Result<(Session, mpsc::UnboundedReceiver<()>), StoreError> {
    let mut config = pg.config.clone();
    config.application_name("api-tokens-listener");
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await.map_err(db)?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "api-tokens replica: listener connection lost");
                    break;
                }
                None => break,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(db)?;
    Ok((Session::new(client), rx))
}

/// The sync task: listen, catch up, confirm, flush last uses, prune; reconnect on failure.
async fn sync(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut first: Option<std::sync::mpsc::SyncSender<Result<(), StoreError>>>,
) {
    let min_backoff = Duration::from_millis(20);
    let mut backoff = min_backoff;
    // Every call is bounded; a catch-up bounds itself (a reload may take longer).
    let op_timeout = shared.pg.timeout;

    'connect: loop {
        if *stop.borrow() {
            break;
        }
        let attempt = async {
            let (mut client, notes) = tokio::time::timeout(op_timeout, listen(&shared.pg))
                .await
                .unwrap_or_else(|_| Err(StoreError::backend(TimedOut(op_timeout))))?;
            let started = shared.now();
            shared.catch_up(&mut client).await?;
            shared.confirm(started);
            Ok::<_, StoreError>((client, notes))
        };
        let outcome = tokio::select! {
            r = attempt => r,
            _ = stop.changed() => break 'connect,
        };
        let (mut client, mut notes) = match outcome {
            Ok(ok) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                backoff = min_backoff;
                ok
            }
            Err(e) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                tracing::warn!(error = %e, "api-tokens replica: cannot reach the database");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break 'connect,
                }
                backoff = (backoff * 2).min(shared.heartbeat);
                continue 'connect;
            }
        };
        loop {
            tokio::select! {
                n = notes.recv() => {
                    if n.is_none() {
                        continue 'connect;
                    }
                    while notes.try_recv().is_ok() {}
                }
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(shared.heartbeat) => {}
                _ = stop.changed() => break 'connect,
            }
            let started = shared.now();
            match shared.catch_up(&mut client).await {
                Ok(()) => shared.confirm(started),
                Err(e) => {
                    tracing::warn!(error = %e, "api-tokens replica: catch-up failed; reconnecting");
                    continue 'connect;
                }
            }
        }
    }
}

/// Writes buffered last uses every flush interval and prunes old deletion records hourly,
/// apart from the sync task: a large flush never delays a confirmation.
async fn maintenance(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let limit = shared.pg.timeout;
    let mut last_prune: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.options.last_use_flush) => {}
            _ = stop.changed() => return,
        }
        match tokio::time::timeout(limit, shared.pg.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "api-tokens replica: last uses not written yet")
            }
            Err(_) => tracing::warn!("api-tokens replica: writing last uses timed out"),
        }
        if last_prune.is_none_or(|p| p.elapsed() >= Duration::from_secs(3600)) {
            last_prune = Some(Instant::now());
            let keep = shared.options.deletion_retention;
            let prune = super::postgres::prune_deletions(&shared.pg, keep);
            if let Ok(Err(e)) = tokio::time::timeout(limit, prune).await {
                tracing::warn!(error = %e, "api-tokens replica: pruning deletions failed");
            }
        }
    }
}

/// Reports the moment the replica passes its bound (the sync task may be stuck in a call).
async fn watchdog(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let deadline = shared.deadline.load(Ordering::Acquire);
        let now = shared.now();
        let wait = if now >= deadline {
            if !shared.stale_reported.swap(true, Ordering::AcqRel) {
                if shared.is_current() {
                    shared.stale_reported.store(false, Ordering::Release);
                } else {
                    let behind = shared.unconfirmed_for();
                    tracing::warn!(
                        unconfirmed_ms = behind.as_millis() as u64,
                        "api-tokens replica: staleness bound passed; refusing every token"
                    );
                    shared.emit(EventKind::ReplicaStale {
                        unconfirmed_ms: u64::try_from(behind.as_millis()).unwrap_or(u64::MAX),
                    });
                }
            }
            shared.heartbeat
        } else {
            Duration::from_nanos(deadline - now)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
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
        let shared = Arc::new(Shared {
            pg: store.pg.clone(),
            local: MemoryStore::new(),
            applied: tokio::sync::Mutex::new(None),
            clocks: Clocks::new(),
            deadline: AtomicU64::new(0),
            fast_until: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            stale_reported: AtomicBool::new(false),
            bound,
            heartbeat,
            options,
            wake: Notify::new(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (first_tx, first_rx) = std::sync::mpsc::sync_channel(1);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let handle = &store.pg.handle;
        let (s, rx) = (shared.clone(), stop_rx.clone());
        handle.spawn(async move {
            sync(s.clone(), rx, Some(first_tx)).await;
            // The last uses this replica still holds, at shutdown.
            if let Ok(Err(e)) = tokio::time::timeout(s.pg.timeout, s.pg.flush()).await {
                tracing::warn!(error = %e, "api-tokens replica: last uses lost at shutdown");
            }
            let _ = done_tx.send(());
        });
        handle.spawn(maintenance(shared.clone(), stop_rx.clone()));
        handle.spawn(watchdog(shared.clone(), stop_rx));
        let replica = Self {
            shared,
            stop,
            done: std::sync::Mutex::new(Some(done_rx)),
            store,
        };
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

    /// How long since the copy was last confirmed current.
    pub fn unconfirmed_for(&self) -> Duration {
        self.shared.unconfirmed_for()
    }

    /// The change-clock value the copy is at (`None` while a catch-up holds it, or before
    /// the first load).
    pub fn clock(&self) -> Option<u64> {
        self.shared.applied.try_lock().ok().and_then(|a| *a)
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

    /// Stops the sync task and writes the buffered last uses (waiting at most the store's
    /// timeout). Dropping the replica does the same.
    pub fn shutdown(mut self) {
        self.stop_tasks();
    }

    fn stop_tasks(&mut self) {
        let _ = self.stop.send(true);
        let done = self
            .done
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(done) = done {
            let _ = done.recv_timeout(self.shared.pg.timeout.saturating_mul(2));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

impl TokenStore for Replica {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        self.store.reserve_ids(n)
    }

    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let shared = self.shared.clone();
        self.store.pg.block(async move {
            shared.pg.flush().await.ok();
            let mut conn = shared.pg.conn().await?;
            let committed = match apply_batch(conn.session()?, changes).await {
                Ok(c) => c,
                Err(e @ StoreError::Backend(_)) => {
                    // The commit may or may not have happened: refuse until caught up.
                    shared.mark_stale();
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            shared.install(committed, conn.session()?).await;
            Ok(())
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: the coarse clock answers only below the fast-path limit; from it on, the
    /// precise clock decides, so nothing is served past the deadline; a stale mark (limit 0)
    /// always asks the precise check.
    #[test]
    fn the_coarse_clock_decides_only_below_the_fast_path_limit() {
        let (fast_until, deadline) = (1_050, 1_100);
        let precise_at = |now: u64| move || now < deadline;
        let never = || -> bool { panic!("the precise clock was read") };
        assert!(current(Some(1_049), fast_until, never));
        assert!(current(Some(1_050), fast_until, precise_at(1_099)));
        assert!(!current(Some(1_050), fast_until, precise_at(1_100)));
        assert!(!current(Some(1_090), fast_until, precise_at(1_200)));
        assert!(
            !current(None, fast_until, precise_at(1_100)),
            "no coarse clock"
        );
        assert!(current(None, fast_until, precise_at(1_000)));
        assert!(!current(Some(1), 0, || false), "marked stale");
    }
}
