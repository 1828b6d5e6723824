//! [`UserDirectory`]: the host's answer to "who is this user, and what may it do now".

use crate::permission::PermissionSet;
use crate::token::UserId;

/// What the host knows of a user at this moment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserState {
    /// No such user.
    Unknown,
    /// The user exists but is disabled (its tokens are refused, as in Zabbix).
    Inactive,
    /// The user is active and holds these rights now.
    Active(PermissionSet),
    /// The user is active and the host keeps no rights of its own for it: the token's
    /// permissions apply as they are (what [`AllowAllUsers`] answers).
    Unrestricted,
}

/// The host's users, asked when a token is created (does the owner exist and is it active?) and
/// on every authentication (is it still active, and what rights does it hold now?).
///
/// Implementations are called on the authentication hot path: answer from memory (a cache the
/// host keeps current) rather than from a database round trip. The caller passes a validated
/// [`UserId`].
pub trait UserDirectory: Send + Sync {
    /// The user's current state.
    fn user(&self, id: &UserId) -> UserState;
}

/// The default directory for hosts without users of their own: every user exists, is active and
/// unrestricted, so a token's permissions are exactly its own.
#[derive(Clone, Copy, Debug, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a unit value hosts name; it will never hold state"
)]
pub struct AllowAllUsers;

impl AllowAllUsers {
    /// The directory.
    pub fn new() -> Self {
        Self
    }
}

impl UserDirectory for AllowAllUsers {
    fn user(&self, _: &UserId) -> UserState {
        UserState::Unrestricted
    }
}

impl<D: UserDirectory + ?Sized> UserDirectory for std::sync::Arc<D> {
    fn user(&self, id: &UserId) -> UserState {
        (**self).user(id)
    }
}

/// A directory kept in memory by the host: users with their state, changeable at run time.
/// Useful for tests, examples and small hosts.
///
/// ```
/// use api_tokens::{StaticDirectory, UserDirectory, UserState, UserId};
/// let dir = StaticDirectory::new();
/// dir.set(UserId::from(2), UserState::Active("dns.*".parse()?));
/// assert!(matches!(dir.user(&UserId::from(2)), UserState::Active(_)));
/// assert_eq!(dir.user(&UserId::from(3)), UserState::Unknown);
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Debug, Default)]
pub struct StaticDirectory(std::sync::RwLock<std::collections::HashMap<UserId, UserState>>);

impl StaticDirectory {
    /// An empty directory: every user is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a user's state.
    pub fn set(&self, id: UserId, state: UserState) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, state);
    }

    /// Builder form of [`StaticDirectory::set`].
    #[must_use]
    pub fn with(self, id: UserId, state: UserState) -> Self {
        self.set(id, state);
        self
    }
}

impl UserDirectory for StaticDirectory {
    fn user(&self, id: &UserId) -> UserState {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .unwrap_or(UserState::Unknown)
    }
}
