//! [`MemoryStore`]: the embedded default store.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use time::OffsetDateTime;

use super::{
    Candidate, CandidateLimits, Change, LimitState, Matched, Query, QueryMatcher, TokenStore,
    batch_ids, candidate_of,
};
use crate::allowlist::IpAllowlist;
use crate::error::StoreError;
use crate::keys::{HashScheme, KeyUsage, count_into, sort_usage};
use crate::legacy::ImportOrigin;
use crate::permission::PermissionSet;
use crate::secret::SecretHash;
use crate::token::{
    Expiry, LastUse, PreviousSecret, Revoked, SecretState, Status, Token, TokenId, TokenName,
    UserId, from_unix,
};
use limits::LimitCell;
use slot_index::SlotIndex;

pub use seal::{Seal, SealedSnapshot};

mod hot;
mod limits;
mod seal;
mod slot_index;

/// The snapshot format version written by [`MemoryStore::snapshot`]. Version 3 records how
/// each hash was made ([`HashScheme`]); version 4 what each imported token was imported from
/// ([`Token::imported_from`]); version 5 each token's limits and credit balance
/// ([`Token::limits`], [`Token::balance`]). Sealed versions 2 to 4 still open: a
/// version-2 snapshot's hashes read as made under the key it was sealed with, versions before
/// 4 hold no import origins, before 5 no limits.
pub const SNAPSHOT_VERSION: u32 = 5;

/// Everything a [`MemoryStore`] holds. It holds secret hashes, never secrets.
///
/// A `Snapshot` is the store's contents in memory, trusted as the host's own values. To persist
/// one, [`seal`](Snapshot::seal) it under the hash key: a [`SealedSnapshot`] is what serde
/// writes and reads, and [`SealedSnapshot::open`] refuses one that was edited or made under
/// another key. (A `Snapshot` itself has no serde, so nothing read from disk reaches
/// [`MemoryStore::restore`] unchecked.)
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Format version; [`MemoryStore::restore`] refuses others.
    pub version: u32,
    /// The next id the store hands out.
    pub next_id: u64,
    /// Every token, by id.
    pub tokens: Vec<Token>,
}

impl Snapshot {
    /// A snapshot of this crate's format ([`SNAPSHOT_VERSION`]) holding `tokens`, the store
    /// built from it handing out ids from `next_id` on: how a host seeds a [`MemoryStore`]
    /// from records of its own ([`MemoryStore::from_snapshot`] checks them).
    pub fn new(next_id: u64, tokens: Vec<Token>) -> Self {
        Self {
            version: SNAPSHOT_VERSION,
            next_id,
            tokens,
        }
    }
}

/// The embedded store: all tokens in memory, safe to share between threads.
///
/// * Lookup by secret hash and by id: one hash-map probe each; imported tokens by
///   [`ImportOrigin`] too ([`TokenStore::find_imported`]).
/// * Listing by owner touches only that owner's tokens.
/// * Authentication takes a shared lock only; last use is written into per-token atomics, at
///   most once per token per second and client address. A token a thread authenticates again
///   is served from that thread's own copy, without any lock or shared write, for as long as
///   the store is unchanged (every write invalidates every copy before it returns).
/// * [`snapshot`](MemoryStore::snapshot) / [`restore`](MemoryStore::restore) for persistence.
/// * Equal permission sets are stored once (interned), so a million tokens with a handful of
///   distinct sets cost a handful of sets.
///
/// Lock poisoning cannot leave it inconsistent: every batch is checked in full before the first
/// write, and nothing after that point can panic, so a poisoned lock is simply taken over.
pub struct MemoryStore {
    inner: RwLock<Inner>,
    next_id: AtomicU64,
    /// Moves on every change of `inner`, under its write lock ([`WriteGuard`]).
    epoch: hot::Epoch,
    /// Per-thread copies of recently authenticated tokens, valid at one epoch (`hot.rs`).
    hot: hot::HotCaches,
}

/// The write lock on a store's contents. Dropping it moves the store's epoch before the lock
/// is released, so every change, by whatever path, invalidates the per-thread copies before
/// the call that made it returns.
struct WriteGuard<'a> {
    inner: RwLockWriteGuard<'a, Inner>,
    epoch: &'a hot::Epoch,
}

impl std::ops::Deref for WriteGuard<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl std::ops::DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // Runs before the field `inner` is dropped, i.e. while the lock is still held.
        self.epoch.bump();
    }
}

#[derive(Default)]
struct Inner {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    len: usize,
    by_id: SlotIndex,
    by_hash: SlotIndex,
    /// Imported tokens by [`Token::imported_from`] (only they are in it), for
    /// [`TokenStore::find_imported`]. Several tokens may share one origin.
    by_origin: SlotIndex,
    by_owner: HashMap<UserId, OwnerIndex>,
    perm_sets: HashSet<PermissionSet>,
    /// When `perm_sets` reaches this size, sets no entry uses any more are dropped.
    perm_sweep_at: usize,
}

/// A token as kept in memory: times as Unix seconds, the rarely used parts boxed.
struct Entry {
    id: TokenId,
    name: TokenName,
    description: Box<str>,
    owner: UserId,
    creator: UserId,
    status: Status,
    created_at: i64,
    expiry: Expiry,
    permissions: PermissionSet,
    allowlist: IpAllowlist,
    hash: Option<SecretHash>,
    /// How `hash` was made. Ten bytes, kept inline rather than boxed: every
    /// authentication reads it ([`Candidate::scheme`]) and the key-usage count reads it for
    /// every token. [`LastUseCell`] gave up its padding to make room ([`Entry`]: 216 bytes).
    scheme: HashScheme,
    generated_at: i64,
    rare: Option<Box<Rare>>,
    last: LastUseCell,
    revision: u32,
}

