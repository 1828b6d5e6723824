//! Issue 14: hash keys that can be rotated and never silently lock everyone out, and tokens
//! imported with the hashes another system kept. Built with the feature `legacy` (the
//! README's test command enables every feature), which the imports need.
#![cfg(feature = "legacy")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use api_tokens::store::TokenStore;
use api_tokens::{
    Actor, CollectEvents, DenialKind, Error, EventKind, Expiry, Field, HashKey, HashScheme,
    ImportedToken, LastUse, LegacyHash, LegacyScheme, ManualClock, MemoryStore, NewToken, Problem,
    RequestContext, SealedSnapshot, SecretFormat, SecretHash, Status, StoreError, TokenId,
    TokenSecret, Tokens, UserId,
};
use sha2::{Digest, Sha256, Sha512};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

mod support;
use support::hooked::Hooked;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn key_a() -> HashKey {
    HashKey::new([0xa; 32])
}

fn key_b() -> HashKey {
    HashKey::new([0xb; 32])
}

fn admin() -> Actor {
    Actor::admin(UserId::from(1))
}

fn ctx() -> RequestContext {
    RequestContext::unknown_address()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tokens over `store` with `key` current, a manual clock at [`NOW`] and collected events.
fn tokens_on<S: TokenStore>(store: S, key: HashKey) -> (Tokens<S>, Arc<CollectEvents>) {
    let events = Arc::new(CollectEvents::new());
    let t = Tokens::new(store)
        .with_hash_key(key)
        .with_clock(ManualClock::new(NOW))
        .with_events(events.clone());
    (t, events)
}

fn issue(tokens: &Tokens<impl TokenStore>, name: &str) -> (TokenId, TokenSecret) {
    let issued = tokens
        .issue(
            &admin(),
            NewToken::new(name.parse().unwrap())
                .owner(UserId::from(2))
                .permissions("reports.read".parse().unwrap()),
        )
        .unwrap();
    (issued.token.id, issued.secret)
}

fn scheme_of(store: &impl TokenStore, id: TokenId) -> HashScheme {
    store.get(id).unwrap().unwrap().secret.unwrap().scheme
}

fn rehashed(events: &CollectEvents) -> Vec<(Option<TokenId>, HashScheme, HashScheme)> {
    events
        .take()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Rehashed { from, to } => Some((e.token, from, to)),
            _ => None,
        })
        .collect()
}

fn missing_keys(e: &Error) -> Vec<(api_tokens::KeyId, u64)> {
    match e {
        Error::Store(StoreError::HashKeysMissing { missing, .. }) => missing.clone(),
        other => panic!("expected HashKeysMissing, got {other:?}"),
    }
}

/// A temporary directory removed when dropped, even when the test fails.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        for _ in 0..1000 {
            let p = std::env::temp_dir().join(format!(
                "api-tokens-keys-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            if std::fs::create_dir(&p).is_ok() {
                return Self(p);
            }
        }
        panic!("no temporary directory");
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// 1. Key identity: the wrong key fails loudly at startup, the store untouched.

#[test]
fn a_snapshot_opened_under_the_wrong_key_is_refused_and_the_store_untouched() {
    let (a, _) = tokens_on(MemoryStore::new(), key_a());
    let (_, secret) = issue(&a, "ci");
    let sealed = a.sealed_snapshot();
    let json = serde_json::to_string(&sealed).unwrap();

    let (b, _) = tokens_on(MemoryStore::new(), key_b());
    let (kept, kept_secret) = issue(&b, "already-here");
    let before = b.store().snapshot();
    let sealed: SealedSnapshot = serde_json::from_str(&json).unwrap();
    match b.restore_sealed(sealed.clone()) {
        Err(StoreError::SnapshotKeyMismatch { snapshot, expected }) => {
            assert_eq!(snapshot, key_a().id());
            assert_eq!(expected, key_b().id());
        }
        other => panic!("expected the key mismatch, got {other:?}"),
    }
    assert_eq!(b.store().snapshot(), before, "store untouched");
    assert!(b.authenticate(kept_secret.expose(), &ctx()).is_ok());
    assert_eq!(b.get(&admin(), kept).unwrap().name.as_str(), "already-here");

    // Holding the key as an old one is not enough for the plain restore (an old key may be
    // retired because it leaked, and could have sealed anything) ...
    let (rotated, _) = tokens_on(MemoryStore::new(), key_b());
    let rotated = rotated.with_old_hash_key(key_a());
    assert!(matches!(
        rotated.restore_sealed(sealed.clone()),
        Err(StoreError::SnapshotKeyMismatch { .. })
    ));
    assert!(rotated.store().is_empty(), "store untouched");
    // ... the explicit restore after a rotation opens it, and its secrets work.
    rotated.restore_sealed_under_old_key(sealed).unwrap();
    assert!(rotated.authenticate(secret.expose(), &ctx()).is_ok());
}

