//! The commands over tokens: list, show, create, update, enable, disable, delete, regenerate.

use std::collections::HashMap;

use api_tokens::store::SortOrder;
use api_tokens::time::OffsetDateTime;
use api_tokens::{
    IpAllowlist, NewToken, PermissionSet, Query, Revealed, Status, Token, TokenId, TokenName,
    TokenSecret, TokenUpdate, UserId,
};

use crate::cli::{
    CreateArgs, DeleteArgs, ListArgs, RegenerateArgs, SecretFormat, SecretOut, ShowArgs,
    StatusArgs, UpdateArgs,
};
use crate::error::CliError;
use crate::output;
use crate::secrets::{self, SecretFile};
use crate::select::{confirm, find, select, sort_field};
use crate::setup::Ctx;
use crate::span::Span;

/// `list`.
pub fn list(ctx: &Ctx, a: &ListArgs) -> Result<(), CliError> {
    let order = if a.desc {
        SortOrder::Descending
    } else {
        SortOrder::Ascending
    };
    let tokens = find(ctx, &a.filter, (sort_field(a.sort), order), a.limit)?;
    output::tokens(
        &mut std::io::stdout().lock(),
        a.format,
        &tokens,
        ctx.tokens.now(),
    )
}

/// `show`.
pub fn show(ctx: &Ctx, a: &ShowArgs) -> Result<(), CliError> {
    let token = ctx.tokens.get(&ctx.actor, a.id)?;
    output::token(
        &mut std::io::stdout().lock(),
        a.format,
        &token,
        ctx.tokens.now(),
    )
}

/// An allowlist from the command line: `''` or `any` is any address.
fn allowlist(text: &str) -> Result<IpAllowlist, CliError> {
    if text.trim() == "any" {
        return Ok(IpAllowlist::any());
    }
    Ok(text.parse()?)
}

/// An instant `d` from `now`.
fn from_now(now: OffsetDateTime, d: Span) -> OffsetDateTime {
    now.saturating_add(d.duration())
}

/// `create`.
pub fn create(ctx: &Ctx, a: &CreateArgs) -> Result<(), CliError> {
    let mut item = NewToken::new(TokenName::new(&a.name)?)
        .owner(UserId::new(&a.owner)?)
        .permissions(a.permissions.parse::<PermissionSet>()?);
    if let Some(list) = &a.allowlist {
        item = item.allowlist(allowlist(list)?);
    }
    if let Some(e) = a.expires {
        item = item.expiry(e);
    }
    if let Some(d) = a.expires_in {
        item = item.expires_at(from_now(ctx.tokens.now(), d));
    }
    if let Some(d) = &a.description {
        item = item.description(d.clone());
    }
    if a.disabled {
        item = item.status(Status::Disabled);
    }
    // The file first: an existing one refuses the command before a token exists.
    let file = a
        .secret_out
        .secret_file
        .as_deref()
        .map(SecretFile::create)
        .transpose()?;
    let issued = ctx.tokens.issue(&ctx.actor, item)?.reveal();
    let id = issued.token.id;
    let whereto = match hand_over(&a.secret_out, Shape::One, file, vec![issued])? {
        Some(path) => format!("its secret is in {path}, shown nowhere else"),
        None => "its secret is on stdout, shown this once".to_owned(),
    };
    eprintln!("created token {id} (owner {}); {whereto}", a.owner);
    Ok(())
}

/// How `--format json` writes new secrets: `create` one object, `regenerate` always an array
/// (a filter may select one token or many: the shape must not depend on how many).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    One,
    Array,
}

/// Hands new secrets over as `out` says: to the secret file, or on stdout (the secret alone,
/// or JSON). Returns the file's path when they went to one.
fn hand_over(
    out: &SecretOut,
    shape: Shape,
    file: Option<SecretFile>,
    revealed: Vec<Revealed>,
) -> Result<Option<String>, CliError> {
    let first = revealed
        .first()
        .map(|r| r.token.id)
        .unwrap_or(TokenId::new(0));
    let lost = |source| CliError::SecretLost { id: first, source };
    if let Some(file) = file {
        let path = file.path().display().to_string();
        if let [one] = revealed.as_slice() {
            file.write(one.secret().expose()).map_err(lost)?;
        }
        if out.format == SecretFormat::Json {
            let views: Vec<_> = revealed.iter().map(|r| &r.token).collect();
            let mut stdout = std::io::stdout().lock();
            match (shape, views.as_slice()) {
                (Shape::One, [view]) => output::json(&mut stdout, view),
                _ => output::json(&mut stdout, &views),
            }
            .map_err(CliError::Output)?;
        }
        return Ok(Some(path));
    }
    match out.format {
        SecretFormat::Secret => {
            for r in &revealed {
                secrets::to_stdout(r.secret().expose()).map_err(lost)?;
            }
        }
        SecretFormat::Json => {
            let mut stdout = std::io::stdout().lock();
            let result = match (shape, revealed.as_slice()) {
                (Shape::One, [one]) => output::json(&mut stdout, one),
                (_, many) => output::json(&mut stdout, &many),
            };
            result.map_err(lost)?;
        }
    }
    Ok(None)
}

