//! Which tokens a command works on: the library's [`Query`] from the filter flags, a
//! selection by ids or filter, and the confirmation a change to several tokens asks for.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, IsTerminal, Read, Write};

use api_tokens::store::{SortField, SortOrder, TimeRange};
use api_tokens::time::OffsetDateTime;
use api_tokens::{Query, Status, Token, TokenId, UserId};

use crate::cli::{Filter, Selection, SortArg, StatusArg};
use crate::error::CliError;
use crate::output::printable;
use crate::setup::Ctx;

/// The library's status.
pub fn status(s: StatusArg) -> Status {
    match s {
        StatusArg::Enabled => Status::Enabled,
        StatusArg::Disabled => Status::Disabled,
    }
}

/// The library's sort key.
pub fn sort_field(s: SortArg) -> SortField {
    match s {
        SortArg::Id => SortField::Id,
        SortArg::Name => SortField::Name,
        SortArg::Created => SortField::Created,
        SortArg::Expires => SortField::Expiry,
        SortArg::LastUsed => SortField::LastUsed,
        SortArg::Status => SortField::Status,
    }
}

fn users(names: &[String]) -> Result<Vec<UserId>, CliError> {
    Ok(names
        .iter()
        .map(|n| UserId::new(n))
        .collect::<Result<_, _>>()?)
}

/// The filters as a query, all but `--unused-since` (an "or" of two queries: see [`find`]).
fn query(filter: &Filter, now: OffsetDateTime) -> Result<Query, CliError> {
    let mut q = Query::new();
    if !filter.owners.is_empty() {
        q = q.owners(users(&filter.owners)?);
    }
    if !filter.creators.is_empty() {
        q = q.creators(users(&filter.creators)?);
    }
    if let Some(s) = filter.status {
        q = q.status(status(s));
    }
    if let Some(text) = &filter.name_contains {
        q = q.name_contains(text.clone());
    }
    if let Some(text) = &filter.description_contains {
        q = q.description_contains(text.clone());
    }
    if let Some(d) = filter.expiring_within {
        q = q.expiring_within(d.duration());
    }
    if filter.expired {
        q = q.expired_at(now);
    }
    if filter.never_used {
        q = q.last_used_at([None]);
    }
    Ok(q)
}

/// The tokens the filters match, sorted and limited as asked. `--unused-since D` matches
/// tokens last used before now − D or never used: two queries, merged, then sorted and limited
/// as one.
///
/// # Errors
/// A filter value the library refuses; store failures.
pub fn find(
    ctx: &Ctx,
    filter: &Filter,
    sort: (SortField, SortOrder),
    limit: Option<usize>,
) -> Result<Vec<Token>, CliError> {
    let now = ctx.tokens.now();
    let mut q = query(filter, now)?.sort(sort.0, sort.1);
    if let Some(n) = limit {
        q = q.limit(n);
    }
    let Some(since) = filter.unused_since.filter(|_| !filter.never_used) else {
        return Ok(ctx.tokens.list(&ctx.actor, &q)?);
    };
    let cutoff = now.saturating_sub(since.duration());
    let used_before = q.clone().last_used(TimeRange {
        from: None,
        until: Some(cutoff),
    });
    let never = q.clone().last_used_at([None]);
    let mut all = ctx.tokens.list(&ctx.actor, &used_before)?;
    all.extend(ctx.tokens.list(&ctx.actor, &never)?);
    q.sort_and_limit(&mut all);
    Ok(all)
}

/// The tokens a command that changes tokens works on: the ids given (in their order; each must
/// exist), or those the filter matches (by id), or every token with `--all`. `keep` drops
/// tokens a filter must not select (revoked tokens for `enable`, say): it is not applied to
/// ids given one by one, which the library refuses with its own error instead.
///
/// # Errors
/// Ids together with filters, neither of them, an id given twice ([`CliError::Usage`]); ids
/// that do not exist ([`CliError::NotFound`]); a filter that matches nothing
/// ([`CliError::NoMatch`]); store failures.
pub fn select(
    ctx: &Ctx,
    sel: &Selection,
    keep: impl Fn(&Token) -> bool,
) -> Result<Vec<Token>, CliError> {
    let filtered = sel.filter.is_set();
    match (sel.ids.is_empty(), filtered, sel.all) {
        (false, true, _) | (false, _, true) => {
            return Err(CliError::Usage(
                "give token ids or filters (or --all), not both".into(),
            ));
        }
        (_, true, true) => {
            return Err(CliError::Usage(
                "--all selects every token: drop it to use the filters".into(),
            ));
        }
        (true, false, false) => {
            return Err(CliError::Usage(
                "which tokens? give their ids, filters (--owner, --status, …: see --help), or --all"
                    .into(),
            ));
        }
        _ => {}
    }
    if sel.ids.is_empty() {
        let found: Vec<Token> = find(
            ctx,
            &sel.filter,
            (SortField::Id, SortOrder::Ascending),
            None,
        )?
        .into_iter()
        .filter(|t| keep(t))
        .collect();
        if found.is_empty() {
            return Err(CliError::NoMatch);
        }
        return Ok(found);
    }
    let mut seen = HashSet::new();
    if let Some(twice) = sel.ids.iter().find(|id| !seen.insert(**id)) {
        return Err(CliError::Usage(format!("token {twice} is given twice")));
    }
    let mut by_id: HashMap<TokenId, Token> = ctx
        .tokens
        .list(&ctx.actor, &Query::new().ids(sel.ids.iter().copied()))?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let missing: Vec<TokenId> = sel
        .ids
        .iter()
        .copied()
        .filter(|id| !by_id.contains_key(id))
        .collect();
    if !missing.is_empty() {
        return Err(CliError::NotFound(missing));
    }
    Ok(sel.ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// How many tokens a confirmation lists by name before "and N more".
const SHOWN: usize = 20;

/// Asks on stderr, and reads the answer from stdin, before changing more than one token
/// (`--yes` skips the question). Only `y` or `yes` goes ahead; anything else, or no answer at
/// all (stdin closed), changes nothing.
///
/// # Errors
/// [`CliError::Declined`].
pub fn confirm(action: &str, tokens: &[Token], yes: bool) -> Result<(), CliError> {
    if tokens.len() <= 1 || yes {
        return Ok(());
    }
    let lines: Vec<String> = tokens
        .iter()
        .map(|t| {
            format!(
                "{}  {}  (owner {})",
                t.id,
                printable(t.name.as_str()),
                printable(t.owner.as_str())
            )
        })
        .collect();
    ask(&format!("{action} {} tokens:", tokens.len()), &lines)
}

/// Asks `question` about the `items` listed, as [`confirm`] does.
///
/// # Errors
/// [`CliError::Declined`].
pub fn ask(question: &str, items: &[String]) -> Result<(), CliError> {
    let mut err = std::io::stderr().lock();
    // A prompt that cannot be shown is a question not asked: the answer below decides.
    let _ = writeln!(err, "{question}");
    for item in items.iter().take(SHOWN) {
        let _ = writeln!(err, "  {item}");
    }
    if items.len() > SHOWN {
        let _ = writeln!(err, "  … and {} more", items.len() - SHOWN);
    }
    let _ = write!(err, "Go ahead? [y/N] ");
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    let stdin = std::io::stdin();
    stdin
        .lock()
        .take(256)
        .read_line(&mut answer)
        .map_err(|_| CliError::Declined)?;
    if !stdin.is_terminal() {
        // The answer was not echoed: end the prompt's line.
        eprintln!("{}", answer.trim());
    }
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::Declined),
    }
}
