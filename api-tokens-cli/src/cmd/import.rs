//! `import zabbix FILE`: Zabbix's `token` table, exported as CSV, into the store. The old
//! secrets keep working (Zabbix's SHA-512 hashes, [`LegacyScheme::ZabbixSha512`]).
//!
//! Every row is read and checked first; the library's import then checks every token against
//! the policy and the store and writes all of them in one batch, or none. `--dry-run` runs the
//! same checks through a store wrapper that reads the real store and writes nothing.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api_tokens::store::{Candidate, Change};
use api_tokens::time::OffsetDateTime;
use api_tokens::{
    Expiry, ImportedToken, PermissionSet, Query, Status, StoreError, Token, TokenId, TokenName,
    TokenStore, UserId, keys::KeyUsage, legacy::LegacyHash, legacy::LegacyScheme,
    secret::SecretHash, token::LastUse,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{Format, ZabbixArgs};
use crate::error::{CliError, ItemError, RowError, RowProblem, file_error};
use crate::output;
use crate::select::ask;
use crate::setup::Ctx;

/// The most rows one import takes: the batch is one transaction held in memory.
pub const MAX_ROWS: usize = 100_000;

/// Zabbix's columns that must be there.
const REQUIRED: [&str; 7] = [
    "tokenid",
    "name",
    "userid",
    "token",
    "status",
    "expires_at",
    "created_at",
];

/// One row read: Zabbix's token id, the line it came from, the token to import.
struct Row {
    tokenid: String,
    line: u64,
    item: ImportedToken,
}

/// Zabbix user ids to user ids here.
enum Users {
    Mapped(HashMap<i64, UserId>),
    Same,
}

impl Users {
    fn get(&self, column: &'static str, id: i64) -> Result<UserId, RowProblem> {
        match self {
            Self::Same => Ok(UserId::new(&id.to_string())?),
            Self::Mapped(map) => map.get(&id).cloned().ok_or(RowProblem::Unmapped {
                column,
                userid: id.to_string(),
            }),
        }
    }
}

fn int(column: &'static str, value: &str) -> Result<i64, RowProblem> {
    value.trim().parse().map_err(|_| RowProblem::NotAnInteger {
        column,
        value: value.chars().take(40).collect(),
    })
}

/// A Unix time; `0` is none (Zabbix's "never").
fn time(column: &'static str, secs: i64) -> Result<Option<OffsetDateTime>, RowProblem> {
    match secs {
        0 => Ok(None),
        s => OffsetDateTime::from_unix_timestamp(s)
            .map(Some)
            .map_err(|_| RowProblem::Time { column, value: s }),
    }
}

/// Whether a nullable id column holds no id: empty, `0`, or a NULL as exports write it.
fn is_null(value: &str) -> bool {
    matches!(value.trim(), "" | "0" | "\\N" | "NULL" | "null")
}

/// The column positions in a header.
struct Columns(HashMap<String, usize>);

impl Columns {
    fn of(header: &csv::StringRecord, required: &[&'static str]) -> Result<Self, RowProblem> {
        let map: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().trim_start_matches('\u{feff}').to_owned(), i))
            .collect();
        if let Some(missing) = required.iter().find(|c| !map.contains_key(**c)) {
            return Err(RowProblem::MissingColumn(missing));
        }
        Ok(Self(map))
    }

    fn get<'r>(&self, row: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        self.0.get(column).and_then(|&i| row.get(i))
    }

    fn req<'r>(&self, row: &'r csv::StringRecord, column: &str) -> &'r str {
        self.get(row, column).unwrap_or("")
    }
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>, CliError> {
    let file = std::fs::File::open(path).map_err(file_error("read", path))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(file))
}

/// Every record of a CSV file with its line, at most [`MAX_ROWS`], and at least one; the
/// header must name the `required` columns.
fn records(
    path: &Path,
    required: &[&'static str],
) -> Result<(Columns, Vec<(u64, csv::StringRecord)>), CliError> {
    let row_err = |line: u64, problem: RowProblem| RowError::at(path, line, None, problem);
    let mut r = reader(path)?;
    let header = r.headers().map_err(|e| row_err(1, e.into()))?.clone();
    let columns = Columns::of(&header, required).map_err(|e| row_err(1, e))?;
    let mut out = Vec::new();
    for record in r.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            row_err(line, e.into())
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        if out.len() == MAX_ROWS {
            return Err(row_err(line, RowProblem::TooManyRows(MAX_ROWS)));
        }
        out.push((line, record));
    }
    if out.is_empty() {
        return Err(row_err(1, RowProblem::NoRows));
    }
    Ok((columns, out))
}

