//! Durations on the command line: `30d`, `12h`, `90m`, `45s`, `2w`, sums such as `1d12h`, and
//! `0`. Bounded: nothing longer than [`MAX_DAYS`] days is read (a longer one is a typo), and
//! every problem is a typed error that says how to write one.

use std::fmt;
use std::str::FromStr;

use api_tokens::time::Duration;

/// The longest duration accepted, in days: a century. Beyond it a number is a typo, and the
/// library's own limits (lifetime, grace) are far shorter.
pub const MAX_DAYS: u64 = 36_600;

const MAX_SECONDS: u64 = MAX_DAYS * 86_400;

/// A duration read from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(Duration);

impl Span {
    /// The duration.
    pub fn duration(self) -> Duration {
        self.0
    }
}

/// Why text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    /// Nothing was given.
    #[error("a duration is empty: {HOW}")]
    Empty,
    /// A number without a unit, other than `0`.
    #[error("\"{0}\" has no unit: {HOW}")]
    MissingUnit(String),
    /// A unit without a number before it.
    #[error("\"{0}\" has a unit without a number before it: {HOW}")]
    MissingNumber(String),
    /// A character that is neither a digit nor a unit.
    #[error("\"{text}\": '{found}' is not a unit: {HOW}")]
    UnknownUnit {
        /// The text.
        text: String,
        /// The character found.
        found: char,
    },
    /// Longer than [`MAX_DAYS`].
    #[error("\"{0}\" is longer than the longest duration accepted ({MAX_DAYS} days)")]
    TooLong(String),
}

const HOW: &str = "write a number and a unit (w, d, h, m or s), as in 30d, 12h, 90m or 1d12h";

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(text: &str) -> Result<Self, SpanError> {
        if text.is_empty() {
            return Err(SpanError::Empty);
        }
        if text == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let too_long = || SpanError::TooLong(text.to_owned());
        let mut total: u64 = 0;
        let mut number: Option<u64> = None;
        for c in text.chars() {
            if let Some(d) = c.to_digit(10) {
                let n = number
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or_else(too_long)?;
                number = Some(n);
                continue;
            }
            let unit: u64 = match c {
                'w' => 7 * 86_400,
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                found => {
                    return Err(SpanError::UnknownUnit {
                        text: text.to_owned(),
                        found,
                    });
                }
            };
            let n = number
                .take()
                .ok_or_else(|| SpanError::MissingNumber(text.to_owned()))?;
            total = n
                .checked_mul(unit)
                .and_then(|s| total.checked_add(s))
                .filter(|&s| s <= MAX_SECONDS)
                .ok_or_else(too_long)?;
        }
        if number.is_some() {
            return Err(SpanError::MissingUnit(text.to_owned()));
        }
        // At most MAX_SECONDS, so it fits.
        let secs = i64::try_from(total).map_err(|_| too_long())?;
        Ok(Self(Duration::seconds(secs)))
    }
}

impl fmt::Display for Span {
    /// The largest units first: `1d12h`, `90s` as `1m30s`, `0` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.0.whole_seconds();
        if secs == 0 {
            return f.write_str("0");
        }
        for (unit, size) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_unit_and_sums() {
        for (text, secs) in [
            ("0", 0),
            ("45s", 45),
            ("90m", 5_400),
            ("12h", 43_200),
            ("30d", 2_592_000),
            ("2w", 1_209_600),
            ("1d12h", 129_600),
            ("1h30m15s", 5_415),
            ("36600d", 36_600 * 86_400),
        ] {
            let span: Span = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(span.duration().whole_seconds(), secs, "{text}");
        }
    }

    #[test]
    fn refuses_with_a_typed_error_that_says_how() {
        assert_eq!("".parse::<Span>(), Err(SpanError::Empty));
        assert_eq!(
            "30".parse::<Span>(),
            Err(SpanError::MissingUnit("30".into()))
        );
        assert_eq!(
            "d".parse::<Span>(),
            Err(SpanError::MissingNumber("d".into()))
        );
        assert_eq!(
            "3x".parse::<Span>(),
            Err(SpanError::UnknownUnit {
                text: "3x".into(),
                found: 'x'
            })
        );
        assert!(matches!(
            "-3d".parse::<Span>(),
            Err(SpanError::UnknownUnit { found: '-', .. })
        ));
        assert!(matches!(
            "3 d".parse::<Span>(),
            Err(SpanError::UnknownUnit { found: ' ', .. })
        ));
        // Months are ambiguous: refused, not read as minutes.
        assert!(matches!(
            "3M".parse::<Span>(),
            Err(SpanError::UnknownUnit { found: 'M', .. })
        ));
        let e = "3x".parse::<Span>().unwrap_err().to_string();
        assert!(e.contains("30d"), "{e}");
    }

    #[test]
    fn is_bounded_and_never_overflows() {
        assert_eq!(
            "36601d".parse::<Span>(),
            Err(SpanError::TooLong("36601d".into()))
        );
        assert_eq!(
            "36600d1s".parse::<Span>(),
            Err(SpanError::TooLong("36600d1s".into()))
        );
        let huge = "99999999999999999999999999d";
        assert_eq!(huge.parse::<Span>(), Err(SpanError::TooLong(huge.into())));
        let many = "18446744073709551615s";
        assert_eq!(many.parse::<Span>(), Err(SpanError::TooLong(many.into())));
    }

    #[test]
    fn display_reads_back() {
        for text in ["0", "45s", "1m30s", "1d12h", "30d", "1d1h1m1s"] {
            let span: Span = text.parse().unwrap();
            assert_eq!(span.to_string().parse::<Span>().unwrap(), span, "{text}");
        }
        assert_eq!("2w".parse::<Span>().unwrap().to_string(), "14d");
        assert_eq!("90s".parse::<Span>().unwrap().to_string(), "1m30s");
    }
}
