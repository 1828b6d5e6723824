//! Hostile input: arbitrary strings and bytes into every parser and every entry point. Nothing
//! panics, every refusal is a typed error, and nothing changes in the store.

use api_tokens::{
    Actor, DenialKind, Expiry, IpAllowlist, MalformedSecret, MemoryStore, NewToken, Permission,
    PermissionSet, Policy, Query, RequestContext, SecretFormat, TokenId, TokenName, Tokens, UserId,
    store::memory::SealedSnapshot, store::memory::Snapshot,
};
use proptest::prelude::*;

fn formats() -> [SecretFormat; 3] {
    [
        SecretFormat::default(),
        SecretFormat::Zabbix,
        SecretFormat::Cpanel,
    ]
}

/// A store with a few tokens in every format's policy.
fn populated(policy: Policy) -> Tokens<MemoryStore> {
    let tokens = Tokens::new(MemoryStore::new()).with_policy(policy);
    let admin = Actor::admin(UserId::from(1));
    for i in 0..3 {
        tokens
            .issue(
                &admin,
                NewToken::new(TokenName::new(&format!("t{i}")).unwrap())
                    .permissions(PermissionSet::all()),
            )
            .unwrap();
    }
    tokens
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn presented_secrets_never_panic_and_never_change_anything(
        s in prop_oneof![".{0,200}", "[0-9a-zA-Z_]{0,80}", "tok_[0-9a-zA-Z]{49}", "[0-9a-f]{64}", "[0-9A-Z]{32}"]
    ) {
        for format in formats() {
            let _ = format.parse(&s);
        }
        for policy in [Policy::default(), Policy::zabbix(), Policy::cpanel()] {
            let tokens = populated(policy);
            let before = tokens.store().snapshot();
            let r = tokens.authenticate(&s, &RequestContext::from_ip("10.0.0.1".parse().unwrap()));
            let d = r.expect_err("a random string is never a valid secret");
            prop_assert!(matches!(d.kind(), DenialKind::Malformed | DenialKind::Unknown));
            let _ = tokens.revoke_by_secret(&s).unwrap();
            let admin = Actor::admin(UserId::from(1));
            prop_assert_eq!(tokens.find_by_secret(&admin, &s).unwrap(), None);
            prop_assert_eq!(tokens.store().snapshot(), before);
        }
    }

    #[test]
    fn arbitrary_bytes_as_secrets(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let s = String::from_utf8_lossy(&bytes);
        for format in formats() {
            let _ = format.parse(&s);
        }
    }

    #[test]
    fn value_parsers_refuse_with_typed_errors(s in ".{0,300}") {
        // Each either accepts (and round-trips) or names the field it refused.
        if let Ok(n) = TokenName::new(&s) { prop_assert_eq!(n.as_str(), s.as_str()); }
        if let Ok(u) = UserId::new(&s) { prop_assert_eq!(u.as_str(), s.as_str()); }
        if let Ok(p) = Permission::new(&s) { prop_assert!(!p.as_str().is_empty()); }
        let _ = s.parse::<PermissionSet>();
        let _ = s.parse::<IpAllowlist>();
        let _ = IpAllowlist::parse([s.as_str()]);
        let _ = s.parse::<TokenId>();
        let _ = SecretFormat::prefixed(&s);
        if let Ok(n) = s.parse::<i64>() { let _ = Expiry::from_unix(n); }
    }

    #[test]
    fn query_values_never_panic(text in ".{0,50}", limit in 0usize..5, secs in any::<i64>()) {
        let tokens = populated(Policy::default());
        let admin = Actor::admin(UserId::from(1));
        let mut q = Query::new().name_contains(text.clone()).description_contains(text).limit(limit);
        if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) {
            q = q.valid_at(t).expired_at(t);
        }
        let listed = tokens.list(&admin, &q).unwrap();
        prop_assert!(listed.len() <= limit);
        let _ = tokens.count(&admin, &q).unwrap();
    }

    #[test]
    fn snapshot_json_of_any_shape_is_refused_or_restored_never_half(
        bytes in prop::collection::vec(any::<u8>(), 0..400)
    ) {
        let tokens = populated(Policy::default());
        let before = tokens.store().snapshot();
        if let Ok(sealed) = serde_json::from_slice::<SealedSnapshot>(&bytes)
            && tokens.restore_sealed(sealed).is_err() {
                prop_assert_eq!(tokens.store().snapshot(), before.clone());
            }
        let _ = MemoryStore::from_snapshot(before);
    }
}