/// The user mapping file: `userid` and `user` (or `username`).
fn users(path: &Path) -> Result<Users, CliError> {
    let (columns, rows) = records(path, &["userid"])?;
    let err = |line, problem| RowError::at(path, line, None, problem);
    let target = match ["user", "username"]
        .into_iter()
        .find(|c| columns.0.contains_key(*c))
    {
        Some(c) => c,
        None => return Err(err(1, RowProblem::MissingColumn("user"))),
    };
    let mut map = HashMap::new();
    for (line, row) in rows {
        let id = int("userid", columns.req(&row, "userid")).map_err(|e| err(line, e))?;
        let user = UserId::new(columns.req(&row, target)).map_err(|e| err(line, e.into()))?;
        if map.insert(id, user).is_some() {
            return Err(err(line, RowProblem::MappedTwice(id.to_string())));
        }
    }
    Ok(Users::Mapped(map))
}

/// One row of Zabbix's `token` table as a token to import.
fn row(
    c: &Columns,
    r: &csv::StringRecord,
    users: &Users,
    permissions: &PermissionSet,
) -> Result<ImportedToken, RowProblem> {
    let owner = users.get("userid", int("userid", c.req(r, "userid"))?)?;
    let mut t = ImportedToken::new(TokenName::new(c.req(r, "name"))?, owner)
        .description(c.get(r, "description").unwrap_or_default())
        .permissions(permissions.clone())
        .status(match int("status", c.req(r, "status"))? {
            0 => Status::Enabled,
            1 => Status::Disabled,
            s => return Err(RowProblem::Status(s)),
        })
        .expiry(match int("expires_at", c.req(r, "expires_at"))? {
            0 => Expiry::NEVER,
            s => Expiry::from_unix(s)?,
        });
    if let Some(created) = time("created_at", int("created_at", c.req(r, "created_at"))?)? {
        t = t.created_at(created);
    }
    if let Some(used) = c.get(r, "lastaccess")
        && let Some(at) = time("lastaccess", int("lastaccess", used)?)?
    {
        t = t.last_use(LastUse { at, ip: None });
    }
    if let Some(creator) = c.get(r, "creator_userid").filter(|v| !is_null(v)) {
        t = t.creator(users.get("creator_userid", int("creator_userid", creator)?)?);
    }
    match c.req(r, "token").trim() {
        "" => {}
        hash => t = t.hash(LegacyHash::parse(LegacyScheme::ZabbixSha512, hash)?),
    }
    Ok(t)
}

/// A progress bar on stderr when it is a terminal; nothing when it is piped.
fn progress(len: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("checking");
    bar
}

/// The id map's rows (stable JSON: `zabbix_tokenid`, `id` (null in a dry run), `owner`,
/// `name`).
#[derive(Serialize)]
struct Mapped {
    zabbix_tokenid: String,
    id: Option<TokenId>,
    owner: UserId,
    name: TokenName,
}

const MAP_COLUMNS: [&str; 4] = ["zabbix_tokenid", "id", "owner", "name"];

/// `import zabbix`.
pub fn zabbix(ctx: &Ctx, a: &ZabbixArgs) -> Result<(), CliError> {
    let permissions: PermissionSet = a.permissions.parse()?;
    let users = match &a.users {
        Some(path) => users(path)?,
        None => Users::Same,
    };
    let (columns, records) = records(&a.file, &REQUIRED)?;
    let bar = progress(records.len());
    let mut rows = Vec::with_capacity(records.len());
    for (line, record) in &records {
        let tokenid = columns.get(record, "tokenid").map(str::to_owned);
        let problem = |problem| RowError::at(&a.file, *line, tokenid.clone(), problem);
        let item = row(&columns, record, &users, &permissions).map_err(problem)?;
        rows.push(Row {
            tokenid: tokenid.unwrap_or_default(),
            line: *line,
            item,
        });
        bar.inc(1);
    }
    // The import keeps Zabbix's hashes: this run honours their scheme whatever the options say.
    let settings = ctx.settings.clone().honouring(LegacyScheme::ZabbixSha512);
    let items: Vec<ImportedToken> = rows.iter().map(|r| r.item.clone()).collect();
    let by_index = |e: api_tokens::Error| match e.index().and_then(|i| rows.get(i).map(|r| (i, r)))
    {
        Some((index, r)) => CliError::ImportItem(Box::new(ItemError {
            source: e,
            index,
            tokenid: r.tokenid.clone(),
            line: r.line,
            file: a.file.clone(),
        })),
        None => CliError::Api(e),
    };
    if a.dry_run {
        bar.finish_and_clear();
        let dry = settings.tokens(DryRun::new(ctx.store.clone()));
        dry.import(&ctx.actor, items).map_err(by_index)?;
        write_map(a.format, &rows, None)?;
        eprintln!(
            "dry run: all {} rows would be imported; nothing was written",
            rows.len()
        );
        return Ok(());
    }
    bar.finish_and_clear();
    if rows.len() > 1 && !a.yes {
        let listed: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "Zabbix token {}  {}  (owner {})",
                    r.tokenid,
                    output::printable(r.item.name.as_str()),
                    output::printable(r.item.owner.as_str())
                )
            })
            .collect();
        ask(&format!("Import {} tokens:", rows.len()), &listed)?;
    }
    let spinner = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    spinner.set_message(format!("importing {} tokens in one batch", rows.len()));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let tokens = settings
        .tokens(ctx.store.clone())
        .with_events(ctx.audit.clone());
    let result = tokens.import(&ctx.actor, items);
    spinner.finish_and_clear();
    let ids = result.map_err(by_index)?;
    write_map(a.format, &rows, Some(&ids))?;
    let with_secret = rows.iter().filter(|r| r.item.hash.is_some()).count();
    eprintln!("imported {} tokens", ids.len());
    if with_secret > 0 && !ctx.settings.legacy.contains(&LegacyScheme::ZabbixSha512) {
        eprintln!(
            "note: {with_secret} of them keep their Zabbix secrets: the host honours the \
             legacy scheme zabbix-sha512 (Tokens::with_legacy_scheme) for as long as clients \
             present them, and later api-tokens commands say so too (--legacy-scheme \
             zabbix-sha512, or API_TOKENS_LEGACY_SCHEMES=zabbix-sha512); 'api-tokens keys \
             status' counts the Zabbix hashes not yet re-hashed by a first use"
        );
    }
    Ok(())
}

