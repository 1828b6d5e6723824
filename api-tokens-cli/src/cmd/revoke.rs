//! `revoke --secret-from-stdin`: revocation by possession of a leaked secret.

use api_tokens::{Revocation, SecretFormat, Status, Token, TokenId, TokenRevocation};
use serde::Serialize;

use crate::cli::{DetailFormat, RevokeArgs};
use crate::error::CliError;
use crate::output;
use crate::secrets;
use crate::setup::Ctx;

/// What a revocation did to one token, in the CLI's terms.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Revoked by this call, with its status before.
    Revoked(TokenId, Status),
    /// The secret is a replaced one of this token, past its grace: nothing changed for it.
    NoLongerValid(TokenId),
    /// An outcome this CLI does not know (a later library's), as its `Debug` (ids only).
    Unrecognised(String),
}

/// The one place that reads the library's [`Revocation`]: one outcome per token the secret
/// matched (none: it matched no token).
fn outcomes(r: &Revocation) -> Vec<Outcome> {
    r.tokens()
        .iter()
        .map(|t| match *t {
            TokenRevocation::Disabled(id) => Outcome::Revoked(id, Status::Enabled),
            TokenRevocation::AlreadyDisabled(id) => Outcome::Revoked(id, Status::Disabled),
            TokenRevocation::NoLongerValid(id) => Outcome::NoLongerValid(id),
            other => Outcome::Unrecognised(format!("{other:?}")),
        })
        .collect()
}

/// What secrets look like here, for the message that refuses another shape.
fn expected_shape(ctx: &Ctx) -> String {
    let mut shapes = vec![match &ctx.tokens.policy().secret_format {
        SecretFormat::Prefixed(p) => format!("'{}_' and 49 letters and digits", p.as_str()),
        SecretFormat::Zabbix => "64 hex digits (policy zabbix)".to_owned(),
        SecretFormat::Cpanel => "32 characters 0-9 and A-Z (policy cpanel)".to_owned(),
        _ => "the policy's format".to_owned(),
    }];
    shapes.extend(
        ctx.settings
            .legacy
            .iter()
            .map(|l| format!("a {l} legacy secret")),
    );
    let mut text = shapes.join(", or ");
    if ctx.settings.legacy.is_empty() {
        text.push_str(
            "; an imported secret needs --legacy-scheme, another host's format --policy or --secret-prefix",
        );
    }
    text
}

#[derive(Serialize)]
struct Report<'a> {
    outcome: &'static str,
    tokens: Vec<&'a Token>,
}

/// `revoke`.
pub fn revoke(ctx: &Ctx, a: &RevokeArgs) -> Result<(), CliError> {
    let secret = secrets::from_stdin()?;
    let shape_ok = ctx.tokens.policy().secret_format.parse(&secret).is_ok()
        || ctx.settings.legacy.iter().any(|l| l.accepts_shape(&secret));
    if !shape_ok {
        return Err(CliError::SecretShape {
            expected: expected_shape(ctx),
        });
    }
    let result = ctx.tokens.revoke_by_secret(&secret)?;
    drop(secret);
    let found = outcomes(&result);
    if found.is_empty() {
        return Err(CliError::UnknownSecret);
    }
    let mut changed: Vec<(TokenId, Option<Status>)> = Vec::with_capacity(found.len());
    for o in found {
        match o {
            Outcome::Revoked(id, was) => changed.push((id, Some(was))),
            Outcome::NoLongerValid(id) => changed.push((id, None)),
            Outcome::Unrecognised(what) => return Err(CliError::UnknownOutcome(what)),
        }
    }
    let word = if changed.iter().any(|(_, was)| was.is_some()) {
        "revoked"
    } else {
        "no_longer_valid"
    };
    // The tokens as they are now (revoked tokens stay listed).
    let mut tokens = Vec::new();
    for (id, _) in &changed {
        tokens.push(ctx.tokens.get(&ctx.actor, *id)?);
    }
    let mut out = std::io::stdout().lock();
    let written = match a.format {
        DetailFormat::Json => output::json(
            &mut out,
            &Report {
                outcome: word,
                tokens: tokens.iter().collect(),
            },
        ),
        DetailFormat::Table => tokens.iter().zip(&changed).try_for_each(|(t, (_, was))| {
            use std::io::Write;
            let name = output::printable(t.name.as_str());
            let owner = output::printable(t.owner.as_str());
            match was {
                Some(was) => writeln!(
                    out,
                    "revoked token {} \"{name}\" (owner {owner}), which was {}: its secret is \
                     refused from now on, and the token can never be enabled again",
                    t.id,
                    match was {
                        Status::Enabled => "enabled",
                        Status::Disabled => "disabled",
                    }
                ),
                None => writeln!(
                    out,
                    "this secret was replaced and no longer works for token {} \"{name}\" \
                     (owner {owner}); nothing was changed",
                    t.id
                ),
            }
        }),
    };
    written.map_err(CliError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_revocation_reads_as_an_outcome() {
        assert_eq!(outcomes(&Revocation::default()), vec![]);
    }
}
