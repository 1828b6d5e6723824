//! Permission names and sets: parsing never panics, printing round-trips, and the set laws hold
//! (moved from `src/permission.rs` so that proptest never builds for the library's examples).

use api_tokens::{Permission, PermissionSet};
use proptest::prelude::*;

fn p(s: &str) -> Permission {
    Permission::new(s).unwrap()
}

fn perm_strategy() -> impl Strategy<Value = Permission> {
    prop_oneof![
        Just(p("*")),
        "[a-c]{1,2}(\\.[a-c]{1,2}){0,2}".prop_map(|s| p(&s)),
        "[a-c]{1,2}(\\.[a-c]{1,2}){0,1}\\.\\*".prop_map(|s| p(&s)),
    ]
}

fn set_strategy() -> impl Strategy<Value = PermissionSet> {
    prop::collection::vec(perm_strategy(), 0..5).prop_map(PermissionSet::new)
}

proptest! {
    #[test]
    fn parse_never_panics(s in ".{0,200}") {
        let _ = Permission::new(&s);
        let _ = s.parse::<PermissionSet>();
    }

    #[test]
    fn display_roundtrips(s in set_strategy()) {
        prop_assert_eq!(s.to_string().parse::<PermissionSet>().unwrap(), s.clone());
        let json = serde_json::to_string(&s).unwrap();
        prop_assert_eq!(serde_json::from_str::<PermissionSet>(&json).unwrap(), s);
    }

    #[test]
    fn normalising_twice_changes_nothing(s in set_strategy()) {
        prop_assert_eq!(PermissionSet::new(s.iter().cloned()), s);
    }

    #[test]
    fn subset_is_transitive(a in set_strategy(), b in set_strategy(), c in set_strategy()) {
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }

    #[test]
    fn order_is_consistent_with_eq(a in set_strategy(), b in set_strategy()) {
        prop_assert_eq!(a <= b && b <= a, a == b);
    }

    #[test]
    fn intersection_is_within_both(a in set_strategy(), b in set_strategy(), q in perm_strategy()) {
        let i = a.intersection(&b);
        prop_assert!(i <= a && i <= b);
        prop_assert_eq!(i.allows(&q), a.allows(&q) && b.allows(&q));
    }
}
