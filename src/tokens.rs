//! [`Tokens`]: the management and verification API over a [`TokenStore`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use rand::CryptoRng;
use time::{Duration, OffsetDateTime};

use crate::actor::Actor;
use crate::allowlist::IpAllowlist;
use crate::clock::{Clock, SystemClock};
use crate::directory::{AllowAllUsers, UserDirectory, UserState};
use crate::error::{Error, Field, Forbidden, Problem, Result, StoreError, ValidationError};
use crate::events::{EventKind, EventSink, NoEvents, TokenEvent, UpdatedField};
use crate::keys::HashKeys;
#[cfg(feature = "legacy")]
use crate::legacy::LegacyScheme;
use crate::limits::Limits;
use crate::permission::{IntersectionMemo, PermissionSet};
use crate::policy::Policy;
use crate::secret::{HashKey, SecretHash, TokenSecret};
use crate::store::memory::MemoryStore;
use crate::store::{Change, Query, TokenStore};
use crate::token::{
    Expiry, PreviousSecret, SecretState, Status, Token, TokenId, TokenName, UserId, whole_seconds,
};
use crate::view::Revealed;

/// A token to create: a name, and under [`Policy::default`] its permissions; every other
/// field has a default.
///
/// ```
/// use api_tokens::{NewToken, PermissionSet, Status, UserId};
/// let t = NewToken::new("Your token".parse()?)
///     .owner(UserId::from(2))
///     .permissions("reports.read, reports.export".parse()?)
///     .status(Status::Disabled)
///     .expires_at(time::macros::datetime!(2021-01-21 14:07:52 UTC));
/// let everything = NewToken::new("admin".parse()?).permissions(PermissionSet::all());
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewToken {
    /// The name, unique per owner.
    pub name: TokenName,
    /// Free text (default empty).
    pub description: String,
    /// The owner (default: the actor).
    pub owner: Option<UserId>,
    /// Enabled (default) or disabled.
    pub status: Status,
    /// Expiry (default never).
    pub expiry: Expiry,
    /// Permissions. Required by [`Policy::default`] ([`Policy::require_permissions`]): give
    /// [`PermissionSet::all`] (`"*"`) for all of the owner's rights, intersected at every
    /// authentication with what the owner holds then. Under the seeds' presets a token without
    /// them gets every privilege of the caller who creates it.
    pub permissions: Option<PermissionSet>,
    /// Allowlist (default empty: any address).
    pub allowlist: IpAllowlist,
    /// Usage limits and rate limits (default none).
    pub limits: Option<Limits>,
}

impl NewToken {
    /// A token named `name` with every other field at its default.
    pub fn new(name: TokenName) -> Self {
        Self {
            name,
            description: String::new(),
            owner: None,
            status: Status::Enabled,
            expiry: Expiry::NEVER,
            permissions: None,
            allowlist: IpAllowlist::any(),
            limits: None,
        }
    }

    setters! {
        /// Sets the description.
        description(impl Into<String>) => Into::into;
        /// Sets the owner (default: the actor).
        owner(UserId) => Some;
        /// Sets the status.
        status(Status);
        /// Sets the expiry.
        expiry(Expiry);
        /// Sets the permissions.
        permissions(PermissionSet) => Some;
        /// Sets the allowlist.
        allowlist(IpAllowlist);
        /// Sets usage limits and rate limits.
        limits(Limits) => Some;
    }

    /// Expires at `t` (whole seconds).
    #[must_use]
    pub fn expires_at(self, t: OffsetDateTime) -> Self {
        self.expiry(Expiry::at(t))
    }
}

/// Changes to one token. Only the fields that are `Some` change; the owner never does.
///
/// ```
/// use api_tokens::{Expiry, IpAllowlist, TokenId, TokenUpdate};
/// let u = TokenUpdate::new(TokenId::new(188))
///     .expiry(Expiry::NEVER)            // clear the expiry
///     .allowlist(IpAllowlist::any());   // clear the allowlist
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenUpdate {
    /// The token.
    pub id: TokenId,
    /// New name.
    pub name: Option<TokenName>,
    /// New description.
    pub description: Option<String>,
    /// New status.
    pub status: Option<Status>,
    /// New expiry (`Expiry::NEVER` clears it).
    pub expiry: Option<Expiry>,
    /// New permissions.
    pub permissions: Option<PermissionSet>,
    /// New allowlist (empty clears it).
    pub allowlist: Option<IpAllowlist>,
    /// New limits ([`Limits::none`] clears them). Limits that differ from the token's start
    /// afresh: a balance as given, empty windows (a rate limit kept as it was keeps its
    /// window). An actor may not change the limits of the token it authenticated with
    /// ([`Forbidden::OwnLimits`]).
    pub limits: Option<Limits>,
}

impl TokenUpdate {
    /// An update of `id` that changes nothing yet.
    pub fn new(id: TokenId) -> Self {
        Self {
            id,
            name: None,
            description: None,
            status: None,
            expiry: None,
            permissions: None,
            allowlist: None,
            limits: None,
        }
    }

    setters! {
        /// Renames.
        name(TokenName) => Some;
        /// Sets the description.
        description(impl Into<String>) => into_some;
        /// Sets the status.
        status(Status) => Some;
        /// Sets or clears the expiry.
        expiry(Expiry) => Some;
        /// Sets the permissions.
        permissions(PermissionSet) => Some;
        /// Sets or clears the allowlist.
        allowlist(IpAllowlist) => Some;
        /// Sets or clears ([`Limits::none`]) the limits.
        limits(Limits) => Some;
    }
}

