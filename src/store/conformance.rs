//! The store conformance suite: what every [`TokenStore`] must do, written once.
//!
//! **Needs the crate feature `testing`** (as a dev-dependency feature:
//! `api-tokens = { version = "…", features = ["testing"] }` under `[dev-dependencies]`). Call
//! [`run`] from a test with a function that makes an empty store; each check panics with a
//! message naming the rule it found broken.
//!
//! What [`TokenStore::authenticate`] hands its check is the found record's
//! [`Token::candidate`] for the presented hash: it says which secret matched and how that
//! hash was made, and gives nothing for a record that holds neither hash. The checks *lookup
//! by hash* and *hash schemes are kept and counted* hold a store to that rule; a store that
//! reads its records as [`Token`]s passes them by calling it rather than writing it again.
//!
//! ```
//! # #[cfg(feature = "testing")]
//! api_tokens::store::conformance::run(api_tokens::MemoryStore::new);
//! ```
// Test support: failing loudly is its job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};

use std::sync::Arc;

use super::{
    Candidate, CandidateLimits, Change, Matched, Query, SortField, SortOrder, TextSearch,
    TimeRange, TokenStore,
};
use crate::error::StoreError;
use crate::keys::{HashScheme, KeyUsage};
use crate::legacy::{ImportOrigin, LegacyScheme};
use crate::limits::{Charge, Credits, LimitName, LimitRefusal, Limits, RateLimit, Remaining};
use crate::secret::{KeyId, SecretHash};
use crate::token::{
    Expiry, LastUse, PreviousSecret, Revoked, RevokedBy, SecretState, Status, Token, TokenId,
    TokenName, UserId,
};

/// Runs every check, each on a fresh store from `make`.
///
/// # Panics
/// When a check fails, naming it; that is how a test learns the store does not conform.
pub fn run<S: TokenStore>(make: impl Fn() -> S) {
    type Check = fn(&dyn TokenStore);
    let checks: &[(&str, Check)] = &[
        ("ids are unique", ids_are_unique),
        ("records round-trip", records_round_trip),
        ("batches are atomic", batches_are_atomic),
        ("names are unique per owner", names_unique_per_owner),
        ("ids are checked", ids_are_checked),
        ("renames may swap within a batch", renames_may_swap),
        ("stale replaces are refused", stale_replaces_are_refused),
        ("lookup by hash", lookup_by_hash),
        ("hashes are unique", hashes_are_unique),
        ("last use is recorded", last_use_is_recorded),
        ("delete forgets everything", delete_forgets_everything),
        ("an owner with many tokens", owner_with_many_tokens),
        ("query filters", query_filters),
        ("query sorts and limits", query_sorts_and_limits),
        ("revoked records round-trip", revoked_records_round_trip),
        (
            "inconsistent records are refused",
            inconsistent_records_are_refused,
        ),
        ("list filters of any size", list_filters_of_any_size),
        ("query exact filters", query_exact_filters),
        ("query text search", query_text_search),
        ("query sorts by several keys", query_sorts_by_several_keys),
        (
            "hash schemes are kept and counted",
            hash_schemes_are_kept_and_counted,
        ),
        (
            "import origins are kept and found",
            import_origins_are_kept_and_found,
        ),
        (
            "limits are kept and charged exactly, or refused",
            limits_are_kept_and_charged,
        ),
    ];
    for (name, check) in checks {
        let store = make();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&store)));
        if let Err(e) = outcome {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("conformance check '{name}' failed: {msg}");
        }
    }
}

/// A fixed instant the checks use as "now".
///
/// # Panics
/// Never: the instant is a valid constant.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn hash(n: u8) -> SecretHash {
    SecretHash::from_bytes([n; 32])
}

/// A token with every field set to something checkable, with an id reserved from `store`.
///
/// # Panics
/// When the store cannot reserve an id.
pub fn sample(store: &dyn TokenStore, owner: u64, name: &str) -> Token {
    let id = store.reserve_ids(1).unwrap()[0];
    let mut t = Token::new(id, TokenName::new(name).unwrap(), UserId::from(owner), t0());
    t.description = format!("description of {name}");
    t.creator = UserId::from(1);
    t.permissions = "dns.*, kill-acct".parse().unwrap();
    t.allowlist = "10.0.0.0/8, ::1".parse().unwrap();
    t
}

fn origin(n: u8) -> ImportOrigin {
    ImportOrigin::from_bytes([n; 32])
}

/// A key id of the checks (stores keep it, never check it against a key).
fn key_id(n: u8) -> KeyId {
    KeyId::from_bytes([n; 8])
}

fn with_secret(mut t: Token, h: u8) -> Token {
    t.secret = Some(SecretState {
        hash: hash(h),
        scheme: HashScheme::keyed(key_id(1)),
        generated_at: t0(),
        previous: None,
    });
    t
}

fn insert(store: &dyn TokenStore, tokens: Vec<Token>) {
    store
        .apply(tokens.into_iter().map(Change::Insert).collect())
        .unwrap();
}

fn find(store: &dyn TokenStore, h: SecretHash) -> Option<(TokenId, Matched)> {
    let mut hit = None;
    let found = store
        .authenticate(&h, &mut |c: Candidate<'_>| {
            hit = Some((c.id, c.matched));
            None
        })
        .unwrap();
    assert_eq!(
        found,
        hit.is_some(),
        "authenticate's result says whether it found one"
    );
    hit
}

fn ids(tokens: &[Token]) -> Vec<TokenId> {
    tokens.iter().map(|t| t.id).collect()
}

fn all(store: &dyn TokenStore) -> Vec<Token> {
    store.query(&Query::new(), t0()).unwrap()
}

