//! Regression tests for the security review of issue 17, one per row of its table (the rows
//! about the Zabbix and WHM examples' own inputs are tested with the examples). Rows whose fix
//! is a cost are proved by counting work, not by a clock, in unit tests beside the code:
//!
//! * parse 2k vs 20k wildcard permissions (quadratic): `permission::tests::
//!   normalising_tests_each_member_once`, `set_operations_are_linear`;
//! * a 10k-permission token on `SqliteStore` parsed per request: `store::sqlite::tests::
//!   a_token_of_many_permissions_is_parsed_once_per_revision`;
//! * `MemoryStore`, the owner lost a right, 10k permissions intersected per request:
//!   `tokens::tests::a_token_of_many_permissions_is_intersected_once_not_per_request`.
//!
//! The snapshot row is tested in `tests/snapshot.rs` (sealed snapshots).

mod support;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use api_tokens::{
    Actor, CollectEvents, DenialKind, Error, EventKind, Field, IpAllowlist, ManualClock,
    MemoryStore, NewToken, PermissionSet, Policy, Problem, Query, RequestContext, RevokedBy,
    Status, Token, TokenId, TokenName, TokenRevocation, TokenStore, TokenUpdate, Tokens, UserId,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn admin() -> Actor {
    Actor::admin(UserId::from(1))
}

fn name(s: &str) -> TokenName {
    TokenName::new(s).unwrap()
}

fn ctx() -> RequestContext {
    RequestContext::from_ip("10.0.0.1".parse().unwrap())
}

fn wildcards(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("g{i}.*")).collect()
}

/// Runs `f` on its own thread and waits for it at most `limit`: a liveness bound far above
/// what the fixed code needs, far below what the quadratic code took (a poll with a bounded
/// timeout, not a speed target: the benches measure speed).
fn finishes_within<T: Send + 'static>(
    limit: StdDuration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("finished within the bound (the quadratic version did not)")
}

// Row: one token with many permissions (WHM: 30k `acl-N`): refused beyond the cap, naming it.
#[test]
fn permissions_beyond_the_cap_are_refused_naming_the_cap() {
    let tokens = Tokens::in_memory();
    let cap = Policy::default().max_permissions;
    assert!(
        cap >= 200,
        "room for every preset's catalogue (WHM has about 100 ACLs)"
    );
    let too_many = PermissionSet::parse(wildcards(30_000)).unwrap();
    assert_eq!(too_many.len(), 30_000);
    let err = tokens
        .issue(
            &admin(),
            NewToken::new(name("big")).permissions(too_many.clone()),
        )
        .unwrap_err();
    match &err {
        Error::Invalid { source, .. } => {
            assert_eq!(source.field, Field::Permissions);
            assert_eq!(source.problem, Problem::TooMany { max: cap });
        }
        e => panic!("expected the cap, got {e:?}"),
    }
    assert!(err.to_string().contains(&format!("at most {cap}")), "{err}");
    assert!(tokens.store().is_empty(), "nothing created");
    // At the cap it is fine; an update past it is refused the same way.
    let at_cap = PermissionSet::parse(wildcards(cap)).unwrap();
    let id = tokens
        .create(&admin(), [NewToken::new(name("ok")).permissions(at_cap)])
        .unwrap()[0];
    let err = tokens
        .update(&admin(), [TokenUpdate::new(id).permissions(too_many)])
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { index: None, .. }), "{err}");
    // The default permissions (the actor's, under a policy that gives them) count too.
    let mut seeds_rule = Policy::default();
    seeds_rule.require_permissions = false;
    let tokens = Tokens::in_memory().with_policy(seeds_rule);
    let rich =
        Actor::admin(UserId::from(1)).privileges(PermissionSet::parse(wildcards(cap + 1)).unwrap());
    let err = tokens
        .create(&rich, [NewToken::new(name("rich"))])
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { source, .. } if source.problem == Problem::TooMany { max: cap }),
        "{err}"
    );
}

