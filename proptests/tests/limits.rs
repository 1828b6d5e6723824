//! Usage and rate limits against plain reference models: no window of a rate limit's length,
//! wherever it starts, admits more than the limit; a refusal is justified within one slot of
//! the window; credits refill exactly; costs add up.

use api_tokens::limits::{
    Charge, Credits, LimitName, LimitRefusal, Limits, RateLimit, Refill, RefillEvery, Remaining,
    Usage, WINDOW_SLOTS, decide,
};
use proptest::prelude::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn start() -> OffsetDateTime {
    datetime!(2026-03-01 0:00 UTC)
}

/// A run of charges: each a gap in milliseconds since the one before and a cost.
fn charges() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec(
        (
            prop_oneof![0u64..5, 0u64..200, 0u64..5_000, 0u64..120_000],
            prop_oneof![Just(1u64), 0u64..4, 0u64..40],
        ),
        1..160,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn no_window_admits_more_than_the_limit(
        limit in 1u64..30,
        window_ms in prop_oneof![1_000i64..5_000, 1_000i64..120_000],
        run in charges(),
    ) {
        let window = Duration::milliseconds(window_ms);
        let l = Limits::none().rate(
            RateLimit::new(LimitName::new("r").unwrap(), limit, window)
                .unwrap()
                .on_meter(LimitName::new("m").unwrap()),
        );
        let mut usage = Usage::of(&l);
        let mut t = start();
        let mut admitted: Vec<(OffsetDateTime, u64)> = Vec::new();
        let slot = Duration::nanoseconds(
            (window.whole_nanoseconds() / WINDOW_SLOTS as i128) as i64,
        );
        for (gap, cost) in run {
            t += Duration::milliseconds(gap as i64);
            let in_window = |admitted: &[(OffsetDateTime, u64)], from: OffsetDateTime| -> u64 {
                admitted.iter().filter(|(at, _)| *at > from && *at <= t).map(|(_, c)| c).sum()
            };
            match decide(&l, &mut usage, Charge::Spend { meter: "m", cost }, t) {
                Ok(rem) => {
                    admitted.push((t, cost));
                    let in_window = |from| in_window(&admitted, from);
                    // The window ending now holds at most the limit ...
                    prop_assert!(in_window(t - window) <= limit, "over the limit at {t}");
                    // ... and what remains is what the counted span leaves.
                    let Remaining::Rate { remaining, .. } = &rem[0] else { unreachable!() };
                    prop_assert!(*remaining <= limit - in_window(t - window));
                    prop_assert!(*remaining + in_window(t - window - slot) >= limit);
                }
                Err(LimitRefusal::RateLimited { retry_after, .. }) => {
                    // Refused only if the window, widened by at most one slot, is too full.
                    prop_assert!(in_window(&admitted, t - window - slot) + cost > limit,
                        "refused at {t} with room in the window and the slot before it");
                    prop_assert!(retry_after <= window + slot);
                }
                Err(e) => prop_assert!(false, "{e:?}"),
            }
        }
        // Any window of the limit's length, wherever it starts, holds at most the limit: it is
        // enough to check those ending at an admitted instant.
        for (end, _) in &admitted {
            let sum: u64 = admitted
                .iter()
                .filter(|(at, _)| *at > *end - window && at <= end)
                .map(|(_, c)| c)
                .sum();
            prop_assert!(sum <= limit);
        }
    }

    #[test]
    fn credits_spend_exactly_and_refill_exactly(
        balance in 0u64..50,
        amount in 1u64..50,
        hours in 1i64..48,
        run in charges(),
    ) {
        let refill = Refill::new(amount, RefillEvery::Interval(Duration::hours(hours))).unwrap();
        let l = Limits::none().credits(Credits::new(balance, start()).unwrap().refill(refill));
        let mut usage = Usage::of(&l);
        // The reference: the balance, set to `amount` at every boundary start + k·hours.
        let (mut left, mut period) = (balance, 0i64);
        let mut t = start();
        for (gap, cost) in run {
            t += Duration::milliseconds(gap as i64 * 500);
            let p = (t - start()).whole_hours() / hours;
            if p > period {
                left = amount;
                period = p;
            }
            match decide(&l, &mut usage, Charge::Authentication, t) {
                Ok(rem) => {
                    prop_assert!(left >= 1);
                    left -= 1;
                    prop_assert_eq!(&rem, &vec![Remaining::Credits {
                        remaining: left,
                        refills_at: Some(start() + Duration::hours(hours * (period + 1))),
                    }]);
                }
                Err(LimitRefusal::UsageExceeded { remaining, .. }) => {
                    prop_assert_eq!(remaining, left);
                    prop_assert_eq!(left, 0);
                }
                Err(e) => prop_assert!(false, "{e:?}"),
            }
            let _ = cost;
        }
    }

    #[test]
    fn costs_add_up(costs in prop::collection::vec(0u64..100, 1..50), balance in 0u64..2_000) {
        let t = start();
        let l = Limits::none().credits(
            Credits::new(balance, t).unwrap().on_meter(LimitName::new("m").unwrap()),
        );
        let mut usage = Usage::of(&l);
        let mut spent = 0;
        for cost in costs {
            match decide(&l, &mut usage, Charge::Spend { meter: "m", cost }, t) {
                Ok(_) => spent += cost,
                Err(LimitRefusal::UsageExceeded { remaining, cost: asked, .. }) => {
                    prop_assert!(remaining < asked);
                }
                Err(e) => prop_assert!(false, "{e:?}"),
            }
            prop_assert_eq!(usage.credits.map(|(r, _)| r), Some(balance - spent));
        }
    }
}
