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
