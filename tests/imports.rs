//! Tokens imported with the hash another system kept (feature `legacy`): a Zabbix or SHA-256
//! hash authenticates its original secret and is re-hashed the ordinary way on first use; a
//! wrong secret is refused; imports keep status, expiry and times within range, are for
//! administrators and keep to the policy; and one legacy hash makes one token: an import of a
//! hash an existing token came from is refused, also after that token's first use re-hashed it
//! (the record then no longer holds the imported hash), for another owner, and across a
//! rotation of the hash key, on every store.

use std::sync::{Arc, Mutex};

use api_tokens::store::TokenStore;
use api_tokens::{
    Actor, DenialKind, Error, EventKind, Expiry, Field, HashScheme, ImportedToken, LastUse,
    LegacyHash, LegacyScheme, ManualClock, MemoryStore, Problem, Query, SecretFormat, SecretHash,
    Status, StoreError, TokenId, TokenRevocation, Tokens, UserId,
};
use sha2::{Digest, Sha256};
use time::Duration;
use time::macros::datetime;

use crate::support::hooked::Hooked;
use crate::support::keys::{key_a, key_b, rehashed, tokens_on};
use crate::support::legacy::{
    ZABBIX_SECRET as SECRET, an_unrecorded_twin, import, zabbix_row, zabbix_tokens_on,
};
use crate::support::{NOW, admin, ctx, hex};

#[test]
fn an_imported_zabbix_token_authenticates_with_its_original_secret_and_is_upgraded() {
    let store = Arc::new(MemoryStore::new());
    let (t, events) = tokens_on(store.clone(), key_b());
    let t = t.with_legacy_scheme(LegacyScheme::ZabbixSha512);
    // A Zabbix secret: 64 hex digits, as token.generate hands out.
    let secret = "7a1b3c5d9e0f11223344556677889900aabbccddeeff00112233445566778899";
    let created = datetime!(2021-01-21 14:07:52 UTC);
    let used = LastUse {
        at: datetime!(2026-02-01 8:00 UTC),
        ip: Some("10.1.2.3".parse().unwrap()),
    };
    let ids = t
        .import(
            &admin(),
            [
                ImportedToken::new("Your token".parse().unwrap(), UserId::from(2))
                    .description("imported from Zabbix")
                    .creator(UserId::from(7))
                    .created_at(created)
                    .last_use(used)
                    .expiry(Expiry::at(datetime!(2030-01-01 0:00 UTC)))
                    .permissions("*".parse().unwrap())
                    .hash(zabbix_row(secret)),
            ],
        )
        .unwrap();
    let id = ids[0];
    let kept = t.get(&admin(), id).unwrap();
    assert_eq!(kept.name.as_str(), "Your token");
    assert_eq!(kept.description, "imported from Zabbix");
    assert_eq!(kept.owner, UserId::from(2));
    assert_eq!(kept.creator, UserId::from(7));
    assert_eq!(kept.created_at, created);
    assert_eq!(kept.last_use, Some(used));
    assert_eq!(kept.expiry, Expiry::at(datetime!(2030-01-01 0:00 UTC)));
    let s = kept.secret.unwrap();
    assert_eq!(
        s.scheme,
        HashScheme::legacy(LegacyScheme::ZabbixSha512, key_b().id())
    );
    assert_eq!(s.generated_at, created);
    assert!(matches!(
        events.take().last().map(|e| &e.kind),
        Some(EventKind::Imported {
            legacy: Some(LegacyScheme::ZabbixSha512)
        })
    ));

    // The host's own format is `tok_…`; the Zabbix shape is accepted too, for this scheme.
    assert_eq!(t.authenticate(secret, &ctx()).unwrap().token, id);
    assert_eq!(
        rehashed(&events),
        vec![(
            Some(id),
            HashScheme::legacy(LegacyScheme::ZabbixSha512, key_b().id()),
            HashScheme::keyed(key_b().id())
        )]
    );
    let upgraded = store.get(id).unwrap().unwrap().secret.unwrap();
    assert_eq!(upgraded.scheme, HashScheme::keyed(key_b().id()));
    assert_eq!(
        upgraded.hash,
        SecretHash::of(&key_b(), &SecretFormat::Zabbix.parse(secret).unwrap()),
        "now the ordinary keyed hash of the same secret"
    );
    // It keeps working, the ordinary way.
    assert_eq!(t.authenticate(secret, &ctx()).unwrap().token, id);
    assert!(rehashed(&events).is_empty());
    assert_eq!(t.hash_key_report().unwrap().not_current(), 0);
}