#[test]
fn megabytes_are_refused_by_length_before_anything_else() {
    let tokens = populated(Policy::default());
    for len in [129, 1 << 20, 16 << 20] {
        let huge = "a".repeat(len);
        for format in formats() {
            assert!(matches!(
                format.parse(&huge),
                Err(MalformedSecret::TooLong { max: 128 })
            ));
        }
        let d = tokens
            .authenticate(&huge, &RequestContext::unknown_address())
            .unwrap_err();
        assert!(matches!(
            d,
            api_tokens::Denial::Malformed(MalformedSecret::TooLong { .. })
        ));
        assert!(tokens.revoke_by_secret(&huge).unwrap().is_unknown());
    }
}

#[test]
fn mangled_snapshot_json_is_refused_with_a_clear_error() {
    let tokens = populated(Policy::default());
    let json = serde_json::to_string(&tokens.sealed_snapshot()).unwrap();
    for cut in [0, 1, json.len() / 3, json.len() / 2, json.len() - 1] {
        assert!(
            serde_json::from_str::<SealedSnapshot>(&json[..cut]).is_err(),
            "a snapshot truncated at {cut} is refused"
        );
    }
    let bad_hash = json.replacen("\"hash\":\"", "\"hash\":\"zz", 1);
    let err = serde_json::from_str::<SealedSnapshot>(&bad_hash).unwrap_err();
    assert!(err.to_string().contains("64 hex digits"), "{err}");
    let bad_name = json.replacen("\"name\":\"t0\"", "\"name\":\" t0\"", 1);
    let err = serde_json::from_str::<SealedSnapshot>(&bad_name).unwrap_err();
    assert!(err.to_string().contains("whitespace"), "{err}");
    let bad_ip = json.replacen("\"allowlist\":[]", "\"allowlist\":[\"1.2.3.999\"]", 1);
    assert!(serde_json::from_str::<SealedSnapshot>(&bad_ip).is_err());
    let bad_perm = json.replacen("\"permissions\":[\"*\"]", "\"permissions\":[\"a b\"]", 1);
    assert!(serde_json::from_str::<SealedSnapshot>(&bad_perm).is_err());
}

#[test]
fn extreme_query_durations_do_not_panic() {
    let tokens = populated(Policy::default());
    let admin = Actor::admin(UserId::from(1));
    for d in [
        time::Duration::MAX,
        time::Duration::MIN,
        time::Duration::ZERO,
    ] {
        let q = Query::new().expiring_within(d);
        assert!(tokens.list(&admin, &q).is_ok());
        assert!(tokens.count(&admin, &q).is_ok());
    }
}

#[test]
fn an_exhausted_id_space_is_an_error_not_a_panic() {
    let store = MemoryStore::from_snapshot(Snapshot::new(u64::MAX - 1, Vec::new())).unwrap();
    let tokens = Tokens::new(store);
    let admin = Actor::admin(UserId::from(1));
    let item =
        |n: &str| NewToken::new(TokenName::new(n).unwrap()).permissions(PermissionSet::all());
    let one = tokens.create(&admin, [item("last")]);
    assert!(one.is_ok(), "the last id is still handed out");
    let before = tokens.store().snapshot();
    let err = tokens.create(&admin, [item("over")]).unwrap_err();
    assert!(matches!(err, api_tokens::Error::Store(_)), "{err}");
    assert_eq!(tokens.store().snapshot(), before, "nothing changed");
}
