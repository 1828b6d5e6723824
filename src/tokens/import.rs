//! [`Tokens::import`]: tokens brought over from another system, with the hashes it kept of
//! their secrets.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

use super::{Tokens, name_conflict_at, name_taken};
use crate::actor::Actor;
use crate::allowlist::IpAllowlist;
use crate::directory::UserState;
use crate::error::{Error, Field, Forbidden, Problem, Result, StoreError, ValidationError};
use crate::events::EventKind;
use crate::keys::HashScheme;
use crate::legacy::{ImportOrigin, LegacyHash};
use crate::permission::PermissionSet;
use crate::store::{Change, TokenStore};
use crate::token::TokenId;
use crate::token::{Expiry, LastUse, SecretState, Status, Token, TokenName, UserId, whole_seconds};

/// A time another system recorded must lie between the Unix epoch and `now`: a creation or
/// last use in the future would stop later uses from being recorded (the later instant wins),
/// and one outside that range may have no form some store can keep.
fn check_past(
    t: Option<OffsetDateTime>,
    field: Field,
    now: OffsetDateTime,
) -> std::result::Result<(), ValidationError> {
    match t {
        Some(t) if t < OffsetDateTime::UNIX_EPOCH || t > now => Err(ValidationError::new(
            field,
            t.checked_to_offset(time::UtcOffset::UTC)
                .map_or_else(|| t.to_string(), crate::error::time_for_message),
            Problem::OutOfRange,
        )),
        _ => Ok(()),
    }
}

/// A token to import: what the other system knew of it, and the hash it kept of its secret.
/// The owner, name and hash are required; times and status are kept as given (an expired
/// token stays expired, a disabled one disabled).
///
/// ```
/// use api_tokens::{ImportedToken, Status, UserId};
/// use api_tokens::legacy::{LegacyHash, LegacyScheme};
/// let row = ImportedToken::new("Your token".parse()?, UserId::from(2))
///     .permissions(api_tokens::PermissionSet::all())
///     .hash(LegacyHash::parse(LegacyScheme::ZabbixSha512, &"0f".repeat(64))?)
///     .status(Status::Disabled)
///     .created_at(time::macros::datetime!(2021-01-21 14:07:52 UTC));
/// # Ok::<(), api_tokens::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportedToken {
    /// The name, unique per owner.
    pub name: TokenName,
    /// Free text.
    pub description: String,
    /// The owner.
    pub owner: UserId,
    /// Who created it (default: the importing actor).
    pub creator: Option<UserId>,
    /// Enabled or disabled.
    pub status: Status,
    /// When it expires (kept even if past: an expired token is kept and refused).
    pub expiry: Expiry,
    /// When it was created (default: the import's instant). Also taken as when its secret
    /// was generated: other systems rarely keep that apart.
    pub created_at: Option<OffsetDateTime>,
    /// Its last successful use.
    pub last_use: Option<LastUse>,
    /// Its permissions, as for [`NewToken::permissions`](crate::NewToken::permissions):
    /// required by [`Policy::default`](crate::Policy::default); give
    /// [`PermissionSet::all`] (`"*"`) for all of the owner's rights, as a Zabbix token has.
    pub permissions: Option<PermissionSet>,
    /// Its allowlist (default: any address).
    pub allowlist: IpAllowlist,
    /// The other system's hash of its secret; `None` for a token that never had one
    /// (Zabbix's `token` column is empty until `token.generate`).
    pub hash: Option<LegacyHash>,
}

impl ImportedToken {
    /// A token named `name` of `owner`, every other field at its default.
    pub fn new(name: TokenName, owner: UserId) -> Self {
        Self {
            name,
            description: String::new(),
            owner,
            creator: None,
            status: Status::Enabled,
            expiry: Expiry::NEVER,
            created_at: None,
            last_use: None,
            permissions: None,
            allowlist: IpAllowlist::any(),
            hash: None,
        }
    }

    super::setters! {
        /// Sets the description.
        description(impl Into<String>) => Into::into;
        /// Sets the creator.
        creator(UserId) => Some;
        /// Sets the status.
        status(Status);
        /// Sets the expiry.
        expiry(Expiry);
        /// Sets the creation time (whole seconds).
        created_at(OffsetDateTime) => Some;
        /// Sets the last use.
        last_use(LastUse) => Some;
        /// Sets the permissions.
        permissions(PermissionSet) => Some;
        /// Sets the allowlist.
        allowlist(IpAllowlist);
        /// Sets the other system's hash of the secret.
        hash(LegacyHash) => Some;
    }
}

