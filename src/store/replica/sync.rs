//! The replica's moving parts: the state its tasks share with it, the catch-up (incremental,
//! reconciling, repairing, reloading), and the tasks that run them (see the [module
//! docs](super)).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, IsolationLevel, Row as PgRow, Transaction};

use super::ReplicaOptions;
use super::coarse::Clocks;
use super::digest::{BUCKET_BITS, Digest, Row, Sum};
use super::vitals::{LoadReason, Vitals};
use crate::error::StoreError;
use crate::events::{EventKind, TokenEvent};
use crate::store::MemoryStore;
use crate::store::postgres::{
    CHANNEL, Committed, FINGERPRINT, Member, Nonce, Pg, RENEW, Session, TimedOut, db,
    fingerprint_at, forget_departed, nonce_of, select_columns, token_of,
};
use crate::token::{TokenId, UserId, whole_seconds};

/// Where the copy is: the clock value it holds everything up to, that value's nonce in the
/// database's history, and the sums of what it installed.
#[derive(Default)]
pub(super) struct Applied {
    pub(super) seq: Option<u64>,
    pub(super) nonce: Option<Nonce>,
    pub(super) digest: Digest,
    /// The last clock value this replica acknowledged in its membership row.
    acked: Option<(u64, Option<Nonce>)>,
}

/// What a replica's tasks share with the [`Replica`](super::Replica).
pub(super) struct Shared {
    pub(super) pg: Arc<Pg>,
    pub(super) local: MemoryStore,
    pub(super) applied: tokio::sync::Mutex<Applied>,
    /// The monotonic clock every instant below is read on (nanoseconds).
    pub(super) clocks: Clocks,
    /// The instant from which the copy no longer counts as current (0: stale).
    deadline: AtomicU64,
    /// The coarse-clock reading below which the copy counts as current without a precise
    /// clock read: `deadline` less the margin ([`Clocks::margin`]); 0 when there is none.
    fast_until: AtomicU64,
    /// The start of the last confirmed catch-up.
    confirmed: AtomicU64,
    /// When the copy was last marked stale: a catch-up that started before cannot confirm.
    stale_since: AtomicU64,
    stale_reported: AtomicBool,
    pub(super) bound: Duration,
    pub(super) heartbeat: Duration,
    pub(super) options: ReplicaOptions,
    /// Asks the sync task to catch up now.
    wake: Notify,
    /// This replica's row in the fleet's membership.
    pub(super) member: Member,
    /// Rows read again by repairs since the start.
    pub(super) repaired: AtomicU64,
    /// Full loads since the start (the first one included).
    pub(super) reloads: AtomicU64,
    /// What the replica reports about itself: status, metrics, the end of its shutdown.
    pub(super) vitals: Vitals,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Why a copy is reloaded in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reload {
    /// The replica has no copy yet.
    First,
    /// The database's history does not hold the copy's clock value with the copy's nonce:
    /// restored from a backup, recovered to an earlier point, failed over to a standby that
    /// missed transactions, or replaced.
    HistoryChanged,
    /// The copy is older than the deletion horizon: deletions it missed were forgotten.
    BehindHorizon,
    /// Repairing buckets did not make the sums agree.
    RepairFailed,
}

impl Reload {
    fn reason(self) -> LoadReason {
        match self {
            Self::First => LoadReason::First,
            Self::HistoryChanged => LoadReason::HistoryChanged,
            Self::BehindHorizon => LoadReason::BehindHorizon,
            Self::RepairFailed => LoadReason::RepairFailed,
        }
    }

    fn says(self) -> &'static str {
        match self {
            Self::First => "first load",
            Self::HistoryChanged => {
                "the database's history changed (restored, recovered to an earlier point, failed over, or replaced)"
            }
            Self::BehindHorizon => "away longer than deletions are kept",
            Self::RepairFailed => "repairing the differing rows did not make the sums agree",
        }
    }
}

/// What a catch-up did beyond bringing the copy up to date.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Caught {
    /// The sums of the copy and the database differed.
    pub(super) differed: bool,
    /// The copy was loaded in full.
    pub(super) reloaded: bool,
}

/// What an incremental catch-up found.
enum Step {
    /// The copy is at the snapshot's clock value (and, if asked, its sums agree).
    Current,
    /// The sums of the copy and the database differ.
    Differs,
    /// The copy must be reloaded.
    Reload(Reload),
}

