//! A store that hands every call to another one, running a hook first where a test needs to
//! interleave, count or fail a call. One delegating wrapper instead of one per test file.

use std::sync::Mutex;

use api_tokens::store::{Candidate, Change, Query, TokenStore};
use api_tokens::{
    StoreError, Token, TokenId, TokenName, UserId, keys::KeyUsage, legacy::ImportOrigin,
    secret::SecretHash, token::LastUse,
};
use time::OffsetDateTime;

type Hook<A, R> = Box<dyn Fn(A) -> R + Send + Sync>;

/// `inner` with hooks before `apply`, `authenticate` and `key_usage`.
pub struct Hooked<S> {
    pub inner: S,
    before_apply: Hook<ApplyBatch, ()>,
    on_authenticate: Hook<(), ()>,
    after_authenticate: Hook<bool, bool>,
    on_key_usage: Hook<(), Result<(), StoreError>>,
}

/// What `before_apply` hooks see of a batch.
pub struct ApplyBatch {
    /// Whether the batch replaces a record (a re-hash, an update, a revocation).
    pub replaces: bool,
    /// Whether it inserts one (a create, an import).
    pub inserts: bool,
    /// How many changes it holds.
    pub changes: usize,
}

impl<S> Hooked<S> {
    /// `inner` with no hooks.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            before_apply: Box::new(|_| ()),
            on_authenticate: Box::new(|()| ()),
            after_authenticate: Box::new(|found| found),
            on_key_usage: Box::new(|()| Ok(())),
        }
    }

    /// Runs `hook` once, just before the first batch that replaces a record reaches `inner`:
    /// another caller's change interleaved with a write the library prepared.
    pub fn before_first_replace(self, hook: impl FnOnce() + Send + 'static) -> Self {
        let hook = Mutex::new(Some(hook));
        Self {
            before_apply: Box::new(move |batch: ApplyBatch| {
                if batch.replaces
                    && let Some(hook) = hook.lock().unwrap().take()
                {
                    hook();
                }
            }),
            ..self
        }
    }

    /// Runs `hook` once, just before the first batch that inserts a record reaches `inner`.
    pub fn before_first_insert(self, hook: impl FnOnce() + Send + 'static) -> Self {
        let hook = Mutex::new(Some(hook));
        Self {
            before_apply: Box::new(move |batch: ApplyBatch| {
                if batch.inserts
                    && let Some(hook) = hook.lock().unwrap().take()
                {
                    hook();
                }
            }),
            ..self
        }
    }

    /// Runs `hook` before every batch reaches `inner`.
    pub fn on_apply(self, hook: impl Fn(ApplyBatch) + Send + Sync + 'static) -> Self {
        Self {
            before_apply: Box::new(hook),
            ..self
        }
    }

    /// Runs `hook` before every lookup by hash.
    pub fn on_authenticate(self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            on_authenticate: Box::new(move |()| hook()),
            ..self
        }
    }

    /// Passes what `inner`'s lookup by hash answered (found or not) through `map`: a store
    /// that reports a miss after it called the check (a replica that went stale meanwhile).
    pub fn map_found(self, map: impl Fn(bool) -> bool + Send + Sync + 'static) -> Self {
        Self {
            after_authenticate: Box::new(map),
            ..self
        }
    }

    /// Runs `hook` before every key count; its error is returned instead of asking `inner`.
    pub fn on_key_usage(
        self,
        hook: impl Fn() -> Result<(), StoreError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            on_key_usage: Box::new(move |()| hook()),
            ..self
        }
    }
}

impl<S: TokenStore> TokenStore for Hooked<S> {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        self.inner.reserve_ids(n)
    }
    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        (self.before_apply)(ApplyBatch {
            replaces: changes.iter().any(|c| matches!(c, Change::Replace(_))),
            inserts: changes.iter().any(|c| matches!(c, Change::Insert(_))),
            changes: changes.len(),
        });
        self.inner.apply(changes)
    }
    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.inner.get(id)
    }
    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError> {
        self.inner.find_name(owner, name)
    }
    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        self.inner.query(query, now)
    }
    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.inner.count(query, now)
    }
    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError> {
        (self.on_authenticate)(());
        let found = self.inner.authenticate(hash, check)?;
        Ok((self.after_authenticate)(found))
    }
    fn key_usage(&self, now: OffsetDateTime) -> Result<Vec<KeyUsage>, StoreError> {
        (self.on_key_usage)(())?;
        self.inner.key_usage(now)
    }
    fn find_imported(
        &self,
        origins: &[ImportOrigin],
    ) -> Result<Vec<(TokenId, ImportOrigin)>, StoreError> {
        self.inner.find_imported(origins)
    }
}
