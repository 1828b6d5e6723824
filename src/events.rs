//! [`TokenEvent`]s and the [`EventSink`] they go to: an audit trail and a feed for hosts that
//! mirror changes elsewhere. Events never hold a secret or a hash.

use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

use crate::check::DenialKind;
use crate::keys::HashScheme;
use crate::legacy::LegacyScheme;
use crate::secret::KeyId;
use crate::token::{Status, TokenId, UserId};

/// Something that happened to a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TokenEvent {
    /// When (whole seconds, Unix time when serialized).
    #[serde(with = "time::serde::timestamp")]
    pub at: OffsetDateTime,
    /// Who did it (`None` for authentication events and leaked-secret revocations).
    pub actor: Option<UserId>,
    /// The token, when one is known.
    pub token: Option<TokenId>,
    /// Its owner, when known.
    pub owner: Option<UserId>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A field changed by an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UpdatedField {
    /// The name.
    Name,
    /// The description.
    Description,
    /// The expiry.
    Expiry,
    /// The permissions.
    Permissions,
    /// The allowlist.
    Allowlist,
    /// The usage limits and rate limits.
    Limits,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// Created (no secret yet, or with one when issued in one step).
    Created,
    /// Fields other than the status changed.
    Updated {
        /// Which.
        fields: Vec<UpdatedField>,
    },
    /// A new secret was generated; the previous one works until `grace_until`, if given.
    Generated {
        /// End of the previous secret's grace period.
        #[serde(with = "time::serde::timestamp::option")]
        grace_until: Option<OffsetDateTime>,
    },
    /// Enabled or disabled.
    StatusChanged {
        /// The new status.
        status: Status,
    },
    /// Deleted.
    Deleted,
    /// Revoked for good because its secret was reported leaked
    /// ([`Tokens::revoke_by_secret`](crate::Tokens::revoke_by_secret)): disabled, its secret
    /// hashes dropped, never to be enabled again. One event for each token the secret opened.
    RevokedBySecret,
    /// A successful authentication.
    Authenticated {
        /// The client address.
        ip: Option<IpAddr>,
    },
    /// A refused authentication.
    Denied {
        /// Why.
        reason: DenialKind,
        /// The client address.
        ip: Option<IpAddr>,
    },
    /// A replica passed its staleness bound without confirming it is current: from now on it
    /// refuses every token ([`Denial::Stale`](crate::Denial::Stale)) until it has caught up.
    ReplicaStale {
        /// Milliseconds since it last confirmed it was current.
        unconfirmed_ms: u64,
    },
    /// A stale replica caught up with the database and authenticates again.
    ReplicaCurrent,
    /// The hash-key check ran ([`Tokens::check_hash_keys`](crate::Tokens::check_hash_keys), or
    /// the first authentication): which key is current, whether it is the public default
    /// (acceptable only by choice: see [`HashKey`](crate::HashKey)), and how many hashes are
    /// not yet under it.
    HashKeysChecked {
        /// The id of the current key.
        current: KeyId,
        /// Whether the current key is [`HashKey::default`](crate::HashKey::default).
        default_key: bool,
        /// The ids of the old keys held for verification.
        old: Vec<KeyId>,
        /// Hashes under old keys, imported or unrecorded: not yet under the current key.
        not_current: u64,
        /// Hashes whose key was not recorded (stored before schema version 3).
        unrecorded: u64,
        /// Key ids stored hashes were made under that are not held (the check then fails).
        missing: Vec<KeyId>,
    },
    /// A token's secret authenticated under an old key, an imported legacy hash, or an
    /// unrecorded one, and was re-hashed under the current key.
    Rehashed {
        /// How the hash had been made.
        from: HashScheme,
        /// How it is made now.
        to: HashScheme,
    },
    /// Imported with [`Tokens::import`](crate::Tokens::import), with its secret's hash in
    /// `legacy` (none: imported without a secret).
    Imported {
        /// The imported hash's scheme.
        legacy: Option<LegacyScheme>,
    },
}

/// Where events go. Small and `&self`; called after the change has been applied, on the
/// caller's thread, so it should be quick (queue, don't block).
pub trait EventSink: Send + Sync {
    /// Receives one event.
    fn record(&self, event: TokenEvent);

    /// Whether authentication events (one per request) are wanted. When `false`, they are not
    /// even built; management events are always sent.
    fn wants_auth_events(&self) -> bool {
        true
    }
}

/// The default sink: drops everything, and asks for no authentication events.
#[derive(Clone, Copy, Debug, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a unit value hosts name; it will never hold state"
)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn record(&self, _: TokenEvent) {}
    fn wants_auth_events(&self) -> bool {
        false
    }
}

/// Collects events in memory (tests, examples).
#[derive(Default)]
pub struct CollectEvents(Mutex<Vec<TokenEvent>>);

impl CollectEvents {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the events collected so far.
    pub fn take(&self) -> Vec<TokenEvent> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl fmt::Debug for CollectEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.lock().unwrap_or_else(|p| p.into_inner()).len();
        f.debug_struct("CollectEvents").field("len", &n).finish()
    }
}

impl EventSink for CollectEvents {
    fn record(&self, event: TokenEvent) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }
}

impl<E: EventSink + ?Sized> EventSink for std::sync::Arc<E> {
    fn record(&self, event: TokenEvent) {
        (**self).record(event);
    }
    fn wants_auth_events(&self) -> bool {
        (**self).wants_auth_events()
    }
}
