//! The management API: every rule of the seeds' token operations.

use std::sync::Arc;

use api_tokens::{
    Actor, CollectEvents, Error, EventKind, Expiry, Field, Forbidden, IpAllowlist, ManualClock,
    MemoryStore, NewToken, PermissionSet, Policy, Problem, Query, RequestContext, StaticDirectory,
    Status, Token, TokenId, TokenUpdate, Tokens, UpdatedField, UserState,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::support::{admin, name, uid};

/// This module's hosts start at their own instant: the seeds' messages below quote it.
const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

struct Env {
    tokens: Tokens<MemoryStore>,
    clock: Arc<ManualClock>,
    events: Arc<CollectEvents>,
    directory: Arc<StaticDirectory>,
}

fn env_with(policy: Policy) -> Env {
    let clock = Arc::new(ManualClock::new(NOW));
    let events = Arc::new(CollectEvents::new());
    let directory = Arc::new(
        StaticDirectory::new()
            .with(uid(1), UserState::Active(PermissionSet::all()))
            .with(uid(2), UserState::Active(PermissionSet::all()))
            .with(uid(3), UserState::Active(PermissionSet::all()))
            .with(uid(4), UserState::Inactive),
    );
    let tokens = Tokens::new(MemoryStore::new())
        .with_policy(policy)
        .with_clock(clock.clone())
        .with_events(events.clone())
        .with_directory(directory.clone());
    Env {
        tokens,
        clock,
        events,
        directory,
    }
}

fn env() -> Env {
    env_with(Policy::default())
}

/// A token that states its permissions (all of its owner's), as the default policy requires.
fn new(s: &str) -> NewToken {
    bare(s).permissions(PermissionSet::all())
}

/// A token without permissions: the seeds' presets give it the creator's privileges.
fn bare(s: &str) -> NewToken {
    NewToken::new(name(s))
}

fn user(n: u64) -> Actor {
    Actor::user(uid(n))
}

impl Env {
    fn one(&self, actor: &Actor, item: NewToken) -> TokenId {
        self.tokens.create(actor, [item]).unwrap()[0]
    }

    fn get(&self, id: TokenId) -> Token {
        self.tokens.get(&admin(), id).unwrap()
    }

    /// Runs `f`, which must fail, and asserts the store did not change at all.
    fn refused(&self, f: impl FnOnce(&Tokens<MemoryStore>) -> Result<(), Error>) -> Error {
        let before = self.tokens.store().snapshot();
        let err = f(&self.tokens).expect_err("the call should be refused");
        assert_eq!(
            self.tokens.store().snapshot(),
            before,
            "a refused call changed the store ({err})"
        );
        err
    }
}

fn invalid(err: &Error) -> (Option<usize>, Field, Problem) {
    match err {
        Error::Invalid { index, source } => (*index, source.field, source.problem.clone()),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// --- The seed's token.create examples ---------------------------------------------------------

#[test]
fn seed_example_enabled_never_expiring_token_for_user_2() {
    let e = env_with(Policy::zabbix());
    let ids = e
        .tokens
        .create(&admin(), [bare("Your token").owner(uid(2))])
        .unwrap();
    assert_eq!(ids.len(), 1);
    let t = e.get(ids[0]);
    assert_eq!(t.name.as_str(), "Your token");
    assert_eq!(t.owner, uid(2));
    assert_eq!(t.creator, uid(1));
    assert_eq!(t.status, Status::Enabled);
    assert_eq!(t.expiry, Expiry::NEVER);
    assert_eq!(t.description, "");
    assert_eq!(t.created_at, NOW);
    assert!(t.allowlist.is_empty());
    assert!(
        t.permissions.is_all(),
        "default: all the actor's privileges"
    );
    assert!(t.secret.is_none(), "token.create makes no secret");
}

#[test]
fn seed_example_disabled_token_of_the_caller_expiring_at_1611238072() {
    let e = env_with(Policy::zabbix());
    let ids = e
        .tokens
        .create(
            &user(3),
            [bare("Your token")
                .status(Status::Disabled)
                .expiry(Expiry::from_unix(1_611_238_072).unwrap())],
        )
        .unwrap();
    let t = e.get(ids[0]);
    assert_eq!(t.owner, uid(3), "owner defaults to the calling user");
    assert_eq!(t.status, Status::Disabled);
    assert_eq!(t.expiry.instant().unwrap().unix_timestamp(), 1_611_238_072);
    assert!(t.is_expired_at(NOW), "Zabbix accepts an expiry in the past");
}

#[test]
fn batch_create_returns_ids_in_input_order() {
    let e = env();
    let ids = e
        .tokens
        .create(&admin(), [new("c"), new("a"), new("b")])
        .unwrap();
    let names: Vec<String> = ids.iter().map(|&id| e.get(id).name.to_string()).collect();
    assert_eq!(names, ["c", "a", "b"]);
}

// --- Names ------------------------------------------------------------------------------------

#[test]
fn policy_name_rules_refuse_with_field_and_index() {
    let e = env_with(Policy::cpanel());
    let err = e.refused(|t| t.create(&admin(), [new("ok"), new("not ok")]).map(drop));
    assert_eq!(
        invalid(&err),
        (Some(1), Field::Name, Problem::InvalidCharacter { ch: ' ' })
    );
    assert_eq!(
        err.to_string(),
        "item 2: name \"not ok\" contains the invalid character ' '",
        "items are counted from 1 in messages"
    );
    assert_eq!(err.code(), "invalid_character");
    assert_eq!(err.field(), Some(Field::Name));
    let long = "x".repeat(51);
    let err = e.refused(|t| t.create(&admin(), [new(&long)]).map(drop));
    assert_eq!(invalid(&err).2, Problem::TooLong { max: 50 });
}

#[test]
fn name_unique_per_owner_against_the_store() {
    let e = env();
    e.one(&admin(), new("deploy").owner(uid(2)));
    let err = e.refused(|t| {
        t.create(
            &admin(),
            [new("fresh").owner(uid(2)), new("deploy").owner(uid(2))],
        )
        .map(drop)
    });
    assert_eq!(
        invalid(&err),
        (Some(1), Field::Name, Problem::NameTaken { owner: uid(2) })
    );
    assert_eq!(
        err.to_string(),
        "item 2: name \"deploy\" already exists for owner \"2\""
    );
    assert_eq!((err.code(), err.http_status()), ("name_taken", 409));
}

#[test]
fn name_unique_inside_one_batch() {
    let e = env();
    let err = e.refused(|t| {
        t.create(&admin(), [new("x").owner(uid(2)), new("x").owner(uid(2))])
            .map(drop)
    });
    // The same condition as a name taken in the store: one error, one code.
    assert_eq!(
        invalid(&err),
        (Some(1), Field::Name, Problem::NameTaken { owner: uid(2) })
    );
    assert_eq!(err.code(), "name_taken");
}

#[test]
fn same_name_under_different_owners_is_fine() {
    let e = env();
    let ids = e
        .tokens
        .create(&admin(), [new("x").owner(uid(2)), new("x").owner(uid(3))])
        .unwrap();
    assert_eq!(ids.len(), 2);
}

#[test]
fn renaming_to_its_own_name_is_fine_and_no_change() {
    let e = env();
    let id = e.one(&admin(), new("same"));
    e.events.take();
    e.tokens
        .update(&admin(), [TokenUpdate::new(id).name(name("same"))])
        .unwrap();
    assert!(e.events.take().is_empty(), "an equal value is not a change");
}

#[test]
fn renaming_onto_another_tokens_name_is_refused() {
    let e = env();
    let a = e.one(&admin(), new("a"));
    e.one(&admin(), new("b"));
    let err = e.refused(|t| {
        t.update(&admin(), [TokenUpdate::new(a).name(name("b"))])
            .map(drop)
    });
    assert_eq!(invalid(&err).2, Problem::NameTaken { owner: uid(1) });
}

#[test]
fn two_items_renamed_to_the_same_name_in_one_batch_are_refused() {
    let e = env();
    let a = e.one(&admin(), new("a"));
    let b = e.one(&admin(), new("b"));
    let err = e.refused(|t| {
        t.update(
            &admin(),
            [
                TokenUpdate::new(a).name(name("c")),
                TokenUpdate::new(b).name(name("c")),
            ],
        )
        .map(drop)
    });
    assert_eq!(
        invalid(&err),
        (Some(1), Field::Name, Problem::NameTaken { owner: uid(1) })
    );
    // Renaming one onto the unchanged name of another in the batch is refused too.
    let err = e.refused(|t| {
        t.update(
            &admin(),
            [TokenUpdate::new(a).name(name("b")), TokenUpdate::new(b)],
        )
        .map(drop)
    });
    assert!(matches!(
        invalid(&err).2,
        Problem::Duplicate | Problem::NameTaken { .. }
    ));
}

#[test]
fn swapping_two_names_in_one_batch_works() {
    let e = env();
    let a = e.one(&admin(), new("a"));
    let b = e.one(&admin(), new("b"));
    e.tokens
        .update(
            &admin(),
            [
                TokenUpdate::new(a).name(name("b")),
                TokenUpdate::new(b).name(name("a")),
            ],
        )
        .unwrap();
    assert_eq!(e.get(a).name.as_str(), "b");
    assert_eq!(e.get(b).name.as_str(), "a");
}

// --- Other values -----------------------------------------------------------------------------

#[test]
fn description_length_per_policy() {
    let e = env();
    let ok = "d".repeat(1024);
    e.one(&admin(), new("ok").description(ok));
    let err = e.refused(|t| {
        t.create(&admin(), [new("long").description("d".repeat(1025))])
            .map(drop)
    });
    assert_eq!(
        invalid(&err),
        (None, Field::Description, Problem::TooLong { max: 1024 }),
        "a batch of one names no item"
    );
    let id = e.one(&admin(), new("upd"));
    let err = e.refused(|t| {
        t.update(
            &admin(),
            [TokenUpdate::new(id).description("d".repeat(1025))],
        )
        .map(drop)
    });
    assert_eq!(invalid(&err).1, Field::Description);
}

#[test]
fn past_expiry_refused_or_accepted_per_policy() {
    let past = Expiry::at(NOW - Duration::seconds(1));
    let e = env();
    let err = e.refused(|t| t.create(&admin(), [new("p").expiry(past)]).map(drop));
    assert_eq!(invalid(&err), (None, Field::Expiry, Problem::InThePast));
    assert_eq!(
        err.to_string(),
        "expiry 2025-06-01T11:59:59Z (Unix time 1748779199) is not in the future"
    );
    let err = e.refused(|t| {
        t.create(&admin(), [new("p").expiry(Expiry::at(NOW))])
            .map(drop)
    });
    assert_eq!(invalid(&err).2, Problem::InThePast, "now is not the future");
    let id = e.one(&admin(), new("q"));
    let err = e.refused(|t| {
        t.update(&admin(), [TokenUpdate::new(id).expiry(past)])
            .map(drop)
    });
    assert_eq!(invalid(&err).2, Problem::InThePast);
    let z = env_with(Policy::zabbix());
    z.one(&admin(), new("p").expiry(past));
}

#[test]
fn allowlist_over_the_policy_limit_is_refused_naming_the_entry() {
    let e = env();
    let entries: Vec<String> = (0..101).map(|i| format!("10.0.{i}.1")).collect();
    let list = IpAllowlist::parse(&entries).unwrap();
    let err = e.refused(|t| t.create(&admin(), [new("a").allowlist(list)]).map(drop));
    let Error::Invalid { index, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*index, None);
    assert_eq!(source.field, Field::Allowlist);
    assert_eq!(source.problem, Problem::TooMany { max: 100 });
    assert_eq!(source.value, "10.0.100.1");
    // An invalid entry is refused where it is parsed, naming it.
    let bad = IpAllowlist::parse(["1.1.1.1", "1.1.1.300"]).unwrap_err();
    assert_eq!(bad.value, "1.1.1.300");
}

#[test]
fn unknown_or_inactive_owner_cannot_get_a_token() {
    let e = env();
    let err = e.refused(|t| t.create(&admin(), [new("a").owner(uid(99))]).map(drop));
    assert_eq!(invalid(&err), (None, Field::Owner, Problem::UnknownUser));
    let err = e.refused(|t| t.issue(&admin(), new("a").owner(uid(4))).map(drop));
    assert_eq!(invalid(&err), (None, Field::Owner, Problem::InactiveUser));
    // A user disabled later can no longer get new tokens.
    e.directory.set(uid(2), UserState::Inactive);
    e.refused(|t| t.create(&admin(), [new("b").owner(uid(2))]).map(drop));
}

#[test]
fn permissions_beyond_the_actor_are_refused_listing_each() {
    let e = env();
    let reseller = user(2).privileges("create-acct, dns.*".parse().unwrap());
    let ok: PermissionSet = "dns.edit, create-acct".parse().unwrap();
    e.one(&reseller, new("ok").permissions(ok));
    let asked: PermissionSet = "dns.*, kill-acct, suspend-acct, create-acct"
        .parse()
        .unwrap();
    let err = e.refused(|t| t.create(&reseller, [new("x").permissions(asked)]).map(drop));
    let Error::Forbidden {
        index: None,
        source: Forbidden::PermissionsBeyondActor { missing },
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(missing.to_string(), "kill-acct, suspend-acct");
    assert_eq!(
        err.to_string(),
        "you cannot grant permissions you do not hold: kill-acct, suspend-acct"
    );
    assert_eq!(
        (err.code(), err.field()),
        ("permissions_not_held", Some(Field::Permissions))
    );
    // Widening through update is refused too; `dns.edit` never grants `dns.*`.
    let narrow = user(3).privileges("dns.edit".parse().unwrap());
    let id = e.one(&narrow, new("n").permissions("dns.edit".parse().unwrap()));
    let err = e.refused(|t| {
        t.update(
            &narrow,
            [TokenUpdate::new(id).permissions("dns.*".parse().unwrap())],
        )
        .map(drop)
    });
    assert!(matches!(err, Error::Forbidden { index: None, .. }));
}

#[test]
fn the_presets_give_a_token_without_permissions_the_actors_privileges() {
    for policy in [Policy::cpanel(), Policy::zabbix()] {
        let e = env_with(policy);
        let reseller = user(2).privileges("create-acct, dns.*".parse().unwrap());
        let id = e.one(&reseller, bare("default"));
        assert_eq!(e.get(id).permissions.to_string(), "create-acct, dns.*");
    }
}

#[test]
fn the_default_policy_refuses_a_token_without_permissions_and_says_how_to_ask_for_all() {
    let e = env();
    let err = e.refused(|t| t.issue(&user(2), bare("x")).map(drop));
    assert_eq!(invalid(&err), (None, Field::Permissions, Problem::Required));
    assert_eq!(
        err.to_string(),
        "permissions are required: list the ones the token needs (for example \
         \"reports.read\"), or give \"*\" for all of its owner's rights"
    );
    assert_eq!((err.code(), err.http_status()), ("required", 400));
    let err = e.refused(|t| t.create(&user(2), [new("a"), bare("b")]).map(drop));
    assert_eq!(err.index(), Some(1));
    // What the message says works: "*" is all of the owner's rights, cut to what the
    // directory gives the owner at every authentication.
    e.directory
        .set(uid(2), UserState::Active("reports.*".parse().unwrap()));
    let issued = e
        .tokens
        .issue(&user(2), bare("all").permissions("*".parse().unwrap()))
        .unwrap();
    let g = e
        .tokens
        .authenticate(issued.secret.expose(), &RequestContext::unknown_address())
        .unwrap();
    assert_eq!(g.permissions.to_string(), "reports.*");
}

// --- Ids and batches --------------------------------------------------------------------------

#[test]
fn duplicate_ids_in_a_batch_are_refused() {
    let e = env();
    let a = e.one(&admin(), new("a"));
    let b = e.one(&admin(), new("b"));
    let dup = [a, b, a];
    let check =
        |err: Error| assert_eq!(invalid(&err), (Some(2), Field::TokenId, Problem::Duplicate));
    check(e.refused(|t| t.delete(&admin(), dup).map(drop)));
    check(e.refused(|t| t.generate(&admin(), dup).map(drop)));
    check(e.refused(|t| t.set_status(&admin(), dup, Status::Disabled).map(drop)));
    check(e.refused(|t| {
        t.update(
            &admin(),
            dup.map(|id| TokenUpdate::new(id).description("x")),
        )
        .map(drop)
    }));
}

#[test]
fn an_actor_without_token_rights_is_refused_everything() {
    let e = env();
    let id = e.one(&user(2), new("mine"));
    let nobody = Actor::without_token_rights(uid(2));
    let forbidden = |err: Error| {
        assert!(
            matches!(
                err,
                Error::Forbidden {
                    source: Forbidden::CannotManageTokens,
                    ..
                }
            ),
            "{err:?}"
        )
    };
    forbidden(e.refused(|t| t.create(&nobody, [new("x")]).map(drop)));
    forbidden(e.refused(|t| t.issue(&nobody, new("x")).map(drop)));
    forbidden(e.refused(|t| t.generate(&nobody, [id]).map(drop)));
    forbidden(e.refused(|t| {
        t.update(&nobody, [TokenUpdate::new(id).description("x")])
            .map(drop)
    }));
    forbidden(e.refused(|t| t.set_status(&nobody, [id], Status::Disabled).map(drop)));
    forbidden(e.refused(|t| t.delete(&nobody, [id]).map(drop)));
    forbidden(e.refused(|t| t.get(&nobody, id).map(drop)));
    forbidden(e.refused(|t| t.list(&nobody, &Query::new()).map(drop)));
    forbidden(e.refused(|t| t.count(&nobody, &Query::new()).map(drop)));
}

#[test]
fn a_user_manages_only_its_own_tokens() {
    let e = env();
    let mine = e.one(&user(2), new("mine"));
    let theirs = e.one(&user(3), new("theirs"));
    let ghost = TokenId::new(999_999);
    let err = e.refused(|t| t.create(&user(2), [new("x").owner(uid(3))]).map(drop));
    assert!(matches!(
        err,
        Error::Forbidden {
            index: None,
            source: Forbidden::OtherUsersTokens
        }
    ));
    assert_eq!(err.to_string(), "you may only manage your own tokens");
    // Someone else's token and a token that does not exist give the same answer.
    let other = e.refused(|t| t.delete(&user(2), [mine, theirs]).map(drop));
    let missing = e.refused(|t| t.delete(&user(2), [mine, ghost]).map(drop));
    assert!(matches!(other, Error::NotFound { index: Some(1), id } if id == theirs));
    // Each message names the id asked for and nothing else: with the ids blanked they match.
    let blank = |e: &Error, id: TokenId| e.to_string().replace(&format!("token {id} "), "token N ");
    assert_eq!(blank(&other, theirs), blank(&missing, ghost));
    assert_eq!(
        other.to_string(),
        format!("item 2: token {theirs} not found")
    );
    assert_eq!((other.code(), other.http_status()), ("not_found", 404));
    for op in [
        |t: &Tokens<MemoryStore>, ids: [TokenId; 2]| t.generate(&user(2), ids).map(drop),
        |t: &Tokens<MemoryStore>, ids: [TokenId; 2]| {
            t.set_status(&user(2), ids, Status::Disabled).map(drop)
        },
        |t: &Tokens<MemoryStore>, ids: [TokenId; 2]| {
            t.update(
                &user(2),
                ids.map(|id| TokenUpdate::new(id).description("x")),
            )
            .map(drop)
        },
    ] {
        let a = e.refused(|t| op(t, [mine, theirs]));
        let b = e.refused(|t| op(t, [mine, ghost]));
        assert_eq!(blank(&a, theirs), blank(&b, ghost));
        assert_eq!((a.code(), a.index()), (b.code(), b.index()));
    }
    assert!(matches!(
        e.tokens.get(&user(2), theirs),
        Err(Error::NotFound { index: None, .. })
    ));
    // Listing shows only its own, whatever the query asks for.
    let listed = e.tokens.list(&user(2), &Query::new()).unwrap();
    assert_eq!(listed.iter().map(|t| t.id).collect::<Vec<_>>(), [mine]);
    assert!(
        e.tokens
            .list(&user(2), &Query::new().owners([uid(3)]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(e.tokens.count(&user(2), &Query::new()).unwrap(), 1);
    assert_eq!(e.tokens.count(&admin(), &Query::new()).unwrap(), 2);
}

// --- Generate, issue, update, status, delete --------------------------------------------------

#[test]
fn generate_gives_secrets_in_order_and_makes_the_actor_creator() {
    let e = env();
    let a = e.one(&user(2), new("a"));
    let b = e.one(&user(2), new("b"));
    e.clock.advance(Duration::minutes(5));
    let secrets = e.tokens.generate(&admin(), [b, a]).unwrap();
    assert_eq!(
        secrets.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [b, a]
    );
    let ctx = RequestContext::unknown_address();
    for (id, s) in &secrets {
        let t = e.get(*id);
        assert_eq!(t.creator, uid(1), "the actor becomes the creator (Zabbix)");
        assert_eq!(t.secret.unwrap().generated_at, NOW + Duration::minutes(5));
        assert_eq!(e.tokens.authenticate(s.expose(), &ctx).unwrap().token, *id);
    }
    // Regenerating: the previous secret stops working at once.
    let again = e.tokens.generate(&user(2), [a]).unwrap();
    let old = &secrets[1].1;
    assert!(e.tokens.authenticate(old.expose(), &ctx).is_err());
    assert!(e.tokens.authenticate(again[0].1.expose(), &ctx).is_ok());
}

#[test]
fn issue_creates_and_generates_in_one_step() {
    let e = env();
    let issued = e
        .tokens
        .issue(
            &user(2),
            new("ci")
                .permissions("kill-acct".parse().unwrap())
                .allowlist("10.0.0.0/8".parse().unwrap()),
        )
        .unwrap();
    assert_eq!(e.get(issued.token.id), issued.token);
    assert!(issued.token.secret.is_some());
    let g = e
        .tokens
        .authenticate(
            issued.secret.expose(),
            &RequestContext::from_ip("10.1.1.1".parse().unwrap()),
        )
        .unwrap();
    assert_eq!(g.permissions.to_string(), "kill-acct");
    // A refused issue stores nothing.
    e.refused(|t| t.issue(&user(2), new("ci").owner(uid(99))).map(drop));
}

#[test]
fn update_changes_only_given_fields() {
    let e = env();
    let id = e.one(
        &admin(),
        new("orig")
            .description("d")
            .expires_at(NOW + Duration::days(1))
            .allowlist("10.0.0.1".parse().unwrap())
            .permissions("a, b".parse().unwrap()),
    );
    let before = e.get(id);
    e.tokens
        .update(&admin(), [TokenUpdate::new(id).description("new")])
        .unwrap();
    let after = e.get(id);
    assert_eq!(after.description, "new");
    assert_eq!(
        after.revision,
        before.revision + 1,
        "every write moves the revision"
    );
    assert_eq!(
        Token {
            description: "d".into(),
            revision: before.revision,
            ..after
        },
        before,
        "nothing else changed"
    );
    // Clearing expiry and allowlist; setting permissions and status.
    e.tokens
        .update(
            &admin(),
            [TokenUpdate::new(id)
                .expiry(Expiry::NEVER)
                .allowlist(IpAllowlist::any())
                .permissions("c".parse().unwrap())
                .status(Status::Disabled)],
        )
        .unwrap();
    let t = e.get(id);
    assert_eq!(t.expiry, Expiry::NEVER);
    assert!(t.allowlist.is_empty());
    assert_eq!(t.permissions.to_string(), "c");
    assert_eq!(t.status, Status::Disabled);
    assert_eq!(t.owner, before.owner, "the owner never changes");
}

#[test]
fn set_status_is_mass_enable_disable() {
    let e = env();
    let ids = e
        .tokens
        .create(&admin(), [new("a"), new("b"), new("c")])
        .unwrap();
    e.tokens
        .set_status(&admin(), [ids[0], ids[2]], Status::Disabled)
        .unwrap();
    let st: Vec<Status> = ids.iter().map(|&id| e.get(id).status).collect();
    assert_eq!(st, [Status::Disabled, Status::Enabled, Status::Disabled]);
    e.tokens
        .set_status(&admin(), ids.clone(), Status::Enabled)
        .unwrap();
    assert!(ids.iter().all(|&id| e.get(id).status == Status::Enabled));
}

#[test]
fn delete_returns_ids_and_forgets_tokens() {
    let e = env();
    let ids = e.tokens.create(&admin(), [new("a"), new("b")]).unwrap();
    assert_eq!(
        e.tokens.delete(&admin(), [ids[1], ids[0]]).unwrap(),
        [ids[1], ids[0]]
    );
    assert!(matches!(
        e.tokens.get(&admin(), ids[0]),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(e.tokens.count(&admin(), &Query::new()).unwrap(), 0);
}

#[test]
fn every_failing_batch_leaves_the_store_as_it_was() {
    let e = env();
    let a = e.one(&admin(), new("a"));
    let b = e.one(&admin(), new("b"));
    let ghost = TokenId::new(424_242);
    e.refused(|t| t.create(&admin(), [new("c"), new("a")]).map(drop));
    e.refused(|t| t.generate(&admin(), [a, ghost]).map(drop));
    e.refused(|t| t.delete(&admin(), [a, b, ghost]).map(drop));
    e.refused(|t| {
        t.set_status(&admin(), [a, ghost], Status::Disabled)
            .map(drop)
    });
    e.refused(|t| {
        t.update(
            &admin(),
            [
                TokenUpdate::new(a).description("changed"),
                TokenUpdate::new(b).expiry(Expiry::at(NOW - Duration::days(1))),
            ],
        )
        .map(drop)
    });
}

// --- Listing ----------------------------------------------------------------------------------

#[test]
fn list_filters_through_the_facade_and_keeps_expired_tokens() {
    let e = env_with(Policy::zabbix());
    let soon = e.one(&admin(), new("soon").expires_at(NOW + Duration::days(2)));
    let gone = e.one(&admin(), new("gone").expires_at(NOW - Duration::days(2)));
    let never = e.one(&admin(), new("never"));
    let ids = |q: Query| -> Vec<TokenId> {
        e.tokens
            .list(&admin(), &q)
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect()
    };
    assert_eq!(
        ids(Query::new()),
        [soon, gone, never],
        "expired tokens are listed"
    );
    assert_eq!(ids(Query::new().valid_at(NOW)), [soon, never]);
    assert_eq!(ids(Query::new().expired_at(NOW)), [gone]);
    assert_eq!(ids(Query::new().expiring_within(Duration::days(3))), [soon]);
    e.clock.advance(Duration::days(2));
    assert_eq!(
        ids(Query::new().expiring_within(Duration::days(3))),
        Vec::<TokenId>::new(),
        "relative filters follow the clock"
    );
    assert_eq!(
        e.tokens
            .count(&admin(), &Query::new().expired_at(e.tokens.now()))
            .unwrap(),
        2
    );
}

// --- Events -----------------------------------------------------------------------------------

#[test]
fn events_say_who_did_what_to_which_token_and_never_hold_a_secret() {
    let e = env();
    let id = e.one(&admin(), new("ev").owner(uid(2)));
    let secret = e.tokens.generate(&admin(), [id]).unwrap().pop().unwrap().1;
    e.tokens
        .update(
            &admin(),
            [TokenUpdate::new(id).description("x").name(name("ev2"))],
        )
        .unwrap();
    e.tokens
        .set_status(&admin(), [id], Status::Disabled)
        .unwrap();
    e.tokens
        .set_status(&admin(), [id], Status::Disabled)
        .unwrap();
    e.tokens.delete(&admin(), [id]).unwrap();
    let events = e.events.take();
    let kinds: Vec<EventKind> = events.iter().map(|ev| ev.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Created,
            EventKind::Generated { grace_until: None },
            EventKind::Updated {
                fields: vec![UpdatedField::Name, UpdatedField::Description]
            },
            EventKind::StatusChanged {
                status: Status::Disabled
            },
            EventKind::Deleted,
        ],
        "setting the same status twice is one change"
    );
    for ev in &events {
        assert_eq!(ev.actor, Some(uid(1)));
        assert_eq!(ev.token, Some(id));
        assert_eq!(ev.owner, Some(uid(2)));
        assert_eq!(ev.at, NOW);
        let dbg = format!("{ev:?}");
        assert!(!dbg.contains(secret.expose()));
    }
}

#[test]
fn find_by_secret_sees_only_what_the_actor_may_manage() {
    // The authentication tests' host: a token of user 2 with an allowlist and permissions.
    let e = crate::support::env::env();
    let (id, s) = e.basic("find");
    assert_eq!(
        e.tokens.find_by_secret(&admin(), s.expose()).unwrap(),
        Some(id)
    );
    let owner = Actor::user(uid(2));
    assert_eq!(
        e.tokens.find_by_secret(&owner, s.expose()).unwrap(),
        Some(id)
    );
    let other = Actor::user(uid(3));
    assert_eq!(e.tokens.find_by_secret(&other, s.expose()).unwrap(), None);
    assert_eq!(e.tokens.find_by_secret(&admin(), "garbage").unwrap(), None);
    e.tokens.generate(&admin(), [id]).unwrap();
    assert_eq!(
        e.tokens.find_by_secret(&admin(), s.expose()).unwrap(),
        None,
        "a replaced secret past its grace finds nothing"
    );
    let nobody = Actor::without_token_rights(uid(2));
    assert!(e.tokens.find_by_secret(&nobody, s.expose()).is_err());
}

/// Allowlist text is taken as written or refused: `10.0.0.1/8` is never widened to its network,
/// and a blank item (`" , "`) is never read as any address.
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
