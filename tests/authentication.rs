//! Authentication: every denial reason, their order, boundaries, last use, the events it
//! records, and what a client is told. (Rotation, revocation and races with management have
//! modules of their own.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use api_tokens::store::TimeRange;
use api_tokens::{
    Denial, DenialKind, EventKind, Expiry, MemoryStore, NewToken, Permission, PermissionSet,
    Policy, PublicDenial, Query, RequestContext, SecretFormat, Status, TokenId, TokenName,
    TokenUpdate, Tokens, UserState,
};
use time::Duration;

use crate::support::env::{env, env_with, kind};
use crate::support::hooked::Hooked;
use crate::support::{NOW, admin, from, ip, issue, uid};

#[test]
fn a_valid_token_is_granted_with_id_owner_name_and_permissions() {
    let e = env();
    let (id, s) = e.basic("ok");
    let g = e.auth(&s, from("10.1.2.3")).unwrap();
    assert_eq!(g.token, id);
    assert_eq!(g.owner, uid(2));
    assert_eq!(g.name.as_str(), "ok");
    assert_eq!(g.permissions.to_string(), "dns.*, kill-acct");
    let edit: Permission = "dns.edit".parse().unwrap();
    let create: Permission = "create-acct".parse().unwrap();
    assert!(g.require(&edit).is_ok());
    let denied = g.require(&create).unwrap_err();
    assert!(
        matches!(&denied, Denial::MissingPermission { permission, .. } if *permission == create)
    );
    assert_eq!(denied.public(), PublicDenial::Forbidden);
}

#[test]
fn malformed_secrets_are_refused_before_any_lookup() {
    // The default format: prefix and checksum catch typos without a lookup.
    let e = env_with(Policy::default());
    let (_, s) = e.basic("t");
    let good = s.expose().to_owned();
    let mut typo = good.clone().into_bytes();
    typo[10] ^= 1;
    let typo = String::from_utf8(typo).unwrap();
    let cases = [
        String::new(),
        "x".repeat(10_000_000),
        good[..good.len() - 1].to_owned(),
        good.to_uppercase(),
        typo,
        format!("{good} "),
        "Bearer abc".to_owned(),
        SecretFormat::Zabbix.generate().expose().to_owned(),
    ];
    for bad in &cases {
        let d = e.tokens.authenticate(bad, &from("10.0.0.1")).unwrap_err();
        assert_eq!(
            d.kind(),
            DenialKind::Malformed,
            "{:?}",
            &bad[..bad.len().min(20)]
        );
        assert_eq!(d.public(), PublicDenial::InvalidToken);
    }
    assert_eq!(e.lookups(), 0, "no malformed secret reached the store");
    assert!(e.auth(&s, from("10.0.0.1")).is_ok());
    assert_eq!(e.lookups(), 1);
}

#[test]
fn unknown_secret() {
    let e = env();
    let stranger = SecretFormat::Zabbix.generate();
    assert_eq!(
        kind(e.auth(&stranger, from("10.0.0.1"))),
        DenialKind::Unknown
    );
    // A secret hashed under another key is unknown too.
    let (_, s) = e.basic("k");
    let other = Tokens::new(MemoryStore::new())
        .with_policy(Policy::zabbix())
        .with_hash_key(api_tokens::HashKey::new([1; 32]));
    assert_eq!(
        other
            .authenticate(s.expose(), &from("10.0.0.1"))
            .unwrap_err()
            .kind(),
        DenialKind::Unknown
    );
}

#[test]
fn disabled_expired_owner_and_address_each_have_their_reason() {
    let e = env();
    let (id, s) = e.basic("t");
    e.tokens
        .set_status(&admin(), [id], Status::Disabled)
        .unwrap();
    assert_eq!(kind(e.auth(&s, from("10.0.0.1"))), DenialKind::Disabled);
    e.tokens
        .set_status(&admin(), [id], Status::Enabled)
        .unwrap();

    e.update(TokenUpdate::new(id).expiry(Expiry::at(NOW)));
    assert_eq!(kind(e.auth(&s, from("10.0.0.1"))), DenialKind::Expired);
    e.update(TokenUpdate::new(id).expiry(Expiry::NEVER));

    e.directory.set(uid(2), UserState::Inactive);
    assert_eq!(
        kind(e.auth(&s, from("10.0.0.1"))),
        DenialKind::OwnerInactive
    );
    e.directory.set(uid(2), UserState::Unknown);
    assert_eq!(kind(e.auth(&s, from("10.0.0.1"))), DenialKind::OwnerUnknown);
    e.directory
        .set(uid(2), UserState::Active(PermissionSet::all()));

    let d = e.auth(&s, from("192.168.1.1")).unwrap_err();
    assert!(matches!(d, Denial::AddressNotAllowed { ip: Some(_), .. }));
    assert_eq!(d.public(), PublicDenial::AddressNotAllowed);
    assert_eq!(
        kind(e.auth(&s, RequestContext::unknown_address())),
        DenialKind::AddressNotAllowed,
        "a non-empty allowlist fails closed without a client address"
    );
    assert!(e.auth(&s, from("2001:db8::7")).is_ok());
    // An empty allowlist allows any address, and no address at all.
    e.update(TokenUpdate::new(id).allowlist(api_tokens::IpAllowlist::any()));
    assert!(e.auth(&s, RequestContext::unknown_address()).is_ok());
}