impl Shared {
    pub(super) fn new(
        pg: Arc<Pg>,
        bound: Duration,
        heartbeat: Duration,
        options: ReplicaOptions,
        member: Member,
    ) -> Self {
        Self {
            pg,
            local: MemoryStore::new(),
            applied: tokio::sync::Mutex::new(Applied::default()),
            clocks: Clocks::new(),
            deadline: AtomicU64::new(0),
            fast_until: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            stale_since: AtomicU64::new(0),
            stale_reported: AtomicBool::new(false),
            bound,
            heartbeat,
            options,
            wake: Notify::new(),
            vitals: Vitals::new(&member.name),
            member,
            repaired: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
        }
    }

    pub(super) fn now(&self) -> u64 {
        self.clocks.now()
    }

    pub(super) fn unconfirmed_for(&self) -> Duration {
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

    /// The copy held everything committed before `started` (a catch-up began then, with the
    /// renewal of this replica's lease) — unless it was marked stale since.
    fn confirm(&self, started: u64) {
        let started = started.max(1);
        if started <= self.stale_since.load(Ordering::Acquire)
            || self.vitals.stopped.load(Ordering::Acquire)
        {
            return;
        }
        self.confirmed.fetch_max(started, Ordering::AcqRel);
        let deadline = started.saturating_add(nanos(self.bound));
        self.deadline.fetch_max(deadline, Ordering::AcqRel);
        let margin = self.clocks.margin(nanos(self.bound));
        self.fast_until
            .fetch_max(deadline.saturating_sub(margin), Ordering::AcqRel);
        self.vitals.publish(true, Some(self.unconfirmed_for()));
        if self.stale_reported.swap(false, Ordering::AcqRel) {
            tracing::info!("api-tokens replica: caught up, authenticating again");
            self.emit(EventKind::ReplicaCurrent);
        }
    }

    /// Refuse every token until a catch-up that starts after this succeeds.
    pub(super) fn mark_stale(&self) {
        self.stale_since.fetch_max(self.now(), Ordering::AcqRel);
        self.fast_until.store(0, Ordering::Release);
        self.deadline.store(0, Ordering::Release);
        self.vitals.publish(false, None);
        self.wake.notify_one();
    }

    pub(super) fn is_current(&self) -> bool {
        self.now() < self.deadline.load(Ordering::Acquire)
    }

    /// [`Shared::is_current`] for every authentication: the coarse clock while the deadline
    /// is far, the precise one when it is near.
    pub(super) fn is_current_fast(&self) -> bool {
        current(
            self.clocks.coarse(),
            self.fast_until.load(Ordering::Acquire),
            || self.is_current(),
        )
    }

    /// The replica's staleness gauges, as of now.
    pub(super) fn publish(&self) {
        let confirmed = self.confirmed.load(Ordering::Acquire) != 0;
        self.vitals
            .publish(self.is_current(), confirmed.then(|| self.unconfirmed_for()));
    }

    /// Brings the copy up to the database and confirms it: incrementally when the copy
    /// follows the database's history, comparing sums when `reconcile` asks (and repairing
    /// what differs), reloading in full otherwise. Whatever it does, it confirms only what a
    /// snapshot taken after `started` (and after this replica's lease renewal) showed.
    pub(super) async fn catch_up(
        &self,
        session: &mut Session,
        reconcile: bool,
    ) -> Result<Caught, StoreError> {
        let mut applied = self.applied.lock().await;
        let started = self.now();
        let step = match applied.seq {
            None => Step::Reload(Reload::First),
            Some(a) => {
                self.incremental(session, &mut applied, a, reconcile)
                    .await?
            }
        };
        let mut caught = Caught::default();
        match step {
            Step::Current => self.confirm(started),
            Step::Differs => {
                // A difference no notification announced: a change made with triggers off,
                // or a copy gone wrong. Refuse until it is repaired (a few round trips).
                tracing::warn!(
                    "api-tokens replica: the copy differs from the database (a change made without triggers?); repairing"
                );
                caught.differed = true;
                self.mark_stale();
                let started = self.now();
                if let Some(reason) = self.repair(session, &mut applied).await? {
                    tracing::warn!(
                        reason = reason.says(),
                        "api-tokens replica: reloading every token; refusing every token until done"
                    );
                    self.reload(session, &mut applied, reason).await?;
                    caught.reloaded = true;
                }
                self.confirm(started);
            }
            Step::Reload(reason) => {
                if reason != Reload::First {
                    tracing::warn!(
                        reason = reason.says(),
                        "api-tokens replica: reloading every token; refusing every token until done"
                    );
                    self.mark_stale();
                }
                let started = self.now();
                self.reload(session, &mut applied, reason).await?;
                caught.reloaded = true;
                self.confirm(started);
            }
        }
        self.ack(session, &mut applied).await?;
        Ok(caught)
    }

    /// Writes this replica's acknowledgement of the clock value it is at, if it moved since
    /// the last one. A failure is logged and retried after the next catch-up: writers then
    /// wait for this replica until its lease runs out.
    async fn ack(&self, session: &mut Session, applied: &mut Applied) -> Result<(), StoreError> {
        let Some(seq) = applied.seq else {
            return Ok(());
        };
        self.vitals.applied(seq);
        let now = (seq, applied.nonce);
        if applied.acked == Some(now) {
            return Ok(());
        }
        match self.member.ack(session, seq, applied.nonce).await {
            Ok(()) => {
                applied.acked = Some(now);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "api-tokens replica: could not acknowledge a change; writers wait for the lease");
                Err(e)
            }
        }
    }

