//! The command line: every command, flag and help text, as clap derives it.

use std::path::PathBuf;

use api_tokens::{Expiry, TokenId};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::span::Span;

const ABOUT: &str = "The operator's command line for api-tokens: list, create, change and revoke API \
tokens, import Zabbix tokens, check hash keys, report, over the library's SQLite and PostgreSQL \
stores.";

const AFTER_HELP: &str = "\
Examples:
  export API_TOKENS_DATABASE=/var/lib/app/tokens.db   # or postgresql://app@db/app
  export API_TOKENS_HASH_KEY=...                      # the host's key (64 hex digits or base64)
  api-tokens list --owner alice
  printf '%s\\n' \"$LEAKED\" | api-tokens revoke --secret-from-stdin
  api-tokens create --owner alice --name deploy --permissions 'dns.*' --expires-in 30d

Run 'api-tokens help COMMAND' for a command's flags and examples.";

const AFTER_LONG_HELP: &str = "\
Examples:
  export API_TOKENS_DATABASE=/var/lib/app/tokens.db   # or postgresql://app@db/app
  export API_TOKENS_HASH_KEY=...                      # the host's key (64 hex digits or base64)
  api-tokens list --owner alice
  printf '%s\\n' \"$LEAKED\" | api-tokens revoke --secret-from-stdin
  api-tokens create --owner alice --name deploy --permissions 'dns.*' --expires-in 30d

Where the tokens are:
  --database (or API_TOKENS_DATABASE) is a SQLite file path ('sqlite:' prefix optional) or a
  PostgreSQL connection string: a URL (postgres://, postgresql://) or libpq 'key=value' words,
  passed unchanged to the library's PostgresStore::connect (TLS as it gives it). A SQLite file
  must exist unless --create-database is given. Put a connection string holding a password in
  API_TOKENS_DATABASE rather than on the command line (shell history, ps).

The hash keys (checked before every command that opens the store):
  API_TOKENS_HASH_KEY (read as the host's HashKey::from_env) or --hash-key-file FILE holds the
  current key; API_TOKENS_OLD_HASH_KEY and --old-hash-key-file FILE (repeatable) the old keys
  held for verification during a rotation. Before every command the store's hashes are
  compared with these keys; a store holding hashes under a key that is not configured is
  refused (exit 3) naming the key ids, instead of every one of those tokens reading unknown.
  Configure the CLI as the host is configured: same keys, same --legacy-scheme, same --policy.

Behaviour:
  The CLI acts as an operator with full rights (an administrator that manages every user's
  tokens), named by --operator. Every change is written as an audit line, the library's event
  as JSON, to stderr or to --audit-log FILE. No secret is ever printed, except the new ones
  'create' and 'regenerate' print; secrets are never read from the command line. A change to
  more than one token asks for confirmation on stdin unless --yes is given.

Output:
  --format json writes the library's TokenView objects (times as RFC 3339 and as Unix seconds,
  '_unix'); --format csv the same members without the '_unix' twins; tables are for people.
  Data goes to stdout, messages and audit lines to stderr.

Errors:
  Printed on stderr as 'error[CODE]: message', where CODE is the library's stable code
  (not_found, name_taken, hash_keys_missing, ...) or one of the CLI's own (no_match, declined,
  file_exists, unknown_secret, invalid_row, ...).

