//! The read path of [`MemoryStore`](super::MemoryStore) whose readers write no shared memory.
//!
//! Every thread that authenticates keeps its own copies of the few tokens it authenticated
//! most recently: their hash, the fields a decision reads, and *private* clones of the name,
//! owner and permissions (fresh allocations, not the store's shared ones). A repeat
//! authentication of such a token takes no lock, touches no reference count another thread
//! touches, and reads one shared word: the store's write epoch. So the hot path is the checks
//! themselves, and two threads on one token do not slow each other down (the `authenticate`
//! bench's `throughput_hot`).
//!
//! # Why it is never stale
//! Every change to the store's contents happens under its write lock and bumps the epoch
//! before the lock is released ([`super::WriteGuard`]). A copy records the epoch it was taken
//! at, read under the read lock, so it is exactly the store's state at that epoch; it is used
//! only while the epoch is unchanged. An authentication that loads the epoch after a write
//! returned sees the new value and goes back to the store: a token disabled, deleted,
//! regenerated or revoked is refused the moment the call that changed it returns, as before.
//! An authentication racing a write is ordered before it, as one holding the read lock is.
//!
//! # What it costs
//! Copies cost allocations, so a token is copied only when this thread meets it a second time
//! while it is still remembered in a small table of recently seen hash fragments, and only
//! when it is small (at most [`MAX_COPIED`] permissions and allowlist entries; larger tokens
//! take the locked path, as before). Copying is also rationed: a thread whose copies are not
//! reused (more hot tokens than it has room for) soon stops copying and pays only the lookup.
//! Memory is bounded per thread: [`SETS`] × [`WAYS`] copies of small tokens.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use thread_local::ThreadLocal;

use super::{Entry, hash_frag};
use crate::allowlist::IpAllowlist;
use crate::keys::HashScheme;
use crate::permission::PermissionSet;
use crate::secret::SecretHash;
use crate::store::{Candidate, CandidateLimits, LimitState, Matched, candidate_of};
use crate::token::{Expiry, LastUse, Status, TokenId, TokenName, UserId};

/// Sets of the per-thread cache (a power of two).
const SETS: usize = 16;
/// Copies per set.
const WAYS: usize = 2;
/// Slots of the recently-seen table (a power of two).
const SEEN: usize = 256;
/// Tokens with more permissions or allowlist entries than this are not copied.
pub(super) const MAX_COPIED: usize = 16;
/// What a copy costs out of the budget, and the most the budget holds.
const COPY_COST: u32 = 32;
const MAX_CREDIT: u32 = 8 * COPY_COST;

/// The store's write epoch, alone on its cache lines: readers only load it, and nothing a
/// reader writes (the lock word, the id counter) shares its line.
#[repr(align(128))]
#[derive(Default)]
pub(super) struct Epoch(AtomicU64);

impl Epoch {
    pub(super) fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Called with the write lock held, after the change and before the lock is released.
    pub(super) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// The per-thread caches of one store.
#[derive(Default)]
pub(super) struct HotCaches {
    caches: ThreadLocal<Padded>,
}

/// One thread's cache on cache lines of its own: `ThreadLocal` keeps the threads' values side
/// by side, and every hit writes the borrow flag and the bookkeeping, so neighbours would
/// otherwise pull the same line back and forth between cores (false sharing).
#[repr(align(128))]
#[derive(Default)]
struct Padded(RefCell<Cache>);

impl HotCaches {
    /// This thread's cache.
    pub(super) fn local(&self) -> &RefCell<Cache> {
        &self.caches.get_or_default().0
    }
}

/// A token as this thread last saw it.
pub(super) struct Hot {
    hash: SecretHash,
    epoch: u64,
    pub(super) id: TokenId,
    name: TokenName,
    owner: UserId,
    status: Status,
    expiry: Expiry,
    permissions: PermissionSet,
    allowlist: IpAllowlist,
    matched: Matched,
    /// How the matched hash was made: the facade compares it with its current
    /// key's scheme after every hit, and re-hashes (a write, so the epoch moves) when they
    /// differ.
    scheme: HashScheme,
    /// The last use this thread knows the store holds for the token: a repeat within the
    /// same second from the same address writes nothing.
    recorded: Option<LastUse>,
    /// The token's limits: the store's own state, shared (charging it is exact).
    limits: Option<Arc<dyn LimitState>>,
}

impl Hot {
    /// A private copy of `e` as found by `hash`, at `epoch`; `None` for a token too large to
    /// copy.
    pub(super) fn copy(
        e: &Entry,
        c: &Candidate<'_>,
        hash: &SecretHash,
        epoch: u64,
    ) -> Option<Self> {
        if e.permissions.len() > MAX_COPIED || e.allowlist.len() > MAX_COPIED {
            return None;
        }
        Some(Self {
            hash: *hash,
            epoch,
            id: c.id,
            name: c.name.unshared(),
            owner: c.owner.unshared(),
            status: c.status,
            expiry: c.expiry,
            permissions: c.permissions.unshared(),
            allowlist: c.allowlist.clone(),
            matched: c.matched,
            scheme: c.scheme,
            recorded: None,
            limits: e.limit_state().cloned(),
        })
    }

