//! Usage limits and rate limits: what a token (or every token of an owner) may spend, and the
//! pure rules that decide a spend at an explicit instant.
//!
//! * **Credits** ([`Credits`]): a balance of remaining uses, optionally [refilled](Refill) to a
//!   fixed amount every day, month or interval. A spend the balance cannot cover is refused
//!   ([`LimitRefusal::UsageExceeded`]); nothing is ever overspent.
//! * **Rate limits** ([`RateLimit`]): at most `limit` per `window` (one second to thirty days),
//!   up to [`MAX_RATE_LIMITS`] named ones. **No window of that length, wherever it starts,
//!   ever admits more than the limit**: there is no burst at a window's edge. A refusal says
//!   when to retry ([`LimitRefusal::RateLimited`]).
//! * Each limit [counts](Counts) either every authentication of the token (cost 1) or only the
//!   spends the host makes with a cost on a named meter (an LLM's tokens, bytes, rows).
//!
//! # The sliding window
//! A fixed-window counter admits twice its limit around a window's edge, and a token bucket
//! (GCRA) admits a full burst and then its refill within one window length: both can exceed
//! "`limit` per `window`" over some window. Here each window is cut into
//! [`WINDOW_SLOTS`] slots; a window's state is a count per slot ([`Window`]), and a spend is
//! admitted only if the spends counted in every slot that overlaps the last window — the slot
//! the window began in included, whole — plus this one stay within the limit. Any window of
//! the limit's length ending at an admitted spend lies within what that spend's check counted,
//! so the bound holds exactly; the price is that a spend may be refused up to one slot
//! (`window / WINDOW_SLOTS`) earlier than an exact log of every instant would refuse it, for
//! [`WINDOW_SLOTS`] + 1 counters a rate limit instead of one entry per spend.
//!
//! # Where the state lives
//! The values here are definitions plus the state a store keeps with them (a credit balance
//! and its last refill; a rate limit's [`Window`]). [`decide`] is pure: it takes the state and
//! `now`, and either changes every limit the charge touches or none (all or nothing).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};

use crate::error::{Field, Problem, ValidationError};

/// Most rate limits one token or one owner may carry.
pub const MAX_RATE_LIMITS: usize = 8;

/// The shortest window a rate limit may have.
pub const MIN_WINDOW: Duration = Duration::SECOND;

/// The longest window a rate limit may have.
pub const MAX_WINDOW: Duration = Duration::days(30);

/// The shortest refill interval of credits.
pub const MIN_REFILL_INTERVAL: Duration = Duration::SECOND;

/// The longest refill interval of credits.
pub const MAX_REFILL_INTERVAL: Duration = Duration::days(366);

/// Most bytes in a [`LimitName`].
pub const MAX_LIMIT_NAME_LEN: usize = 32;

/// The largest count a limit or balance may hold (and a single spend may cost): far beyond any
/// real quota, and small enough that sums never overflow.
pub const MAX_AMOUNT: u64 = 1 << 53;

/// How many slots a rate limit's window is cut into (see the [module docs](self)).
pub const WINDOW_SLOTS: usize = 32;

/// The name of a rate limit or a meter: 1–32 characters `a-z`, `0-9`, `-`, `_` and `.`, starting
/// with a letter (they appear in HTTP headers and in logs as they are).
///
/// Kept inline (no allocation, no reference count): a copy is a copy of 33 bytes, so a grant
/// that reports a limit by name costs no shared write.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitName {
    len: u8,
    bytes: [u8; MAX_LIMIT_NAME_LEN],
}

impl PartialOrd for LimitName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LimitName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl LimitName {
    /// Checks and wraps a name.
    ///
    /// # Errors
    /// [`Field::Limits`] with [`Problem::Empty`], [`Problem::TooLong`],
    /// [`Problem::MustStartWithLetter`] or [`Problem::InvalidCharacter`].
    pub fn new(s: &str) -> Result<Self, ValidationError> {
        let err = |problem| ValidationError::new(Field::Limits, s, problem);
        if s.is_empty() {
            return Err(err(Problem::Empty));
        }
        if s.len() > MAX_LIMIT_NAME_LEN {
            return Err(err(Problem::TooLong {
                max: MAX_LIMIT_NAME_LEN,
            }));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err(Problem::MustStartWithLetter));
        }
        if let Some(ch) = s.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        }) {
            return Err(err(Problem::InvalidCharacter { ch }));
        }
        let mut bytes = [0; MAX_LIMIT_NAME_LEN];
        if let Some(b) = bytes.get_mut(..s.len()) {
            b.copy_from_slice(s.as_bytes());
        }
        Ok(Self {
            len: u8::try_from(s.len()).unwrap_or(0),
            bytes,
        })
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII ever goes in (`new`), so this never falls back.
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl fmt::Display for LimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for LimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LimitName({:?})", self.as_str())
    }
}

impl std::str::FromStr for LimitName {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for LimitName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LimitName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// What a limit counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Counts {
    /// Every successful authentication of the token, at a cost of 1.
    Authentications,
    /// Only what the host spends on this meter, at the cost it names.
    Meter(LimitName),
}

impl Counts {
    /// Whether this limit takes part in `charge`.
    pub(crate) fn counts(&self, charge: &Charge<'_>) -> bool {
        match (self, charge) {
            (Self::Authentications, Charge::Authentication) => true,
            (Self::Meter(m), Charge::Spend { meter, .. }) => m.as_str() == *meter,
            _ => false,
        }
    }
}

