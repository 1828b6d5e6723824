//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): the
//! host installs the recorder it exports with (`metrics-exporter-prometheus`, StatsD, …); this
//! crate only counts. Without the feature nothing of it is built.
//!
//! | name | type | unit | labels | what |
//! | --- | --- | --- | --- | --- |
//! | `api_tokens_authentications_total` | counter | authentications | `outcome`: `granted`, or the denial's [code](crate::DenialKind::code) (`unknown`, `expired`, `disabled`, `address_not_allowed`, `replica_stale`, `store_unavailable`, …) | every [`Tokens::authenticate`](crate::Tokens::authenticate) |
//! | `api_tokens_store_errors_total` | counter | errors | `source`: `authenticate` (a store failure refused an authentication), `database` (a call to PostgreSQL failed or timed out), `replica` (a replica's catch-up failed; it reconnects) | store failures |
//! | `api_tokens_replica_current` | gauge | 1 or 0 | `replica` | whether the replica authenticates (0: loading, stale, reloading, stopped) |
//! | `api_tokens_replica_lag_seconds` | gauge | seconds | `replica` | time since the copy was last confirmed current, refreshed at every heartbeat and confirmation; past the staleness bound the replica refuses |
//! | `api_tokens_replica_last_confirmed_timestamp_seconds` | gauge | Unix seconds | `replica` | when the copy was last confirmed current (`time() - …` is the lag between refreshes) |
//! | `api_tokens_replica_behind_changes` | gauge | change-clock values | `replica` | changes the database announced that the copy has not applied yet |
//! | `api_tokens_replica_stale_total` | counter | transitions | `replica` | times the replica passed its staleness bound without confirming (each [`EventKind::ReplicaStale`](crate::events::EventKind::ReplicaStale); a repair or reload that confirms within the bound is not counted) |
//! | `api_tokens_replica_changes_applied_total` | counter | rows | `replica` | rows written or deleted that the replica installed one by one (catch-ups, its own writes; not full loads) |
//! | `api_tokens_replica_reloads_total` | counter | loads | `replica`, `reason`: `first`, `history_changed`, `behind_horizon`, `repair_failed` | full loads of every token |
//! | `api_tokens_replica_repaired_rows_total` | counter | rows | `replica` | rows reconciliation read again because they differed from the database |
//! | `api_tokens_write_propagation_seconds` | histogram | seconds | — | how long a write that took rights away waited, after its commit, for every replica (`Propagation::waited`) |
//! | `api_tokens_write_propagation_lapsed_total` | counter | replicas | — | replicas a write stopped waiting for because their lease ran out (`Propagation::lapsed`) |
//! | `api_tokens_last_use_backlog` | gauge | last uses | — | last uses buffered and not yet written to PostgreSQL (what a crash would lose) |
//! | `api_tokens_last_use_flushes_total` | counter | flushes | `result`: `ok`, `failed` | writes of buffered last uses (a failed one keeps them for the next) |
//!
//! The replica's, propagation and last-use metrics come with the feature `postgres` too.
//!
//! # Installing a recorder
//! Install the recorder first, at the top of `main`, before building the [`Tokens`](crate::Tokens),
//! stores and replicas it should count: each resolves its counters once, when it is built (a
//! `Tokens` by [`Tokens::new`](crate::Tokens::new), a `PostgresStore` when it connects, a
//! `Replica` when it starts), and keeps them. So the hot path never looks a metric up by name: an authentication adds one
//! to a counter it already holds (one atomic add with the Prometheus recorder), which keeps
//! it within a few nanoseconds of authentication without metrics (see the README's
//! Performance section).
//!
//! ```
//! # #[cfg(feature = "metrics")] {
//! use api_tokens::{RequestContext, Tokens};
//! // A host installs its exporter's recorder (here a no-op one) before building `Tokens`.
//! let tokens = Tokens::in_memory();
//! let _ = tokens.authenticate("tok_not-a-token", &RequestContext::unknown_address());
//! // Counted as api_tokens_authentications_total{outcome="malformed"}.
//! # }
//! ```

use metrics::{Counter, Unit, counter, describe_counter};
#[cfg(feature = "postgres")]
use metrics::{describe_gauge, describe_histogram};

use crate::check::{Denial, DenialKind, Grant};