/// The parts of a token few tokens have, boxed so that they cost others one pointer (a token
/// with none of them has no box). A revoked token has no secret, so no previous one either;
/// an imported token keeps its origin through both.
/// A token with limits keeps them here too: a token without limits pays nothing for them.
#[derive(Default)]
struct Rare {
    previous: Option<PreviousSecret>,
    revoked: Option<Revoked>,
    imported_from: Option<ImportOrigin>,
    limits: Option<Limited>,
}

/// A token's limits: their cell, and the same cell as the port's trait object (what a
/// [`Candidate`] lends and a grant keeps).
struct Limited {
    cell: Arc<LimitCell>,
    state: Arc<dyn LimitState>,
}

impl Rare {
    /// The box of a token's rare parts; `None` when it has none. `old` is the limits' cell of
    /// the record `t` replaces, if any.
    fn of(t: &Token, old: Option<&Arc<LimitCell>>) -> Option<Box<Self>> {
        let limits = t.limits.as_ref().map(|l| {
            let cell = LimitCell::for_record(l, t.balance, old);
            Limited {
                state: Arc::clone(&cell) as Arc<dyn LimitState>,
                cell,
            }
        });
        let rare = Self {
            previous: t.secret.and_then(|s| s.previous),
            revoked: t.revoked,
            imported_from: t.imported_from,
            limits,
        };
        (rare.previous.is_some()
            || rare.revoked.is_some()
            || rare.imported_from.is_some()
            || rare.limits.is_some())
        .then(|| Box::new(rare))
    }
}