/// `Some(v.into())`: a builder's optional text.
fn into_some(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

/// A token issued in one step, with its secret (shown once).
#[derive(Debug)]
#[non_exhaustive]
pub struct Issued {
    /// The stored record.
    pub token: Token,
    /// The plaintext secret: give it to the user, then drop it.
    pub secret: TokenSecret,
}

impl Issued {
    /// The token's [`TokenView`](crate::TokenView) and its secret as one value whose
    /// `Serialize` writes both: the response to a create call in one step, without copying the
    /// secret out of its wrapper (see [`Revealed`]).
    pub fn reveal(self) -> Revealed {
        Revealed::new(self.token.view(), self.secret)
    }
}

/// What [`Tokens::revoke_by_secret`] did: one [`TokenRevocation`] for each token the secret
/// matched, by any route (the current hash key, an old one, an honoured legacy scheme), in id
/// order. None when it matched no token (or was malformed, or its tokens were revoked already
/// and their hashes dropped): then nothing changed.
///
/// Almost always a secret matches one token; match the slice to handle that case and still
/// see every other:
///
/// ```
/// use api_tokens::{Actor, NewToken, TokenRevocation, Tokens, UserId};
/// let tokens = Tokens::in_memory();
/// let alice = Actor::user(UserId::new("alice")?);
/// let issued = tokens.issue(&alice, NewToken::new("ci".parse()?).permissions("deploy".parse()?))?;
/// let revocation = tokens.revoke_by_secret(issued.secret.expose())?;
/// match revocation.tokens() {
///     [] => println!("no token has this secret"),
///     [TokenRevocation::Disabled(id)] => assert_eq!(*id, issued.token.id),
///     several => println!("revoked {:?}", several),
/// }
/// assert_eq!(revocation.revoked().collect::<Vec<_>>(), [issued.token.id]);
/// assert!(tokens.revoke_by_secret(issued.secret.expose())?.is_unknown());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revocation {
    tokens: Vec<TokenRevocation>,
}

impl Revocation {
    pub(crate) fn new(mut tokens: Vec<TokenRevocation>) -> Self {
        tokens.sort_by_key(TokenRevocation::id);
        Self { tokens }
    }

    /// What happened to each token the secret matched, in id order; empty when it matched
    /// none.
    pub fn tokens(&self) -> &[TokenRevocation] {
        &self.tokens
    }

    /// The ids of the tokens this call revoked for good
    /// ([`TokenRevocation::Disabled`] and [`TokenRevocation::AlreadyDisabled`]), in id order.
    pub fn revoked(&self) -> impl Iterator<Item = TokenId> + '_ {
        self.tokens
            .iter()
            .filter(|t| t.is_revoked())
            .map(TokenRevocation::id)
    }

    /// Whether the secret matched no token: nothing changed.
    pub fn is_unknown(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// What [`Tokens::revoke_by_secret`] did to one token the secret matched. A token revoked by
/// either of the first two is revoked for good: disabled, its secret hashes dropped, marked
/// [`Token::revoked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenRevocation {
    /// The token was enabled; it is now revoked for good.
    Disabled(TokenId),
    /// The token was disabled already; it is now revoked for good (it can no longer be
    /// enabled).
    AlreadyDisabled(TokenId),
    /// The secret is a replaced one of this token that no longer works; nothing changed for
    /// it.
    NoLongerValid(TokenId),
}

impl TokenRevocation {
    /// The token.
    pub fn id(&self) -> TokenId {
        match self {
            Self::Disabled(id) | Self::AlreadyDisabled(id) | Self::NoLongerValid(id) => *id,
        }
    }

    /// Whether the call revoked the token (it was not [`TokenRevocation::NoLongerValid`]).
    pub fn is_revoked(&self) -> bool {
        !matches!(self, Self::NoLongerValid(_))
    }
}

/// The API: a [`Policy`], a [`TokenStore`], a [`Clock`], a [`HashKey`], a [`UserDirectory`] and an
/// [`EventSink`], and the operations of Zabbix's `token.*` and cPanel's `api_token_*` over them.
///
/// Every batch operation is all-or-nothing and returns results in input order. Errors of a batch
/// of more than one item name the offending item (see [`Error`]).
///
/// `Tokens` is cheap to clone (two reference counts) and every clone shares the same store, so
/// a web service keeps one in its state and hands a clone to each handler: no
/// `Arc<Tokens<..>>`. The `with_*` builders change only the value they are called on: configure
/// first, then clone.
///
/// ```
/// use api_tokens::Tokens;
/// let tokens = Tokens::in_memory();
/// let for_a_handler = tokens.clone(); // same store
/// # let _ = for_a_handler;
/// ```
pub struct Tokens<S = MemoryStore> {
    store: Arc<S>,
    config: Arc<Config>,
}

