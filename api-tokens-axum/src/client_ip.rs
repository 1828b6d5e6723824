//! Where the client address comes from: the connection by default; behind reverse proxies, the
//! forwarding header(s) the host names, read only when the connection comes from a proxy the
//! host trusts, walking the chain from the right.

use std::net::IpAddr;

use api_tokens::IpAllowlist;
use axum::http::HeaderMap;
use axum::http::header::{FORWARDED, HeaderName};

/// The most hops walked through trusted proxies before the address counts as unknown.
const MAX_HOPS: usize = 32;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// How the layer establishes the client address a token's allowlist is checked against.
///
/// * [`ClientAddress::peer`] (the default): the connection's peer address (axum's
///   `ConnectInfo<SocketAddr>`; serve with `into_make_service_with_connect_info`). Headers are
///   never read.
/// * [`ClientAddress::behind_proxies`]: when, and only when, the peer is in the trusted
///   networks, the named forwarding header's chain is walked from the right, skipping trusted
///   proxies; the first address that is not a trusted proxy is the client. A peer outside the
///   trusted networks is the client, whatever headers it sends (a spoofed `X-Forwarded-For`
///   from the internet changes nothing).
///
/// The address is unknown (`None`, so every token with an allowlist is refused: fail closed)
/// when the chain holds something that is not an address (`unknown`, an obfuscated node, junk),
/// when it is longer than 32 trusted hops, and when both headers are named, both are present
/// and they name different clients.
///
/// ```
/// use api_tokens_axum::ClientAddress;
/// use axum::http::HeaderMap;
///
/// let proxies = ClientAddress::behind_proxies("10.0.0.0/8".parse()?).with_x_forwarded_for(true);
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "198.51.100.7, 203.0.113.9, 10.0.0.2".parse()?);
///
/// // From the proxy: the rightmost address that is not a trusted proxy.
/// let via_proxy = proxies.resolve(Some("10.0.0.1".parse()?), &headers);
/// assert_eq!(via_proxy, Some("203.0.113.9".parse()?));
/// // From anyone else: the peer, headers ignored.
/// let direct = proxies.resolve(Some("192.0.2.1".parse()?), &headers);
/// assert_eq!(direct, Some("192.0.2.1".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClientAddress {
    trusted: IpAllowlist,
    forwarded: bool,
    x_forwarded_for: bool,
}

impl ClientAddress {
    /// The connection's peer address; no header is read.
    pub fn peer() -> Self {
        Self::default()
    }

    /// Behind reverse proxies in `trusted` (their addresses or networks). Name the header(s)
    /// your proxies write with [`with_forwarded`](Self::with_forwarded) and/or
    /// [`with_x_forwarded_for`](Self::with_x_forwarded_for); name only those, since a header your proxy
    /// passes through unchanged is the client's to forge. An empty list trusts nobody.
    pub fn behind_proxies(trusted: IpAllowlist) -> Self {
        Self {
            trusted,
            ..Self::default()
        }
    }

    /// With `true`, reads RFC 7239 `Forwarded` (its `for=` parameters) from trusted proxies.
    #[must_use]
    pub fn with_forwarded(mut self, read: bool) -> Self {
        self.forwarded = read;
        self
    }

    /// With `true`, reads `X-Forwarded-For` from trusted proxies.
    #[must_use]
    pub fn with_x_forwarded_for(mut self, read: bool) -> Self {
        self.x_forwarded_for = read;
        self
    }

    /// The client address of a request from `peer` with `headers` (see the rules above).
    /// IPv4-mapped IPv6 addresses come back as IPv4.
    pub fn resolve(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if self.trusted.is_empty() || !(self.forwarded || self.x_forwarded_for) {
            return Some(peer);
        }
        if !self.trusted.allows(peer) {
            return Some(peer);
        }
        let from_forwarded = self
            .forwarded
            .then(|| self.walk(peer, headers, &FORWARDED, forwarded_for));
        let from_xff = self
            .x_forwarded_for
            .then(|| self.walk(peer, headers, &X_FORWARDED_FOR, xff_entry));
        match (from_forwarded.flatten(), from_xff.flatten()) {
            (Some(Walk::Client(a)), Some(Walk::Client(b))) if a != b => None,
            (Some(Walk::Unknown), _) | (_, Some(Walk::Unknown)) => None,
            (Some(Walk::Client(a)), _) | (None, Some(Walk::Client(a))) => Some(a),
            (None, None) => Some(peer),
        }
    }