fn write_map(format: Format, rows: &[Row], ids: Option<&[TokenId]>) -> Result<(), CliError> {
    let mapped: Vec<Mapped> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Mapped {
            zabbix_tokenid: r.tokenid.clone(),
            id: ids.and_then(|ids| ids.get(i).copied()),
            owner: r.item.owner.clone(),
            name: r.item.name.clone(),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Json => output::json(&mut out, &mapped),
        Format::Csv => {
            let rows: Vec<Value> = mapped
                .iter()
                .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
                .collect();
            output::csv_rows(&mut out, &MAP_COLUMNS, &rows)
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = mapped
                .iter()
                .map(|m| {
                    vec![
                        m.zabbix_tokenid.clone(),
                        m.id.map_or_else(|| "-".to_owned(), |id| id.to_string()),
                        m.owner.to_string(),
                        m.name.to_string(),
                    ]
                })
                .collect();
            output::table(&mut out, &["ZABBIX TOKENID", "ID", "OWNER", "NAME"], &rows)
        }
    };
    written.map_err(CliError::Output)
}

/// A store that reads the real one and writes nothing: what `--dry-run` imports into. A batch
/// is checked for what the real store would refuse besides what the library checks first (a
/// secret hash some stored token has already), then dropped.
struct DryRun {
    inner: Arc<dyn TokenStore>,
    next: AtomicU64,
}

impl DryRun {
    fn new(inner: Arc<dyn TokenStore>) -> Self {
        // Ids far above any real one; never written anywhere.
        Self {
            inner,
            next: AtomicU64::new(1 << 62),
        }
    }
}

impl TokenStore for DryRun {
    fn reserve_ids(&self, n: usize) -> Result<Vec<TokenId>, StoreError> {
        let first = self.next.fetch_add(n as u64, Ordering::Relaxed);
        Ok((first..first + n as u64).map(TokenId::new).collect())
    }

    fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        for change in &changes {
            if let Change::Insert(t) = change {
                for hash in t.secret.iter().flat_map(|s| s.hashes()) {
                    if self.inner.authenticate(&hash, &mut |_| None)? {
                        return Err(StoreError::HashTaken);
                    }
                }
            }
        }
        Ok(())
    }

    fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
        self.inner.get(id)
    }

    fn find_name(&self, owner: &UserId, name: &TokenName) -> Result<Option<TokenId>, StoreError> {
        self.inner.find_name(owner, name)
    }

    fn query(&self, query: &Query, now: OffsetDateTime) -> Result<Vec<Token>, StoreError> {
        self.inner.query(query, now)
    }

    fn count(&self, query: &Query, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.inner.count(query, now)
    }

    fn authenticate(
        &self,
        hash: &SecretHash,
        check: &mut dyn FnMut(Candidate<'_>) -> Option<LastUse>,
    ) -> Result<bool, StoreError> {
        // Looked up, never recorded as a use.
        self.inner.authenticate(hash, &mut |c| {
            check(c);
            None
        })
    }

    fn key_usage(&self, now: OffsetDateTime) -> Result<Vec<KeyUsage>, StoreError> {
        self.inner.key_usage(now)
    }
}