fn ids_are_unique(store: &dyn TokenStore) {
    let mut seen = std::collections::HashSet::new();
    for n in [1, 5, 0, 3] {
        for id in store.reserve_ids(n).unwrap() {
            assert!(seen.insert(id), "id {id} handed out twice");
        }
    }
    assert_eq!(seen.len(), 9);
}

fn records_round_trip(store: &dyn TokenStore) {
    let mut t = with_secret(sample(store, 2, "full"), 1);
    t.expiry = Expiry::at(t0() + Duration::days(3));
    t.status = Status::Disabled;
    t.last_use = Some(LastUse {
        at: t0(),
        ip: Some("2001:db8::1".parse().unwrap()),
    });
    if let Some(s) = &mut t.secret {
        s.previous = Some(PreviousSecret {
            hash: hash(2),
            scheme: HashScheme::legacy(LegacyScheme::ZabbixSha512, key_id(2)),
            valid_until: t0() + Duration::hours(1),
        });
    }
    t.imported_from = Some(origin(1));
    let plain = sample(store, 2, "plain");
    insert(store, vec![t.clone(), plain.clone()]);
    assert_eq!(
        store.get(t.id).unwrap(),
        Some(t.clone()),
        "every field kept"
    );
    assert_eq!(store.get(plain.id).unwrap(), Some(plain));
    assert_eq!(store.get(TokenId::new(u64::MAX)).unwrap(), None);
    assert_eq!(
        store.find_name(&t.owner, &t.name).unwrap(),
        Some(t.id),
        "find_name finds it"
    );
    assert_eq!(
        store.find_name(&UserId::from(3), &t.name).unwrap(),
        None,
        "find_name is per owner"
    );
}

fn batches_are_atomic(store: &dyn TokenStore) {
    let a = sample(store, 2, "a");
    insert(store, vec![a.clone()]);
    let b = sample(store, 2, "b");
    let clash = sample(store, 2, "a");
    let err = store
        .apply(vec![Change::Insert(b.clone()), Change::Insert(clash)])
        .unwrap_err();
    assert!(matches!(err, StoreError::NameTaken { .. }), "{err:?}");
    assert_eq!(
        store.get(b.id).unwrap(),
        None,
        "the good item was not applied"
    );
    let mut renamed = a.clone();
    renamed.name = TokenName::new("renamed").unwrap();
    let err = store
        .apply(vec![
            Change::Replace(renamed),
            Change::Delete(TokenId::new(u64::MAX)),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        store.get(a.id).unwrap(),
        Some(a),
        "the replace was not applied"
    );
}

fn names_unique_per_owner(store: &dyn TokenStore) {
    let a = sample(store, 2, "same");
    let b = sample(store, 3, "same");
    insert(store, vec![a, b]);
    let c = sample(store, 2, "same");
    assert!(matches!(
        store.apply(vec![Change::Insert(c)]),
        Err(StoreError::NameTaken { .. })
    ));
    let d = sample(store, 4, "twice");
    let e = sample(store, 4, "twice");
    assert!(
        matches!(
            store.apply(vec![Change::Insert(d), Change::Insert(e)]),
            Err(StoreError::NameTaken { .. })
        ),
        "a clash inside one batch is refused too"
    );
    assert_eq!(all(store).len(), 2);
}

fn ids_are_checked(store: &dyn TokenStore) {
    let a = sample(store, 2, "a");
    insert(store, vec![a.clone()]);
    let mut again = a.clone();
    again.name = TokenName::new("other").unwrap();
    assert!(matches!(
        store.apply(vec![Change::Insert(again)]),
        Err(StoreError::IdTaken(_))
    ));
    let ghost = sample(store, 2, "ghost");
    assert!(matches!(
        store.apply(vec![Change::Replace(ghost.clone())]),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.apply(vec![Change::Delete(ghost.id)]),
        Err(StoreError::NotFound(_))
    ));
    // A batch that changes one token twice is refused, and none of it applies.
    let b = sample(store, 2, "b");
    let mut b_again = b.clone();
    b_again.name = TokenName::new("b-again").unwrap();
    assert!(matches!(
        store.apply(vec![Change::Insert(b.clone()), Change::Insert(b_again)]),
        Err(StoreError::IdTaken(id)) if id == b.id
    ));
    assert_eq!(store.get(b.id).unwrap(), None, "neither insert applied");
    let mut renamed = a.clone();
    renamed.name = TokenName::new("renamed").unwrap();
    assert!(matches!(
        store.apply(vec![Change::Replace(renamed), Change::Delete(a.id)]),
        Err(StoreError::IdTaken(id)) if id == a.id
    ));
    assert_eq!(store.get(a.id).unwrap(), Some(a), "neither change applied");
}

fn stale_replaces_are_refused(store: &dyn TokenStore) {
    let t = sample(store, 2, "rev");
    insert(store, vec![t.clone()]);
    let read = store.get(t.id).unwrap().unwrap();
    let mut first = read.clone();
    first.description = "first writer".into();
    store.apply(vec![Change::Replace(first)]).unwrap();
    let stored = store.get(t.id).unwrap().unwrap();
    assert_eq!(
        stored.revision,
        read.revision.wrapping_add(1),
        "a write moves the revision"
    );
    let mut second = read.clone();
    second.status = Status::Disabled;
    let other = sample(store, 2, "bystander");
    let err = store
        .apply(vec![Change::Insert(other.clone()), Change::Replace(second)])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(id) if id == t.id),
        "{err:?}"
    );
    assert_eq!(
        store.get(t.id).unwrap().unwrap(),
        stored,
        "the first write stands"
    );
    assert_eq!(
        store.get(other.id).unwrap(),
        None,
        "and the batch applied nothing"
    );
    // Deleting does not need a fresh read.
    store.apply(vec![Change::Delete(t.id)]).unwrap();
}