/// Every authentication, by outcome.
pub const AUTHENTICATIONS: &str = "api_tokens_authentications_total";
/// Store failures, by source.
pub const STORE_ERRORS: &str = "api_tokens_store_errors_total";
/// Whether a replica authenticates (1) or not (0).
pub const REPLICA_CURRENT: &str = "api_tokens_replica_current";
/// Seconds since a replica's copy was last confirmed current.
pub const REPLICA_LAG: &str = "api_tokens_replica_lag_seconds";
/// When a replica's copy was last confirmed current, in Unix seconds.
pub const REPLICA_LAST_CONFIRMED: &str = "api_tokens_replica_last_confirmed_timestamp_seconds";
/// Changes a replica heard of and has not applied.
pub const REPLICA_BEHIND: &str = "api_tokens_replica_behind_changes";
/// Times a replica stopped authenticating.
pub const REPLICA_STALE: &str = "api_tokens_replica_stale_total";
/// Rows a replica installed one by one.
pub const REPLICA_CHANGES: &str = "api_tokens_replica_changes_applied_total";
/// Full loads of a replica, by reason.
pub const REPLICA_RELOADS: &str = "api_tokens_replica_reloads_total";
/// Rows reconciliation read again.
pub const REPLICA_REPAIRED: &str = "api_tokens_replica_repaired_rows_total";
/// How long writes that took rights away waited for the fleet.
pub const PROPAGATION: &str = "api_tokens_write_propagation_seconds";
/// Replicas writes stopped waiting for when their lease ran out.
pub const PROPAGATION_LAPSED: &str = "api_tokens_write_propagation_lapsed_total";
/// Last uses buffered and not yet written.
pub const LAST_USE_BACKLOG: &str = "api_tokens_last_use_backlog";
/// Writes of buffered last uses, by result.
pub const LAST_USE_FLUSHES: &str = "api_tokens_last_use_flushes_total";

/// Tells the recorder each metric's unit and meaning (Prometheus' `# HELP` lines).
fn describe() {
    describe_counter!(
        AUTHENTICATIONS,
        Unit::Count,
        "Authentications, by outcome: granted or the denial's code"
    );
    describe_counter!(
        STORE_ERRORS,
        Unit::Count,
        "Store failures, by source: authenticate, database, replica"
    );
    #[cfg(feature = "postgres")]
    {
        describe_gauge!(
            REPLICA_CURRENT,
            "Whether the replica authenticates (1) or refuses every token (0)"
        );
        describe_gauge!(
            REPLICA_LAG,
            Unit::Seconds,
            "Time since the replica's copy was last confirmed current"
        );
        describe_gauge!(
            REPLICA_LAST_CONFIRMED,
            Unit::Seconds,
            "When the replica's copy was last confirmed current (Unix time)"
        );
        describe_gauge!(
            REPLICA_BEHIND,
            Unit::Count,
            "Changes the database announced that the replica has not applied"
        );
        describe_counter!(
            REPLICA_STALE,
            Unit::Count,
            "Times the replica passed its staleness bound"
        );
        describe_counter!(
            REPLICA_CHANGES,
            Unit::Count,
            "Rows the replica installed one by one"
        );
        describe_counter!(
            REPLICA_RELOADS,
            Unit::Count,
            "Full loads of every token, by reason"
        );
        describe_counter!(
            REPLICA_REPAIRED,
            Unit::Count,
            "Rows reconciliation read again because they differed"
        );
        describe_histogram!(
            PROPAGATION,
            Unit::Seconds,
            "How long a write that took rights away waited for every replica"
        );
        describe_counter!(
            PROPAGATION_LAPSED,
            Unit::Count,
            "Replicas a write stopped waiting for when their lease ran out"
        );
        describe_gauge!(
            LAST_USE_BACKLOG,
            Unit::Count,
            "Last uses buffered and not yet written"
        );
        describe_counter!(
            LAST_USE_FLUSHES,
            Unit::Count,
            "Writes of buffered last uses, by result"
        );
    }
}

/// The outcomes of authentication, in the order of [`AuthMetrics::by_outcome`]: `granted`,
/// then each denial kind.
const OUTCOMES: [&str; 14] = [
    "granted",
    DenialKind::Malformed.code(),
    DenialKind::Unknown.code(),
    DenialKind::Superseded.code(),
    DenialKind::Disabled.code(),
    DenialKind::Expired.code(),
    DenialKind::OwnerUnknown.code(),
    DenialKind::OwnerInactive.code(),
    DenialKind::AddressNotAllowed.code(),
    DenialKind::MissingPermission.code(),
    DenialKind::Store.code(),
    DenialKind::Stale.code(),
    DenialKind::RateLimited.code(),
    DenialKind::UsageExceeded.code(),
];

/// The slot of a denial's outcome in [`OUTCOMES`].
const fn slot(kind: DenialKind) -> usize {
    match kind {
        DenialKind::Malformed => 1,
        DenialKind::Unknown => 2,
        DenialKind::Superseded => 3,
        DenialKind::Disabled => 4,
        DenialKind::Expired => 5,
        DenialKind::OwnerUnknown => 6,
        DenialKind::OwnerInactive => 7,
        DenialKind::AddressNotAllowed => 8,
        DenialKind::MissingPermission => 9,
        DenialKind::Store => 10,
        DenialKind::Stale => 11,
        DenialKind::RateLimited => 12,
        DenialKind::UsageExceeded => 13,
    }
}