    /// One round trip: the lease renewed, then in the same repeatable-read snapshot the clock,
    /// the history's nonce for the copy's clock value, every row stamped after it, every
    /// deletion recorded after it, and (when `reconcile`) the database's sum of fingerprints.
    async fn incremental(
        &self,
        session: &mut Session,
        applied: &mut Applied,
        a: u64,
        reconcile: bool,
    ) -> Result<Step, StoreError> {
        let since = i64::try_from(a).unwrap_or(i64::MAX);
        let renew = session.stmt(RENEW).await?;
        let clock = session.stmt(CLOCK).await?;
        let nonce_at = session.stmt(NONCE_AT).await?;
        let rows = session.stmt(&rows_since()).await?;
        let gone = session.stmt(GONE_SINCE).await?;
        let total = session.stmt(TOTAL).await?;
        // Left open if this future is dropped mid-way: the session is then discarded.
        session.clean = false;
        let c = &session.client;
        let m = &self.member;
        let lease_ms = m.lease_ms();
        let limit = self.pg.timeout;
        let renew_args: [&(dyn ToSql + Sync); 3] = [&m.id, &m.name, &lease_ms];
        let since_args: [&(dyn ToSql + Sync); 1] = [&since];
        let total_args: [&(dyn ToSql + Sync); 1] = [&reconcile];
        let (begin, renewed, clock, nonce_a, rows, gone, total, commit) =
            tokio::time::timeout(limit, async {
                tokio::join!(
                    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ"),
                    c.execute(&renew, &renew_args),
                    c.query_one(&clock, &[]),
                    c.query_opt(&nonce_at, &since_args),
                    c.query(&rows, &since_args),
                    c.query(&gone, &since_args),
                    c.query_one(&total, &total_args),
                    c.batch_execute("COMMIT"),
                )
            })
            .await
            .map_err(|_| StoreError::backend(TimedOut(limit)))?;
        begin.map_err(db)?;
        renewed.map_err(db)?;
        let (clock, nonce_a, rows, gone, total) = (
            clock.map_err(db)?,
            nonce_a.map_err(db)?,
            rows.map_err(db)?,
            gone.map_err(db)?,
            total.map_err(db)?,
        );
        commit.map_err(db)?;
        session.clean = true;
        let at = match followed(a, applied.nonce, &clock, nonce_a.as_ref())? {
            Ok(at) => at,
            Err(reason) => return Ok(Step::Reload(reason)),
        };
        self.install_since(applied, a, at, &rows, &gone)?;
        if reconcile {
            let theirs = sum_of(&total)?;
            if theirs != applied.digest.total() {
                tracing::debug!(
                    ?theirs,
                    ours = ?applied.digest.total(),
                    "api-tokens replica: sums differ"
                );
                return Ok(Step::Differs);
            }
        }
        Ok(Step::Current)
    }