/// A well-mixed 32-bit fragment of an id (ids are sequential).
fn id_frag(id: TokenId) -> u32 {
    (id.get().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

/// 32 bits of a secret hash: keyed BLAKE3 output is uniform already.
fn hash_frag(h: &SecretHash) -> u32 {
    let [a, b, c, d, ..] = *h.as_bytes();
    u32::from_le_bytes([a, b, c, d])
}

/// 32 bits of an import origin (keyed BLAKE3 output too).
fn origin_frag(o: &ImportOrigin) -> u32 {
    let [a, b, c, d, ..] = *o.as_bytes();
    u32::from_le_bytes([a, b, c, d])
}

fn to_time(secs: i64) -> OffsetDateTime {
    from_unix(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Entry {
    /// The entry of `t`; `old` is the limits' cell of the record it replaces, if any.
    fn from_token(t: Token, old: Option<&Arc<LimitCell>>) -> Self {
        let last = LastUseCell::default();
        if let Some(u) = t.last_use {
            last.record(u);
        }
        let rare = Rare::of(&t, old);
        Self {
            id: t.id,
            name: t.name,
            description: t.description.into_boxed_str(),
            owner: t.owner,
            creator: t.creator,
            status: t.status,
            created_at: t.created_at.unix_timestamp(),
            expiry: t.expiry,
            permissions: t.permissions,
            allowlist: t.allowlist,
            hash: t.secret.map(|s| s.hash),
            scheme: t.secret.map_or(HashScheme::UNRECORDED, |s| s.scheme),
            generated_at: t.secret.map_or(0, |s| s.generated_at.unix_timestamp()),
            rare,
            last,
            revision: t.revision,
        }
    }

    fn to_token(&self) -> Token {
        Token {
            id: self.id,
            name: self.name.clone(),
            description: self.description.to_string(),
            owner: self.owner.clone(),
            creator: self.creator.clone(),
            status: self.status,
            created_at: to_time(self.created_at),
            expiry: self.expiry,
            permissions: self.permissions.clone(),
            allowlist: self.allowlist.clone(),
            last_use: self.last.get(),
            secret: self.hash.map(|hash| SecretState {
                hash,
                scheme: self.scheme,
                generated_at: to_time(self.generated_at),
                previous: self.previous().copied(),
            }),
            revision: self.revision,
            revoked: self.rare.as_deref().and_then(|r| r.revoked),
            imported_from: self.imported_from(),
            limits: self.limit_cell().map(|c| Arc::clone(c.definitions())),
            balance: self.limit_cell().and_then(|c| c.balance()),
        }
    }

    fn limit_cell(&self) -> Option<&Arc<LimitCell>> {
        self.rare
            .as_deref()
            .and_then(|r| r.limits.as_ref())
            .map(|l| &l.cell)
    }

    /// The limits as a candidate lends them.
    fn limit_state(&self) -> Option<&Arc<dyn LimitState>> {
        self.rare
            .as_deref()
            .and_then(|r| r.limits.as_ref())
            .map(|l| &l.state)
    }

    fn previous(&self) -> Option<&PreviousSecret> {
        self.rare.as_deref().and_then(|r| r.previous.as_ref())
    }

    fn imported_from(&self) -> Option<ImportOrigin> {
        self.rare.as_deref().and_then(|r| r.imported_from)
    }

    /// The record as authentication sees it, for a presented `hash` it is known by: the rule
    /// of [`Token::candidate`] (the same function decides which secret matched, here on the
    /// parts an entry keeps apart), so a record that matches neither is not used.
    fn candidate(&self, hash: &SecretHash) -> Option<Candidate<'_>> {
        let (matched, scheme) =
            Matched::of(hash, self.hash.as_ref(), self.scheme, self.previous())?;
        let limits = match self.limit_state() {
            Some(state) => CandidateLimits::Enforced(state),
            None => CandidateLimits::None,
        };
        Some(candidate_of!(self, matched, scheme, limits))
    }

    fn hashes(&self) -> impl Iterator<Item = SecretHash> + '_ {
        self.hash.into_iter().chain(self.previous().map(|p| p.hash))
    }
}

fn token_hashes(t: &Token) -> impl Iterator<Item = SecretHash> + '_ {
    t.secret.iter().flat_map(SecretState::hashes)
}

/// Last use, readable without a lock on the hot path. Writers serialise on `lock`; the atomics
/// let a reader see that the value it would write is already there and skip the write.
///
/// The instant and the kind of address share one word ([`stamp`]): a separate kind byte
/// would cost the cell 8 bytes of padding, and every token a cell (32 bytes instead of 40,
/// which is what keeps [`Entry`] at 216 bytes with the hash's [`HashScheme`] inline).
struct LastUseCell {
    lock: Mutex<()>,
    /// Unix seconds and address kind ([`stamp`]); [`NEVER_USED`] when never used.
    stamp: AtomicI64,
    hi: AtomicU64,
    lo: AtomicU64,
}

/// No stamp is this value (see [`stamp`]), so it is free to mean "never".
const NEVER_USED: i64 = i64::MIN;

/// Bits of a stamp that hold the kind of address: 0 none, 1 IPv4, 2 IPv6.
const KIND_BITS: u32 = 2;
const KIND_MASK: i64 = (1 << KIND_BITS) - 1;

/// Unix seconds and a kind of address in one word: `secs * 4 + kind`, so `stamp >> 2` gives
/// the seconds back (an arithmetic shift, right for instants before 1970 too). Every instant
/// `time` represents fits with room to spare (±999,999 years, with its `large-dates`, is
/// under 2^45 s); `None` from ±2^60 s on, which no instant reaches. So no stamp is
/// [`NEVER_USED`] (-2^63).
fn stamp(secs: i64, kind: u8) -> Option<i64> {
    (secs.unsigned_abs() < 1 << 60).then(|| (secs << KIND_BITS) | (i64::from(kind) & KIND_MASK))
}

impl Default for LastUseCell {
    fn default() -> Self {
        Self {
            lock: Mutex::new(()),
            stamp: AtomicI64::new(NEVER_USED),
            hi: AtomicU64::new(0),
            lo: AtomicU64::new(0),
        }
    }
}

fn encode_ip(ip: Option<IpAddr>) -> (u8, u64, u64) {
    match ip {
        None => (0, 0, 0),
        Some(IpAddr::V4(a)) => (1, 0, u64::from(u32::from(a))),
        Some(IpAddr::V6(a)) => {
            let v = u128::from(a);
            (2, (v >> 64) as u64, v as u64)
        }
    }
}

fn decode_ip(kind: i64, hi: u64, lo: u64) -> Option<IpAddr> {
    match kind {
        1 => u32::try_from(lo)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        2 => Some(IpAddr::V6(Ipv6Addr::from(
            (u128::from(hi) << 64) | u128::from(lo),
        ))),
        _ => None,
    }
}

impl LastUseCell {
    fn same(&self, stamp: i64, hi: u64, lo: u64) -> bool {
        self.stamp.load(Relaxed) == stamp
            && self.hi.load(Relaxed) == hi
            && self.lo.load(Relaxed) == lo
    }

    /// Records a use; returns whether the cell changed (a use it already holds, or an older
    /// one, changes nothing).
    fn record(&self, u: LastUse) -> bool {
        let secs = u.at.unix_timestamp();
        let (kind, hi, lo) = encode_ip(u.ip);
        let Some(stamp) = stamp(secs, kind) else {
            return false; // no instant `time` can represent
        };
        if self.same(stamp, hi, lo) {
            return false;
        }
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let held = self.stamp.load(Relaxed);
        if held != NEVER_USED && held >> KIND_BITS > secs {
            return false; // keep the latest use
        }
        self.stamp.store(stamp, Relaxed);
        self.hi.store(hi, Relaxed);
        self.lo.store(lo, Relaxed);
        true
    }

    fn get(&self) -> Option<LastUse> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let held = self.stamp.load(Relaxed);
        if held == NEVER_USED {
            return None;
        }
        Some(LastUse {
            at: to_time(held >> KIND_BITS),
            ip: decode_ip(
                held & KIND_MASK,
                self.hi.load(Relaxed),
                self.lo.load(Relaxed),
            ),
        })
    }
}

/// One owner's tokens. Most owners hold a few, kept in a small vector; an owner past
/// [`OwnerIndex::SMALL`] tokens (a service account with thousands) gets a map by name, so name
/// checks and removals stay O(1) however many tokens one owner has.
enum OwnerIndex {
    Few(Vec<u32>),
    Many(HashMap<TokenName, u32>),
}

impl OwnerIndex {
    const SMALL: usize = 32;

    fn slots(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Self::Few(v) => Box::new(v.iter().copied()),
            Self::Many(m) => Box::new(m.values().copied()),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Few(v) => v.is_empty(),
            Self::Many(m) => m.is_empty(),
        }
    }
}