/// Everything but the store: cloned on write by the `with_*` builders.
#[derive(Clone)]
struct Config {
    policy: Policy,
    /// The current hash key, older ones for verification, honoured legacy schemes.
    keys: HashKeys,
    /// The outcome of the hash-key check ([`Tokens::check_hash_keys`]), once there is one: run
    /// by the host at startup, or by the first authentication that finds none. Shared by
    /// clones; a builder that changes the keys starts a fresh one.
    key_check: rotation::KeyCheck,
    clock: Arc<dyn Clock>,
    directory: Arc<dyn UserDirectory>,
    events: Arc<dyn EventSink>,
    /// Shared by clones and by configurations derived from them: it is keyed by the identity
    /// of the two sets it intersected, so any `Tokens` may use any entry.
    memo: Arc<IntersectionMemo>,
    /// The authentication counters (feature `metrics`), resolved when the `Tokens` is built
    /// (with the recorder in force then) and shared by clones.
    #[cfg(feature = "metrics")]
    metrics: Arc<crate::metrics::AuthMetrics>,
}

impl<S> Clone for Tokens<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S> fmt::Debug for Tokens<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("policy", &self.config.policy)
            .finish_non_exhaustive()
    }
}

impl Tokens<MemoryStore> {
    /// Tokens in a fresh [`MemoryStore`], with every default.
    pub fn in_memory() -> Self {
        Self::new(MemoryStore::new())
    }

    /// The store's contents sealed under this `Tokens`' hash key, for the host to persist
    /// ([`SealedSnapshot`](crate::store::memory::SealedSnapshot)).
    pub fn sealed_snapshot(&self) -> crate::store::memory::SealedSnapshot {
        self.store.snapshot().seal(self.config.keys.current())
    }

    /// Replaces the store's contents with a sealed snapshot's, after checking its seal under
    /// the current hash key and that every hash in it was made under a key this `Tokens`
    /// holds. A snapshot sealed under an old key is refused: an old key may be retired because
    /// it leaked, and whoever holds it could seal anything. To read a snapshot written before a
    /// rotation, see [`Tokens::restore_sealed_under_old_key`].
    ///
    /// # Errors
    /// As [`SealedSnapshot::open`](crate::store::memory::SealedSnapshot::open) (sealed under another key:
    /// [`StoreError::SnapshotKeyMismatch`]) and [`MemoryStore::restore`];
    /// [`StoreError::HashKeysMissing`] when its hashes were made under keys (or legacy schemes)
    /// this `Tokens` does not hold, naming them. The store is left untouched.
    pub fn restore_sealed(
        &self,
        sealed: crate::store::memory::SealedSnapshot,
    ) -> Result<(), StoreError> {
        self.restore_sealed_under(self.config.keys.current(), sealed)
    }

    /// [`Tokens::restore_sealed`], also accepting a snapshot sealed under one of the old keys
    /// this `Tokens` holds ([`Tokens::with_old_hash_key`]): for the one restore right after a
    /// rotation, of a snapshot written before it. Never use it when the old key is being
    /// retired because it leaked; seal a fresh snapshot under the current key
    /// ([`Tokens::sealed_snapshot`]) as soon as it is restored.
    ///
    /// # Errors
    /// As [`Tokens::restore_sealed`]; a snapshot sealed under a key this `Tokens` does not
    /// hold at all is [`StoreError::SnapshotKeyMismatch`].
    pub fn restore_sealed_under_old_key(
        &self,
        sealed: crate::store::memory::SealedSnapshot,
    ) -> Result<(), StoreError> {
        let keys = &self.config.keys;
        let key = keys.key(sealed.key_id).unwrap_or_else(|| keys.current());
        self.restore_sealed_under(key, sealed)
    }

    fn restore_sealed_under(
        &self,
        key: &HashKey,
        sealed: crate::store::memory::SealedSnapshot,
    ) -> Result<(), StoreError> {
        let snapshot = sealed.open(key)?;
        self.keys_cover(&crate::store::usage_of(&snapshot.tokens, self.now()))?;
        self.store.restore(snapshot)
    }
}

impl<S: TokenStore> Tokens<S> {
    /// The API over `store` with the defaults: [`Policy::default`], [`HashKey::default`],
    /// [`SystemClock`], [`AllowAllUsers`] and [`NoEvents`].
    pub fn new(store: S) -> Self {
        Self {
            store: Arc::new(store),
            config: Arc::new(Config {
                policy: Policy::default(),
                keys: HashKeys::default(),
                key_check: rotation::KeyCheck::default(),
                clock: Arc::new(SystemClock),
                directory: Arc::new(AllowAllUsers::new()),
                events: Arc::new(NoEvents),
                memo: Arc::new(IntersectionMemo::default()),
                #[cfg(feature = "metrics")]
                metrics: Arc::new(crate::metrics::AuthMetrics::resolve()),
            }),
        }
    }

    fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// Uses `policy`.
    #[must_use]
    pub fn with_policy(self, policy: Policy) -> Self {
        self.configure(|c| c.policy = policy)
    }

    /// Hashes secrets under `key` (see [`HashKey`]): every new hash is made with it, and
    /// hashes made under it are never re-hashed.
    #[must_use]
    pub fn with_hash_key(self, key: HashKey) -> Self {
        self.configure(|c| {
            c.keys = c.keys.with_current(key);
            c.key_check = c.key_check.reset();
        })
    }