    /// Makes the copy equal the database again where the sums differ: in one repeatable-read
    /// transaction, catches up, compares the sums of every bucket of ids, reads the rows of
    /// the buckets that differ and installs exactly those (deleting what the copy holds there
    /// and the database does not). Returns a reason to reload instead when the history
    /// changed, more than a quarter of the buckets differ, or the sums still differ after.
    async fn repair(
        &self,
        session: &mut Session,
        applied: &mut Applied,
    ) -> Result<Option<Reload>, StoreError> {
        let Some(a) = applied.seq else {
            return Ok(Some(Reload::First));
        };
        let since = i64::try_from(a).unwrap_or(i64::MAX);
        let limit = self.pg.timeout;
        let select = format!(
            "SELECT {}, {FINGERPRINT} FROM api_tokens WHERE (id >> {BUCKET_BITS}) = ANY($1)",
            select_columns()
        );
        let rows_stmt = rows_since();
        let work = async {
            let (tx, clock) = renewed_snapshot(session, &self.member).await?;
            let nonce_a = tx.query_opt(NONCE_AT, &[&since]).await.map_err(db)?;
            let at = match followed(a, applied.nonce, &clock, nonce_a.as_ref())? {
                Ok(at) => at,
                Err(reason) => return Ok(Some(reason)),
            };
            let rows = tx.query(rows_stmt.as_str(), &[&since]).await.map_err(db)?;
            let gone = tx.query(GONE_SINCE, &[&since]).await.map_err(db)?;
            let buckets = tx.query(BUCKETS, &[]).await.map_err(db)?;
            self.install_since(applied, a, at, &rows, &gone)?;
            let mut theirs: HashMap<i64, Sum> = HashMap::with_capacity(buckets.len());
            for r in &buckets {
                let b: i64 = r.try_get(0).map_err(db)?;
                theirs.insert(b, sum_of_at(r, 1)?);
            }
            let mut differ: Vec<i64> = theirs
                .iter()
                .filter(|(b, s)| applied.digest.bucket(**b) != **s)
                .map(|(b, _)| *b)
                .collect();
            differ.extend(applied.digest.buckets().filter(|b| !theirs.contains_key(b)));
            differ.sort_unstable();
            differ.dedup();
            let all = theirs.len().max(applied.digest.buckets().count()).max(1);
            if differ.len() * 4 > all && differ.len() > 4 {
                return Ok(Some(Reload::RepairFailed));
            }
            let fresh = tx.query(select.as_str(), &[&differ]).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            let read = self.parse(&fresh, &[])?.0;
            let n = read.len() as u64;
            let refused = applied.digest.repair(&self.local, &differ, read);
            self.log_refused(&refused);
            let total_theirs = theirs.values().fold(Sum::default(), |mut acc, s| {
                acc.rows += s.rows;
                acc.sum += s.sum;
                acc
            });
            self.repaired.fetch_add(n.max(1), Ordering::AcqRel);
            self.vitals.repaired(n.max(1));
            if total_theirs != applied.digest.total() {
                return Ok(Some(Reload::RepairFailed));
            }
            tracing::warn!(
                buckets = differ.len(),
                rows = n,
                "api-tokens replica: repaired rows that differed from the database"
            );
            Ok(None)
        };
        let outcome = tokio::time::timeout(limit, work)
            .await
            .map_err(|_| StoreError::backend(TimedOut(limit)))?;
        if outcome.is_err() {
            session.clean = false;
        }
        outcome
    }

    /// Every row, read in one repeatable-read snapshot (after this replica's lease renewal),
    /// into a fresh copy swapped in at once. The caller has marked the copy stale unless it
    /// is the first load (nothing is served before it anyway).
    async fn reload(
        &self,
        session: &mut Session,
        applied: &mut Applied,
        reason: Reload,
    ) -> Result<(), StoreError> {
        let limit = self.options.load_timeout;
        self.vitals.reloading(Some(reason.reason()));
        let loaded = tokio::time::timeout(limit, self.load_all(session)).await;
        self.vitals.reloading(None);
        let (fresh, digest, seq, nonce) =
            loaded.map_err(|_| StoreError::backend(TimedOut(limit)))??;
        self.local.replace_contents(fresh);
        self.reloads.fetch_add(1, Ordering::AcqRel);
        *applied = Applied {
            seq: Some(seq),
            nonce,
            digest,
            acked: applied.acked,
        };
        Ok(())
    }

