//! RFC 3339 for messages, the token view and accepted input; the crate's one place that formats
//! and parses times as text.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `t` in RFC 3339 (UTC, no fraction when there is none); `None` for a year outside 0–9999,
/// which RFC 3339 cannot write.
pub(crate) fn rfc3339(t: OffsetDateTime) -> Option<String> {
    t.checked_to_offset(time::UtcOffset::UTC)?
        .format(&Rfc3339)
        .ok()
}

/// An RFC 3339 time (any offset), or `None`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}
