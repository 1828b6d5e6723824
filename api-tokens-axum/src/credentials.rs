//! Where the secret comes from: the `Authorization` header's `Bearer` credentials, optionally a
//! header of the host's choosing (`X-API-Key`), and a query parameter only when the host opts in.
//!
//! Everything here is checked before the secret reaches [`Tokens::authenticate`]: a header
//! that is not visible ASCII, a header given twice, empty credentials, anything longer than a
//! secret can be, or credentials in two places that disagree are refused without hashing and
//! without a store lookup.
//!
//! [`Tokens::authenticate`]: api_tokens::Tokens::authenticate

use std::borrow::Cow;
use std::fmt;

use api_tokens::secret::MAX_PRESENTED_LEN;
use axum::http::header::{AUTHORIZATION, HeaderMap, HeaderName};
use axum::http::{HeaderValue, Uri};

/// Where the layer looks for a presented secret. The default reads only `Authorization:
/// Bearer <secret>` (the scheme matched case-insensitively, RFC 7235).
///
/// ```
/// use api_tokens_axum::SecretSources;
/// use axum::http::HeaderName;
///
/// let sources = SecretSources::default().with_header(HeaderName::from_static("x-api-key"));
/// # let _ = sources;
/// ```
#[derive(Clone, Debug, Default)]
pub struct SecretSources {
    header: Option<HeaderName>,
    query: Option<Box<str>>,
}

impl SecretSources {
    /// Also accepts the secret as the whole value of `name` (for example `X-API-Key`), for
    /// clients that cannot set `Authorization`.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName) -> Self {
        self.header = Some(name);
        self
    }

    /// Also accepts the secret from the query parameter `name` (`?api_key=…`).
    ///
    /// **A leak risk**: a URL ends up in access logs, proxy logs, browser history and
    /// `Referer` headers, where the secret outlives the request. Enable it only for clients that
    /// can send no header at all (a webhook configured by URL), and prefer short-lived tokens
    /// for them.
    #[must_use]
    pub fn with_query_parameter_leak_risk(mut self, name: &str) -> Self {
        self.query = Some(name.into());
        self
    }

    /// The secret a request presents, or why none can be taken from it. Pure: reads the headers
    /// and the URI, and never allocates unless a query parameter needs percent-decoding.
    pub fn presented<'a>(&self, headers: &'a HeaderMap, uri: &'a Uri) -> Presented<'a> {
        let mut found: Option<(Cow<'a, str>, Source)> = None;
        let mut absent = Absent::Nothing;
        match one_value(headers, &AUTHORIZATION) {
            One::None => {}
            One::Repeated => return Presented::Refused(CredentialProblem::Repeated),
            One::Value(v) => match bearer(v) {
                Bearer::Credentials(c) => found = Some((Cow::Borrowed(c), Source::Authorization)),
                Bearer::OtherScheme => absent = Absent::OtherScheme,
                Bearer::Refused(p) => return Presented::Refused(p),
            },
        }
        if let Some(name) = &self.header {
            match one_value(headers, name) {
                One::None => {}
                One::Repeated => return Presented::Refused(CredentialProblem::Repeated),
                One::Value(v) => match raw_credentials(v) {
                    Ok(c) => {
                        if let Err(p) = merge(&mut found, Cow::Borrowed(c), Source::Header) {
                            return Presented::Refused(p);
                        }
                    }
                    Err(p) => return Presented::Refused(p),
                },
            }
        }
        if let Some(param) = &self.query {
            match query_value(uri.query().unwrap_or_default(), param) {
                Ok(None) => {}
                Ok(Some(c)) => {
                    if let Err(p) = merge(&mut found, c, Source::Query) {
                        return Presented::Refused(p);
                    }
                }
                Err(p) => return Presented::Refused(p),
            }
        }
        match found {
            Some((secret, source)) => Presented::Secret { secret, source },
            None => Presented::Absent(absent),
        }
    }
}

/// Where a presented secret was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// `Authorization: Bearer …`.
    Authorization,
    /// The host's own header ([`SecretSources::with_header`]).
    Header,
    /// The query parameter ([`SecretSources::with_query_parameter_leak_risk`]).
    Query,
}