    /// Also verifies secrets hashed under `key`, an older key (see [the key rotation
    /// guide](crate::guide::key_rotation)): a token whose hash was made under it still authenticates, and is re-hashed
    /// under the current key on its first success. At most [`MAX_OLD_KEYS`](crate::keys::MAX_OLD_KEYS)
    /// old keys ([`Tokens::check_hash_keys`] refuses more). Each one costs a secret that
    /// matches nothing one more hash and lookup; ordinary tokens pay nothing.
    #[must_use]
    pub fn with_old_hash_key(self, key: HashKey) -> Self {
        self.configure(|c| {
            let mut check = c.key_check.reset();
            if !c.keys.add_old(key) {
                check.too_many_old_keys();
            }
            c.key_check = check;
        })
    }

    /// Honours hashes imported in `scheme` ([`Tokens::import`]): secrets of the scheme's shape
    /// pass the format check, and one that matches an imported hash authenticates and is
    /// re-hashed the ordinary way on its first success.
    ///
    /// Needs the feature `legacy` (SHA-2 for the digests).
    #[cfg(feature = "legacy")]
    #[must_use]
    pub fn with_legacy_scheme(self, scheme: LegacyScheme) -> Self {
        self.configure(|c| {
            c.keys.add_legacy(scheme);
            c.key_check = c.key_check.reset();
        })
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn with_clock(self, clock: impl Clock + 'static) -> Self {
        self.configure(|c| c.clock = Arc::new(clock))
    }

    /// Asks `directory` about users.
    #[must_use]
    pub fn with_directory(self, directory: impl UserDirectory + 'static) -> Self {
        self.configure(|c| c.directory = Arc::new(directory))
    }

    /// Sends events to `sink`.
    #[must_use]
    pub fn with_events(self, sink: impl EventSink + 'static) -> Self {
        self.configure(|c| c.events = Arc::new(sink))
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.config.policy
    }

    /// The clock's current instant, in whole seconds.
    pub fn now(&self) -> OffsetDateTime {
        whole_seconds(self.config.clock.now())
    }

    /// The caller `user` as the directory knows it, in one call: an [`Actor`] that manages its
    /// own tokens and may grant exactly the rights the directory gives it now (every right for
    /// an [`UserState::Unrestricted`] user), so the directory stays the one source of truth.
    /// Set [`Actor::manage_others`] on the result for a Super admin.
    ///
    /// ```
    /// use api_tokens::{StaticDirectory, Tokens, UserId, UserState};
    /// let tokens = Tokens::in_memory().with_directory(
    ///     StaticDirectory::new().with(UserId::from(2), UserState::Active("reports.*".parse()?)),
    /// );
    /// let actor = tokens.actor(&UserId::from(2))?;
    /// assert_eq!(actor.privileges.to_string(), "reports.*");
    /// assert_eq!(tokens.actor(&UserId::from(3)).unwrap_err().code(), "user_not_active");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Forbidden::UserNotActive`] when the directory does not know the user or it is
    /// inactive.
    pub fn actor(&self, user: &UserId) -> Result<Actor> {
        Actor::from_directory(&*self.config.directory, user).map_err(Error::from)
    }

    fn emit(&self, at: OffsetDateTime, actor: Option<&Actor>, t: &Token, kind: EventKind) {
        self.config.events.record(TokenEvent {
            at,
            actor: actor.map(|a| a.user.clone()),
            token: Some(t.id),
            owner: Some(t.owner.clone()),
            kind,
        });
    }

    /// Creates tokens without secrets (Zabbix `token.create`); [`Tokens::generate`] gives them
    /// one. Returns their ids in input order.
    ///
    /// # Errors
    /// Nothing is created when any item is refused: the actor may not manage tokens or not for
    /// that owner; a value breaks the policy; the name is taken for the owner (in the store or
    /// earlier in the batch); the owner is unknown or inactive; the permissions exceed the actor's
    /// privileges (all of them listed); or the store fails.
    pub fn create(
        &self,
        actor: &Actor,
        items: impl IntoIterator<Item = NewToken>,
    ) -> Result<Vec<TokenId>> {
        let now = self.now();
        let tokens = self.prepare_new(actor, items.into_iter().collect(), now)?;
        let ids = tokens.iter().map(|t| t.id).collect();
        self.insert(actor, tokens, now)?;
        Ok(ids)
    }

    /// Creates a token and its secret in one step (cPanel `api_token_create`).
    ///
    /// # Errors
    /// As [`Tokens::create`].
    pub fn issue(&self, actor: &Actor, item: NewToken) -> Result<Issued> {
        self.issue_with_rng(actor, item, &mut rand::rng())
    }

    /// [`Tokens::issue`] with the given CSPRNG.
    ///
    /// # Errors
    /// As [`Tokens::create`].
    pub fn issue_with_rng<R: CryptoRng + ?Sized>(
        &self,
        actor: &Actor,
        item: NewToken,
        rng: &mut R,
    ) -> Result<Issued> {
        let now = self.now();
        let mut tokens = self.prepare_new(actor, vec![item], now)?;
        let secret = self.config.policy.secret_format.generate_with_rng(rng);
        let hash = SecretHash::of_secret(self.config.keys.current(), &secret);
        for t in &mut tokens {
            t.secret = Some(SecretState {
                hash,
                scheme: self.config.keys.current_scheme(),
                generated_at: now,
                previous: None,
            });
        }
        self.insert(actor, tokens.clone(), now)?;
        // `prepare_new` gives one token per item, or fails.
        let token = tokens.pop().ok_or(Error::Store(StoreError::IdsExhausted))?;
        self.emit(
            now,
            Some(actor),
            &token,
            EventKind::Generated { grace_until: None },
        );
        Ok(Issued { token, secret })
    }

    fn insert(&self, actor: &Actor, tokens: Vec<Token>, now: OffsetDateTime) -> Result<()> {
        let changes = tokens.iter().cloned().map(Change::Insert).collect();
        self.store
            .apply(changes)
            .map_err(|e| name_conflict_at(e, &tokens))?;
        for t in &tokens {
            self.emit(now, Some(actor), t, EventKind::Created);
        }
        Ok(())
    }

    /// The policy's rules for a token's name, description and allowlist, as a new or
    /// imported token must pass them.
    fn check_values(
        &self,
        name: &TokenName,
        description: &str,
        allowlist: &IpAllowlist,
    ) -> std::result::Result<(), ValidationError> {
        let policy = &self.config.policy;
        policy.check_name(name)?;
        policy.check_description(description)?;
        policy.check_allowlist(allowlist)
    }

    /// The permissions a new (or imported) token gets: those given must be the actor's to
    /// grant; none given is refused where the policy requires them, else means the actor's
    /// privileges; either way within the policy's cap.
    fn check_new_permissions(
        &self,
        actor: &Actor,
        given: Option<&PermissionSet>,
        at: Option<usize>,
    ) -> Result<()> {
        match given {
            Some(p) => check_grantable(actor, p, at)?,
            None if self.config.policy.require_permissions => {
                return Err(Error::invalid(
                    at,
                    ValidationError::new(Field::Permissions, "", Problem::Required),
                ));
            }
            None => {}
        }
        self.config
            .policy
            .check_permissions(given.unwrap_or(&actor.privileges))
            .map_err(|e| Error::invalid(at, e))
    }

    fn prepare_new(
        &self,
        actor: &Actor,
        items: Vec<NewToken>,
        now: OffsetDateTime,
    ) -> Result<Vec<Token>> {
        if !actor.manage_tokens {
            return Err(Error::forbidden(None, Forbidden::CannotManageTokens));
        }
        let mut names = HashSet::new();
        let mut owners_checked: HashMap<UserId, UserState> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let at = position(i, items.len());
            let owner = item.owner.as_ref().unwrap_or(&actor.user);
            if !actor.may_manage(owner) {
                return Err(Error::forbidden(at, Forbidden::OtherUsersTokens));
            }
            let invalid = |e| Error::invalid(at, e);
            self.check_values(&item.name, &item.description, &item.allowlist)
                .map_err(invalid)?;
            self.config
                .policy
                .check_expiry(&item.expiry, now)
                .map_err(invalid)?;
            let state = owners_checked
                .entry(owner.clone())
                .or_insert_with(|| self.config.directory.user(owner));
            let problem = match state {
                UserState::Active(_) | UserState::Unrestricted => None,
                UserState::Inactive => Some(Problem::InactiveUser),
                UserState::Unknown => Some(Problem::UnknownUser),
            };
            if let Some(problem) = problem {
                return Err(invalid(ValidationError::new(Field::Owner, owner, problem)));
            }
            self.check_new_permissions(actor, item.permissions.as_ref(), at)?;
            if let Some(l) = &item.limits {
                self.check_limits(l, at)?;
            }
            // Taken earlier in this batch or in the store: the same condition, one error.
            if !names.insert((owner.clone(), item.name.clone()))
                || self.store.find_name(owner, &item.name)?.is_some()
            {
                return Err(invalid(name_taken(owner, &item.name)));
            }
        }
        let ids = self.store.reserve_ids(items.len())?;
        if ids.len() != items.len() {
            // A store that hands out fewer ids than asked must not make a batch silently shorter.
            return Err(Error::Store(StoreError::IdsExhausted));
        }
        Ok(items
            .into_iter()
            .zip(ids)
            .map(|(item, id)| Token {
                id,
                owner: item.owner.unwrap_or_else(|| actor.user.clone()),
                creator: actor.user.clone(),
                name: item.name,
                description: item.description,
                status: item.status,
                created_at: now,
                expiry: item.expiry,
                permissions: item.permissions.unwrap_or_else(|| actor.privileges.clone()),
                allowlist: item.allowlist,
                last_use: None,
                secret: None,
                revision: 0,
                revoked: None,
                imported_from: None,
                balance: item
                    .limits
                    .as_ref()
                    .and_then(|l| l.credits.as_ref())
                    .map(crate::limits::Balance::of),
                limits: item.limits.filter(|l| !l.is_empty()).map(Arc::new),
            })
            .collect())
    }

