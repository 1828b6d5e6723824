//! [`AsyncTokens`]: the management API as `async` methods, for hosts on tokio (feature
//! `tokio`, on with `postgres`); [`Blocking`]: the one way this workspace runs a sync call on
//! tokio's blocking pool.
//!
//! Authentication against a [`MemoryStore`](crate::MemoryStore) or a replica of a PostgreSQL
//! store does no I/O (they answer from memory), so it stays a plain call, fine inside any
//! async handler. (Over a store that looks tokens up in a database, such as a bare
//! `PostgresStore` or a `SqliteStore`, each authentication waits for that lookup on the
//! calling thread: async hosts use a replica.) Management reaches the database: each method runs the sync
//! call on tokio's blocking pool (`spawn_blocking`) and awaits it, so the executor's threads
//! are never blocked, on a multi-threaded or a current-thread runtime alike. Outside a tokio
//! runtime the call runs in place.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::{JoinError, JoinHandle};

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

/// A sync call on tokio's blocking pool, as a future: [`Blocking::spawn`] starts it, awaiting
/// it gives its result. The one place the workspace hands sync work to the blocking pool
/// (management here, the `api-tokens-axum` layer's blocking mode and its self-service API),
/// so what happens when that work cannot complete is decided once:
///
/// * **It panicked** (in a host's store, directory or event sink): the panic stays on the
///   blocking thread and the caller gets [`Error::Store`] (a backend error, code
///   `store_unavailable`, whose source says it panicked), as for any store failure. Whether
///   the call took effect is not known (a batch still committed whole or not at all).
/// * **The runtime shut down** before it ran: the same error, its source saying so.
/// * **Dropping the future** does not stop the call (a blocking task cannot be interrupted):
///   it runs to its end and its result is dropped, so a started batch still commits or fails
///   as a whole.
/// * **Outside a tokio runtime** the call runs in place, in `spawn`, and the future is ready.
///
/// The future is named (no box around it), `Unpin`, `Send` when `T` is, and two words wide
/// whatever `T` is (a result computed in place waits in a box), so a service's response
/// future that may hold one stays as small as its other states.
///
/// ```
/// use api_tokens::Blocking;
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let sum = Blocking::spawn(|| (1..=10).sum::<u32>()).await?;
/// assert_eq!(sum, 55);
/// let failed = Blocking::spawn(|| -> u32 { panic!("a store bug") }).await.unwrap_err();
/// assert_eq!(failed.code(), "store_unavailable");
/// # Ok::<(), api_tokens::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a blocking call's result is only known by awaiting it"]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct Blocking<T> {
    state: State<T>,
}

enum State<T> {
    Spawned(JoinHandle<T>),
    Ready(Box<T>),
    Done,
}

// Nothing of `T` is ever pinned: the result is moved out when it is ready.
impl<T> Unpin for Blocking<T> {}

impl<T> std::fmt::Debug for Blocking<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Spawned(_) => "spawned",
            State::Ready(_) => "ready",
            State::Done => "done",
        };
        f.debug_struct("Blocking").field("state", &state).finish()
    }
}

impl<T: Send + 'static> Blocking<T> {
    /// Runs `op` on tokio's blocking pool (`spawn_blocking`) inside a runtime, in place
    /// outside one.
    pub fn spawn(op: impl FnOnce() -> T + Send + 'static) -> Self {
        let state = match tokio::runtime::Handle::try_current() {
            Ok(handle) => State::Spawned(handle.spawn_blocking(op)),
            Err(_) => State::Ready(Box::new(op())),
        };
        Self { state }
    }
}

impl<T> Future for Blocking<T> {
    /// `op`'s result, or [`Error::Store`] when it could not complete (see the type's docs).
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        Poll::Ready(match std::mem::replace(&mut this.state, State::Done) {
            State::Spawned(mut handle) => match Pin::new(&mut handle).poll(cx) {
                Poll::Pending => {
                    this.state = State::Spawned(handle);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(value)) => Ok(value),
                Poll::Ready(Err(e)) => Err(not_completed(NotCompleted::from(e))),
            },
            State::Ready(value) => Ok(*value),
            State::Done => Err(not_completed(NotCompleted::PolledAgain)),
        })
    }
}