// Review 1: search patterns and sort keys are bounded like the list filters.
#[test]
fn search_patterns_and_sort_keys_are_capped() {
    use api_tokens::store::{SortField, SortOrder, TextSearch};
    use api_tokens::{MAX_SEARCH_PATTERNS, MAX_SORT_KEYS};
    let tokens = Tokens::in_memory();
    let words = |n: usize| (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>();
    let at_cap = Query::new().search(TextSearch::new().name(words(MAX_SEARCH_PATTERNS)));
    assert!(tokens.list(&admin(), &at_cap).is_ok());
    let over = Query::new().search(
        TextSearch::new()
            .name(words(MAX_SEARCH_PATTERNS))
            .description(["one more"]),
    );
    let err = tokens.count(&admin(), &over).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { source, .. } if source.problem
            == Problem::TooManyValues { found: MAX_SEARCH_PATTERNS + 1, max: MAX_SEARCH_PATTERNS }),
        "{err}"
    );
    // A pattern longer than any stored text can be never matches: refused, not scanned.
    let policy = Policy::default();
    let longest = policy.max_description_chars.max(api_tokens::MAX_NAME_LEN);
    let ok = Query::new().search(TextSearch::new().description(["x".repeat(longest)]));
    assert!(tokens.list(&admin(), &ok).is_ok());
    let long = Query::new().search(TextSearch::new().description(["x".repeat(longest + 1)]));
    let err = tokens.list(&admin(), &long).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { source, .. } if source.problem
            == Problem::TooLong { max: longest }),
        "{err}"
    );
    let mut sorted = Query::new().sort(SortField::Name, SortOrder::Ascending);
    for _ in 1..MAX_SORT_KEYS {
        sorted = sorted.then_sort(SortField::Created, SortOrder::Descending);
    }
    assert!(tokens.list(&admin(), &sorted).is_ok());
    let too_many = sorted.then_sort(SortField::Id, SortOrder::Ascending);
    let err = tokens.list(&admin(), &too_many).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { source, .. } if source.problem
            == Problem::TooManyValues { found: MAX_SORT_KEYS + 1, max: MAX_SORT_KEYS }),
        "{err}"
    );
}

// Row: list filters with 100k ids / owners: quadratic while writers wait.
#[test]
fn list_filters_are_capped_with_a_clear_error() {
    let tokens = Tokens::in_memory();
    let cap = Policy::default().max_filter_values;
    let at_cap = Query::new().ids((0..cap as u64).map(TokenId::new));
    assert_eq!(tokens.list(&admin(), &at_cap).unwrap().len(), 0);
    for q in [
        Query::new().ids((0..=cap as u64).map(TokenId::new)),
        Query::new().owners((0..=cap as u64).map(UserId::from)),
        Query::new().creators((0..=cap as u64).map(UserId::from)),
        Query::new().names((0..=cap).map(|i| name(&format!("n{i}")))),
        Query::new().created_at((0..=cap as i64).map(|i| NOW + Duration::seconds(i))),
    ] {
        let err = tokens.list(&admin(), &q).unwrap_err();
        match &err {
            Error::Invalid { source, .. } => {
                assert_eq!(source.field, Field::Query);
                assert_eq!(
                    source.problem,
                    Problem::TooManyValues {
                        found: cap + 1,
                        max: cap
                    }
                );
            }
            e => panic!("expected the filter cap, got {e:?}"),
        }
        assert!(tokens.count(&admin(), &q).is_err());
    }
}

// Row: list filters with 100k values: the stores filter in O(n + k) (a store has no cap of its
// own: the facade's cap is the host's choice).
#[test]
fn large_list_filters_cost_linear_time_in_the_memory_store() {
    let (listed, counted) = finishes_within(StdDuration::from_secs(120), || {
        let store = MemoryStore::new();
        let n = 20_000u64;
        let ids = store.reserve_ids(n as usize).unwrap();
        let rows = ids
            .iter()
            .map(|&id| {
                api_tokens::store::Change::Insert(Token {
                    id,
                    name: name("t"),
                    description: String::new(),
                    owner: UserId::from(id.get()),
                    creator: UserId::from(id.get()),
                    status: Status::Enabled,
                    created_at: NOW,
                    expiry: api_tokens::Expiry::NEVER,
                    permissions: PermissionSet::empty(),
                    allowlist: IpAllowlist::any(),
                    last_use: None,
                    secret: None,
                    revision: 0,
                    revoked: None,
                    imported_from: None,
                })
            })
            .collect();
        store.apply(rows).unwrap();
        // 400,000 owners, the ones in the store last: a list scan per token would compare
        // 20,000 × 400,000 times.
        let owners: Vec<UserId> = (0..380_000u64)
            .map(|i| UserId::from(1_000_000 + i))
            .chain(ids.iter().map(|id| UserId::from(id.get())))
            .collect();
        let q = Query::new().owners(owners.clone()).creators(owners);
        let listed = store.query(&q, NOW).unwrap().len();
        let counted = store.count(&q, NOW).unwrap();
        (listed, counted)
    });
    assert_eq!((listed, counted), (20_000, 20_000));
}