    /// Limits as a token may hold them: within their bounds, on a store that enforces them.
    fn check_limits(&self, limits: &Limits, at: Option<usize>) -> Result<()> {
        limits.check().map_err(|e| Error::invalid(at, e))?;
        if !limits.is_empty() && !self.store.enforces_limits() {
            return Err(Error::Store(StoreError::LimitsUnsupported));
        }
        Ok(())
    }

    /// Loads the tokens of a batch of ids for `actor`: refuses duplicates, and answers "not
    /// found" alike for ids that do not exist and ids the actor may not manage.
    fn load(&self, actor: &Actor, ids: &[TokenId]) -> Result<Vec<Token>> {
        if !actor.manage_tokens {
            return Err(Error::forbidden(None, Forbidden::CannotManageTokens));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            let index = position(i, ids.len());
            if !seen.insert(id) {
                return Err(Error::invalid(
                    index,
                    ValidationError::new(Field::TokenId, id, Problem::Duplicate),
                ));
            }
            match self.store.get(id)? {
                Some(t) if actor.may_manage(&t.owner) => out.push(t),
                _ => return Err(Error::NotFound { index, id }),
            }
        }
        Ok(out)
    }

    /// Generates (or regenerates) the secrets of tokens (Zabbix `token.generate`): each
    /// previous secret stops working at once. The actor becomes each token's creator.
    ///
    /// # Errors
    /// Nothing changes when any id is refused: the actor may not manage tokens, an id appears
    /// twice, an id does not exist or is not the actor's to manage, or the store fails.
    pub fn generate(
        &self,
        actor: &Actor,
        ids: impl IntoIterator<Item = TokenId>,
    ) -> Result<Vec<(TokenId, TokenSecret)>> {
        self.generate_with(actor, ids, Duration::ZERO, &mut rand::rng())
    }