Exit codes:
  0  done ('keys check': the keys match the store's hashes)
  1  refused or not found: the library refused a value or a change (its code says which), a
     token was not found or no token matched, a confirmation was declined, a file to write
     exists already, a secret belongs to no token
  2  usage: the command line is not understood (unknown flag, a bad duration, time or id,
     conflicting options)
  3  store or key problem: the database cannot be opened or failed, no hash key or an
     unreadable one, the keys do not match the store's hashes; or a file cannot be read or
     written (the audit log, an import file, a new secret's file)";

/// `api-tokens`: the operator's command line for API tokens.
#[derive(Debug, Parser)]
#[command(
    name = "api-tokens",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Where the tokens are and how to read them.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Store, keys and audit")]
pub struct Global {
    /// The store: a SQLite file path ('sqlite:' prefix optional) or a PostgreSQL connection
    /// string (postgres://… or 'host=… dbname=…')
    #[arg(
        long,
        env = "API_TOKENS_DATABASE",
        hide_env_values = true,
        global = true,
        value_name = "DATABASE"
    )]
    pub database: Option<String>,

    /// Create the SQLite database file if it does not exist (otherwise a missing file is an
    /// error, so a typo in the path never reads as an empty store)
    #[arg(long, global = true)]
    pub create_database: bool,

    /// A file holding the current hash key (64 hex digits or base64); without it the key is
    /// read from API_TOKENS_HASH_KEY
    #[arg(long, global = true, value_name = "FILE")]
    pub hash_key_file: Option<PathBuf>,

    /// A file holding an old hash key, held for verification during a rotation (repeat for
    /// several; API_TOKENS_OLD_HASH_KEY adds one more)
    #[arg(long = "old-hash-key-file", global = true, value_name = "FILE")]
    pub old_hash_key_files: Vec<PathBuf>,

    /// Use the library's public default hash key, for a store whose host uses
    /// HashKey::default() by choice (anyone can test guesses against such a store's hashes)
    #[arg(long, global = true, conflicts_with = "hash_key_file")]
    pub default_hash_key: bool,

    /// A legacy hash scheme the host honours for imported tokens (repeat or separate with
    /// commas), as Tokens::with_legacy_scheme
    #[arg(
        long = "legacy-scheme",
        env = "API_TOKENS_LEGACY_SCHEMES",
        value_delimiter = ',',
        global = true,
        value_enum,
        value_name = "SCHEME"
    )]
    pub legacy_schemes: Vec<LegacyArg>,

    /// The host's policy preset: name rules and the shape of secrets ('create' and
    /// 'regenerate' make secrets of this shape; 'revoke' reads them)
    #[arg(
        long,
        env = "API_TOKENS_POLICY",
        global = true,
        value_enum,
        default_value_t = PolicyArg::Default
    )]
    pub policy: PolicyArg,

    /// The prefix of the host's secrets, when it is not 'tok' (default policy only)
    #[arg(
        long,
        env = "API_TOKENS_SECRET_PREFIX",
        global = true,
        value_name = "PREFIX"
    )]
    pub secret_prefix: Option<String>,

    /// Who the audit lines name as the actor, and the creator of tokens this CLI creates or
    /// regenerates [default: $USER]
    #[arg(long, env = "API_TOKENS_OPERATOR", global = true, value_name = "USER")]
    pub operator: Option<String>,

    /// Append the audit lines (one JSON event per change) to FILE instead of stderr
    #[arg(long, global = true, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List tokens, with the library's filters
    #[command(after_help = "\
Examples:
  api-tokens list
  api-tokens list --owner alice --status enabled
  api-tokens list --expiring-within 7d --format csv > expiring.csv
  api-tokens list --unused-since 90d --sort last-used
  api-tokens list --name-contains deploy --format json | jq '.[].id'")]
    List(ListArgs),

    /// Show one token
    #[command(after_help = "\
Examples:
  api-tokens show 42
  api-tokens show 42 --format json")]
    Show(ShowArgs),

    /// Create a token and print its secret, once, on stdout (nothing else goes to stdout)
    #[command(after_help = "\
Examples:
  api-tokens create --owner alice --name deploy --permissions 'dns.*, mail.send' --expires-in 30d
  api-tokens create --owner ci --name build --permissions deploy --allowlist 10.0.0.0/8 \\
      --expires 2026-12-31T23:59:59Z --secret-file ./build.secret
  SECRET=$(api-tokens create --owner ci --name nightly --permissions '*' --expires-in 7d)")]
    Create(CreateArgs),

    /// Change tokens: name, description, expiry, permissions, allowlist (never the owner)
    #[command(after_help = "\
Examples:
  api-tokens update 42 --expires-in 30d
  api-tokens update 42 --permissions 'dns.read' --allowlist ''     # '' or 'any': any address
  api-tokens update --owner alice --expires never --yes")]
    Update(UpdateArgs),

    /// Enable tokens (a filter selects the disabled ones; revoked tokens are never enabled)
    #[command(after_help = "\
Examples:
  api-tokens enable 42 43
  api-tokens enable --owner alice")]
    Enable(StatusArgs),

    /// Disable tokens: refused at once, kept, can be enabled again
    #[command(after_help = "\
