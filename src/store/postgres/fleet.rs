//! The fleet's membership: which replicas are running, how long each may go on authenticating
//! without the database (its lease), and which change each has applied; and the wait that makes
//! a write that takes rights away final when it returns.
//!
//! # Leases
//! Each [`Replica`](crate::store::replica::Replica) has a row in `api_token_replicas` (schema
//! version 6). Every transaction through which it confirms that its copy is current begins by
//! renewing its lease: `lease_until = clock_timestamp() + lease`, where `lease` is its
//! staleness bound plus a margin. It only ever counts as current until its staleness bound
//! after the start of such a transaction, so by the time its lease ends in the database's
//! clock it has stopped authenticating — unless it renewed the lease, and then that renewal's
//! transaction (whose snapshot is taken by the renewal itself) read every change committed
//! before it. After installing a change the replica writes which clock value (and history
//! nonce) it applied: its acknowledgement.
//!
//! # The wait
//! A batch that replaces or deletes a token commits, then waits until every replica with a
//! live lease (other than the writer's own, which installed the batch before this) has
//! acknowledged the batch's clock value in the database's present history, or until the
//! longest lease among them has passed since the commit: by then each one either renewed after
//! the commit (and so holds the batch) or stopped authenticating. A replica killed with
//! `kill -9` holds a write back at most until its lease ends. If the database cannot be asked
//! at all after the commit, the write fails with [`StoreError::Unconfirmed`]: it committed,
//! but nothing proves every replica refuses what it took away.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{Nonce, Pg, Session, db};
use crate::error::StoreError;

/// What a write that took rights away waited for before it returned. Collected with
/// [`PostgresStore::propagation`](super::PostgresStore::propagation).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Propagation {
    /// The change clock value the write committed at.
    pub seq: u64,
    /// The replicas (by [name](crate::store::replica::ReplicaOptions::name)) that confirmed they
    /// applied the write.
    pub confirmed: Vec<String>,
    /// The replicas that had not confirmed when the longest lease among them had run out since
    /// the commit: each of them had by then either applied the write or stopped
    /// authenticating (a replica that died, lost the database, or is reloading).
    pub lapsed: Vec<String>,
    /// How long the write waited after its commit.
    pub waited: Duration,
}

thread_local! {
    /// The reports of the writes this thread makes inside `PostgresStore::propagation`.
    static COLLECTED: RefCell<Option<Vec<Propagation>>> = const { RefCell::new(None) };
}

/// Runs `f` and returns, beside its result, the report of every write that waited for
/// the fleet on this thread meanwhile.
pub(super) fn collect<T>(f: impl FnOnce() -> T) -> (T, Vec<Propagation>) {
    let outer = COLLECTED.with(|c| c.borrow_mut().replace(Vec::new()));
    let out = f();
    let mine = COLLECTED.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    (out, mine.unwrap_or_default())
}

/// Hands a write's report to the collector of the calling thread, if any.
pub(crate) fn report(p: Propagation) {
    COLLECTED.with(|c| {
        if let Some(v) = c.borrow_mut().as_mut() {
            v.push(p);
        }
    });
}

/// A replica's membership: its row id, name and lease length.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) lease: Duration,
}

/// Renews (or, the first time, creates) a replica's row: the first statement of every
/// transaction through which it confirms, so the transaction's snapshot follows the renewal.
pub(crate) const RENEW: &str = "INSERT INTO api_token_replicas AS r (id, name, lease_until, lease_ms)
     VALUES ($1, $2, clock_timestamp() + make_interval(secs => ($3::bigint / 1000.0)::double precision), $3)
     ON CONFLICT (id) DO UPDATE
     SET lease_until = EXCLUDED.lease_until, name = EXCLUDED.name, lease_ms = EXCLUDED.lease_ms";

/// A replica's acknowledgement: the clock value it applied, and that value's history nonce.
const ACK: &str = "UPDATE api_token_replicas
     SET applied_seq = $2, applied_nonce = $3::text::uuid WHERE id = $1";

/// A replica leaving the fleet.
const LEAVE: &str = "DELETE FROM api_token_replicas WHERE id = $1";

/// Rows of replicas whose lease ended a day ago.
const FORGET: &str =
    "DELETE FROM api_token_replicas WHERE lease_until < clock_timestamp() - interval '1 day'";

/// The replicas a write at clock value `$1` waits for: live leases, each with whether it
/// applied the write in the present history and its lease length.
const LIVE: &str = "SELECT r.name,
            (h.seq IS NOT NULL AND r.applied_seq >= $1) AS applied,
            r.lease_ms
     FROM api_token_replicas AS r
     LEFT JOIN api_token_history AS h ON h.seq = r.applied_seq AND h.nonce = r.applied_nonce
     WHERE r.lease_until > clock_timestamp() AND ($2::bigint IS NULL OR r.id <> $2)";