fn renames_may_swap(store: &dyn TokenStore) {
    let a = sample(store, 2, "left");
    let b = sample(store, 2, "right");
    insert(store, vec![a.clone(), b.clone()]);
    let (mut a2, mut b2) = (a.clone(), b.clone());
    a2.name = b.name.clone();
    b2.name = a.name.clone();
    store
        .apply(vec![
            Change::Replace(a2.clone()),
            Change::Replace(b2.clone()),
        ])
        .unwrap();
    assert_eq!(store.get(a.id).unwrap().unwrap().name, b.name);
    assert_eq!(store.find_name(&a.owner, &a.name).unwrap(), Some(b.id));
}

fn lookup_by_hash(store: &dyn TokenStore) {
    let mut t = with_secret(sample(store, 2, "hashed"), 7);
    if let Some(s) = &mut t.secret {
        s.previous = Some(PreviousSecret {
            hash: hash(8),
            scheme: HashScheme::keyed(key_id(2)),
            valid_until: t0(),
        });
    }
    let bare = sample(store, 2, "bare");
    insert(store, vec![t.clone(), bare]);
    assert_eq!(find(store, hash(7)), Some((t.id, Matched::Current)));
    assert_eq!(
        find(store, hash(8)),
        Some((t.id, Matched::Previous { valid_until: t0() }))
    );
    assert_eq!(find(store, hash(9)), None);
    let mut c = None;
    store
        .authenticate(&hash(7), &mut |cand| {
            c = Some((
                cand.name.clone(),
                cand.owner.clone(),
                cand.status,
                cand.expiry,
                cand.permissions.clone(),
                cand.allowlist.clone(),
            ));
            None
        })
        .unwrap();
    assert_eq!(
        c,
        Some((
            t.name.clone(),
            t.owner.clone(),
            t.status,
            t.expiry,
            t.permissions.clone(),
            t.allowlist.clone()
        )),
        "the candidate carries the record's fields"
    );
    // Regenerate: the old current hash is no longer found as current.
    let mut t2 = t.clone();
    t2.secret = Some(SecretState {
        hash: hash(10),
        scheme: HashScheme::legacy(LegacyScheme::Sha256, key_id(3)),
        generated_at: t0(),
        previous: None,
    });
    store.apply(vec![Change::Replace(t2)]).unwrap();
    assert_eq!(find(store, hash(7)), None);
    assert_eq!(find(store, hash(8)), None);
    assert_eq!(find(store, hash(10)), Some((t.id, Matched::Current)));
}

fn hashes_are_unique(store: &dyn TokenStore) {
    let a = with_secret(sample(store, 2, "a"), 1);
    insert(store, vec![a]);
    let b = with_secret(sample(store, 2, "b"), 1);
    assert!(matches!(
        store.apply(vec![Change::Insert(b)]),
        Err(StoreError::HashTaken)
    ));
}

fn last_use_is_recorded(store: &dyn TokenStore) {
    let t = with_secret(sample(store, 2, "used"), 3);
    insert(store, vec![t.clone()]);
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    for (secs, addr) in [(10, Some(ip)), (20, None), (15, Some(ip))] {
        store
            .authenticate(&hash(3), &mut |_| {
                Some(LastUse {
                    at: t0() + Duration::seconds(secs),
                    ip: addr,
                })
            })
            .unwrap();
    }
    let got = store.get(t.id).unwrap().unwrap().last_use;
    // The latest instant wins (a store that coalesces must still keep the latest).
    assert_eq!(
        got.map(|u| u.at),
        Some(t0() + Duration::seconds(20)),
        "{got:?}"
    );
    // A check that grants nothing records nothing.
    let other = with_secret(sample(store, 2, "unused"), 4);
    insert(store, vec![other.clone()]);
    store.authenticate(&hash(4), &mut |_| None).unwrap();
    assert_eq!(store.get(other.id).unwrap().unwrap().last_use, None);
}

fn delete_forgets_everything(store: &dyn TokenStore) {
    let t = with_secret(sample(store, 2, "gone"), 5);
    insert(store, vec![t.clone()]);
    store.apply(vec![Change::Delete(t.id)]).unwrap();
    assert_eq!(store.get(t.id).unwrap(), None);
    assert_eq!(find(store, hash(5)), None);
    assert_eq!(store.find_name(&t.owner, &t.name).unwrap(), None);
    // The name and hash are free again.
    let again = with_secret(sample(store, 2, "gone"), 5);
    insert(store, vec![again]);
}

fn owner_with_many_tokens(store: &dyn TokenStore) {
    let tokens: Vec<Token> = (0..100)
        .map(|i| sample(store, 2, &format!("many-{i}")))
        .collect();
    insert(store, tokens.clone());
    let owner = UserId::from(2);
    for t in &tokens {
        assert_eq!(store.find_name(&owner, &t.name).unwrap(), Some(t.id));
    }
    let clash = sample(store, 2, "many-57");
    assert!(matches!(
        store.apply(vec![Change::Insert(clash)]),
        Err(StoreError::NameTaken { .. })
    ));
    let mut renamed = tokens[3].clone();
    renamed.name = TokenName::new("renamed").unwrap();
    store
        .apply(vec![
            Change::Replace(renamed.clone()),
            Change::Delete(tokens[4].id),
        ])
        .unwrap();
    assert_eq!(store.find_name(&owner, &tokens[3].name).unwrap(), None);
    assert_eq!(
        store.find_name(&owner, &renamed.name).unwrap(),
        Some(renamed.id)
    );
    assert_eq!(store.find_name(&owner, &tokens[4].name).unwrap(), None);
    let listed = store
        .query(&Query::new().owners([owner.clone()]), t0())
        .unwrap();
    assert_eq!(listed.len(), 99);
    assert_eq!(
        store.count(&Query::new().owners([owner]), t0()).unwrap(),
        99
    );
}