/// What a request presents.
#[derive(Debug)]
#[non_exhaustive]
pub enum Presented<'a> {
    /// A secret, well-formed as credentials (the token format is checked by `authenticate`).
    Secret {
        /// The secret.
        secret: Cow<'a, str>,
        /// Where it came from.
        source: Source,
    },
    /// No credentials at all (RFC 6750 §3.1: the answer carries no error code).
    Absent(Absent),
    /// Credentials that cannot be used; refused before any hashing or store lookup.
    Refused(CredentialProblem),
}

/// Why a request presents no credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Absent {
    /// None of the sources holds anything.
    Nothing,
    /// `Authorization` holds another scheme (`Basic …`): not ours, so not an attempt.
    OtherScheme,
}

/// Why presented credentials were refused before authentication. Logged with its
/// [`code`](CredentialProblem::code); the client sees only `invalid_token`. Never holds the
/// presented text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialProblem {
    /// A header value with bytes outside visible ASCII (or a query value that decodes to
    /// something other than UTF-8).
    NotVisibleAscii,
    /// The header (or query parameter) appears more than once.
    Repeated,
    /// The scheme with no credentials after it, or an empty header value.
    Empty,
    /// Not the `token68` syntax of RFC 6750 (`A-Z a-z 0-9 - . _ ~ + /`, then `=` padding).
    Syntax,
    /// Longer than any secret can be.
    TooLong,
    /// Secrets in two places that differ: which one is meant is unknowable.
    Conflicting,
}

impl CredentialProblem {
    /// A stable snake_case code for logs and metrics.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotVisibleAscii => "credentials_not_ascii",
            Self::Repeated => "credentials_repeated",
            Self::Empty => "credentials_empty",
            Self::Syntax => "credentials_syntax",
            Self::TooLong => "credentials_too_long",
            Self::Conflicting => "credentials_conflicting",
        }
    }
}

impl fmt::Display for CredentialProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotVisibleAscii => "credentials hold bytes outside visible ASCII",
            Self::Repeated => "credentials header or parameter given more than once",
            Self::Empty => "empty credentials",
            Self::Syntax => "credentials are not a bearer token (token68)",
            Self::TooLong => "credentials longer than any secret",
            Self::Conflicting => "different credentials in two places",
        })
    }
}

enum One<'a> {
    None,
    Value(&'a HeaderValue),
    Repeated,
}

fn one_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> One<'a> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (None, _) => One::None,
        (Some(v), None) => One::Value(v),
        (Some(_), Some(_)) => One::Repeated,
    }
}

enum Bearer<'a> {
    Credentials(&'a str),
    OtherScheme,
    Refused(CredentialProblem),
}

/// `Authorization: <scheme> 1*SP <token68>`, the scheme compared case-insensitively.
///
/// Works on the bytes: a `HeaderValue` holds no CR, LF or other control byte but HTAB, so
/// trimming ASCII whitespace trims only SP and HTAB, and credentials that pass [`token68`]
/// are visible ASCII. Whether a refused value was visible ASCII at all is asked only when
/// refusing, so the answers are those of checking it first.
fn bearer(value: &HeaderValue) -> Bearer<'_> {
    let text = value.as_bytes().trim_ascii();
    // The scheme is everything before the first SP; ours is six letters, so junk costs nothing.
    let rest = match text.split_at_checked(BEARER.len()) {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case(BEARER)
                && (rest.is_empty() || rest.starts_with(b" ")) =>
        {
            rest
        }
        _ if value.to_str().is_err() => {
            return Bearer::Refused(CredentialProblem::NotVisibleAscii);
        }
        _ => return Bearer::OtherScheme,
    };
    let start = rest.iter().take_while(|&&b| b == b' ').count();
    match token68(rest.get(start..).unwrap_or_default()) {
        Ok(c) => Bearer::Credentials(c),
        Err(_) if value.to_str().is_err() => Bearer::Refused(CredentialProblem::NotVisibleAscii),
        Err(p) => Bearer::Refused(p),
    }
}

