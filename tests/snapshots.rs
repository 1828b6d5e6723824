//! Snapshots: a round trip keeps every field; a tampered snapshot is refused with a clear error
//! and the store it was meant to replace is left exactly as it was; a persisted (sealed)
//! snapshot that was edited, or made under another hash key, is refused before anything else.

use api_tokens::store::memory::SNAPSHOT_VERSION;
use api_tokens::{
    Actor, Expiry, HashKey, IpAllowlist, LastUse, MemoryStore, NewToken, PermissionSet,
    RequestContext, SealedSnapshot, Snapshot, StoreError, TokenName, TokenUpdate, Tokens, UserId,
};
use time::Duration;

fn populated() -> (Tokens<MemoryStore>, Vec<String>) {
    let tokens = Tokens::in_memory();
    let admin = Actor::admin(UserId::from(1));
    let mut secrets = Vec::new();
    for (i, owner) in [(0, 2), (1, 2), (2, 3)] {
        let issued = tokens
            .issue(
                &admin,
                NewToken::new(TokenName::new(&format!("t{i}")).unwrap())
                    .owner(UserId::from(owner))
                    .description(format!("token {i}"))
                    .expires_at(tokens.now() + Duration::days(i + 1))
                    .permissions("dns.*, kill-acct".parse().unwrap())
                    .allowlist(IpAllowlist::parse(["10.0.0.0/8", "2001:db8::1"]).unwrap()),
            )
            .unwrap();
        secrets.push(issued.secret.expose().to_owned());
    }
    // A rotation with a grace period, a disabled token and a last use: every field set.
    let ids: Vec<_> = tokens
        .store()
        .snapshot()
        .tokens
        .iter()
        .map(|t| t.id)
        .collect();
    let s = tokens
        .generate_with(&admin, [ids[0]], Duration::hours(1), &mut rand::rng())
        .unwrap();
    secrets[0] = s[0].1.expose().to_owned();
    tokens
        .update(
            &admin,
            [TokenUpdate::new(ids[1]).status(api_tokens::Status::Disabled)],
        )
        .unwrap();
    tokens
        .authenticate(
            &secrets[2],
            &RequestContext::from_ip("10.1.1.1".parse().unwrap()),
        )
        .unwrap();
    (tokens, secrets)
}

#[test]
fn round_trip_keeps_every_field_and_secrets_still_work() {
    let (tokens, secrets) = populated();
    let snap = tokens.store().snapshot();
    let t0 = &snap.tokens[0];
    assert!(
        t0.secret.unwrap().previous.is_some(),
        "the fixture has a grace secret"
    );
    assert!(
        snap.tokens[2].last_use.is_some(),
        "the fixture has a last use"
    );
    let json = serde_json::to_string(&snap.seal(&HashKey::default())).unwrap();
    for s in &secrets {
        assert!(!json.contains(s.as_str()), "no secret in the snapshot");
    }
    let sealed: SealedSnapshot = serde_json::from_str(&json).unwrap();
    let back = sealed.open(&HashKey::default()).unwrap();
    assert_eq!(back, snap, "every field survives JSON");
    let restored = MemoryStore::from_snapshot(back).unwrap();
    assert_eq!(restored.snapshot(), snap, "and the store");
    let tokens2 = Tokens::new(restored);
    let ctx = RequestContext::from_ip("10.9.9.9".parse().unwrap());
    assert!(tokens2.authenticate(&secrets[0], &ctx).is_ok());
    assert!(tokens2.authenticate(&secrets[2], &ctx).is_ok());
    assert!(
        tokens2.authenticate(&secrets[1], &ctx).is_err(),
        "still disabled"
    );
    let last: LastUse = tokens2.store().snapshot().tokens[2].last_use.unwrap();
    assert!(last.at >= snap.tokens[2].last_use.unwrap().at);
}

/// Restoring `bad` into a populated store fails with an error containing `expect`, and the
/// store is unchanged.
fn refused(bad: Snapshot, expect: &str) {
    let (tokens, _) = populated();
    let before = tokens.store().snapshot();
    let err = tokens.store().restore(bad).unwrap_err();
    assert!(matches!(err, StoreError::InvalidSnapshot(_)), "{err:?}");
    assert!(
        err.to_string().contains(expect),
        "{err} should mention {expect:?}"
    );
    assert_eq!(tokens.store().snapshot(), before, "the store is untouched");
}