/// Tokens on `store` with a manual clock and collected events.
fn env<S: TokenStore>(store: S) -> (Tokens<S>, Arc<ManualClock>, Arc<CollectEvents>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let events = Arc::new(CollectEvents::new());
    let tokens = Tokens::new(store)
        .with_clock(clock.clone())
        .with_events(events.clone());
    (tokens, clock, events)
}

/// Revocation by possession is final on `store`.
fn revocation_is_final<S: TokenStore>(store: S) {
    let (tokens, clock, events) = env(store);
    let owner = Actor::user(UserId::from(2));
    let leaked = tokens
        .issue(
            &owner,
            NewToken::new(name("leaked")).permissions(PermissionSet::all()),
        )
        .unwrap();
    let other = tokens
        .issue(
            &owner,
            NewToken::new(name("other")).permissions(PermissionSet::all()),
        )
        .unwrap();
    let id = leaked.token.id;
    clock.advance(Duration::minutes(5));
    assert_eq!(
        tokens
            .revoke_by_secret(leaked.secret.expose())
            .unwrap()
            .tokens(),
        [TokenRevocation::Disabled(id)]
    );
    let revoked_at = NOW + Duration::minutes(5);
    let check_still_revoked = |tokens: &Tokens<S>| {
        let t = tokens.get(&owner, id).unwrap();
        assert_eq!(t.status, Status::Disabled);
        assert!(t.secret.is_none(), "the leaked hash is dropped");
        let mark = t.revoked.expect("marked revoked");
        assert_eq!((mark.at, mark.by), (revoked_at, RevokedBy::Possession));
        let d = tokens
            .authenticate(leaked.secret.expose(), &ctx())
            .unwrap_err();
        assert_eq!(d.kind(), DenialKind::Unknown);
    };
    check_still_revoked(&tokens);
    // Every path that would enable it again says why, and changes nothing.
    let refused = |e: Error, index| match e {
        Error::Revoked { index: i, token } => {
            assert_eq!((i, token), (index, id));
        }
        e => panic!("expected Revoked, got {e:?}"),
    };
    refused(
        tokens
            .update(&owner, [TokenUpdate::new(id).status(Status::Enabled)])
            .unwrap_err(),
        None,
    );
    refused(
        tokens
            .set_status(&admin(), [other.token.id, id], Status::Enabled)
            .unwrap_err(),
        Some(1),
    );
    refused(tokens.generate(&owner, [id]).unwrap_err(), None);
    let err = tokens.generate(&owner, [id]).unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    check_still_revoked(&tokens);
    // Harmless edits stay possible; disabling again is no change.
    tokens
        .update(
            &owner,
            [TokenUpdate::new(id)
                .description("leaked on 2026-03-01")
                .status(Status::Disabled)],
        )
        .unwrap();
    check_still_revoked(&tokens);
    // Listings show it; events record it.
    let listed = tokens.list(&owner, &Query::new()).unwrap();
    assert!(listed.iter().any(|t| t.id == id && t.revoked.is_some()));
    assert!(
        events
            .take()
            .iter()
            .any(|e| e.kind == EventKind::RevokedBySecret && e.token == Some(id))
    );
    // Presenting the leaked secret again: nothing is known of it any more.
    assert!(
        tokens
            .revoke_by_secret(leaked.secret.expose())
            .unwrap()
            .is_unknown()
    );
    assert!(tokens.authenticate(other.secret.expose(), &ctx()).is_ok());
}

// Row: `revoke_by_secret`, then enable again (owner update, mass enable): the secret worked
// again and nothing said it was revoked.
#[test]
fn revocation_by_possession_is_final_in_the_memory_store() {
    revocation_is_final(MemoryStore::new());
}