/// At most `limit` per `window`, with no burst at a window's edge (see the [module
/// docs](self#the-sliding-window)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimit {
    /// Its name, unique among a token's (or an owner's) rate limits.
    pub name: LimitName,
    /// The most a window may admit (at least 1).
    pub limit: u64,
    /// The window's length (one second to thirty days, whole milliseconds).
    #[serde(with = "millis")]
    pub window: Duration,
    /// What it counts.
    pub counts: Counts,
}

impl RateLimit {
    /// `limit` per `window`, counting every authentication.
    ///
    /// # Errors
    /// [`Field::Limits`]: a limit of 0 or above [`MAX_AMOUNT`] ([`Problem::OutOfRange`]), a
    /// window outside [`MIN_WINDOW`]..=[`MAX_WINDOW`] or not in whole milliseconds.
    pub fn new(name: LimitName, limit: u64, window: Duration) -> Result<Self, ValidationError> {
        let r = Self {
            name,
            limit,
            window,
            counts: Counts::Authentications,
        };
        r.check()?;
        Ok(r)
    }

    /// The same limit, counting only spends on `meter` instead of authentications.
    #[must_use]
    pub fn on_meter(mut self, meter: LimitName) -> Self {
        self.counts = Counts::Meter(meter);
        self
    }

    /// Checks the rule's bounds (for values built field by field or read back).
    ///
    /// # Errors
    /// As [`RateLimit::new`].
    pub fn check(&self) -> Result<(), ValidationError> {
        let err = |value: String| {
            Err(ValidationError::new(
                Field::Limits,
                format!("{}: {value}", self.name),
                Problem::OutOfRange,
            ))
        };
        if self.limit == 0 || self.limit > MAX_AMOUNT {
            return err(format!("limit {}", self.limit));
        }
        if self.window < MIN_WINDOW
            || self.window > MAX_WINDOW
            || self.window.subsec_nanoseconds() % 1_000_000 != 0
        {
            return err(format!("window {}", self.window));
        }
        Ok(())
    }

    /// The length of one slot of the window, in nanoseconds.
    pub(crate) fn slot_nanos(&self) -> i64 {
        let w = i64::try_from(self.window.whole_nanoseconds()).unwrap_or(i64::MAX);
        (w / WINDOW_SLOTS as i64).max(1)
    }
}

/// How often credits are refilled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefillEvery {
    /// At every midnight, UTC.
    Day,
    /// At the first of every month, 00:00 UTC.
    Month,
    /// Every interval, counted from when the credits were set (one second to 366 days, whole
    /// seconds).
    Interval(#[serde(with = "seconds")] Duration),
}

/// A refill: the balance is set to `amount` at each boundary (unused credits do not pile up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Refill {
    /// What the balance is set to (at least 1).
    pub amount: u64,
    /// When.
    pub every: RefillEvery,
}

impl Refill {
    /// Sets the balance to `amount` at each boundary of `every`.
    ///
    /// # Errors
    /// [`Field::Limits`] with [`Problem::OutOfRange`]: an amount of 0 or above [`MAX_AMOUNT`],
    /// an interval outside [`MIN_REFILL_INTERVAL`]..=[`MAX_REFILL_INTERVAL`] or not in whole
    /// seconds.
    pub fn new(amount: u64, every: RefillEvery) -> Result<Self, ValidationError> {
        let r = Self { amount, every };
        r.check()?;
        Ok(r)
    }

    fn check(&self) -> Result<(), ValidationError> {
        let err = |value: String| {
            Err(ValidationError::new(
                Field::Limits,
                value,
                Problem::OutOfRange,
            ))
        };
        if self.amount == 0 || self.amount > MAX_AMOUNT {
            return err(format!("refill amount {}", self.amount));
        }
        if let RefillEvery::Interval(d) = self.every
            && (d < MIN_REFILL_INTERVAL || d > MAX_REFILL_INTERVAL || d.subsec_nanoseconds() != 0)
        {
            return err(format!("refill interval {d}"));
        }
        Ok(())
    }

    /// The last refill boundary at or before `now` that is after `since`, if any.
    fn boundary_since(&self, since: OffsetDateTime, now: OffsetDateTime) -> Option<OffsetDateTime> {
        if now <= since {
            return None;
        }
        let now = now.to_offset(UtcOffset::UTC);
        let b = match self.every {
            RefillEvery::Day => now.replace_time(Time::MIDNIGHT),
            RefillEvery::Month => Date::from_calendar_date(now.year(), now.month(), 1)
                .ok()?
                .with_time(Time::MIDNIGHT)
                .assume_utc(),
            RefillEvery::Interval(d) => {
                let step = d.whole_seconds().max(1);
                let n = (now - since).whole_seconds() / step;
                since.checked_add(Duration::seconds(n.checked_mul(step)?))?
            }
        };
        (b > since).then_some(b)
    }

