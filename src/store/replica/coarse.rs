//! The replica's clocks for its staleness bound: the precise monotonic clock, and the kernel's
//! coarse one for the common case, so that authentication reads the precise clock only when
//! the deadline is near.
//!
//! `CLOCK_MONOTONIC_COARSE` is the monotonic clock as of the kernel's last timer tick, read
//! from the vDSO without touching the hardware clock: about 6 ns here, against 37 ns for
//! `CLOCK_MONOTONIC` (`Instant::now`). It is never ahead of the precise clock and normally
//! behind it by less than one tick (`clock_getres`: 4 ms at `HZ=250`). The replica keeps, beside
//! its deadline, a *fast-path limit* a margin before it (half the bound, and at least four
//! ticks). While the coarse clock shows less than that limit, the copy is current: the real
//! instant is then before the deadline unless the coarse clock lags by more than the margin
//! (2.5 s at the default bound; that takes the kernel's timekeeping to stall that long). From
//! the limit on, every authentication reads the precise clock and is refused from the deadline
//! exactly, as before. With the default heartbeat (a fifth of the bound) a healthy replica
//! never leaves the fast path. Elsewhere than Linux the precise clock is always read.

#[cfg(not(target_os = "linux"))]
use std::time::Instant;

/// The replica's two readings of one monotonic clock, in nanoseconds (never 0: the replica's
/// "never").
pub(super) struct Clocks {
    /// Most the coarse reading may lag before the fast path stops being trusted: zero when
    /// there is no coarse clock.
    tick: u64,
    #[cfg(not(target_os = "linux"))]
    base: Instant,
}

#[cfg(target_os = "linux")]
fn nanos(t: rustix::time::Timespec) -> u64 {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let ns = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(ns).max(1)
}

impl Clocks {
    pub(super) fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{ClockId, clock_getres};
            // A resolution the kernel cannot report is taken as 10 ms, the tick at the lowest
            // common HZ (100).
            let tick = match nanos(clock_getres(ClockId::MonotonicCoarse)) {
                1 => 10_000_000,
                t => t,
            };
            Self { tick }
        }
        #[cfg(not(target_os = "linux"))]
        {
            Self {
                tick: 0,
                base: Instant::now(),
            }
        }
    }

    /// The precise monotonic clock.
    pub(super) fn now(&self) -> u64 {
        #[cfg(target_os = "linux")]
        {
            nanos(rustix::time::clock_gettime(
                rustix::time::ClockId::Monotonic,
            ))
        }
        #[cfg(not(target_os = "linux"))]
        {
            u64::try_from(self.base.elapsed().as_nanos())
                .unwrap_or(u64::MAX)
                .max(1)
        }
    }

    /// The same clock as of the kernel's last tick (never ahead of [`Clocks::now`]); `None`
    /// where there is none.
    pub(super) fn coarse(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            Some(nanos(rustix::time::clock_gettime(
                rustix::time::ClockId::MonotonicCoarse,
            )))
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// How far before a deadline of `bound` the fast path stops: half the bound, at least
    /// four ticks; the whole bound (no fast path) without a coarse clock.
    pub(super) fn margin(&self, bound: u64) -> u64 {
        if self.tick == 0 {
            return bound;
        }
        (bound / 2).max(self.tick.saturating_mul(4))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// What the fast path rests on: the coarse reading is never ahead of the precise clock,
    /// and behind it by far less than the margin (here: less than the smallest margin, four
    /// ticks, even on a loaded machine).
    #[test]
    fn coarse_time_is_never_ahead_and_lags_by_less_than_the_margin() {
        let c = Clocks::new();
        assert!(c.tick > 0 && c.tick <= 10_000_000, "tick {}", c.tick);
        let margin = c.margin(10_000_000);
        assert!(margin >= 4 * c.tick);
        for _ in 0..100_000 {
            let before = c.now();
            let coarse = c.coarse().unwrap();
            let after = c.now();
            assert!(coarse <= after, "coarse {coarse} ahead of {after}");
            assert!(
                before < coarse + margin,
                "coarse {coarse} far behind {before}"
            );
        }
        assert_eq!(c.margin(10_000_000_000), 5_000_000_000);
    }
}