#[test]
fn a_leaked_secret_in_its_grace_period_revokes_the_token() {
    let (tokens, clock, _) = env(MemoryStore::new());
    let owner = Actor::user(UserId::from(2));
    let issued = tokens
        .issue(
            &owner,
            NewToken::new(name("rotating")).permissions(PermissionSet::all()),
        )
        .unwrap();
    let new = tokens
        .generate_with(
            &owner,
            [issued.token.id],
            Duration::hours(1),
            &mut rand::rng(),
        )
        .unwrap();
    clock.advance(Duration::minutes(1));
    assert_eq!(
        tokens
            .revoke_by_secret(issued.secret.expose())
            .unwrap()
            .tokens(),
        [TokenRevocation::Disabled(issued.token.id)]
    );
    let d = tokens.authenticate(new[0].1.expose(), &ctx()).unwrap_err();
    assert_eq!(d.kind(), DenialKind::Unknown, "the whole token is revoked");
    assert!(
        tokens
            .get(&owner, issued.token.id)
            .unwrap()
            .revoked
            .is_some()
    );
}

/// A store that regenerates the token it finds, once, right after the lookup: the race between
/// `revoke_by_secret`'s lookup and its write.
struct RegeneratesAfterLookup {
    inner: MemoryStore,
    armed: std::sync::atomic::AtomicBool,
}

impl TokenStore for RegeneratesAfterLookup {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, api_tokens::StoreError> {
        self.inner.reserve_ids(n)
    }
    fn apply(&self, changes: Vec<api_tokens::store::Change>) -> Result<(), api_tokens::StoreError> {
        self.inner.apply(changes)
    }
    fn get(&self, id: TokenId) -> Result<Option<Token>, api_tokens::StoreError> {
        self.inner.get(id)
    }
    fn find_name(
        &self,
        owner: &UserId,
        name: &TokenName,
    ) -> Result<Option<TokenId>, api_tokens::StoreError> {
        self.inner.find_name(owner, name)
    }
    fn query(&self, q: &Query, now: OffsetDateTime) -> Result<Vec<Token>, api_tokens::StoreError> {
        self.inner.query(q, now)
    }
    fn count(&self, q: &Query, now: OffsetDateTime) -> Result<usize, api_tokens::StoreError> {
        self.inner.count(q, now)
    }
    fn authenticate(
        &self,
        hash: &api_tokens::SecretHash,
        check: &mut dyn FnMut(api_tokens::store::Candidate<'_>) -> Option<api_tokens::LastUse>,
    ) -> Result<bool, api_tokens::StoreError> {
        let mut found = None;
        let r = self.inner.authenticate(hash, &mut |c| {
            found = Some(c.id);
            check(c)
        });
        if let Some(id) = found
            && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            let mut t = self.inner.get(id)?.unwrap();
            t.secret = Some(api_tokens::SecretState {
                hash: api_tokens::SecretHash::from_bytes([9; 32]),
                scheme: api_tokens::HashScheme::UNRECORDED,
                generated_at: NOW,
                previous: None,
            });
            self.inner
                .apply(vec![api_tokens::store::Change::Replace(t)])?;
        }
        r
    }
}

#[test]
fn a_secret_replaced_during_revocation_does_not_revoke_the_new_one() {
    let store = RegeneratesAfterLookup {
        inner: MemoryStore::new(),
        armed: std::sync::atomic::AtomicBool::new(false),
    };
    let (tokens, _, _) = env(store);
    let owner = Actor::user(UserId::from(2));
    let issued = tokens
        .issue(
            &owner,
            NewToken::new(name("t")).permissions(PermissionSet::all()),
        )
        .unwrap();
    tokens
        .store()
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        tokens
            .revoke_by_secret(issued.secret.expose())
            .unwrap()
            .tokens(),
        [TokenRevocation::NoLongerValid(issued.token.id)]
    );
    let t = tokens.get(&owner, issued.token.id).unwrap();
    assert_eq!((t.status, t.revoked), (Status::Enabled, None));
}