    /// The first refill boundary after `now` (for a refusal's retry time).
    pub(crate) fn next_after(
        &self,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let now = now.to_offset(UtcOffset::UTC);
        match self.every {
            RefillEvery::Day => now
                .date()
                .next_day()
                .map(|d| d.with_time(Time::MIDNIGHT).assume_utc()),
            RefillEvery::Month => {
                let (y, m) = match now.month() {
                    Month::December => (now.year().checked_add(1)?, Month::January),
                    m => (now.year(), m.next()),
                };
                Date::from_calendar_date(y, m, 1)
                    .ok()
                    .map(|d| d.with_time(Time::MIDNIGHT).assume_utc())
            }
            RefillEvery::Interval(d) => {
                let step = d.whole_seconds().max(1);
                let n = ((now - since).whole_seconds().max(0) / step).checked_add(1)?;
                since.checked_add(Duration::seconds(n.checked_mul(step)?))
            }
        }
    }
}

/// A balance of credits: what remains, how it is refilled, and what it counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Credits {
    /// What remains to spend.
    pub remaining: u64,
    /// The refill, if any.
    pub refill: Option<Refill>,
    /// When the balance was set or last refilled (whole seconds): refills count from here.
    #[serde(with = "time::serde::timestamp")]
    pub refilled_at: OffsetDateTime,
    /// What it counts.
    pub counts: Counts,
}

impl Credits {
    /// A balance of `remaining` set at `now`, without refill, counting every authentication.
    ///
    /// # Errors
    /// [`Field::Limits`] with [`Problem::OutOfRange`] above [`MAX_AMOUNT`].
    pub fn new(remaining: u64, now: OffsetDateTime) -> Result<Self, ValidationError> {
        let c = Self {
            remaining,
            refill: None,
            refilled_at: whole_seconds(now),
            counts: Counts::Authentications,
        };
        c.check()?;
        Ok(c)
    }

    /// The same balance, refilled as `refill` says.
    #[must_use]
    pub fn refill(mut self, refill: Refill) -> Self {
        self.refill = Some(refill);
        self
    }

    /// The same balance, counting only spends on `meter` instead of authentications.
    #[must_use]
    pub fn on_meter(mut self, meter: LimitName) -> Self {
        self.counts = Counts::Meter(meter);
        self
    }

    /// Checks the balance's bounds.
    ///
    /// # Errors
    /// As [`Credits::new`] and [`Refill::new`].
    pub fn check(&self) -> Result<(), ValidationError> {
        if self.remaining > MAX_AMOUNT {
            return Err(ValidationError::new(
                Field::Limits,
                format!("credits {}", self.remaining),
                Problem::OutOfRange,
            ));
        }
        if let Some(r) = &self.refill {
            r.check()?;
        }
        Ok(())
    }

    /// The balance as of `now`: refilled if a boundary passed since the last refill.
    fn refreshed(&self, now: OffsetDateTime) -> (u64, OffsetDateTime) {
        match self
            .refill
            .and_then(|r| r.boundary_since(self.refilled_at, now).map(|b| (r, b)))
        {
            Some((r, at)) => (r.amount, at),
            None => (self.remaining, self.refilled_at),
        }
    }
}

/// The limits of a token, or of every token of an owner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// A balance of credits.
    pub credits: Option<Credits>,
    /// Rate limits (at most [`MAX_RATE_LIMITS`], names unique).
    pub rates: Vec<RateLimit>,
}

impl Limits {
    /// No limits.
    pub fn none() -> Self {
        Self::default()
    }

    /// These limits with `credits`.
    #[must_use]
    pub fn credits(mut self, credits: Credits) -> Self {
        self.credits = Some(credits);
        self
    }

    /// These limits with one more rate limit.
    #[must_use]
    pub fn rate(mut self, rate: RateLimit) -> Self {
        self.rates.push(rate);
        self
    }

    /// Whether there is no limit at all.
    pub fn is_empty(&self) -> bool {
        self.credits.is_none() && self.rates.is_empty()
    }

    /// Checks every bound: each limit's, at most [`MAX_RATE_LIMITS`] rate limits, names unique.
    ///
    /// # Errors
    /// [`Field::Limits`]: [`Problem::TooMany`], [`Problem::Duplicate`], or a limit's own.
    pub fn check(&self) -> Result<(), ValidationError> {
        if self.rates.len() > MAX_RATE_LIMITS {
            return Err(ValidationError::new(
                Field::Limits,
                format!("{} rate limits", self.rates.len()),
                Problem::TooMany {
                    max: MAX_RATE_LIMITS,
                },
            ));
        }
        for (i, r) in self.rates.iter().enumerate() {
            r.check()?;
            if self.rates.iter().take(i).any(|o| o.name == r.name) {
                return Err(ValidationError::new(
                    Field::Limits,
                    r.name,
                    Problem::Duplicate,
                ));
            }
        }
        if let Some(c) = &self.credits {
            c.check()?;
        }
        Ok(())
    }

    /// Whether any limit counts authentications (applied automatically).
    pub fn counts_authentications(&self) -> bool {
        self.credits
            .as_ref()
            .is_some_and(|c| c.counts == Counts::Authentications)
            || self
                .rates
                .iter()
                .any(|r| r.counts == Counts::Authentications)
    }

    /// Whether any limit counts a meter (applied when the host spends on it).
    pub fn has_meters(&self) -> bool {
        self.credits
            .as_ref()
            .is_some_and(|c| matches!(c.counts, Counts::Meter(_)))
            || self
                .rates
                .iter()
                .any(|r| matches!(r.counts, Counts::Meter(_)))
    }

    /// A fresh state for these limits (every window empty).
    pub fn fresh_windows(&self) -> Vec<Window> {
        self.rates.iter().map(|_| Window::default()).collect()
    }
}