Examples:
  api-tokens disable 42
  api-tokens disable --owner bob --yes        # every enabled token of bob
  api-tokens disable --unused-since 180d")]
    Disable(StatusArgs),

    /// Delete tokens
    #[command(after_help = "\
Examples:
  api-tokens delete 42
  api-tokens delete --expired --owner bob")]
    Delete(DeleteArgs),

    /// Give tokens new secrets and print them; the old secrets stop working at once or after
    /// --grace
    #[command(after_help = "\
Examples:
  api-tokens regenerate 42 > new.secret
  api-tokens regenerate 42 --grace 1h --secret-file ./deploy.secret
  api-tokens regenerate --owner ci --grace 1d --format json --yes > secrets.json")]
    Regenerate(RegenerateArgs),

    /// Revoke, for good, the token a leaked secret belongs to; the secret is read from stdin
    #[command(after_help = "\
The secret is read from stdin, never from the command line (shell history, ps). The token is
disabled for good and its secret hashes dropped: the leaked secret is refused from the moment
this returns, and the token can never be enabled again or given a new secret.

Examples:
  printf '%s\\n' \"$LEAKED\" | api-tokens revoke --secret-from-stdin
  api-tokens revoke --secret-from-stdin < leaked.txt
  api-tokens revoke --secret-from-stdin          # on a terminal: paste it, then Enter")]
    Revoke(RevokeArgs),

    /// Import tokens from another system, keeping their secrets
    #[command(subcommand)]
    Import(ImportCommand),

    /// The hash keys: check them against the store, or show what each one backs
    #[command(subcommand)]
    Keys(KeysCommand),

    /// Reports for audits: tokens expiring soon, unused tokens, counts per owner
    #[command(subcommand)]
    Report(ReportCommand),

    /// Print a shell completion script
    #[command(after_help = "\
Examples:
  api-tokens completions bash > /etc/bash_completion.d/api-tokens
  api-tokens completions zsh > \"${fpath[1]}/_api-tokens\"
  api-tokens completions fish > ~/.config/fish/completions/api-tokens.fish")]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The library's filters, shared by `list` and the commands that change tokens.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Filters")]
pub struct Filter {
    /// Only tokens of this owner (repeat for several)
    #[arg(long = "owner", value_name = "USER")]
    pub owners: Vec<String>,
    /// Only tokens created, or last regenerated, by this user (repeat for several)
    #[arg(long = "creator", value_name = "USER")]
    pub creators: Vec<String>,
    /// Only enabled, or only disabled, tokens
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Only tokens whose name contains TEXT (case-insensitive)
    #[arg(long, value_name = "TEXT")]
    pub name_contains: Option<String>,
    /// Only tokens whose description contains TEXT (case-insensitive)
    #[arg(long, value_name = "TEXT")]
    pub description_contains: Option<String>,
    /// Only tokens not expired now that expire within DURATION (30d, 12h, ...)
    #[arg(long, value_name = "DURATION", conflicts_with = "expired")]
    pub expiring_within: Option<Span>,
    /// Only tokens expired now
    #[arg(long)]
    pub expired: bool,
    /// Only tokens not used within the last DURATION, or never used
    #[arg(long, value_name = "DURATION")]
    pub unused_since: Option<Span>,
    /// Only tokens never used
    #[arg(long)]
    pub never_used: bool,
}

impl Filter {
    /// Whether any filter is set.
    pub fn is_set(&self) -> bool {
        !self.owners.is_empty()
            || !self.creators.is_empty()
            || self.status.is_some()
            || self.name_contains.is_some()
            || self.description_contains.is_some()
            || self.expiring_within.is_some()
            || self.expired
            || self.unused_since.is_some()
            || self.never_used
    }
}

/// Which tokens a command that changes tokens works on: ids, or a filter, or `--all`.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Token ids (or select with the filters, or --all)
    #[arg(value_name = "ID")]
    pub ids: Vec<TokenId>,
    #[command(flatten)]
    pub filter: Filter,
    /// Every token (a command without ids or filters selects nothing)
    #[arg(long)]
    pub all: bool,
    /// Change several tokens without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: Filter,
    /// Sort by
    #[arg(long, value_enum, default_value_t = SortArg::Id)]
    pub sort: SortArg,
    /// Largest first
    #[arg(long)]
    pub desc: bool,
    /// At most N tokens
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The token's id
    pub id: TokenId,
    /// Output format
    #[arg(long, value_enum, default_value_t = DetailFormat::Table)]
    pub format: DetailFormat,
}

