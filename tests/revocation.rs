//! Revocation by possession (`Tokens::revoke_by_secret`): whoever holds a leaked secret can
//! revoke its token, for good. The token is disabled and its hash dropped; no path enables it
//! again or gives it a new secret; a secret in its grace period revokes the whole token; a
//! token that changed meanwhile is revoked only if the secret still opens it; and one call
//! revokes every token the secret opens, by whichever route (the current key, an old key, a
//! legacy scheme), in one write.

use api_tokens::{
    Actor, DenialKind, Error, EventKind, MemoryStore, NewToken, PermissionSet, Query, RevokedBy,
    SecretFormat, Status, Token, TokenId, TokenName, TokenRevocation, TokenStore, TokenUpdate,
    Tokens, UserId,
};
use time::{Duration, OffsetDateTime};

use crate::support::env::{env, kind};
use crate::support::{NOW, admin, clocked, from, name};

fn ctx() -> api_tokens::RequestContext {
    from("10.0.0.1")
}

#[test]
fn revoke_by_secret() {
    let e = env();
    let (id, s) = e.basic("leak");
    e.events.take();
    assert_eq!(
        e.tokens.revoke_by_secret(s.expose()).unwrap().tokens(),
        [TokenRevocation::Disabled(id)]
    );
    // Revoked for good: the leaked secret's hash is gone, so it is unknown from now on.
    assert_eq!(kind(e.auth(&s, from("10.0.0.1"))), DenialKind::Unknown);
    let t = e.tokens.get(&admin(), id).unwrap();
    assert_eq!(t.status, Status::Disabled);
    assert!(t.secret.is_none());
    assert_eq!(t.revoked.unwrap().at, NOW);
    assert!(e.tokens.revoke_by_secret(s.expose()).unwrap().is_unknown());
    // A disabled token whose secret leaks is revoked too.
    let (id3, s3) = e.basic("leak3");
    e.tokens
        .set_status(&admin(), [id3], Status::Disabled)
        .unwrap();
    assert_eq!(
        e.tokens.revoke_by_secret(s3.expose()).unwrap().tokens(),
        [TokenRevocation::AlreadyDisabled(id3)]
    );
    assert!(e.tokens.get(&admin(), id3).unwrap().revoked.is_some());
    let events = e.events.take();
    assert!(
        events
            .iter()
            .any(|ev| ev.kind == EventKind::RevokedBySecret && ev.token == Some(id))
    );
    let stranger = SecretFormat::Zabbix.generate();
    let before = e.tokens.store().inner.snapshot();
    assert!(
        e.tokens
            .revoke_by_secret(stranger.expose())
            .unwrap()
            .is_unknown()
    );
    assert!(e.tokens.revoke_by_secret("garbage").unwrap().is_unknown());
    assert_eq!(
        e.tokens.store().inner.snapshot(),
        before,
        "unknown is a no-op"
    );
    // A secret already replaced is reported, and the token is left alone.
    let (id2, old) = e.basic("leak2");
    e.tokens.generate(&admin(), [id2]).unwrap();
    assert_eq!(
        e.tokens.revoke_by_secret(old.expose()).unwrap().tokens(),
        [TokenRevocation::NoLongerValid(id2)]
    );
    assert_eq!(e.tokens.get(&admin(), id2).unwrap().status, Status::Enabled);
}

/// Revocation by possession is final on `store`: no update, mass enable or new secret brings
/// the token back (each is refused saying it is revoked), harmless edits stay possible, and
/// the leaked secret is unknown from then on.
fn revocation_is_final<S: TokenStore>(store: S) {
    let (tokens, clock, events) = clocked(store);
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

#[test]
fn revocation_by_possession_is_final_in_the_memory_store() {
    revocation_is_final(MemoryStore::new());
}

#[cfg(feature = "sqlite")]
#[test]
fn revocation_by_possession_is_final_in_sqlite() {
    let dir = crate::support::TempDir::new("revoke");
    revocation_is_final(
        api_tokens::store::sqlite::SqliteStore::open(dir.join("tokens.db")).unwrap(),
    );
}

#[test]
fn a_leaked_secret_in_its_grace_period_revokes_the_token() {
    let (tokens, clock, _) = clocked(MemoryStore::new());
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
    let (tokens, _, _) = clocked(store);
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

/// Tokens imported from Zabbix: a secret that opens tokens by different routes.
#[cfg(feature = "legacy")]
mod every_route {
    use std::sync::{Arc, Mutex};

    use api_tokens::{DenialKind, MemoryStore, Status, TokenRevocation, TokenStore};

    use crate::support::hooked::Hooked;
    use crate::support::keys::{key_a, key_b};
    use crate::support::legacy::{
        ZABBIX_SECRET as SECRET, an_unrecorded_twin, import, zabbix_row,
        zabbix_tokens_on as tokens_on,
    };
    use crate::support::{admin, ctx};

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

    #[test]
    fn on_a_memory_store() {
        every_token_the_secret_opens_is_revoked_at_once(MemoryStore::new());
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn on_a_sqlite_store() {
        every_token_the_secret_opens_is_revoked_at_once(
            api_tokens::store::sqlite::SqliteStore::open_in_memory().unwrap(),
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn on_postgres_and_on_a_replica() {
        use api_tokens::store::postgres::PostgresStore;
        use api_tokens::store::replica::{Replica, ReplicaOptions};
        let pg = crate::support::server!();
        every_token_the_secret_opens_is_revoked_at_once(
            PostgresStore::connect(&pg.create_db("every_route")).unwrap(),
        );
        every_token_the_secret_opens_is_revoked_at_once(
            Replica::start(
                PostgresStore::connect(&pg.create_db("every_route_replica")).unwrap(),
                ReplicaOptions::default(),
            )
            .unwrap(),
        );
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
}