#[test]
fn checks_run_in_the_documented_order() {
    let e = env();
    let (id, s) = e.basic("order");
    // Everything wrong at once: disabled, expired, owner inactive, address not allowed.
    e.update(
        TokenUpdate::new(id)
            .status(Status::Disabled)
            .expiry(Expiry::at(NOW - Duration::days(1))),
    );
    e.directory.set(uid(2), UserState::Inactive);
    let bad_ip = || from("192.168.0.1");
    assert_eq!(kind(e.auth(&s, bad_ip())), DenialKind::Disabled);
    e.update(TokenUpdate::new(id).status(Status::Enabled));
    assert_eq!(kind(e.auth(&s, bad_ip())), DenialKind::Expired);
    e.update(TokenUpdate::new(id).expiry(Expiry::NEVER));
    assert_eq!(kind(e.auth(&s, bad_ip())), DenialKind::OwnerInactive);
    e.directory
        .set(uid(2), UserState::Active(PermissionSet::all()));
    assert_eq!(kind(e.auth(&s, bad_ip())), DenialKind::AddressNotAllowed);
    assert!(e.auth(&s, from("10.9.9.9")).is_ok());
    // A superseded secret is reported as such before the token's own state.
    let old = s;
    e.tokens.generate(&admin(), [id]).unwrap();
    e.update(TokenUpdate::new(id).status(Status::Disabled));
    assert_eq!(kind(e.auth(&old, from("10.9.9.9"))), DenialKind::Superseded);
}

#[test]
fn expiry_boundary_to_the_second() {
    let e = env();
    let exp = NOW + Duration::hours(1);
    let (_, s) = e.issue(
        NewToken::new(TokenName::new("b").unwrap())
            .permissions(PermissionSet::all())
            .expires_at(exp),
    );
    let at = |t| e.tokens.authenticate_at(s.expose(), &from("1.2.3.4"), t);
    assert!(at(exp - Duration::seconds(1)).is_ok());
    assert!(at(exp - Duration::nanoseconds(1)).is_ok());
    assert_eq!(
        kind(at(exp)),
        DenialKind::Expired,
        "expires_at <= now is expired"
    );
    assert_eq!(kind(at(exp + Duration::seconds(1))), DenialKind::Expired);
    assert_eq!(at(exp).unwrap_err().public(), PublicDenial::Expired);
    // authenticate() reads the clock.
    e.clock.set(exp);
    assert_eq!(kind(e.auth(&s, from("1.2.3.4"))), DenialKind::Expired);
}

#[test]
fn ipv4_mapped_clients_match_ipv4_entries() {
    let e = env();
    let (_, s) = e.issue(
        NewToken::new(TokenName::new("m").unwrap())
            .permissions(PermissionSet::all())
            .allowlist("1.1.1.1, 1.1.1.8/29".parse().unwrap()),
    );
    assert!(e.auth(&s, from("::ffff:1.1.1.1")).is_ok());
    assert!(e.auth(&s, from("::ffff:1.1.1.12")).is_ok());
    assert_eq!(
        kind(e.auth(&s, from("::ffff:1.1.1.2"))),
        DenialKind::AddressNotAllowed
    );
}

#[test]
fn effective_permissions_shrink_when_the_owner_loses_a_right() {
    let e = env();
    let (_, s) = e.basic("eff");
    let kill: Permission = "kill-acct".parse().unwrap();
    assert!(e.auth(&s, from("10.0.0.1")).unwrap().allows(&kill));
    e.directory.set(
        uid(2),
        UserState::Active("dns.edit, create-acct".parse().unwrap()),
    );
    let g = e.auth(&s, from("10.0.0.1")).unwrap();
    assert_eq!(
        g.permissions.to_string(),
        "dns.edit",
        "token ∩ owner's current rights"
    );
    assert_eq!(
        g.require(&kill).unwrap_err().kind(),
        DenialKind::MissingPermission
    );
}

