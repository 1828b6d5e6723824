//! One legacy hash makes one token, and revocation by possession is final by every route:
//!
//! * `Tokens::import` refuses a hash an existing token was imported from, also after that
//!   token's first use re-hashed it the ordinary way (the record then no longer holds the
//!   imported hash), for another owner, and across a rotation of the hash key;
//! * `Tokens::revoke_by_secret` revokes every token the secret opens, whichever route reaches
//!   it (the current key, an old key, a legacy scheme), in one all-or-nothing write.
//!
//! Each scenario runs on every store: `MemoryStore`, `SqliteStore`, and (feature `postgres`)
//! `PostgresStore` and a `Replica` against a real server the test starts.
#![cfg(feature = "legacy")]

mod support;

use std::sync::{Arc, Mutex};

use api_tokens::store::{Change, TokenStore};
use api_tokens::{
    Actor, DenialKind, Error, Field, HashKey, HashScheme, ImportedToken, LegacyHash, LegacyScheme,
    ManualClock, MemoryStore, Problem, Query, RequestContext, Status, TokenId, TokenRevocation,
    Tokens, UserId,
};
use sha2::{Digest, Sha512};
use support::hooked::Hooked;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// A Zabbix secret (64 hex digits) whose SHA-512 the old system kept.
const SECRET: &str = "5f2b9c0e7a1d4e8f3b6a9c2d5e8f1a4b7c0d3e6f9a2b5c8d1e4f7a0b3c6d9e2f";

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

/// The hash Zabbix kept of `secret`: SHA-512 of its text, 128 hex digits.
fn zabbix_row(secret: &str) -> LegacyHash {
    let hex: String = Sha512::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    LegacyHash::parse(LegacyScheme::ZabbixSha512, &hex).unwrap()
}

/// Tokens over `store` with `key` current, Zabbix hashes honoured, a manual clock at [`NOW`].
fn tokens_on<S: TokenStore>(store: S, key: HashKey) -> Tokens<S> {
    Tokens::new(store)
        .with_hash_key(key)
        .with_legacy_scheme(LegacyScheme::ZabbixSha512)
        .with_clock(ManualClock::new(NOW))
}

/// Imports the token Zabbix kept as `row` for `owner`.
fn import(
    t: &Tokens<impl TokenStore>,
    owner: u64,
    name: &str,
    row: LegacyHash,
) -> Result<TokenId, Error> {
    t.import(
        &admin(),
        [
            ImportedToken::new(name.parse().unwrap(), UserId::from(owner))
                .permissions("*".parse().unwrap())
                .hash(row),
        ],
    )
    .map(|ids| ids[0])
}

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
    let t = tokens_on(store.clone(), key_a());
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

/// A token of user 3 holding D's imported hash under `key`, with no recorded origin: what an
/// import made before origins were recorded left, next to a token of user 2 imported from the
/// same hash since. (The facade refuses to make it, so it is written to the store directly.)
fn an_unrecorded_twin(store: &dyn TokenStore, key: HashKey, name: &str) -> TokenId {
    let scratch = tokens_on(MemoryStore::new(), key);
    let id = import(&scratch, 3, name, zabbix_row(SECRET)).unwrap();
    let mut twin = scratch.store().get(id).unwrap().unwrap();
    twin.id = store.reserve_ids(1).unwrap()[0];
    twin.imported_from = None;
    store.apply(vec![Change::Insert(twin.clone())]).unwrap();
    twin.id
}

/// A secret that opens two tokens by different routes (one re-hashed under what is now an old
/// key, one still holding the imported hash): one call revokes both, in one batch.
fn every_token_the_secret_opens_is_revoked_at_once<S: TokenStore>(store: S) {
    let store = Arc::new(store);
    let a = tokens_on(store.clone(), key_a());
    let x = import(&a, 2, "zabbix", zabbix_row(SECRET)).unwrap();
    assert_eq!(a.authenticate(SECRET, &ctx()).unwrap().token, x);
    let y = an_unrecorded_twin(&*store, key_a(), "twin");
    // Rotated: b current, a kept for verification. X is reached by its ordinary hash under a,
    // Y by its imported hash under a.
    let batches = Arc::new(Mutex::new(Vec::new()));
    let seen = batches.clone();
    let t = tokens_on(
        Hooked::new(store.clone()).on_apply(move |b| {
            if b.replaces {
                seen.lock().unwrap().push(b.changes);
            }
        }),
        key_b(),
    )
    .with_old_hash_key(key_a());
    let r = t.revoke_by_secret(SECRET).unwrap();
    assert_eq!(
        r.tokens(),
        [TokenRevocation::Disabled(x), TokenRevocation::Disabled(y)]
    );
    assert_eq!(*batches.lock().unwrap(), [2], "one write revoked both");
    for id in [x, y] {
        let got = t.store().get(id).unwrap().unwrap();
        assert!(
            got.revoked.is_some() && got.secret.is_none(),
            "{id} revoked"
        );
        assert_eq!(got.status, Status::Disabled);
    }
    assert_eq!(
        t.authenticate(SECRET, &ctx()).unwrap_err().kind(),
        DenialKind::Unknown,
        "the secret opens nothing any more"
    );
}