#[test]
fn tampered_snapshots_are_refused_and_change_nothing() {
    let (tokens, _) = populated();
    let good = tokens.store().snapshot();

    let mut v = good.clone();
    v.version = SNAPSHOT_VERSION + 1;
    refused(v, "unknown version");

    let mut dup_id = good.clone();
    dup_id.tokens[1].id = dup_id.tokens[0].id;
    refused(dup_id, "already exists");

    let mut dup_name = good.clone();
    dup_name.tokens[1].name = dup_name.tokens[0].name.clone();
    refused(dup_name, "already exists for owner");

    let mut dup_hash = good.clone();
    dup_hash.tokens[2].secret = dup_hash.tokens[0].secret;
    refused(dup_hash, "secret hash already in use");

    let mut low_next = good.clone();
    low_next.next_id = 2;
    refused(low_next, "next_id");

    // Same name under another owner is not a conflict.
    let mut other_owner = good.clone();
    other_owner.tokens[2].name = other_owner.tokens[0].name.clone();
    tokens.store().restore(other_owner).unwrap();
}

#[test]
fn an_expiry_far_in_the_future_or_past_survives() {
    let tokens = Tokens::new(MemoryStore::new()).with_policy(api_tokens::Policy::zabbix());
    let admin = Actor::admin(UserId::from(1));
    for (i, secs) in [(0, -62_135_596_800i64), (1, 253_402_300_799)] {
        tokens
            .create(
                &admin,
                [NewToken::new(TokenName::new(&format!("e{i}")).unwrap())
                    .permissions(PermissionSet::all())
                    .expiry(Expiry::from_unix(secs).unwrap())],
            )
            .unwrap();
    }
    let snap = tokens.store().snapshot();
    let json = serde_json::to_string(&snap.seal(&HashKey::default())).unwrap();
    let back = serde_json::from_str::<SealedSnapshot>(&json).unwrap();
    assert_eq!(back.open(&HashKey::default()).unwrap(), snap);
}

/// A store under a key of its own, and the JSON of its sealed snapshot.
fn sealed_json(key: &HashKey) -> (Tokens<MemoryStore>, String) {
    let tokens = Tokens::in_memory().with_hash_key(key.clone());
    let admin = Actor::admin(UserId::from(1));
    tokens
        .issue(
            &admin,
            NewToken::new(TokenName::new("deploy").unwrap())
                .owner(UserId::from(2))
                .permissions("dns.edit".parse().unwrap()),
        )
        .unwrap();
    let json = serde_json::to_string(&tokens.sealed_snapshot()).unwrap();
    (tokens, json)
}

#[test]
fn a_snapshot_edited_by_hand_is_refused_and_the_store_untouched() {
    let key = HashKey::new([42; 32]);
    let (tokens, json) = sealed_json(&key);
    let before = tokens.store().snapshot();
    assert!(json.contains("\"owner\":\"2\""), "{json}");
    // The edit an attacker with the file wants: owner to `admin`, permissions to everything.
    let edited = json
        .replace("\"owner\":\"2\"", "\"owner\":\"admin\"")
        .replace("\"permissions\":[\"dns.edit\"]", "\"permissions\":[\"*\"]");
    assert_ne!(edited, json);
    let sealed: SealedSnapshot = serde_json::from_str(&edited).unwrap();
    let err = tokens.restore_sealed(sealed).unwrap_err();
    assert!(matches!(err, StoreError::SnapshotTampered), "{err:?}");
    assert!(
        err.to_string().contains("changed after it was made"),
        "{err}"
    );
    assert_eq!(tokens.store().snapshot(), before, "the store is untouched");
    // Each single field counts: the seal covers every one.
    for (from, to) in [
        ("\"revision\":0", "\"revision\":7"),
        ("\"next_id\":2", "\"next_id\":9"),
        ("\"status\":\"enabled\"", "\"status\":\"disabled\""),
        ("\"name\":\"deploy\"", "\"name\":\"deploy2\""),
    ] {
        assert!(json.contains(from), "{from} in {json}");
        let sealed: SealedSnapshot = serde_json::from_str(&json.replace(from, to)).unwrap();
        assert!(
            matches!(sealed.open(&key), Err(StoreError::SnapshotTampered)),
            "{from} -> {to}"
        );
    }
    // The untouched file restores.
    tokens
        .restore_sealed(serde_json::from_str(&json).unwrap())
        .unwrap();
    assert_eq!(tokens.store().snapshot(), before);
}

#[test]
fn a_snapshot_sealed_under_another_key_gets_its_own_error() {
    let key = HashKey::new([42; 32]);
    let other = HashKey::new([43; 32]);
    let (_, json) = sealed_json(&key);
    let (tokens, _) = sealed_json(&other);
    let before = tokens.store().snapshot();
    let sealed: SealedSnapshot = serde_json::from_str(&json).unwrap();
    let err = tokens.restore_sealed(sealed).unwrap_err();
    match &err {
        StoreError::SnapshotKeyMismatch { snapshot, expected } => {
            assert_eq!(*snapshot, key.id());
            assert_eq!(*expected, other.id());
        }
        e => panic!("expected a key mismatch, got {e:?}"),
    }
    assert!(err.to_string().contains(&key.id().to_string()), "{err}");
    assert!(
        !err.to_string().contains("changed after"),
        "not called tampered"
    );
    assert_eq!(tokens.store().snapshot(), before, "the store is untouched");
    // The snapshot never shows the key, only its id.
    let hex: String = key.expose().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!json.contains(&hex));
}

