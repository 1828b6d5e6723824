//! The storage port: [`TokenStore`], the records' [`Change`]s and the [`Query`] filters.
//!
//! A store holds [`Token`] records and enforces only what a database would enforce itself:
//! atomic batches, unique ids, unique `(owner, name)`, unique secret hashes, lookup by hash
//! (and, for imports, lookup by [`ImportOrigin`]).
//! Policy — expiry, status, permissions, who may do what — is decided by the caller
//! ([`Tokens`](crate::Tokens) or a host using the pure rules), never filtered inside a store.

use std::collections::HashSet;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::allowlist::IpAllowlist;
use crate::error::StoreError;
use crate::health::Health;
use crate::keys::{HashScheme, KeyUsage, count_into, sort_usage};
use crate::legacy::ImportOrigin;
use crate::limits::{Charge, LimitRefusal, Limits, Remaining};
use crate::permission::PermissionSet;
use crate::secret::SecretHash;
use crate::token::{Expiry, LastUse, PreviousSecret, Status, Token, TokenId, TokenName, UserId};

pub mod memory;
mod query;
mod record;
mod text_search;

pub use memory::MemoryStore;
pub use query::{Query, QueryMatcher, SortField, SortOrder, TimeRange};
pub use record::StoredToken;
pub use text_search::TextSearch;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod conformance;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod replica;

/// One change of an atomic batch.
#[derive(Clone, Debug)]
#[allow(
    clippy::exhaustive_enums,
    reason = "host stores match on it in `apply`: a new kind of change must fail to compile \
              there (a breaking release), never fall into a wildcard arm and be skipped"
)]
pub enum Change {
    /// Add a new token (its id comes from [`TokenStore::reserve_ids`]).
    Insert(Token),
    /// Replace the token with the same id, if its stored revision is still `token.revision`
    /// (else [`StoreError::Conflict`]). The store saves it with the next revision.
    Replace(Token),
    /// Remove a token.
    Delete(TokenId),
}

impl Change {
    /// The id of the token it changes.
    pub fn id(&self) -> TokenId {
        match self {
            Self::Insert(t) | Self::Replace(t) => t.id,
            Self::Delete(id) => *id,
        }
    }
}

/// The ids a batch changes. A batch that changes one token twice is refused
/// ([`StoreError::IdTaken`]): every store checks this before anything else.
pub(crate) fn batch_ids(changes: &[Change]) -> Result<HashSet<TokenId>, StoreError> {
    let mut seen = HashSet::with_capacity(changes.len());
    for c in changes {
        let id = c.id();
        if !seen.insert(id) {
            return Err(StoreError::IdTaken(id));
        }
    }
    Ok(seen)
}

/// Which of a token's secrets a presented hash matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Matched {
    /// The current secret.
    Current,
    /// The previous secret, honoured until `valid_until` (exclusive).
    Previous {
        /// End of the grace period.
        valid_until: OffsetDateTime,
    },
}

impl Matched {
    /// Whether the secret that matched is honoured at `now`: the current one always, a previous
    /// one until (not at) its `valid_until`. The one rule for grace periods: authentication
    /// calls a secret that is not live `Superseded`.
    pub fn is_live_at(&self, now: OffsetDateTime) -> bool {
        match self {
            Self::Current => true,
            Self::Previous { valid_until } => now < *valid_until,
        }
    }

    /// Which of a record's secrets `presented` is, and how that one's hash was made: its
    /// current hash (`current`, made as `scheme` says), else its previous one. `None` when it
    /// is neither: a record found by a hash it does not hold is not used (fail closed).
    ///
    /// The one rule behind [`Token::candidate`], taking the parts rather than a [`Token`] so
    /// that the memory store's records, which keep them apart, decide with the same code at
    /// no cost.
    #[inline]
    pub(crate) fn of(
        presented: &SecretHash,
        current: Option<&SecretHash>,
        scheme: HashScheme,
        previous: Option<&PreviousSecret>,
    ) -> Option<(Self, HashScheme)> {
        if current == Some(presented) {
            return Some((Self::Current, scheme));
        }
        let p = previous.filter(|p| p.hash == *presented)?;
        Some((
            Self::Previous {
                valid_until: p.valid_until,
            },
            p.scheme,
        ))
    }
}