const BEARER: &[u8] = b"bearer";

/// The whole value of the host's header: a token68 with optional surrounding whitespace.
fn raw_credentials(value: &HeaderValue) -> Result<&str, CredentialProblem> {
    token68(value.as_bytes().trim_ascii()).map_err(|p| match value.to_str() {
        Err(_) => CredentialProblem::NotVisibleAscii,
        Ok(_) => p,
    })
}

/// Whether each byte may appear in RFC 6750's `b64token` before its `=` padding:
/// `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`.
// Evaluated at compile time: an index out of range would fail the build, never panic.
#[allow(clippy::indexing_slicing)]
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0u8;
    loop {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/') {
            table[b as usize] = true;
        }
        if b == u8::MAX {
            break table;
        }
        b += 1;
    }
};

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// The length is checked first, so 16 KiB of junk costs one comparison; the bytes are then
/// looked up in a table without a branch per byte (a secret's random characters would defeat
/// the branch predictor of a per-class comparison chain).
fn token68(c: &[u8]) -> Result<&str, CredentialProblem> {
    if c.is_empty() {
        return Err(CredentialProblem::Empty);
    }
    if c.len() > MAX_PRESENTED_LEN {
        return Err(CredentialProblem::TooLong);
    }
    let padding = c.iter().rev().take_while(|&&b| b == b'=').count();
    let body = c.get(..c.len() - padding).unwrap_or_default();
    let ok = !body.is_empty()
        && body.iter().fold(true, |ok, &b| {
            ok & B64TOKEN.get(usize::from(b)).copied().unwrap_or(false)
        });
    if !ok {
        return Err(CredentialProblem::Syntax);
    }
    // ASCII by the check above, so this never fails.
    std::str::from_utf8(c).map_err(|_| CredentialProblem::NotVisibleAscii)
}

fn merge<'a>(
    found: &mut Option<(Cow<'a, str>, Source)>,
    secret: Cow<'a, str>,
    source: Source,
) -> Result<(), CredentialProblem> {
    match found {
        Some((first, _)) if *first != secret => Err(CredentialProblem::Conflicting),
        Some(_) => Ok(()),
        None => {
            *found = Some((secret, source));
            Ok(())
        }
    }
}

/// The value of `param` in an `application/x-www-form-urlencoded` query, decoded; `None` when
/// absent. Refused when given twice, not UTF-8 after decoding, or not a token68.
fn query_value<'a>(query: &'a str, param: &str) -> Result<Option<Cow<'a, str>>, CredentialProblem> {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Decoding never makes a key longer: a shorter one cannot be ours. A key that does not
        // decode is not ours either.
        if key.len() < param.len() || decode(key).ok().as_deref() != Some(param) {
            continue;
        }
        if found.is_some() {
            return Err(CredentialProblem::Repeated);
        }
        if value.len() > 3 * MAX_PRESENTED_LEN {
            return Err(CredentialProblem::TooLong);
        }
        let decoded = decode(value)?;
        token68(decoded.as_bytes())?;
        found = Some(decoded);
    }
    Ok(found)
}