#[test]
fn an_unsealed_or_old_snapshot_is_refused() {
    let key = HashKey::new([42; 32]);
    let (tokens, json) = sealed_json(&key);
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v.as_object_mut().unwrap().remove("seal");
    assert!(
        serde_json::from_value::<SealedSnapshot>(v.clone()).is_err(),
        "no seal, no snapshot"
    );
    v["seal"] = serde_json::Value::String("00".repeat(32));
    let forged: SealedSnapshot = serde_json::from_value(v.clone()).unwrap();
    assert!(matches!(
        forged.open(&key),
        Err(StoreError::SnapshotTampered)
    ));
    v["version"] = 1.into();
    let old: SealedSnapshot = serde_json::from_value(v).unwrap();
    let err = old.open(&key).unwrap_err();
    assert!(err.to_string().contains("version 1"), "{err}");
    drop(tokens);
}

/// A sealed version-3 snapshot (`main` at 23d3b96, before import origins), holding an ordinary
/// token and an imported Zabbix token never used: it still opens and restores, both secrets
/// authenticate, neither token has an origin, and sealed again it is of the current version.
/// An origin added to it is refused: version 3 sealed none. From version 4 on, origins are
/// sealed: editing one is refused like any other edit.
#[cfg(feature = "legacy")]
#[test]
fn a_version_3_snapshot_opens_and_import_origins_are_sealed_from_version_4() {
    use api_tokens::{ImportedToken, LegacyHash, LegacyScheme, TokenId};
    let old = include_str!("data/sealed-snapshot-v3-23d3b96.json");
    let secrets: Vec<&str> = include_str!("data/sealed-snapshot-v3-23d3b96.secrets")
        .lines()
        .collect();
    let key = HashKey::new([3; 32]);
    let sealed: SealedSnapshot = serde_json::from_str(old).unwrap();
    assert_eq!(sealed.version, 3);
    let tokens = Tokens::in_memory()
        .with_hash_key(key.clone())
        .with_legacy_scheme(LegacyScheme::ZabbixSha512);
    tokens.restore_sealed(sealed).unwrap();
    let ctx = RequestContext::unknown_address();
    for (secret, id) in secrets.iter().zip([1, 2]) {
        assert_eq!(
            tokens.authenticate(secret, &ctx).unwrap().token,
            TokenId::new(id)
        );
    }
    // (The Zabbix token was re-hashed by its use, and so changed; the origin is still none.)
    assert!(
        tokens
            .store()
            .snapshot()
            .tokens
            .iter()
            .all(|t| t.imported_from.is_none())
    );
    assert_eq!(tokens.sealed_snapshot().version, SNAPSHOT_VERSION);

    // An origin slipped into the version-3 document: not covered by its seal, refused.
    let mut v: serde_json::Value = serde_json::from_str(old).unwrap();
    v["tokens"][1]["imported_from"] = "ab".repeat(32).into();
    let edited: SealedSnapshot = serde_json::from_value(v).unwrap();
    assert!(matches!(
        edited.open(&key),
        Err(StoreError::SnapshotTampered)
    ));

    // Version 4 seals the origin: it round-trips, and editing it is refused.
    let hex: String = {
        use sha2::{Digest, Sha512};
        Sha512::digest(b"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let id = tokens
        .import(
            &Actor::admin(UserId::from(1)),
            [
                ImportedToken::new("imported".parse().unwrap(), UserId::from(2))
                    .permissions(PermissionSet::all())
                    .hash(LegacyHash::parse(LegacyScheme::ZabbixSha512, &hex).unwrap()),
            ],
        )
        .unwrap()[0];
    let origin_of = |store: &MemoryStore| {
        use api_tokens::TokenStore;
        store.get(id).unwrap().unwrap().imported_from
    };
    let origin = origin_of(tokens.store());
    let json = serde_json::to_value(tokens.sealed_snapshot()).unwrap();
    let restored = Tokens::in_memory()
        .with_hash_key(key.clone())
        .with_legacy_scheme(LegacyScheme::ZabbixSha512);
    restored
        .restore_sealed(serde_json::from_value(json.clone()).unwrap())
        .unwrap();
    assert!(origin.is_some());
    assert_eq!(origin_of(restored.store()), origin);
    let mut v = json;
    let i = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t["id"] == id.get())
        .unwrap();
    assert_eq!(v["tokens"][i]["imported_from"], origin.unwrap().to_hex());
    v["tokens"][i]["imported_from"] = "cd".repeat(32).into();
    let edited: SealedSnapshot = serde_json::from_value(v).unwrap();
    assert!(matches!(
        edited.open(&key),
        Err(StoreError::SnapshotTampered)
    ));
}
