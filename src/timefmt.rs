//! RFC 3339 for messages, the token view and accepted input; the crate's one place that writes
//! and reads times as text.
//!
//! Written here rather than taken from `time`'s `formatting` and `parsing` features: those
//! double the time `time` takes to compile, and it sits on the path of every first build
//! (`cargo run --example quickstart`). The values are built and checked by `time`'s own
//! constructors; `proptests/tests/values.rs` compares both directions with `time`'s
//! implementation.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// `t` in RFC 3339, in UTC (`2021-01-21T14:07:52Z`, with a fraction only when there is one);
/// `None` for a year outside 0–9999, which RFC 3339 cannot write.
pub(crate) fn rfc3339(t: OffsetDateTime) -> Option<String> {
    let t = t.checked_to_offset(UtcOffset::UTC)?;
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut out = format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    Some(out)
}

/// An RFC 3339 time (`2021-01-21T16:07:52.5+02:00`, `…Z`; `T` and `Z` in either case), or
/// `None`. A leap second (`:60`) reads as the last nanosecond before it.
pub(crate) fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    let (date, rest) = b.split_at_checked(10)?;
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = *date else {
        return None;
    };
    let (sep, rest) = rest.split_first()?;
    if !matches!(sep, b'T' | b't') {
        return None;
    }
    let (clock, mut rest) = rest.split_at_checked(8)?;
    let [h1, h2, b':', i1, i2, b':', s1, s2] = *clock else {
        return None;
    };
    let mut nanos: u32 = 0;
    if let [b'.', tail @ ..] = rest {
        let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let (fraction, after) = tail.split_at(digits);
        // Nanoseconds: the first nine digits count, the rest is below what `time` holds.
        for i in 0..9 {
            nanos = nanos * 10 + u32::from(fraction.get(i).map_or(0, |d| d - b'0'));
        }
        rest = after;
    }
    let offset = match rest {
        [b'Z' | b'z'] => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let (h, m) = (num(&[*oh1, *oh2])?, num(&[*om1, *om2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let (h, m) = (i8::try_from(h).ok()?, i8::try_from(m).ok()?);
            let sign = if *sign == b'-' { -1 } else { 1 };
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
        _ => return None,
    };
    let year = i32::try_from(num(&[y1, y2, y3, y4])?).ok()?;
    let month = Month::try_from(u8::try_from(num(&[m1, m2])?).ok()?).ok()?;
    let day = u8::try_from(num(&[d1, d2])?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let hour = u8::try_from(num(&[h1, h2])?).ok()?;
    let minute = u8::try_from(num(&[i1, i2])?).ok()?;
    let mut second = u8::try_from(num(&[s1, s2])?).ok()?;
    if second == 60 {
        second = 59;
        nanos = 999_999_999;
    }
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// The value of ASCII decimal digits; `None` if any is not one.
fn num(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn writes_utc_with_a_fraction_only_when_there_is_one() {
        assert_eq!(
            rfc3339(datetime!(2021-01-21 16:07:52 +2)).as_deref(),
            Some("2021-01-21T14:07:52Z")
        );
        assert_eq!(
            rfc3339(datetime!(2021-01-21 14:07:52.25 UTC)).as_deref(),
            Some("2021-01-21T14:07:52.25Z")
        );
        assert_eq!(
            rfc3339(datetime!(0000-01-01 0:00 UTC)).as_deref(),
            Some("0000-01-01T00:00:00Z")
        );
        assert_eq!(rfc3339(datetime!(-0001-12-31 23:59:59 UTC)), None);
    }

    #[test]
    fn reads_what_rfc_3339_allows_and_nothing_else() {
        let t = datetime!(2021-01-21 14:07:52 UTC);
        for ok in [
            "2021-01-21T14:07:52Z",
            "2021-01-21t14:07:52z",
            "2021-01-21T16:07:52+02:00",
            "2021-01-21T09:37:52-04:30",
        ] {
            assert_eq!(parse_rfc3339(ok), Some(t), "{ok}");
        }
        assert_eq!(
            parse_rfc3339("2021-01-21T14:07:52.123456789123Z"),
            Some(datetime!(2021-01-21 14:07:52.123456789 UTC))
        );
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            Some(datetime!(2016-12-31 23:59:59.999999999 UTC))
        );
        for bad in [
            "",
            "2021-01-21",
            "2021-01-21 14:07:52Z",
            "2021-01-21T14:07:52",
            "2021-01-21T14:07:52+0200",
            "2021-01-21T14:07:52.Z",
            "2021-02-30T00:00:00Z",
            "2021-13-01T00:00:00Z",
            "2021-01-21T24:00:00Z",
            "2021-01-21T14:07:61Z",
            "2021-01-21T14:07:52+24:00",
            "+021-01-21T14:07:52Z",
            "2021-01-21T14:07:52Zjunk",
            "２０２１-01-21T14:07:52Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
