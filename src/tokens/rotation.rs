//! Hash keys at work: the check that a store's hashes were made under keys this
//! `Tokens` holds, the miss path of authentication (older keys, imported legacy hashes), and
//! the re-hash of a token under the current key after it authenticated some other way.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::{ATTEMPTS, Tokens};
use crate::check::{Denial, Grant};
use crate::error::{Result, StoreError};
use crate::events::{EventKind, TokenEvent};
use crate::keys::{HashKeyReport, KeyUsage, MAX_OLD_KEYS};
use crate::secret::{HashKey, SecretHash};
use crate::store::{Candidate, Change, Matched, TokenStore};
use crate::token::{LastUse, TokenId, whole_seconds};

/// The outcome of the hash-key check, shared by every authentication of a `Tokens` (and reset
/// when its keys change). Only a definitive outcome is kept: a store that failed to answer is
/// asked again, by one authentication at a time and at most once per [`RETRY_AFTER`]; the
/// requests in between are refused with the same error (the check has not passed). Without
/// that, a database hiccup would turn every request into a count over every token.
#[derive(Clone, Default)]
pub(super) struct KeyCheck {
    outcome: Arc<OnceLock<std::result::Result<(), Arc<StoreError>>>>,
    /// Held while the check runs, so concurrent first requests run it once; and the last
    /// failure that asking again may change, with when it happened.
    running: Arc<Mutex<Option<Failure>>>,
    too_many_old_keys: bool,
}

/// A failure of the check that asking again may change, and when it happened.
type Failure = (Instant, Arc<StoreError>);

/// How long a check that failed for a reason asking again may change (a backend error) is not
/// run again.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

impl KeyCheck {
    /// A fresh check for changed keys.
    pub(super) fn reset(&self) -> Self {
        Self {
            outcome: Arc::default(),
            running: Arc::default(),
            too_many_old_keys: self.too_many_old_keys,
        }
    }

    /// Records that the host gave more old keys than [`MAX_OLD_KEYS`].
    pub(super) fn too_many_old_keys(&mut self) {
        self.too_many_old_keys = true;
    }

    /// Whether the check passed, running it with `run` when it has no outcome yet. One atomic
    /// load once it has one: this is on every authentication's path.
    #[inline]
    pub(super) fn passed(
        &self,
        run: impl FnOnce() -> std::result::Result<(), StoreError>,
    ) -> std::result::Result<(), Denial> {
        match self.outcome.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Denial::Store(e.clone())),
            None => self.first(run),
        }
    }

    #[cold]
    #[inline(never)]
    fn first(
        &self,
        run: impl FnOnce() -> std::result::Result<(), StoreError>,
    ) -> std::result::Result<(), Denial> {
        let mut last_failure = self.running.lock().unwrap_or_else(|p| p.into_inner());
        // Another request may have run it while this one waited.
        match self.outcome.get() {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => return Err(Denial::Store(e.clone())),
            None => {}
        }
        if let Some((at, e)) = &*last_failure
            && at.elapsed() < RETRY_AFTER
        {
            return Err(Denial::Store(e.clone()));
        }
        match run() {
            Ok(()) => {
                let _ = self.outcome.set(Ok(()));
                *last_failure = None;
                Ok(())
            }
            Err(e) => {
                let e = Arc::new(e);
                if is_definitive(&e) {
                    let _ = self.outcome.set(Err(e.clone()));
                } else {
                    *last_failure = Some((Instant::now(), e.clone()));
                }
                Err(Denial::Store(e))
            }
        }
    }

    fn record(&self, outcome: &std::result::Result<(), StoreError>) {
        match outcome {
            Ok(()) => {
                let _ = self.outcome.set(Ok(()));
            }
            Err(e) if is_definitive(e) => {
                let _ = self.outcome.set(Err(Arc::new(clone_definitive(e))));
            }
            Err(_) => {}
        }
    }
}

/// An outcome that asking again will not change: the configuration is wrong.
fn is_definitive(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::HashKeysMissing { .. } | StoreError::Config(_)
    )
}

fn clone_definitive(e: &StoreError) -> StoreError {
    match e {
        StoreError::HashKeysMissing {
            missing,
            legacy,
            held,
        } => StoreError::HashKeysMissing {
            missing: missing.clone(),
            legacy: legacy.clone(),
            held: held.clone(),
        },
        other => StoreError::Config(other.to_string()),
    }
}

impl<S: TokenStore> Tokens<S> {
    /// Whether the current hash key is the public [`HashKey::default`]. Acceptable only where
    /// the secrets' own 256 bits are their only protection by choice: with the default key a
    /// stolen database lets anyone test guesses offline, and a sealed snapshot can be forged.
    /// [`Tokens::check_hash_keys`] reports it too (an event, and its report).
    pub fn uses_default_key(&self) -> bool {
        self.config.keys.current_id() == HashKey::default().id()
    }