fn query_filters(store: &dyn TokenStore) {
    let now = t0();
    let mut a = sample(store, 2, "Deploy-prod");
    a.description = "CI pipeline".into();
    a.expiry = Expiry::at(now + Duration::days(2));
    let mut b = sample(store, 2, "backup");
    b.status = Status::Disabled;
    b.expiry = Expiry::at(now);
    b.creator = UserId::from(9);
    let mut c = sample(store, 3, "deploy-staging");
    c.created_at = now - Duration::days(10);
    c.expiry = Expiry::at(now + Duration::days(30));
    let mut d = with_secret(sample(store, 3, "monitoring"), 6);
    d.last_use = Some(LastUse {
        at: now - Duration::hours(1),
        ip: None,
    });
    insert(store, vec![a.clone(), b.clone(), c.clone(), d.clone()]);
    let q = |query: Query| ids(&store.query(&query, now).unwrap());
    let n = |query: Query| store.count(&query, now).unwrap();
    assert_eq!(
        q(Query::new()),
        ids(&[a.clone(), b.clone(), c.clone(), d.clone()])
    );
    assert_eq!(
        q(Query::new().ids([c.id, a.id, c.id])),
        ids(&[a.clone(), c.clone()])
    );
    assert_eq!(
        q(Query::new().owners([UserId::from(3)])),
        ids(&[c.clone(), d.clone()])
    );
    assert_eq!(
        q(Query::new().creators([UserId::from(9)])),
        ids(&[b.clone()])
    );
    assert_eq!(q(Query::new().status(Status::Disabled)), ids(&[b.clone()]));
    assert_eq!(
        q(Query::new().name_contains("DEPLOY")),
        ids(&[a.clone(), c.clone()]),
        "name search is a case-insensitive substring"
    );
    assert_eq!(
        q(Query::new().description_contains("pipe")),
        ids(&[a.clone()])
    );
    // valid_at / expired_at use `expires_at <= t`: b expires exactly at `now`.
    assert_eq!(
        q(Query::new().valid_at(now)),
        ids(&[a.clone(), c.clone(), d.clone()])
    );
    assert_eq!(q(Query::new().expired_at(now)), ids(&[b.clone()]));
    assert_eq!(
        q(Query::new().valid_at(now - Duration::seconds(1))),
        ids(&[a.clone(), b.clone(), c.clone(), d.clone()])
    );
    assert_eq!(
        q(Query::new().expiring_within(Duration::days(7))),
        ids(&[a.clone()]),
        "expiring soon, not already expired, not never"
    );
    assert_eq!(
        q(Query::new().created(TimeRange {
            from: None,
            until: Some(now)
        })),
        ids(&[c.clone()])
    );
    assert_eq!(
        q(Query::new().last_used(TimeRange {
            from: Some(now - Duration::days(1)),
            until: None
        })),
        ids(&[d.clone()])
    );
    assert_eq!(
        q(Query::new()
            .owners([UserId::from(2)])
            .status(Status::Enabled)),
        ids(&[a.clone()]),
        "filters combine"
    );
    assert_eq!(
        n(Query::new().owners([UserId::from(3)]).limit(1)),
        2,
        "count ignores limit"
    );
    assert_eq!(n(Query::new().name_contains("nothing")), 0);
}

fn query_sorts_and_limits(store: &dyn TokenStore) {
    let now = t0();
    let mut a = sample(store, 2, "charlie");
    a.expiry = Expiry::at(now + Duration::days(1));
    a.created_at = now - Duration::days(1);
    let mut b = sample(store, 2, "alpha");
    b.status = Status::Disabled;
    b.last_use = Some(LastUse { at: now, ip: None });
    let mut c = sample(store, 2, "bravo");
    c.expiry = Expiry::at(now + Duration::days(2));
    c.created_at = now - Duration::days(2);
    insert(store, vec![a.clone(), b.clone(), c.clone()]);
    let sorted = |f, o| ids(&store.query(&Query::new().sort(f, o), now).unwrap());
    use SortOrder::{Ascending, Descending};
    let (a, b, c) = (a.id, b.id, c.id);
    assert_eq!(sorted(SortField::Name, Ascending), vec![b, c, a]);
    assert_eq!(sorted(SortField::Name, Descending), vec![a, c, b]);
    assert_eq!(sorted(SortField::Created, Ascending), vec![c, a, b]);
    assert_eq!(
        sorted(SortField::Expiry, Ascending),
        vec![a, c, b],
        "never expires sorts last"
    );
    assert_eq!(sorted(SortField::Expiry, Descending), vec![b, c, a]);
    assert_eq!(sorted(SortField::LastUsed, Descending)[0], b);
    assert_eq!(sorted(SortField::Status, Descending)[0], b);
    assert_eq!(sorted(SortField::Id, Descending), vec![c, b, a]);
    assert_eq!(
        ids(&store
            .query(&Query::new().sort(SortField::Name, Ascending).limit(2), now)
            .unwrap()),
        vec![b, c]
    );
}