/// What authentication needs of a token, borrowed from the store for the length of one check.
///
/// A store makes it with [`Token::candidate`], which also decides which secret the presented
/// hash matched and fails closed for a record that holds neither.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Candidate<'a> {
    /// The token's id.
    pub id: TokenId,
    /// Its name.
    pub name: &'a TokenName,
    /// Its owner.
    pub owner: &'a UserId,
    /// Enabled or disabled.
    pub status: Status,
    /// Its expiry.
    pub expiry: Expiry,
    /// Its permissions.
    pub permissions: &'a PermissionSet,
    /// Its allowlist.
    pub allowlist: &'a IpAllowlist,
    /// Which secret matched.
    pub matched: Matched,
    /// How the matched hash was made, as the record says ([`HashScheme`]): the facade
    /// re-hashes a token under its current key when this is not that key's ordinary scheme.
    pub scheme: HashScheme,
    /// Its limits, and how the store charges them.
    pub limits: CandidateLimits<'a>,
}

/// The limits of a [`Candidate`]: none, held by the store with their state, or on the record
/// but not enforced by the store (then authentication refuses the token: a limit is never
/// silently dropped).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum CandidateLimits<'a> {
    /// The token has no limits.
    None,
    /// The token's limits, charged through the store's state.
    Enforced(&'a Arc<dyn LimitState>),
    /// The record has limits the store cannot enforce: authentication refuses it
    /// ([`StoreError::LimitsUnsupported`]).
    Unenforced,
}

/// A token's limits as a store holds them: their definitions and their state (balances and
/// windows), charged atomically. [`MemoryStore`] keeps the state in memory, the SQLite store
/// in its database; a host's store that keeps none hands out
/// [`CandidateLimits::Unenforced`] (what [`Token::candidate`] gives a record with limits), so
/// its limited tokens are refused rather than unlimited.
///
/// An implementation decides with [`limits::decide`](crate::limits::decide) on its state,
/// all or nothing, and keeps the state it returns; it must never admit what that rule
/// refuses.
pub trait LimitState: Send + Sync + std::fmt::Debug {
    /// The definitions.
    fn limits(&self) -> &Limits;

    /// Whether any limit counts authentications ([`Limits::counts_authentications`]); a
    /// store may answer from a cache (it is asked on every authentication of the token).
    fn counts_authentications(&self) -> bool {
        self.limits().counts_authentications()
    }

    /// Whether any limit counts a meter ([`Limits::has_meters`]); a store may answer from a
    /// cache.
    fn has_meters(&self) -> bool {
        self.limits().has_meters()
    }

    /// Charges `charge` at `now`: every limit that counts it admits it and counts it, or
    /// none changes. The outer error is the store's; the inner one the limit's refusal.
    ///
    /// # Errors
    /// Backend failures (nothing was charged).
    fn charge(
        &self,
        charge: Charge<'_>,
        now: OffsetDateTime,
    ) -> Result<Result<Vec<Remaining>, LimitRefusal>, StoreError>;
}

/// The [`Candidate`] of `$record` (a place: a [`Token`], or one of the memory store's records,
/// which name these fields alike) with the secret that `$matched` and its `$scheme`: the one
/// list of the fields authentication reads of a record.
macro_rules! candidate_of {
    ($record:expr, $matched:expr, $scheme:expr, $limits:expr) => {
        $crate::store::Candidate {
            id: $record.id,
            name: &$record.name,
            owner: &$record.owner,
            status: $record.status,
            expiry: $record.expiry,
            permissions: &$record.permissions,
            allowlist: &$record.allowlist,
            matched: $matched,
            scheme: $scheme,
            limits: $limits,
        }
    };
}
pub(crate) use candidate_of;

/// Storage for token records. Sync, object-safe, shareable between threads.
///
/// A store keeps every field of a [`Token`], including each hash's
/// [`SecretState::scheme`](crate::token::SecretState::scheme) (the conformance suite checks it): the
/// facade re-hashes (or re-labels) a token whose matched hash is not under its current key, so
/// a store that dropped schemes would be written to by every authentication.
///
/// # What the caller has already done
/// [`Tokens`](crate::Tokens) validates every value (types and policy), checks the actor's
/// rights, checks name uniqueness against the store, and takes ids from
/// [`TokenStore::reserve_ids`] before calling [`TokenStore::apply`]. A store must still refuse a
/// batch that would break its own constraints (another writer may have got there first), and
/// must apply a batch entirely or not at all.
pub trait TokenStore: Send + Sync {
    /// Returns `n` ids never handed out before (gaps are fine, like a database sequence).
    ///
    /// # Errors
    /// Backend failures.
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError>;

