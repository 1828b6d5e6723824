//! HTML from Rust: every string that is not markup written here goes through [`E`], which
//! escapes it for text and for quoted attribute values alike.

use std::fmt::{self, Write as _};

use api_tokens::time::{OffsetDateTime, UtcOffset};

/// Text (or an attribute value) escaped for HTML: `&`, `<`, `>`, `"` and `'` become
/// character references, so a value can never close a tag or an attribute.
pub(crate) struct E<'a>(pub &'a str);

impl fmt::Display for E<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            let (plain, tail) = rest.split_at(i);
            f.write_str(plain)?;
            let mut chars = tail.chars();
            let escaped = match chars.next() {
                Some('&') => "&amp;",
                Some('<') => "&lt;",
                Some('>') => "&gt;",
                Some('"') => "&quot;",
                _ => "&#39;",
            };
            f.write_str(escaped)?;
            rest = chars.as_str();
        }
        f.write_str(rest)
    }
}

/// A page under construction. Writing to a `String` cannot fail, so the results of `write!`
/// are ignored through [`Html::w`].
#[derive(Default)]
pub(crate) struct Html(pub String);

impl Html {
    /// Appends formatted markup (its arguments escaped by the caller with [`E`]).
    pub(crate) fn w(&mut self, args: fmt::Arguments<'_>) {
        let _ = self.0.write_fmt(args);
    }

    /// Appends markup written here (a literal).
    pub(crate) fn s(&mut self, markup: &'static str) {
        self.0.push_str(markup);
    }
}

/// `YYYY-MM-DD hh:mm:ss` in UTC, as the seed's list shows times.
pub(crate) fn datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_character_is_escaped() {
        assert_eq!(
            E(r#"<script>alert("x") & 'y'</script>"#).to_string(),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(E("plain é text").to_string(), "plain é text");
        assert_eq!(E("").to_string(), "");
        assert_eq!(E("&&").to_string(), "&amp;&amp;");
    }

    #[test]
    fn times_are_written_in_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_772_600_767)
            .unwrap()
            .to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(datetime(t), "2026-03-04 05:06:07");
    }
}