    pub(super) fn candidate(&self) -> Candidate<'_> {
        let limits = match &self.limits {
            Some(state) => CandidateLimits::Enforced(state),
            None => CandidateLimits::None,
        };
        candidate_of!(self, self.matched, self.scheme, limits)
    }

    /// Whether the store already holds `used` as far as this thread knows.
    pub(super) fn has_recorded(&self, used: &LastUse) -> bool {
        // Compared as written (date, time, offset), not as instants: `OffsetDateTime`'s `==`
        // converts both sides to UTC, on every hit. Equal as written implies equal as instants,
        // so the worst a difference in form can cost is one more write of the same last use.
        // (The facade's `whole_seconds` gives UTC, so the offsets differ only for instants at
        // the very end of the representable range, which stay in their own offset.)
        self.recorded.as_ref().is_some_and(|r| {
            r.ip == used.ip
                && r.at.date() == used.at.date()
                && r.at.time() == used.at.time()
                && r.at.offset() == used.at.offset()
        })
    }

    pub(super) fn set_recorded(&mut self, used: &LastUse) {
        self.recorded = Some(*used);
    }
}

/// One thread's copies, 2-way set associative by hash fragment.
pub(super) struct Cache {
    sets: [[Option<Box<Hot>>; WAYS]; SETS],
    /// Per set: the way used least recently.
    victim: [u8; SETS],
    /// Hash fragments met recently (admission: a token is copied the second time).
    seen: Box<[u32; SEEN]>,
    /// Copies are paid from this; hits and plain lookups refill it.
    credit: u32,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            sets: Default::default(),
            victim: [0; SETS],
            seen: Box::new([0; SEEN]),
            credit: MAX_CREDIT,
        }
    }
}

impl Cache {
    /// The copy of the token `hash` belongs to, if this thread holds one taken at `epoch`.
    pub(super) fn get(&mut self, hash: &SecretHash, epoch: u64) -> Option<&mut Hot> {
        let frag = hash_frag(hash);
        let set = frag as usize % SETS;
        let ways = self.sets.get_mut(set)?;
        let way = ways.iter().position(|h| {
            h.as_ref()
                .is_some_and(|h| h.epoch == epoch && h.hash == *hash)
        })?;
        if let Some(v) = self.victim.get_mut(set) {
            *v = u8::from(way == 0);
        }
        self.credit = (self.credit + 1).min(MAX_CREDIT);
        ways.get_mut(way)?.as_deref_mut()
    }

    /// Whether a token looked up on the locked path should be copied: it was seen recently,
    /// and copies have been paying for themselves.
    pub(super) fn admit(&mut self, hash: &SecretHash) -> bool {
        let frag = hash_frag(hash);
        let Some(seen) = self.seen.get_mut((frag >> 8) as usize % SEEN) else {
            return false;
        };
        if *seen != frag {
            *seen = frag;
            self.credit = (self.credit + 1).min(MAX_CREDIT);
            return false;
        }
        if self.credit < COPY_COST {
            self.credit += 1;
            return false;
        }
        self.credit -= COPY_COST;
        true
    }

    /// Keeps `hot`, in place of the copy of the same hash or the set's least recently used.
    pub(super) fn put(&mut self, hot: Hot) {
        let set = hash_frag(&hot.hash) as usize % SETS;
        let (Some(ways), Some(victim)) = (self.sets.get_mut(set), self.victim.get_mut(set)) else {
            return;
        };
        let way = ways
            .iter()
            .position(|h| h.as_ref().is_some_and(|h| h.hash == hot.hash))
            .unwrap_or(usize::from(*victim) % WAYS);
        if let Some(w) = ways.get_mut(way) {
            *w = Some(Box::new(hot));
        }
        *victim = u8::from(way == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(frag: u32, tail: u8) -> SecretHash {
        let mut b = [tail; 32];
        b[..4].copy_from_slice(&frag.to_le_bytes());
        SecretHash::from_bytes(b)
    }

    #[test]
    fn a_token_is_admitted_the_second_time_it_is_seen() {
        let mut c = Cache::default();
        let a = h(0x1234_5678, 1);
        assert!(!c.admit(&a));
        assert!(c.admit(&a));
        // Another hash in the same seen slot displaces it.
        let b = h(0x1234_5600 ^ 0x0100_0000, 2);
        let mut c = Cache::default();
        assert!(!c.admit(&a));
        assert_eq!(
            (hash_frag(&a) >> 8) as usize % SEEN,
            (hash_frag(&b) >> 8) as usize % SEEN
        );
        assert!(!c.admit(&b));
        assert!(!c.admit(&a), "displaced, so seen for the first time again");
    }

    #[test]
    fn copies_that_are_not_reused_stop_being_made() {
        let mut c = Cache::default();
        let mut admitted = 0;
        // Every token seen twice in a row, never looked up from the cache: no hits refill the
        // budget, so copying stops after the budget is spent and resumes only slowly.
        for i in 0..10_000u32 {
            let x = h(i.wrapping_mul(0x9E37_79B9), 3);
            c.admit(&x);
            if c.admit(&x) {
                admitted += 1;
            }
        }
        assert!(
            admitted < 10_000 / 16,
            "{admitted} copies for 10,000 tokens never reused"
        );
    }
}