/// The text form of limits, as stores keep them in a column and the seal of a snapshot
/// covers them: items separated by `; `, each
///
/// * `credits <remaining> at <unix seconds> [refill <amount> per day|month|<n>s] [on <meter>]`
/// * `rate <name> <limit> per <n>ms [on <meter>]`
///
/// and the empty text for no limits. `Display` writes it, `FromStr` reads it back and checks
/// every bound.
///
/// ```
/// use api_tokens::limits::Limits;
/// let text = "credits 1000 at 1767225600 refill 1000 per month on llm.tokens; \
///             rate requests 100 per 60000ms";
/// let limits: Limits = text.parse()?;
/// assert_eq!(limits.rates[0].limit, 100);
/// assert_eq!(limits.to_string().parse::<Limits>()?, limits);
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let on = |f: &mut fmt::Formatter<'_>, c: &Counts| match c {
            Counts::Authentications => Ok(()),
            Counts::Meter(m) => write!(f, " on {m}"),
        };
        if let Some(c) = &self.credits {
            write!(
                f,
                "credits {} at {}",
                c.remaining,
                c.refilled_at.unix_timestamp()
            )?;
            if let Some(r) = &c.refill {
                write!(f, " refill {} per ", r.amount)?;
                match r.every {
                    RefillEvery::Day => f.write_str("day")?,
                    RefillEvery::Month => f.write_str("month")?,
                    RefillEvery::Interval(d) => write!(f, "{}s", d.whole_seconds())?,
                }
            }
            on(f, &c.counts)?;
            sep = "; ";
        }
        for r in &self.rates {
            write!(
                f,
                "{sep}rate {} {} per {}ms",
                r.name,
                r.limit,
                r.window.whole_milliseconds()
            )?;
            on(f, &r.counts)?;
            sep = "; ";
        }
        Ok(())
    }
}

impl std::str::FromStr for Limits {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |item: &str| {
            ValidationError::new(
                Field::Limits,
                item,
                Problem::Syntax {
                    expected: "credits <n> at <unix> [refill <n> per day|month|<n>s] [on <meter>]; \
                       rate <name> <limit> per <n>ms [on <meter>]",
                },
            )
        };
        let mut limits = Limits::none();
        for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            let words: Vec<&str> = item.split_whitespace().collect();
            let num = |w: Option<&&str>| {
                w.and_then(|w| w.parse::<u64>().ok())
                    .ok_or_else(|| bad(item))
            };
            let (rest, counts) = match words
                .len()
                .checked_sub(2)
                .and_then(|i| words.split_at_checked(i))
            {
                Some((head, ["on", meter])) => (head, Counts::Meter(LimitName::new(meter)?)),
                _ => (&words[..], Counts::Authentications),
            };
            match rest {
                ["credits", remaining, "at", at, refill @ ..] => {
                    if limits.credits.is_some() {
                        return Err(ValidationError::new(
                            Field::Limits,
                            item,
                            Problem::Duplicate,
                        ));
                    }
                    let at = at
                        .parse::<i64>()
                        .ok()
                        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                        .ok_or_else(|| bad(item))?;
                    let refill = match refill {
                        [] => None,
                        ["refill", amount, "per", every] => {
                            let every = match *every {
                                "day" => RefillEvery::Day,
                                "month" => RefillEvery::Month,
                                n => RefillEvery::Interval(Duration::seconds(
                                    n.strip_suffix('s')
                                        .and_then(|n| n.parse::<i64>().ok())
                                        .ok_or_else(|| bad(item))?,
                                )),
                            };
                            Some(Refill {
                                amount: num(Some(amount))?,
                                every,
                            })
                        }
                        _ => return Err(bad(item)),
                    };
                    limits.credits = Some(Credits {
                        remaining: num(Some(remaining))?,
                        refill,
                        refilled_at: at,
                        counts,
                    });
                }
                ["rate", name, limit, "per", window] => {
                    let ms = window
                        .strip_suffix("ms")
                        .and_then(|n| n.parse::<i64>().ok())
                        .ok_or_else(|| bad(item))?;
                    limits.rates.push(RateLimit {
                        name: LimitName::new(name)?,
                        limit: num(Some(limit))?,
                        window: Duration::milliseconds(ms),
                        counts,
                    });
                }
                _ => return Err(bad(item)),
            }
        }
        limits.check()?;
        Ok(limits)
    }
}

/// The state of one rate limit: a count per slot of its window, in a ring
/// ([`WINDOW_SLOTS`] + 1 slots: the window's and the one it began in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The slot number (instant / slot length) of the newest slot counted.
    newest: i64,
    counts: [u64; WINDOW_SLOTS + 1],
}

impl Default for Window {
    fn default() -> Self {
        Self {
            newest: i64::MIN,
            counts: [0; WINDOW_SLOTS + 1],
        }
    }
}

const RING: i64 = WINDOW_SLOTS as i64 + 1;

fn ring_index(slot: i64) -> usize {
    usize::try_from(slot.rem_euclid(RING)).unwrap_or(0)
}

impl Window {
    /// The counts as of slot `now`: slots older than the window and the one it began in are
    /// forgotten. Never moves backwards (a clock that steps back counts into the newest slot).
    fn advance(&mut self, now: i64) {
        if now <= self.newest {
            return;
        }
        if self.newest == i64::MIN || now - self.newest >= RING {
            self.counts = [0; WINDOW_SLOTS + 1];
        } else {
            for s in self.newest + 1..=now {
                if let Some(c) = self.counts.get_mut(ring_index(s)) {
                    *c = 0;
                }
            }
        }
        self.newest = now;
    }