#[test]
fn a_wrong_secret_against_a_legacy_hash_is_refused() {
    let (t, events) = tokens_on(MemoryStore::new(), key_b());
    let t = t
        .with_legacy_scheme(LegacyScheme::ZabbixSha512)
        .with_legacy_scheme(LegacyScheme::Sha256);
    let secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let app = "my-old-app-key-0123456789";
    t.import(
        &admin(),
        [
            ImportedToken::new("z".parse().unwrap(), UserId::from(2))
                .permissions("*".parse().unwrap())
                .hash(zabbix_row(secret)),
            ImportedToken::new("s".parse().unwrap(), UserId::from(2))
                .permissions("*".parse().unwrap())
                .hash(LegacyHash::parse(LegacyScheme::Sha256, &hex(&Sha256::digest(app))).unwrap()),
        ],
    )
    .unwrap();
    let before = t.store().snapshot();
    events.take();
    // One digit off, the right shape: unknown. Garbage: malformed. Nothing re-hashed.
    let mut wrong = secret.to_owned();
    wrong.replace_range(0..1, "1");
    for (presented, kind) in [
        (wrong.as_str(), DenialKind::Unknown),
        ("my-old-app-key-0123456780", DenialKind::Unknown),
        ("MY-OLD-APP-KEY-0123456789", DenialKind::Unknown),
        ("short", DenialKind::Malformed),
        ("", DenialKind::Malformed),
        (&"z".repeat(200), DenialKind::Malformed),
    ] {
        let d = t.authenticate(presented, &ctx()).unwrap_err();
        assert_eq!(d.kind(), kind, "{presented:?}: {d}");
    }
    assert!(rehashed(&events).is_empty());
    assert_eq!(t.store().snapshot(), before, "nothing changed");
    // The right ones work, and only then are re-hashed.
    assert!(t.authenticate(secret, &ctx()).is_ok());
    assert!(t.authenticate(app, &ctx()).is_ok());
    assert_eq!(rehashed(&events).len(), 2);
    // Without the scheme honoured, an imported hash never matches.
    let (plain, _) = tokens_on(MemoryStore::new(), key_b());
    plain.store().restore(before).unwrap();
    let err = plain.check_hash_keys().unwrap_err();
    assert!(
        matches!(&err, Error::Store(StoreError::HashKeysMissing { legacy, .. })
            if legacy.len() == 2),
        "{err:?}"
    );
}

#[test]
fn sha256_hashes_import_from_hex_or_base64() {
    let (t, _) = tokens_on(MemoryStore::new(), key_a());
    let t = t.with_legacy_scheme(LegacyScheme::Sha256);
    let secrets = ["key-one-from-rails-app", "key_two_from_django_app"];
    let digest = |s: &str| Sha256::digest(s.as_bytes());
    let b64 = {
        // Standard base64 of the second digest, written out by hand (no base64 crate here).
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let d = digest(secrets[1]);
        let mut out = String::new();
        for chunk in d.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out.push('=');
        out
    };
    let ids = t
        .import(
            &admin(),
            [
                ImportedToken::new("hex".parse().unwrap(), UserId::from(2))
                    .permissions("*".parse().unwrap())
                    .hash(
                        LegacyHash::parse(LegacyScheme::Sha256, &hex(&digest(secrets[0]))).unwrap(),
                    ),
                ImportedToken::new("b64".parse().unwrap(), UserId::from(2))
                    .permissions("*".parse().unwrap())
                    .hash(LegacyHash::parse(LegacyScheme::Sha256, &b64).unwrap()),
            ],
        )
        .unwrap();
    for (id, s) in ids.iter().zip(secrets) {
        assert_eq!(t.authenticate(s, &ctx()).unwrap().token, *id);
    }
}

