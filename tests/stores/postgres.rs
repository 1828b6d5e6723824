//! `PostgresStore` against a real PostgreSQL the test starts itself: migrations, SQL-side
//! rules, last-use merging, async hosts, key rotation and imports across replicas, and changes
//! made by hand in SQL. (The conformance suite runs on it in `stores::conformance`.)

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api_tokens::store::conformance;
use api_tokens::store::postgres::{PostgresOptions, PostgresStore, schema};
use api_tokens::store::replica::{Replica, ReplicaOptions};
use api_tokens::store::{Change, TokenStore};
use api_tokens::{
    Actor, AsyncTokens, LastUse, NewToken, PermissionSet, Query, RequestContext, StoreError,
    TokenName, Tokens, UserId,
};

use crate::support::hooked::Hooked;
use crate::support::pg::{PgServer, wait_for};
use crate::support::{admin, issue, server};

/// A hand downgrade of schema version 7: the import origins and their index gone.
const UNDO_V7: &str = "DROP INDEX api_tokens_imported_from;
     ALTER TABLE api_tokens DROP COLUMN imported_from;";

/// The first half of a hand downgrade below schema version 3 (after [`UNDO_V7`]): versions 6,
/// 5 and 4 undone (the history, fingerprint and membership gone, the tick and stamp functions
/// as version 1 wrote them, the TRUNCATE trigger gone) and the update trigger dropped, for the
/// caller to drop its columns and create the trigger of the version it goes back to.
const UNDO_V4_V5: &str = "DROP TABLE api_token_history; DROP TABLE api_token_replicas;
     ALTER TABLE api_tokens DROP COLUMN sec_fp;
     CREATE OR REPLACE FUNCTION api_token_tick() RETURNS bigint LANGUAGE plpgsql AS $$
     DECLARE
         s bigint;
     BEGIN
         UPDATE api_token_clock SET seq = seq + 1, xact = txid_current()
             WHERE one = 1 AND xact IS DISTINCT FROM txid_current()
             RETURNING seq INTO s;
         IF NOT FOUND THEN
             SELECT seq INTO s FROM api_token_clock WHERE one = 1;
         END IF;
         PERFORM pg_notify('api_tokens', s::text);
         RETURN s;
     END $$;
     DROP TRIGGER api_tokens_truncated ON api_tokens;
     DROP FUNCTION api_tokens_truncated();
     CREATE OR REPLACE FUNCTION api_tokens_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         NEW.change_seq := api_token_tick();
         IF TG_OP = 'INSERT' THEN
             DELETE FROM api_token_deleted WHERE id = NEW.id;
         END IF;
         RETURN NEW;
     END $$;
     DROP TRIGGER api_tokens_stamp_update ON api_tokens;";

#[test]
fn migrations_are_versioned_idempotent_and_refuse_a_newer_schema() {
    let pg = server!();
    let url = pg.create_db("mig");
    // Several processes starting at once migrate once, without tripping over each other.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresStore::connect(&url).map(drop))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let version = |pg: &PgServer| {
        pg.psql("mig", "SELECT version FROM api_tokens_schema")
            .trim()
            .to_owned()
    };
    assert_eq!(version(&pg), schema::LATEST.to_string());
    // Connecting again changes nothing (and keeps the data).
    let store = PostgresStore::connect(&url).unwrap();
    let id = store.reserve_ids(1).unwrap()[0];
    let t = conformance::sample(&store, 2, "kept");
    store.apply(vec![Change::Insert(t.clone())]).unwrap();
    drop(store);
    let store = PostgresStore::connect(&url).unwrap();
    assert_eq!(store.get(t.id).unwrap(), Some(t));
    assert!(
        store.reserve_ids(1).unwrap()[0] > id,
        "the sequence kept its place"
    );
    drop(store);
    // A database migrated by a newer release is refused, naming both versions.
    pg.psql("mig", "UPDATE api_tokens_schema SET version = version + 1");
    match PostgresStore::connect(&url) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (schema::LATEST + 1, schema::LATEST));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let msg = PostgresStore::connect(&url).unwrap_err().to_string();
    assert!(msg.contains("newer than this crate supports"), "{msg}");
}