/// `update`.
pub fn update(ctx: &Ctx, a: &UpdateArgs) -> Result<(), CliError> {
    let c = &a.change;
    if !c.is_set() {
        return Err(CliError::Usage(
            "nothing to change: give --name, --description, --expires, --expires-in, --permissions or --allowlist".into(),
        ));
    }
    let name = c.name.as_deref().map(TokenName::new).transpose()?;
    let permissions = c
        .permissions
        .as_deref()
        .map(str::parse::<PermissionSet>)
        .transpose()?;
    let allowlist = c.allowlist.as_deref().map(allowlist).transpose()?;
    let expiry = match (c.expires, c.expires_in) {
        (Some(e), _) => Some(e),
        (None, Some(d)) => Some(api_tokens::Expiry::at(from_now(ctx.tokens.now(), d))),
        (None, None) => None,
    };
    let tokens = select(ctx, &a.select, |_| true)?;
    confirm("Update", &tokens, a.select.yes)?;
    let updates = tokens.iter().map(|t| {
        let mut u = TokenUpdate::new(t.id);
        if let Some(n) = &name {
            u = u.name(n.clone());
        }
        if let Some(d) = &c.description {
            u = u.description(d.clone());
        }
        if let Some(e) = expiry {
            u = u.expiry(e);
        }
        if let Some(p) = &permissions {
            u = u.permissions(p.clone());
        }
        if let Some(l) = &allowlist {
            u = u.allowlist(l.clone());
        }
        u
    });
    let ids = ctx.tokens.update(&ctx.actor, updates)?;
    eprintln!("updated {}", ids_text(&ids));
    Ok(())
}

/// `enable` and `disable`. A filter (or `--all`) selects only the tokens the command changes:
/// `disable` the enabled ones, `enable` the disabled ones that were not revoked (those can
/// never be enabled). Ids given one by one are passed as they are.
pub fn set_status(ctx: &Ctx, a: &StatusArgs, to: Status) -> Result<(), CliError> {
    let tokens = select(ctx, &a.select, |t| {
        t.status != to && (to == Status::Disabled || t.revoked.is_none())
    })?;
    let verb = match to {
        Status::Enabled => "Enable",
        Status::Disabled => "Disable",
    };
    confirm(verb, &tokens, a.select.yes)?;
    let ids = ctx
        .tokens
        .set_status(&ctx.actor, tokens.iter().map(|t| t.id), to)?;
    eprintln!("{}d {}", verb.to_lowercase(), ids_text(&ids));
    Ok(())
}

/// `delete`.
pub fn delete(ctx: &Ctx, a: &DeleteArgs) -> Result<(), CliError> {
    let tokens = select(ctx, &a.select, |_| true)?;
    confirm("Delete", &tokens, a.select.yes)?;
    let ids = ctx.tokens.delete(&ctx.actor, tokens.iter().map(|t| t.id))?;
    eprintln!("deleted {}", ids_text(&ids));
    Ok(())
}

/// `regenerate`. A filter leaves revoked tokens out (they can never get a new secret).
pub fn regenerate(ctx: &Ctx, a: &RegenerateArgs) -> Result<(), CliError> {
    let tokens = select(ctx, &a.select, |t| t.revoked.is_none())?;
    let out = &a.secret_out;
    if tokens.len() > 1 {
        if out.secret_file.is_some() {
            return Err(CliError::Usage(format!(
                "--secret-file holds one token's secret, and {} tokens are selected: use --format json",
                tokens.len()
            )));
        }
        if out.format == SecretFormat::Secret {
            return Err(CliError::Usage(format!(
                "{} tokens are selected: --format json prints each with its secret (the plain secret is for one token)",
                tokens.len()
            )));
        }
    }
    confirm("Regenerate the secrets of", &tokens, a.select.yes)?;
    let file = out
        .secret_file
        .as_deref()
        .map(SecretFile::create)
        .transpose()?;
    let secrets = ctx.tokens.generate_with(
        &ctx.actor,
        tokens.iter().map(|t| t.id),
        a.grace.duration(),
        &mut rand::rng(),
    )?;
    let revealed = reveal(ctx, &tokens, secrets);
    let ids: Vec<TokenId> = revealed.iter().map(|r| r.token.id).collect();
    let handed = hand_over(out, Shape::Array, file, revealed)?;
    let (old, new) = match ids.len() {
        1 => ("the old secret", "its new secret is"),
        _ => ("the old secrets", "their new secrets are"),
    };
    let whereto = match handed {
        Some(path) => format!("{new} in {path}, shown nowhere else"),
        None => format!("{new} on stdout, shown this once"),
    };
    let grace = if a.grace.duration().is_zero() {
        format!("{old} stopped working")
    } else {
        format!("{old} keep working for {} at most", a.grace)
    };
    eprintln!("regenerated {}; {grace}; {whereto}", ids_text(&ids));
    Ok(())
}

/// The new secrets with their tokens as they are now. Should reading them back fail, the
/// views read before the change are used: the secrets must be handed over either way.
fn reveal(ctx: &Ctx, before: &[Token], secrets: Vec<(TokenId, TokenSecret)>) -> Vec<Revealed> {
    let ids = secrets.iter().map(|(id, _)| *id);
    let mut now: HashMap<TokenId, Token> = match ctx.tokens.list(&ctx.actor, &Query::new().ids(ids))
    {
        Ok(list) => list.into_iter().map(|t| (t.id, t)).collect(),
        Err(e) => {
            eprintln!(
                "warning: the tokens could not be read back ({e}); showing them as they were before"
            );
            HashMap::new()
        }
    };
    let mut before: HashMap<TokenId, &Token> = before.iter().map(|t| (t.id, t)).collect();
    secrets
        .into_iter()
        .filter_map(|(id, secret)| {
            let view = match now.remove(&id) {
                Some(t) => t.view(),
                None => before.remove(&id)?.view(),
            };
            Some(Revealed::new(view, secret))
        })
        .collect()
}

/// "token 4" or "3 tokens: 4, 5, 6".
fn ids_text(ids: &[TokenId]) -> String {
    let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
    match list.as_slice() {
        [one] => format!("token {one}"),
        _ => format!("{} tokens: {}", list.len(), list.join(", ")),
    }
}