    /// Everything counted in the window (its slots and the one it began in).
    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// How much more `limit` admits in this window as it stands.
    pub(crate) fn left(&self, limit: u64) -> u64 {
        limit.saturating_sub(self.total())
    }

    /// The newest slot counted.
    pub(crate) fn newest(&self) -> i64 {
        self.newest
    }

    /// Counts `n` more in the newest slot: admissions granted ahead (a slice of the budget a
    /// thread or a replica spends later, [`Window::give_back`] what it did not).
    pub(crate) fn reserve(&mut self, n: u64) {
        if let Some(c) = self.counts.get_mut(ring_index(self.newest)) {
            *c = c.saturating_add(n);
        }
    }

    /// Uncounts `n` from slot `slot` (reserved there and never spent), if that slot is still
    /// counted.
    pub(crate) fn give_back(&mut self, slot: i64, n: u64) {
        if slot <= self.newest
            && self.newest - slot < RING
            && let Some(c) = self.counts.get_mut(ring_index(slot))
        {
            *c = c.saturating_sub(n);
        }
    }

    /// How long until `cost` more fits under `limit`, from instant `now_ns` (slot length
    /// `slot_ns`): the oldest counted slots leave the window one by one.
    fn wait_for(&self, cost: u64, limit: u64, now_ns: i64, slot_ns: i64) -> Option<Duration> {
        if cost > limit {
            return None;
        }
        let mut over = self.total().saturating_add(cost).saturating_sub(limit);
        let oldest = self.newest.saturating_sub(RING - 1);
        for s in oldest..=self.newest {
            let c = self.counts.get(ring_index(s)).copied().unwrap_or(0);
            if c >= over {
                return Some(leaves_in(s, now_ns, slot_ns));
            }
            over -= c;
        }
        None
    }

    /// What this window has counted (for stores that persist it): the newest slot and the
    /// counts from the oldest to the newest.
    pub fn to_parts(&self) -> (i64, Vec<u64>) {
        if self.newest == i64::MIN {
            return (i64::MIN, vec![0; WINDOW_SLOTS + 1]);
        }
        let oldest = self.newest.saturating_sub(RING - 1);
        let counts = (oldest..=self.newest)
            .map(|s| self.counts.get(ring_index(s)).copied().unwrap_or(0))
            .collect();
        (self.newest, counts)
    }

    /// A window from [`Window::to_parts`]; `None` when the parts are not such a pair.
    pub fn from_parts(newest: i64, counts: &[u64]) -> Option<Self> {
        if counts.len() != WINDOW_SLOTS + 1 || counts.iter().any(|c| *c > MAX_AMOUNT) {
            return None;
        }
        if newest == i64::MIN {
            // A window that never counted anything.
            return counts.iter().all(|c| *c == 0).then(Self::default);
        }
        let mut w = Self {
            newest,
            counts: [0; WINDOW_SLOTS + 1],
        };
        let oldest = newest.checked_sub(RING - 1)?;
        for (s, c) in (oldest..=newest).zip(counts) {
            if let Some(slot) = w.counts.get_mut(ring_index(s)) {
                *slot = *c;
            }
        }
        Some(w)
    }
}

/// What is being charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Charge<'a> {
    /// A successful authentication: every limit that counts authentications, cost 1.
    Authentication,
    /// A spend on `meter` of `cost`: every limit on that meter.
    Spend {
        /// The meter.
        meter: &'a str,
        /// What the spend costs (0 checks without spending).
        cost: u64,
    },
}

impl Charge<'_> {
    pub(crate) fn cost(&self) -> u64 {
        match self {
            Self::Authentication => 1,
            Self::Spend { cost, .. } => *cost,
        }
    }
}

/// Why a charge was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitRefusal {
    /// A rate limit is used up for now.
    #[error("rate limit \"{name}\" ({limit} per {window}) reached; retry in {retry_after}")]
    RateLimited {
        /// Which.
        name: LimitName,
        /// Its limit.
        limit: u64,
        /// Its window.
        window: Duration,
        /// When enough of the window has passed for the charge to fit (for a charge larger
        /// than the limit itself: never, shown as the window).
        retry_after: Duration,
    },
    /// The credits cannot cover the charge.
    #[error("credits exhausted ({remaining} left, {cost} asked)")]
    UsageExceeded {
        /// What remains.
        remaining: u64,
        /// What the charge asked.
        cost: u64,
        /// The next refill, if any.
        refills_at: Option<OffsetDateTime>,
    },
}

impl LimitRefusal {
    /// The stable code: `rate_limited` or `usage_exceeded`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::UsageExceeded { .. } => "usage_exceeded",
        }
    }

    /// How long the client should wait before trying again, when that is known.
    pub fn retry_after(&self, now: OffsetDateTime) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::UsageExceeded { refills_at, .. } => refills_at.map(|t| t - now),
        }
    }
}