#[test]
fn last_use_is_recorded_and_queryable() {
    let e = env();
    let (id, s) = e.basic("lu");
    let (idle, _) = e.basic("idle");
    assert_eq!(e.tokens.get(&admin(), id).unwrap().last_use, None);
    e.clock.advance(Duration::minutes(3));
    e.auth(&s, from("10.4.4.4")).unwrap();
    let lu = e.tokens.get(&admin(), id).unwrap().last_use.unwrap();
    assert_eq!(lu.at, NOW + Duration::minutes(3));
    assert_eq!(lu.ip, Some(ip("10.4.4.4")));
    e.clock.advance(Duration::minutes(1));
    e.auth(&s, from("2001:db8::9")).unwrap();
    let lu = e.tokens.get(&admin(), id).unwrap().last_use.unwrap();
    assert_eq!(
        (lu.at, lu.ip),
        (NOW + Duration::minutes(4), Some(ip("2001:db8::9")))
    );
    // A denied attempt is not a use.
    e.auth(&s, from("8.8.8.8")).unwrap_err();
    assert_eq!(
        e.tokens.get(&admin(), id).unwrap().last_use.unwrap().ip,
        Some(ip("2001:db8::9"))
    );
    let recent = Query::new().last_used(TimeRange {
        from: Some(NOW),
        until: None,
    });
    let listed: Vec<TokenId> = e
        .tokens
        .list(&admin(), &recent)
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [id]);
    assert_ne!(listed, [idle]);
    // Updating the token later does not roll its last use back.
    e.update(TokenUpdate::new(id).description("touched"));
    assert_eq!(
        e.tokens.get(&admin(), id).unwrap().last_use.unwrap().at,
        NOW + Duration::minutes(4)
    );
}

#[test]
fn public_denials_do_not_tell_unknown_from_disabled() {
    let e = env();
    let (id, s) = e.basic("pub");
    e.tokens
        .set_status(&admin(), [id], Status::Disabled)
        .unwrap();
    let disabled = e.auth(&s, from("10.0.0.1")).unwrap_err();
    let unknown = e
        .auth(&SecretFormat::Zabbix.generate(), from("10.0.0.1"))
        .unwrap_err();
    assert_eq!(disabled.public(), unknown.public());
    assert_eq!(disabled.public().to_string(), "Not authorized.");
    assert_ne!(
        disabled.kind(),
        unknown.kind(),
        "the log form keeps them apart"
    );
}

#[test]
fn authentication_events_go_to_the_sink_and_are_skipped_for_the_default() {
    let e = env();
    let (id, s) = e.basic("ev");
    e.events.take();
    e.auth(&s, from("10.0.0.1")).unwrap();
    e.auth(&s, from("8.8.8.8")).unwrap_err();
    let kinds: Vec<(Option<TokenId>, EventKind)> = e
        .events
        .take()
        .into_iter()
        .map(|ev| (ev.token, ev.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                Some(id),
                EventKind::Authenticated {
                    ip: Some(ip("10.0.0.1"))
                }
            ),
            (
                Some(id),
                EventKind::Denied {
                    reason: DenialKind::AddressNotAllowed,
                    ip: Some(ip("8.8.8.8"))
                }
            ),
        ]
    );
    // A sink that does not want them gets none (management events still arrive).
    struct Quiet(AtomicUsize);
    impl api_tokens::EventSink for Quiet {
        fn record(&self, _: api_tokens::TokenEvent) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wants_auth_events(&self) -> bool {
            false
        }
    }
    let quiet = Arc::new(Quiet(AtomicUsize::new(0)));
    let t = Tokens::in_memory().with_events(quiet.clone());
    // The startup check's event is not an authentication event: it arrives once, here.
    t.check_hash_keys().unwrap();
    let issued = t
        .issue(
            &admin(),
            NewToken::new(TokenName::new("q").unwrap()).permissions(PermissionSet::all()),
        )
        .unwrap();
    let after_issue = quiet.0.load(Ordering::SeqCst);
    assert!(after_issue > 0);
    for _ in 0..10 {
        t.authenticate(issued.secret.expose(), &from("1.1.1.1"))
            .unwrap();
    }
    assert_eq!(quiet.0.load(Ordering::SeqCst), after_issue);
}

/// A decision made in a lookup the store then reports as a miss is discarded: the secret is
/// unknown, never granted. No store here does that, but a host's may (a replica that went
/// stale after it called the check). With an old key configured, the miss path's lookups too.
#[test]
fn a_decision_from_a_lookup_reported_as_a_miss_is_never_granted() {
    for old_key in [false, true] {
        let lie = Arc::new(AtomicBool::new(false));
        let flag = lie.clone();
        let store = Hooked::new(MemoryStore::new())
            .map_found(move |found| found && !flag.load(Ordering::SeqCst));
        let mut tokens = Tokens::new(store).with_hash_key(api_tokens::HashKey::new([1; 32]));
        if old_key {
            tokens = tokens.with_old_hash_key(api_tokens::HashKey::new([2; 32]));
        }
        let issued = issue(&tokens, "t");
        let ctx = RequestContext::unknown_address();
        assert!(tokens.authenticate(issued.secret.expose(), &ctx).is_ok());
        lie.store(true, Ordering::SeqCst);
        let d = tokens
            .authenticate(issued.secret.expose(), &ctx)
            .unwrap_err();
        assert_eq!(d.kind(), DenialKind::Unknown, "{d:?}");
    }
}