// Row: `generate_with` a grace of 100 years: the previous secret still worked 400 days later.
#[test]
fn a_grace_period_is_bounded_and_never_outlives_the_token() {
    let (tokens, clock, events) = env(MemoryStore::new());
    let owner = Actor::user(UserId::from(2));
    let issued = tokens
        .issue(
            &owner,
            NewToken::new(name("t")).permissions(PermissionSet::all()),
        )
        .unwrap();
    let id = issued.token.id;
    let before = tokens.store().snapshot();
    let err = tokens
        .generate_with(&owner, [id], Duration::days(365 * 100), &mut rand::rng())
        .unwrap_err();
    match &err {
        Error::Invalid { source, .. } => {
            assert_eq!(source.field, Field::Grace);
            assert_eq!(
                source.problem,
                Problem::GraceTooLong {
                    max_seconds: Policy::default().max_grace.whole_seconds()
                }
            );
        }
        e => panic!("expected the grace bound, got {e:?}"),
    }
    assert_eq!(tokens.store().snapshot(), before, "nothing changed");
    assert!(tokens.authenticate(issued.secret.expose(), &ctx()).is_ok());

    // The longest grace allowed still ends at the token's expiry when that comes first.
    let expiring = tokens
        .issue(
            &owner,
            NewToken::new(name("expiring"))
                .permissions(PermissionSet::all())
                .expires_at(NOW + Duration::hours(2)),
        )
        .unwrap();
    events.take();
    let max = Policy::default().max_grace;
    tokens
        .generate_with(&owner, [expiring.token.id], max, &mut rand::rng())
        .unwrap();
    let t = tokens.get(&owner, expiring.token.id).unwrap();
    let until = t.secret.unwrap().previous.unwrap().valid_until;
    assert_eq!(until, NOW + Duration::hours(2), "clamped to the expiry");
    assert!(events.take().iter().any(|e| e.kind
        == EventKind::Generated {
            grace_until: Some(NOW + Duration::hours(2))
        }));
    // With the longest grace allowed, the replaced secret is refused once the grace is over.
    let new = tokens
        .generate_with(&owner, [id], max, &mut rand::rng())
        .unwrap();
    clock.advance(max);
    let d = tokens
        .authenticate(issued.secret.expose(), &ctx())
        .unwrap_err();
    assert_eq!(d.kind(), DenialKind::Superseded);
    clock.advance(Duration::days(400));
    assert_eq!(
        tokens
            .authenticate(new[0].1.expose(), &ctx())
            .unwrap()
            .token,
        id
    );
}