fn revoked_records_round_trip(store: &dyn TokenStore) {
    let t = with_secret(sample(store, 2, "leaked"), 11);
    insert(store, vec![t.clone()]);
    let mut revoked = store.get(t.id).unwrap().unwrap();
    revoked.status = Status::Disabled;
    revoked.secret = None;
    revoked.revoked = Some(Revoked {
        at: t0() + Duration::seconds(5),
        by: RevokedBy::Possession,
    });
    store.apply(vec![Change::Replace(revoked.clone())]).unwrap();
    let got = store.get(t.id).unwrap().unwrap();
    assert_eq!(got.revoked, revoked.revoked, "the mark is kept");
    assert_eq!(got.secret, None);
    assert_eq!(find(store, hash(11)), None, "the leaked hash is gone");
    assert_eq!(
        ids(&store.query(&Query::new(), t0()).unwrap()),
        vec![t.id],
        "still listed"
    );
}

fn inconsistent_records_are_refused(store: &dyn TokenStore) {
    let good = sample(store, 2, "good");
    let revoked = Revoked {
        at: t0(),
        by: RevokedBy::Possession,
    };
    let mut enabled_revoked = sample(store, 2, "enabled-revoked");
    enabled_revoked.revoked = Some(revoked);
    let mut revoked_with_hash = with_secret(sample(store, 2, "revoked-hash"), 12);
    revoked_with_hash.status = Status::Disabled;
    revoked_with_hash.revoked = Some(revoked);
    let mut same_hashes = with_secret(sample(store, 2, "same-hashes"), 13);
    if let Some(s) = &mut same_hashes.secret {
        s.previous = Some(PreviousSecret {
            hash: hash(13),
            scheme: HashScheme::keyed(key_id(1)),
            valid_until: t0(),
        });
    }
    for bad in [enabled_revoked, revoked_with_hash, same_hashes] {
        let err = store
            .apply(vec![
                Change::Insert(good.clone()),
                Change::Insert(bad.clone()),
            ])
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Inconsistent { token, .. } if token == bad.id),
            "{} refused: {err:?}",
            bad.name
        );
        assert_eq!(store.get(good.id).unwrap(), None, "nothing applied");
    }
    // Replacing a good record with a bad one is refused too, and changes nothing.
    insert(store, vec![good.clone()]);
    let mut bad = store.get(good.id).unwrap().unwrap();
    bad.revoked = Some(revoked);
    assert!(matches!(
        store.apply(vec![Change::Replace(bad)]),
        Err(StoreError::Inconsistent { .. })
    ));
    assert_eq!(store.get(good.id).unwrap().unwrap().revoked, None);
}

fn list_filters_of_any_size(store: &dyn TokenStore) {
    let tokens: Vec<Token> = (0..50)
        .map(|i| sample(store, 100 + i, &format!("f{i}")))
        .collect();
    insert(store, tokens.clone());
    // More values than SQL engines bind as parameters (SQLite: 32,766), the hits at the end.
    let n = 40_000u64;
    let wanted: Vec<&Token> = tokens.iter().step_by(2).collect();
    let mut id_list: Vec<TokenId> = (0..n).map(|i| TokenId::new(u64::MAX - i)).collect();
    id_list.extend(wanted.iter().map(|t| t.id));
    let mut owner_list: Vec<UserId> = (0..n).map(|i| UserId::from(1_000_000 + i)).collect();
    owner_list.extend(wanted.iter().map(|t| t.owner.clone()));
    let expect: Vec<TokenId> = wanted.iter().map(|t| t.id).collect();
    let by_ids = Query::new().ids(id_list);
    let by_owners = Query::new().owners(owner_list.clone());
    let by_creators = Query::new().creators(owner_list);
    assert_eq!(ids(&store.query(&by_ids, t0()).unwrap()), expect);
    assert_eq!(store.count(&by_ids, t0()).unwrap(), expect.len());
    assert_eq!(ids(&store.query(&by_owners, t0()).unwrap()), expect);
    assert_eq!(store.count(&by_owners, t0()).unwrap(), expect.len());
    assert_eq!(store.count(&by_creators, t0()).unwrap(), 0);
    assert_eq!(store.count(&Query::new().ids([]), t0()).unwrap(), 0);
    // Text that JSON or SQL would treat specially is still just a value.
    let odd = UserId::new("o'\"\\[]").unwrap();
    let mut t = sample(store, 1, "odd");
    t.owner = odd.clone();
    insert(store, vec![t.clone()]);
    assert_eq!(
        ids(&store.query(&Query::new().owners([odd]), t0()).unwrap()),
        vec![t.id]
    );
}