/// Why a [`Blocking`] call did not complete; nothing is known to have changed.
#[derive(Debug, thiserror::Error)]
enum NotCompleted {
    #[error("the call did not complete: it panicked on the blocking pool")]
    Panicked(#[source] JoinError),
    #[error("the call did not complete: the runtime shut down first")]
    Cancelled(#[source] JoinError),
    #[error("the call's result was already taken (its future was polled again)")]
    PolledAgain,
}

impl From<JoinError> for NotCompleted {
    fn from(e: JoinError) -> Self {
        if e.is_panic() {
            Self::Panicked(e)
        } else {
            Self::Cancelled(e)
        }
    }
}

fn not_completed(why: NotCompleted) -> Error {
    Error::Store(StoreError::backend(why))
}

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
    /// inside a runtime, in place outside one ([`Blocking`]). For calls this type has no
    /// method for; `op` may fail with any error a core [`Error`] converts into (a host's own
    /// error type, say).
    ///
    /// # Errors
    /// `op`'s own, and a store error if the call could not complete (it panicked, or the
    /// runtime is shutting down).
    pub async fn run<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Tokens<S>) -> Result<T, E> + Send + 'static,
    {
        let tokens = self.tokens.clone();
        Blocking::spawn(move || op(&tokens)).await?
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

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    fn chain(e: &Error) -> String {
        let mut out = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            out = format!("{out}: {s}");
            source = s.source();
        }
        out
    }

    #[test]
    fn a_call_runs_on_the_blocking_pool_inside_a_runtime_and_in_place_outside() {
        let caller = std::thread::current().id();
        let inside = runtime()
            .block_on(async { Blocking::spawn(move || std::thread::current().id()).await })
            .unwrap();
        assert_ne!(inside, caller, "inside a runtime: on a pool thread");
        let outside = Blocking::spawn(move || std::thread::current().id());
        assert!(matches!(outside.state, State::Ready(_)), "ready at once");
        assert_eq!(runtime().block_on(outside).unwrap(), caller, "in place");
    }

    #[test]
    fn a_panic_is_a_store_error_and_the_runtime_goes_on() {
        let rt = runtime();
        let e = rt
            .block_on(async { Blocking::spawn(|| -> u8 { panic!("a store bug") }).await })
            .unwrap_err();
        assert_eq!(e.code(), "store_unavailable");
        assert!(chain(&e).contains("panicked"), "{}", chain(&e));
        let next = rt.block_on(async { Blocking::spawn(|| 7).await });
        assert_eq!(next.unwrap(), 7);
    }

    #[test]
    fn a_call_the_runtime_never_runs_is_an_error_not_a_hang() {
        let rt = runtime();
        let handle = rt.handle().clone();
        rt.shutdown_background();
        let call = {
            let _inside = handle.enter();
            Blocking::spawn(|| 7)
        };
        let e = runtime().block_on(call).unwrap_err();
        assert_eq!(e.code(), "store_unavailable");
        assert!(chain(&e).contains("shut down"), "{}", chain(&e));
    }

    #[test]
    fn the_future_is_two_words_whatever_it_carries() {
        assert_eq!(
            std::mem::size_of::<Blocking<[u8; 1024]>>(),
            2 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn polled_again_after_its_result_is_an_error_not_a_panic() {
        let mut call = Blocking::spawn(|| 7);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(matches!(
            Pin::new(&mut call).poll(&mut cx),
            Poll::Ready(Ok(7))
        ));
        match Pin::new(&mut call).poll(&mut cx) {
            Poll::Ready(Err(e)) => assert_eq!(e.code(), "store_unavailable"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_takes_the_hosts_own_error_type() {
        #[derive(Debug)]
        struct Host(#[allow(dead_code)] Error);
        impl From<Error> for Host {
            fn from(e: Error) -> Self {
                Self(e)
            }
        }
        let tokens = AsyncTokens::new(Tokens::in_memory());
        let rt = runtime();
        let ok: Result<usize, Host> = rt.block_on(tokens.run(|t| Ok(t.store().len())));
        assert_eq!(ok.unwrap(), 0);
        let failed: Result<(), Host> = rt.block_on(tokens.run(|_| panic!("a host bug")));
        assert_eq!(failed.unwrap_err().0.code(), "store_unavailable");
    }
}