    /// [`Tokens::generate`], keeping each previous secret valid for `grace` (zero: not at all)
    /// and drawing from `rng`. A previous secret presented after its grace is denied as
    /// [`Denial::Superseded`](crate::Denial::Superseded); one generation back is remembered.
    /// The grace never outlives the token: it ends at the token's expiry if that comes first.
    ///
    /// # Errors
    /// As [`Tokens::generate`]; a negative `grace` or one longer than
    /// [`Policy::max_grace`] is refused; a revoked token is refused with [`Error::Revoked`].
    pub fn generate_with<R: CryptoRng + ?Sized>(
        &self,
        actor: &Actor,
        ids: impl IntoIterator<Item = TokenId>,
        grace: Duration,
        rng: &mut R,
    ) -> Result<Vec<(TokenId, TokenSecret)>> {
        self.config
            .policy
            .check_grace(grace)
            .map_err(|e| Error::invalid(None, e))?;
        let ids: Vec<TokenId> = ids.into_iter().collect();
        retrying(|| self.try_generate(actor, &ids, grace, rng, &|_| true))
            .map(Option::unwrap_or_default)
    }

    /// [`Tokens::generate_with`] of one token, only while `current` holds for the token as the
    /// store has it: `Ok(None)`, and nothing changes, when it does not. The check and the write
    /// are one compare-and-set (the write carries the revision the check read; a token changed
    /// in between is read and checked again), so of two callers that expect the same secret
    /// (a form sent twice, to two processes at once) one regenerates and the other gets `None`.
    ///
    /// ```
    /// use api_tokens::{Actor, NewToken, Tokens, UserId};
    /// use api_tokens::time::Duration;
    ///
    /// let tokens = Tokens::in_memory();
    /// let alice = Actor::user(UserId::new("alice")?);
    /// let issued = tokens.issue(&alice, NewToken::new("ci".parse()?).permissions("ci.*".parse()?))?;
    /// let shown = issued.token.secret.map(|s| s.hash);
    /// let same_secret = |t: &api_tokens::Token| t.secret.map(|s| s.hash) == shown;
    /// let mut rng = rand::rng();
    /// let id = issued.token.id;
    /// assert!(tokens.generate_if(&alice, id, Duration::ZERO, &mut rng, same_secret)?.is_some());
    /// // Sent again: the secret is no longer the one the form was shown with.
    /// assert!(tokens.generate_if(&alice, id, Duration::ZERO, &mut rng, same_secret)?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Tokens::generate_with`].
    pub fn generate_if<R: CryptoRng + ?Sized>(
        &self,
        actor: &Actor,
        id: TokenId,
        grace: Duration,
        rng: &mut R,
        current: impl Fn(&Token) -> bool,
    ) -> Result<Option<TokenSecret>> {
        self.config
            .policy
            .check_grace(grace)
            .map_err(|e| Error::invalid(None, e))?;
        let generated = retrying(|| self.try_generate(actor, &[id], grace, rng, &current))?;
        Ok(generated
            .and_then(|mut g| g.pop())
            .map(|(_, secret)| secret))
    }

    /// Generates the secrets of `ids` when `current` holds for each as loaded (`None`: nothing
    /// written).
    fn try_generate<R: CryptoRng + ?Sized>(
        &self,
        actor: &Actor,
        ids: &[TokenId],
        grace: Duration,
        rng: &mut R,
        current: &dyn Fn(&Token) -> bool,
    ) -> Result<Option<Vec<(TokenId, TokenSecret)>>> {
        let mut tokens = self.load(actor, ids)?;
        if !tokens.iter().all(current) {
            return Ok(None);
        }
        let now = self.now();
        for (i, t) in tokens.iter().enumerate() {
            if t.revoked.is_some() {
                return Err(Error::Revoked {
                    index: position(i, tokens.len()),
                    token: t.id,
                });
            }
        }
        let mut secrets = Vec::with_capacity(tokens.len());
        let mut grace_ends = Vec::with_capacity(tokens.len());
        for t in &mut tokens {
            let secret = self.config.policy.secret_format.generate_with_rng(rng);
            // A grace period never outlives the token.
            let valid_until = match t.expiry.instant() {
                Some(end) => now.saturating_add(grace).min(end),
                None => now.saturating_add(grace),
            };
            grace_ends.push(valid_until);
            let previous = t.secret.map(|s| PreviousSecret {
                hash: s.hash,
                scheme: s.scheme,
                valid_until,
            });
            t.secret = Some(SecretState {
                hash: SecretHash::of_secret(self.config.keys.current(), &secret),
                scheme: self.config.keys.current_scheme(),
                generated_at: now,
                previous,
            });
            t.creator = actor.user.clone();
            secrets.push((t.id, secret));
        }
        self.store
            .apply(tokens.iter().cloned().map(Change::Replace).collect())?;
        for (t, valid_until) in tokens.iter().zip(grace_ends) {
            let grace_until = (valid_until > now).then_some(valid_until);
            self.emit(now, Some(actor), t, EventKind::Generated { grace_until });
        }
        Ok(Some(secrets))
    }