fn query_exact_filters(store: &dyn TokenStore) {
    let now = t0();
    let mut a = sample(store, 2, "alpha");
    a.expiry = Expiry::at(now + Duration::days(1));
    a.last_use = Some(LastUse { at: now, ip: None });
    let mut b = sample(store, 2, "Alpha");
    b.created_at = now - Duration::days(3);
    let mut c = sample(store, 3, "alpha");
    c.expiry = Expiry::at(now - Duration::days(1));
    c.last_use = Some(LastUse {
        at: now - Duration::hours(2),
        ip: None,
    });
    insert(store, vec![a.clone(), b.clone(), c.clone()]);
    let q = |query: Query| ids(&store.query(&query, now).unwrap());
    let n = |query: Query| store.count(&query, now).unwrap();
    let name = |s: &str| TokenName::new(s).unwrap();
    assert_eq!(
        q(Query::new().names([name("alpha")])),
        ids(&[a.clone(), c.clone()]),
        "exact names are case-sensitive"
    );
    assert_eq!(
        q(Query::new().names([name("Alpha"), name("zulu")])),
        ids(&[b.clone()])
    );
    assert_eq!(q(Query::new().names([])), Vec::<TokenId>::new());
    assert_eq!(
        q(Query::new().expires_at([Expiry::NEVER])),
        ids(&[b.clone()]),
        "NEVER matches the never-expiring"
    );
    assert_eq!(
        q(Query::new().expires_at([a.expiry, Expiry::NEVER])),
        ids(&[a.clone(), b.clone()])
    );
    assert_eq!(
        q(Query::new().expires_at([Expiry::at(now)])),
        Vec::<TokenId>::new()
    );
    assert_eq!(
        q(Query::new().created_at([now - Duration::days(3)])),
        ids(&[b.clone()])
    );
    assert_eq!(
        q(Query::new().created_at([now + Duration::milliseconds(1)])),
        Vec::<TokenId>::new(),
        "an instant between seconds equals no stored time"
    );
    assert_eq!(
        q(Query::new().last_used_at([None])),
        ids(&[b.clone()]),
        "None matches the never-used"
    );
    assert_eq!(
        q(Query::new().last_used_at([Some(now), Some(now - Duration::hours(2))])),
        ids(&[a.clone(), c.clone()])
    );
    assert_eq!(
        q(Query::new().last_used_at([None, Some(now)])),
        ids(&[a.clone(), b.clone()])
    );
    assert_eq!(q(Query::new().last_used_at([])), Vec::<TokenId>::new());
    assert_eq!(
        n(Query::new()
            .names([name("alpha")])
            .owners([UserId::from(3)])),
        1,
        "exact filters combine with the others, in count too"
    );
}

fn query_text_search(store: &dyn TokenStore) {
    let now = t0();
    let mut a = sample(store, 2, "deploy-prod");
    a.description = "CI pipeline".into();
    let mut b = sample(store, 2, "deploy-stage");
    b.description = "nightly".into();
    let mut c = sample(store, 2, "backup_prod");
    c.description = "100% done".into();
    insert(store, vec![a.clone(), b.clone(), c.clone()]);
    let q = |s: TextSearch| ids(&store.query(&Query::new().search(s), now).unwrap());
    let none = Vec::<TokenId>::new();
    assert_eq!(
        q(TextSearch::new().name(["DEPLOY"])),
        ids(&[a.clone(), b.clone()])
    );
    assert_eq!(
        q(TextSearch::new().name(["deploy", "prod"])),
        ids(&[a.clone()]),
        "all conditions by default"
    );
    assert_eq!(
        q(TextSearch::new()
            .name(["stage"])
            .description(["pipe"])
            .any(true)),
        ids(&[a.clone(), b.clone()])
    );
    assert_eq!(
        q(TextSearch::new().name(["prod"]).prefix(true)),
        none,
        "prefix"
    );
    assert_eq!(
        q(TextSearch::new().name(["deploy"]).exclude(true)),
        ids(&[c.clone()])
    );
    assert_eq!(
        q(TextSearch::new().name(["*prod"]).wildcards(true)),
        ids(&[a.clone(), c.clone()])
    );
    assert_eq!(
        q(TextSearch::new().name(["deploy"]).wildcards(true)),
        none,
        "a wildcard pattern covers the whole value"
    );
    assert_eq!(
        q(TextSearch::new().description(["%"])),
        ids(&[c.clone()]),
        "no SQL LIKE metacharacters: % and _ are literal"
    );
    assert_eq!(q(TextSearch::new().name(["p_o"])), none);
    assert_eq!(
        q(TextSearch::new()),
        ids(&[a.clone(), b.clone(), c.clone()]),
        "no patterns: everything"
    );
}

fn query_sorts_by_several_keys(store: &dyn TokenStore) {
    let now = t0();
    let mut a = sample(store, 2, "same");
    a.status = Status::Disabled;
    let mut b = sample(store, 3, "same");
    b.expiry = Expiry::at(now + Duration::days(1));
    let mut c = sample(store, 4, "other");
    c.expiry = Expiry::at(now + Duration::days(2));
    insert(store, vec![a.clone(), b.clone(), c.clone()]);
    let sorted = |q: Query| ids(&store.query(&q, now).unwrap());
    use SortOrder::{Ascending, Descending};
    assert_eq!(
        sorted(
            Query::new()
                .then_sort(SortField::Name, Descending)
                .then_sort(SortField::Status, Ascending)
        ),
        ids(&[b.clone(), a.clone(), c.clone()]),
        "ties on the first key are broken by the second"
    );
    assert_eq!(
        sorted(Query::new().sort(SortField::ExpiryNeverFirst, Ascending)),
        ids(&[a.clone(), b.clone(), c.clone()]),
        "never-expiring first"
    );
    assert_eq!(
        sorted(Query::new().sort(SortField::ExpiryNeverFirst, Descending)),
        ids(&[c.clone(), b.clone(), a.clone()])
    );
    assert_eq!(
        sorted(
            Query::new()
                .sort(SortField::Name, Ascending)
                .then_sort(SortField::Id, Descending)
                .limit(2)
        ),
        ids(&[c.clone(), b.clone()])
    );
}