impl Inner {
    fn owner_add(&mut self, owner: &UserId, name: &TokenName, slot: u32) {
        let slots = &self.slots;
        let index = self
            .by_owner
            .entry(owner.clone())
            .or_insert_with(|| OwnerIndex::Few(Vec::new()));
        match index {
            OwnerIndex::Few(v) if v.len() < OwnerIndex::SMALL => v.push(slot),
            OwnerIndex::Few(v) => {
                let mut m: HashMap<TokenName, u32> = v
                    .iter()
                    .filter_map(|&s| slots.get(s as usize)?.as_ref().map(|e| (e.name.clone(), s)))
                    .collect();
                m.insert(name.clone(), slot);
                *index = OwnerIndex::Many(m);
            }
            OwnerIndex::Many(m) => {
                m.insert(name.clone(), slot);
            }
        }
    }

    fn owner_remove(&mut self, owner: &UserId, name: &TokenName, slot: u32) {
        if let Some(index) = self.by_owner.get_mut(owner) {
            match index {
                OwnerIndex::Few(v) => v.retain(|&s| s != slot),
                OwnerIndex::Many(m) => {
                    m.remove(name);
                }
            }
            if index.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }

    fn entry(&self, slot: u32) -> Option<&Entry> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn slot_of(&self, id: TokenId) -> Option<u32> {
        self.by_id
            .find(id_frag(id), |s| self.entry(s).is_some_and(|e| e.id == id))
    }

    fn by_id(&self, id: TokenId) -> Option<&Entry> {
        self.entry(self.slot_of(id)?)
    }

    fn by_hash(&self, hash: &SecretHash) -> Option<&Entry> {
        let slot = self.by_hash.find(hash_frag(hash), |s| {
            self.entry(s)
                .is_some_and(|e| e.hashes().any(|h| h == *hash))
        })?;
        self.entry(slot)
    }

    fn find_name(&self, owner: &UserId, name: &TokenName) -> Option<TokenId> {
        match self.by_owner.get(owner)? {
            OwnerIndex::Few(v) => v
                .iter()
                .filter_map(|&s| self.entry(s))
                .find(|e| e.name == *name)
                .map(|e| e.id),
            OwnerIndex::Many(m) => m.get(name).and_then(|&s| self.entry(s)).map(|e| e.id),
        }
    }

    fn intern(&mut self, p: PermissionSet) -> PermissionSet {
        if let Some(existing) = self.perm_sets.get(&p) {
            return existing.clone();
        }
        // A set whose last entry went while someone else held a clone (a grant, a listing, the
        // facade's intersection memo) outlives it here; sweeping when the table has doubled
        // keeps such sets to at most as many as are in use, at O(1) amortised per insert.
        if self.perm_sets.len() >= self.perm_sweep_at {
            self.perm_sets.retain(|s| s.ref_count() > 1);
            self.perm_sweep_at = (self.perm_sets.len() * 2).max(64);
        }
        self.perm_sets.insert(p.clone());
        p
    }

    fn insert(&mut self, token: Token) {
        self.insert_replacing(token, None);
    }

    /// Inserts `token`; `old` is the limits' cell of the record it replaces, if any.
    fn insert_replacing(&mut self, token: Token, old: Option<&Arc<LimitCell>>) {
        let mut e = Entry::from_token(token, old);
        e.permissions = self.intern(e.permissions);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_id.insert(id_frag(e.id), slot);
        for h in e.hashes() {
            self.by_hash.insert(hash_frag(&h), slot);
        }
        if let Some(o) = e.imported_from() {
            self.by_origin.insert(origin_frag(&o), slot);
        }
        self.len += 1;
        self.owner_add(&e.owner, &e.name, slot);
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Some(e);
        }
    }

    fn remove(&mut self, id: TokenId) -> Option<Entry> {
        let slot = self.slot_of(id)?;
        let e = self.slots.get_mut(slot as usize)?.take()?;
        self.by_id.remove(id_frag(id), slot);
        for h in e.hashes() {
            self.by_hash.remove(hash_frag(&h), slot);
        }
        if let Some(o) = e.imported_from() {
            self.by_origin.remove(origin_frag(&o), slot);
        }
        self.len -= 1;
        self.owner_remove(&e.owner, &e.name, slot);
        // Drop the interned set when this entry was its last user (the set and the entry hold
        // the only two references).
        if e.permissions.ref_count() <= 2 {
            self.perm_sets.remove(&e.permissions);
        }
        self.free.push(slot);
        Some(e)
    }

