//! What a replica reports about itself: its [`ReplicaStatus`] (state, lag, lease) for health
//! probes, its metrics (feature `metrics`), and the end of its shutdown. The sync task writes
//! these with atomic stores where it already passes; readers never wait for it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::health::{ReplicaState, ReplicaStatus};

/// Why a copy was loaded in full, for the reloads metric.
#[derive(Clone, Copy, Debug)]
pub(super) enum LoadReason {
    First = 0,
    HistoryChanged = 1,
    BehindHorizon = 2,
    RepairFailed = 3,
}

/// The replica's own account of itself (see the module docs).
pub(super) struct Vitals {
    /// The latest change-clock value heard of, plus one (0: none).
    seen: AtomicU64,
    /// The change-clock value the copy is at, plus one (0: none).
    at: AtomicU64,
    /// The sync task holds a working connection (it listens, or a catch-up runs on it).
    connected: AtomicBool,
    /// A full load after the first is running.
    reloading: AtomicBool,
    /// Shutdown began: nothing confirms the copy any more.
    pub(super) stopped: AtomicBool,
    /// Set once the sync task has written the last uses and left the fleet.
    pub(super) finished: watch::Sender<bool>,
    /// What went wrong while shutting down (last uses not written), for the caller of
    /// `shutdown`.
    shutdown_error: Mutex<Option<StoreError>>,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::ReplicaMetrics,
}

impl Vitals {
    /// The replica's vitals, its metrics labelled with `name` (resolved now, with the recorder
    /// in force).
    pub(super) fn new(name: &str) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = name;
        Self {
            seen: AtomicU64::new(0),
            at: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            reloading: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            finished: watch::Sender::new(false),
            shutdown_error: Mutex::new(None),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::ReplicaMetrics::resolve(name),
        }
    }

    /// The database announced (or a catch-up read) clock value `seq`.
    pub(super) fn heard(&self, seq: u64) {
        self.seen.fetch_max(seq.saturating_add(1), Ordering::AcqRel);
        self.publish_behind();
    }

    /// The copy is at clock value `seq`.
    pub(super) fn applied(&self, seq: u64) {
        self.at.store(seq.saturating_add(1), Ordering::Release);
        self.heard(seq);
    }

    /// The copy installed `rows` changed or deleted rows one by one.
    pub(super) fn installed(&self, rows: usize) {
        #[cfg(feature = "metrics")]
        self.metrics.changes.increment(rows as u64);
        #[cfg(not(feature = "metrics"))]
        let _ = rows;
    }

    pub(super) fn connected(&self, up: bool) {
        self.connected.store(up, Ordering::Release);
    }

    /// A full load begins (`Some`) or ends (`None`).
    pub(super) fn reloading(&self, reason: Option<LoadReason>) {
        self.reloading.store(reason.is_some(), Ordering::Release);
        #[cfg(feature = "metrics")]
        if let Some(c) = reason.and_then(|r| self.metrics.reloads.get(r as usize)) {
            c.increment(1);
        }
    }

    /// Reconciliation read `rows` rows again.
    pub(super) fn repaired(&self, rows: u64) {
        #[cfg(feature = "metrics")]
        self.metrics.repaired.increment(rows);
        #[cfg(not(feature = "metrics"))]
        let _ = rows;
    }

    /// A catch-up failed (the sync task reconnects).
    pub(super) fn failed(&self) {
        self.connected(false);
        #[cfg(feature = "metrics")]
        self.metrics.errors.increment(1);
    }

    /// The replica stopped authenticating (it was authenticating until now).
    pub(super) fn went_stale(&self) {
        #[cfg(feature = "metrics")]
        {
            self.metrics.current.set(0.0);
            self.metrics.stale.increment(1);
        }
    }

    /// The gauges of staleness, as of now: whether it authenticates and for how long it has
    /// gone unconfirmed (`None`: never confirmed).
    pub(super) fn publish(&self, current: bool, unconfirmed_for: Option<Duration>) {
        #[cfg(feature = "metrics")]
        {
            self.metrics.current.set(if current { 1.0 } else { 0.0 });
            if let Some(d) = unconfirmed_for {
                self.metrics.lag.set(d.as_secs_f64());
                let at = OffsetDateTime::now_utc() - d;
                self.metrics
                    .last_confirmed
                    .set(at.unix_timestamp_nanos() as f64 / 1e9);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (current, unconfirmed_for);
    }

    fn publish_behind(&self) {
        #[cfg(feature = "metrics")]
        {
            let (seen, at) = (
                self.seen.load(Ordering::Acquire),
                self.at.load(Ordering::Acquire),
            );
            self.metrics.behind.set(seen.saturating_sub(at) as f64);
        }
    }

    /// Keeps what went wrong at shutdown for the caller of `shutdown`.
    pub(super) fn shutdown_failed(&self, e: StoreError) {
        *self
            .shutdown_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    pub(super) fn take_shutdown_error(&self) -> Option<StoreError> {
        self.shutdown_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The status, given whether the copy is current now, how long since it was confirmed,
    /// how many full loads finished, its bound and its lease.
    pub(super) fn status(
        &self,
        current: bool,
        unconfirmed_for: Option<Duration>,
        loads: u64,
        bound: Duration,
        lease: Duration,
    ) -> ReplicaStatus {
        let stopped = self.stopped.load(Ordering::Acquire);
        let state = if stopped {
            ReplicaState::Stopped
        } else if loads == 0 {
            ReplicaState::Loading
        } else if self.reloading.load(Ordering::Acquire) {
            ReplicaState::Reloading
        } else if current {
            ReplicaState::Current
        } else if self.connected.load(Ordering::Acquire) {
            ReplicaState::CatchingUp
        } else {
            ReplicaState::Stale
        };
        let plus_one = |v: u64| v.checked_sub(1);
        ReplicaStatus {
            state,
            holds_lease: !stopped && unconfirmed_for.is_some_and(|d| d < lease),
            clock: plus_one(self.at.load(Ordering::Acquire)),
            seen: plus_one(self.seen.load(Ordering::Acquire)),
            unconfirmed_for,
            last_confirmed: unconfirmed_for.and_then(|d| {
                let at = OffsetDateTime::now_utc() - d;
                at.replace_nanosecond(at.millisecond() as u32 * 1_000_000)
                    .ok()
            }),
            staleness_bound: bound,
        }
    }
}
