//! Health: whether a store can serve authentication now, and, for a
//! `Replica` (feature `postgres`), where its copy stands. What an orchestrator's
//! readiness probe asks (`api-tokens-axum` has ready-made liveness and readiness handlers over
//! it; any other host calls [`Tokens::health`]).
//!
//! | store | ready |
//! | --- | --- |
//! | [`MemoryStore`](crate::MemoryStore), `SqliteStore`, `PostgresStore` | always, once built (a database that went away shows in the calls that reach it) |
//! | `Replica` | only while its copy is [`ReplicaState::Current`]: it refuses every token otherwise |
//! | a host's own store | what its [`StoreHealth`] says (by default: always) |
//!
//! ```
//! use api_tokens::{StoreHealth, Tokens};
//! let tokens = Tokens::in_memory();
//! assert!(tokens.health().ready);
//! assert!(tokens.store().health().replica.is_none());
//! ```

use std::time::Duration;

use time::OffsetDateTime;

use crate::store::{MemoryStore, TokenStore};
use crate::tokens::Tokens;

/// What a store says about itself: whether it can authenticate now, and, for a replica, the
/// state of its copy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Whether authentication can succeed now: a readiness probe answers 200 only when it is
    /// `true`. A store that is not ready refuses every token (as "service unavailable").
    pub ready: bool,
    /// A replica's copy: its state, lag and lease. `None` for stores without one.
    pub replica: Option<ReplicaStatus>,
}

impl Health {
    /// A store that can serve (what stores without a health of their own report).
    pub const fn ready() -> Self {
        Self {
            ready: true,
            replica: None,
        }
    }

    /// A store that cannot serve now.
    pub const fn not_ready() -> Self {
        Self {
            ready: false,
            replica: None,
        }
    }

    /// A replica's health: ready exactly when its copy is current.
    pub fn of_replica(status: ReplicaStatus) -> Self {
        Self {
            ready: status.state == ReplicaState::Current,
            replica: Some(status),
        }
    }
}

/// What a store reports about its own health. The stores of this crate implement it; a host's
/// own [`TokenStore`] gets "always ready" from the default method with an empty `impl`, or says
/// more by overriding it. It should be cheap (a few atomic reads): probes call it often.
pub trait StoreHealth {
    /// The store's health now (default: ready).
    fn health(&self) -> Health {
        Health::ready()
    }
}

impl StoreHealth for MemoryStore {}

#[cfg(feature = "sqlite")]
impl StoreHealth for crate::store::sqlite::SqliteStore {}

/// Without a replica every authentication asks the database: a failure shows in that call (a
/// 503 for that request), so the store itself counts as ready once connected. Hosts that want
/// the probe to ask the database add a check of their own.
#[cfg(feature = "postgres")]
impl StoreHealth for crate::store::postgres::PostgresStore {}

impl<S: StoreHealth + ?Sized> StoreHealth for std::sync::Arc<S> {
    fn health(&self) -> Health {
        (**self).health()
    }
}

impl<S: TokenStore + StoreHealth> Tokens<S> {
    /// The store's [`Health`]: whether authentication can succeed now.
    pub fn health(&self) -> Health {
        self.store().health()
    }
}

/// Where a `Replica`'s copy stands (feature `postgres`). More states may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplicaState {
    /// The first load of every token has not finished: nothing is served yet.
    Loading,
    /// Confirmed within its staleness bound: it authenticates.
    Current,
    /// Not confirmed within its bound (or marked stale by a failed write or a repair), and
    /// working on it with the database answering: refusing every token until the catch-up
    /// confirms.
    CatchingUp,
    /// Past its staleness bound without a connection to the database that works: refusing
    /// every token until it can confirm again.
    Stale,
    /// Loading every token again (the database's history changed, it was away beyond the
    /// deletion horizon, or a repair did not make its sums agree): refusing every token.
    Reloading,
    /// Shut down (`Replica::shutdown`): it left
    /// the fleet and refuses every token.
    Stopped,
}

impl ReplicaState {
    /// A stable snake_case name (`loading`, `current`, `catching_up`, `stale`, `reloading`,
    /// `stopped`), for logs, probe bodies and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Loading => "loading",
            Self::Current => "current",
            Self::CatchingUp => "catching_up",
            Self::Stale => "stale",
            Self::Reloading => "reloading",
            Self::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A replica's state, lag and lease, as `Replica::status`
/// reads them (a few atomic reads; no I/O).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// Where the copy stands.
    pub state: ReplicaState,
    /// Whether the replica holds a lease in the fleet's membership (renewed by every
    /// confirmation, a little longer than the staleness bound): writes that take rights away
    /// wait for it while it does.
    pub holds_lease: bool,
    /// The change-clock value the copy is at (`None` before the first load).
    pub clock: Option<u64>,
    /// The latest change-clock value the replica has heard of from the database (its
    /// notifications, its last catch-up).
    pub seen: Option<u64>,
    /// How long since the copy was last confirmed current (`None` before the first
    /// confirmation). Past [`staleness_bound`](Self::staleness_bound) the replica refuses.
    pub unconfirmed_for: Option<Duration>,
    /// When the copy was last confirmed current (wall clock, to the millisecond).
    pub last_confirmed: Option<OffsetDateTime>,
    /// The replica's staleness bound.
    pub staleness_bound: Duration,
}

impl ReplicaStatus {
    /// How many changes the database announced that the copy has not applied yet (0 when it
    /// is level with what it heard of).
    pub fn behind(&self) -> u64 {
        match (self.seen, self.clock) {
            (Some(seen), Some(at)) => seen.saturating_sub(at),
            (Some(seen), None) => seen,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_is_ready_only_while_current() {
        let status = |state| ReplicaStatus {
            state,
            holds_lease: true,
            clock: Some(7),
            seen: Some(9),
            unconfirmed_for: Some(Duration::from_millis(5)),
            last_confirmed: None,
            staleness_bound: Duration::from_secs(5),
        };
        for state in [
            ReplicaState::Loading,
            ReplicaState::CatchingUp,
            ReplicaState::Stale,
            ReplicaState::Reloading,
            ReplicaState::Stopped,
        ] {
            assert!(!Health::of_replica(status(state)).ready, "{state}");
        }
        let current = Health::of_replica(status(ReplicaState::Current));
        assert!(current.ready);
        assert_eq!(current.replica.unwrap().behind(), 2);
    }
}
