//! The state of a token's limits in a [`MemoryStore`](super::MemoryStore): exact, in memory,
//! and without a shared counter written on every request.
//!
//! One cell per limited token, shared by the store's record and every thread's copy of it:
//! the definitions, the shared state ([`Usage`]) under a mutex, and per thread a *slice* of
//! each limit's budget taken from the shared state ahead of need:
//!
//! * A thread spends from its own slices (a compare-and-swap on a cache line no other thread
//!   writes), and goes to the shared state only when a slice is used up or no longer valid:
//!   credits' slices until the next refill, a rate limit's until the end of the window slot it
//!   was counted in. A slice is an eighth of what the shared state has left, so near the end
//!   of a budget slices shrink to nothing and every charge is decided on the shared state.
//! * **Never more than the limit.** A slice is debited from the shared state (counted in its
//!   window slot) before any of it is spent, so what all threads spend is at most what the
//!   rule ([`decide`]) admitted. Taking the budget ahead can only refuse *early*, never admit
//!   late.
//! * **No early refusal either.** Before the shared state refuses a charge, every thread's
//!   unspent slices are taken back (an atomic swap each: a unit is either spent by its thread
//!   or taken back, never both) and the charge is decided again. A credit slice of an earlier
//!   refill period is dropped, not given back (that period's credits are gone).
//! * What a grant reports as remaining is what the shared state had left when this thread last
//!   took its slice, plus the slice: an upper bound, exact when one thread spends.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use thread_local::ThreadLocal;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::limits::{Balance, Charge, LimitRefusal, Limits, Remaining, Usage, decide, leaves_in};
use crate::store::LimitState;

/// A thread takes this fraction (1/n) of what the shared state has left as its slice.
const SLICE_SHARE: u64 = 8;

/// A token's limits and their state.
pub(super) struct LimitCell {
    limits: Arc<Limits>,
    /// [`Limits::counts_authentications`] and [`Limits::has_meters`], asked on every
    /// authentication.
    auto: bool,
    meters: bool,
    shared: Mutex<Usage>,
    locals: ThreadLocal<Local>,
}

impl std::fmt::Debug for LimitCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitCell")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One thread's slices of one token's limits, on cache lines of its own.
#[repr(align(128))]
struct Local {
    credits: Slice,
    rates: Box<[Slice]>,
    /// The definitions, this thread's own copy (read on every charge: no cache line another
    /// thread writes).
    defs: Limits,
    /// Each rate limit's slot length in nanoseconds, computed once.
    slot_ns: Box<[i64]>,
}

/// A slice of one limit's budget.
struct Slice {
    /// What is left of it. Its thread takes from it; another takes it all back.
    left: AtomicU64,
    /// Credits: the refill period it came from (the balance's `refilled_at`, Unix seconds).
    /// A rate limit: the window slot it was counted in.
    tag: AtomicI64,
    /// Until when it may be spent (Unix nanoseconds, exclusive): credits' next refill, the
    /// slot's end.
    until: AtomicI64,
    /// What the shared state had left once it was taken.
    seen: AtomicU64,
}

impl Default for Slice {
    fn default() -> Self {
        Self {
            left: AtomicU64::new(0),
            tag: AtomicI64::new(0),
            until: AtomicI64::new(i64::MIN),
            seen: AtomicU64::new(0),
        }
    }
}

impl Slice {
    /// Takes `cost` from the slice if it is valid at `now_ns` and holds that much; returns
    /// what is left of it then.
    #[inline]
    fn take(&self, cost: u64, now_ns: i64) -> Option<u64> {
        if now_ns >= self.until.load(Ordering::Relaxed) {
            return None;
        }
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| l.checked_sub(cost))
            .ok()
            .map(|before| before - cost)
    }

    /// Puts back what [`Slice::take`] took (the charge failed on another limit).
    fn put_back(&self, cost: u64) {
        self.left.fetch_add(cost, Ordering::AcqRel);
    }

    /// Makes it `n` more until `until`, from `tag`, the shared state having `seen` left.
    fn set(&self, n: u64, tag: i64, until: i64, seen: u64) {
        self.tag.store(tag, Ordering::Relaxed);
        self.until.store(until, Ordering::Relaxed);
        self.seen.store(seen, Ordering::Relaxed);
        self.left.store(n, Ordering::Release);
    }
}

fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

impl LimitCell {
    /// The cell of `limits` for a record written with `balance` (a restored snapshot's), taking
    /// over `old`'s state where the limits are kept: the same limits keep the same cell
    /// (threads that hold it go on charging the one state), changed ones carry over what
    /// [`Usage::carried_over`] keeps.
    pub(super) fn for_record(
        limits: &Arc<Limits>,
        balance: Option<Balance>,
        old: Option<&Arc<LimitCell>>,
    ) -> Arc<Self> {
        if let Some(old) = old {
            if old.limits == *limits {
                return Arc::clone(old);
            }
            let usage = Usage::carried_over(limits, &old.limits, &old.settled());
            return Arc::new(Self::with(limits, usage));
        }
        let mut usage = Usage::of(limits);
        if let (Some(b), Some(_)) = (balance, &limits.credits) {
            usage.credits = Some((b.remaining, b.refilled_at));
        }
        Arc::new(Self::with(limits, usage))
    }

    fn with(limits: &Arc<Limits>, usage: Usage) -> Self {
        Self {
            limits: Arc::clone(limits),
            auto: limits.counts_authentications(),
            meters: limits.has_meters(),
            shared: Mutex::new(usage),
            locals: ThreadLocal::new(),
        }
    }

    /// Its definitions.
    pub(super) fn definitions(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// The credit balance: what the shared state holds and every thread's unspent slice of
    /// the same refill period.
    pub(super) fn balance(&self) -> Option<Balance> {
        let u = self.lock();
        let (remaining, at) = u.credits?;
        let held: u64 = self
            .locals
            .iter()
            .filter(|l| l.credits.tag.load(Ordering::Relaxed) == at.unix_timestamp())
            .map(|l| l.credits.left.load(Ordering::Acquire))
            .sum();
        Some(Balance::new(remaining.saturating_add(held), at))
    }

    /// The shared state with every slice taken back.
    fn settled(&self) -> MutexGuard<'_, Usage> {
        let mut u = self.lock();
        for l in self.locals.iter() {
            give_back(l, &mut u);
        }
        u
    }

    /// The shared state. Nothing panics while it is held, so a poisoned lock is simply taken
    /// over.
    fn lock(&self) -> MutexGuard<'_, Usage> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The charge from this thread's slices alone, all or nothing; `None` when they do not
    /// cover it.
    #[inline]
    fn charge_slices(
        &self,
        local: &Local,
        charge: &Charge<'_>,
        now_ns: i64,
    ) -> Option<Vec<Remaining>> {
        let cost = charge.cost();
        let defs = &local.defs;
        let credits = defs.credits.as_ref().filter(|c| c.counts.counts(charge));
        let credits_left = match credits {
            Some(_) => Some(local.credits.take(cost, now_ns)?),
            None => None,
        };
        let counted = usize::from(credits.is_some())
            + defs
                .rates
                .iter()
                .filter(|r| r.counts.counts(charge))
                .count();
        let mut out = Vec::with_capacity(counted);
        if let Some(left) = credits_left {
            let until = local.credits.until.load(Ordering::Relaxed);
            out.push(Remaining::Credits {
                remaining: local
                    .credits
                    .seen
                    .load(Ordering::Relaxed)
                    .saturating_add(left),
                refills_at: (until != i64::MAX)
                    .then(|| OffsetDateTime::from_unix_timestamp_nanos(i128::from(until)).ok())
                    .flatten(),
            });
        }
        for (i, ((r, s), slot_ns)) in defs
            .rates
            .iter()
            .zip(local.rates.iter())
            .zip(local.slot_ns.iter())
            .enumerate()
        {
            if !r.counts.counts(charge) {
                continue;
            }
            let Some(left) = s.take(cost, now_ns) else {
                // Put back what this charge took from the slices before this one.
                if credits.is_some() {
                    local.credits.put_back(cost);
                }
                for (r, s) in defs.rates.iter().zip(local.rates.iter()).take(i) {
                    if r.counts.counts(charge) {
                        s.put_back(cost);
                    }
                }
                return None;
            };
            out.push(Remaining::Rate {
                name: r.name,
                limit: r.limit,
                window: r.window,
                remaining: s.seen.load(Ordering::Relaxed).saturating_add(left),
                resets_in: leaves_in(s.tag.load(Ordering::Relaxed), now_ns, *slot_ns),
            });
        }
        Some(out)
    }