#[test]
fn imports_keep_status_and_expiry_and_refuse_what_they_must() {
    let (t, events) = tokens_on(MemoryStore::new(), key_b());
    let honoured = t.with_legacy_scheme(LegacyScheme::ZabbixSha512);
    let off = "0000000000000000000000000000000000000000000000000000000000000001";
    let gone = "0000000000000000000000000000000000000000000000000000000000000002";
    let row = |name: &str, secret: &str| {
        ImportedToken::new(name.parse().unwrap(), UserId::from(2))
            .permissions("*".parse().unwrap())
            .hash(zabbix_row(secret))
    };
    let ids = honoured
        .import(
            &admin(),
            [
                row("disabled", off).status(Status::Disabled),
                // Expired long ago: kept, as Zabbix keeps it.
                row("expired", gone).expiry(Expiry::at(datetime!(2020-01-01 0:00 UTC))),
                // Never generated: no hash.
                ImportedToken::new("never generated".parse().unwrap(), UserId::from(2))
                    .permissions("*".parse().unwrap()),
            ],
        )
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        honoured.authenticate(off, &ctx()).unwrap_err().kind(),
        DenialKind::Disabled
    );
    assert_eq!(
        honoured.authenticate(gone, &ctx()).unwrap_err().kind(),
        DenialKind::Expired
    );
    assert!(
        rehashed(&events).is_empty(),
        "refused tokens keep their hash"
    );
    assert_eq!(honoured.get(&admin(), ids[2]).unwrap().secret, None);

    let secret = "0000000000000000000000000000000000000000000000000000000000000003";
    let refused = |items: Vec<ImportedToken>| honoured.import(&admin(), items).unwrap_err();
    // The same hash twice in one batch.
    let e = refused(vec![row("x1", secret), row("x2", secret)]);
    assert!(
        matches!(&e, Error::Invalid { index: Some(1), source } if source.field == Field::LegacyHash
            && source.problem == Problem::Duplicate),
        "{e:?}"
    );
    // A name the owner has.
    let e = refused(vec![row("disabled", secret)]);
    assert!(
        matches!(&e, Error::Invalid { source, .. } if source.field == Field::Name),
        "{e:?}"
    );
    // A hash a stored token was imported from: refused naming the item and the token.
    let e = refused(vec![row("again", off)]);
    assert!(
        matches!(&e, Error::Invalid { index: Some(0), source } if source.field == Field::LegacyHash
            && source.problem == Problem::AlreadyImported { token: ids[0] }),
        "{e:?}"
    );
    // Someone else's tokens, for a user who may manage only their own.
    let e = honoured
        .import(&Actor::user(UserId::from(3)), [row("theirs", secret)])
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e:?}");
    // A scheme not honoured: its secret could never authenticate.
    let (plain, _) = tokens_on(MemoryStore::new(), key_b());
    let e = plain.import(&admin(), [row("z", secret)]).unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { source, .. } if source.problem == Problem::SchemeNotHonoured),
        "{e:?}"
    );
    assert_eq!(
        honoured.store().len(),
        3,
        "nothing of the refused batches imported"
    );
}