impl<S: TokenStore> Tokens<S> {
    /// Imports tokens from another system, keeping their secrets working: each one's hash in
    /// a [`LegacyScheme`](crate::legacy::LegacyScheme) this `Tokens` honours
    /// (`Tokens::with_legacy_scheme`, feature `legacy`) is stored (as a keyed hash of it, see
    /// [`LegacyHash`]), and a presented secret that matches it authenticates and is re-hashed
    /// the ordinary way on its first success. Name, description, owner, creator, status,
    /// expiry, creation and last-use times are kept. Returns the new ids in input order (the
    /// other system's ids are not kept: map them from this result).
    ///
    /// Importing is for an actor that manages every user's tokens
    /// ([`Actor::manage_others`]): an import keeps secrets the library did not generate. The
    /// names, descriptions, permissions and allowlists must pass the policy like new tokens';
    /// an expiry already past is kept as it is (the token stays expired), one still ahead must
    /// be within the policy's longest lifetime, like a new token's; creation and last-use
    /// times must lie between the Unix epoch and now. An inactive owner is kept (its tokens
    /// are refused at authentication, as before).
    ///
    /// # Errors
    /// Nothing is imported when any item is refused: the actor may not manage every user's
    /// tokens ([`Forbidden::ImportNeedsAdmin`]); a value breaks the policy; a creation or
    /// last-use time is out of range ([`Problem::OutOfRange`]); the name is taken for the owner (in the store
    /// or earlier in the batch); the owner is unknown; the permissions exceed the actor's
    /// privileges; a hash's scheme is not honoured ([`Problem::SchemeNotHonoured`]), the
    /// same hash appears twice ([`Problem::Duplicate`]), or an existing token was imported
    /// from it already ([`Problem::AlreadyImported`], see below); or the store fails.
    ///
    /// # One hash, one token
    /// A hash is imported once: each imported token keeps what it was imported from
    /// ([`Token::imported_from`], an [`ImportOrigin`](crate::legacy::ImportOrigin)) for its whole life,
    /// through its re-hash on first use, a new secret and revocation, and a later import of
    /// the same hash is refused, naming the token, even for another owner and after the hash
    /// key rotated (origins are compared under the current key and every old key held).
    /// Otherwise one secret would open two tokens, and revoking it (or the first token) would
    /// leave it working as the second. A token imported before origins were recorded is found
    /// by its imported hash until its first use replaces it.
    pub fn import(
        &self,
        actor: &Actor,
        items: impl IntoIterator<Item = ImportedToken>,
    ) -> Result<Vec<super::TokenId>> {
        if !actor.manage_tokens {
            return Err(Error::forbidden(None, Forbidden::CannotManageTokens));
        }
        // An import keeps another system's secrets (whatever their strength), expiry and times:
        // a migration an administrator runs, never a way for a user to choose a secret.
        if !actor.manage_others {
            return Err(Error::forbidden(None, Forbidden::ImportNeedsAdmin));
        }
        let items: Vec<ImportedToken> = items.into_iter().collect();
        let now = self.now();
        let mut names = HashSet::new();
        let mut hashes = HashSet::new();
        let mut imported: Vec<(usize, LegacyHash)> = Vec::new();
        let mut owners: HashMap<UserId, UserState> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let at = Some(i);
            let invalid = |e| Error::invalid(at, e);
            if !actor.may_manage(&item.owner) {
                return Err(Error::forbidden(at, Forbidden::OtherUsersTokens));
            }
            self.check_values(&item.name, &item.description, &item.allowlist)
                .map_err(invalid)?;
            // An expiry already past is kept (the token stays expired); one still ahead obeys
            // the policy's longest lifetime, like a new token's ("never" included).
            if !item.expiry.is_expired_at(now) {
                self.config
                    .policy
                    .check_expiry(&item.expiry, now)
                    .map_err(invalid)?;
            }
            check_past(item.created_at, Field::CreatedAt, now).map_err(invalid)?;
            check_past(item.last_use.map(|u| u.at), Field::LastUse, now).map_err(invalid)?;
            let state = owners
                .entry(item.owner.clone())
                .or_insert_with(|| self.config.directory.user(&item.owner));
            if matches!(state, UserState::Unknown) {
                return Err(invalid(ValidationError::new(
                    Field::Owner,
                    &item.owner,
                    Problem::UnknownUser,
                )));
            }
            self.check_new_permissions(actor, item.permissions.as_ref(), at)?;
            if let Some(h) = &item.hash {
                if !self.config.keys.legacy().contains(&h.scheme()) {
                    return Err(invalid(ValidationError::new(
                        Field::LegacyHash,
                        h.scheme(),
                        Problem::SchemeNotHonoured,
                    )));
                }
                if !hashes.insert(*h) {
                    return Err(invalid(ValidationError::new(
                        Field::LegacyHash,
                        h.scheme(),
                        Problem::Duplicate,
                    )));
                }
                imported.push((i, *h));
            }
            if !names.insert((item.owner.clone(), item.name.clone())) {
                return Err(invalid(ValidationError::new(
                    Field::Name,
                    &item.name,
                    Problem::Duplicate,
                )));
            }
            if self.store.find_name(&item.owner, &item.name)?.is_some() {
                return Err(invalid(name_taken(&item.owner, &item.name)));
            }
        }
        self.refuse_reimports(&imported)?;
        let ids = self.store.reserve_ids(items.len())?;
        let tokens: Vec<Token> = items
            .into_iter()
            .zip(ids)
            .map(|(item, id)| {
                let created_at = whole_seconds(item.created_at.unwrap_or(now));
                Token {
                    id,
                    name: item.name,
                    description: item.description,
                    owner: item.owner,
                    creator: item.creator.unwrap_or_else(|| actor.user.clone()),
                    status: item.status,
                    created_at,
                    expiry: item.expiry,
                    permissions: item.permissions.unwrap_or_else(|| actor.privileges.clone()),
                    allowlist: item.allowlist,
                    last_use: item.last_use.map(|u| LastUse {
                        at: whole_seconds(u.at),
                        ip: u.ip,
                    }),
                    secret: item.hash.map(|h| SecretState {
                        hash: self.config.keys.import_hash(h.scheme(), h.digest()),
                        scheme: HashScheme::legacy(h.scheme(), self.config.keys.current_id()),
                        generated_at: created_at,
                        previous: None,
                    }),
                    revision: 0,
                    revoked: None,
                    imported_from: item
                        .hash
                        .map(|h| self.config.keys.import_origin(h.scheme(), h.digest())),
                    limits: None,
                    balance: None,
                }
            })
            .collect();
        let changes = tokens.iter().cloned().map(Change::Insert).collect();
        match self.store.apply(changes) {
            Ok(()) => {}
            // Another import of the same hash got there first: the same condition, one error.
            Err(StoreError::HashTaken) => {
                self.refuse_reimports(&imported)?;
                return Err(Error::Store(StoreError::HashTaken));
            }
            Err(e) => return Err(name_conflict_at(e, &tokens)),
        }
        for t in &tokens {
            let legacy = t.secret.and_then(|s| s.scheme.legacy_scheme());
            self.emit(now, Some(actor), t, EventKind::Imported { legacy });
        }
        Ok(tokens.iter().map(|t| t.id).collect())
    }

    /// Refuses the first item (`(index, hash)`, in batch order) whose hash an existing token
    /// was imported from: a token whose [`ImportOrigin`](crate::legacy::ImportOrigin) is the hash's
    /// under any key held (one store call for the batch,
    /// [`TokenStore::find_imported`]), or, for tokens imported before origins were recorded,
    /// one that still holds the hash's lookup hash under any key held (one lookup by hash per
    /// item and key, as for a presented secret).
    fn refuse_reimports(&self, imported: &[(usize, LegacyHash)]) -> Result<()> {
        if imported.is_empty() {
            return Ok(());
        }
        let keys = &self.config.keys;
        let mut by_origin: HashMap<ImportOrigin, usize> = HashMap::new();
        let mut lookups = Vec::new();
        for (i, h) in imported {
            let (origins, hashes) = keys.import_traces(h.scheme(), h.digest());
            for o in origins {
                by_origin.entry(o).or_insert(*i);
            }
            lookups.extend(hashes.into_iter().map(|hash| (*i, hash)));
        }
        let origins: Vec<ImportOrigin> = by_origin.keys().copied().collect();
        let first = self
            .store
            .find_imported(&origins)?
            .into_iter()
            .filter_map(|(token, o)| Some((*by_origin.get(&o)?, token)))
            .min();
        if let Some((i, token)) = first {
            return Err(already_imported(imported, i, token));
        }
        for (i, hash) in lookups {
            let mut hit = None;
            self.store.authenticate(&hash, &mut |c| {
                hit = Some(c.id);
                None
            })?;
            if let Some(token) = hit {
                return Err(already_imported(imported, i, token));
            }
        }
        Ok(())
    }
}

/// The error for item `i` of an import, whose hash `token` was imported from.
fn already_imported(imported: &[(usize, LegacyHash)], i: usize, token: TokenId) -> Error {
    let scheme = imported
        .iter()
        .find(|(j, _)| *j == i)
        .map(|(_, h)| h.scheme().as_str())
        .unwrap_or_default();
    Error::invalid(
        Some(i),
        ValidationError::new(
            Field::LegacyHash,
            scheme,
            Problem::AlreadyImported { token },
        ),
    )
}