/// What remains of one limit after an admitted charge (for a [`Grant`](crate::Grant) and the
/// HTTP `RateLimit` header).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remaining {
    /// A rate limit.
    Rate {
        /// Which.
        name: LimitName,
        /// Its limit.
        limit: u64,
        /// Its window.
        window: Duration,
        /// How much more the window admits now.
        remaining: u64,
        /// When the oldest counted slot leaves the window (the next moment more is admitted).
        resets_in: Duration,
    },
    /// Credits.
    Credits {
        /// What remains.
        remaining: u64,
        /// The next refill, if any.
        refills_at: Option<OffsetDateTime>,
    },
}

/// The state [`decide`] reads and changes: a credit balance's (remaining, last refill) and one
/// [`Window`] per rate limit, in the order of [`Limits::rates`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// The balance and when it was last refilled (from [`Credits`] when the limits were set).
    pub credits: Option<(u64, OffsetDateTime)>,
    /// One window per rate limit.
    pub windows: Vec<Window>,
}

impl Usage {
    /// The state of limits just set: their balance as given, every window empty.
    pub fn of(limits: &Limits) -> Self {
        Self {
            credits: limits
                .credits
                .as_ref()
                .map(|c| (c.remaining, c.refilled_at)),
            windows: limits.fresh_windows(),
        }
    }
}

/// Decides `charge` at `now` against `limits` with state `usage`: every limit that counts the
/// charge must admit it, and then each of them counts it (all or nothing). Returns what
/// remains of each limit charged.
///
/// # Errors
/// The first limit that refuses, with when to retry ([`LimitRefusal`]); `usage` is then
/// unchanged, except that the credits' refill and the windows' slots have moved to `now`.
pub fn decide(
    limits: &Limits,
    usage: &mut Usage,
    charge: Charge<'_>,
    now: OffsetDateTime,
) -> Result<Vec<Remaining>, LimitRefusal> {
    let cost = charge.cost();
    let now_ns = i64::try_from(now.unix_timestamp_nanos()).unwrap_or(i64::MAX);
    if usage.windows.len() != limits.rates.len() {
        usage.windows.resize(limits.rates.len(), Window::default());
    }
    // Check every limit the charge touches first.
    let mut credits_now = None;
    if let Some(c) = limits.credits.as_ref().filter(|c| c.counts.counts(&charge)) {
        let stored = Credits {
            remaining: usage.credits.map_or(c.remaining, |(r, _)| r),
            refilled_at: usage.credits.map_or(c.refilled_at, |(_, at)| at),
            ..c.clone()
        };
        let (remaining, at) = stored.refreshed(now);
        usage.credits = Some((remaining, at));
        if remaining < cost {
            return Err(LimitRefusal::UsageExceeded {
                remaining,
                cost,
                refills_at: c.refill.and_then(|r| r.next_after(at, now)),
            });
        }
        credits_now = Some((remaining, at, c.refill));
    }
    for (r, w) in limits.rates.iter().zip(usage.windows.iter_mut()) {
        if !r.counts.counts(&charge) {
            continue;
        }
        let slot_ns = r.slot_nanos();
        w.advance(now_ns.div_euclid(slot_ns));
        if w.total().saturating_add(cost) > r.limit {
            return Err(LimitRefusal::RateLimited {
                name: r.name,
                limit: r.limit,
                window: r.window,
                retry_after: w
                    .wait_for(cost, r.limit, now_ns, slot_ns)
                    .unwrap_or(r.window),
            });
        }
    }
    // Then count it everywhere.
    let mut out = Vec::new();
    if let Some((remaining, at, refill)) = credits_now {
        let left = remaining - cost;
        usage.credits = Some((left, at));
        out.push(Remaining::Credits {
            remaining: left,
            refills_at: refill.and_then(|r| r.next_after(at, now)),
        });
    }
    for (r, w) in limits.rates.iter().zip(usage.windows.iter_mut()) {
        if !r.counts.counts(&charge) {
            continue;
        }
        if let Some(c) = w.counts.get_mut(ring_index(w.newest)) {
            *c = c.saturating_add(cost);
        }
        out.push(Remaining::Rate {
            name: r.name,
            limit: r.limit,
            window: r.window,
            remaining: r.limit.saturating_sub(w.total()),
            // When everything counted now has left the window: the newest slot leaves last.
            resets_in: leaves_in(w.newest, now_ns, r.slot_nanos()),
        });
    }
    Ok(out)
}

/// A credit balance as a store keeps it: what remains, and when it was last set or refilled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Balance {
    /// What remains to spend.
    pub remaining: u64,
    /// When the balance was set or last refilled (refills count from here).
    #[serde(with = "time::serde::timestamp")]
    pub refilled_at: OffsetDateTime,
}

impl Balance {
    /// A balance of `remaining`, set or refilled at `refilled_at`.
    pub fn new(remaining: u64, refilled_at: OffsetDateTime) -> Self {
        Self {
            remaining,
            refilled_at,
        }
    }

    /// The balance as set by `credits`.
    pub fn of(credits: &Credits) -> Self {
        Self::new(credits.remaining, credits.refilled_at)
    }

    /// The balance as of `now` under `credits`' refill: refilled if a boundary passed.
    #[must_use]
    pub fn as_of(self, credits: &Credits, now: OffsetDateTime) -> Self {
        let stored = Credits {
            remaining: self.remaining,
            refilled_at: self.refilled_at,
            ..credits.clone()
        };
        let (remaining, refilled_at) = stored.refreshed(now);
        Self::new(remaining, refilled_at)
    }
}

impl Usage {
    /// The credit balance of this state, if the limits hold credits.
    pub fn balance(&self) -> Option<Balance> {
        self.credits.map(|(r, at)| Balance::new(r, at))
    }