/// `create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The user the token authenticates as
    #[arg(long, value_name = "USER")]
    pub owner: String,
    /// Its name, unique per owner
    #[arg(long)]
    pub name: String,
    /// What it may do: a comma-separated list ('dns.*, mail.send'), or '*' for all of its
    /// owner's rights
    #[arg(long, value_name = "LIST")]
    pub permissions: String,
    /// Where it may be used from: addresses and networks, comma-separated (default: anywhere)
    #[arg(long, value_name = "LIST")]
    pub allowlist: Option<String>,
    /// When it expires: RFC 3339 (2026-12-31T23:59:59Z), Unix seconds, or 'never'
    #[arg(long, value_name = "RFC3339", conflicts_with = "expires_in")]
    pub expires: Option<Expiry>,
    /// Expires DURATION from now (30d, 12h, 2w, ...)
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<Span>,
    /// Free text
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Create it disabled
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub secret_out: SecretOut,
}

/// Where a new secret goes.
#[derive(Debug, Args)]
pub struct SecretOut {
    /// Write the secret to FILE (created with mode 0600; an existing file is never
    /// overwritten) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// 'secret': the secret alone on stdout; 'json': the token and its secret as JSON (the
    /// library's TokenView members and "secret")
    #[arg(long, value_enum, default_value_t = SecretFormat::Secret)]
    pub format: SecretFormat,
}

/// `update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub select: Selection,
    #[command(flatten)]
    pub change: Change,
}

/// What `update` changes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Changes")]
pub struct Change {
    /// New name
    #[arg(long)]
    pub name: Option<String>,
    /// New description
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// New expiry: RFC 3339, Unix seconds, or 'never' to clear it
    #[arg(long, value_name = "RFC3339", conflicts_with = "expires_in")]
    pub expires: Option<Expiry>,
    /// Expires DURATION from now
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<Span>,
    /// New permissions (comma-separated; '*' for all of the owner's rights)
    #[arg(long, value_name = "LIST")]
    pub permissions: Option<String>,
    /// New allowlist (comma-separated; '' or 'any' for any address)
    #[arg(long, value_name = "LIST")]
    pub allowlist: Option<String>,
}

impl Change {
    /// Whether anything is to change.
    pub fn is_set(&self) -> bool {
        self.name.is_some()
            || self.description.is_some()
            || self.expires.is_some()
            || self.expires_in.is_some()
            || self.permissions.is_some()
            || self.allowlist.is_some()
    }
}

/// `enable` and `disable`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub select: Selection,
}

/// `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub select: Selection,
}

/// `regenerate`.
#[derive(Debug, Args)]
pub struct RegenerateArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Keep each old secret working for DURATION (at most the policy's longest grace, a week
    /// by default; never beyond the token's expiry)
    #[arg(long, value_name = "DURATION", default_value = "0")]
    pub grace: Span,
    #[command(flatten)]
    pub secret_out: SecretOut,
}

/// `revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Read the leaked secret from stdin (the only way: never from the command line)
    #[arg(long, required = true)]
    pub secret_from_stdin: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = DetailFormat::Table)]
    pub format: DetailFormat,
}

/// `import`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import Zabbix's `token` table, exported as CSV; the old secrets keep working
    #[command(after_help = "\
The file is Zabbix's token table as CSV with a header row of Zabbix's column names, for
example from PostgreSQL:
  \\copy (SELECT tokenid, name, description, userid, token, lastaccess, status, expires_at,
         created_at, creator_userid FROM token) TO 'token.csv' CSV HEADER
The user mapping file is CSV with a header row: 'userid' (Zabbix's) and 'user' (the user id
in this system), so an export of SELECT userid, username FROM users works as it is ('username'
is read like 'user'). Every owner and creator must be mapped, or pass --same-user-ids.

