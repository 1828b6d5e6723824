//! Every public type is `Send + Sync` (checked at compile time), and the store trait is
//! object-safe.

use api_tokens::store::{Candidate, Change, TimeRange};
use api_tokens::*;

fn send_sync<T: Send + Sync>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<Tokens<MemoryStore>>();
    send_sync::<Tokens<Box<dyn TokenStore>>>();
    send_sync::<MemoryStore>();
    #[cfg(feature = "sqlite")]
    send_sync::<api_tokens::store::sqlite::SqliteStore>();
    send_sync::<Token>();
    send_sync::<NewToken>();
    send_sync::<TokenUpdate>();
    send_sync::<Issued>();
    send_sync::<TokenSecret>();
    send_sync::<HashKey>();
    send_sync::<SecretHash>();
    send_sync::<SecretFormat>();
    send_sync::<Policy>();
    send_sync::<Permission>();
    send_sync::<PermissionSet>();
    send_sync::<IpAllowlist>();
    send_sync::<UserId>();
    send_sync::<TokenName>();
    send_sync::<Expiry>();
    send_sync::<Actor>();
    send_sync::<Grant>();
    send_sync::<Denial>();
    send_sync::<Error>();
    send_sync::<StoreError>();
    send_sync::<ValidationError>();
    send_sync::<Query>();
    send_sync::<TimeRange>();
    send_sync::<Change>();
    send_sync::<Candidate<'static>>();
    send_sync::<Snapshot>();
    send_sync::<TokenEvent>();
    send_sync::<CollectEvents>();
    send_sync::<StaticDirectory>();
    send_sync::<ManualClock>();
    send_sync::<TokenView>();
    send_sync::<Revealed>();
    send_sync::<HashKeyError>();
    send_sync::<store::StoredToken>();
}

#[test]
fn clones_of_tokens_share_the_store_and_configure_apart() {
    fn clone<T: Clone>(t: &T) -> T {
        t.clone()
    }
    let a = Tokens::in_memory();
    let b = clone(&a).with_policy(Policy::zabbix());
    let alice = Actor::user(UserId::from(1));
    let issued = a
        .issue(
            &alice,
            NewToken::new("shared".parse().unwrap()).permissions(PermissionSet::all()),
        )
        .unwrap();
    assert_eq!(b.store().len(), 1, "one store behind both");
    assert_eq!(a.policy().max_name_chars, 64);
    assert!(
        b.policy().secret_format == SecretFormat::Zabbix && a.policy().require_permissions,
        "a builder on a clone changes only that clone"
    );
    // The clone's policy refuses the original's secret format: the configs really differ.
    assert!(
        b.authenticate(issued.secret.expose(), &RequestContext::unknown_address())
            .is_err()
    );
    let c = clone(&a);
    assert!(
        c.authenticate(issued.secret.expose(), &RequestContext::unknown_address())
            .is_ok()
    );
}

#[test]
fn a_boxed_store_works_behind_the_facade() {
    let store: Box<dyn TokenStore> = Box::new(MemoryStore::new());
    let tokens = Tokens::new(store);
    let issued = tokens
        .issue(
            &Actor::user(UserId::from(1)),
            NewToken::new("boxed".parse().unwrap()).permissions(PermissionSet::all()),
        )
        .unwrap();
    assert!(
        tokens
            .authenticate(issued.secret.expose(), &RequestContext::unknown_address())
            .is_ok()
    );
}

#[test]
fn an_arc_store_can_be_shared_between_facades() {
    let shared = std::sync::Arc::new(MemoryStore::new());
    let a = Tokens::new(shared.clone());
    let b = Tokens::new(shared.clone());
    let issued = a
        .issue(
            &Actor::user(UserId::from(1)),
            NewToken::new("shared".parse().unwrap()).permissions(PermissionSet::all()),
        )
        .unwrap();
    assert!(
        b.authenticate(issued.secret.expose(), &RequestContext::unknown_address())
            .is_ok()
    );
    assert_eq!(shared.len(), 1);
}
