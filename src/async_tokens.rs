//! [`AsyncTokens`]: the management API as `async` methods, for hosts on tokio (feature
//! `tokio`, on with `postgres`).
//!
//! Authentication against a [`MemoryStore`](crate::MemoryStore) or a replica of a PostgreSQL
//! store does no I/O (they answer from memory), so it stays a plain call, fine inside any
//! async handler. (Over a store that looks tokens up in a database, such as a bare
//! `PostgresStore` or a `SqliteStore`, each authentication waits for that lookup on the
//! calling thread: async hosts use a replica.) Management reaches the database: each method runs the sync
//! call on tokio's blocking pool (`spawn_blocking`) and awaits it, so the executor's threads
//! are never blocked, on a multi-threaded or a current-thread runtime alike. Outside a tokio
//! runtime the call runs in place.

use crate::actor::Actor;
use crate::check::{Denial, Grant, RequestContext};
use crate::error::{Error, Result, StoreError};
use crate::secret::TokenSecret;
use crate::store::{MemoryStore, Query, TokenStore};
use crate::token::{Status, Token, TokenId};
use crate::tokens::{Issued, NewToken, Revocation, TokenUpdate, Tokens};

/// A [`Tokens`] shared between async tasks: cheap to clone, `authenticate` a plain call,
/// management `async`.
///
/// ```
/// use api_tokens::{Actor, AsyncTokens, NewToken, RequestContext, Tokens, UserId};
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let tokens = AsyncTokens::new(Tokens::in_memory());
/// let alice = Actor::user(UserId::new("alice")?);
/// let ci = NewToken::new("ci".parse()?).permissions("deploy".parse()?);
/// let issued = tokens.issue(alice, ci).await?;
/// let grant = tokens.authenticate(issued.secret.expose(), &RequestContext::unknown_address())?;
/// assert_eq!(grant.owner.as_str(), "alice");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct AsyncTokens<S = MemoryStore> {
    // `Tokens` is itself a cheap, shared handle: a clone shares the store and configuration.
    tokens: Tokens<S>,
}

impl<S> Clone for AsyncTokens<S> {
    fn clone(&self) -> Self {
        Self {
            tokens: self.tokens.clone(),
        }
    }
}

/// A management call failed to run at all (it panicked in a host callback, or the runtime is
/// shutting down); nothing is known to have changed.
#[derive(Debug, thiserror::Error)]
#[error("management call did not complete")]
struct NotCompleted(#[source] tokio::task::JoinError);

impl<S: TokenStore + 'static> AsyncTokens<S> {
    /// Shares `tokens`.
    pub fn new(tokens: Tokens<S>) -> Self {
        Self { tokens }
    }

    /// The sync API underneath.
    pub fn tokens(&self) -> &Tokens<S> {
        &self.tokens
    }

    /// Runs `op` on the sync API without blocking the executor: on tokio's blocking pool
    /// inside a runtime, in place outside one. For calls this type has no method for.
    ///
    /// # Errors
    /// `op`'s own, and a store error if the call could not complete (it panicked, or the
    /// runtime is shutting down).
    pub async fn run<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tokens<S>) -> Result<T> + Send + 'static,
    {
        let tokens = self.tokens.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || op(&tokens))
                .await
                .map_err(|e| Error::Store(StoreError::backend(NotCompleted(e))))?,
            Err(_) => op(&tokens),
        }
    }

    /// [`Tokens::authenticate`]: a plain call, with no I/O over a `MemoryStore` or a replica
    /// (see the module docs for stores that read a database).
    ///
    /// # Errors
    /// A [`Denial`].
    pub fn authenticate(&self, presented: &str, ctx: &RequestContext) -> Result<Grant, Denial> {
        self.tokens.authenticate(presented, ctx)
    }

    /// [`Tokens::create`].
    ///
    /// # Errors
    /// As [`Tokens::create`].
    pub async fn create(&self, actor: Actor, items: Vec<NewToken>) -> Result<Vec<TokenId>> {
        self.run(move |t| t.create(&actor, items)).await
    }

    /// [`Tokens::issue`].
    ///
    /// # Errors
    /// As [`Tokens::issue`].
    pub async fn issue(&self, actor: Actor, item: NewToken) -> Result<Issued> {
        self.run(move |t| t.issue(&actor, item)).await
    }

    /// [`Tokens::generate`].
    ///
    /// # Errors
    /// As [`Tokens::generate`].
    pub async fn generate(
        &self,
        actor: Actor,
        ids: Vec<TokenId>,
    ) -> Result<Vec<(TokenId, TokenSecret)>> {
        self.run(move |t| t.generate(&actor, ids)).await
    }

    /// [`Tokens::update`].
    ///
    /// # Errors
    /// As [`Tokens::update`].
    pub async fn update(&self, actor: Actor, updates: Vec<TokenUpdate>) -> Result<Vec<TokenId>> {
        self.run(move |t| t.update(&actor, updates)).await
    }

    /// [`Tokens::set_status`] (mass enable/disable).
    ///
    /// # Errors
    /// As [`Tokens::set_status`].
    pub async fn set_status(
        &self,
        actor: Actor,
        ids: Vec<TokenId>,
        status: Status,
    ) -> Result<Vec<TokenId>> {
        self.run(move |t| t.set_status(&actor, ids, status)).await
    }

    /// [`Tokens::delete`].
    ///
    /// # Errors
    /// As [`Tokens::delete`].
    pub async fn delete(&self, actor: Actor, ids: Vec<TokenId>) -> Result<Vec<TokenId>> {
        self.run(move |t| t.delete(&actor, ids)).await
    }

    /// [`Tokens::get`].
    ///
    /// # Errors
    /// As [`Tokens::get`].
    pub async fn get(&self, actor: Actor, id: TokenId) -> Result<Token> {
        self.run(move |t| t.get(&actor, id)).await
    }

    /// [`Tokens::list`].
    ///
    /// # Errors
    /// As [`Tokens::list`].
    pub async fn list(&self, actor: Actor, query: Query) -> Result<Vec<Token>> {
        self.run(move |t| t.list(&actor, &query)).await
    }

    /// [`Tokens::count`].
    ///
    /// # Errors
    /// As [`Tokens::count`].
    pub async fn count(&self, actor: Actor, query: Query) -> Result<usize> {
        self.run(move |t| t.count(&actor, &query)).await
    }

    /// [`Tokens::revoke_by_secret`]: revokes every token the secret opens, by any route, and
    /// says which ([`Revocation::tokens`]).
    ///
    /// # Errors
    /// As [`Tokens::revoke_by_secret`].
    pub async fn revoke_by_secret(&self, presented: String) -> Result<Revocation> {
        self.run(move |t| t.revoke_by_secret(&presented)).await
    }
}