#[test]
fn imports_are_for_administrators_and_keep_to_the_policy_and_the_clock() {
    let (t, _) = tokens_on(MemoryStore::new(), key_b());
    let mut policy = api_tokens::Policy::default();
    policy.max_lifetime = Some(Duration::days(90));
    let t = t
        .with_legacy_scheme(LegacyScheme::ZabbixSha512)
        .with_policy(policy);
    let secret = "0000000000000000000000000000000000000000000000000000000000000007";
    let row = |name: &str| {
        ImportedToken::new(name.parse().unwrap(), UserId::from(2))
            .permissions("reports.read".parse().unwrap())
            .hash(zabbix_row(secret))
            .expiry(Expiry::at(NOW + Duration::days(30)))
    };
    // A user may not import a secret of its choosing for itself, even one it "owns".
    let e = t
        .import(&Actor::user(UserId::from(2)), [row("mine")])
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Forbidden {
                source: api_tokens::Forbidden::ImportNeedsAdmin,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.code(), "import_needs_admin");
    // An expiry still ahead obeys the longest lifetime ("never" included) ...
    for expiry in [Expiry::NEVER, Expiry::at(NOW + Duration::days(91))] {
        let e = t
            .import(&admin(), [row("long").expiry(expiry)])
            .unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { source, .. } if source.field == Field::Expiry
                && matches!(source.problem, Problem::LifetimeTooLong { .. })),
            "{e:?}"
        );
    }
    // ... creation and last-use times lie between the epoch and now ...
    let late = NOW + Duration::seconds(1);
    let used = |at| LastUse { at, ip: None };
    for (item, field) in [
        (row("future").created_at(late), Field::CreatedAt),
        (
            row("ancient").created_at(datetime!(1969-12-31 23:59:59 UTC)),
            Field::CreatedAt,
        ),
        (row("used later").last_use(used(late)), Field::LastUse),
        (
            // A local time whose UTC form is past year 9999.
            row("edge").last_use(used(datetime!(9999-12-31 23:59:59 -23:59))),
            Field::LastUse,
        ),
    ] {
        let e = t.import(&admin(), [item]).unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { source, .. } if source.field == field
                && source.problem == Problem::OutOfRange),
            "{e:?}"
        );
        assert_eq!(e.code(), "out_of_range");
    }
    assert!(t.store().is_empty(), "nothing refused was imported");
    // ... and an expiry already past is kept as it is, and so are times within range.
    let ids = t
        .import(
            &admin(),
            [row("expired")
                .expiry(Expiry::at(datetime!(2020-01-01 0:00 UTC)))
                .created_at(datetime!(2019-01-01 0:00 UTC))
                .last_use(used(NOW))],
        )
        .unwrap();
    assert_eq!(
        t.authenticate(secret, &ctx()).unwrap_err().kind(),
        DenialKind::Expired
    );
    assert_eq!(ids.len(), 1);
}

#[test]
fn imported_hashes_survive_a_snapshot() {
    let (t, _) = tokens_on(MemoryStore::new(), key_a());
    let t = t.with_legacy_scheme(LegacyScheme::ZabbixSha512);
    let secret = "abababababababababababababababababababababababababababababababab";
    t.import(
        &admin(),
        [ImportedToken::new("z".parse().unwrap(), UserId::from(2))
            .permissions("*".parse().unwrap())
            .hash(zabbix_row(secret))],
    )
    .unwrap();
    let json = serde_json::to_string(&t.sealed_snapshot()).unwrap();
    assert!(
        json.contains(&format!("zabbix-sha512:{}", key_a().id())),
        "{json}"
    );
    let (u, _) = tokens_on(MemoryStore::new(), key_a());
    let u = u.with_legacy_scheme(LegacyScheme::ZabbixSha512);
    u.restore_sealed(serde_json::from_str(&json).unwrap())
        .unwrap();
    assert!(u.authenticate(secret, &ctx()).is_ok());
}

#[cfg(feature = "sqlite")]
#[test]
fn imported_hashes_survive_a_reopen() {
    let dir = crate::support::TempDir::new("import");
    let path = dir.join("tokens.db");
    let secret = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
    {
        let (t, _) = tokens_on(
            api_tokens::store::sqlite::SqliteStore::open(&path).unwrap(),
            key_a(),
        );
        let t = t.with_legacy_scheme(LegacyScheme::ZabbixSha512);
        t.import(
            &admin(),
            [ImportedToken::new("z".parse().unwrap(), UserId::from(2))
                .permissions("*".parse().unwrap())
                .hash(zabbix_row(secret))],
        )
        .unwrap();
    }
    let (t, _) = tokens_on(
        api_tokens::store::sqlite::SqliteStore::open(&path).unwrap(),
        key_a(),
    );
    assert!(t.check_hash_keys().is_err(), "the scheme must be honoured");
    let t = t.with_legacy_scheme(LegacyScheme::ZabbixSha512);
    let report = t.check_hash_keys().unwrap();
    assert_eq!(report.usage.len(), 1);
    assert_eq!(
        report.usage[0].scheme,
        HashScheme::legacy(LegacyScheme::ZabbixSha512, key_a().id())
    );
    assert!(t.authenticate(secret, &ctx()).is_ok());
}

// ---------------------------------------------------------------------------------------
// One legacy hash makes one token, on every store.

