//! Authentication: what a presented secret does. The hot path (`authenticate_at` → `decide`
//! → `try_hash` → the store's callback), finding and revoking a token by its secret. The
//! miss path (older keys, legacy hashes) and re-hashing are in `rotation.rs`.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{Tokens, retrying};
use crate::actor::Actor;
use crate::check::{self, Denial, Grant, RequestContext};
use crate::error::{Error, Forbidden, Result, StoreError};
use crate::events::{EventKind, TokenEvent};
use crate::secret::SecretHash;
use crate::store::{Change, TokenStore};
use crate::token::{LastUse, Revoked, RevokedBy, Status, TokenId, whole_seconds};
use crate::tokens::{Revocation, TokenRevocation};

impl<S: TokenStore> Tokens<S> {
    /// Authenticates a presented secret at the clock's current instant.
    ///
    /// # Errors
    /// A [`Denial`] saying why (log it; tell the client only [`Denial::public`]).
    pub fn authenticate(&self, presented: &str, ctx: &RequestContext) -> Result<Grant, Denial> {
        self.authenticate_at(presented, ctx, self.config.clock.now())
    }

    /// Authenticates a presented secret at `now`. The checks, in order: the secret's format
    /// (before any hashing or lookup), a known secret, not superseded, enabled, not expired, owner
    /// known and active, client address allowed. On success the token's last use is recorded and
    /// the grant carries the token's permissions intersected with the owner's current rights.
    ///
    /// # Errors
    /// A [`Denial`] saying why.
    pub fn authenticate_at(
        &self,
        presented: &str,
        ctx: &RequestContext,
        now: OffsetDateTime,
    ) -> Result<Grant, Denial> {
        let ip = ctx.client_ip;
        let result = self.decide(presented, ip, now);
        #[cfg(feature = "metrics")]
        self.config.metrics.record(&result);
        if self.config.events.wants_auth_events() {
            let (token, owner, kind) = match &result {
                Ok(g) => (
                    Some(g.token),
                    Some(g.owner.clone()),
                    EventKind::Authenticated { ip },
                ),
                Err(d) => (
                    d.token(),
                    None,
                    EventKind::Denied {
                        reason: d.kind(),
                        ip,
                    },
                ),
            };
            self.config.events.record(TokenEvent {
                at: whole_seconds(now),
                actor: None,
                token,
                owner,
                kind,
            });
        }
        result
    }