/// Each hash's scheme (key id, legacy scheme, or unrecorded) round-trips, reaches
/// authentication in the candidate, and is counted by `key_usage` (previous hashes only while
/// in their grace period).
fn hash_schemes_are_kept_and_counted(store: &dyn TokenStore) {
    let (k1, k2, k3) = (key_id(1), key_id(2), key_id(3));
    let zabbix = HashScheme::legacy(LegacyScheme::ZabbixSha512, k1);
    let secret = |h: u8, scheme: HashScheme, previous: Option<(u8, HashScheme, OffsetDateTime)>| {
        Some(SecretState {
            hash: hash(h),
            scheme,
            generated_at: t0(),
            previous: previous.map(|(h, scheme, valid_until)| PreviousSecret {
                hash: hash(h),
                scheme,
                valid_until,
            }),
        })
    };
    let mut a = sample(store, 2, "plain-k1");
    a.secret = secret(20, HashScheme::keyed(k1), None);
    let mut b = sample(store, 2, "imported");
    b.secret = secret(
        21,
        zabbix,
        Some((22, HashScheme::keyed(k2), t0() + Duration::hours(1))),
    );
    let mut c = sample(store, 2, "unrecorded");
    c.secret = secret(23, HashScheme::UNRECORDED, None);
    let mut d = sample(store, 2, "grace-over");
    d.secret = secret(
        24,
        HashScheme::keyed(k1),
        Some((25, HashScheme::keyed(k3), t0())),
    );
    let e = sample(store, 2, "no-secret");
    insert(
        store,
        vec![a.clone(), b.clone(), c.clone(), d.clone(), e.clone()],
    );
    for t in [&a, &b, &c, &d, &e] {
        assert_eq!(
            store.get(t.id).unwrap().as_ref(),
            Some(t),
            "{} kept",
            t.name
        );
    }
    let scheme_of = |h: SecretHash| {
        let mut found = None;
        store
            .authenticate(&h, &mut |c| {
                found = Some(c.scheme);
                None
            })
            .unwrap();
        found
    };
    assert_eq!(
        scheme_of(hash(21)),
        Some(zabbix),
        "the matched hash's scheme"
    );
    assert_eq!(scheme_of(hash(22)), Some(HashScheme::keyed(k2)));
    assert_eq!(scheme_of(hash(23)), Some(HashScheme::UNRECORDED));
    let usage = store.key_usage(t0()).unwrap();
    let count = |scheme: HashScheme| {
        usage
            .iter()
            .find(|u| u.scheme == scheme)
            .map(|u| (u.current, u.previous))
    };
    assert_eq!(count(HashScheme::keyed(k1)), Some((2, 0)), "{usage:?}");
    assert_eq!(count(zabbix), Some((1, 0)), "{usage:?}");
    assert_eq!(count(HashScheme::keyed(k2)), Some((0, 1)), "{usage:?}");
    assert_eq!(count(HashScheme::UNRECORDED), Some((1, 0)), "{usage:?}");
    assert_eq!(
        count(HashScheme::keyed(k3)),
        None,
        "a previous hash past its grace is not counted: {usage:?}"
    );
    assert_eq!(usage.len(), 4, "one entry per scheme: {usage:?}");
    assert_eq!(
        usage.iter().map(KeyUsage::hashes).sum::<u64>(),
        5,
        "{usage:?}"
    );
    // A re-hash (a replace with a new hash and scheme) is what is kept and counted after.
    let mut b2 = store.get(b.id).unwrap().unwrap();
    b2.secret = secret(
        26,
        HashScheme::keyed(k1),
        Some((22, HashScheme::keyed(k2), t0() + Duration::hours(1))),
    );
    store.apply(vec![Change::Replace(b2)]).unwrap();
    assert_eq!(scheme_of(hash(21)), None, "the imported hash is gone");
    assert_eq!(scheme_of(hash(26)), Some(HashScheme::keyed(k1)));
    let usage = store.key_usage(t0()).unwrap();
    assert!(usage.iter().all(|u| u.scheme != zabbix), "{usage:?}");
}

/// What an imported token was imported from is kept for its whole life (through a re-hash, a
/// new secret and revocation, gone with the token), and `find_imported` finds every token
/// holding one of the origins asked for, in id order, by origin alone: never by a secret
/// hash with the same bytes, and never an origin not asked for.
fn import_origins_are_kept_and_found(store: &dyn TokenStore) {
    let mut a = with_secret(sample(store, 2, "imported-a"), 30);
    a.imported_from = Some(origin(30));
    let mut b = sample(store, 3, "imported-b");
    b.imported_from = Some(origin(31));
    // The same origin twice: stores do not enforce uniqueness of origins (the facade refuses
    // a second import), and a lookup reports both.
    let mut c = with_secret(sample(store, 4, "imported-c"), 32);
    c.imported_from = Some(origin(31));
    // A token whose secret hash has the bytes of an origin asked for: not found by it.
    let d = with_secret(sample(store, 2, "plain"), 33);
    insert(store, vec![a.clone(), b.clone(), c.clone(), d.clone()]);
    for t in [&a, &b, &c, &d] {
        assert_eq!(
            store.get(t.id).unwrap().as_ref(),
            Some(t),
            "{} kept",
            t.name
        );
    }
    let listed = store.query(&Query::new().ids([a.id]), t0()).unwrap();
    assert_eq!(listed[0].imported_from, Some(origin(30)), "listed with it");
    assert_eq!(store.find_imported(&[]).unwrap(), vec![]);
    assert_eq!(
        store.find_imported(&[origin(99), origin(33)]).unwrap(),
        vec![],
        "no token holds these origins"
    );
    let mut expected = vec![(a.id, origin(30)), (b.id, origin(31)), (c.id, origin(31))];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(
        store
            .find_imported(&[origin(31), origin(99), origin(30), origin(31)])
            .unwrap(),
        expected,
        "every token holding one, in id order"
    );
    // A re-hash (the hash replaced) and then a revocation keep the origin.
    let mut rehashed = store.get(a.id).unwrap().unwrap();
    rehashed.secret = with_secret(sample(store, 9, "x"), 34).secret;
    store.apply(vec![Change::Replace(rehashed)]).unwrap();
    let mut revoked = store.get(a.id).unwrap().unwrap();
    revoked.status = Status::Disabled;
    revoked.secret = None;
    revoked.revoked = Some(Revoked {
        at: t0(),
        by: RevokedBy::Possession,
    });
    store.apply(vec![Change::Replace(revoked)]).unwrap();
    assert_eq!(
        store.get(a.id).unwrap().unwrap().imported_from,
        Some(origin(30)),
        "kept through a re-hash and a revocation"
    );
    assert_eq!(
        store.find_imported(&[origin(30)]).unwrap(),
        vec![(a.id, origin(30))]
    );
    // A replace that changes the origin (re-made under a new key) is what is found after.
    let mut moved = store.get(b.id).unwrap().unwrap();
    moved.imported_from = Some(origin(35));
    store.apply(vec![Change::Replace(moved)]).unwrap();
    assert_eq!(store.find_imported(&[origin(31), origin(35)]).unwrap(), {
        let mut e = vec![(b.id, origin(35)), (c.id, origin(31))];
        e.sort_by_key(|(id, _)| *id);
        e
    });
    // Deleting the token drops its origin.
    store.apply(vec![Change::Delete(c.id)]).unwrap();
    assert_eq!(store.find_imported(&[origin(31)]).unwrap(), vec![]);
}