/// Whether `e` refuses item `index` of an import as a hash `token` was imported from.
fn already_imported(e: &Error, index: usize, token: TokenId) -> bool {
    matches!(e, Error::Invalid { index: Some(i), source }
        if *i == index
            && source.field == Field::LegacyHash
            && source.problem == Problem::AlreadyImported { token })
}

fn count(t: &Tokens<impl TokenStore>) -> usize {
    t.store().count(&Query::new(), NOW).unwrap()
}

/// The scenario as it was found: digest D imported for user A, used once (re-hashed the
/// ordinary way), D imported again for user B. Now refused; and the secret, revoked, is
/// refused afterwards by every route a `Tokens` may hold.
fn a_second_import_is_refused_and_revocation_is_final<S: TokenStore>(store: S) {
    let store = Arc::new(store);
    let t = zabbix_tokens_on(store.clone(), key_a());
    let first = import(&t, 2, "zabbix", zabbix_row(SECRET)).unwrap();
    assert_eq!(t.authenticate(SECRET, &ctx()).unwrap().token, first);
    let record = t.store().get(first).unwrap().unwrap();
    assert_eq!(
        record.secret.unwrap().scheme,
        HashScheme::keyed(key_a().id()),
        "re-hashed the ordinary way on its first use: the imported hash is gone"
    );
    assert!(record.imported_from.is_some(), "its origin is kept");
    let before = count(&t);

    // The same hash again, for another user: refused, naming the item and the token.
    let e = import(&t, 3, "zabbix", zabbix_row(SECRET)).unwrap_err();
    assert!(already_imported(&e, 0, first), "{e:?}");
    assert_eq!(e.code(), "already_imported");
    assert_eq!(e.http_status(), 409);
    assert_eq!(
        e.to_string(),
        format!(
            "item 1: legacy hash \"zabbix-sha512\" was imported already, as token {first}: \
             importing it again would let one secret open two tokens"
        )
    );
    // In a batch, all or nothing: the good item is not imported either.
    let other = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let e = t
        .import(
            &admin(),
            [
                ImportedToken::new("fine".parse().unwrap(), UserId::from(3))
                    .permissions("*".parse().unwrap())
                    .hash(zabbix_row(other)),
                ImportedToken::new("again".parse().unwrap(), UserId::from(3))
                    .permissions("*".parse().unwrap())
                    .hash(zabbix_row(SECRET)),
            ],
        )
        .unwrap_err();
    assert!(already_imported(&e, 1, first), "{e:?}");
    assert_eq!(count(&t), before, "nothing imported");
    assert!(t.authenticate(other, &ctx()).is_err());

    // Revoked by possession: refused from then on, by every route any `Tokens` may hold.
    let r = t.revoke_by_secret(SECRET).unwrap();
    assert_eq!(r.tokens(), [TokenRevocation::Disabled(first)]);
    assert_eq!(r.revoked().collect::<Vec<_>>(), [first]);
    let every_route = Tokens::new(store.clone())
        .with_hash_key(key_b())
        .with_old_hash_key(key_a())
        .with_legacy_scheme(LegacyScheme::ZabbixSha512)
        .with_legacy_scheme(LegacyScheme::Sha256)
        .with_clock(ManualClock::new(NOW));
    for tokens in [&t, &every_route] {
        assert_eq!(
            tokens.authenticate(SECRET, &ctx()).unwrap_err().kind(),
            DenialKind::Unknown
        );
        assert!(tokens.revoke_by_secret(SECRET).unwrap().is_unknown());
        assert_eq!(tokens.find_by_secret(&admin(), SECRET).unwrap(), None);
    }
    // The revoked token keeps its origin: importing the leaked hash again is refused too.
    let e = import(&every_route, 3, "zabbix", zabbix_row(SECRET)).unwrap_err();
    assert!(already_imported(&e, 0, first), "{e:?}");
    assert_eq!(count(&t), before);
}

