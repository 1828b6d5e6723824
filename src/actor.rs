//! [`Actor`]: who calls the management API, and the rules of what it may do.

use crate::permission::PermissionSet;
use crate::token::UserId;

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
}

impl Actor {
    /// A user that manages its own tokens and holds every privilege.
    pub fn user(user: UserId) -> Self {
        Self {
            user,
            manage_tokens: true,
            manage_others: false,
            privileges: PermissionSet::all(),
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

    /// The same actor holding only `privileges`.
    #[must_use]
    pub fn privileges(mut self, privileges: PermissionSet) -> Self {
        self.privileges = privileges;
        self
    }

    /// Whether it may manage tokens owned by `owner`.
    pub fn may_manage(&self, owner: &UserId) -> bool {
        self.manage_tokens && (self.manage_others || *owner == self.user)
    }
}