#[test]
fn the_database_enforces_its_rules_and_odd_rows_fail_closed() {
    let pg = server!();
    let url = pg.create_db("rules");
    let store = PostgresStore::connect(&url).unwrap();
    // Ids come from the sequence.
    let ids = store.reserve_ids(3).unwrap();
    let last: u64 = pg
        .psql("rules", "SELECT last_value FROM api_token_ids")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(ids.last().unwrap().get(), last);
    // CHECK constraints refuse what the crate would never write.
    let t = conformance::sample(&store, 2, "ok");
    store.apply(vec![Change::Insert(t.clone())]).unwrap();
    for bad in [
        "UPDATE api_tokens SET status = 7",
        "UPDATE api_tokens SET secret_hash = '\\x00'",
        "UPDATE api_tokens SET revision = -1",
        "UPDATE api_tokens SET previous_hash = decode(repeat('ab', 32), 'hex'), previous_valid_until = 1",
    ] {
        let err = pg.psql_err("rules", bad);
        assert!(err.contains("violates check constraint"), "{bad}: {err}");
    }
    // A row the SQL checks allow but the crate's types refuse: an error, never a panic, and
    // never a half-read token.
    pg.psql(
        "rules",
        &format!(
            "UPDATE api_tokens SET name = 'bad' || chr(10) || 'name' WHERE id = {}",
            t.id
        ),
    );
    assert!(matches!(store.get(t.id), Err(StoreError::Backend(_))));
    // Revisions are enforced in SQL: an UPDATE at a stale revision changes nothing.
    pg.psql(
        "rules",
        &format!("UPDATE api_tokens SET name = 'fixed' WHERE id = {}", t.id),
    );
    let fresh = store.get(t.id).unwrap().unwrap();
    let mut stale = fresh.clone();
    stale.revision = fresh.revision.wrapping_sub(1);
    assert!(matches!(
        store.apply(vec![Change::Replace(stale)]),
        Err(StoreError::Conflict(id)) if id == t.id
    ));
    // A batch is one transaction: its clock moves once, and not at all when it fails.
    let clock = || {
        pg.psql("rules", "SELECT seq FROM api_token_clock")
            .trim()
            .to_owned()
    };
    let before = clock();
    let a = conformance::sample(&store, 3, "a");
    let b = conformance::sample(&store, 3, "a");
    assert!(
        store
            .apply(vec![Change::Insert(a.clone()), Change::Insert(b)])
            .is_err()
    );
    assert_eq!(clock(), before);
    let c = conformance::sample(&store, 3, "c");
    store
        .apply(vec![Change::Insert(a), Change::Insert(c)])
        .unwrap();
    assert_eq!(
        clock().parse::<u64>().unwrap(),
        before.parse::<u64>().unwrap() + 1
    );
}

#[test]
fn last_use_from_several_processes_merges_later_wins() {
    let pg = server!();
    let url = pg.create_db("lastuse");
    let a = PostgresStore::connect(&url).unwrap();
    let b = PostgresStore::connect(&url).unwrap();
    let mut t = conformance::sample(&a, 2, "shared");
    t.secret = Some(api_tokens::SecretState {
        hash: api_tokens::SecretHash::from_bytes([9; 32]),
        scheme: api_tokens::HashScheme::UNRECORDED,
        generated_at: conformance::t0(),
        previous: None,
    });
    a.apply(vec![Change::Insert(t.clone())]).unwrap();
    let at = |s: i64| LastUse {
        at: conformance::t0() + time::Duration::seconds(s),
        ip: None,
    };
    let hash = api_tokens::SecretHash::from_bytes([9; 32]);
    a.authenticate(&hash, &mut |_| Some(at(20))).unwrap();
    b.authenticate(&hash, &mut |_| Some(at(10))).unwrap();
    a.flush().unwrap();
    b.flush().unwrap(); // earlier, and written later: must not win
    let got = pg.psql(
        "lastuse",
        &format!("SELECT last_used_at FROM api_tokens WHERE id = {}", t.id),
    );
    assert_eq!(got.trim(), at(20).at.unix_timestamp().to_string());
    // A management write based on an older read keeps the newer use too.
    let read = a.get(t.id).unwrap().unwrap();
    b.authenticate(&hash, &mut |_| Some(at(30))).unwrap();
    b.flush().unwrap();
    let mut renamed = read;
    renamed.name = TokenName::new("renamed").unwrap();
    a.apply(vec![Change::Replace(renamed)]).unwrap();
    assert_eq!(a.get(t.id).unwrap().unwrap().last_use, Some(at(30)));
    // Buffered uses are written when the store is dropped.
    b.authenticate(&hash, &mut |_| Some(at(40))).unwrap();
    drop(b);
    assert_eq!(a.get(t.id).unwrap().unwrap().last_use, Some(at(40)));
}