    fn decide(
        &self,
        presented: &str,
        ip: Option<std::net::IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Grant, Denial> {
        let config = &*self.config;
        config.key_check.passed(|| self.run_key_check())?;
        if let Err(e) = config.policy.secret_format.parse(presented)
            && !config.keys.accepts_legacy_shape(presented)
        {
            return Err(Denial::Malformed(e));
        }
        let hash = SecretHash::of_text(config.keys.current(), presented);
        let mut found = Found::default();
        self.try_hash(&hash, ip, now, &mut found)?;
        match found.decision {
            // The ordinary hit: the record says its hash is the current key's own.
            Some(r) if found.scheme == config.keys.current_scheme() => r,
            // Found under the current key but labelled otherwise (unrecorded): label it.
            Some(r) => {
                self.after_found(&r, &hash, found.matched, presented, now);
                r
            }
            None => self.decide_miss(presented, ip, now),
        }
    }

    /// Looks `hash` up and decides on the record it finds, into `found` (left without a
    /// decision when no record has it). The outcome is written into the caller's frame, field
    /// by field, rather than returned through nested `Option`s and tuples: this runs on every
    /// authentication, and moving a ~100-byte value up through three frames (each copy reading
    /// back what the frame below had just written in narrower pieces) cost more than the
    /// checks themselves.
    pub(super) fn try_hash(
        &self,
        hash: &SecretHash,
        ip: Option<std::net::IpAddr>,
        now: OffsetDateTime,
        found: &mut Found,
    ) -> Result<(), Denial> {
        // Once, outside the store's callback (this runs on every authentication), and whole:
        // the callback hands back a copy of this value rather than one assembled field by field
        // (an `IpAddr` has byte alignment, and the store reading back a value written in odd
        // pieces stalled on every call).
        let use_now = LastUse {
            at: whole_seconds(now),
            ip,
        };
        let now_unix = now.unix_timestamp();
        let hit = self
            .store
            .authenticate(hash, &mut |candidate| {
                found.matched = candidate.matched;
                found.scheme = candidate.scheme;
                let r = check::decide_with(
                    &candidate,
                    now,
                    now_unix,
                    ip,
                    |u| self.config.directory.user(u),
                    |token, rights| self.config.memo.intersection(token, rights),
                );
                let used = r.is_ok().then_some(use_now);
                found.decision = Some(r);
                used
            })
            .map_err(|e| match e {
                StoreError::Stale { unconfirmed_for } => Denial::Stale { unconfirmed_for },
                e => Denial::Store(Arc::new(e)),
            })?;
        if !hit {
            found.decision = None;
        }
        Ok(())
    }

    /// [`Grant::spend`] at the clock's current instant: spends `cost` on the meter `meter` of
    /// the token `grant` is for.
    ///
    /// # Errors
    /// As [`Grant::spend`].
    pub fn spend(
        &self,
        grant: &Grant,
        meter: &str,
        cost: u64,
    ) -> Result<Vec<crate::limits::Remaining>, Denial> {
        grant.spend_at(meter, cost, self.config.clock.now())
    }

    /// The id of the token a presented secret belongs to, when the actor may see that token:
    /// Zabbix `token.get`'s `token` filter. A replaced secret still in its grace period counts.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the actor may not manage tokens; store failures.
    pub fn find_by_secret(&self, actor: &Actor, presented: &str) -> Result<Option<TokenId>> {
        if !actor.manage_tokens {
            return Err(Error::forbidden(None, Forbidden::CannotManageTokens));
        }
        if !self.accepts_shape(presented) {
            return Ok(None);
        }
        let now = self.config.clock.now();
        let mut hit = None;
        self.find_hash(presented, &mut |c| {
            if c.matched.is_live_at(now) && actor.may_manage(c.owner) {
                hit = Some(c.id);
            }
            None
        })?;
        Ok(hit)
    }

    /// Revokes, for good, every token a (leaked) secret belongs to, for hosts that receive
    /// leaked-secret reports. Needs no actor: holding the secret is the authority.
    ///
    /// Revocation by possession is final, by every route: the secret is looked up every way
    /// a token may hold it (its ordinary hash under the current key and under each old key
    /// held, and the hash of its digest in each honoured legacy scheme under each of those
    /// keys), and every token it opens is revoked in one all-or-nothing write: disabled,
    /// marked [`Token::revoked`](crate::Token::revoked) (when, and
    /// [`RevokedBy::Possession`]), and its secret hashes dropped, so the leaked secret is
    /// refused from the moment this returns, as an unknown one, whichever token it would have
    /// reached. No path enables such a token again or gives it a new secret
    /// ([`Error::Revoked`]); it stays listed, and a [`EventKind::RevokedBySecret`] event
    /// records it. A previous secret still in its grace period counts as its token's; one
    /// past it changes nothing ([`TokenRevocation::NoLongerValid`]). A secret that belongs to
    /// no token is a no-op that says so ([`Revocation::is_unknown`]).
    ///
    /// A token that changes between the lookup and the write is read again: it is revoked only
    /// if the secret still opens it.
    ///
    /// # Errors
    /// Store failures; nothing was revoked.
    pub fn revoke_by_secret(&self, presented: &str) -> Result<Revocation> {
        retrying(|| self.try_revoke_by_secret(presented))
    }

    fn try_revoke_by_secret(&self, presented: &str) -> Result<Revocation> {
        if !self.accepts_shape(presented) {
            return Ok(Revocation::default());
        }
        let now = self.now();
        // Every token the secret reaches, by every hash it may be stored under, with the
        // hashes that reached it still live at `now`.
        let mut reached: Vec<(TokenId, Vec<SecretHash>)> = Vec::new();
        for hash in self.every_hash(presented) {
            let mut hit = None;
            self.store.authenticate(&hash, &mut |c| {
                hit = Some((c.id, c.matched.is_live_at(now)));
                None
            })?;
            let Some((id, live)) = hit else { continue };
            let i = match reached.iter().position(|(t, _)| *t == id) {
                Some(i) => i,
                None => {
                    reached.push((id, Vec::new()));
                    reached.len() - 1
                }
            };
            if live && let Some((_, hashes)) = reached.get_mut(i) {
                hashes.push(hash);
            }
        }
        let mut outcome = Vec::with_capacity(reached.len());
        let mut revoked = Vec::new();
        for (id, live) in reached {
            // Read again: the token may have changed since the lookup. It is revoked only if
            // the presented secret still opens it (the store refuses the write if it changes
            // after this read).
            let Some(mut t) = self.store.get(id)? else {
                continue;
            };
            let still_live = t.secret.is_some_and(|s| {
                live.iter().any(|h| {
                    s.hash == *h
                        || s.previous
                            .is_some_and(|p| p.hash == *h && now < p.valid_until)
                })
            });
            if !still_live {
                outcome.push(TokenRevocation::NoLongerValid(id));
                continue;
            }
            outcome.push(match t.status {
                Status::Enabled => TokenRevocation::Disabled(id),
                Status::Disabled => TokenRevocation::AlreadyDisabled(id),
            });
            t.status = Status::Disabled;
            t.secret = None;
            t.revoked = Some(Revoked {
                at: now,
                by: RevokedBy::Possession,
            });
            revoked.push(t);
        }
        if !revoked.is_empty() {
            self.store
                .apply(revoked.iter().cloned().map(Change::Replace).collect())?;
        }
        for t in &revoked {
            self.emit(now, None, t, EventKind::RevokedBySecret);
        }
        Ok(Revocation::new(outcome))
    }
}

/// What one lookup by hash found (see `Tokens::try_hash`).
pub(super) struct Found {
    /// The decision on the record that holds the hash; `None` when none does.
    pub(super) decision: Option<std::result::Result<Grant, Denial>>,
    /// Which of the record's secrets matched.
    pub(super) matched: crate::store::Matched,
    /// How the record says the matched hash was made.
    pub(super) scheme: crate::keys::HashScheme,
}

impl Default for Found {
    fn default() -> Self {
        Self {
            decision: None,
            matched: crate::store::Matched::Current,
            scheme: crate::keys::HashScheme::UNRECORDED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::RequestContext;
    use crate::directory::StaticDirectory;
    use crate::directory::UserState;
    use crate::permission::PermissionSet;
    use crate::permission::tests::counting;
    use crate::policy::Policy;
    use crate::token::UserId;
    use crate::tokens::NewToken;

    /// Authentication costs do not grow with a token's permissions: with the owner lacking one
    /// of a 10,000-permission token's rights, intersecting the two on every request would cost
    /// milliseconds each, so the pair is intersected once and remembered; the count of `covers`
    /// tests proves it without a clock.
    #[test]
    fn a_token_of_many_permissions_is_intersected_once_not_per_request() {
        let n = 10_000;
        let names: Vec<String> = (0..n).map(|i| format!("g{i}.*")).collect();
        let owner = UserId::from(2);
        let directory = Arc::new(StaticDirectory::new());
        directory.set(
            owner.clone(),
            UserState::Active(PermissionSet::parse(names.iter().skip(1)).unwrap()),
        );
        let tokens = Tokens::in_memory()
            .with_policy(Policy {
                max_permissions: n,
                ..Policy::default()
            })
            .with_directory(directory);
        let issued = tokens
            .issue(
                &Actor::admin(UserId::from(1)),
                NewToken::new("big".parse().unwrap())
                    .owner(owner)
                    .permissions(PermissionSet::parse(&names).unwrap()),
            )
            .unwrap();
        let ctx = RequestContext::unknown_address();
        let lost = "g0.edit".parse().unwrap();
        let kept = "g9999.edit".parse().unwrap();
        let ((), work) = counting(|| {
            for _ in 0..100 {
                let grant = tokens.authenticate(issued.secret.expose(), &ctx).unwrap();
                assert_eq!(grant.permissions.len(), n - 1);
                assert!(!grant.allows(&lost), "the right the owner lost");
                assert!(grant.allows(&kept));
            }
        });
        // One intersection (about 2n tests) and two lookups per request; a hundred
        // intersections would be about 200n.
        assert!(work <= 4 * n as u64, "{work} covers tests for 100 requests");
    }
}