    /// Applies every change or none. Changes are checked against the state the whole batch
    /// produces: renaming two tokens into each other's names in one batch is fine.
    ///
    /// # Errors
    /// [`StoreError::IdTaken`], [`StoreError::NotFound`], [`StoreError::Conflict`] (a replace
    /// read at an older revision), [`StoreError::NameTaken`], [`StoreError::HashTaken`], or a
    /// backend failure; in every case nothing changed.
    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError>;

    /// [`TokenStore::apply`] for a batch that takes nothing away from any token: it only moves
    /// a secret onto another hash of the same secret (the facade re-hashing a token under its
    /// current key after a secret matched it some other way). A store that makes a write wait
    /// until every other process stops honouring what it took away (the PostgreSQL fleet)
    /// need not wait for this one, which runs inside an authentication. The default applies it
    /// like any batch.
    ///
    /// # Errors
    /// As [`TokenStore::apply`].
    fn apply_rehash(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        self.apply(changes)
    }

    /// One token by id.
    ///
    /// # Errors
    /// Backend failures.
    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError>;

    /// The id of the owner's token with this name, if any.
    ///
    /// # Errors
    /// Backend failures.
    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError>;

    /// The tokens matching `query`, sorted and limited as it says. `now` resolves the relative
    /// filters ([`Query::expiring_within`]).
    ///
    /// # Errors
    /// Backend failures.
    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError>;

    /// How many tokens match `query` (ignoring its limit).
    ///
    /// # Errors
    /// Backend failures.
    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError>;

    /// Looks a token up by the hash of a presented secret — its current secret or a previous one
    /// still on record — and, if found, calls `check` with it. If `check` returns a [`LastUse`],
    /// the store records it as the token's last use (it may coalesce writes, but must not lose
    /// the latest instant for longer than it documents). Returns whether a token was found.
    ///
    /// This is the hot path: no allocation, no exclusive lock on the whole store.
    ///
    /// A store turns the record it found into what `check` takes with
    /// [`Token::candidate`]: that says which of the record's secrets matched (with its
    /// grace period) and how its hash was made, and gives `None` for a record that holds
    /// neither hash, which the store then reports as not found. A store that reads records
    /// as [`Token`]s needs nothing else:
    ///
    /// ```
    /// # use api_tokens::{StoreError, Token};
    /// # use api_tokens::secret::SecretHash;
    /// # use api_tokens::token::LastUse;
    /// # use api_tokens::store::Candidate;
    /// # struct MyStore;
    /// # impl MyStore {
    /// #     fn by_hash(&self, _: &SecretHash) -> Result<Option<Token>, StoreError> { Ok(None) }
    /// #     fn record_use(&self, _: &Token, _: LastUse) {}
    /// fn authenticate(
    ///     &self,
    ///     hash: &SecretHash,
    ///     check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    /// ) -> Result<bool, StoreError> {
    ///     // Its current hash or its previous one: one indexed lookup.
    ///     let Some(token) = self.by_hash(hash)? else {
    ///         return Ok(false);
    ///     };
    ///     let Some(candidate) = token.candidate(hash) else {
    ///         return Ok(false); // the lookup found a record without this hash: never use it
    ///     };
    ///     if let Some(used) = check(candidate) {
    ///         self.record_use(&token, used);
    ///     }
    ///     Ok(true)
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// Backend failures.
    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError>;

    /// Whether this store keeps the state of limits ([`Token::limits`]) and charges it
    /// exactly ([`LimitState`]). The facade refuses to create or update a token with limits on
    /// a store that does not ([`StoreError::LimitsUnsupported`]); the default is `false`.
    fn enforces_limits(&self) -> bool {
        false
    }

    /// How many stored hashes were made each way ([`HashScheme`]): one entry per scheme in
    /// use, counting current hashes and previous ones still in their grace period at `now`.
    /// [`Tokens::check_hash_keys`](crate::Tokens::check_hash_keys) compares it with the keys it
    /// holds.
    ///
    /// The default reads every token through [`TokenStore::query`]; stores that can count
    /// in place (SQL `GROUP BY`) should.
    ///
    /// # Errors
    /// Backend failures.
    fn key_usage(&self, now: OffsetDateTime) -> Result<Vec<KeyUsage>, StoreError> {
        Ok(usage_of(&self.query(&Query::new(), now)?, now))
    }

