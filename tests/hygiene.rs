//! Secret hygiene: no `Debug` or `Display` of any public type, error, denial, event or snapshot
//! contains a plaintext secret or a full secret hash.

use std::sync::Arc;

use api_tokens::{
    Actor, Error, HashKey, MemoryStore, NewToken, PermissionSet, Policy, RequestContext,
    SecretFormat, Status, TokenName, TokenUpdate, Tokens, UserId, clock::Clock, clock::ManualClock,
    events::CollectEvents, secret::SecretHash,
};
use time::Duration;
use time::macros::datetime;

#[test]
fn nothing_printable_holds_a_secret_or_a_full_hash() {
    for policy in [Policy::default(), Policy::zabbix(), Policy::cpanel()] {
        let events = Arc::new(CollectEvents::new());
        let clock = Arc::new(ManualClock::new(datetime!(2030-01-01 0:00 UTC)));
        let key = HashKey::new([5; 32]);
        let tokens = Tokens::new(MemoryStore::new())
            .with_policy(policy.clone())
            .with_hash_key(key.clone())
            .with_clock(clock.clone())
            .with_events(events.clone());
        let admin = Actor::admin(UserId::from(1));
        let issued = tokens
            .issue(
                &admin,
                NewToken::new(TokenName::new("h").unwrap())
                    .permissions(PermissionSet::all())
                    .allowlist("10.0.0.0/8".parse().unwrap())
                    .expires_at(clock.now() + Duration::days(1)),
            )
            .unwrap();
        let secret = issued.secret.expose().to_owned();
        let rotated = tokens
            .generate_with(
                &admin,
                [issued.token.id],
                Duration::hours(1),
                &mut rand::rng(),
            )
            .unwrap();
        let new_secret = rotated[0].1.expose().to_owned();
        let hash = SecretHash::of(&key, &policy.secret_format.parse(&secret).unwrap());
        let new_hash = SecretHash::of(&key, &policy.secret_format.parse(&new_secret).unwrap());

        let mut printed: Vec<String> = Vec::new();
        let mut show = |d: String| printed.push(d);
        show(format!("{issued:?}"));
        show(format!("{rotated:?}"));
        show(format!("{:?}", issued.secret));
        show(format!("{hash:?}"));
        show(format!("{key:?}"));
        show(format!("{tokens:?}"));
        show(format!("{:?}", tokens.store()));
        let snapshot = tokens.store().snapshot();
        show(format!("{snapshot:?}"));
        show(format!("{:?}", policy.secret_format.parse(&secret)));
        for t in &snapshot.tokens {
            show(format!("{t:?}"));
            // What an API returns: the token's public view, serialized.
            show(serde_json::to_string(t).unwrap());
            show(serde_json::to_string(&t.view()).unwrap());
            show(format!("{:?}", t.view()));
        }
        // Every denial, and its public form.
        let ctx = RequestContext::from_ip("10.0.0.1".parse().unwrap());
        let elsewhere = RequestContext::from_ip("8.8.8.8".parse().unwrap());
        let attempts = [
            tokens.authenticate(&secret, &ctx),
            tokens.authenticate(&new_secret, &ctx),
            tokens.authenticate(&new_secret, &elsewhere),
            tokens.authenticate(&format!("{secret}x"), &ctx),
            tokens.authenticate_at(&new_secret, &ctx, clock.now() + Duration::days(2)),
        ];
        clock.advance(Duration::hours(2));
        let superseded = tokens.authenticate(&secret, &ctx);
        tokens
            .set_status(&admin, [issued.token.id], Status::Disabled)
            .unwrap();
        let disabled = tokens.authenticate(&new_secret, &ctx);
        for r in attempts.iter().chain([&superseded, &disabled]) {
            match r {
                Ok(g) => show(format!("{g:?}")),
                Err(d) => {
                    show(format!("{d:?}"));
                    show(d.to_string());
                    show(d.public().to_string());
                }
            }
        }
        // Management errors.
        let errors: Vec<Error> = vec![
            tokens
                .create(&admin, [NewToken::new(TokenName::new("h").unwrap())])
                .unwrap_err(),
            tokens
                .update(&admin, [TokenUpdate::new(api_tokens::TokenId::new(999))])
                .unwrap_err(),
        ];
        for e in &errors {
            show(format!("{e:?}"));
            show(e.to_string());
            show(serde_json::to_string(e).unwrap());
        }
        // A revealed token shows its secret only when serialized on purpose, never in Debug.
        let revealed = tokens
            .issue(
                &admin,
                NewToken::new(TokenName::new("r").unwrap()).permissions(PermissionSet::all()),
            )
            .unwrap()
            .reveal();
        show(format!("{revealed:?}"));
        show(format!("{:?}", HashKey::from_hex(&key.to_hex())));
        show(format!("{:?}", HashKey::from_hex(&key.to_hex()[1..])));
        for ev in events.take() {
            show(format!("{ev:?}"));
            show(serde_json::to_string(&ev).unwrap());
        }
        for p in &printed {
            for s in [&secret, &new_secret] {
                assert!(!p.contains(s.as_str()), "a secret leaked into: {p}");
            }
            for h in [hash, new_hash] {
                assert!(!p.contains(&h.to_hex()), "a full hash leaked into: {p}");
            }
            assert!(
                !p.contains(&format!("{:?}", key.expose())),
                "the hash key leaked into: {p}"
            );
        }
        assert!(printed.len() > 20);
    }
}

#[test]
fn hash_equality_is_exact_at_every_byte() {
    // Equality goes through blake3's constant-time comparison; this checks it is also exact
    // (a difference in the first or last byte is a difference).
    let a = SecretHash::from_bytes([7; 32]);
    for i in [0, 15, 31] {
        let mut b = [7u8; 32];
        b[i] ^= 1;
        assert_ne!(a, SecretHash::from_bytes(b));
    }
    assert_eq!(a, SecretHash::from_bytes([7; 32]));
}

#[test]
fn generated_secrets_are_never_equal() {
    let f = SecretFormat::default();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10_000 {
        assert!(seen.insert(f.generate().expose().to_owned()));
    }
}
