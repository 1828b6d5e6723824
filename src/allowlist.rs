//! IP allowlists (cPanel's `whitelist_ip`): single addresses and CIDR ranges, IPv4 and IPv6.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Field, Problem, ValidationError};

/// The longest entry looked at, in bytes (a fully written IPv6 CIDR is 43).
const MAX_ENTRY_LEN: usize = 64;

/// A normalised list of the addresses a token may be used from. Empty means any address.
///
/// Normalised means: IPv4-mapped IPv6 entries turned into IPv4, entries another entry already
/// contains dropped (`1.1.1.1` beside `1.1.1.0/24`), sorted (IPv4 first, then IPv6), single
/// hosts written without `/32` or `/128`, IPv6 written compressed. What remains are disjoint
/// ranges in order, so [`IpAllowlist::allows`] is a binary search, not a scan.
///
/// Parsed text is taken as written or refused, never widened: a range with host bits set
/// (`10.0.0.1/8`) is refused with an error naming its network (`10.0.0.0/8`), as PostgreSQL's
/// `cidr` type does, and an empty item between separators (`" , "`) is an error, not the empty
/// list (which would mean any address). None of the seeds documents normalising such entries.
///
/// # IPv4 clients and `::/0`
/// A client at an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a dual-stack socket reports
/// for an IPv4 peer) is checked as the IPv4 address `1.2.3.4`. So `::/0` allows every IPv6
/// client and **no** IPv4 client; `0.0.0.0/0` allows every IPv4 client (mapped or not) and no
/// IPv6 one. To allow every address, leave the list empty.
///
/// # Text and serde
/// `FromStr` reads entries separated by commas and/or whitespace (the empty string is the
/// empty list); `Display` writes the normalised entries joined by `", "`. Serde writes an array
/// of entry strings and reads an array, or (in human-readable formats such as JSON) the same one
/// string `FromStr` reads: `["10.0.0.0/8", "2001:db8::1"]` or `"10.0.0.0/8, 2001:db8::1"`.
///
/// ```
/// use api_tokens::IpAllowlist;
/// let list = IpAllowlist::parse([
///     "1.1.1.1", "1.1.1.2", "1.1.1.8/29",
///     "fc00:abcd:0000:0000:0000:0000:0000:000f",
///     "2620:0000:28a4:0000:0000:0000:0000:0000/48",
/// ])?;
/// assert_eq!(list.to_string(), "1.1.1.1, 1.1.1.2, 1.1.1.8/29, 2620:0:28a4::/48, fc00:abcd::f");
/// assert!(list.allows("1.1.1.12".parse().unwrap()));
/// assert!(list.allows("::ffff:1.1.1.1".parse().unwrap()));
/// assert!(!list.allows("1.1.1.3".parse().unwrap()));
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct IpAllowlist(Box<[IpNet]>);

impl IpAllowlist {
    /// The empty list: any client address.
    pub fn any() -> Self {
        Self::default()
    }

    /// Parses entries: an IPv4 or IPv6 address, or either with a `/prefix`.
    ///
    /// # Errors
    /// The first entry that is not an address or CIDR range, or a range with host bits set
    /// ([`Problem::HostBitsSet`], naming the network form), naming it.
    pub fn parse<I, S>(entries: I) -> Result<Self, ValidationError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = entries
            .into_iter()
            .map(|e| parse_entry(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(nets))
    }

    /// Builds a normalised list from ranges. Host bits are cleared here (`IpNet::trunc`): the
    /// caller chose the values; text goes through [`IpAllowlist::parse`], which refuses them.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut v: Vec<IpNet> = nets.into_iter().map(normalise).collect();
        // Sorted by (family, network, prefix): a containing range comes before what it contains.
        v.sort_unstable();
        v.dedup();
        let mut out: Vec<IpNet> = Vec::with_capacity(v.len());
        for net in v {
            match out.last() {
                Some(last) if last.contains(&net) => {}
                _ => out.push(net),
            }
        }
        Self(out.into_boxed_slice())
    }

    /// The entries, normalised.
    pub fn entries(&self) -> &[IpNet] {
        &self.0
    }

    /// Each entry as text: single hosts without `/32` or `/128`, IPv6 compressed — the form
    /// [`Display`](fmt::Display) joins and serde writes.
    pub fn entry_strings(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(|n| Entry(n).to_string())
    }

    /// Number of entries after normalisation.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty (any address is allowed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a client at `ip` may use the token. An empty list allows every address; an
    /// IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is checked as the IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        match ip {
            IpAddr::V4(v4) => self.allows_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.allows_v4(v4),
                None => self.allows_v6(v6),
            },
        }
    }

    // Ranges are sorted (IPv4 before IPv6, then by network) and disjoint: only the last one
    // starting at or before the address can hold it, so one binary search decides. Entries are
    // normalised (`IpAllowlist::new` truncates them), so a range's address is its network, and
    // each step compares one integer (this runs on every authentication).
    fn allows_v4(&self, a: Ipv4Addr) -> bool {
        let x = u32::from(a);
        let i = self.0.partition_point(|n| match n {
            IpNet::V4(n) => u32::from(n.addr()) <= x,
            IpNet::V6(_) => false,
        });
        i.checked_sub(1)
            .and_then(|i| self.0.get(i))
            .is_some_and(|n| matches!(n, IpNet::V4(n) if n.contains(&a)))
    }

    fn allows_v6(&self, a: Ipv6Addr) -> bool {
        let x = u128::from(a);
        let i = self.0.partition_point(|n| match n {
            IpNet::V4(_) => true,
            IpNet::V6(n) => u128::from(n.addr()) <= x,
        });
        i.checked_sub(1)
            .and_then(|i| self.0.get(i))
            .is_some_and(|n| matches!(n, IpNet::V6(n) if n.contains(&a)))
    }
}