/// The counters of authentication, resolved once: an authentication adds to one it holds.
pub(crate) struct AuthMetrics {
    by_outcome: [Counter; OUTCOMES.len()],
    store_errors: Counter,
}

impl AuthMetrics {
    /// Resolves every counter with the recorder in force now.
    pub(crate) fn resolve() -> Self {
        describe();
        Self {
            by_outcome: OUTCOMES.map(|outcome| counter!(AUTHENTICATIONS, "outcome" => outcome)),
            store_errors: counter!(STORE_ERRORS, "source" => "authenticate"),
        }
    }

    /// Counts one authentication.
    #[inline]
    pub(crate) fn record(&self, result: &Result<Grant, Denial>) {
        let i = match result {
            Ok(_) => 0,
            Err(d) => {
                if let Denial::Store(_) = d {
                    self.store_errors.increment(1);
                }
                slot(d.kind())
            }
        };
        if let Some(c) = self.by_outcome.get(i) {
            c.increment(1);
        }
    }
}

/// A replica's metrics, resolved when it starts, labelled with its name.
#[cfg(feature = "postgres")]
pub(crate) struct ReplicaMetrics {
    pub(crate) current: metrics::Gauge,
    pub(crate) lag: metrics::Gauge,
    pub(crate) last_confirmed: metrics::Gauge,
    pub(crate) behind: metrics::Gauge,
    pub(crate) stale: Counter,
    pub(crate) changes: Counter,
    /// By reason: first, history changed, behind the horizon, repair failed.
    pub(crate) reloads: [Counter; 4],
    pub(crate) repaired: Counter,
    pub(crate) errors: Counter,
}

#[cfg(feature = "postgres")]
impl ReplicaMetrics {
    pub(crate) fn resolve(replica: &str) -> Self {
        describe();
        let name = replica.to_owned();
        let reload = |reason: &'static str| counter!(REPLICA_RELOADS, "replica" => name.clone(), "reason" => reason);
        Self {
            current: metrics::gauge!(REPLICA_CURRENT, "replica" => name.clone()),
            lag: metrics::gauge!(REPLICA_LAG, "replica" => name.clone()),
            last_confirmed: metrics::gauge!(REPLICA_LAST_CONFIRMED, "replica" => name.clone()),
            behind: metrics::gauge!(REPLICA_BEHIND, "replica" => name.clone()),
            stale: counter!(REPLICA_STALE, "replica" => name.clone()),
            changes: counter!(REPLICA_CHANGES, "replica" => name.clone()),
            reloads: [
                reload("first"),
                reload("history_changed"),
                reload("behind_horizon"),
                reload("repair_failed"),
            ],
            repaired: counter!(REPLICA_REPAIRED, "replica" => name.clone()),
            errors: counter!(STORE_ERRORS, "source" => "replica"),
        }
    }
}

/// A `PostgresStore`'s metrics, resolved when it connects.
#[cfg(feature = "postgres")]
pub(crate) struct StoreMetrics {
    pub(crate) propagation: metrics::Histogram,
    pub(crate) lapsed: Counter,
    pub(crate) backlog: metrics::Gauge,
    pub(crate) flushed: Counter,
    pub(crate) flush_failed: Counter,
    pub(crate) errors: Counter,
}

#[cfg(feature = "postgres")]
impl StoreMetrics {
    pub(crate) fn resolve() -> Self {
        describe();
        Self {
            propagation: metrics::histogram!(PROPAGATION),
            lapsed: counter!(PROPAGATION_LAPSED),
            backlog: metrics::gauge!(LAST_USE_BACKLOG),
            flushed: counter!(LAST_USE_FLUSHES, "result" => "ok"),
            flush_failed: counter!(LAST_USE_FLUSHES, "result" => "failed"),
            errors: counter!(STORE_ERRORS, "source" => "database"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_slot() {
        let kinds = [
            DenialKind::Malformed,
            DenialKind::Unknown,
            DenialKind::Superseded,
            DenialKind::Disabled,
            DenialKind::Expired,
            DenialKind::OwnerUnknown,
            DenialKind::OwnerInactive,
            DenialKind::AddressNotAllowed,
            DenialKind::MissingPermission,
            DenialKind::Store,
            DenialKind::Stale,
            DenialKind::RateLimited,
            DenialKind::UsageExceeded,
        ];
        for k in kinds {
            assert_eq!(OUTCOMES[slot(k)], k.code());
        }
        assert_eq!(kinds.len() + 1, OUTCOMES.len());
    }
}
