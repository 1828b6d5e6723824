//! [`Actor`]: who calls the management API, and the rules of what it may do.

use crate::directory::{UserDirectory, UserState};
use crate::error::Forbidden;
use crate::permission::PermissionSet;
use crate::token::{TokenId, UserId};

/// The caller of a management operation, as the host authenticated it.
///
/// Zabbix: a user whose role has *Manage API tokens* manages its own tokens; a Super admin
/// manages everyone's. cPanel: a token can only get privileges its creator holds.
///
/// ```
/// use api_tokens::{Actor, UserId};
/// let admin = Actor::admin(UserId::from(1));
/// let user = Actor::user(UserId::from(2)).privileges("dns.*".parse()?);
/// assert!(admin.may_manage(&UserId::from(2)));
/// assert!(!user.may_manage(&UserId::from(1)));
/// assert!(user.may_manage(&UserId::from(2)));
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Actor {
    /// The calling user.
    pub user: UserId,
    /// Whether its role allows managing API tokens at all.
    pub manage_tokens: bool,
    /// Whether it may manage other users' tokens (Zabbix Super admin).
    pub manage_others: bool,
    /// The privileges it holds, and so may grant.
    pub privileges: PermissionSet,
    /// The API token the caller authenticated with, when a token did: such a caller may not
    /// change that token's own limits ([`Actor::may_set_limits_of`]).
    pub via_token: Option<TokenId>,
}

impl Actor {
    /// A user that manages its own tokens and holds every privilege.
    pub fn user(user: UserId) -> Self {
        Self {
            user,
            manage_tokens: true,
            manage_others: false,
            privileges: PermissionSet::all(),
            via_token: None,
        }
    }

    /// A user that manages everyone's tokens and holds every privilege.
    pub fn admin(user: UserId) -> Self {
        Self {
            manage_others: true,
            ..Self::user(user)
        }
    }

    /// A user whose role does not allow managing tokens: refused everything.
    pub fn without_token_rights(user: UserId) -> Self {
        Self {
            manage_tokens: false,
            ..Self::user(user)
        }
    }

    /// The caller `user` as `directory` knows it now: a user who manages its own tokens and
    /// may grant exactly the rights the directory gives it (every right when it is
    /// [`UserState::Unrestricted`]). [`Tokens::actor`](crate::Tokens::actor) asks the
    /// directory the facade was built with.
    ///
    /// ```
    /// use api_tokens::{Actor, StaticDirectory, UserId, UserState};
    /// let directory = StaticDirectory::new()
    ///     .with(UserId::from(2), UserState::Active("dns.*".parse()?))
    ///     .with(UserId::from(4), UserState::Inactive);
    /// let actor = Actor::from_directory(&directory, &UserId::from(2))?;
    /// assert_eq!(actor.privileges.to_string(), "dns.*");
    /// assert!(Actor::from_directory(&directory, &UserId::from(4)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Forbidden::UserNotActive`] when the directory does not know the user, or knows it as
    /// inactive: such a caller may do nothing.
    pub fn from_directory(
        directory: &(impl UserDirectory + ?Sized),
        user: &UserId,
    ) -> Result<Self, Forbidden> {
        match directory.user(user) {
            UserState::Active(rights) => Ok(Self::user(user.clone()).privileges(rights)),
            UserState::Unrestricted => Ok(Self::user(user.clone())),
            UserState::Inactive | UserState::Unknown => Err(Forbidden::UserNotActive),
        }
    }

    /// The same actor holding only `privileges`.
    #[must_use]
    pub fn privileges(mut self, privileges: PermissionSet) -> Self {
        self.privileges = privileges;
        self
    }

    /// The same actor, as having authenticated with the API token `token`.
    #[must_use]
    pub fn via_token(mut self, token: TokenId) -> Self {
        self.via_token = Some(token);
        self
    }

    /// Whether it may set or change the limits of `token`: any token it may manage, except the
    /// one it authenticated with (a token never raises, or otherwise changes, its own limits).
    ///
    /// ```
    /// use api_tokens::{Actor, TokenId, UserId};
    /// let caller = Actor::user(UserId::from(2)).via_token(TokenId::new(7));
    /// assert!(!caller.may_set_limits_of(TokenId::new(7)));
    /// assert!(caller.may_set_limits_of(TokenId::new(8)));
    /// ```
    pub fn may_set_limits_of(&self, token: TokenId) -> bool {
        self.via_token != Some(token)
    }

    /// Whether it may manage tokens owned by `owner`.
    pub fn may_manage(&self, owner: &UserId) -> bool {
        self.manage_tokens && (self.manage_others || *owner == self.user)
    }
}