#[test]
fn async_hosts_never_block_the_executor_nor_panic() {
    let pg = server!();
    let url = pg.create_db("async");
    let tokens = AsyncTokens::new(Tokens::new(PostgresStore::connect(&url).unwrap()));
    let admin = Actor::admin(UserId::from(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let issued = rt
        .block_on(tokens.issue(
            admin.clone(),
            NewToken::new("first".parse().unwrap()).permissions(PermissionSet::all()),
        ))
        .unwrap();
    let secret = issued.secret.expose().to_owned();
    // Hold the change clock's row lock in another session: a create now waits for it.
    let mut holder = pg.psql_session("async");
    let mut stdin = holder.stdin.take().unwrap();
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    writeln!(stdin, "BEGIN; SELECT seq FROM api_token_clock FOR UPDATE;").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(!line.trim().is_empty(), "lock taken");
    let ticks = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let t2 = tokens.clone();
        let create = tokio::spawn(async move {
            t2.create(
                admin.clone(),
                vec![NewToken::new("second".parse().unwrap()).permissions(PermissionSet::all())],
            )
            .await
        });
        // The single executor thread stays free: other tasks (here: authentication, which
        // needs no I/O) keep running while the create waits on the database.
        let ctx = RequestContext::unknown_address();
        while ticks.load(Ordering::Relaxed) < 200 {
            assert!(tokens.authenticate(&secret, &ctx).is_ok());
            ticks.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
        assert!(
            !create.is_finished(),
            "the create is still waiting for the lock"
        );
        writeln!(stdin, "COMMIT;").unwrap();
        drop(stdin);
        let ids = tokio::time::timeout(Duration::from_secs(10), create)
            .await
            .expect("create completes once the lock is released")
            .unwrap()
            .unwrap();
        assert_eq!(ids.len(), 1);
        // Listing from inside the runtime, through the documented path.
        let all = tokens
            .list(Actor::admin(UserId::from(1)), Query::new())
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
    });
    let _ = holder.wait();
    // A sync call made straight from async code (not the documented path) still neither
    // panics nor deadlocks, even on a current-thread runtime: the store's I/O runs on its
    // own runtime.
    let n = rt.block_on(async {
        tokens
            .tokens()
            .count(&crate::support::admin(), &Query::new())
    });
    assert_eq!(n.unwrap(), 2);
    // Dropping the store inside an async context does not panic either.
    rt.block_on(async move { drop(tokens) });
}

/// The record rules hold in PostgreSQL: as CHECK constraints, rows that break them (the
/// constraints dropped by hand) refused when read, and a version-1 database migrated, or
/// refused naming the row that would break a new rule.
#[test]
fn record_rules_hold_in_postgresql() {
    let pg = server!();
    let url = pg.create_db("rules");
    let store = PostgresStore::connect(&url).unwrap();
    let mut t = conformance::sample(&store, 2, "t");
    t.secret = Some(api_tokens::SecretState {
        hash: api_tokens::SecretHash::from_bytes([5; 32]),
        scheme: api_tokens::HashScheme::UNRECORDED,
        generated_at: conformance::t0(),
        previous: None,
    });
    store.apply(vec![Change::Insert(t.clone())]).unwrap();
    for (bad, constraint) in [
        (
            "UPDATE api_tokens SET revoked_at = 1, revoked_by = 'possession', \
             secret_hash = NULL, generated_at = NULL",
            "api_tokens_revoked_is_disabled",
        ),
        (
            "UPDATE api_tokens SET status = 1, revoked_at = 1, revoked_by = 'possession'",
            "api_tokens_revoked_has_no_secret",
        ),
        (
            "UPDATE api_tokens SET revoked_by = 'possession', status = 1, \
             secret_hash = NULL, generated_at = NULL",
            "api_tokens_revoked_has_time_and_cause",
        ),
        (
            "UPDATE api_tokens SET previous_hash = secret_hash, previous_valid_until = 1",
            "api_tokens_previous_hash_differs",
        ),
    ] {
        let err = pg.psql_err("rules", bad);
        assert!(err.contains(constraint), "{bad}: {err}");
    }
    // Written with the constraint gone, a revoked token that is enabled is refused when read:
    // its secret is denied, never accepted.
    pg.psql(
        "rules",
        "ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_revoked_is_disabled;
         UPDATE api_tokens SET revoked_at = 1, revoked_by = 'possession',
             secret_hash = NULL, generated_at = NULL",
    );
    assert!(matches!(
        store.get(t.id),
        Err(StoreError::Inconsistent { token, .. }) if token == t.id
    ));
    drop(store);

    // Back to version 1 by hand, with a row a version-2 rule refuses: the migration names it
    // and changes nothing; fixed, it migrates.
    pg.psql("rules", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
    let store = PostgresStore::connect(&url).unwrap();
    let mut t = conformance::sample(&store, 2, "v1");
    t.secret = Some(api_tokens::SecretState {
        hash: api_tokens::SecretHash::from_bytes([6; 32]),
        scheme: api_tokens::HashScheme::UNRECORDED,
        generated_at: conformance::t0(),
        previous: Some(api_tokens::PreviousSecret {
            hash: api_tokens::SecretHash::from_bytes([7; 32]),
            scheme: api_tokens::HashScheme::UNRECORDED,
            valid_until: conformance::t0(),
        }),
    });
    store.apply(vec![Change::Insert(t.clone())]).unwrap();
    drop(store);
    pg.psql(
        "rules",
        &format!(
            "{UNDO_V7}
         {UNDO_V4_V5}
         ALTER TABLE api_tokens DROP COLUMN revoked_at CASCADE, DROP COLUMN revoked_by CASCADE,
             DROP CONSTRAINT api_tokens_previous_hash_differs,
             DROP COLUMN secret_key_id CASCADE, DROP COLUMN secret_legacy CASCADE,
             DROP COLUMN previous_key_id CASCADE, DROP COLUMN previous_legacy CASCADE;
         CREATE TRIGGER api_tokens_stamp_update BEFORE UPDATE OF
             id, owner, name, description, creator, status, created_at, expires_at,
             permissions, allowlist, secret_hash, generated_at, previous_hash,
             previous_valid_until, revision, change_seq
             ON api_tokens FOR EACH ROW EXECUTE FUNCTION api_tokens_stamp();
         UPDATE api_tokens SET previous_hash = secret_hash;
         UPDATE api_tokens_schema SET version = 1;"
        ),
    );
    match PostgresStore::connect(&url) {
        Err(StoreError::Inconsistent { token, problem }) => {
            assert_eq!(token, t.id);
            assert_eq!(problem, "the previous secret hash equals the current one");
        }
        other => panic!("expected the offending row named, got {other:?}"),
    }
    assert_eq!(
        pg.psql("rules", "SELECT version FROM api_tokens_schema")
            .trim(),
        "1",
        "nothing changed"
    );
    pg.psql(
        "rules",
        "UPDATE api_tokens SET previous_hash = decode(repeat('07', 32), 'hex')",
    );
    let store = PostgresStore::connect(&url).unwrap();
    assert_eq!(store.get(t.id).unwrap(), Some(t));
    assert_eq!(
        pg.psql("rules", "SELECT version FROM api_tokens_schema")
            .trim(),
        schema::LATEST.to_string()
    );
}

/// A secret revoked by possession through one replica is refused by every replica,
/// and no replica can enable the token again.
#[test]
fn revocation_by_possession_is_final_across_replicas() {
    let pg = server!();
    let url = pg.create_db("revoke17");
    let replica = |url: &str| {
        Tokens::new(
            Replica::start(
                PostgresStore::connect(url).unwrap(),
                ReplicaOptions::default(),
            )
            .unwrap(),
        )
    };
    let a = replica(&url);
    let b = replica(&url);
    let owner = Actor::user(UserId::from(2));
    let issued = a
        .issue(
            &owner,
            NewToken::new("leaked".parse().unwrap()).permissions(PermissionSet::all()),
        )
        .unwrap();
    let ctx = RequestContext::unknown_address();
    wait_for(Duration::from_secs(30), "b sees the token", || {
        b.authenticate(issued.secret.expose(), &ctx).is_ok()
    });
    assert_eq!(
        a.revoke_by_secret(issued.secret.expose()).unwrap().tokens(),
        [api_tokens::TokenRevocation::Disabled(issued.token.id)]
    );
    wait_for(Duration::from_secs(30), "b refuses the secret", || {
        b.authenticate(issued.secret.expose(), &ctx).is_err()
    });
    let t = b.get(&owner, issued.token.id).unwrap();
    assert!(t.revoked.is_some() && t.secret.is_none());
    let err = b
        .set_status(&owner, [issued.token.id], api_tokens::Status::Enabled)
        .unwrap_err();
    assert!(matches!(err, api_tokens::Error::Revoked { .. }), "{err}");
}

/// A replica started under the wrong key fails the startup check naming the key; a
/// replica holding the old key re-hashes a token under the new one, in PostgreSQL, and every
/// replica's copy learns it; after that the new key alone suffices.
#[test]
fn key_ids_and_rotation_across_replicas() {
    use api_tokens::{Error, HashKey, HashScheme};
    let pg = server!();
    let url = pg.create_db("keys");
    let (a, b) = (HashKey::new([0xa; 32]), HashKey::new([0xb; 32]));
    let replica = |keys: &[&HashKey]| {
        let mut t = Tokens::new(
            Replica::start(
                PostgresStore::connect(&url).unwrap(),
                ReplicaOptions::default(),
            )
            .unwrap(),
        )
        .with_hash_key(keys[0].clone());
        for k in &keys[1..] {
            t = t.with_old_hash_key((*k).clone());
        }
        t
    };
    let under_a = replica(&[&a]);
    let issued = under_a
        .issue(
            &Actor::user(UserId::from(2)),
            NewToken::new("rotated".parse().unwrap()).permissions("x".parse().unwrap()),
        )
        .unwrap();
    let id = issued.token.id;
    let ctx = RequestContext::unknown_address();

    // Under b alone: refused at startup, naming a.
    let wrong = replica(&[&b]);
    match wrong.check_hash_keys() {
        Err(Error::Store(StoreError::HashKeysMissing { missing, .. })) => {
            assert_eq!(missing, vec![(a.id(), 1)]);
        }
        other => panic!("expected the missing key named, got {other:?}"),
    }
    // PostgresStore without a replica says the same.
    let direct = Tokens::new(PostgresStore::connect(&url).unwrap()).with_hash_key(b.clone());
    assert!(direct.check_hash_keys().is_err());

    // Rotated: b current, a old. A watcher replica with the same keys sees the re-hash.
    let rotated = replica(&[&b, &a]);
    let watcher = replica(&[&b, &a]);
    assert_eq!(rotated.check_hash_keys().unwrap().hashes_under(a.id()), 1);
    rotated.authenticate(issued.secret.expose(), &ctx).unwrap();
    let stored = PostgresStore::connect(&url)
        .unwrap()
        .get(id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.secret.unwrap().scheme, HashScheme::keyed(b.id()));
    wait_for(
        Duration::from_secs(30),
        "the watcher sees the re-hash",
        || watcher.hash_key_report().unwrap().hashes_under(a.id()) == 0,
    );
    // Now b alone is enough, on a replica started after it.
    let b_only = replica(&[&b]);
    b_only.check_hash_keys().unwrap();
    assert_eq!(
        b_only
            .authenticate(issued.secret.expose(), &ctx)
            .unwrap()
            .token,
        id
    );
}

/// Imported legacy hashes live in PostgreSQL like any other; rows from before schema
/// 3 read as made under the host's key and are labelled when first used.
#[cfg(feature = "legacy")]
#[test]
fn imported_and_unrecorded_hashes_in_postgresql() {
    use crate::support::legacy::zabbix_row;
    use api_tokens::{HashKey, HashScheme, ImportedToken, LegacyScheme};
    let pg = server!();
    let url = pg.create_db("legacy");
    let key = HashKey::new([7; 32]);
    let secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let tokens = Tokens::new(PostgresStore::connect(&url).unwrap())
        .with_hash_key(key.clone())
        .with_legacy_scheme(LegacyScheme::ZabbixSha512);
    let ids = tokens
        .import(
            &admin(),
            [ImportedToken::new("z".parse().unwrap(), UserId::from(2))
                .permissions(PermissionSet::all())
                .hash(zabbix_row(secret))],
        )
        .unwrap();
    let ordinary = tokens
        .issue(
            &Actor::user(UserId::from(2)),
            NewToken::new("plain".parse().unwrap()).permissions("x".parse().unwrap()),
        )
        .unwrap();
    drop(tokens);
    let ctx = RequestContext::unknown_address();
    let tokens = Tokens::new(PostgresStore::connect(&url).unwrap())
        .with_hash_key(key.clone())
        .with_legacy_scheme(LegacyScheme::ZabbixSha512);
    let report = tokens.check_hash_keys().unwrap();
    assert_eq!(report.usage.len(), 2, "{report:?}");
    assert_eq!(tokens.authenticate(secret, &ctx).unwrap().token, ids[0]);
    assert_eq!(tokens.hash_key_report().unwrap().not_current(), 0);
    drop(tokens);

    // Back to schema 2 by hand (the scheme columns gone): migrated again on connect, the
    // hashes' keys unrecorded until a secret matches.
    pg.psql(
        "legacy",
        &format!(
            "{UNDO_V7}
         {UNDO_V4_V5}
         ALTER TABLE api_tokens DROP COLUMN secret_key_id CASCADE,
             DROP COLUMN secret_legacy CASCADE, DROP COLUMN previous_key_id CASCADE,
             DROP COLUMN previous_legacy CASCADE;
         CREATE TRIGGER api_tokens_stamp_update BEFORE UPDATE OF
             id, owner, name, description, creator, status, created_at, expires_at,
             permissions, allowlist, secret_hash, generated_at, previous_hash,
             previous_valid_until, revision, revoked_at, revoked_by, change_seq
             ON api_tokens FOR EACH ROW EXECUTE FUNCTION api_tokens_stamp();
         UPDATE api_tokens_schema SET version = 2;"
        ),
    );
    let tokens = Tokens::new(PostgresStore::connect(&url).unwrap()).with_hash_key(key.clone());
    assert_eq!(tokens.check_hash_keys().unwrap().unrecorded(), 2);
    assert!(tokens.authenticate(ordinary.secret.expose(), &ctx).is_ok());
    let t = tokens.store().get(ordinary.token.id).unwrap().unwrap();
    assert_eq!(t.secret.unwrap().scheme, HashScheme::keyed(key.id()));
    assert_eq!(tokens.hash_key_report().unwrap().unrecorded(), 1);
}

#[test]
fn lists_narrowed_by_hand_in_sql_are_never_served_from_the_rule_cache() {
    // The store parses a token's lists once and keeps them; a hand-made UPDATE does not move
    // the revision, but the stamp trigger moves change_seq, which the cache is keyed on too.
    let pg = server!();
    let url = pg.create_db("narrowed");
    let tokens = Tokens::new(PostgresStore::connect(&url).unwrap());
    let admin = Actor::admin(UserId::from(1));
    let issued = tokens
        .issue(
            &admin,
            NewToken::new("t".parse().unwrap())
                .permissions("reports.read dns.edit".parse().unwrap())
                .allowlist("203.0.113.0/24 10.0.0.0/8".parse().unwrap()),
        )
        .unwrap();
    let secret = issued.secret.expose().to_owned();
    let outside = RequestContext::from_ip("203.0.113.9".parse().unwrap());
    let inside = RequestContext::from_ip("10.1.2.3".parse().unwrap());
    let dns_edit = "dns.edit".parse().unwrap();
    // Fills the cache.
    let grant = tokens.authenticate(&secret, &outside).unwrap();
    assert!(grant.require(&dns_edit).is_ok());
    pg.psql(
        "narrowed",
        &format!(
            "UPDATE api_tokens SET allowlist = '10.0.0.0/8', permissions = 'reports.read' \
             WHERE id = {}",
            issued.token.id
        ),
    );
    assert_eq!(
        tokens
            .authenticate(&secret, &outside)
            .err()
            .map(|d| d.kind()),
        Some(api_tokens::DenialKind::AddressNotAllowed)
    );
    let grant = tokens.authenticate(&secret, &inside).unwrap();
    assert!(grant.require(&dns_edit).is_err());
    assert!(grant.require(&"reports.read".parse().unwrap()).is_ok());
}

#[test]
fn a_locked_row_never_turns_a_valid_token_away() {
    // Last-use bookkeeping is written in the background, on a connection of its own: a row
    // lock held by another session (or a slow database) delays it, never the request (not
    // even its lookup, with a pool of one), and the uses are written later.
    let pg = server!();
    let url = pg.create_db("rowlock");
    let tokens = Tokens::new(
        PostgresStore::connect_with(
            &url,
            // One pooled connection: the flush must not hold it while it waits.
            PostgresOptions::default()
                .pool_size(1)
                .timeout(Duration::from_secs(2))
                .touch_interval(Duration::ZERO),
        )
        .unwrap(),
    );
    let admin = Actor::admin(UserId::from(1));
    let issued = tokens
        .issue(
            &admin,
            NewToken::new("t".parse().unwrap()).permissions(PermissionSet::all()),
        )
        .unwrap();
    let secret = issued.secret.expose().to_owned();
    let ctx = RequestContext::unknown_address();
    let mut holder = pg.psql_session("rowlock");
    let mut stdin = holder.stdin.take().unwrap();
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    writeln!(stdin, "BEGIN; SELECT id FROM api_tokens FOR UPDATE;").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(!line.trim().is_empty(), "lock taken");
    // Each authentication (a second apart, so each is a newer use) starts a flush that waits
    // on the lock; none of them may fail for it.
    let t0 = time::OffsetDateTime::now_utc();
    for i in 0..5 {
        let at = t0 + time::Duration::seconds(i);
        let r = tokens.authenticate_at(&secret, &ctx, at);
        assert!(
            r.is_ok(),
            "a valid token refused: {:?}",
            r.err().map(|d| d.kind())
        );
    }
    // The lock goes: the newest use is written (by the next flush).
    writeln!(stdin, "ROLLBACK;").unwrap();
    drop(stdin);
    let _ = holder.wait();
    let newest = (t0 + time::Duration::seconds(4))
        .unix_timestamp()
        .to_string();
    wait_for(Duration::from_secs(10), "the newest use written", || {
        tokens.store().flush().is_ok()
            && pg
                .psql(
                    "rowlock",
                    &format!(
                        "SELECT last_used_at FROM api_tokens WHERE id = {}",
                        issued.token.id
                    ),
                )
                .trim()
                == newest
    });
}

#[test]
fn a_read_right_after_an_authentication_sees_its_use() {
    // The use is written in the background; a read waits for a flush in flight.
    let pg = server!();
    let url = pg.create_db("readyourown");
    let tokens = Tokens::new(
        PostgresStore::connect_with(
            &url,
            PostgresOptions::default().touch_interval(Duration::ZERO),
        )
        .unwrap(),
    );
    let issued = issue(&tokens, "t");
    let secret = issued.secret.expose().to_owned();
    let ctx = RequestContext::unknown_address();
    let t0 = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let mut missed = 0;
    for i in 0..30 {
        let at = t0 + time::Duration::seconds(i);
        tokens.authenticate_at(&secret, &ctx, at).unwrap();
        let seen = tokens
            .store()
            .get(issued.token.id)
            .unwrap()
            .unwrap()
            .last_use;
        if seen.map(|u| u.at) != Some(at) {
            missed += 1;
        }
    }
    assert_eq!(
        missed, 0,
        "{missed} of 30 reads right after an authentication missed its use"
    );
}

#[test]
fn a_rehash_never_undoes_a_change_made_by_hand_in_sql() {
    // Schema version 5: a stamped UPDATE that leaves the revision as it was moves it, so a
    // write read before an operator's change is refused as a conflict, not applied over it.
    let pg = Arc::new(server!());
    let url = pg.create_db("handmade");
    let a = api_tokens::HashKey::new([0xa; 32]);
    let b = api_tokens::HashKey::new([0xb; 32]);
    let inner = Arc::new(PostgresStore::connect(&url).unwrap());
    let admin = Actor::admin(UserId::from(1));
    let under_a = Tokens::new(inner.clone()).with_hash_key(a.clone());
    let ctx = RequestContext::unknown_address();
    for (name, sql) in [
        (
            "disabled",
            "UPDATE api_tokens SET status = 1 WHERE id = {id}",
        ),
        (
            "cleared",
            "UPDATE api_tokens SET secret_hash = NULL, generated_at = NULL, status = 1 \
             WHERE id = {id}",
        ),
    ] {
        let issued = under_a
            .issue(
                &admin,
                NewToken::new(name.parse().unwrap()).permissions(PermissionSet::all()),
            )
            .unwrap();
        let id = issued.token.id;
        let secret = issued.secret.expose().to_owned();
        let revision = |pg: &PgServer| {
            pg.psql(
                "handmade",
                &format!("SELECT revision FROM api_tokens WHERE id = {id}"),
            )
            .trim()
            .to_owned()
        };
        let before = revision(&pg);
        let sql = sql.replace("{id}", &id.to_string());
        let server = pg.clone();
        // A write the library prepared (a re-hash on use) interleaved with an operator's
        // change made by hand in SQL.
        let rotated = Tokens::new(Hooked::new(inner.clone()).before_first_replace(move || {
            server.psql("handmade", &sql);
        }))
        .with_hash_key(b.clone())
        .with_old_hash_key(a.clone());
        rotated.check_hash_keys().unwrap();
        // The request that raced the operator was let in (it was looked up before the
        // change); what matters is the row afterwards, and every later request.
        let _ = rotated.authenticate(&secret, &ctx);
        assert_ne!(
            revision(&pg),
            before,
            "{name}: the hand-made change moved the revision"
        );
        assert_eq!(
            pg.psql(
                "handmade",
                &format!("SELECT status FROM api_tokens WHERE id = {id}")
            )
            .trim(),
            "1",
            "{name}: the re-hash put the row back"
        );
        assert!(
            rotated.authenticate(&secret, &ctx).is_err(),
            "{name}: the secret works again"
        );
    }
}

#[test]
fn a_revocation_by_a_process_older_than_the_schema_still_commits() {
    // A process built before schema version 3 (still connected while another migrated)
    // knows nothing of the scheme columns; its revocation clears the hashes only. The stamp
    // trigger clears their schemes, so version 3's rules do not refuse it.
    let pg = server!();
    let url = pg.create_db("oldwriter");
    let tokens = Tokens::new(PostgresStore::connect(&url).unwrap());
    let issued = issue(&tokens, "t");
    let id = issued.token.id;
    // Exactly the columns a version-2 process's UPDATE sets for a revocation by possession.
    pg.psql(
        "oldwriter",
        &format!(
            "UPDATE api_tokens SET status = 1, secret_hash = NULL, generated_at = NULL, \
             previous_hash = NULL, previous_valid_until = NULL, revoked_at = 1, \
             revoked_by = 'possession', revision = revision + 1 WHERE id = {id}"
        ),
    );
    assert_eq!(
        pg.psql(
            "oldwriter",
            &format!(
                "SELECT secret_key_id IS NULL AND secret_legacy IS NULL FROM api_tokens \
                 WHERE id = {id}"
            )
        )
        .trim(),
        "t"
    );
    assert!(
        tokens
            .authenticate(issued.secret.expose(), &RequestContext::unknown_address())
            .is_err()
    );
}

/// Schema version 7 (import origins) applied to the data of version 6 (and so of any version
/// before it): rows keep every value and read without an origin, a token imported then and
/// not used since is still found by its imported hash, new imports record their origin, and
/// the lookup goes through the new index. A replica loads the new column too.
#[cfg(feature = "legacy")]
#[test]
fn version_7_import_origins_migrate_from_version_6_data() {
    use crate::support::legacy::zabbix_row as row;
    use api_tokens::store::replica::{Replica, ReplicaOptions};
    use api_tokens::{HashKey, ImportedToken, LegacyScheme, Problem};
    let pg = server!();
    let url = pg.create_db("origins7");
    let key = HashKey::new([7; 32]);
    let (used, unused, fresh) = (
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    );
    let tokens = |store| {
        Tokens::new(store)
            .with_hash_key(key.clone())
            .with_legacy_scheme(LegacyScheme::ZabbixSha512)
    };
    fn import<S: TokenStore>(
        t: &Tokens<S>,
        owner: u64,
        name: &str,
        secret: &str,
    ) -> Result<api_tokens::TokenId, api_tokens::Error> {
        t.import(
            &admin(),
            [
                ImportedToken::new(name.parse().unwrap(), UserId::from(owner))
                    .permissions(PermissionSet::all())
                    .hash(row(secret)),
            ],
        )
        .map(|ids| ids[0])
    }
    let ctx = RequestContext::unknown_address();
    let t = tokens(PostgresStore::connect(&url).unwrap());
    let a = import(&t, 2, "used", used).unwrap();
    let b = import(&t, 2, "unused", unused).unwrap();
    t.authenticate(used, &ctx).unwrap();
    let before: Vec<_> = [a, b]
        .iter()
        .map(|id| {
            let mut got = t.store().get(*id).unwrap().unwrap();
            got.imported_from = None;
            got
        })
        .collect();
    drop(t);
    // Back to version 6 by hand: as a database written before origins were recorded.
    pg.psql(
        "origins7",
        &format!("{UNDO_V7} UPDATE api_tokens_schema SET version = 6;"),
    );
    let t = tokens(PostgresStore::connect(&url).unwrap());
    assert_eq!(
        pg.psql("origins7", "SELECT version FROM api_tokens_schema")
            .trim(),
        schema::LATEST.to_string()
    );
    assert_eq!(
        pg.psql(
            "origins7",
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'api_tokens_imported_from'"
        )
        .trim(),
        "1"
    );
    // The lookup's query can use it (the planner told not to scan the whole table).
    let plan = pg.psql(
        "origins7",
        "SET enable_seqscan = off; EXPLAIN SELECT id, imported_from FROM api_tokens \
         WHERE imported_from = ANY(ARRAY[decode(repeat('ab', 32), 'hex')]) ORDER BY id",
    );
    assert!(plan.contains("api_tokens_imported_from"), "{plan}");
    for old in &before {
        assert_eq!(t.store().get(old.id).unwrap().as_ref(), Some(old), "kept");
    }
    // The unused one still holds its imported hash: found by it. (The used one's origin was
    // lost with the column: that is what a downgrade does, not what the migration does.)
    let e = import(&t, 3, "again", unused).unwrap_err();
    assert!(
        matches!(&e, api_tokens::Error::Invalid { source, .. }
            if source.problem == Problem::AlreadyImported { token: b }),
        "{e:?}"
    );
    // New imports record their origin, and a replica started now loads it.
    let c = import(&t, 2, "fresh", fresh).unwrap();
    let origin = t.store().get(c).unwrap().unwrap().imported_from;
    assert!(origin.is_some());
    assert_eq!(
        t.store().find_imported(&[origin.unwrap()]).unwrap(),
        vec![(c, origin.unwrap())]
    );
    let replica = Tokens::new(
        Replica::start(
            PostgresStore::connect(&url).unwrap(),
            ReplicaOptions::default(),
        )
        .unwrap(),
    )
    .with_hash_key(key.clone())
    .with_legacy_scheme(LegacyScheme::ZabbixSha512);
    t.authenticate(fresh, &ctx).unwrap();
    let e = import(&replica, 3, "again", fresh).unwrap_err();
    assert!(
        matches!(&e, api_tokens::Error::Invalid { source, .. }
            if source.problem == Problem::AlreadyImported { token: c }),
        "{e:?}"
    );
    assert_eq!(
        pg.psql(
            "origins7",
            "SELECT count(*) FROM api_tokens WHERE imported_from IS NOT NULL"
        )
        .trim(),
        "1"
    );
}