/// The key rotates between the two imports: the first token's origin, made under the old key,
/// is compared under it; and once the token is used under the new key its origin follows it,
/// so dropping the old key does not let the hash in again.
fn a_rotation_between_imports_changes_nothing<S: TokenStore>(store: S) {
    let store = Arc::new(store);
    let a = tokens_on(store.clone(), key_a());
    let first = import(&a, 2, "zabbix", zabbix_row(SECRET)).unwrap();
    a.authenticate(SECRET, &ctx()).unwrap();
    let rotated = tokens_on(store.clone(), key_b()).with_old_hash_key(key_a());
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
    let b_only = tokens_on(store.clone(), key_b());
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
    let rotated = tokens_on(store.clone(), key_b()).with_old_hash_key(key_a());
    let e = import(&rotated, 2, "zabbix", zabbix_row(SECRET)).unwrap_err();
    assert!(already_imported(&e, 0, twin), "{e:?}");
    assert_eq!(count(&rotated), 1);
}

fn every_scenario<S: TokenStore>(make: impl Fn() -> S) {
    a_second_import_is_refused_and_revocation_is_final(make());
    every_token_the_secret_opens_is_revoked_at_once(make());
    a_rotation_between_imports_changes_nothing(make());
    a_token_imported_before_origins_were_recorded_is_found_by_its_hash(make());
}

#[test]
fn on_a_memory_store() {
    every_scenario(MemoryStore::new);
}

#[cfg(feature = "sqlite")]
#[test]
fn on_a_sqlite_store() {
    every_scenario(|| api_tokens::store::sqlite::SqliteStore::open_in_memory().unwrap());
}

#[cfg(feature = "postgres")]
#[test]
fn on_postgres_and_on_a_replica() {
    use api_tokens::store::postgres::PostgresStore;
    use api_tokens::store::replica::{Replica, ReplicaOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Some(pg) = support::pg::PgServer::start() else {
        return;
    };
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

/// A token that changes between the lookup and the write is read again, and revoked only if
/// the secret still opens it: here the second token is given a new secret in between (its
/// imported hash kept as a previous secret with no grace), so the write conflicts, the retry
/// revokes the first token alone and says the second no longer opens with it.
#[test]
fn a_token_changed_meanwhile_is_revoked_only_if_the_secret_still_opens_it() {
    let store = Arc::new(MemoryStore::new());
    let a = tokens_on(store.clone(), key_a());
    let x = import(&a, 2, "zabbix", zabbix_row(SECRET)).unwrap();
    a.authenticate(SECRET, &ctx()).unwrap();
    let y = an_unrecorded_twin(&*store, key_a(), "twin");
    let other = a.clone();
    let fresh = Arc::new(Mutex::new(None));
    let keep = fresh.clone();
    let t = tokens_on(
        Hooked::new(store.clone()).before_first_replace(move || {
            let (_, secret) = other.generate(&admin(), [y]).unwrap().remove(0);
            *keep.lock().unwrap() = Some(secret);
        }),
        key_a(),
    );
    let r = t.revoke_by_secret(SECRET).unwrap();
    assert_eq!(
        r.tokens(),
        [
            TokenRevocation::Disabled(x),
            TokenRevocation::NoLongerValid(y)
        ]
    );
    assert!(t.store().get(x).unwrap().unwrap().revoked.is_some());
    assert!(t.store().get(y).unwrap().unwrap().revoked.is_none());
    let secret = fresh.lock().unwrap().take().unwrap();
    assert_eq!(t.authenticate(secret.expose(), &ctx()).unwrap().token, y);
    // The leaked secret opens nothing: the first token is revoked, and for the second it is a
    // replaced secret past its (zero) grace.
    assert_eq!(
        t.authenticate(SECRET, &ctx()).unwrap_err().kind(),
        DenialKind::Superseded
    );
}

/// Two imports of one hash racing: the one that writes second finds the hash taken in the
/// store, and is refused with the same error as if it had come after.
#[test]
fn a_concurrent_import_of_the_same_hash_gets_the_same_refusal() {
    let store = Arc::new(MemoryStore::new());
    let other = tokens_on(store.clone(), key_a());
    let won = Arc::new(Mutex::new(None));
    let record = won.clone();
    let t = tokens_on(
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
    let dir = support::TempDir::new("sqlite-v3");
    let path = dir.join("tokens.db");
    // The token as the version-3 store wrote it, taken from an import under key a.
    let scratch = tokens_on(MemoryStore::new(), key_a());
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
    let tokens = tokens_on(SqliteStore::open(&path).unwrap(), key_a());
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