fn normalise(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(n) => match n.addr().to_ipv4_mapped() {
            Some(v4) if n.prefix_len() >= 96 => {
                Ipv4Net::new(v4, n.prefix_len() - 96).map_or(net, |n| IpNet::V4(n.trunc()))
            }
            _ => IpNet::V6(n.trunc()),
        },
        IpNet::V4(n) => IpNet::V4(n.trunc()),
    }
}

fn parse_entry(s: &str) -> Result<IpNet, ValidationError> {
    let err = || {
        ValidationError::new(
            Field::Allowlist,
            s,
            Problem::Syntax {
                expected: "an IP address or CIDR range",
            },
        )
    };
    if s.len() > MAX_ENTRY_LEN {
        return Err(err());
    }
    let t = s.trim();
    if t.is_empty() {
        return Err(ValidationError::new(Field::Allowlist, s, Problem::Empty));
    }
    if let Ok(net) = IpNet::from_str(t) {
        if net.trunc() != net {
            return Err(ValidationError::new(
                Field::Allowlist,
                s,
                Problem::HostBitsSet {
                    network: net.trunc(),
                },
            ));
        }
        return Ok(net);
    }
    match IpAddr::from_str(t).map_err(|_| err())? {
        IpAddr::V4(a) => Ipv4Net::new(a, 32).map(IpNet::V4).map_err(|_| err()),
        IpAddr::V6(a) => Ipv6Net::new(a, 128).map(IpNet::V6).map_err(|_| err()),
    }
}

fn write_net(f: &mut fmt::Formatter<'_>, n: &IpNet) -> fmt::Result {
    if n.prefix_len() == n.max_prefix_len() {
        write!(f, "{}", n.addr())
    } else {
        write!(f, "{n}")
    }
}

impl FromStr for IpAllowlist {
    type Err = ValidationError;
    /// Comma- or whitespace-separated entries; a blank string is the empty list. An empty item
    /// between commas (`" , "`, `"1.1.1.1,"`) is an error, never "any address".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(crate::permission::list_items(s, Field::Allowlist)?)
    }
}

impl fmt::Display for IpAllowlist {
    /// Entries joined by `", "`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_net(f, n)?;
        }
        Ok(())
    }
}

impl fmt::Debug for IpAllowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpAllowlist[{self}]")
    }
}

struct Entry<'a>(&'a IpNet);

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_net(f, self.0)
    }
}

impl Serialize for IpAllowlist {
    /// A sequence of entry strings.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.entry_strings())
    }
}