    /// The tokens whose [`Token::imported_from`] is one of `origins`, each with that origin,
    /// by id. [`Tokens::import`](crate::Tokens::import) asks it before importing, to refuse a
    /// hash an existing token was imported from. Never used for authentication.
    ///
    /// The default reads every token through [`TokenStore::query`]; stores that can look
    /// origins up by index (SQL) should.
    ///
    /// # Errors
    /// Backend failures.
    fn find_imported(
        &self,
        origins: &[ImportOrigin],
    ) -> Result<Vec<(TokenId, ImportOrigin)>, StoreError> {
        let wanted: HashSet<&ImportOrigin> = origins.iter().collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .query(&Query::new(), OffsetDateTime::UNIX_EPOCH)?
            .into_iter()
            .filter_map(|t| Some((t.id, t.imported_from.filter(|o| wanted.contains(o))?)))
            .collect())
    }

    /// Whether the store can serve authentication now: what [`Tokens::health`] and readiness
    /// probes report. The default says ready; a store that can be unable to answer (a copy
    /// that went stale) says so. A store that wraps another forwards it. It should be cheap (a
    /// few atomic reads): probes call it often.
    ///
    /// [`Tokens::health`]: crate::Tokens::health
    fn health(&self) -> Health {
        Health::ready()
    }
}

/// A record for the crate's tests: `t<id>`, owned and created by user 2 at the Unix epoch,
/// enabled, never expiring, no permissions, any address, no secret, never used.
#[cfg(test)]
pub(crate) fn test_record(id: TokenId) -> Token {
    let name = TokenName::new(&format!("t{id}")).unwrap_or_else(|e| panic!("{e}"));
    Token::new(id, name, UserId::from(2), OffsetDateTime::UNIX_EPOCH)
}

/// The key usage of `tokens` at `now` (see [`TokenStore::key_usage`]), sorted.
pub(crate) fn usage_of<'a>(
    tokens: impl IntoIterator<Item = &'a Token>,
    now: OffsetDateTime,
) -> Vec<KeyUsage> {
    let mut usage = Vec::new();
    for s in tokens.into_iter().filter_map(|t| t.secret.as_ref()) {
        count_into(&mut usage, s.scheme, false);
        if let Some(p) = s.previous.filter(|p| now < p.valid_until) {
            count_into(&mut usage, p.scheme, true);
        }
    }
    sort_usage(&mut usage);
    usage
}

/// `Box<dyn TokenStore>` and `Arc<S>` are stores too: a host can choose its store at run time,
/// or share one between several `Tokens`.
macro_rules! delegate_store {
    ($($ptr:ident),*) => {$(
        impl<S: TokenStore + ?Sized> TokenStore for $ptr<S> {
            fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
                (**self).reserve_ids(n)
            }
            fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
                (**self).apply(changes)
            }
            fn apply_rehash(&self, changes: Vec<Change>) -> Result<(), StoreError> {
                (**self).apply_rehash(changes)
            }
            fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
                (**self).get(id)
            }
            fn find_name(
                &self,
                owner: &UserId,
                name: &TokenName,
            ) -> Result<Option<TokenId>, StoreError> {
                (**self).find_name(owner, name)
            }
            fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
                (**self).query(query, now)
            }
            fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
                (**self).count(query, now)
            }
            fn authenticate(
                &self,
                hash: &SecretHash,
                check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
            ) -> Result<bool, StoreError> {
                (**self).authenticate(hash, check)
            }
            fn key_usage(&self, now: OffsetDateTime) -> Result<Vec<KeyUsage>, StoreError> {
                (**self).key_usage(now)
            }
            fn enforces_limits(&self) -> bool {
                (**self).enforces_limits()
            }
            fn find_imported(
                &self,
                origins: &[ImportOrigin],
            ) -> Result<Vec<(TokenId, ImportOrigin)>, StoreError> {
                (**self).find_imported(origins)
            }
            fn health(&self) -> Health {
                (**self).health()
            }
        }
    )*};
}

delegate_store!(Box, Arc);
