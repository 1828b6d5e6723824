//! The query matcher (hash sets, what stores use) agrees with the reference `Query::matches`
//! (list scans) on every filter (moved from `src/store.rs` so that proptest never builds for the
//! library's examples).

use api_tokens::{
    Expiry, IpAllowlist, LastUse, PermissionSet, Query, Status, Token, TokenId, TokenName, UserId,
};
use proptest::prelude::*;
use time::OffsetDateTime;

fn token(id: u64, owner: u64, creator: u64, name: &str, created: i64, used: Option<i64>) -> Token {
    Token {
        id: TokenId::new(id),
        name: TokenName::new(name).unwrap(),
        description: format!("about {name}"),
        owner: UserId::from(owner),
        creator: UserId::from(creator),
        status: if id.is_multiple_of(2) {
            Status::Enabled
        } else {
            Status::Disabled
        },
        created_at: OffsetDateTime::from_unix_timestamp(created).unwrap(),
        expiry: if id.is_multiple_of(3) {
            Expiry::NEVER
        } else {
            Expiry::from_unix(created + 100).unwrap()
        },
        permissions: PermissionSet::empty(),
        allowlist: IpAllowlist::any(),
        last_use: used.map(|at| LastUse {
            at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
            ip: None,
        }),
        secret: None,
        revision: 0,
        revoked: None,
        imported_from: None,
        limits: None,
        balance: None,
    }
}

proptest! {
    /// The matcher (hash sets, what stores use) agrees with the reference `matches` (list
    /// scans) on every filter, values drawn from a small range so that they hit.
    #[test]
    fn the_matcher_agrees_with_matches(
        tokens in prop::collection::vec(
            (0u64..8, 0u64..4, 0u64..4, "[ab]{1,2}", 0i64..4, prop::option::of(0i64..4)),
            1..12,
        ),
        ids in prop::option::of(prop::collection::vec(0u64..8, 0..5)),
        owners in prop::option::of(prop::collection::vec(0u64..4, 0..3)),
        creators in prop::option::of(prop::collection::vec(0u64..4, 0..3)),
        names in prop::option::of(prop::collection::vec("[ab]{1,2}", 0..3)),
        created in prop::option::of(prop::collection::vec(0i64..4, 0..3)),
        used in prop::option::of(prop::collection::vec(prop::option::of(0i64..4), 0..3)),
        expiring in prop::option::of(prop::collection::vec(prop::option::of(100i64..104), 0..3)),
        text in prop::option::of("[ab]{0,1}"),
    ) {
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let mut q = Query::new();
        q.ids = ids.map(|v| v.into_iter().map(TokenId::new).collect());
        q.owners = owners.map(|v| v.into_iter().map(UserId::from).collect());
        q.creators = creators.map(|v| v.into_iter().map(UserId::from).collect());
        q.names = names.map(|v| v.iter().map(|n| TokenName::new(n).unwrap()).collect());
        q.created_at = created.map(|v| v.into_iter().map(at).collect());
        q.last_used_at = used.map(|v| v.into_iter().map(|u| u.map(at)).collect());
        q.expires_at = expiring.map(|v| {
            v.into_iter()
                .map(|e| e.map_or(Expiry::NEVER, |s| Expiry::from_unix(s).unwrap()))
                .collect()
        });
        q.name_contains = text;
        let now = at(2);
        let m = q.matcher(now);
        for (id, owner, creator, name, c, u) in tokens {
            let t = token(id, owner, creator, &name, c, u);
            prop_assert_eq!(m.matches(&t), q.matches(&t, now), "{:?}", t);
        }
    }
}