impl<'de> Deserialize<'de> for IpAllowlist {
    /// An array of entries; in human-readable formats also one string in the form `FromStr`
    /// reads (`"10.0.0.0/8, 2001:db8::/32"`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            let v = Vec::<String>::deserialize(d)?;
            return Self::parse(v).map_err(serde::de::Error::custom);
        }
        d.deserialize_any(crate::permission::ListVisitor {
            what: "an array of IP addresses or CIDR ranges, or one string of them separated by \
                   commas",
            from_str: |s: &str| s.parse::<Self>(),
            from_seq: |v: Vec<String>| Self::parse(v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn seed_examples_parse_and_print_normalised() {
        let l = IpAllowlist::parse([
            "1.1.1.1",
            "1.1.1.2",
            "1.1.1.8/29",
            "fc00:abcd:0000:0000:0000:0000:0000:000f",
            "2620:0000:28a4:0000:0000:0000:0000:0000/48",
        ])
        .unwrap();
        assert_eq!(
            l.to_string(),
            "1.1.1.1, 1.1.1.2, 1.1.1.8/29, 2620:0:28a4::/48, fc00:abcd::f"
        );
        assert!(l.allows(ip("fc00:abcd::f")));
        assert!(l.allows(ip("2620:0:28a4:ffff::1")));
        assert!(!l.allows(ip("2620:0:28a5::1")));
        assert!(l.allows(ip("1.1.1.15")));
        assert!(!l.allows(ip("1.1.1.16")));
    }

    #[test]
    fn normalisation_rules() {
        let l = IpAllowlist::parse(["1.1.1.8/29", "10.0.0.0/8", "10.1.2.3", "10.0.0.0/8"]).unwrap();
        assert_eq!(l.to_string(), "1.1.1.8/29, 10.0.0.0/8", "dedup, contained");
        let built = IpAllowlist::new(["1.1.1.9/29".parse::<IpNet>().unwrap()]);
        assert_eq!(built.to_string(), "1.1.1.8/29", "new() clears host bits");
        let l =
            IpAllowlist::parse(["::ffff:1.2.3.4", "::ffff:10.0.0.0/104", "1.2.3.4/32"]).unwrap();
        assert_eq!(
            l.to_string(),
            "1.2.3.4, 10.0.0.0/8",
            "v4-mapped entries become v4"
        );
        let l = IpAllowlist::parse(["::1", "0.0.0.0/0"]).unwrap();
        assert_eq!(l.to_string(), "0.0.0.0/0, ::1", "v4 before v6");
        assert!(!l.allows(ip("::2")));
    }

    #[test]
    fn lists_read_an_array_or_a_comma_string() {
        let a: IpAllowlist = serde_json::from_str(r#"["10.0.0.0/8", "::1"]"#).unwrap();
        let b: IpAllowlist = serde_json::from_str(r#""10.0.0.0/8, ::1""#).unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<IpAllowlist>(r#""10.0.0.0/33""#).is_err());
        assert!(serde_json::from_str::<IpAllowlist>(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn host_bits_are_refused_naming_the_network() {
        for (bad, network) in [
            ("10.0.0.1/8", "10.0.0.0/8"),
            ("1.1.1.9/29", "1.1.1.8/29"),
            ("2001:db8::1/32", "2001:db8::/32"),
            ("::ffff:10.0.0.1/104", "::ffff:10.0.0.0/104"),
        ] {
            let e = IpAllowlist::parse(["1.1.1.1", bad]).unwrap_err();
            assert_eq!(e.value, bad);
            assert_eq!(
                e.problem,
                Problem::HostBitsSet {
                    network: network.parse().unwrap()
                }
            );
            assert!(e.to_string().contains(network), "{e}");
            assert!(bad.parse::<IpAllowlist>().is_err());
        }
        // Network forms and single hosts stay accepted.
        for ok in [
            "10.0.0.0/8",
            "10.0.0.1/32",
            "10.0.0.1",
            "::/0",
            "0.0.0.0/0",
            "::1/128",
        ] {
            assert!(IpAllowlist::parse([ok]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn empty_items_are_errors_never_any_address() {
        for bad in [
            " , ",
            ",",
            "1.1.1.1,",
            ",1.1.1.1",
            "1.1.1.1,,2.2.2.2",
            "1.1.1.1, ,2.2.2.2",
        ] {
            let e = bad.parse::<IpAllowlist>().unwrap_err();
            assert_eq!(e.field, Field::Allowlist);
            assert_eq!(e.problem, Problem::EmptyItem, "{bad:?}");
        }
        assert!("".parse::<IpAllowlist>().unwrap().is_empty());
        assert_eq!(
            "1.1.1.1, 2.2.2.2 3.3.3.3"
                .parse::<IpAllowlist>()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn v6_any_does_not_allow_v4_clients() {
        let v6_any = IpAllowlist::parse(["::/0"]).unwrap();
        assert!(v6_any.allows(ip("2001:db8::1")));
        assert!(!v6_any.allows(ip("10.0.0.1")));
        assert!(!v6_any.allows(ip("::ffff:10.0.0.1")), "mapped is IPv4");
        let v4_any = IpAllowlist::parse(["0.0.0.0/0"]).unwrap();
        assert!(v4_any.allows(ip("::ffff:10.0.0.1")));
        assert!(!v4_any.allows(ip("2001:db8::1")));
    }

    #[test]
    fn empty_allows_all_and_mapped_clients_match_v4() {
        assert!(IpAllowlist::any().allows(ip("8.8.8.8")));
        let l = IpAllowlist::parse(["1.1.1.1"]).unwrap();
        assert!(l.allows(ip("::ffff:1.1.1.1")));
        assert!(!l.allows(ip("::ffff:1.1.1.2")));
        assert!(!l.allows(ip("::1.1.1.1")), "IPv4-compatible is not mapped");
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "",
            "1.1.1",
            "1.1.1.1/33",
            "host.example",
            "::/129",
            "1.1.1.1/-1",
            "1.1.1.1 /8",
        ] {
            let e = IpAllowlist::parse(["1.1.1.1", bad]).unwrap_err();
            assert_eq!(e.field, Field::Allowlist);
            assert_eq!(e.value, bad, "the error names the entry");
        }
    }

    #[test]
    fn hundred_entries_binary_search_matches_linear_scan() {
        let entries: Vec<String> = (0..100).map(|i| format!("10.{i}.0.0/16")).collect();
        let l = IpAllowlist::parse(&entries).unwrap();
        for probe in [
            "10.0.0.1",
            "10.99.255.255",
            "10.100.0.0",
            "9.255.255.255",
            "11.0.0.0",
        ] {
            let a = ip(probe);
            let linear = entries
                .iter()
                .any(|e| e.parse::<IpNet>().unwrap().contains(&a));
            assert_eq!(l.allows(a), linear, "{probe}");
        }
    }
}