/// Percent-decoding with `+` as space (form encoding). Bounded by the input's length.
pub(crate) fn decode(s: &str) -> Result<Cow<'_, str>, CredentialProblem> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Ok(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|h| (*h as char).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(hi), Some(lo)) => {
                        out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| CredentialProblem::NotVisibleAscii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presented(sources: &SecretSources, headers: &[(&str, &[u8])], uri: &str) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let uri: Uri = uri.parse().unwrap();
        match sources.presented(&map, &uri) {
            Presented::Secret { secret, source } => format!("{source:?}:{secret}"),
            Presented::Absent(a) => format!("absent:{a:?}"),
            Presented::Refused(p) => p.code().to_owned(),
        }
    }

    #[test]
    fn the_table_of_authorization_headers() {
        let s = SecretSources::default();
        let junk = vec![b'a'; 16 * 1024];
        let long = format!("Bearer {}", "a".repeat(MAX_PRESENTED_LEN + 1));
        for (value, expected) in [
            (&b"Bearer tok_abc"[..], "Authorization:tok_abc"),
            (b"bearer tok_abc", "Authorization:tok_abc"),
            (b"BEARER tok_abc", "Authorization:tok_abc"),
            (b"BeArEr   tok_abc  ", "Authorization:tok_abc"),
            (b"Bearer dG9r==", "Authorization:dG9r=="),
            (b"Bearer aZ09-._~+/=", "Authorization:aZ09-._~+/="),
            (b"\tBearer tok_abc\t", "Authorization:tok_abc"),
            (b"Bearer tok!abc", "credentials_syntax"),
            (b"Bearer tok:abc", "credentials_syntax"),
            (b"Bearer tok\x80abc", "credentials_not_ascii"),
            (b"Bearer\ttok_abc", "absent:OtherScheme"),
            (b"Bear tok_abc", "absent:OtherScheme"),
            (b"Bearer", "credentials_empty"),
            (b"Bearer    ", "credentials_empty"),
            (b"Bearer tok abc", "credentials_syntax"),
            (b"Bearer tok,abc", "credentials_syntax"),
            (b"Bearer ====", "credentials_syntax"),
            (b"Bearer \xff\xfe", "credentials_not_ascii"),
            (b"Basic dXNlcjpwYXNz", "absent:OtherScheme"),
            (b"Bearertok_abc", "absent:OtherScheme"),
            (&junk, "absent:OtherScheme"),
            (long.as_bytes(), "credentials_too_long"),
        ] {
            assert_eq!(
                presented(&s, &[("authorization", value)], "/"),
                expected,
                "{}",
                String::from_utf8_lossy(&value[..value.len().min(40)])
            );
        }
        assert_eq!(presented(&s, &[], "/"), "absent:Nothing");
        assert_eq!(
            presented(
                &s,
                &[
                    ("authorization", b"Bearer a"),
                    ("authorization", b"Bearer a")
                ],
                "/"
            ),
            "credentials_repeated"
        );
    }

    #[test]
    fn the_hosts_header_and_the_query_only_when_named() {
        let plain = SecretSources::default();
        assert_eq!(
            presented(&plain, &[("x-api-key", b"tok_a")], "/?api_key=tok_a"),
            "absent:Nothing"
        );
        let s = SecretSources::default()
            .with_header(HeaderName::from_static("x-api-key"))
            .with_query_parameter_leak_risk("api_key");
        assert_eq!(
            presented(&s, &[("x-api-key", b" tok_a ")], "/"),
            "Header:tok_a"
        );
        assert_eq!(
            presented(&s, &[("x-api-key", b"")], "/"),
            "credentials_empty"
        );
        assert_eq!(presented(&s, &[], "/x?a=1&api_key=tok_%61"), "Query:tok_a");
        assert_eq!(presented(&s, &[], "/x?api%5Fkey=tok_a"), "Query:tok_a");
        assert_eq!(presented(&s, &[], "/x?api_key=tok+a"), "credentials_syntax");
        assert_eq!(
            presented(&s, &[], "/x?api_key=%ff"),
            "credentials_not_ascii"
        );
        assert_eq!(
            presented(&s, &[], "/x?api_key=a&api_key=a"),
            "credentials_repeated"
        );
        assert_eq!(presented(&s, &[], "/x?api_key="), "credentials_empty");
        assert_eq!(presented(&s, &[], "/x?api_keys=a"), "absent:Nothing");
        // The same secret in two places is one secret; two different ones are refused.
        assert_eq!(
            presented(
                &s,
                &[("authorization", b"Bearer tok_a"), ("x-api-key", b"tok_a")],
                "/?api_key=tok_a"
            ),
            "Authorization:tok_a"
        );
        assert_eq!(
            presented(
                &s,
                &[("authorization", b"Bearer tok_a"), ("x-api-key", b"tok_b")],
                "/"
            ),
            "credentials_conflicting"
        );
        assert_eq!(
            presented(&s, &[("x-api-key", b"tok_a")], "/?api_key=tok_b"),
            "credentials_conflicting"
        );
    }
}