    /// Every row, read in one repeatable-read snapshot, and the clock value it is at.
    async fn load_all(
        &self,
        session: &mut Session,
    ) -> Result<(MemoryStore, Digest, u64, Option<Nonce>), StoreError> {
        // The present clock value has a nonce (a database migrated from before version 6
        // gets one here), so the copy can prove its history from now on.
        session
            .client
            .execute(ENSURE_NONCE, &[])
            .await
            .map_err(db)?;
        let select = format!("SELECT {}, {FINGERPRINT} FROM api_tokens", select_columns());
        let (tx, clock) = renewed_snapshot(session, &self.member).await?;
        let (seq, _, nonce) = clock_of(&clock)?;
        let total = tx.query_one(TOTAL, &[&true]).await.map_err(db)?;
        let fresh = MemoryStore::new();
        let mut digest = Digest::default();
        let portal = tx.bind(select.as_str(), &[]).await.map_err(db)?;
        let mut users = HashSet::new();
        loop {
            // A thousand rows a round trip: with ten thousand, each chunk's transient buffers
            // (rows, records, sums) left the allocator's heap fragmented between the records
            // kept, about 30 resident bytes per token more at a million tokens.
            let rows = tx.query_portal(&portal, 1_000).await.map_err(db)?;
            if rows.is_empty() {
                break;
            }
            let read = self.parse_rows(&rows, &mut users)?;
            let refused = digest.load(&fresh, read);
            self.log_refused(&refused);
        }
        tx.commit().await.map_err(db)?;
        let theirs = sum_of(&total)?;
        if theirs != digest.total() {
            // Read in the same snapshot: only a fingerprint the crate computes unlike the
            // database could do this. The copy is still the database's; the next
            // reconciliation says so again.
            tracing::error!(
                ?theirs,
                ours = ?digest.total(),
                "api-tokens replica: a full load does not sum like the database"
            );
        }
        Ok((fresh, digest, seq, nonce))
    }

    /// Changed rows and deleted ids as read by a catch-up.
    fn parse(
        &self,
        rows: &[PgRow],
        gone: &[PgRow],
    ) -> Result<(Vec<Row>, Vec<TokenId>), StoreError> {
        let read = self.parse_rows(rows, &mut HashSet::new())?;
        let mut deleted = Vec::with_capacity(gone.len());
        for r in gone {
            let id: i64 = r.try_get(0).map_err(db)?;
            if let Ok(id) = u64::try_from(id) {
                deleted.push(TokenId::new(id));
            }
        }
        Ok((read, deleted))
    }