/// Charges the limits of the token holding `hash` through [`TokenStore::authenticate`]'s
/// candidate, as the facade does; `None` when its candidate has no limits to charge.
fn charge_by_hash(
    store: &dyn TokenStore,
    h: u8,
    charge: Charge<'_>,
    now: OffsetDateTime,
) -> Option<Result<Vec<Remaining>, LimitRefusal>> {
    let mut out = None;
    let found = store
        .authenticate(&hash(h), &mut |c| {
            if let CandidateLimits::Enforced(state) = c.limits {
                out = Some(state.charge(charge, now).unwrap());
            }
            None
        })
        .unwrap();
    assert!(found, "the limited token is found by its hash");
    out
}

/// A store that enforces limits keeps their definitions and state with the record, charges
/// them exactly through its candidates, keeps the state when a token is written back with the
/// same limits and starts changed ones afresh. A store that does not either refuses a token
/// with limits ([`StoreError::LimitsUnsupported`]) or hands out its record as
/// [`CandidateLimits::Unenforced`]: never as a token without limits.
fn limits_are_kept_and_charged(store: &dyn TokenStore) {
    let rate = RateLimit::new(LimitName::new("requests").unwrap(), 100, Duration::MINUTE).unwrap();
    let limits = Arc::new(
        Limits::none()
            .credits(Credits::new(3, t0()).unwrap())
            .rate(rate),
    );
    let mut t = with_secret(sample(store, 2, "limited"), 91);
    t.limits = Some(Arc::clone(&limits));
    match store.apply(vec![Change::Insert(t.clone())]) {
        Err(StoreError::LimitsUnsupported) => {
            assert!(
                !store.enforces_limits(),
                "refused limits it says it enforces"
            );
            assert!(store.get(t.id).unwrap().is_none(), "nothing was written");
            return;
        }
        r => r.unwrap(),
    }
    let stored = store.get(t.id).unwrap().unwrap();
    assert_eq!(
        stored.limits,
        Some(Arc::clone(&limits)),
        "limits round-trip"
    );
    if !store.enforces_limits() {
        let mut unlimited = true;
        store
            .authenticate(&hash(91), &mut |c| {
                unlimited = matches!(c.limits, CandidateLimits::None);
                None
            })
            .unwrap();
        assert!(
            !unlimited,
            "a record with limits is never handed out as one without (Unenforced fails closed)"
        );
        return;
    }
    assert_eq!(stored.balance.map(|b| b.remaining), Some(3));
    let auth = |at| charge_by_hash(store, 91, Charge::Authentication, at).expect("enforced");
    assert!(auth(t0()).is_ok());
    assert!(auth(t0()).is_ok());
    // Written back with the same limits (a rename): the state is kept.
    let mut renamed = store.get(t.id).unwrap().unwrap();
    renamed.name = TokenName::new("limited-renamed").unwrap();
    store.apply(vec![Change::Replace(renamed)]).unwrap();
    assert!(auth(t0()).is_ok());
    assert!(
        matches!(
            auth(t0()),
            Err(LimitRefusal::UsageExceeded { remaining: 0, .. })
        ),
        "exactly the balance is admitted"
    );
    assert_eq!(
        store
            .get(t.id)
            .unwrap()
            .unwrap()
            .balance
            .map(|b| b.remaining),
        Some(0)
    );
    // New limits start afresh.
    let mut fresh = store.get(t.id).unwrap().unwrap();
    fresh.limits = Some(Arc::new(
        Limits::none().credits(Credits::new(1, t0() + Duration::SECOND).unwrap()),
    ));
    store.apply(vec![Change::Replace(fresh)]).unwrap();
    assert!(auth(t0()).is_ok());
    assert!(auth(t0()).is_err());
    // Removing the limits removes them, and their state.
    let mut plain = store.get(t.id).unwrap().unwrap();
    plain.limits = None;
    store.apply(vec![Change::Replace(plain)]).unwrap();
    assert_eq!(store.get(t.id).unwrap().unwrap().limits, None);
    assert!(charge_by_hash(store, 91, Charge::Authentication, t0()).is_none());
    store.apply(vec![Change::Delete(t.id)]).unwrap();
    assert!(store.get(t.id).unwrap().is_none());
}