    /// The charge decided on the shared state (this thread's slices given back first, every
    /// thread's before a refusal), then new slices for this thread.
    #[cold]
    fn charge_shared(
        &self,
        local: &Local,
        charge: Charge<'_>,
        now: OffsetDateTime,
    ) -> Result<Vec<Remaining>, LimitRefusal> {
        let mut u = self.lock();
        give_back(local, &mut u);
        let decided = match decide(&self.limits, &mut u, charge, now) {
            Err(_) => {
                for l in self.locals.iter() {
                    give_back(l, &mut u);
                }
                decide(&self.limits, &mut u, charge, now)
            }
            ok => ok,
        };
        if decided.is_ok() {
            self.take_slices(local, &mut u, &charge, now);
        }
        decided
    }

    /// Takes this thread a slice of each limit `charge` counts.
    fn take_slices(&self, local: &Local, u: &mut Usage, charge: &Charge<'_>, now: OffsetDateTime) {
        let limits = &self.limits;
        if let (Some(c), Some((remaining, at))) = (
            limits.credits.as_ref().filter(|c| c.counts.counts(charge)),
            u.credits.as_mut(),
        ) {
            let n = *remaining / SLICE_SHARE;
            if n > 0 {
                *remaining -= n;
                let until = c
                    .refill
                    .and_then(|r| r.next_after(*at, now))
                    .map_or(i64::MAX, nanos);
                local.credits.set(n, at.unix_timestamp(), until, *remaining);
            }
        }
        for ((r, w), s) in limits
            .rates
            .iter()
            .zip(u.windows.iter_mut())
            .zip(local.rates.iter())
        {
            if !r.counts.counts(charge) {
                continue;
            }
            let left = w.left(r.limit);
            let n = left / SLICE_SHARE;
            if n > 0 {
                w.reserve(n);
                let slot = w.newest();
                let until = slot.saturating_add(1).saturating_mul(r.slot_nanos());
                s.set(n, slot, until, left - n);
            }
        }
    }
}

/// Takes back what is left of `local`'s slices into the shared state `u`; the slices are no
/// longer valid (the next charge of their thread is decided on the shared state).
fn give_back(local: &Local, u: &mut Usage) {
    local.credits.until.store(i64::MIN, Ordering::Relaxed);
    let n = local.credits.left.swap(0, Ordering::AcqRel);
    if n > 0
        && let Some((remaining, at)) = u.credits.as_mut()
        && local.credits.tag.load(Ordering::Relaxed) == at.unix_timestamp()
    {
        *remaining = remaining.saturating_add(n);
    }
    for (s, w) in local.rates.iter().zip(u.windows.iter_mut()) {
        s.until.store(i64::MIN, Ordering::Relaxed);
        let n = s.left.swap(0, Ordering::AcqRel);
        if n > 0 {
            w.give_back(s.tag.load(Ordering::Relaxed), n);
        }
    }
}

impl LimitState for LimitCell {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn counts_authentications(&self) -> bool {
        self.auto
    }

    fn has_meters(&self) -> bool {
        self.meters
    }

    fn charge(
        &self,
        charge: Charge<'_>,
        now: OffsetDateTime,
    ) -> Result<Result<Vec<Remaining>, LimitRefusal>, StoreError> {
        let local = self.locals.get_or(|| Local {
            credits: Slice::default(),
            rates: self.limits.rates.iter().map(|_| Slice::default()).collect(),
            defs: Limits::clone(&self.limits),
            slot_ns: self.limits.rates.iter().map(|r| r.slot_nanos()).collect(),
        });
        if let Some(r) = self.charge_slices(local, &charge, nanos(now)) {
            return Ok(Ok(r));
        }
        Ok(self.charge_shared(local, charge, now))
    }
}