    /// Rows as records with their fingerprints. A row the crate cannot read is kept as
    /// `None` (it is left out of the copy: it cannot authenticate, fail closed) and logged,
    /// instead of stopping every other token. Equal user ids share one allocation (`users`):
    /// an owner's tokens, and every token one admin created, cost one string, as in a store
    /// filled through the API.
    fn parse_rows(
        &self,
        rows: &[PgRow],
        users: &mut HashSet<UserId>,
    ) -> Result<Vec<Row>, StoreError> {
        let mut shared = |u: UserId| match users.get(&u) {
            Some(known) => known.clone(),
            None => {
                users.insert(u.clone());
                u
            }
        };
        let at = crate::store::postgres::FINGERPRINT_AT;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let key: i64 = r.try_get(0).map_err(db)?;
            let Ok(key) = u64::try_from(key) else {
                tracing::error!(
                    id = key,
                    "api-tokens replica: row with a negative id left out"
                );
                continue;
            };
            let id = TokenId::new(key);
            let fingerprint = fingerprint_at(r, at)?;
            let token = match token_of(r) {
                Ok(mut t) => {
                    t.owner = shared(t.owner);
                    t.creator = shared(t.creator);
                    Some(t)
                }
                Err(e) => {
                    tracing::error!(error = %e, id = key, "api-tokens replica: unreadable row left out");
                    None
                }
            };
            out.push(Row {
                id,
                token,
                fingerprint,
            });
        }
        Ok(out)
    }

    /// Installs what a snapshot at `at` (a clock value and its nonce) holds beyond the copy at
    /// `a`: the `rows` stamped and the deletions (`gone`) recorded after it.
    fn install_since(
        &self,
        applied: &mut Applied,
        a: u64,
        (seq, nonce): (u64, Option<Nonce>),
        rows: &[PgRow],
        gone: &[PgRow],
    ) -> Result<(), StoreError> {
        self.vitals.heard(seq);
        if seq > a {
            let (changed, deleted) = self.parse(rows, gone)?;
            self.vitals.installed(changed.len() + deleted.len());
            let refused = applied.digest.install(&self.local, changed, &deleted);
            self.log_refused(&refused);
            applied.seq = Some(seq);
            applied.nonce = nonce;
        }
        Ok(())
    }

    fn log_refused(&self, refused: &[TokenId]) {
        for id in refused {
            tracing::error!(
                id = id.get(),
                "api-tokens replica: record unreadable, or clashing with another's name or hash; left out"
            );
        }
    }

    /// After this replica committed a batch: install it when it directly follows the copy (in
    /// the same history), else catch up. On failure the replica goes stale: it never serves a
    /// copy without a write it made.
    pub(super) async fn install(&self, committed: Committed, session: &mut Session) {
        {
            let mut applied = self.applied.lock().await;
            if let Some(a) = applied.seq {
                // Already read by a catch-up.
                if committed.seq == a
                    && committed.nonce.is_some()
                    && committed.nonce == applied.nonce
                {
                    return;
                }
                if committed.seq == a.saturating_add(1)
                    && committed.before.is_some()
                    && committed.before == applied.nonce
                {
                    let rows = committed
                        .rows
                        .into_iter()
                        .map(|(t, fingerprint)| Row {
                            id: t.id,
                            token: Some(t),
                            fingerprint,
                        })
                        .collect::<Vec<_>>();
                    self.vitals.installed(rows.len() + committed.deleted.len());
                    let refused = applied
                        .digest
                        .install(&self.local, rows, &committed.deleted);
                    self.log_refused(&refused);
                    applied.seq = Some(committed.seq);
                    applied.nonce = committed.nonce;
                    let _ = self.ack(session, &mut applied).await;
                    return;
                }
            }
        }
        if let Err(e) = self.catch_up(session, false).await {
            tracing::warn!(error = %e, "api-tokens replica: catch-up after a write failed");
            self.mark_stale();
        }
    }
}

/// The history check of a copy at clock value `a` with nonce `ours` against a snapshot at
/// `seq`, pruned through `pruned`, whose history gives `theirs` for `a`: `None` when the copy
/// follows it.
/// A repeatable-read transaction on `session` whose first statement renews the lease of `m`
/// (so its snapshot follows the renewal), and the clock ([`CLOCK`]) that snapshot sees.
async fn renewed_snapshot<'a>(
    session: &'a mut Session,
    m: &Member,
) -> Result<(Transaction<'a>, PgRow), StoreError> {
    let tx = session
        .client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .await
        .map_err(db)?;
    tx.execute(RENEW, &[&m.id, &m.name, &m.lease_ms()])
        .await
        .map_err(db)?;
    let clock = tx.query_one(CLOCK, &[]).await.map_err(db)?;
    Ok((tx, clock))
}

/// The clock value and its nonce of a catch-up's snapshot (`clock`, see [`CLOCK`]), if the
/// copy at `a` (whose nonce is `ours`) still follows the database's history (`at_a`: the
/// history's row for `a`, see [`NONCE_AT`]); else why it must reload ([`history_check`]).
fn followed(
    a: u64,
    ours: Option<Nonce>,
    clock: &PgRow,
    at_a: Option<&PgRow>,
) -> Result<Result<(u64, Option<Nonce>), Reload>, StoreError> {
    let (seq, pruned, nonce) = clock_of(clock)?;
    let theirs = match at_a {
        Some(r) => nonce_of(r.try_get::<_, Option<&str>>(0).map_err(db)?),
        None => None,
    };
    Ok(match history_check(a, ours, seq, pruned, theirs) {
        Some(reason) => Err(reason),
        None => Ok((seq, nonce)),
    })
}

fn history_check(
    a: u64,
    ours: Option<Nonce>,
    seq: u64,
    pruned: u64,
    theirs: Option<Nonce>,
) -> Option<Reload> {
    if ours.is_none() || theirs != ours || seq < a {
        Some(Reload::HistoryChanged)
    } else if pruned > a {
        Some(Reload::BehindHorizon)
    } else {
        None
    }
}

/// Whether the copy is current: at once when the coarse reading is below the fast-path limit
/// (which [`Shared::confirm`] keeps a margin before the deadline), else by `precise`.
pub(super) fn current(
    coarse: Option<u64>,
    fast_until: u64,
    precise: impl FnOnce() -> bool,
) -> bool {
    coarse.is_some_and(|c| c < fast_until) || precise()
}