// Rows: allowlist `10.0.0.1/8` silently widened; allowlist text `" , "` read as any address.
#[test]
fn allowlist_text_is_taken_as_written_or_refused() {
    let e = "10.0.0.1/8".parse::<IpAllowlist>().unwrap_err();
    assert_eq!(
        e.problem,
        Problem::HostBitsSet {
            network: "10.0.0.0/8".parse().unwrap()
        }
    );
    assert_eq!(
        e.to_string(),
        "allowlist entry \"10.0.0.1/8\" has host bits set (the network is 10.0.0.0/8)"
    );
    for blank_items in [" , ", ",", "10.0.0.1,,10.0.0.2", "10.0.0.1,"] {
        let e = blank_items.parse::<IpAllowlist>().unwrap_err();
        assert_eq!(e.problem, Problem::EmptyItem, "{blank_items:?}");
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    use api_tokens::StoreError;
    use api_tokens::store::sqlite::SqliteStore;
    use rusqlite::Connection;

    /// A database path in a fresh temp dir, removed (even when the test fails) when the
    /// returned guard drops.
    fn temp_db(tag: &str) -> (super::support::TempDir, std::path::PathBuf) {
        let dir = super::support::TempDir::new(&format!("review-{tag}"));
        let path = dir.join("tokens.db");
        (dir, path)
    }

    fn raw(path: &std::path::Path) -> Connection {
        let c = Connection::open(path).unwrap();
        c.busy_timeout(StdDuration::from_secs(30)).unwrap();
        c
    }

    #[test]
    fn revocation_by_possession_is_final_in_sqlite() {
        let (_dir, path) = temp_db("revoke");
        revocation_is_final(SqliteStore::open(path).unwrap());
    }

    // Row: another connection holds the write lock: a valid token waited 5 s, then was
    // refused (503).
    #[test]
    fn a_valid_token_is_granted_while_another_connection_writes() {
        let (_dir, path) = temp_db("busy");
        // A long busy timeout: if authentication waited for the lock, it would wait this long
        // and then fail.
        let store = SqliteStore::open_with_busy_timeout(&path, StdDuration::from_secs(60))
            .unwrap()
            .with_touch_interval(Duration::ZERO);
        let (tokens, clock, _) = env(store);
        let issued = tokens
            .issue(
                &Actor::user(UserId::from(2)),
                NewToken::new(name("t")).permissions(PermissionSet::all()),
            )
            .unwrap();
        let other = raw(&path);
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        for _ in 0..3 {
            clock.advance(Duration::seconds(1));
            let grant = tokens.authenticate(issued.secret.expose(), &ctx());
            assert_eq!(grant.unwrap().token, issued.token.id);
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(30),
            "no request waited for the lock"
        );
        // Reads see the use that waits to be written...
        let admin = admin();
        let seen = tokens
            .get(&admin, issued.token.id)
            .unwrap()
            .last_use
            .unwrap();
        assert_eq!(seen.at, NOW + Duration::seconds(3));
        // ... and a management write waits its busy timeout, then says what is wrong.
        let quick =
            SqliteStore::open_with_busy_timeout(&path, StdDuration::from_millis(50)).unwrap();
        let err = Tokens::new(quick)
            .create(
                &admin,
                [NewToken::new(name("x")).permissions(PermissionSet::all())],
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::Store(StoreError::Busy { waited }) if waited == StdDuration::from_millis(50)),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("locked by another connection"),
            "{err}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        // Once the lock is free, the pending use is written.
        tokens.store().flush().unwrap();
        let on_disk: Option<i64> = raw(&path)
            .query_row(
                "SELECT last_used_at FROM api_tokens WHERE id = ?1",
                [issued.token.id.get() as i64],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(on_disk, Some((NOW + Duration::seconds(3)).unix_timestamp()));
    }

    // Row (second half): opening a store while another process writes.
    #[test]
    fn opening_while_another_connection_writes() {
        // A database whose schema is current opens without writing, so without waiting.
        let (_dir, path) = temp_db("open");
        drop(SqliteStore::open(&path).unwrap());
        let other = raw(&path);
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let store = SqliteStore::open_with_busy_timeout(&path, StdDuration::from_millis(50));
        assert!(store.is_ok(), "{:?}", store.err());
        other.execute_batch("ROLLBACK").unwrap();
        // A fresh one needs the lock to create the schema: it waits, then says so.
        let (_fresh_dir, fresh) = temp_db("fresh");
        let other = raw(&fresh);
        other
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        let err =
            SqliteStore::open_with_busy_timeout(&fresh, StdDuration::from_millis(50)).unwrap_err();
        assert!(matches!(err, StoreError::Busy { .. }), "{err:?}");
        assert!(
            err.to_string().contains("gave up after waiting 50 ms"),
            "{err}"
        );
        other.execute_batch("COMMIT").unwrap();
        assert!(SqliteStore::open(&fresh).is_ok());
    }

    /// A store with one token whose secret was regenerated with a grace period: the old and
    /// the new secret.
    fn rotated(path: &std::path::Path) -> (String, String) {
        let tokens = Tokens::new(SqliteStore::open(path).unwrap());
        let owner = Actor::user(UserId::from(2));
        let issued = tokens
            .issue(
                &owner,
                NewToken::new(name("t")).permissions(PermissionSet::all()),
            )
            .unwrap();
        let new = tokens
            .generate_with(
                &owner,
                [issued.token.id],
                Duration::hours(1),
                &mut rand::rng(),
            )
            .unwrap();
        (
            issued.secret.expose().to_owned(),
            new[0].1.expose().to_owned(),
        )
    }

    // Row: a row with a previous hash but no `previous_valid_until`: the old secret was
    // accepted with no time limit.
    #[test]
    fn a_previous_hash_without_an_end_is_refused() {
        let (_dir, path) = temp_db("previous");
        let (old, new) = rotated(&path);
        let c = raw(&path);
        // The schema refuses the state outright...
        let err = c
            .execute("UPDATE api_tokens SET previous_valid_until = NULL", [])
            .unwrap_err();
        assert!(err.to_string().contains("previous_hash_has_end"), "{err}");
        // ... and a row written with the checks switched off is refused when read: the secret
        // is denied, never accepted without a limit.
        c.execute_batch(
            "PRAGMA ignore_check_constraints = ON;
             UPDATE api_tokens SET previous_valid_until = NULL;",
        )
        .unwrap();
        let tokens = Tokens::new(SqliteStore::open(&path).unwrap());
        for secret in [&old, &new] {
            let d = tokens.authenticate(secret, &ctx()).unwrap_err();
            assert_eq!(d.kind(), DenialKind::Store, "{d}");
            let source = std::error::Error::source(&d).unwrap().to_string();
            assert!(
                source.contains("a previous secret hash without an end time"),
                "{source}"
            );
        }
        // An end without a hash, and a revoked token that is enabled: refused the same way.
        for (fix, broken) in [
            (
                "UPDATE api_tokens SET previous_hash = NULL, previous_valid_until = 5",
                "without a hash",
            ),
            (
                "UPDATE api_tokens SET previous_hash = NULL, previous_valid_until = NULL, \
                 secret_hash = NULL, generated_at = NULL, revoked_at = 1, revoked_by = 'possession'",
                "a revoked token is enabled",
            ),
        ] {
            c.execute_batch(fix).unwrap();
            let err = tokens.list(&admin(), &Query::new()).unwrap_err();
            assert!(err.to_string().contains(broken), "{err}");
        }
    }

    /// The schema of version 1 (before the rules and the revocation columns).
    const V1_SCHEMA: &str = "
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL,
            description TEXT NOT NULL, creator TEXT NOT NULL, status INTEGER NOT NULL,
            created_at INTEGER NOT NULL, expires_at INTEGER, permissions TEXT NOT NULL,
            allowlist TEXT NOT NULL, last_used_at INTEGER, last_used_ip TEXT, secret_hash BLOB,
            generated_at INTEGER, previous_hash BLOB, previous_valid_until INTEGER,
            revision INTEGER NOT NULL, UNIQUE (owner, name));
        CREATE UNIQUE INDEX api_tokens_secret_hash ON api_tokens (secret_hash);
        CREATE UNIQUE INDEX api_tokens_previous_hash ON api_tokens (previous_hash);
        CREATE TABLE api_token_seq (one INTEGER PRIMARY KEY CHECK (one = 1), next INTEGER NOT NULL);
        INSERT INTO api_token_seq VALUES (1, 10);
    ";

    #[test]
    fn a_version_1_database_is_migrated_or_refused_at_open() {
        let (_dir, path) = temp_db("v1");
        let c = raw(&path);
        c.execute_batch(V1_SCHEMA).unwrap();
        c.execute(
            "INSERT INTO api_tokens VALUES (3, '2', 'a', '', '1', 0, 1700000000, NULL, 'dns.*', \
             '10.0.0.0/8', NULL, NULL, ?1, 1700000000, ?2, NULL, 0)",
            rusqlite::params![vec![1u8; 32], vec![2u8; 32]],
        )
        .unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::Inconsistent { token, .. } if token == TokenId::new(3)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "token 3 is stored in an inconsistent state: a previous secret hash without an end time, or an end time without a hash"
        );
        // Fixed by hand, it migrates, keeping every row.
        c.execute(
            "UPDATE api_tokens SET previous_valid_until = 1700000100",
            [],
        )
        .unwrap();
        let tokens = Tokens::new(SqliteStore::open(&path).unwrap());
        let t = tokens.get(&admin(), TokenId::new(3)).unwrap();
        assert_eq!(t.permissions.to_string(), "dns.*");
        assert_eq!(t.revoked, None);
        let version: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, api_tokens::store::sqlite::SCHEMA_VERSION);
        let next = tokens
            .create(
                &admin(),
                [NewToken::new(name("b")).permissions(PermissionSet::all())],
            )
            .unwrap()[0];
        assert_eq!(next, TokenId::new(10), "the id sequence is kept");
    }

    // Row: list filters with 100k values (SQLite refused more than 32,766 parameters).
    #[test]
    fn sqlite_takes_list_filters_of_any_size() {
        let store = SqliteStore::open_in_memory().unwrap();
        let ids: Vec<TokenId> = (1..=100_000).map(TokenId::new).collect();
        assert_eq!(store.count(&Query::new().ids(ids), NOW).unwrap(), 0);
    }
}