    /// The keys this `Tokens` holds and how many of the store's hashes each one (and each
    /// imported legacy scheme) still backs, without judging them: what an operator reads to
    /// know when an old key can be dropped ([`HashKeyReport::hashes_under`]).
    ///
    /// # Errors
    /// Store failures.
    pub fn hash_key_report(&self) -> Result<HashKeyReport> {
        Ok(self.report()?)
    }

    fn report(&self) -> std::result::Result<HashKeyReport, StoreError> {
        let usage = self.store.key_usage(self.config.clock.now())?;
        Ok(HashKeyReport {
            current: self.config.keys.current_id(),
            current_is_default: self.uses_default_key(),
            old: self.config.keys.old_ids(),
            legacy: self.config.keys.legacy().to_vec(),
            usage,
        })
    }

    /// The startup check: compares how the store's hashes were made with the keys this
    /// `Tokens` holds, and refuses — naming every key id it lacks — a store whose hashes it
    /// could never match, instead of answering every one of those tokens "unknown" (a silent
    /// lockout after a key typo, a lost key, a default left in place). Call it once when the
    /// service starts; if the host does not, the first authentication runs it, and every
    /// authentication fails with its error ([`Denial::Store`]) until the keys are fixed.
    ///
    /// It sends an [`EventKind::HashKeysChecked`] event saying which key is current, whether it
    /// is the public default, and how many hashes are not yet under it.
    ///
    /// ```
    /// use api_tokens::{Actor, HashKey, NewToken, StoreError, Tokens, UserId, Error};
    /// let a = HashKey::new([1; 32]);
    /// let tokens = Tokens::in_memory().with_hash_key(a.clone());
    /// let alice = Actor::user(UserId::new("alice")?);
    /// tokens.issue(&alice, NewToken::new("ci".parse()?).permissions("deploy".parse()?))?;
    /// let saved = tokens.sealed_snapshot();
    ///
    /// // The same data under another key: refused at startup, naming the key it needs.
    /// let wrong = Tokens::in_memory().with_hash_key(HashKey::new([2; 32]));
    /// wrong.store().restore(saved.clone().open(&a)?)?; // (a host bypassing the check)
    /// let err = wrong.check_hash_keys().unwrap_err();
    /// assert!(matches!(&err, Error::Store(StoreError::HashKeysMissing { missing, .. })
    ///     if missing[0].0 == a.id()));
    ///
    /// // Rotation: a new current key, the old one kept for verification.
    /// let rotated = Tokens::in_memory().with_hash_key(HashKey::new([2; 32])).with_old_hash_key(a.clone());
    /// rotated.restore_sealed_under_old_key(saved)?; // sealed under a, before the rotation
    /// let report = rotated.check_hash_keys()?;
    /// assert_eq!(report.hashes_under(a.id()), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`StoreError::HashKeysMissing`] when stored hashes were made under keys this `Tokens`
    /// does not hold, or in legacy schemes it does not honour; [`StoreError::Config`] for more
    /// than [`MAX_OLD_KEYS`] old keys; store failures.
    pub fn check_hash_keys(&self) -> Result<HashKeyReport> {
        let report = self.report()?;
        let outcome = self.judge(&report);
        self.config.key_check.record(&outcome);
        outcome?;
        Ok(report)
    }

    /// The check as the first authentication runs it.
    pub(super) fn run_key_check(&self) -> std::result::Result<(), StoreError> {
        let report = self.report()?;
        self.judge(&report)
    }

    /// Reports the check's findings as an event and says whether they pass.
    fn judge(&self, report: &HashKeyReport) -> std::result::Result<(), StoreError> {
        let missing = report.missing_keys();
        self.config.events.record(TokenEvent {
            at: self.now(),
            actor: None,
            token: None,
            owner: None,
            kind: EventKind::HashKeysChecked {
                current: report.current,
                default_key: report.current_is_default,
                old: report.old.clone(),
                not_current: report.not_current(),
                unrecorded: report.unrecorded(),
                missing: missing.iter().map(|(k, _)| *k).collect(),
            },
        });
        if self.config.key_check.too_many_old_keys {
            return Err(StoreError::Config(format!(
                "more than {MAX_OLD_KEYS} old hash keys"
            )));
        }
        self.keys_cover(&report.usage)
    }

    /// Refuses hashes made under keys (or legacy schemes) this `Tokens` does not hold.
    pub(super) fn keys_cover(&self, usage: &[KeyUsage]) -> std::result::Result<(), StoreError> {
        let report = HashKeyReport {
            current: self.config.keys.current_id(),
            current_is_default: false,
            old: self.config.keys.old_ids(),
            legacy: self.config.keys.legacy().to_vec(),
            usage: usage.to_vec(),
        };
        let missing = report.missing_keys();
        let legacy = report.missing_legacy();
        if missing.is_empty() && legacy.is_empty() {
            return Ok(());
        }
        let mut held = vec![self.config.keys.current_id()];
        held.extend(self.config.keys.old_ids());
        Err(StoreError::HashKeysMissing {
            missing,
            legacy,
            held,
        })
    }