/// The clock, its deletion horizon, and the present value's nonce.
const CLOCK: &str = "SELECT c.seq, c.pruned_through, h.nonce::text
     FROM api_token_clock AS c LEFT JOIN api_token_history AS h ON h.seq = c.seq
     WHERE c.one = 1";

/// The nonce the history gives a clock value.
const NONCE_AT: &str = "SELECT nonce::text FROM api_token_history WHERE seq = $1";

/// Gives the present clock value a nonce if it has none.
const ENSURE_NONCE: &str = "INSERT INTO api_token_history (seq)
     SELECT seq FROM api_token_clock WHERE one = 1 ON CONFLICT (seq) DO NOTHING";

/// Every row's fingerprint, summed (only when `$1`: otherwise nothing is read).
const TOTAL: &str = "SELECT count(*), coalesce(sum(sec_fp), 0)::text FROM api_tokens WHERE $1";

/// The sums per bucket of ids.
const BUCKETS: &str = "SELECT id >> 10, count(*), coalesce(sum(sec_fp), 0)::text
     FROM api_tokens GROUP BY 1";

fn rows_since() -> String {
    format!(
        "SELECT {}, {FINGERPRINT} FROM api_tokens WHERE change_seq > $1",
        select_columns()
    )
}

const GONE_SINCE: &str = "SELECT id FROM api_token_deleted WHERE change_seq > $1";

fn seq_of(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Config(format!("change clock at {v}")))
}

fn clock_of(r: &PgRow) -> Result<(u64, u64, Option<Nonce>), StoreError> {
    Ok((
        seq_of(r.try_get(0).map_err(db)?)?,
        seq_of(r.try_get(1).map_err(db)?)?,
        nonce_of(r.try_get::<_, Option<&str>>(2).map_err(db)?),
    ))
}

fn sum_of(r: &PgRow) -> Result<Sum, StoreError> {
    sum_of_at(r, 0)
}

fn sum_of_at(r: &PgRow, at: usize) -> Result<Sum, StoreError> {
    let rows: i64 = r.try_get(at).map_err(db)?;
    let sum: &str = r.try_get(at + 1).map_err(db)?;
    Sum::parse(rows, sum).ok_or_else(|| StoreError::Config(format!("a fingerprint sum {sum:?}")))
}

/// A connection that listens on [`CHANNEL`]: the client, and a channel that yields once per
/// notification (its clock value, when the payload is one) and closes when the connection
/// does.
async fn listen(pg: &Pg) -> Result<(Session, mpsc::UnboundedReceiver<Option<u64>>), StoreError> {
    let mut config = pg.config.clone();
    config.application_name("api-tokens-listener");
    let (client, mut connection) = pg.open(&config).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    // The payload is the clock value the change committed at.
                    if tx.send(n.payload().parse::<u64>().ok()).is_err() {
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

/// The sync task: listen, catch up, confirm, acknowledge, reconcile on schedule; reconnect on
/// failure. When stopped: writes the last uses and leaves the fleet.
pub(super) async fn sync(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut first: Option<std::sync::mpsc::SyncSender<Result<(), StoreError>>>,
) {
    let min_backoff = Duration::from_millis(20);
    let mut backoff = min_backoff;
    // Every call is bounded; a catch-up bounds itself (a reload may take longer).
    let op_timeout = shared.pg.timeout;
    let every = shared.options.reconcile_every;
    let mut last_reconcile = Instant::now();

    'connect: loop {
        shared.vitals.connected(false);
        shared.publish();
        if *stop.borrow() {
            break;
        }
        let attempt = async {
            let (mut client, notes) = tokio::time::timeout(op_timeout, listen(&shared.pg))
                .await
                .unwrap_or_else(|_| Err(StoreError::backend(TimedOut(op_timeout))))?;
            shared.vitals.connected(true);
            shared.catch_up(&mut client, false).await?;
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
                shared.vitals.failed();
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    shared.vitals.finished.send_replace(true);
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
            let next_reconcile = every.saturating_sub(last_reconcile.elapsed());
            tokio::select! {
                n = notes.recv() => {
                    let Some(seq) = n else {
                        continue 'connect;
                    };
                    let mut latest = seq;
                    while let Ok(seq) = notes.try_recv() {
                        latest = latest.max(seq);
                    }
                    if let Some(seq) = latest {
                        shared.vitals.heard(seq);
                    }
                }
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(shared.heartbeat.min(next_reconcile)) => {}
                _ = stop.changed() => break 'connect,
            }
            let reconcile = last_reconcile.elapsed() >= every;
            let caught = shared.catch_up(&mut client, reconcile).await;
            shared.publish();
            match caught {
                Ok(_) => {
                    if reconcile {
                        last_reconcile = Instant::now();
                    }
                }
                Err(e) => {
                    shared.vitals.failed();
                    tracing::warn!(error = %e, "api-tokens replica: catch-up failed; reconnecting");
                    continue 'connect;
                }
            }
        }
    }
    // Leaving: the last uses this replica still holds, then its membership (writers stop
    // waiting for it at once).
    let limit = shared.pg.timeout;
    match tokio::time::timeout(limit, shared.pg.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "api-tokens replica: last uses lost at shutdown");
            shared.vitals.shutdown_failed(e);
        }
        Err(_) => {
            tracing::warn!("api-tokens replica: writing last uses timed out at shutdown");
            shared
                .vitals
                .shutdown_failed(StoreError::backend(TimedOut(limit)));
        }
    }
    let leave = async {
        let mut conn = shared.pg.conn().await?;
        shared.member.leave(conn.session()?).await
    };
    if let Ok(Err(e)) = tokio::time::timeout(limit, leave).await {
        tracing::warn!(error = %e, "api-tokens replica: could not leave the fleet; its lease runs out instead");
    }
    shared.vitals.connected(false);
    shared.vitals.finished.send_replace(true);
}

