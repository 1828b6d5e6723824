//! Hash keys that can be rotated and never silently lock everyone out: a store, a snapshot or
//! a database made under another key is refused at startup naming the key it needs, the store
//! untouched; after a rotation each token is re-hashed under the new key on its first use (a
//! race with a regenerate or a revocation never brings an old secret back); data written
//! before hashes recorded their key reads as made under the host's key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use api_tokens::store::TokenStore;
use api_tokens::{
    DenialKind, Error, EventKind, HashKey, HashScheme, MemoryStore, NewToken, SealedSnapshot,
    SecretFormat, SecretHash, Status, StoreError, TokenId, TokenSecret, Tokens, UserId,
};
use time::Duration;

use crate::support::hooked::Hooked;
use crate::support::keys::{key_a, key_b, rehashed, tokens_on};
use crate::support::{NOW, admin, ctx};

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

fn missing_keys(e: &Error) -> Vec<(api_tokens::KeyId, u64)> {
    match e {
        Error::Store(StoreError::HashKeysMissing { missing, .. }) => missing.clone(),
        other => panic!("expected HashKeysMissing, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Key identity: the wrong key fails loudly at startup, the store untouched.

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

// ---------------------------------------------------------------------------------------
// Rotation without reissue.

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
    let dir = crate::support::TempDir::new("rotate");
    let path = dir.join("tokens.db");
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
// Every store keeps the key each hash was made under; old data reads as made under the host's
// key.

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

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use api_tokens::store::sqlite::{SCHEMA_VERSION, SqliteStore};
    use rusqlite::Connection;

    use crate::support::TempDir;

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
        let dir = TempDir::new("v2");
        let path = dir.join("tokens.db");
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
        let dir = TempDir::new("v2-rotated");
        let path = dir.join("tokens.db");
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
        let dir = TempDir::new("wrong");
        let path = dir.join("tokens.db");
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
}
