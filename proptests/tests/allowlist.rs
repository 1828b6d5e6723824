//! IP allowlists: parsing never panics, printing round-trips, normalising is idempotent, and the
//! binary search agrees with a linear scan (moved from `src/allowlist.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use api_tokens::IpAllowlist;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

fn net_strategy() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, p)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), p).unwrap())),
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, p)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), p).unwrap())),
    ]
}

/// The reference rule, written independently of the crate: host bits cleared, and an
/// IPv4-mapped IPv6 range of prefix 96 or more covers the IPv4 addresses it maps.
fn covers(net: &IpNet, v4: Ipv4Addr) -> bool {
    match net {
        IpNet::V4(n) => n.trunc().contains(&v4),
        IpNet::V6(n) => match n.addr().to_ipv4_mapped() {
            Some(mapped) if n.prefix_len() >= 96 => {
                Ipv4Net::new(mapped, n.prefix_len() - 96).is_ok_and(|m| m.trunc().contains(&v4))
            }
            _ => false,
        },
    }
}

proptest! {
    #[test]
    fn parse_never_panics(s in ".{0,80}") {
        let _ = s.parse::<IpAllowlist>();
    }

    #[test]
    fn display_roundtrips_and_normalising_twice_changes_nothing(
        nets in prop::collection::vec(net_strategy(), 0..8)
    ) {
        let l = IpAllowlist::new(nets);
        prop_assert_eq!(l.to_string().parse::<IpAllowlist>().unwrap(), l.clone());
        prop_assert_eq!(IpAllowlist::new(l.entries().iter().copied()), l.clone());
        let json = serde_json::to_string(&l).unwrap();
        prop_assert_eq!(serde_json::from_str::<IpAllowlist>(&json).unwrap(), l);
    }

    #[test]
    fn allows_agrees_with_a_linear_scan(
        nets in prop::collection::vec(net_strategy(), 0..8),
        probe in any::<u32>(),
    ) {
        let l = IpAllowlist::new(nets.clone());
        let v4 = Ipv4Addr::from(probe);
        let linear = nets.is_empty() || nets.iter().any(|n| covers(n, v4));
        prop_assert_eq!(l.allows(IpAddr::V4(v4)), linear);
    }
}

/// An address near one of `nets` (its network, its last address, or one past either end) or,
/// for `pick` past the list, anywhere: random addresses alone almost never land in a range.
fn probe_near(nets: &[IpNet], pick: usize, bits: u128) -> IpAddr {
    let Some(n) = nets.get(pick) else {
        return if bits & 1 == 0 {
            IpAddr::V4(Ipv4Addr::from(bits as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(bits))
        };
    };
    let at = match bits % 4 {
        0 => n.network(),
        1 => n.broadcast(),
        2 => step(n.network(), false),
        _ => step(n.broadcast(), true),
    };
    // Every fourth probe of an IPv4 range is written IPv4-mapped, as a dual-stack socket does.
    match at {
        IpAddr::V4(v4) if (bits >> 2).is_multiple_of(4) => IpAddr::V6(v4.to_ipv6_mapped()),
        a => a,
    }
}

fn step(a: IpAddr, up: bool) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let x = u32::from(v);
            IpAddr::V4(Ipv4Addr::from(if up {
                x.wrapping_add(1)
            } else {
                x.wrapping_sub(1)
            }))
        }
        IpAddr::V6(v) => {
            let x = u128::from(v);
            IpAddr::V6(Ipv6Addr::from(if up {
                x.wrapping_add(1)
            } else {
                x.wrapping_sub(1)
            }))
        }
    }
}

/// The reference rule for any client address: an IPv4-mapped one is checked as IPv4.
fn covers_ip(net: &IpNet, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => covers(net, v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => covers(net, v4),
            None => matches!(net, IpNet::V6(n) if n.trunc().contains(&v6)),
        },
    }
}

proptest! {
    /// The per-family search (one integer compare per step) against the reference, with
    /// probes at and just outside the ranges' edges, of both families and IPv4-mapped.
    #[test]
    fn allows_agrees_with_a_linear_scan_at_the_edges_of_both_families(
        nets in prop::collection::vec(net_strategy(), 0..12),
        pick in 0usize..16,
        bits in any::<u128>(),
    ) {
        let l = IpAllowlist::new(nets.clone());
        let ip = probe_near(&nets, pick, bits);
        let linear = nets.is_empty() || nets.iter().any(|n| covers_ip(n, ip));
        prop_assert_eq!(l.allows(ip), linear, "{} for {}", ip, l);
    }
}

/// IPv4-mapped and other edge entries that random 128-bit networks almost never produce
/// (`::ffff:0:0/95` stays IPv6, `::ffff:0:0/96` is every IPv4 address, `::/0` no IPv4 client),
/// every list of one to three of them, against the reference at edge probes of both families.
#[test]
fn tricky_entries_in_every_small_combination_agree_with_the_reference() {
    let entries: Vec<IpNet> = [
        "::/0",
        "0.0.0.0/0",
        "::ffff:0:0/96",
        "::ffff:0:0/95",
        "::fffe:0:0/95",
        "::ffff:0:0/97",
        "::ffff:128.0.0.0/97",
        "::ffff:10.0.0.0/104",
        "::ffff:10.1.2.3/128",
        "::/96",
        "::/80",
        "::/127",
        "::1/128",
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.2.3/32",
        "0.0.0.0/32",
        "255.255.255.255/32",
        "128.0.0.0/1",
        "2001:db8::/32",
        "8000::/1",
        "::ffff:255.255.255.255/128",
        "64:ff9b::/96",
        "::ffff:1.2.3.4/120",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let probes: Vec<IpAddr> = [
        "0.0.0.0",
        "10.1.2.3",
        "10.1.2.4",
        "10.255.255.255",
        "11.0.0.0",
        "9.255.255.255",
        "128.0.0.0",
        "127.255.255.255",
        "255.255.255.255",
        "1.2.3.4",
        "1.2.4.0",
        "::",
        "::1",
        "::2",
        "::ffff:0.0.0.0",
        "::ffff:10.1.2.3",
        "::ffff:255.255.255.255",
        "::fffe:ffff:ffff",
        "::1:0:0",
        "::10.1.2.3",
        "::ffff:0:1:0:0",
        "2001:db8::1",
        "2001:db9::",
        "64:ff9b::a01:203",
        "8000::",
        "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let mut lists = 0;
    for (i, a) in entries.iter().enumerate() {
        for (j, b) in entries.iter().enumerate().skip(i) {
            for c in entries.iter().skip(j) {
                for nets in [vec![*a], vec![*a, *b], vec![*a, *b, *c]] {
                    let l = IpAllowlist::new(nets.iter().copied());
                    for &ip in &probes {
                        let reference = nets.iter().any(|n| covers_ip(n, ip));
                        assert_eq!(l.allows(ip), reference, "{nets:?} {ip} -> {l}");
                    }
                    lists += 1;
                }
            }
        }
    }
    assert!(lists > 2_000, "{lists} lists");
}