impl Member {
    /// The parameters of [`RENEW`].
    pub(crate) fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Writes that this replica applied the clock value `seq` of the history `nonce`.
    pub(crate) async fn ack(
        &self,
        session: &mut Session,
        seq: u64,
        nonce: Option<Nonce>,
    ) -> Result<(), StoreError> {
        let st = session.stmt(ACK).await?;
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let nonce = nonce.map(|n| format!("{n:032x}"));
        session
            .client
            .execute(&st, &[&self.id, &seq, &nonce])
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Removes this replica's row: writers stop waiting for it at once.
    pub(crate) async fn leave(&self, session: &mut Session) -> Result<(), StoreError> {
        let st = session.stmt(LEAVE).await?;
        session.client.execute(&st, &[&self.id]).await.map_err(db)?;
        Ok(())
    }
}

/// Forgets replicas whose lease ended more than a day ago.
pub(crate) async fn forget_departed(session: &mut Session) -> Result<u64, StoreError> {
    let st = session.stmt(FORGET).await?;
    session.client.execute(&st, &[]).await.map_err(db)
}

/// The longest a writer polls the membership between two looks.
const MAX_POLL: Duration = Duration::from_millis(16);

/// Waits until the write committed at `seq` (whose commit the caller saw at `committed`) is
/// applied by every live replica but `me`, or the longest of their leases has passed since the
/// commit. See the module docs.
pub(crate) async fn await_replicas(
    pg: &Pg,
    seq: u64,
    committed: Instant,
    me: Option<i64>,
) -> Result<Propagation, StoreError> {
    let key = i64::try_from(seq).unwrap_or(i64::MAX);
    let mut confirmed = BTreeSet::new();
    let mut waiting: BTreeSet<String> = BTreeSet::new();
    let mut lapsed = BTreeSet::new();
    // Until the longest lease seen has passed since the commit.
    let mut until: Option<Instant> = None;
    let mut pause = Duration::from_millis(1);
    let mut last_error = None;
    loop {
        let look = async {
            let mut conn = pg.conn().await?;
            let s = conn.session()?;
            let st = s.stmt(LIVE).await?;
            s.client.query(&st, &[&key, &me]).await.map_err(db)
        };
        match tokio::time::timeout(pg.timeout, look).await {
            Ok(Ok(rows)) => {
                let mut now_waiting = BTreeSet::new();
                for r in &rows {
                    let name: String = r.try_get(0).map_err(db)?;
                    let applied: bool = r.try_get(1).map_err(db)?;
                    let lease_ms: i64 = r.try_get(2).map_err(db)?;
                    let lease = Duration::from_millis(u64::try_from(lease_ms).unwrap_or(0));
                    let end = committed + lease;
                    until = Some(until.map_or(end, |u| u.max(end)));
                    if applied {
                        waiting.remove(&name);
                        confirmed.insert(name);
                    } else {
                        now_waiting.insert(name);
                    }
                }
                // Gone from the live list without confirming: its lease ran out.
                for name in waiting.difference(&now_waiting) {
                    if !confirmed.contains(name) {
                        lapsed.insert(name.clone());
                    }
                }
                waiting = now_waiting;
                if waiting.is_empty() {
                    break;
                }
            }
            Ok(Err(e)) => last_error = Some(e),
            Err(_) => last_error = Some(StoreError::backend(super::TimedOut(pg.timeout))),
        }
        let now = Instant::now();
        match until {
            Some(u) if now >= u => {
                lapsed.append(&mut waiting);
                break;
            }
            Some(u) => tokio::time::sleep(pause.min(u - now)).await,
            None => {
                // Never heard from the database since the commit: nothing to wait out.
                if now.duration_since(committed) >= pg.timeout {
                    return Err(StoreError::Unconfirmed {
                        seq,
                        source: Box::new(
                            last_error.unwrap_or(StoreError::backend(super::TimedOut(pg.timeout))),
                        ),
                    });
                }
                tokio::time::sleep(pause).await;
            }
        }
        pause = (pause * 2).min(MAX_POLL);
    }
    for name in &confirmed {
        lapsed.remove(name);
    }
    Ok(Propagation {
        seq,
        confirmed: confirmed.into_iter().collect(),
        lapsed: lapsed.into_iter().collect(),
        waited: committed.elapsed(),
    })
}