    /// Changes tokens (Zabbix `token.update`): only the given fields, never the owner. A value
    /// equal to the current one is no change (no event, no write). Returns the ids.
    ///
    /// # Errors
    /// Nothing changes when any item is refused: as [`Tokens::create`] for the values, an id
    /// twice or not found (or not the actor's), two tokens of one owner ending up with the
    /// same name, or enabling a token revoked by possession of its secret ([`Error::Revoked`]).
    pub fn update(
        &self,
        actor: &Actor,
        updates: impl IntoIterator<Item = TokenUpdate>,
    ) -> Result<Vec<TokenId>> {
        let updates: Vec<TokenUpdate> = updates.into_iter().collect();
        retrying(|| self.try_update(actor, updates.clone()))
    }

    fn try_update(&self, actor: &Actor, updates: Vec<TokenUpdate>) -> Result<Vec<TokenId>> {
        let ids: Vec<TokenId> = updates.iter().map(|u| u.id).collect();
        let current = self.load(actor, &ids)?;
        let now = self.now();
        let batch: HashSet<TokenId> = ids.iter().copied().collect();
        let mut final_names = HashSet::new();
        let mut changed = Vec::new();
        let len = updates.len();
        for (i, (u, old)) in updates.into_iter().zip(current).enumerate() {
            let at = position(i, len);
            let invalid = |e| Error::invalid(at, e);
            let mut t = old.clone();
            let mut fields = Vec::new();
            if let Some(name) = u.name.filter(|n| *n != t.name) {
                self.config.policy.check_name(&name).map_err(invalid)?;
                if let Some(other) = self.store.find_name(&t.owner, &name)?
                    && !batch.contains(&other)
                {
                    return Err(invalid(name_taken(&t.owner, &name)));
                }
                t.name = name;
                fields.push(UpdatedField::Name);
            }
            if !final_names.insert((t.owner.clone(), t.name.clone())) {
                return Err(invalid(name_taken(&t.owner, &t.name)));
            }
            if let Some(d) = u.description.filter(|d| *d != t.description) {
                self.config.policy.check_description(&d).map_err(invalid)?;
                t.description = d;
                fields.push(UpdatedField::Description);
            }
            if let Some(e) = u.expiry.filter(|e| *e != t.expiry) {
                self.config.policy.check_expiry(&e, now).map_err(invalid)?;
                t.expiry = e;
                fields.push(UpdatedField::Expiry);
            }
            if let Some(p) = u.permissions.filter(|p| *p != t.permissions) {
                check_grantable(actor, &p, at)?;
                self.config.policy.check_permissions(&p).map_err(invalid)?;
                t.permissions = p;
                fields.push(UpdatedField::Permissions);
            }
            if let Some(a) = u.allowlist.filter(|a| *a != t.allowlist) {
                self.config.policy.check_allowlist(&a).map_err(invalid)?;
                t.allowlist = a;
                fields.push(UpdatedField::Allowlist);
            }
            let limits = u.limits.map(|l| (!l.is_empty()).then(|| Arc::new(l)));
            if let Some(l) = limits.filter(|l| *l != t.limits) {
                if !actor.may_set_limits_of(t.id) {
                    return Err(Error::forbidden(at, Forbidden::OwnLimits));
                }
                if let Some(l) = &l {
                    self.check_limits(l, at)?;
                }
                t.limits = l;
                fields.push(UpdatedField::Limits);
            }
            let status = u.status.filter(|s| *s != t.status);
            if let Some(s) = status {
                if t.revoked.is_some() {
                    return Err(Error::Revoked {
                        index: at,
                        token: t.id,
                    });
                }
                t.status = s;
            }
            if !fields.is_empty() || status.is_some() {
                changed.push((t, fields, status));
            }
        }
        if !changed.is_empty() {
            let tokens: Vec<Token> = changed.iter().map(|(t, ..)| t.clone()).collect();
            let changes = tokens.iter().cloned().map(Change::Replace).collect();
            self.store
                .apply(changes)
                .map_err(|e| name_conflict_at(e, &tokens))?;
        }
        for (t, fields, status) in changed {
            if !fields.is_empty() {
                self.emit(now, Some(actor), &t, EventKind::Updated { fields });
            }
            if let Some(status) = status {
                self.emit(now, Some(actor), &t, EventKind::StatusChanged { status });
            }
        }
        Ok(ids)
    }

