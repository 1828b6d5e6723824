//! Limits on what a caller controls: a token's permissions, list filters, search patterns and
//! sort keys are capped with an error naming the cap, and what stays within the caps costs
//! linear time. Where a fix is a cost, the unit tests beside the code count the work instead
//! of timing it: `permission::tests::normalising_tests_each_member_once` and
//! `set_operations_are_linear` (2k vs 20k wildcard permissions),
//! `store::sqlite::tests::a_token_of_many_permissions_is_parsed_once_per_revision` (10k
//! permissions on `SqliteStore`), and
//! `tokens::tests::a_token_of_many_permissions_is_intersected_once_not_per_request` (10k
//! permissions intersected with an owner's lost right on `MemoryStore`).

use std::sync::mpsc;
use std::time::Duration as StdDuration;

use api_tokens::{
    Actor, Error, Field, MemoryStore, NewToken, PermissionSet, Policy, Problem, Query, Token,
    TokenId, TokenStore, TokenUpdate, Tokens, UserId,
};
use time::Duration;

use crate::support::{NOW, admin, name};

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

/// A token's permissions are capped (a WHM host may hand out 30k `acl-N`): beyond the cap a
/// create, an update or the actor's default permissions are refused, naming the cap.
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

/// Search patterns and sort keys are capped like the list filters.
#[test]
fn search_patterns_and_sort_keys_are_capped() {
    use api_tokens::store::{SortField, SortOrder, TextSearch};
    use api_tokens::{policy::MAX_SEARCH_PATTERNS, policy::MAX_SORT_KEYS};
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
    let longest = policy
        .max_description_chars
        .max(api_tokens::token::MAX_NAME_LEN);
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

/// Every list filter (ids, owners, creators, names, creation times) is capped, with an error
/// naming the field and the cap: 100k values would hold writers up while they are compared.
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

/// A store filters in O(n + k) whatever the size of a filter (a store has no cap of its own:
/// the facade's cap is the host's choice).
#[test]
fn large_list_filters_cost_linear_time_in_the_memory_store() {
    let (listed, counted) = finishes_within(StdDuration::from_secs(120), || {
        let store = MemoryStore::new();
        let n = 20_000u64;
        let ids = store.reserve_ids(n as usize).unwrap();
        let rows = ids
            .iter()
            .map(|&id| {
                api_tokens::store::Change::Insert({
                    let mut t = Token::new(id, name("t"), UserId::from(id.get()), NOW);
                    t.permissions = PermissionSet::empty();
                    t
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
