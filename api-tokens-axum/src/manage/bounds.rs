//! [`TokenBounds`]: what a caller that came in with an API token may give the tokens it creates
//! or changes.

use api_tokens::{Expiry, IpAllowlist, Token, TokenId};

use super::error::{ApiError, item};

/// The bounds of the token a request was authenticated with: the tokens such a caller creates,
/// changes or regenerates may not expire later than the calling token, nor be usable from an
/// address the calling token's allowlist refuses. Without them a leaked token bound to an hour
/// and one address could mint, or turn itself into, a permanent token usable from anywhere.
///
/// The self-service router applies them to every request that carries a
/// [`Grant`](api_tokens::Grant) (whatever the [`ActorMapping`](super::ActorMapping)): creating
/// and issuing, changing (the token as it would be after the change), regenerating and
/// enabling. Disabling and deleting only take away, and are not bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBounds {
    token: TokenId,
    expiry: Expiry,
    allowlist: IpAllowlist,
}

impl TokenBounds {
    /// The bounds `token` sets.
    pub fn of(token: &Token) -> Self {
        Self {
            token: token.id,
            expiry: token.expiry,
            allowlist: token.allowlist.clone(),
        }
    }

    /// The calling token.
    pub fn token(&self) -> TokenId {
        self.token
    }

    /// Whether `expiry` is no later than the calling token's.
    pub fn allows_expiry(&self, expiry: Expiry) -> bool {
        match (self.expiry.unix(), expiry.unix()) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(bound), Some(at)) => at <= bound,
        }
    }

    /// Whether every address `allowlist` admits is one the calling token's admits (an empty
    /// list admits every address).
    pub fn allows_allowlist(&self, allowlist: &IpAllowlist) -> bool {
        if self.allowlist.is_empty() {
            return true;
        }
        if allowlist.is_empty() {
            return false;
        }
        // Both lists are bounded by the core's policy (entries per token), so this is small.
        allowlist
            .entries()
            .iter()
            .all(|net| self.allowlist.entries().iter().any(|b| b.contains(net)))
    }

    /// `Ok` when a token with `expiry` and `allowlist` is within the bounds; otherwise the 403
    /// naming the member (`expires_at` or `allowlist`) and the batch item.
    ///
    /// # Errors
    /// [`ApiError::BeyondCallingToken`].
    pub fn check(
        &self,
        expiry: Expiry,
        allowlist: &IpAllowlist,
        index: Option<usize>,
    ) -> Result<(), ApiError> {
        if !self.allows_expiry(expiry) {
            return Err(ApiError::BeyondCallingToken {
                field: "expires_at",
                index,
                message: format!(
                    "{}a token you create or change with an API token may not expire later than that token ({})",
                    item(index),
                    self.expiry
                ),
            });
        }
        if !self.allows_allowlist(allowlist) {
            return Err(ApiError::BeyondCallingToken {
                field: "allowlist",
                index,
                message: format!(
                    "{}a token you create or change with an API token may only be used from addresses that token's allowlist admits",
                    item(index)
                ),
            });
        }
        Ok(())
    }
}