    /// Walks one header's chain from the right; `None` when the header is absent.
    fn walk(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
        name: &HeaderName,
        entry: fn(&str) -> Option<IpAddr>,
    ) -> Option<Walk> {
        let Ok(values) = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str())
            .collect::<Result<Vec<&str>, _>>()
        else {
            return Some(Walk::Unknown);
        };
        if values.is_empty() {
            return None;
        }
        let mut last = peer;
        let mut hops = 0;
        for value in values.iter().rev() {
            let Some(elements) = split_list(value) else {
                return Some(Walk::Unknown);
            };
            for element in elements.into_iter().rev() {
                let element = element.trim_matches([' ', '\t']);
                if element.is_empty() {
                    continue;
                }
                hops += 1;
                if hops > MAX_HOPS {
                    return Some(Walk::Unknown);
                }
                let Some(ip) = entry(element).map(canonical) else {
                    return Some(Walk::Unknown);
                };
                if !self.trusted.allows(ip) {
                    return Some(Walk::Client(ip));
                }
                last = ip;
            }
        }
        // Every hop is a trusted proxy: the request started at the leftmost of them.
        Some(Walk::Client(last))
    }
}

enum Walk {
    Client(IpAddr),
    Unknown,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Splits a header list at commas outside quoted strings (RFC 7230 `#rule`, RFC 7239); `None`
/// when the value ends inside a quoted string or right after a `\` escape in one (fail closed:
/// an unclosed quote would otherwise swallow the elements that later hops appended).
fn split_list(value: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(value.get(start..i)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted || escaped {
        return None;
    }
    out.push(value.get(start..)?);
    Some(out)
}

/// An `X-Forwarded-For` entry: an address, `v4:port`, `[v6]` or `[v6]:port`.
fn xff_entry(entry: &str) -> Option<IpAddr> {
    node(entry)
}

/// The `for=` parameter of one `Forwarded` element (`for=192.0.2.60;proto=http`,
/// `For="[2001:db8::1]:4711"`): the address, or `None` for `unknown`, obfuscated identifiers,
/// a missing or repeated `for` and anything that is not an address.
///
/// The element is read with RFC 7239's grammar: pairs separated by `;` (empty pairs allowed,
/// whitespace around `;` tolerated), each `token "=" ( token / quoted-string )`. Any pair that
/// does not parse (an unclosed quote, a dangling `\`, no `=`, an empty or non-token name or
/// value, text after a closing quote) makes the whole element, and so the address, unknown: a
/// parameter the client wrote must never hide or replace the one a proxy wrote.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let mut found = None;
    let mut rest = element;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix(';') {
            // An empty pair.
            rest = after;
            continue;
        }
        if rest.is_empty() {
            return found;
        }
        let (key, after) = token(rest)?;
        let after = after.strip_prefix('=')?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => quoted_string(quoted)?,
            None => {
                let (value, after) = token(after)?;
                (value.to_owned(), after)
            }
        };
        if key.eq_ignore_ascii_case("for") {
            if found.is_some() {
                return None;
            }
            found = Some(node(&value)?);
        }
        let after = after.trim_start_matches([' ', '\t']);
        if after.is_empty() {
            return found;
        }
        // After a pair: the next `;`, or the element is malformed.
        rest = after.strip_prefix(';')?;
    }
}

/// A leading RFC 7230 `token` (one or more `tchar`) and the text after it.
fn token(text: &str) -> Option<(&str, &str)> {
    let n = text
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
        .count();
    if n == 0 {
        return None;
    }
    Some((text.get(..n)?, text.get(n..)?))
}

/// A quoted string's content (escapes removed) and the text after its closing quote; `text`
/// starts just after the opening quote. `None` when it never closes or ends in an escape.
fn quoted_string(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some((out, text.get(i + 1..)?));
        } else {
            out.push(c);
        }
    }
    None
}