    /// The state of `limits` when they replace `old` (with state `old_usage`): a rate limit
    /// kept as it was (same name, limit, window and meter) keeps its window, every other
    /// starts empty; the balance is `limits`' own when the credits changed, else the old one.
    pub fn carried_over(limits: &Limits, old: &Limits, old_usage: &Usage) -> Self {
        let windows = limits
            .rates
            .iter()
            .map(|r| {
                old.rates
                    .iter()
                    .position(|o| o == r)
                    .and_then(|i| old_usage.windows.get(i).copied())
                    .unwrap_or_default()
            })
            .collect();
        let credits = match (&limits.credits, &old.credits) {
            (Some(new), Some(was)) if new == was => old_usage.credits,
            (Some(new), _) => Some((new.remaining, new.refilled_at)),
            (None, _) => None,
        };
        Self { credits, windows }
    }
}

/// How long from `now_ns` until slot `slot` leaves the counted window: when slot `slot + RING`
/// begins.
pub(crate) fn leaves_in(slot: i64, now_ns: i64, slot_ns: i64) -> Duration {
    let at = slot.saturating_add(RING).saturating_mul(slot_ns);
    Duration::nanoseconds(at.saturating_sub(now_ns).max(0))
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Durations as whole milliseconds in serde.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::milliseconds(i64::deserialize(d)?))
    }
}