#[test]
fn a_snapshot_whose_hashes_need_a_dropped_key_is_refused_naming_it() {
    // Mid-rotation: current key b, a token still under a. Sealed under b.
    let (a, _) = tokens_on(MemoryStore::new(), key_a());
    let (id, secret) = issue(&a, "old");
    let (both, _) = tokens_on(MemoryStore::new(), key_b());
    let both = both.with_old_hash_key(key_a());
    both.restore_sealed_under_old_key(a.sealed_snapshot())
        .unwrap();
    let sealed = both.sealed_snapshot();
    assert_eq!(sealed.key_id, key_b().id());

    // Key a dropped too early: refused, naming a and how many hashes need it.
    let (b_only, _) = tokens_on(MemoryStore::new(), key_b());
    let err = b_only.restore_sealed(sealed.clone()).unwrap_err();
    match &err {
        StoreError::HashKeysMissing {
            missing,
            legacy,
            held,
        } => {
            assert_eq!(missing, &vec![(key_a().id(), 1)]);
            assert!(legacy.is_empty());
            assert_eq!(held, &vec![key_b().id()]);
        }
        other => panic!("expected HashKeysMissing, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&key_a().id().to_string()), "{text}");
    assert!(
        text.contains(&format!("{} (current)", key_b().id())),
        "{text}"
    );
    assert!(b_only.store().is_empty(), "store untouched");
    // With a kept, it restores and the token works.
    let both_again = b_only.with_old_hash_key(key_a());
    both_again.restore_sealed(sealed).unwrap();
    assert!(both_again.authenticate(secret.expose(), &ctx()).is_ok());
    assert_eq!(
        scheme_of(both_again.store(), id),
        HashScheme::keyed(key_b().id())
    );
}

#[test]
fn a_store_made_under_another_key_fails_the_startup_check_and_every_authentication() {
    let store = Arc::new(MemoryStore::new());
    let (a, _) = tokens_on(store.clone(), key_a());
    let (_, secret) = issue(&a, "ci");
    let before = store.snapshot();

    let (typo, events) = tokens_on(store.clone(), key_b());
    let err = typo.check_hash_keys().unwrap_err();
    assert_eq!(missing_keys(&err), vec![(key_a().id(), 1)]);
    assert!(err.to_string().contains(&key_a().id().to_string()), "{err}");
    let checked: Vec<EventKind> = events.take().into_iter().map(|e| e.kind).collect();
    assert!(
        matches!(&checked[..], [EventKind::HashKeysChecked { missing, default_key: false, .. }]
            if missing == &vec![key_a().id()]),
        "{checked:?}"
    );
    assert_eq!(store.snapshot(), before, "the check writes nothing");

    // A host that skipped the check: the first authentication runs it, and every one fails
    // with its error, never as a plain "unknown token".
    let (skipped, _) = tokens_on(store.clone(), key_b());
    for _ in 0..2 {
        let d = skipped.authenticate(secret.expose(), &ctx()).unwrap_err();
        assert_eq!(d.kind(), DenialKind::Store, "{d}");
        let source = std::error::Error::source(&d).unwrap().to_string();
        assert!(source.contains(&key_a().id().to_string()), "{source}");
    }
    assert_eq!(store.snapshot(), before, "store untouched");
}

#[test]
fn the_default_key_is_reported_as_such() {
    let (t, events) = tokens_on(MemoryStore::new(), HashKey::default());
    assert!(t.uses_default_key());
    let report = t.check_hash_keys().unwrap();
    assert!(report.current_is_default);
    assert_eq!(report.current, HashKey::default().id());
    assert!(matches!(
        events.take()[..],
        [api_tokens::TokenEvent {
            kind: EventKind::HashKeysChecked {
                default_key: true,
                ..
            },
            ..
        }]
    ));
    assert!(
        Tokens::in_memory().uses_default_key(),
        "the default's default"
    );
    let (mine, _) = tokens_on(MemoryStore::new(), key_a());
    assert!(!mine.uses_default_key());
    assert!(!mine.check_hash_keys().unwrap().current_is_default);
}

// ---------------------------------------------------------------------------------------
// 2. Rotation without reissue.

fn rotation_on<S: TokenStore>(store: Arc<S>) {
    let (under_a, _) = tokens_on(store.clone(), key_a());
    let (one, one_secret) = issue(&under_a, "one");
    let (two, two_secret) = issue(&under_a, "two");

    // Rotate: b current, a kept for verification.
    let (rotated, events) = tokens_on(store.clone(), key_b());
    let rotated = rotated.with_old_hash_key(key_a());
    let report = rotated.check_hash_keys().unwrap();
    assert_eq!(report.hashes_under(key_a().id()), 2);
    assert_eq!(report.hashes_under(key_b().id()), 0);
    events.take();

    let grant = rotated.authenticate(one_secret.expose(), &ctx()).unwrap();
    assert_eq!(grant.token, one);
    assert_eq!(
        rehashed(&events),
        vec![(
            Some(one),
            HashScheme::keyed(key_a().id()),
            HashScheme::keyed(key_b().id())
        )]
    );
    assert_eq!(scheme_of(&*store, one), HashScheme::keyed(key_b().id()));
    let report = rotated.hash_key_report().unwrap();
    assert_eq!(report.hashes_under(key_a().id()), 1, "one token still on a");
    assert_eq!(report.hashes_under(key_b().id()), 1);
    // Authenticated again, now the ordinary way: nothing more to re-hash.
    rotated.authenticate(one_secret.expose(), &ctx()).unwrap();
    assert!(rehashed(&events).is_empty());

    // After that it works under b alone; the token never used stays on a, and the startup
    // check says so.
    let (b_only, _) = tokens_on(store.clone(), key_b());
    let err = b_only.check_hash_keys().unwrap_err();
    assert_eq!(missing_keys(&err), vec![(key_a().id(), 1)]);
    rotated.authenticate(two_secret.expose(), &ctx()).unwrap();
    assert_eq!(
        rotated
            .hash_key_report()
            .unwrap()
            .hashes_under(key_a().id()),
        0
    );
    let (b_only, _) = tokens_on(store.clone(), key_b());
    b_only.check_hash_keys().unwrap();
    for (id, s) in [(one, &one_secret), (two, &two_secret)] {
        assert_eq!(b_only.authenticate(s.expose(), &ctx()).unwrap().token, id);
    }
    // And no longer under a alone.
    let (a_only, _) = tokens_on(store.clone(), key_a());
    assert!(a_only.check_hash_keys().is_err());
}

#[test]
fn rotation_rehashes_on_first_use_in_memory() {
    rotation_on(Arc::new(MemoryStore::new()));
}

#[cfg(feature = "sqlite")]
#[test]
fn rotation_rehashes_on_first_use_in_sqlite() {
    let dir = Dir::new("rotate");
    let path = dir.0.join("tokens.db");
    rotation_on(Arc::new(
        api_tokens::store::sqlite::SqliteStore::open(&path).unwrap(),
    ));
    // The schemes are on disk: reopened, the store says every hash is under b.
    let (t, _) = tokens_on(
        api_tokens::store::sqlite::SqliteStore::open(&path).unwrap(),
        key_b(),
    );
    let report = t.check_hash_keys().unwrap();
    assert_eq!(report.hashes_under(key_b().id()), 2);
    assert_eq!(report.not_current(), 0);
}

#[test]
fn a_denied_token_is_not_rehashed_and_a_previous_secret_in_grace_is() {
    let store = Arc::new(MemoryStore::new());
    let (under_a, _) = tokens_on(store.clone(), key_a());
    let (id, first) = issue(&under_a, "graceful");
    // Regenerate under a with a grace period: both secrets are under a.
    let second = under_a
        .generate_with(&admin(), [id], Duration::hours(1), &mut rand::rng())
        .unwrap()
        .pop()
        .unwrap()
        .1;
    let (rotated, events) = tokens_on(store.clone(), key_b());
    let rotated = rotated.with_old_hash_key(key_a());
    rotated.check_hash_keys().unwrap();
    events.take();
    // The previous secret, in its grace period, authenticates and is moved to b...
    rotated.authenticate(first.expose(), &ctx()).unwrap();
    let t = store.get(id).unwrap().unwrap();
    let s = t.secret.unwrap();
    assert_eq!(s.previous.unwrap().scheme, HashScheme::keyed(key_b().id()));
    assert_eq!(
        s.scheme,
        HashScheme::keyed(key_a().id()),
        "the current one untouched"
    );
    // ... keeping its end.
    assert_eq!(s.previous.unwrap().valid_until, NOW + Duration::hours(1));
    // A disabled token authenticates nowhere and is not re-hashed.
    rotated
        .set_status(&admin(), [id], Status::Disabled)
        .unwrap();
    events.take();
    assert_eq!(
        rotated
            .authenticate(second.expose(), &ctx())
            .unwrap_err()
            .kind(),
        DenialKind::Disabled
    );
    assert!(rehashed(&events).is_empty());
    assert_eq!(scheme_of(&*store, id), HashScheme::keyed(key_a().id()));
}

/// The re-hash of a token under the new key races a regenerate: the regenerate wins, and the
/// secret it replaced never comes back.
#[test]
fn a_concurrent_regenerate_during_the_rehash_never_resurrects_the_old_secret() {
    for grace in [Duration::ZERO, Duration::hours(1)] {
        let inner = Arc::new(MemoryStore::new());
        let (under_a, _) = tokens_on(inner.clone(), key_a());
        let (id, old) = issue(&under_a, "raced");
        let (other, _) = tokens_on(inner.clone(), key_b());
        let fresh: Arc<Mutex<Option<TokenSecret>>> = Arc::default();
        let slot = fresh.clone();
        // The re-hash's write, interleaved with another caller's regenerate.
        let store = Hooked::new(inner.clone()).before_first_replace(move || {
            let s = other
                .generate_with(&admin(), [id], grace, &mut rand::rng())
                .unwrap();
            *slot.lock().unwrap() = s.into_iter().next().map(|(_, s)| s);
        });
        let (rotated, events) = tokens_on(store, key_b());
        let rotated = rotated.with_old_hash_key(key_a());
        rotated.check_hash_keys().unwrap();
        events.take();

        // Valid when it was decided: granted. Its re-hash met the regenerate and gave way.
        rotated.authenticate(old.expose(), &ctx()).unwrap();
        let new = fresh.lock().unwrap().take().expect("the regenerate ran");
        assert!(rehashed(&events).is_empty(), "no re-hash was written");
        let t = inner.get(id).unwrap().unwrap();
        let s = t.secret.unwrap();
        assert_eq!(s.scheme, HashScheme::keyed(key_b().id()));
        let expected = SecretHash::of(
            &key_b(),
            &SecretFormat::default().parse(new.expose()).unwrap(),
        );
        assert_eq!(
            s.hash, expected,
            "the regenerated secret is the current one"
        );
        // The new secret works; the old one only within the grace the regenerate gave it.
        assert_eq!(
            rotated.authenticate(new.expose(), &ctx()).unwrap().token,
            id
        );
        let d = rotated.authenticate(old.expose(), &ctx());
        if grace.is_zero() {
            assert_eq!(d.unwrap_err().kind(), DenialKind::Superseded);
        } else {
            assert!(d.is_ok());
            // Once the grace is over it is refused, wherever it was re-hashed to.
            let later = rotated
                .authenticate_at(old.expose(), &ctx(), NOW + grace)
                .unwrap_err();
            assert_eq!(later.kind(), DenialKind::Superseded);
        }
        // The old secret never became the current one again.
        let old_hash = SecretHash::of(
            &key_b(),
            &SecretFormat::default().parse(old.expose()).unwrap(),
        );
        assert_ne!(
            inner.get(id).unwrap().unwrap().secret.unwrap().hash,
            old_hash
        );
    }
}

/// A token revoked by possession while its re-hash is in flight stays revoked.
#[test]
fn a_concurrent_revocation_during_the_rehash_stays_final() {
    let inner = Arc::new(MemoryStore::new());
    let (under_a, _) = tokens_on(inner.clone(), key_a());
    let (id, old) = issue(&under_a, "leaked");
    let leaked = old.expose().to_owned();
    let (other, _) = tokens_on(inner.clone(), key_b());
    let other = other.with_old_hash_key(key_a());
    let store = Hooked::new(inner.clone()).before_first_replace(move || {
        other.revoke_by_secret(&leaked).unwrap();
    });
    let (rotated, _) = tokens_on(store, key_b());
    let rotated = rotated.with_old_hash_key(key_a());
    rotated.authenticate(old.expose(), &ctx()).unwrap();
    let t = inner.get(id).unwrap().unwrap();
    assert!(t.revoked.is_some() && t.secret.is_none(), "{t:?}");
    assert_eq!(
        rotated
            .authenticate(old.expose(), &ctx())
            .unwrap_err()
            .kind(),
        DenialKind::Unknown
    );
}

// ---------------------------------------------------------------------------------------
// 3. Imported legacy hashes.

fn zabbix_row(secret: &str) -> LegacyHash {
    LegacyHash::parse(
        LegacyScheme::ZabbixSha512,
        &hex(&Sha512::digest(secret.as_bytes())),
    )
    .unwrap()
}

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

// ---------------------------------------------------------------------------------------
// 5. Every store keeps key ids and legacy hashes; old data reads as made under the host's key.

#[test]
fn a_version_2_sealed_snapshot_still_opens_under_its_key() {
    let old = include_str!("data/sealed-snapshot-22aef47.json");
    let secret = include_str!("data/sealed-snapshot-22aef47.secret").trim();
    let key = HashKey::new([3; 32]);
    let sealed: SealedSnapshot = serde_json::from_str(old).unwrap();
    assert_eq!(sealed.version, 2);
    let (t, _) = tokens_on(MemoryStore::new(), key.clone());
    t.restore_sealed(sealed.clone()).unwrap();
    // Its hashes are labelled with the key it was sealed under.
    let report = t.check_hash_keys().unwrap();
    assert_eq!(report.hashes_under(key.id()), 1);
    assert_eq!(report.unrecorded(), 0);
    assert!(t.authenticate(secret, &ctx()).is_ok());
    // Sealed again, it is a snapshot of the current version that opens the same way.
    let again = t.sealed_snapshot();
    assert_eq!(again.version, api_tokens::store::memory::SNAPSHOT_VERSION);
    let json = serde_json::to_value(&again).unwrap();
    assert_eq!(
        json["tokens"][0]["secret"]["scheme"],
        format!("blake3:{}", key.id())
    );
    let (u, _) = tokens_on(MemoryStore::new(), key.clone());
    u.restore_sealed(serde_json::from_value(json).unwrap())
        .unwrap();
    assert!(u.authenticate(secret, &ctx()).is_ok());
    // A version-2 snapshot is still bound to its seal: an edited one is refused.
    let edited: SealedSnapshot =
        serde_json::from_str(&old.replace("\"owner\": \"alice\"", "\"owner\": \"mallory\""))
            .unwrap();
    assert!(matches!(
        edited.open(&key),
        Err(StoreError::SnapshotTampered)
    ));
}

#[test]
fn schemes_are_sealed_in_version_3_snapshots() {
    let (t, _) = tokens_on(MemoryStore::new(), key_a());
    issue(&t, "sealed");
    let json = serde_json::to_string(&t.sealed_snapshot()).unwrap();
    let relabelled = json.replace(
        &format!("blake3:{}", key_a().id()),
        &format!("blake3:{}", key_b().id()),
    );
    assert_ne!(json, relabelled);
    let sealed: SealedSnapshot = serde_json::from_str(&relabelled).unwrap();
    assert!(matches!(
        sealed.open(&key_a()),
        Err(StoreError::SnapshotTampered)
    ));
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
mod sqlite {
    use super::*;
    use api_tokens::store::sqlite::{SCHEMA_VERSION, SqliteStore};
    use rusqlite::Connection;

    /// A database as version 2 of the store wrote it (no scheme columns), holding one token
    /// hashed under `key`.
    fn version_2_database(path: &std::path::Path, key: &HashKey, secret: &str) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "CREATE TABLE api_tokens (
                id INTEGER PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL,
                description TEXT NOT NULL, creator TEXT NOT NULL, status INTEGER NOT NULL,
                created_at INTEGER NOT NULL, expires_at INTEGER, last_used_at INTEGER,
                last_used_ip TEXT, secret_hash BLOB, generated_at INTEGER, previous_hash BLOB,
                previous_valid_until INTEGER, revoked_at INTEGER, revoked_by TEXT,
                revision INTEGER NOT NULL, allowlist TEXT NOT NULL, permissions TEXT NOT NULL,
                UNIQUE (owner, name));
             CREATE UNIQUE INDEX api_tokens_secret_hash ON api_tokens (secret_hash);
             CREATE UNIQUE INDEX api_tokens_previous_hash ON api_tokens (previous_hash);
             CREATE TABLE api_token_seq (one INTEGER PRIMARY KEY CHECK (one = 1), next INTEGER NOT NULL);
             INSERT INTO api_token_seq VALUES (1, 10);
             PRAGMA user_version = 2;",
        )
        .unwrap();
        let hash = SecretHash::of(key, &SecretFormat::default().parse(secret).unwrap());
        c.execute(
            "INSERT INTO api_tokens VALUES (4, '2', 'old', '', '1', 0, 1700000000, NULL, NULL, \
             NULL, ?1, 1700000000, NULL, NULL, NULL, NULL, 3, '', 'reports.read')",
            rusqlite::params![hash.as_bytes().to_vec()],
        )
        .unwrap();
    }

    fn a_secret() -> String {
        SecretFormat::default().generate().expose().to_owned()
    }

    #[test]
    fn a_version_2_database_is_read_as_made_under_the_hosts_key_and_labelled_on_use() {
        let dir = Dir::new("v2");
        let path = dir.0.join("tokens.db");
        let secret = a_secret();
        version_2_database(&path, &key_a(), &secret);
        let (t, events) = tokens_on(SqliteStore::open(&path).unwrap(), key_a());
        let version: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION, "migrated once, when opened");
        let report = t.check_hash_keys().unwrap();
        assert_eq!(report.unrecorded(), 1, "its key is not known yet");
        events.take();
        // Read as made under the host's key: it authenticates, and the success records which
        // key made it.
        assert_eq!(
            t.authenticate(&secret, &ctx()).unwrap().token,
            TokenId::new(4)
        );
        assert_eq!(
            rehashed(&events),
            vec![(
                Some(TokenId::new(4)),
                HashScheme::UNRECORDED,
                HashScheme::keyed(key_a().id())
            )]
        );
        assert_eq!(t.check_hash_keys().unwrap().hashes_under(key_a().id()), 1);
        // Ids go on from where the old database was.
        let (next, _) = issue(&t, "new");
        assert_eq!(next, TokenId::new(10));
    }

    #[test]
    fn an_unrecorded_hash_made_under_an_old_key_is_found_and_moved_to_the_current_one() {
        let dir = Dir::new("v2-rotated");
        let path = dir.0.join("tokens.db");
        let secret = a_secret();
        version_2_database(&path, &key_a(), &secret);
        // Upgraded and rotated at once: b current, a kept.
        let (t, events) = tokens_on(SqliteStore::open(&path).unwrap(), key_b());
        let t = t.with_old_hash_key(key_a());
        t.check_hash_keys().unwrap();
        events.take();
        t.authenticate(&secret, &ctx()).unwrap();
        assert_eq!(
            rehashed(&events),
            vec![(
                Some(TokenId::new(4)),
                HashScheme::UNRECORDED,
                HashScheme::keyed(key_b().id())
            )]
        );
        let (b_only, _) = tokens_on(SqliteStore::open(&path).unwrap(), key_b());
        b_only.check_hash_keys().unwrap();
        assert!(b_only.authenticate(&secret, &ctx()).is_ok());
    }

    #[test]
    fn a_database_opened_under_the_wrong_key_is_refused_at_startup_untouched() {
        let dir = Dir::new("wrong");
        let path = dir.0.join("tokens.db");
        let (a, _) = tokens_on(SqliteStore::open(&path).unwrap(), key_a());
        let (id, secret) = issue(&a, "ci");
        let before = a.store().get(id).unwrap();
        drop(a);
        let (b, _) = tokens_on(SqliteStore::open(&path).unwrap(), key_b());
        let err = b.check_hash_keys().unwrap_err();
        assert_eq!(missing_keys(&err), vec![(key_a().id(), 1)]);
        assert_eq!(
            b.authenticate(secret.expose(), &ctx()).unwrap_err().kind(),
            DenialKind::Store
        );
        assert_eq!(b.store().get(id).unwrap(), before, "untouched");
    }

    #[test]
    fn imported_hashes_survive_a_reopen() {
        let dir = Dir::new("import");
        let path = dir.0.join("tokens.db");
        let secret = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
        {
            let (t, _) = tokens_on(SqliteStore::open(&path).unwrap(), key_a());
            let t = t.with_legacy_scheme(LegacyScheme::ZabbixSha512);
            t.import(
                &admin(),
                [ImportedToken::new("z".parse().unwrap(), UserId::from(2))
                    .permissions("*".parse().unwrap())
                    .hash(zabbix_row(secret))],
            )
            .unwrap();
        }
        let (t, _) = tokens_on(SqliteStore::open(&path).unwrap(), key_a());
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
fn a_failing_key_check_is_retried_at_most_once_a_second_and_never_passes_meanwhile() {
    // The lazy check counts every hash in the store: a database hiccup must not turn every
    // request into such a count. Requests in between are refused (the check never passed).
    // A store whose key count fails while `down` is set, counting how often it is asked.
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asked = Arc::new(AtomicUsize::new(0));
    let (d, a) = (down.clone(), asked.clone());
    let store = Hooked::new(MemoryStore::new()).on_key_usage(move || {
        a.fetch_add(1, Ordering::SeqCst);
        if d.load(Ordering::SeqCst) {
            return Err(StoreError::backend(std::io::Error::other("database down")));
        }
        Ok(())
    });
    let (tokens, _) = tokens_on(store, key_a());
    let (_, secret) = issue(&tokens, "ci");
    down.store(true, Ordering::SeqCst);
    for _ in 0..200 {
        let d = tokens.authenticate(secret.expose(), &ctx()).unwrap_err();
        assert_eq!(d.kind(), DenialKind::Store);
    }
    let while_down = asked.load(Ordering::SeqCst);
    assert!(
        (1..10).contains(&while_down),
        "200 refused requests asked the store {while_down} times"
    );
    // Back up: within a few retry intervals the check runs again and passes, for good.
    down.store(false, Ordering::SeqCst);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokens.authenticate(secret.expose(), &ctx()).is_err() {
        assert!(
            std::time::Instant::now() < until,
            "the check never ran again"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let after = asked.load(Ordering::SeqCst);
    for _ in 0..100 {
        assert!(tokens.authenticate(secret.expose(), &ctx()).is_ok());
    }
    assert_eq!(asked.load(Ordering::SeqCst), after);
}
