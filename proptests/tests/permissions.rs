//! Permission names and sets: parsing never panics, printing round-trips, the set laws hold,
//! and the fast set operations agree with their pairwise definitions (moved from
//! `src/permission.rs` so that proptest never builds for the library's examples).

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

/// The obvious definitions, pairwise: what the fast operations must agree with.
mod naive {
    use api_tokens::Permission;

    pub fn normalise(v: &[Permission]) -> Vec<Permission> {
        let mut out: Vec<Permission> = v
            .iter()
            .filter(|x| !v.iter().any(|y| y != *x && y.covers(x)))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub fn allows(set: &[Permission], q: &Permission) -> bool {
        set.iter().any(|m| m.covers(q))
    }
}

/// Names over characters on both sides of `*` and `.` in sort order (`-` `0` `:` `_` `a`),
/// where an ordering mistake would show.
fn tricky_perm() -> impl Strategy<Value = Permission> {
    prop_oneof![
        1 => Just(p("*")),
        4 => "[-0:_a]{1,2}(\\.[-0:_a]{1,2}){0,2}".prop_map(|s| p(&s)),
        4 => "[-0:_a]{1,2}(\\.[-0:_a]{1,2}){0,1}\\.\\*".prop_map(|s| p(&s)),
    ]
}

proptest! {
    #[test]
    fn fast_operations_agree_with_the_pairwise_definitions(
        a in prop::collection::vec(tricky_perm(), 0..12),
        b in prop::collection::vec(tricky_perm(), 0..12),
        q in tricky_perm(),
    ) {
        let sa = PermissionSet::new(a.clone());
        let sb = PermissionSet::new(b.clone());
        prop_assert_eq!(sa.iter().cloned().collect::<Vec<_>>(), naive::normalise(&a));
        prop_assert_eq!(sa.allows(&q), naive::allows(&a, &q));
        let subset = a.iter().all(|x| naive::allows(&b, x));
        prop_assert_eq!(sa.is_subset(&sb), subset);
        let both: Vec<Permission> = a
            .iter()
            .chain(&b)
            .filter(|x| naive::allows(&a, x) && naive::allows(&b, x))
            .cloned()
            .collect();
        prop_assert_eq!(
            sa.intersection(&sb).iter().cloned().collect::<Vec<_>>(),
            naive::normalise(&both)
        );
        let missing: Vec<Permission> =
            sa.iter().filter(|x| !naive::allows(&b, x)).cloned().collect();
        prop_assert_eq!(sa.not_covered_by(&sb).iter().cloned().collect::<Vec<_>>(), missing);
    }
}