/// Durations as whole seconds in serde.
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.whole_seconds())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::seconds(i64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn name(s: &str) -> LimitName {
        LimitName::new(s).unwrap()
    }

    fn per(limit: u64, window: Duration) -> Limits {
        Limits::none().rate(RateLimit::new(name("requests"), limit, window).unwrap())
    }

    fn auth(l: &Limits, u: &mut Usage, at: OffsetDateTime) -> Result<Vec<Remaining>, LimitRefusal> {
        decide(l, u, Charge::Authentication, at)
    }

    #[test]
    fn names_and_bounds_are_checked() {
        for bad in ["", "Tokens", "1st", "a b", "é", &"a".repeat(33)] {
            assert!(LimitName::new(bad).is_err(), "{bad:?}");
        }
        for good in ["tokens", "llm.tokens", "per-minute_2", &"a".repeat(32)] {
            assert_eq!(LimitName::new(good).unwrap().as_str(), good);
        }
        let n = || name("r");
        assert!(RateLimit::new(n(), 0, Duration::MINUTE).is_err());
        assert!(RateLimit::new(n(), MAX_AMOUNT + 1, Duration::MINUTE).is_err());
        assert!(RateLimit::new(n(), 1, Duration::milliseconds(999)).is_err());
        assert!(RateLimit::new(n(), 1, MAX_WINDOW + Duration::MILLISECOND).is_err());
        assert!(RateLimit::new(n(), 1, Duration::microseconds(1_500_500)).is_err());
        assert!(
            RateLimit::new(n(), 1, MIN_WINDOW).is_ok()
                && RateLimit::new(n(), 1, MAX_WINDOW).is_ok()
        );
        assert!(Refill::new(0, RefillEvery::Day).is_err());
        assert!(Refill::new(1, RefillEvery::Interval(Duration::milliseconds(1500))).is_err());
        assert!(Refill::new(1, RefillEvery::Interval(Duration::days(367))).is_err());
        let too_many = (0..=MAX_RATE_LIMITS).fold(Limits::none(), |l, i| {
            l.rate(RateLimit::new(name(&format!("r{i}")), 1, Duration::MINUTE).unwrap())
        });
        let e = too_many.check().unwrap_err();
        assert_eq!(
            e.problem,
            Problem::TooMany {
                max: MAX_RATE_LIMITS
            }
        );
        let twice = per(1, Duration::MINUTE)
            .rate(RateLimit::new(name("requests"), 2, Duration::HOUR).unwrap());
        assert_eq!(twice.check().unwrap_err().problem, Problem::Duplicate);
    }

    #[test]
    fn a_window_admits_its_limit_then_says_when_to_retry() {
        let l = per(3, Duration::minutes(1));
        let mut u = Usage::of(&l);
        let t = datetime!(2026-01-01 12:00:00 UTC);
        for i in 0..3 {
            let r = auth(&l, &mut u, t + Duration::seconds(i)).unwrap();
            assert!(
                matches!(r[..], [Remaining::Rate { remaining, .. }] if remaining == 2 - i as u64)
            );
        }
        let refused = auth(&l, &mut u, t + Duration::seconds(10)).unwrap_err();
        let LimitRefusal::RateLimited { retry_after, .. } = refused else {
            panic!("{refused:?}")
        };
        // The first spend's slot (slot length 1.875 s) leaves the window a minute and at most
        // one slot after it began.
        let back = t + Duration::seconds(10) + retry_after;
        assert!(
            back > t + Duration::minutes(1)
                && back <= t + Duration::minutes(1) + Duration::milliseconds(1875)
        );
        assert!(auth(&l, &mut u, back - Duration::MILLISECOND).is_err());
        assert!(auth(&l, &mut u, back).is_ok());
    }

    /// A fixed window would admit the limit twice around its edge; this never admits more than
    /// the limit within any span of the window's length.
    #[test]
    fn no_burst_at_a_window_edge() {
        let l = per(10, Duration::minutes(1));
        let mut u = Usage::of(&l);
        let edge = datetime!(2026-01-01 12:01:00 UTC);
        for _ in 0..10 {
            auth(&l, &mut u, edge - Duration::milliseconds(100)).unwrap();
        }
        assert!(auth(&l, &mut u, edge + Duration::milliseconds(100)).is_err());
        assert!(auth(&l, &mut u, edge + Duration::seconds(59)).is_err());
        assert!(auth(&l, &mut u, edge + Duration::seconds(62)).is_ok());
    }

    #[test]
    fn credits_are_spent_exactly_and_refilled_at_each_boundary() {
        let t = datetime!(2026-12-31 22:00:00 UTC);
        let l = Limits::none().credits(
            Credits::new(2, t)
                .unwrap()
                .refill(Refill::new(5, RefillEvery::Day).unwrap()),
        );
        let mut u = Usage::of(&l);
        auth(&l, &mut u, t).unwrap();
        let r = auth(&l, &mut u, t).unwrap();
        assert_eq!(
            r,
            vec![Remaining::Credits {
                remaining: 0,
                refills_at: Some(datetime!(2027-01-01 0:00 UTC))
            }]
        );
        assert_eq!(
            auth(&l, &mut u, t + Duration::HOUR).unwrap_err(),
            LimitRefusal::UsageExceeded {
                remaining: 0,
                cost: 1,
                refills_at: Some(datetime!(2027-01-01 0:00 UTC))
            }
        );
        // Midnight: set to 5, not added to what was left.
        let r = auth(&l, &mut u, datetime!(2027-01-01 0:00 UTC)).unwrap();
        assert!(matches!(r[..], [Remaining::Credits { remaining: 4, .. }]));
        // Monthly, across a year's end.
        let m = Limits::none().credits(
            Credits::new(0, datetime!(2026-12-15 8:00 UTC))
                .unwrap()
                .refill(Refill::new(100, RefillEvery::Month).unwrap()),
        );
        let mut mu = Usage::of(&m);
        let e = auth(&m, &mut mu, datetime!(2026-12-31 23:59:59 UTC)).unwrap_err();
        assert_eq!(
            e.retry_after(datetime!(2026-12-31 23:59:59 UTC)),
            Some(Duration::SECOND)
        );
        assert!(auth(&m, &mut mu, datetime!(2027-01-01 0:00 UTC)).is_ok());
        // An interval counts from when the credits were set, however many intervals passed.
        let i = Limits::none().credits(
            Credits::new(1, t)
                .unwrap()
                .refill(Refill::new(3, RefillEvery::Interval(Duration::hours(5))).unwrap()),
        );
        let mut iu = Usage::of(&i);
        auth(&i, &mut iu, t).unwrap();
        assert!(auth(&i, &mut iu, t + Duration::hours(5) - Duration::SECOND).is_err());
        let r = auth(&i, &mut iu, t + Duration::hours(11)).unwrap();
        assert_eq!(
            r,
            vec![Remaining::Credits {
                remaining: 2,
                refills_at: Some(t + Duration::hours(15))
            }]
        );
    }

    #[test]
    fn a_charge_is_all_or_nothing_and_meters_are_apart() {
        let t = datetime!(2026-01-01 12:00 UTC);
        let tokens = name("tokens");
        let l = Limits::none()
            .credits(Credits::new(1_000, t).unwrap().on_meter(tokens))
            .rate(
                RateLimit::new(name("tokens-per-minute"), 500, Duration::MINUTE)
                    .unwrap()
                    .on_meter(tokens),
            )
            .rate(RateLimit::new(name("requests"), 2, Duration::MINUTE).unwrap());
        let mut u = Usage::of(&l);
        let spend = |u: &mut Usage, cost| {
            decide(
                &l,
                u,
                Charge::Spend {
                    meter: "tokens",
                    cost,
                },
                t,
            )
        };
        // An authentication touches only the limit that counts authentications.
        assert_eq!(auth(&l, &mut u, t).unwrap().len(), 1);
        assert_eq!(spend(&mut u, 350).unwrap().len(), 2);
        // 350 + 200 is over the per-minute limit: refused, and the credits not touched.
        assert!(matches!(
            spend(&mut u, 200),
            Err(LimitRefusal::RateLimited { .. })
        ));
        assert_eq!(u.credits, Some((650, t)));
        // Another meter: nothing counts it.
        assert_eq!(
            decide(
                &l,
                &mut u,
                Charge::Spend {
                    meter: "bytes",
                    cost: 9
                },
                t
            ),
            Ok(vec![])
        );
        // A cost of zero checks without spending.
        assert!(spend(&mut u, 0).is_ok());
        assert_eq!(u.credits, Some((650, t)));
    }

    #[test]
    fn a_window_round_trips_through_its_parts() {
        let l = per(100, Duration::seconds(32));
        let mut u = Usage::of(&l);
        let t = datetime!(2026-01-01 12:00 UTC);
        for i in 0..50 {
            auth(&l, &mut u, t + Duration::milliseconds(i * 700)).unwrap();
        }
        let (newest, counts) = u.windows[0].to_parts();
        assert_eq!(Window::from_parts(newest, &counts), Some(u.windows[0]));
        assert_eq!(Window::from_parts(newest, &counts[1..]), None);
        let (newest, counts) = Window::default().to_parts();
        assert_eq!(Window::from_parts(newest, &counts), Some(Window::default()));
    }
}