/// A node: `v4`, `v4:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address.
fn node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || port(after.strip_prefix(':')?)) {
            return None;
        }
        return v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (v4, p) = text.split_once(':')?;
    if !port(p) {
        return None;
    }
    v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn forwarded_elements() {
        for (element, expected) in [
            ("for=192.0.2.60", Some("192.0.2.60")),
            ("For=\"192.0.2.60:4711\";proto=https", Some("192.0.2.60")),
            (
                "proto=http; for=\"[2001:db8:cafe::17]:4711\"",
                Some("2001:db8:cafe::17"),
            ),
            ("for=\"[2001:db8:cafe::17]\"", Some("2001:db8:cafe::17")),
            ("for=unknown", None),
            ("for=_hidden", None),
            ("by=10.0.0.1", None),
            ("for=1.2.3.4;for=5.6.7.8", None),
            ("for=\"1.2.3.4", None),
            ("for=1.2.3.4:99999999", None),
            ("garbage", None),
            // RFC 7239 grammar: empty pairs are allowed, quoted `;` and `,` stay in their value.
            ("for=192.0.2.60;", Some("192.0.2.60")),
            (";for=192.0.2.60;;proto=http", Some("192.0.2.60")),
            ("x=\"a;for=6.6.6.6\";for=192.0.2.60", Some("192.0.2.60")),
            ("x=\"a\\\"b;c\";for=192.0.2.60", Some("192.0.2.60")),
            // Malformed pairs anywhere make the element unknown (fail closed).
            ("for=1.2.3.4;x=\"", None),
            ("for=1.2.3.4;x=\"abc\\", None),
            ("for=1.2.3.4;x=\"abc\\\"", None),
            ("for=1.2.3.4;x", None),
            ("for=1.2.3.4;x=", None),
            ("for=1.2.3.4;=y", None),
            ("for=1.2.3.4;x=\"a\"b", None),
            ("for=1.2.3.4 proto=http", None),
            ("for=1.2.3.4;x=a b", None),
            ("for=\"1.2.3.4\"\"", None),
        ] {
            assert_eq!(forwarded_for(element), expected.map(ip), "{element}");
        }
    }

    #[test]
    fn the_chain_is_walked_from_the_right_and_only_for_trusted_peers() {
        let xff = ClientAddress::behind_proxies("10.0.0.0/8, ::1".parse().unwrap())
            .with_x_forwarded_for(true);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(
            xff.resolve(Some(ip("10.0.0.1")), &h),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            xff.resolve(Some(ip("::ffff:10.0.0.1")), &h),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            xff.resolve(Some(ip("192.0.2.1")), &h),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(xff.resolve(None, &h), None);
        // A header switched off again is not read: the peer is the client.
        let off = xff.clone().with_x_forwarded_for(false);
        assert_eq!(off.resolve(Some(ip("10.0.0.1")), &h), Some(ip("10.0.0.1")));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.7"),
        ]);
        assert_eq!(
            xff.resolve(Some(ip("10.0.0.1")), &h),
            Some(ip("203.0.113.9"))
        );
        // Only trusted hops: the leftmost; no header: the peer.
        let h = headers(&[("x-forwarded-for", "10.0.0.9,10.0.0.7")]);
        assert_eq!(xff.resolve(Some(ip("10.0.0.1")), &h), Some(ip("10.0.0.9")));
        assert_eq!(
            xff.resolve(Some(ip("10.0.0.1")), &HeaderMap::new()),
            Some(ip("10.0.0.1"))
        );
        // Junk before the client is found: unknown, never a guess.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, junk, 10.0.0.7")]);
        assert_eq!(xff.resolve(Some(ip("10.0.0.1")), &h), None);
        // Junk left of the client does not matter.
        let h = headers(&[("x-forwarded-for", "junk, 203.0.113.9")]);
        assert_eq!(
            xff.resolve(Some(ip("10.0.0.1")), &h),
            Some(ip("203.0.113.9"))
        );
        // Too many trusted hops.
        let many = vec!["10.0.0.3"; MAX_HOPS + 1].join(",");
        let h = headers(&[("x-forwarded-for", &many)]);
        assert_eq!(xff.resolve(Some(ip("10.0.0.1")), &h), None);
        // The header it was not told to read is ignored.
        let h = headers(&[("forwarded", "for=203.0.113.9")]);
        assert_eq!(xff.resolve(Some(ip("10.0.0.1")), &h), Some(ip("10.0.0.1")));
    }

    #[test]
    fn forwarded_and_both_headers() {
        let both = ClientAddress::behind_proxies("10.0.0.0/8".parse().unwrap())
            .with_forwarded(true)
            .with_x_forwarded_for(true);
        let fwd = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"203.0.113.9:1\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(
            both.resolve(Some(ip("10.0.0.1")), &fwd),
            Some(ip("203.0.113.9"))
        );
        let agree = headers(&[
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            both.resolve(Some(ip("10.0.0.1")), &agree),
            Some(ip("203.0.113.9"))
        );
        let disagree = headers(&[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(both.resolve(Some(ip("10.0.0.1")), &disagree), None);
        // A quoted comma does not split an element.
        let quoted = headers(&[("forwarded", "for=203.0.113.9;x=\"a,b\"")]);
        assert_eq!(
            both.resolve(Some(ip("10.0.0.1")), &quoted),
            Some(ip("203.0.113.9"))
        );
        // The peer alone when no proxy is trusted.
        let nobody = ClientAddress::behind_proxies(IpAllowlist::any()).with_forwarded(true);
        assert_eq!(
            nobody.resolve(Some(ip("10.0.0.1")), &fwd),
            Some(ip("10.0.0.1"))
        );
    }
}
