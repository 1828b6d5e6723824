//! `report`: what an auditor asks for. Expiring and unused tokens (revoked ones left out: they
//! can never work again), and counts per owner.

use std::collections::BTreeMap;

use api_tokens::store::{SortField, SortOrder};
use api_tokens::{Query, Status, Token, UserId};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{Filter, Format, ReportCommand};
use crate::error::CliError;
use crate::output;
use crate::select::find;
use crate::setup::Ctx;

/// One owner's counts (the JSON and CSV rows of `report owners`; stable).
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct OwnerCounts {
    /// The owner.
    pub owner: String,
    /// Every token of the owner.
    pub tokens: u64,
    /// Enabled (not revoked).
    pub enabled: u64,
    /// Disabled, revoked ones included.
    pub disabled: u64,
    /// Expired now.
    pub expired: u64,
    /// Revoked for good.
    pub revoked: u64,
    /// Never used.
    pub never_used: u64,
}

const OWNER_COLUMNS: [&str; 7] = [
    "owner",
    "tokens",
    "enabled",
    "disabled",
    "expired",
    "revoked",
    "never_used",
];

/// The counts per owner, by owner.
pub fn owner_counts(tokens: &[Token], now: api_tokens::time::OffsetDateTime) -> Vec<OwnerCounts> {
    let mut by: BTreeMap<&UserId, OwnerCounts> = BTreeMap::new();
    for t in tokens {
        let c = by.entry(&t.owner).or_insert_with(|| OwnerCounts {
            owner: t.owner.to_string(),
            ..OwnerCounts::default()
        });
        c.tokens += 1;
        match t.status {
            Status::Enabled => c.enabled += 1,
            Status::Disabled => c.disabled += 1,
        }
        c.expired += u64::from(t.is_expired_at(now));
        c.revoked += u64::from(t.revoked.is_some());
        c.never_used += u64::from(t.last_use.is_none());
    }
    by.into_values().collect()
}

/// `report`.
pub fn run(ctx: &Ctx, cmd: &ReportCommand) -> Result<(), CliError> {
    let now = ctx.tokens.now();
    let mut out = std::io::stdout().lock();
    let (format, tokens) = match cmd {
        ReportCommand::Expiring { within, format } => {
            let filter = Filter {
                expiring_within: Some(*within),
                ..Filter::default()
            };
            let sort = (SortField::Expiry, SortOrder::Ascending);
            (*format, find(ctx, &filter, sort, None)?)
        }
        ReportCommand::Unused { since, format } => {
            let filter = Filter {
                unused_since: Some(*since),
                ..Filter::default()
            };
            let sort = (SortField::LastUsed, SortOrder::Ascending);
            (*format, find(ctx, &filter, sort, None)?)
        }
        ReportCommand::Owners { format } => {
            let counts = owner_counts(&ctx.tokens.list(&ctx.actor, &Query::new())?, now);
            let written = match format {
                Format::Json => output::json(&mut out, &counts),
                Format::Csv => {
                    let rows: Vec<Value> = counts
                        .iter()
                        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                        .collect();
                    output::csv_rows(&mut out, &OWNER_COLUMNS, &rows)
                }
                Format::Table => {
                    let rows: Vec<Vec<String>> = counts
                        .iter()
                        .map(|c| {
                            vec![
                                c.owner.clone(),
                                c.tokens.to_string(),
                                c.enabled.to_string(),
                                c.disabled.to_string(),
                                c.expired.to_string(),
                                c.revoked.to_string(),
                                c.never_used.to_string(),
                            ]
                        })
                        .collect();
                    output::table(
                        &mut out,
                        &[
                            "OWNER",
                            "TOKENS",
                            "ENABLED",
                            "DISABLED",
                            "EXPIRED",
                            "REVOKED",
                            "NEVER USED",
                        ],
                        &rows,
                    )
                }
            };
            return written.map_err(CliError::Output);
        }
    };
    let tokens: Vec<Token> = tokens.into_iter().filter(|t| t.revoked.is_none()).collect();
    output::tokens(&mut out, format, &tokens, now)
}