    /// Enables or disables tokens at once (the *API tokens* screen's mass enable/disable).
    ///
    /// # Errors
    /// As [`Tokens::update`]: enabling a batch that holds a revoked token changes nothing and
    /// names it ([`Error::Revoked`]).
    pub fn set_status(
        &self,
        actor: &Actor,
        ids: impl IntoIterator<Item = TokenId>,
        status: Status,
    ) -> Result<Vec<TokenId>> {
        self.update(
            actor,
            ids.into_iter()
                .map(|id| TokenUpdate::new(id).status(status)),
        )
    }

    /// Deletes tokens (Zabbix `token.delete`, cPanel `api_token_revoke`). Returns the ids.
    ///
    /// # Errors
    /// Nothing is deleted when any id is refused, as for [`Tokens::generate`].
    pub fn delete(
        &self,
        actor: &Actor,
        ids: impl IntoIterator<Item = TokenId>,
    ) -> Result<Vec<TokenId>> {
        let ids: Vec<TokenId> = ids.into_iter().collect();
        let tokens = self.load(actor, &ids)?;
        let now = self.now();
        self.store
            .apply(ids.iter().copied().map(Change::Delete).collect())?;
        for t in &tokens {
            self.emit(now, Some(actor), t, EventKind::Deleted);
        }
        Ok(ids)
    }

    /// One token.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it does not exist or the actor may not see it;
    /// [`Error::Forbidden`] when the actor may not manage tokens.
    pub fn get(&self, actor: &Actor, id: TokenId) -> Result<Token> {
        self.load(actor, &[id])?
            .pop()
            .ok_or(Error::NotFound { index: None, id })
    }

    fn visible(&self, actor: &Actor, query: &Query) -> Result<Query> {
        if !actor.manage_tokens {
            return Err(Error::forbidden(None, Forbidden::CannotManageTokens));
        }
        self.config.policy.check_query(query)?;
        let mut q = query.clone();
        if !actor.manage_others {
            let own = vec![actor.user.clone()];
            q.owners = Some(match q.owners {
                Some(owners) if !owners.contains(&actor.user) => Vec::new(),
                _ => own,
            });
        }
        Ok(q)
    }

    /// The tokens matching `query` that the actor may see (Zabbix `token.get`). Expired and
    /// revoked tokens are listed like any other ([`Token::revoked`] marks the latter).
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the actor may not manage tokens; [`Error::Invalid`] when a list
    /// filter carries more than [`Policy::max_filter_values`] values; store failures.
    pub fn list(&self, actor: &Actor, query: &Query) -> Result<Vec<Token>> {
        let q = self.visible(actor, query)?;
        Ok(self.store.query(&q, self.config.clock.now())?)
    }

    /// How many tokens match `query` among those the actor may see (`countOutput`).
    ///
    /// # Errors
    /// As [`Tokens::list`].
    pub fn count(&self, actor: &Actor, query: &Query) -> Result<usize> {
        let q = self.visible(actor, query)?;
        Ok(self.store.count(&q, self.config.clock.now())?)
    }
}

mod authentication;
mod import;
mod rotation;

pub use import::ImportedToken;

/// Builder setters written once: each `name(value)` stores `value` in the field `name`,
/// through `wrap` when one is given (`Some`, `Into::into`), and returns the builder.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($ty:ty) $(=> $wrap:path)?;)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = $crate::tokens::setters!(@wrap value $(, $wrap)?);
            self
        }
    )*};
    (@wrap $v:ident) => { $v };
    (@wrap $v:ident, $wrap:path) => { $wrap($v) };
}
pub(crate) use setters;

/// How many times an operation re-reads and tries again after a concurrent change.
const ATTEMPTS: usize = 8;

/// Runs a read-modify-write operation until it applies without a concurrent change in between
/// (the store refuses a write based on a stale read with [`StoreError::Conflict`]). After
/// [`ATTEMPTS`] tries the conflict is returned; nothing was changed.
fn retrying<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 1;
    loop {
        match op() {
            Err(Error::Store(StoreError::Conflict(_))) if attempt < ATTEMPTS => attempt += 1,
            outcome => return outcome,
        }
    }
}

fn check_grantable(actor: &Actor, p: &PermissionSet, at: Option<usize>) -> Result<()> {
    let missing = p.not_covered_by(&actor.privileges);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::forbidden(
            at,
            Forbidden::PermissionsBeyondActor { missing },
        ))
    }
}

fn name_taken(owner: &UserId, name: impl fmt::Display) -> ValidationError {
    ValidationError::new(
        Field::Name,
        name,
        Problem::NameTaken {
            owner: owner.clone(),
        },
    )
}

/// The position of item `i` in errors: only in batches of more than one item, where it tells
/// which item is meant.
fn position(i: usize, len: usize) -> Option<usize> {
    (len > 1).then_some(i)
}

/// A name conflict the store found (another writer got there first) becomes the same error the
/// pre-check gives, at the item that caused it: one condition, one error.
fn name_conflict_at(e: StoreError, tokens: &[Token]) -> Error {
    match e {
        StoreError::NameTaken { owner, name } => {
            let index = tokens
                .iter()
                .position(|t| t.owner == owner && t.name.as_str() == name)
                .and_then(|i| position(i, tokens.len()));
            Error::invalid(index, name_taken(&owner, name))
        }
        e => Error::Store(e),
    }
}