/// The key rotates between the two imports: the first token's origin, made under the old key,
/// is compared under it; and once the token is used under the new key its origin follows it,
/// so dropping the old key does not let the hash in again.
fn a_rotation_between_imports_changes_nothing<S: TokenStore>(store: S) {
    let store = Arc::new(store);
    let a = zabbix_tokens_on(store.clone(), key_a());
    let first = import(&a, 2, "zabbix", zabbix_row(SECRET)).unwrap();
    a.authenticate(SECRET, &ctx()).unwrap();
    let rotated = zabbix_tokens_on(store.clone(), key_b()).with_old_hash_key(key_a());
    let e = import(&rotated, 3, "zabbix", zabbix_row(SECRET)).unwrap_err();
    assert!(already_imported(&e, 0, first), "{e:?}");
    // Used under b: re-hashed, and its origin made again under b.
    let origin_under_a = rotated.store().get(first).unwrap().unwrap().imported_from;
    rotated.authenticate(SECRET, &ctx()).unwrap();
    let moved = rotated.store().get(first).unwrap().unwrap();
    assert_eq!(
        moved.secret.unwrap().scheme,
        HashScheme::keyed(key_b().id())
    );
    assert!(moved.imported_from.is_some() && moved.imported_from != origin_under_a);
    // Key a dropped (nothing is hashed under it any more): still refused.
    let b_only = zabbix_tokens_on(store.clone(), key_b());
    assert_eq!(
        b_only.check_hash_keys().unwrap().hashes_under(key_a().id()),
        0
    );
    let e = import(&b_only, 3, "zabbix", zabbix_row(SECRET)).unwrap_err();
    assert!(already_imported(&e, 0, first), "{e:?}");
    // A new secret for the token keeps its origin too.
    b_only.generate(&admin(), [first]).unwrap();
    let e = import(&b_only, 3, "zabbix", zabbix_row(SECRET)).unwrap_err();
    assert!(already_imported(&e, 0, first), "{e:?}");
    assert_eq!(count(&b_only), 1);
}

/// A token imported before origins were recorded, whose imported hash (under what is now an
/// old key) was not replaced yet, is found by that hash.
fn a_token_imported_before_origins_were_recorded_is_found_by_its_hash<S: TokenStore>(store: S) {
    let store = Arc::new(store);
    let twin = an_unrecorded_twin(&*store, key_a(), "old import");
    let rotated = zabbix_tokens_on(store.clone(), key_b()).with_old_hash_key(key_a());
    let e = import(&rotated, 2, "zabbix", zabbix_row(SECRET)).unwrap_err();
    assert!(already_imported(&e, 0, twin), "{e:?}");
    assert_eq!(count(&rotated), 1);
}

fn every_scenario<S: TokenStore>(make: impl Fn() -> S) {
    a_second_import_is_refused_and_revocation_is_final(make());
    a_rotation_between_imports_changes_nothing(make());
    a_token_imported_before_origins_were_recorded_is_found_by_its_hash(make());
}

#[test]
fn one_hash_makes_one_token_on_a_memory_store() {
    every_scenario(MemoryStore::new);
}

#[cfg(feature = "sqlite")]
#[test]
fn one_hash_makes_one_token_on_a_sqlite_store() {
    every_scenario(|| api_tokens::store::sqlite::SqliteStore::open_in_memory().unwrap());
}