    /// Checks a whole batch against the state it would produce, without changing anything.
    fn check(&self, changes: &[Change]) -> Result<(), StoreError> {
        batch_ids(changes)?;
        let mut removed_names: HashSet<(&UserId, &TokenName)> = HashSet::new();
        let mut removed_hashes: HashSet<SecretHash> = HashSet::new();
        for c in changes {
            let id = c.id();
            match c {
                Change::Insert(_) => {
                    if self.by_id(id).is_some() {
                        return Err(StoreError::IdTaken(id));
                    }
                }
                Change::Replace(_) | Change::Delete(_) => {
                    let old = self.by_id(id).ok_or(StoreError::NotFound(id))?;
                    if let Change::Replace(t) = c
                        && t.revision != old.revision
                    {
                        return Err(StoreError::Conflict(id));
                    }
                    removed_names.insert((&old.owner, &old.name));
                    removed_hashes.extend(old.hashes());
                }
            }
        }
        let mut added_names = HashSet::new();
        let mut added_hashes = HashSet::new();
        for c in changes {
            let t = match c {
                Change::Insert(t) | Change::Replace(t) => t,
                Change::Delete(_) => continue,
            };
            t.check_consistent()?;
            let key = (&t.owner, &t.name);
            let taken_in_store =
                self.find_name(&t.owner, &t.name).is_some() && !removed_names.contains(&key);
            if !added_names.insert(key) || taken_in_store {
                return Err(StoreError::NameTaken {
                    owner: t.owner.clone(),
                    name: t.name.to_string(),
                });
            }
            for h in token_hashes(t) {
                let taken_in_store = self.by_hash(&h).is_some() && !removed_hashes.contains(&h);
                if !added_hashes.insert(h) || taken_in_store {
                    return Err(StoreError::HashTaken);
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, changes: Vec<Change>) {
        for c in changes {
            match c {
                Change::Insert(t) => self.insert(t),
                Change::Replace(mut t) => {
                    t.revision = t.revision.wrapping_add(1);
                    let mut cell = None;
                    if let Some(old) = self.remove(t.id) {
                        // An authentication may have happened since the caller read the token.
                        let newer = old.last.get();
                        if newer.map(|u| u.at) > t.last_use.map(|u| u.at) {
                            t.last_use = newer;
                        }
                        cell = old.limit_cell().cloned();
                    }
                    self.insert_replacing(t, cell.as_ref());
                }
                Change::Delete(id) => {
                    self.remove(id);
                }
            }
        }
    }

    /// The slots a query has to look at: by id or owner when it names them, else all. The
    /// lists come from the matcher's hash sets (each value once, no second set built).
    fn candidates<'a>(
        &'a self,
        m: &'a QueryMatcher<'a>,
    ) -> Box<dyn Iterator<Item = &'a Entry> + 'a> {
        if let Some(ids) = m.id_set() {
            Box::new(ids.iter().filter_map(|&id| self.by_id(id)))
        } else if let Some(owners) = m.owner_set() {
            Box::new(
                owners
                    .iter()
                    .filter_map(|o| self.by_owner.get(*o))
                    .flat_map(OwnerIndex::slots)
                    .filter_map(|s| self.entry(s)),
            )
        } else {
            Box::new(self.slots.iter().flatten())
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::with_inner(Inner::default(), 1)
    }

    fn with_inner(inner: Inner, next_id: u64) -> Self {
        Self {
            inner: RwLock::new(inner),
            next_id: AtomicU64::new(next_id),
            epoch: hot::Epoch::default(),
            hot: hot::HotCaches::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> WriteGuard<'_> {
        WriteGuard {
            inner: self.inner.write().unwrap_or_else(|p| p.into_inner()),
            epoch: &self.epoch,
        }
    }

    /// Authentication by hash: from this thread's copy of the token when it holds one taken
    /// at the store's current epoch (no lock, no shared write), else under the read lock.
    /// `noted` hears each last use that changed the stored record.
    fn authenticate_by_hash(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
        noted: &mut dyn FnMut(TokenId, LastUse),
    ) -> bool {
        let epoch = self.epoch.load();
        // A reentrant call (a directory that authenticates) finds the cache busy and takes
        // the locked path.
        let Ok(mut cache) = self.hot.local().try_borrow_mut() else {
            return self.authenticate_locked(hash, check, noted, None);
        };
        if let Some(hot) = cache.get(hash, epoch) {
            let used = check(hot.candidate());
            if let Some(used) = used
                && !hot.has_recorded(&used)
            {
                // At most once per token per second and address (per thread): the write
                // goes to the shared record under the read lock, as on the locked path.
                let inner = self.read();
                if let Some(e) = inner.by_hash(hash).filter(|e| e.id == hot.id)
                    && e.last.record(used)
                {
                    noted(e.id, used);
                }
                hot.set_recorded(&used);
            }
            return true;
        }
        let admit = cache.admit(hash);
        self.authenticate_locked(hash, check, noted, admit.then_some(&mut *cache))
    }

    /// The locked path; with `cache`, a copy of the token is kept there.
    fn authenticate_locked(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
        noted: &mut dyn FnMut(TokenId, LastUse),
        cache: Option<&mut hot::Cache>,
    ) -> bool {
        #[cfg(test)]
        tests::LOCKED_PATH.with(|n| n.set(n.get() + 1));
        let inner = self.read();
        let Some(e) = inner.by_hash(hash) else {
            return false;
        };
        let Some(candidate) = e.candidate(hash) else {
            return false;
        };
        // Under the read lock the epoch cannot move: the copy is the store at this epoch.
        let copy =
            cache.and_then(|c| Some((hot::Hot::copy(e, &candidate, hash, self.epoch.load())?, c)));
        let used = check(candidate);
        if let Some(used) = used
            && e.last.record(used)
        {
            noted(e.id, used);
        }
        if let Some((mut copy, cache)) = copy {
            if let Some(used) = &used {
                copy.set_recorded(used);
            }
            cache.put(copy);
        }
        true
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.read().len
    }

    /// Whether the store holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything the store holds, sorted by id. Hashes only, never secrets.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.read();
        let mut tokens: Vec<Token> = inner.slots.iter().flatten().map(Entry::to_token).collect();
        tokens.sort_by_key(|t| t.id);
        Snapshot {
            version: SNAPSHOT_VERSION,
            next_id: self.next_id.load(Relaxed),
            tokens,
        }
    }

    /// Replaces the store's contents with a snapshot's (to restore a persisted one, open its
    /// [`SealedSnapshot`] first).
    ///
    /// # Errors
    /// [`StoreError::InvalidSnapshot`] for an unknown version, duplicate ids, names or hashes,
    /// an inconsistent record, or a `next_id` not above every id; the store is left untouched.
    pub fn restore(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let fresh = Self::from_snapshot(snapshot)?;
        let (inner, next) = (
            fresh.inner.into_inner().unwrap_or_else(|p| p.into_inner()),
            fresh.next_id.into_inner(),
        );
        let mut guard = self.write();
        *guard = inner;
        self.next_id.store(next, Relaxed);
        drop(guard);
        Ok(())
    }

    /// A new store holding a snapshot's tokens.
    ///
    /// # Errors
    /// As [`MemoryStore::restore`].
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Self, StoreError> {
        let invalid = |m: String| StoreError::InvalidSnapshot(m);
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(invalid(format!(
                "unknown version {} (expected {SNAPSHOT_VERSION})",
                snapshot.version
            )));
        }
        if let Some(max) = snapshot.tokens.iter().map(|t| t.id.get()).max()
            && snapshot.next_id <= max
        {
            return Err(invalid(format!(
                "next_id {} is not above the largest id {max}",
                snapshot.next_id
            )));
        }
        let mut inner = Inner::default();
        let changes: Vec<Change> = snapshot.tokens.into_iter().map(Change::Insert).collect();
        inner.check(&changes).map_err(|e| invalid(e.to_string()))?;
        inner.apply(changes);
        Ok(Self::with_inner(inner, snapshot.next_id))
    }
}

/// What a replica needs beyond the [`TokenStore`] port: it mirrors a database, whose records
/// are the truth, so it installs them as they are instead of checking them as new writes.
#[cfg(feature = "postgres")]
impl MemoryStore {
    /// [`TokenStore::authenticate`], also telling `noted` each last use that changed the
    /// record (at most once per token per second and address): what a replica must write back.
    pub(crate) fn authenticate_noting(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
        noted: &mut dyn FnMut(TokenId, LastUse),
    ) -> bool {
        self.authenticate_by_hash(hash, check, noted)
    }

    /// Installs records read from the source of truth: each of `upserts` replaces the record
    /// with its id (or is added), keeping the later of the two last uses; each of `deletes` is
    /// removed. One write lock: an authentication sees the state before or after, never half.
    /// Returns the ids of records left out because another record holds their name or hash.
    pub(crate) fn replicate(&self, upserts: Vec<Token>, deletes: &[TokenId]) -> Vec<TokenId> {
        let mut inner = self.write();
        let mut refused = Vec::new();
        for id in deletes {
            inner.remove(*id);
        }
        // Every old version first, then every new one: renames that swap two names in one
        // change never meet half-applied.
        let mut local_uses = HashMap::new();
        let mut cells = HashMap::new();
        for t in &upserts {
            if let Some(old) = inner.remove(t.id) {
                if let Some(u) = old.last.get() {
                    local_uses.insert(t.id, u);
                }
                if let Some(c) = old.limit_cell() {
                    cells.insert(t.id, Arc::clone(c));
                }
            }
        }
        for mut t in upserts {
            if let Some(local) = local_uses.get(&t.id)
                && Some(local.at) > t.last_use.map(|u| u.at)
            {
                t.last_use = Some(*local);
            }
            // A record whose name or hash another one still holds would break the indexes:
            // the source enforces both, so this only happens if it was changed behind its
            // back. Leave the record out (it cannot authenticate: fail closed) rather than
            // guess which one is right.
            let name_clash = inner.find_name(&t.owner, &t.name).is_some();
            let hash_clash = token_hashes(&t).any(|h| inner.by_hash(&h).is_some());
            // A record in a state no valid token can be in is left out the same way.
            if name_clash || hash_clash || t.check_consistent().is_err() {
                refused.push(t.id);
            } else {
                let cell = cells.get(&t.id).cloned();
                inner.insert_replacing(t, cell.as_ref());
            }
        }
        refused
    }

    /// The ids of the records `keep` accepts (a scan of every record: for repairs, not for
    /// requests).
    pub(crate) fn ids_where(&self, keep: impl Fn(TokenId) -> bool) -> Vec<TokenId> {
        self.read()
            .slots
            .iter()
            .flatten()
            .map(|e| e.id)
            .filter(|id| keep(*id))
            .collect()
    }

    /// Replaces everything this store holds with what `other` holds, at once.
    pub(crate) fn replace_contents(&self, other: MemoryStore) {
        let fresh = other.inner.into_inner().unwrap_or_else(|p| p.into_inner());
        let next = other.next_id.into_inner();
        *self.write() = fresh;
        self.next_id.store(next, Relaxed);
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("tokens", &self.len())
            .finish_non_exhaustive()
    }
}

impl TokenStore for MemoryStore {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        let n64 = u64::try_from(n).map_err(|_| StoreError::IdsExhausted)?;
        // A checked compare-and-swap: ids never wrap around, even after restoring a snapshot
        // whose `next_id` is near the end of the range.
        let mut start = self.next_id.load(Relaxed);
        loop {
            let end = start.checked_add(n64).ok_or(StoreError::IdsExhausted)?;
            match self
                .next_id
                .compare_exchange_weak(start, end, Relaxed, Relaxed)
            {
                Ok(_) => return Ok((start..end).map(TokenId::new).collect()),
                Err(current) => start = current,
            }
        }
    }

    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        let mut inner = self.write();
        inner.check(&changes)?;
        inner.apply(changes);
        Ok(())
    }

    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        Ok(self.read().by_id(id).map(Entry::to_token))
    }

    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError> {
        Ok(self.read().find_name(owner, name))
    }

    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        let matcher = query.matcher(now);
        let inner = self.read();
        let mut out: Vec<Token> = inner
            .candidates(&matcher)
            .map(Entry::to_token)
            .filter(|t| matcher.matches(t))
            .collect();
        drop(inner);
        query.sort_and_limit(&mut out);
        Ok(out)
    }

    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        let matcher = query.matcher(now);
        let inner = self.read();
        Ok(inner
            .candidates(&matcher)
            .filter(|e| matcher.matches(&e.to_token()))
            .count())
    }

    fn key_usage(&self, now: OffsetDateTime) -> Result<Vec<KeyUsage>, StoreError> {
        let inner = self.read();
        let mut usage = Vec::new();
        for e in inner.slots.iter().flatten() {
            if e.hash.is_some() {
                count_into(&mut usage, e.scheme, false);
            }
            if let Some(p) = e.previous()
                && now < p.valid_until
            {
                count_into(&mut usage, p.scheme, true);
            }
        }
        drop(inner);
        sort_usage(&mut usage);
        Ok(usage)
    }

    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError> {
        Ok(self.authenticate_by_hash(hash, check, &mut |_, _| {}))
    }

    /// Limits are kept in memory and charged exactly (a mutex per limited token).
    fn enforces_limits(&self) -> bool {
        true
    }

    /// One probe of the origin index per origin (only imported tokens are in it): O(k) for
    /// k origins, whatever the store holds.
    fn find_imported(
        &self,
        origins: &[ImportOrigin],
    ) -> Result<Vec<(TokenId, ImportOrigin)>, StoreError> {
        let wanted: HashSet<&ImportOrigin> = origins.iter().collect();
        let inner = self.read();
        let mut found = Vec::new();
        for o in wanted {
            // Every slot holding `o`: the probe walks the whole run, collecting as it goes.
            inner.by_origin.find(origin_frag(o), |s| {
                if let Some(e) = inner.entry(s)
                    && e.imported_from().as_ref() == Some(o)
                {
                    found.push((e.id, *o));
                }
                false
            });
        }
        drop(inner);
        found.sort_by_key(|(id, _)| *id);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::RequestContext;
    use crate::{Actor, NewToken, Tokens};

    thread_local! {
        /// Authentications this thread made on the locked path.
        pub(super) static LOCKED_PATH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    fn locked_path() -> u32 {
        LOCKED_PATH.with(|n| n.get())
    }

    fn issue(tokens: &Tokens, permissions: &str) -> crate::Issued {
        tokens
            .issue(
                &Actor::admin(UserId::from(1)),
                NewToken::new(format!("t{}", tokens.store().len()).parse().unwrap())
                    .permissions(permissions.parse().unwrap()),
            )
            .unwrap()
    }

    /// A token this thread authenticated before is authenticated while another thread holds
    /// the store's write lock (which the locked path would wait for): the hot path takes no
    /// lock.
    #[test]
    fn the_hot_path_takes_no_lock() {
        let tokens = Tokens::in_memory();
        let issued = issue(&tokens, "dns.*");
        let secret = issued.secret.expose();
        let ctx = RequestContext::unknown_address();
        let (ready, warmed) = std::sync::mpsc::channel();
        let (go, started) = std::sync::mpsc::channel::<()>();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let (tokens, ctx) = (&tokens, &ctx);
            s.spawn(move || {
                for _ in 0..3 {
                    tokens.authenticate(secret, ctx).unwrap();
                }
                ready.send(()).unwrap();
                started.recv().unwrap();
                let before = locked_path();
                let r = tokens.authenticate(secret, ctx).map(|g| g.token);
                done.send((r, locked_path() - before)).unwrap();
            });
            warmed.recv().unwrap();
            let held = tokens.store().inner.write().unwrap();
            go.send(()).unwrap();
            let outcome = finished.recv_timeout(std::time::Duration::from_secs(30));
            drop(held);
            let (r, locked) = outcome.expect("the hot path waited for the store's lock");
            assert_eq!(r.unwrap(), issued.token.id);
            assert_eq!(locked, 0);
        });
    }

    #[test]
    fn large_tokens_take_the_locked_path_every_time() {
        let tokens = Tokens::in_memory();
        let small = issue(&tokens, "a, b");
        let many: Vec<String> = (0..=hot::MAX_COPIED).map(|i| format!("p{i}")).collect();
        let large = issue(&tokens, &many.join(", "));
        let ctx = RequestContext::unknown_address();
        for (issued, expected_locked) in [(&small, 2), (&large, 10)] {
            let before = locked_path();
            for _ in 0..10 {
                let g = tokens.authenticate(issued.secret.expose(), &ctx).unwrap();
                assert_eq!(g.token, issued.token.id);
            }
            assert_eq!(locked_path() - before, expected_locked);
        }
    }

    /// The replica hears of every last use that changed the record, from either path.
    #[cfg(feature = "postgres")]
    #[test]
    fn last_uses_from_the_hot_path_are_noted() {
        let tokens = Tokens::in_memory();
        let issued = issue(&tokens, "a");
        let hash = SecretHash::of(
            &crate::HashKey::default(),
            &crate::SecretFormat::default()
                .parse(issued.secret.expose())
                .unwrap(),
        );
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let mut noted = Vec::new();
        for (secs, ip) in [
            (0, 1),
            (0, 1),
            (0, 1),
            (0, 1),
            (1, 1),
            (1, 1),
            (1, 2),
            (1, 2),
        ] {
            let used = LastUse {
                at: t0 + time::Duration::seconds(secs),
                ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, ip))),
            };
            let found =
                tokens
                    .store()
                    .authenticate_noting(&hash, &mut |_| Some(used), &mut |id, u| {
                        noted.push((id, u))
                    });
            assert!(found);
        }
        let at: Vec<(i64, Option<IpAddr>)> = noted
            .iter()
            .map(|(_, u)| ((u.at - t0).whole_seconds(), u.ip))
            .collect();
        let ip = |n| Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)));
        assert_eq!(at, [(0, ip(1)), (1, ip(1)), (1, ip(2))]);
    }

    fn token(id: TokenId, permissions: &str) -> Token {
        Token {
            permissions: permissions.parse().unwrap(),
            ..crate::store::test_record(id)
        }
    }

    /// A set still held elsewhere when its last token goes (the facade's intersection memo
    /// keeps up to 32) stays interned; a sweep keeps such sets from piling up.
    #[test]
    fn interned_sets_held_elsewhere_do_not_pile_up() {
        let store = MemoryStore::new();
        let mut held = std::collections::VecDeque::new();
        for i in 0..1_000 {
            let id = store.reserve_ids(1).unwrap()[0];
            store
                .apply(vec![Change::Insert(token(id, &format!("p{i}.*")))])
                .unwrap();
            held.push_back(store.get(id).unwrap().unwrap().permissions);
            if held.len() > 32 {
                held.pop_front();
            }
            store.apply(vec![Change::Delete(id)]).unwrap();
        }
        let interned = store.read().perm_sets.len();
        assert!(interned <= 128, "{interned} sets interned for 32 in use");
        // Sets in use are never swept.
        let id = store.reserve_ids(1).unwrap()[0];
        store
            .apply(vec![Change::Insert(token(id, "kept.*"))])
            .unwrap();
        for i in 0..1_000 {
            let other = store.reserve_ids(1).unwrap()[0];
            store
                .apply(vec![Change::Insert(token(other, &format!("q{i}")))])
                .unwrap();
            store.apply(vec![Change::Delete(other)]).unwrap();
        }
        let kept = store.get(id).unwrap().unwrap().permissions;
        assert!(store.read().perm_sets.get(&kept).unwrap().ptr_eq(&kept));
    }

    /// Every token costs an `Entry` in the slab (plus the slab's spare capacity): 216 bytes
    /// with each hash's scheme inline (the last-use cell gave up its padding for it). Each 8
    /// bytes more cost ~8.4 B per token in the memory measured per token (`examples/memory`),
    /// which has ~6 B left under its 400 B target.
    #[test]
    fn an_entry_stays_within_216_bytes() {
        // 216 with std's 8-byte futex `Mutex` (Linux, what the README measures); where std
        // uses a larger mutex the last-use cell grows by the difference.
        let mutex_extra = std::mem::size_of::<Mutex<()>>().saturating_sub(8);
        let size = std::mem::size_of::<Entry>();
        assert!(size <= 216 + mutex_extra, "Entry is {size} bytes");
        assert_eq!(std::mem::size_of::<Option<Entry>>(), size);
    }

    /// The last-use cell keeps every instant `time` can represent (before 1970 too) and every
    /// kind of address apart (an IPv4-mapped IPv6 address stays IPv6, "no address" stays none).
    #[test]
    fn last_use_cells_keep_instant_and_address() {
        let instants = [
            time::PrimitiveDateTime::MIN.assume_utc(),
            OffsetDateTime::UNIX_EPOCH - time::Duration::seconds(1),
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_900_000_000),
            time::PrimitiveDateTime::MAX.assume_utc(),
        ];
        let ips = [
            None,
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            Some(IpAddr::V4(Ipv4Addr::BROADCAST)),
            Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            Some(IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped())),
            Some(IpAddr::V6(Ipv6Addr::from(u128::MAX))),
        ];
        for at in instants {
            let at = at.replace_nanosecond(0).unwrap();
            for ip in ips {
                let cell = LastUseCell::default();
                assert_eq!(cell.get(), None);
                let u = LastUse { at, ip };
                assert!(cell.record(u), "{u:?}");
                assert_eq!(cell.get(), Some(u));
                assert!(!cell.record(u), "the same use again changes nothing");
                // Another address in the same second is recorded, an earlier second is not.
                for other in ips.iter().filter(|o| **o != ip) {
                    let cell = LastUseCell::default();
                    cell.record(u);
                    let v = LastUse { at, ip: *other };
                    assert!(cell.record(v), "{u:?} then {v:?}");
                    assert_eq!(cell.get(), Some(v));
                    if let Some(earlier) = at.checked_sub(time::Duration::seconds(1)) {
                        let w = LastUse { at: earlier, ip };
                        assert!(!cell.record(w), "{v:?} then {w:?}");
                        assert_eq!(cell.get(), Some(v));
                    }
                }
            }
        }
    }
}