/// Writes buffered last uses every flush interval, and hourly prunes old deletion records,
/// history nonces and departed replicas, apart from the sync task: a large flush never delays
/// a confirmation.
pub(super) async fn maintenance(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
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
            let prune = crate::store::postgres::prune_deletions(&shared.pg, keep);
            if let Ok(Err(e)) = tokio::time::timeout(limit, prune).await {
                tracing::warn!(error = %e, "api-tokens replica: pruning deletions failed");
            }
            let forget = async {
                let mut conn = shared.pg.conn().await?;
                forget_departed(conn.session()?).await
            };
            if let Ok(Err(e)) = tokio::time::timeout(limit, forget).await {
                tracing::warn!(error = %e, "api-tokens replica: forgetting departed replicas failed");
            }
        }
    }
}

/// Reports the moment the replica passes its bound (the sync task may be stuck in a call).
pub(super) async fn watchdog(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let deadline = shared.deadline.load(Ordering::Acquire);
        let now = shared.now();
        // Before the first confirmation the replica is loading, not stale: nothing to report.
        let loading = shared.confirmed.load(Ordering::Acquire) == 0;
        let wait = if now >= deadline {
            if !loading && !shared.stale_reported.swap(true, Ordering::AcqRel) {
                if shared.is_current() {
                    shared.stale_reported.store(false, Ordering::Release);
                } else {
                    let behind = shared.unconfirmed_for();
                    shared.vitals.went_stale();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The coarse clock answers only below the fast-path limit; from it on, the precise clock
    /// decides, so nothing is served past the deadline; a stale mark (limit 0) always asks the
    /// precise check.
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

    /// A copy follows the database's history only when the database holds the copy's clock
    /// value with the copy's nonce; a missing or other nonce, or a clock behind the copy, is
    /// another history; a copy behind the deletion horizon reloads too.
    #[test]
    fn the_history_check() {
        let n = Some(7_u128);
        assert_eq!(history_check(5, n, 9, 0, n), None);
        assert_eq!(history_check(5, n, 5, 5, n), None);
        assert_eq!(
            history_check(5, n, 9, 0, Some(8)),
            Some(Reload::HistoryChanged)
        );
        assert_eq!(
            history_check(5, n, 9, 0, None),
            Some(Reload::HistoryChanged)
        );
        assert_eq!(
            history_check(5, None, 9, 0, None),
            Some(Reload::HistoryChanged)
        );
        assert_eq!(history_check(5, n, 4, 0, n), Some(Reload::HistoryChanged));
        assert_eq!(history_check(5, n, 9, 6, n), Some(Reload::BehindHorizon));
    }
}
