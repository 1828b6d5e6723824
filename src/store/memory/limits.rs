//! The state of a token's limits in a [`MemoryStore`](super::MemoryStore): exact, in memory.
//!
//! One cell per limited token, shared by the store's record and every thread's copy of it:
//! its definitions and its state ([`Usage`]) under a mutex, charged with the pure rule
//! ([`decide`]). A charge is one short critical section, so the store never admits more than
//! a limit allows; threads charging one token take turns on its mutex (tokens without limits
//! have no cell and never lock one).

use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::limits::{Balance, Charge, LimitRefusal, Limits, Remaining, Usage, decide};
use crate::store::LimitState;

/// A token's limits and their state.
#[derive(Debug)]
pub(super) struct LimitCell {
    limits: Arc<Limits>,
    usage: Mutex<Usage>,
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
            let usage = Usage::carried_over(limits, &old.limits, &old.lock());
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
            usage: Mutex::new(usage),
        }
    }

    /// Its definitions.
    pub(super) fn definitions(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// The credit balance as of the last charge.
    pub(super) fn balance(&self) -> Option<Balance> {
        self.lock().balance()
    }

    /// The state. Nothing panics while it is held, so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LimitState for LimitCell {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn charge(
        &self,
        charge: Charge<'_>,
        now: OffsetDateTime,
    ) -> Result<Result<Vec<Remaining>, LimitRefusal>, StoreError> {
        Ok(decide(&self.limits, &mut self.lock(), charge, now))
    }
}
