//! Revocation by possession in Zabbix's forms: the example's own `token.revoke`, the refusals
//! of a revoked token (`token.update` enabling it, `token.generate`) and `revoked_at` in token
//! objects. Zabbix has no such method or field; the library's rule is that revocation
//! by possession is final.

use api_tokens::{Token, TokenId};
use serde_json::Value;

use super::{Outcome, TokenApi, from_error, tokenids, unix};
use crate::input::{ApiError, Object, bad, element, member, string};

/// The longest `token` accepted: a Zabbix secret is 64 hex characters (as `token.get`'s
/// `token` parameter).
const SECRET_LEN: usize = 64;

impl TokenApi {
    /// `token.revoke` (the example's own): `{"token": "<secret>"}` revokes, for good, every
    /// token the secret belongs to (almost always one; a secret imported twice before the
    /// library refused that may open two). Holding the secret is the authority, so the method
    /// needs no login (the caller checks that no `auth` is given). Answers
    /// `{"tokenids": [id, …]}`, or `{"tokenids": []}` when no token has that secret any more
    /// (unknown, replaced, or revoked already), so a second report of one leak changes nothing.
    pub fn revoke(&self, params: &Value) -> Outcome {
        let o = Object::read(params, "/", &["token"])?;
        let secret = string(o.required("token")?, &o.at("token"), true, Some(SECRET_LEN))?;
        let revoked = self
            .tokens
            .revoke_by_secret(&secret)
            .map_err(|e| from_error(&e, "token.revoke"))?;
        // A replaced secret or an unknown one revokes nothing.
        let ids: Vec<TokenId> = revoked.revoked().collect();
        Ok(tokenids(&ids))
    }
}

/// A token's `revoked_at`: when it was revoked by possession of its secret, `"0"` if it was not.
pub fn revoked_at(t: &Token) -> Value {
    Value::String(t.revoked.map_or_else(|| "0".to_owned(), |r| unix(r.at)))
}

/// The library's [`api_tokens::Error::Revoked`] in Zabbix's format: the item's path (1-based,
/// also in a batch of one) and what the method wanted to do to the token.
pub fn refused(index: Option<usize>, token: TokenId, method: &str) -> ApiError {
    let item = element("/", index.unwrap_or(0));
    let because =
        format!("API token \"{token}\" was revoked because its secret was reported leaked");
    match method {
        "token.generate" => bad(
            &item,
            &format!("{because}: it cannot be given a new secret"),
        ),
        // token.update refuses only enabling a revoked token (`status: 0`, alone or in a mass
        // enable).
        "token.update" => bad(
            &member(&item, "status"),
            &format!("{because}: it cannot be enabled again"),
        ),
        // No other method meets the rule today; should one, the item is still named.
        _ => bad(&item, &because),
    }
}
