//! Secret rotation (`Tokens::generate_with`): a new secret, with the old one still accepted
//! for a grace period that is bounded by the policy and never outlives the token; without a
//! grace the old secret is superseded at once, and only one previous secret is remembered.

use api_tokens::{
    Actor, DenialKind, Error, EventKind, Field, MemoryStore, NewToken, PermissionSet, Policy,
    Problem, PublicDenial, TokenSecret, UserId,
};
use time::Duration;

use crate::support::env::{env, kind};
use crate::support::{NOW, admin, clocked, from, ip, name};

#[test]
fn rotation_with_a_grace_period() {
    let e = env();
    let (id, old) = e.basic("rot");
    let mut rng = rand::rng();
    let grace = Duration::hours(1);
    let new = e
        .tokens
        .generate_with(&admin(), [id], grace, &mut rng)
        .unwrap()
        .pop()
        .unwrap()
        .1;
    let ctx = from("10.0.0.1");
    let at = |s: &TokenSecret, t| e.tokens.authenticate_at(s.expose(), &ctx, t);
    assert!(
        at(&old, NOW).is_ok(),
        "before the deadline the old secret works"
    );
    assert!(at(&old, NOW + grace - Duration::seconds(1)).is_ok());
    assert_eq!(
        kind(at(&old, NOW + grace)),
        DenialKind::Superseded,
        "at the deadline"
    );
    assert_eq!(
        kind(at(&old, NOW + grace * 2)),
        DenialKind::Superseded,
        "after"
    );
    for t in [NOW, NOW + grace, NOW + grace * 2] {
        assert!(at(&new, t).is_ok(), "the new secret works throughout");
    }
    let d = at(&old, NOW + grace).unwrap_err();
    assert_eq!(
        d.public(),
        PublicDenial::InvalidToken,
        "clients see it as invalid"
    );
    let events = e.events.take();
    assert!(events.iter().any(|ev| ev.kind
        == EventKind::Denied {
            reason: DenialKind::Superseded,
            ip: Some(ip("10.0.0.1"))
        }
        && ev.token == Some(id)));
    assert!(events.iter().any(|ev| ev.kind
        == EventKind::Generated {
            grace_until: Some(NOW + grace)
        }));
}

#[test]
fn without_grace_the_old_secret_is_superseded_at_once() {
    let e = env();
    let (id, old) = e.basic("zero");
    e.tokens.generate(&admin(), [id]).unwrap();
    assert_eq!(kind(e.auth(&old, from("10.0.0.1"))), DenialKind::Superseded);
    // Two generations back is simply unknown: only one previous secret is remembered.
    e.tokens.generate(&admin(), [id]).unwrap();
    assert_eq!(kind(e.auth(&old, from("10.0.0.1"))), DenialKind::Unknown);
}

/// A grace period is bounded by the policy (a grace of 100 years is refused, naming the
/// bound) and never outlives the token: the longest one allowed ends at the token's expiry.
#[test]
fn a_grace_period_is_bounded_and_never_outlives_the_token() {
    let (tokens, clock, events) = clocked(MemoryStore::new());
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
    assert!(
        tokens
            .authenticate(issued.secret.expose(), &from("10.0.0.1"))
            .is_ok()
    );

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
        .authenticate(issued.secret.expose(), &from("10.0.0.1"))
        .unwrap_err();
    assert_eq!(d.kind(), DenialKind::Superseded);
    clock.advance(Duration::days(400));
    assert_eq!(
        tokens
            .authenticate(new[0].1.expose(), &from("10.0.0.1"))
            .unwrap()
            .token,
        id
    );
}