    /// Whether `presented` passes a format check: the policy's format, or the shape of an
    /// honoured legacy scheme.
    pub(super) fn accepts_shape(&self, presented: &str) -> bool {
        self.config.policy.secret_format.parse(presented).is_ok()
            || self.config.keys.accepts_legacy_shape(presented)
    }

    /// Looks a presented secret up every way it may be stored (the current key, then the miss
    /// path), calling `check` with the first record found; returns the hash that found it.
    pub(super) fn find_hash(
        &self,
        presented: &str,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> std::result::Result<Option<SecretHash>, StoreError> {
        for hash in self.every_hash(presented) {
            if self.store.authenticate(&hash, check)? {
                return Ok(Some(hash));
            }
        }
        Ok(None)
    }

    /// Every hash a token may hold `presented` under: the ordinary hash under the current
    /// key, then the miss path's (old keys, honoured legacy schemes under every key held).
    pub(super) fn every_hash<'a>(
        &'a self,
        presented: &'a str,
    ) -> impl Iterator<Item = SecretHash> + 'a {
        std::iter::once(SecretHash::of_text(self.config.keys.current(), presented))
            .chain(self.config.keys.miss_attempts(presented).map(|(h, _)| h))
    }

    /// Authentication after the ordinary hash under the current key found nothing: ordinary
    /// hashes under old keys, then imported legacy hashes. Ordinary tokens never come here.
    #[cold]
    #[inline(never)]
    pub(super) fn decide_miss(
        &self,
        presented: &str,
        ip: Option<std::net::IpAddr>,
        now: OffsetDateTime,
    ) -> std::result::Result<Grant, Denial> {
        for (hash, _) in self.config.keys.miss_attempts(presented) {
            let mut found = super::authentication::Found::default();
            self.try_hash(&hash, ip, now, &mut found)?;
            if let Some(r) = found.decision {
                self.after_found(&r, &hash, found.matched, presented, now);
                return r;
            }
        }
        Err(Denial::Unknown)
    }

    /// After a record was found some other way than by the current key's ordinary hash under
    /// that scheme: a success moves the token onto the current key.
    #[cold]
    #[inline(never)]
    pub(super) fn after_found(
        &self,
        r: &std::result::Result<Grant, Denial>,
        found: &SecretHash,
        matched: Matched,
        presented: &str,
        now: OffsetDateTime,
    ) {
        if let Ok(grant) = r {
            self.rehash(grant.token, matched, found, presented, now);
        }
    }

    /// Re-hashes the secret of `id` that `found` matched (its current one, or its previous one
    /// in a grace period) under the current key, the ordinary way. Race-free with the revision
    /// rule: the token is re-read, the write happens only if the same slot still holds
    /// `found`, and the store refuses the write if the token changed after that read (a
    /// regenerate, a revocation); then it is read again, and a token whose secret moved on is
    /// left alone. So a concurrent regenerate is never undone, and a secret it replaced never
    /// comes back. An imported token's origin is made again under the current key with it
    /// (`HashKeys::refreshed_origin`). Best effort: a failure leaves
    /// the old hash, and the next success tries again.
    fn rehash(
        &self,
        id: TokenId,
        matched: Matched,
        found: &SecretHash,
        presented: &str,
        now: OffsetDateTime,
    ) {
        let to = self.config.keys.current_scheme();
        let new = SecretHash::of_text(self.config.keys.current(), presented);
        for _ in 0..ATTEMPTS {
            let Ok(Some(mut t)) = self.store.get(id) else {
                return;
            };
            let Some(secret) = t.secret.as_mut() else {
                return;
            };
            let from = match matched {
                Matched::Current if secret.hash == *found => {
                    let from = secret.scheme;
                    secret.hash = new;
                    secret.scheme = to;
                    from
                }
                Matched::Previous { .. } => match secret.previous.as_mut() {
                    Some(p) if p.hash == *found => {
                        let from = p.scheme;
                        p.hash = new;
                        p.scheme = to;
                        from
                    }
                    _ => return,
                },
                _ => return,
            };
            // The token's import origin follows it onto the current key while its secret is
            // still the imported one, so that dropping the old key later does not end the
            // refusal of a second import of the same hash.
            #[cfg(feature = "legacy")]
            if let Some(origin) = t.imported_from
                && let Some(fresh) = self.config.keys.refreshed_origin(origin, presented)
            {
                t.imported_from = Some(fresh);
            }
            match self.store.apply_rehash(vec![Change::Replace(t.clone())]) {
                Ok(()) => {
                    self.config.events.record(TokenEvent {
                        at: whole_seconds(now),
                        actor: None,
                        token: Some(t.id),
                        owner: Some(t.owner.clone()),
                        kind: EventKind::Rehashed { from, to },
                    });
                    return;
                }
                Err(StoreError::Conflict(_)) => {}
                Err(_) => return,
            }
        }
    }
}