#[cfg(feature = "postgres")]
#[test]
fn one_hash_makes_one_token_on_postgres_and_on_a_replica() {
    use api_tokens::store::postgres::PostgresStore;
    use api_tokens::store::replica::{Replica, ReplicaOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pg = crate::support::server!();
    let n = AtomicUsize::new(0);
    let fresh = || pg.create_db(&format!("reimport{}", n.fetch_add(1, Ordering::SeqCst)));
    every_scenario(|| PostgresStore::connect(&fresh()).unwrap());
    every_scenario(|| {
        Replica::start(
            PostgresStore::connect(&fresh()).unwrap(),
            ReplicaOptions::default(),
        )
        .unwrap()
    });
}

/// Two imports of one hash racing: the one that writes second finds the hash taken in the
/// store, and is refused with the same error as if it had come after.
#[test]
fn a_concurrent_import_of_the_same_hash_gets_the_same_refusal() {
    let store = Arc::new(MemoryStore::new());
    let other = zabbix_tokens_on(store.clone(), key_a());
    let won = Arc::new(Mutex::new(None));
    let record = won.clone();
    let t = zabbix_tokens_on(
        Hooked::new(store.clone()).before_first_insert(move || {
            *record.lock().unwrap() = Some(import(&other, 2, "first", zabbix_row(SECRET)).unwrap());
        }),
        key_a(),
    );
    let e = import(&t, 3, "second", zabbix_row(SECRET)).unwrap_err();
    let first = won.lock().unwrap().unwrap();
    assert!(already_imported(&e, 0, first), "{e:?}");
    assert_eq!(count(&t), 1);
}

/// A SQLite database of schema version 3 (before origins) holding a token imported then and
/// not used since: migrated when opened (the column and its index added, the permission list
/// still the last column), the token read without an origin and found by its imported hash,
/// and a new import recording its origin.
#[cfg(feature = "sqlite")]
#[test]
fn a_version_3_sqlite_database_is_migrated_and_its_imports_still_count() {
    use api_tokens::store::sqlite::{SCHEMA_VERSION, SqliteStore};
    use rusqlite::Connection;
    let dir = crate::support::TempDir::new("sqlite-v3");
    let path = dir.join("tokens.db");
    // The token as the version-3 store wrote it, taken from an import under key a.
    let scratch = zabbix_tokens_on(MemoryStore::new(), key_a());
    let id = import(&scratch, 3, "old import", zabbix_row(SECRET)).unwrap();
    let t = scratch.store().get(id).unwrap().unwrap();
    let secret = t.secret.unwrap();
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE api_tokens (
                id INTEGER PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL,
                description TEXT NOT NULL, creator TEXT NOT NULL, status INTEGER NOT NULL,
                created_at INTEGER NOT NULL, expires_at INTEGER, last_used_at INTEGER,
                last_used_ip TEXT, secret_hash BLOB, generated_at INTEGER, previous_hash BLOB,
                previous_valid_until INTEGER, revoked_at INTEGER, revoked_by TEXT,
                revision INTEGER NOT NULL, secret_key_id BLOB, secret_legacy TEXT,
                previous_key_id BLOB, previous_legacy TEXT, allowlist TEXT NOT NULL,
                permissions TEXT NOT NULL, UNIQUE (owner, name));
             CREATE UNIQUE INDEX api_tokens_secret_hash ON api_tokens (secret_hash);
             CREATE UNIQUE INDEX api_tokens_previous_hash ON api_tokens (previous_hash);
             CREATE TABLE api_token_seq (one INTEGER PRIMARY KEY CHECK (one = 1), next INTEGER NOT NULL);
             INSERT INTO api_token_seq VALUES (1, 10);
             PRAGMA user_version = 3;",
        )
        .unwrap();
        c.execute(
            "INSERT INTO api_tokens VALUES (4, '3', 'old import', '', '1', 0, ?1, NULL, NULL, \
             NULL, ?2, ?1, NULL, NULL, NULL, NULL, 0, ?3, 'zabbix-sha512', NULL, NULL, '', '*')",
            rusqlite::params![
                t.created_at.unix_timestamp(),
                secret.hash.as_bytes().to_vec(),
                key_a().id().as_bytes().to_vec()
            ],
        )
        .unwrap();
    }
    let tokens = zabbix_tokens_on(SqliteStore::open(&path).unwrap(), key_a());
    let c = Connection::open(&path).unwrap();
    let version: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let last: String = c
        .query_row(
            "SELECT name FROM pragma_table_info('api_tokens') ORDER BY cid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last, "permissions");
    let index: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' \
             AND name = 'api_tokens_imported_from'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
    let old = tokens.store().get(TokenId::new(4)).unwrap().unwrap();
    assert_eq!(old.imported_from, None, "no origin was recorded then");
    let e = import(&tokens, 2, "zabbix", zabbix_row(SECRET)).unwrap_err();
    assert!(already_imported(&e, 0, TokenId::new(4)), "{e:?}");
    let other = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let new = import(&tokens, 2, "new", zabbix_row(other)).unwrap();
    assert!(
        tokens
            .store()
            .get(new)
            .unwrap()
            .unwrap()
            .imported_from
            .is_some()
    );
    assert_eq!(
        tokens.authenticate(SECRET, &ctx()).unwrap().token,
        TokenId::new(4)
    );
}