The import is all-or-nothing: every row is checked first, then all are written at once.
Imported tokens keep their secrets (Zabbix's SHA-512 hashes, honoured with the legacy scheme
zabbix-sha512): the host honours that scheme (Tokens::with_legacy_scheme) for as long as
clients present Zabbix secrets, and later api-tokens commands say so too (--legacy-scheme
zabbix-sha512, or API_TOKENS_LEGACY_SCHEMES).

Examples:
  api-tokens import zabbix token.csv --users users.csv --dry-run
  api-tokens import zabbix token.csv --users users.csv --yes --format csv > id-map.csv")]
    Zabbix(ZabbixArgs),
}

/// `import zabbix`.
#[derive(Debug, Args)]
pub struct ZabbixArgs {
    /// Zabbix's token table as CSV (header row of Zabbix's column names)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The user mapping: CSV with the columns 'userid' (Zabbix's) and 'user' (or 'username')
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "same_user_ids",
        conflicts_with = "same_user_ids"
    )]
    pub users: Option<PathBuf>,
    /// Keep Zabbix's numeric user ids as the owners' user ids
    #[arg(long)]
    pub same_user_ids: bool,
    /// The imported tokens' permissions (default '*': all of the owner's rights, as a Zabbix
    /// token has)
    #[arg(long, value_name = "LIST", default_value = "*")]
    pub permissions: String,
    /// Check every row as the import would, against the store, and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Import several tokens without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Output format of the id map (Zabbix tokenid -> new id)
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Check that every hash in the store was made under a configured key (exit 0), or name
    /// the missing keys (exit 3)
    #[command(after_help = "\
Examples:
  api-tokens keys check && systemctl start app      # before a deploy
  api-tokens keys check --hash-key-file /etc/app/new.key --old-hash-key-file /etc/app/old.key")]
    Check(KeysArgs),
    /// Show how many hashes each key and each legacy scheme backs (when an old key can go)
    #[command(after_help = "\
Examples:
  api-tokens keys status
  api-tokens keys status --format json | jq '.usage'")]
    Status(KeysArgs),
}

/// `keys check` and `keys status`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = DetailFormat::Table)]
    pub format: DetailFormat,
}

/// `report`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Tokens that expire within DURATION (revoked tokens left out)
    #[command(after_help = "\
Examples:
  api-tokens report expiring
  api-tokens report expiring --within 30d --format json")]
    Expiring {
        /// The window
        #[arg(long, value_name = "DURATION", default_value = "7d")]
        within: Span,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Tokens not used within DURATION, or never used (revoked tokens left out)
    #[command(after_help = "\
Examples:
  api-tokens report unused
  api-tokens report unused --since 180d --format csv > unused.csv")]
    Unused {
        /// The window
        #[arg(long, value_name = "DURATION", default_value = "90d")]
        since: Span,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Token counts per owner: total, enabled, disabled, expired, revoked, never used
    #[command(after_help = "\
Examples:
  api-tokens report owners
  api-tokens report owners --format json")]
    Owners {
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// Output formats of listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, for people
    Table,
    /// A JSON array (stable: the library's TokenView objects)
    Json,
    /// CSV with a header row
    Csv,
}

/// Output formats of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetailFormat {
    /// Lines of 'field  value', for people
    Table,
    /// A JSON object
    Json,
}

/// What `create` and `regenerate` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretFormat {
    /// The secret alone (one token only)
    Secret,
    /// The token and its secret as JSON
    Json,
}

/// A status filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Enabled tokens
    Enabled,
    /// Disabled tokens (revoked ones among them)
    Disabled,
}

/// Sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    /// Token id
    Id,
    /// Name
    Name,
    /// Creation time
    Created,
    /// Expiry (never-expiring last)
    Expires,
    /// Last use (never-used first)
    LastUsed,
    /// Status (enabled first)
    Status,
}

/// The policy presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Policy::default(): secrets 'tok_…' with a checksum, permissions required
    Default,
    /// Policy::zabbix(): secrets of 64 hex digits
    Zabbix,
    /// Policy::cpanel(): secrets of 32 characters [0-9A-Z], names [A-Za-z0-9_-]
    Cpanel,
}

/// Legacy hash schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LegacyArg {
    /// Zabbix's SHA-512 token hashes
    #[value(name = "zabbix-sha512")]
    ZabbixSha512,
    /// Plain SHA-256 of the secret
    #[value(name = "sha256")]
    Sha256,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
