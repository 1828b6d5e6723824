//! cPanel & WHM API 1's `api_token_*` functions over api-tokens, answering as WHM does.
//!
//! Reads one call per line from a file named on the command line or from stdin, written as the
//! WHM URL path and query (`api_token_create?token_name=example&acl-0=kill-acct`), and prints
//! each response as one line of JSON in WHM's shape: `metadata` (`command`, `reason`, `result`
//! `1` or `0`, `version`) and, where the function returns something, `data`.
//!
//! ```sh
//! echo 'api_token_create?token_name=example&acl-0=kill-acct' | cargo run --example whm_api
//! ```
//!
//! Options: `--user NAME` and `--privileges LIST` (the WHM user calling: default `root` with
//! `all`), `--acls FILE` (the server's ACL names, one per line; default: the list of WHM's
//! `setacls` documentation), `--now UNIX` (fix the clock).
//!
//! # Functions, parameters and answers
//! The references are the WHM API 1 documentation of `api_token_create`, `_list`, `_update`,
//! `_revoke` and `_get_details`, and the texts the issue gives for cPanel's implementation. A
//! repeated parameter takes the `-N` form (`acl-0`, `acl-1`, …; a bare `acl` counts first).
//!
//! | function | parameters | `data` |
//! | --- | --- | --- |
//! | `api_token_create` | `token_name` (required), `acl`/`acl-N` (default: every privilege of the caller), `expires_at` (Unix time; `0` never), `whitelist_ip`/`whitelist_ip-N` | `acls` (absent for a full-access token), `create_time`, `expires_at` (`null`: never), `name`, `token` (shown once), `whitelist_ips` (`null`: any) |
//! | `api_token_list` | — | `tokens`: by name, each `acls` (every ACL of the caller: `1` the token has it, `0` not; absent for full access), `create_time`, `expires_at`, `name`, `whitelist_ips`, and for a token revoked by possession `revoke_time` (the example's own) |
//! | `api_token_update` | `token_name` (required), `new_name`, `acl`/`acl-N` (replaces all), `expires_at` (`0` clears), `whitelist_ip`/`whitelist_ip-N` (replaces all; `whitelist_ip=any` clears) | as create, without `token` |
//! | `api_token_revoke` | `token_name`/`token_name-N` (names that do not exist are skipped) | none |
//! | `api_token_get_details` | `token` (the plaintext token) | as update; no `data` at all for an unknown, expired or revoked token |
//! | `api_token_revoke_leaked` (the example's own) | `token` (a leaked plaintext token) | none, also when no token has that secret |
//!
//! `whitelist_ips` are written as WHM writes them: IPv4 before IPv6, sorted by address, IPv6
//! fully expanded (`fc00:abcd:0000:0000:0000:0000:0000:000f`), single-host suffixes (`/32`,
//! `/128`) dropped, duplicates removed. `api.version` is accepted on every call.
//!
//! # Revocation by possession (the example's own)
//! WHM revokes tokens by name only. The library's `revoke_by_secret` is final, and the example
//! maps it onto WHM's forms: `api_token_revoke_leaked?token=…` revokes every token the secret
//! belongs to (by any route the library matches it: a secret imported twice before that was
//! refused may open two); the secret stops working at once (`api_token_get_details` has no `data` for it:
//! its hash is dropped); the token stays in `api_token_list` with `revoke_time` (Unix time);
//! `api_token_update` refuses it, whatever it would change; `api_token_revoke` by name removes
//! it, which frees the name.
//!
//! | rule | `reason` (with `result: 0`) | source |
//! | --- | --- | --- |
//! | an unknown function | `Unknown app ("x") requested for this version (1) of the API.` | WHM |
//! | a name missing (get_details, revoke_leaked: the token) | `Provide the "token_name" argument.` (`Provide the "token" argument.`) | the example's, after the revoke text |
//! | a name invalid (empty, over 50, outside `a-z A-Z 0-9 _ -`) | `"X" is not a valid API token name. An API token name must not be longer than 50 characters and may only contain the following characters: a-z A-Z 0-9 _ -` | issue |
//! | create: the name taken | `A conflicting API token with the name "X" already exists.` | issue |
//! | update: `new_name` taken | `An API token with the name "X" already exists.` | issue |
//! | update, get: no token by that name | `The API token "X" does not exist.` | the example's |
//! | an ACL unknown or not held by the caller | `Invalid or unauthorized ACL(s) specified: a and b` (`a, b, and c` for three) | issue |
//! | `expires_at` at or before now | `The "X" value must be a future date.` | issue |
//! | `expires_at` not a number | `"X" is not a valid UNIX epoch timestamp.` | issue |
//! | a whitelist entry that is not an address or range (leading zeros, host bits beyond the prefix, empty, `any` beside addresses) | `Invalid IP address or CIDR range specified: X` | issue |
//! | more than 100 whitelist entries | `You have entered "N" IP addresses, which is above the limit of 100.` | issue |
//! | more than 1,000 parameters (30,000 `acl-N` included) | `You have entered "N" parameters, which is above the limit of 1000.` | the example's bound, in the IP limit's words |
//! | revoke: no name | `Provide at least one "token_name" argument.` | issue |
//! | update: nothing to change | `Specify a new name, updated ACLs, or IPs.` | issue |
//! | update: a token revoked by possession (any change) | `The API token "X" was revoked because its secret was reported leaked: it cannot be updated.` | the example's |
//! | update: an unknown parameter | `Unrecognized API token update parameter(s): x, y` | issue (the list's separator is the example's) |
//! | create, list, revoke, get, revoke_leaked: an unknown parameter | `Unrecognized API token create parameter(s): x` (`list`, `revoke`, `details`, `revoke_leaked`) | the example's, after the update text; WHM may ignore them |
//! | a single-valued parameter given twice | `The "token_name" argument may be given only once.` | the example's |
//! | a call line over 1 MiB | `The request is too large.` | the example's bound |
//!
//! # Where the example differs from WHM
//! * A token created without `acl` gets the caller's privileges as they are at creation (for
//!   `root`, every privilege); WHM's full-access tokens follow the reseller's privileges later on.
//! * A whitelist entry inside another entry is dropped (`1.1.1.1` beside `1.1.1.0/24`): the
//!   library keeps allowlists normalised; WHM keeps both.
//! * The texts marked "the example's" are not WHM's (not confirmed against a running server), and
//!   the order in which WHM checks the parameters is not known: the example checks name, ACLs,
//!   expiry, whitelist, in that order.

mod call;

use std::error::Error as StdError;
use std::io::{BufRead, Read};
use std::sync::Arc;

use api_tokens::{
    Actor, Error, Expiry, IpAllowlist, NewToken, Permission, PermissionSet, Policy, Problem, Query,
    Token, TokenName, TokenUpdate, Tokens, UserId, clock::ManualClock,
};
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use call::{Call, MAX_LINE, list_and};

/// The ACL names of WHM's `setacls` documentation (WHM 11.138), `all` aside.
const WHM_ACLS: &[&str] = &[
    "acct-summary",
    "add-pkg",
    "add-pkg-ip",
    "add-pkg-shell",
    "allow-addoncreate",
    "allow-parkedcreate",
    "allow-unlimited-bw-pkgs",
    "allow-unlimited-disk-pkgs",
    "allow-unlimited-pkgs",
    "basic-system-info",
    "basic-whm-functions",
    "clustering",
    "cors-proxy-get",
    "cpanel-api",
    "cpanel-integration",
    "create-acct",
    "create-dns",
    "create-user-session",
    "demo-setup",
    "digest-auth",
    "disallow-shell",
    "edit-account",
    "edit-dns",
    "edit-mx",
    "edit-pkg",
    "generate-email-config",
    "kill-acct",
    "kill-dns",
    "limit-bandwidth",
    "list-accts",
    "list-pkgs",
    "locale-edit",
    "mailcheck",
    "manage-api-tokens",
    "manage-dns-records",
    "manage-oidc",
    "manage-styles",
    "mysql-info",
    "nameserver-config",
    "news",
    "park-dns",
    "passwd",
    "quota",
    "rearrange-accts",
    "resftp",
    "restart",
    "show-bandwidth",
    "ssl",
    "ssl-buy",
    "ssl-gencrt",
    "ssl-info",
    "stats",
    "status",
    "suspend-acct",
    "thirdparty",
    "track-email",
    "upgrade-account",
    "viewglobalpackages",
];

/// WHM's limit on whitelist entries.
const MAX_WHITELIST: usize = 100;

struct Whm {
    tokens: Tokens,
    actor: Actor,
    /// The server's ACL names (`all` aside), sorted.
    catalogue: Vec<String>,
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn expires(t: &Token) -> Value {
    t.expiry.unix().map_or(Value::Null, |s| json!(s))
}

/// A whitelist entry as WHM writes it: IPv6 fully expanded, single hosts without a prefix.
fn whm_net(net: &IpNet) -> String {
    let addr = match net {
        IpNet::V4(n) => n.addr().to_string(),
        IpNet::V6(n) => n
            .addr()
            .segments()
            .iter()
            .map(|s| format!("{s:04x}"))
            .collect::<Vec<_>>()
            .join(":"),
    };
    if net.prefix_len() == net.max_prefix_len() {
        addr
    } else {
        format!("{addr}/{}", net.prefix_len())
    }
}

fn whitelist(t: &Token) -> Value {
    if t.allowlist.is_empty() {
        Value::Null
    } else {
        json!(
            t.allowlist
                .entries()
                .iter()
                .map(whm_net)
                .collect::<Vec<_>>()
        )
    }
}

fn acl_name(p: &Permission) -> String {
    if p.is_all() {
        "all".to_owned()
    } else {
        p.to_string()
    }
}

/// A token's details (create, update, get_details): a full-access token has no `acls`.
fn details(t: &Token) -> Map<String, Value> {
    let mut o = Map::new();
    if !t.permissions.is_all() {
        o.insert(
            "acls".into(),
            json!(t.permissions.iter().map(acl_name).collect::<Vec<_>>()),
        );
    }
    o.insert("create_time".into(), json!(unix(t.created_at)));
    o.insert("expires_at".into(), expires(t));
    o.insert("name".into(), json!(t.name.as_str()));
    o.insert("whitelist_ips".into(), whitelist(t));
    // The example's own: when the token was revoked by possession of its secret.
    if let Some(r) = t.revoked {
        o.insert("revoke_time".into(), json!(unix(r.at)));
    }
    o
}

/// A failure's `reason`, in WHM's words where the library refuses something the checks before
/// it let through (another writer got there first, or a library rule).
fn reason(e: &Error) -> String {
    match e {
        Error::Invalid { source, .. } => match &source.problem {
            Problem::NameTaken { .. } => format!(
                "A conflicting API token with the name \"{}\" already exists.",
                source.value
            ),
            Problem::InThePast => {
                format!("The \"{}\" value must be a future date.", source.value)
            }
            _ => source.to_string(),
        },
        Error::Forbidden { .. } => "Invalid or unauthorized ACL(s) specified.".to_owned(),
        other => other.to_string(),
    }
}

fn invalid_name(name: &str) -> String {
    format!(
        "\"{name}\" is not a valid API token name. An API token name must not be longer than \
         50 characters and may only contain the following characters: a-z A-Z 0-9 _ -"
    )
}

impl Whm {
    fn now(&self) -> OffsetDateTime {
        self.tokens.now()
    }

    fn own(&self) -> Query {
        Query::new().owners([self.actor.user.clone()])
    }

    /// The caller's token with this name.
    fn find(&self, name: &str) -> Result<Option<Token>, String> {
        let Ok(name) = TokenName::new(name) else {
            return Ok(None);
        };
        Ok(self
            .tokens
            .list(&self.actor, &self.own().names([name]))
            .map_err(|e| reason(&e))?
            .into_iter()
            .next())
    }

    fn refuse_unknown(call: &Call, what: &str, keys: &[&str]) -> Result<(), String> {
        let unknown = call.unknown(keys);
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "Unrecognized API token {what} parameter(s): {}",
                unknown.join(", ")
            ))
        }
    }

    fn required<'a>(call: &'a Call, key: &str) -> Result<&'a str, String> {
        call.one(key)?
            .ok_or_else(|| format!("Provide the \"{key}\" argument."))
    }

    /// A name by WHM's rules: 1–50 characters of `a-z A-Z 0-9 _ -`.
    fn name(raw: &str) -> Result<TokenName, String> {
        let name = TokenName::new(raw).map_err(|_| invalid_name(raw))?;
        Policy::cpanel()
            .check_name(&name)
            .map_err(|_| invalid_name(raw))?;
        Ok(name)
    }

    /// `acl`/`acl-N`: every name must be a known ACL the caller holds.
    fn acls(&self, call: &Call) -> Result<Option<PermissionSet>, String> {
        let Some(given) = call.many("acl") else {
            return Ok(None);
        };
        let mut refused: Vec<String> = Vec::new();
        let mut granted = Vec::with_capacity(given.len());
        for raw in given {
            let known = raw == "all"
                || self
                    .catalogue
                    .binary_search_by(|a| a.as_str().cmp(raw))
                    .is_ok();
            match Permission::new(raw) {
                Ok(p) if known && self.actor.privileges.allows(&p) => granted.push(p),
                _ => {
                    if !refused.iter().any(|r| r == raw) {
                        refused.push(raw.to_owned());
                    }
                }
            }
        }
        if !refused.is_empty() {
            return Err(format!(
                "Invalid or unauthorized ACL(s) specified: {}",
                list_and(&refused)
            ));
        }
        Ok(Some(PermissionSet::new(granted)))
    }

    /// `expires_at`: `0` never, else a Unix time in the future.
    fn expiry(&self, call: &Call) -> Result<Option<Expiry>, String> {
        let Some(raw) = call.one("expires_at")? else {
            return Ok(None);
        };
        let not_valid = || format!("\"{raw}\" is not a valid UNIX epoch timestamp.");
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_valid());
        }
        let secs: i64 = raw.parse().map_err(|_| not_valid())?;
        if secs == 0 {
            return Ok(Some(Expiry::NEVER));
        }
        let expiry = Expiry::from_unix(secs).map_err(|_| not_valid())?;
        if expiry.is_expired_at(self.now()) {
            return Err(format!("The \"{raw}\" value must be a future date."));
        }
        Ok(Some(expiry))
    }

    /// `whitelist_ip`/`whitelist_ip-N`: addresses and CIDR ranges; `any` alone clears.
    fn whitelist(call: &Call) -> Result<Option<IpAllowlist>, String> {
        let Some(given) = call.many("whitelist_ip") else {
            return Ok(None);
        };
        if given.len() > MAX_WHITELIST {
            return Err(format!(
                "You have entered \"{}\" IP addresses, which is above the limit of {MAX_WHITELIST}.",
                given.len()
            ));
        }
        if given == ["any"] {
            return Ok(Some(IpAllowlist::any()));
        }
        let invalid = |entry: &str| format!("Invalid IP address or CIDR range specified: {entry}");
        for entry in &given {
            // The library trims and takes a bare address as a host: WHM takes neither an empty
            // entry nor one with spaces.
            if entry.is_empty() || entry.trim() != *entry {
                return Err(invalid(entry));
            }
        }
        IpAllowlist::parse(&given)
            .map(Some)
            .map_err(|e| invalid(&e.value))
    }

    fn create(&self, call: &Call) -> Result<Option<Value>, String> {
        Self::refuse_unknown(
            call,
            "create",
            &["token_name", "acl", "expires_at", "whitelist_ip"],
        )?;
        let raw = Self::required(call, "token_name")?;
        let name = Self::name(raw)?;
        if self.find(raw)?.is_some() {
            return Err(format!(
                "A conflicting API token with the name \"{raw}\" already exists."
            ));
        }
        let mut item = NewToken::new(name);
        if let Some(p) = self.acls(call)? {
            item = item.permissions(p);
        }
        if let Some(e) = self.expiry(call)? {
            item = item.expiry(e);
        }
        if let Some(w) = Self::whitelist(call)? {
            item = item.allowlist(w);
        }
        let issued = self
            .tokens
            .issue(&self.actor, item)
            .map_err(|e| reason(&e))?;
        let mut data = details(&issued.token);
        data.insert("token".into(), json!(issued.secret.expose()));
        Ok(Some(Value::Object(data)))
    }

    fn list(&self, call: &Call) -> Result<Option<Value>, String> {
        Self::refuse_unknown(call, "list", &[])?;
        let tokens = self
            .tokens
            .list(&self.actor, &self.own())
            .map_err(|e| reason(&e))?;
        // The ACLs the caller holds, each with whether the token has it.
        let held: Vec<&String> = self
            .catalogue
            .iter()
            .filter(|a| Permission::new(a).is_ok_and(|p| self.actor.privileges.allows(&p)))
            .collect();
        let mut map = Map::new();
        for t in &tokens {
            let mut o = details(t);
            if o.contains_key("acls") {
                let mut acls = Map::new();
                for a in &held {
                    let has = Permission::new(a).is_ok_and(|p| t.permissions.allows(&p));
                    acls.insert((*a).clone(), json!(u8::from(has)));
                }
                for p in t.permissions.iter() {
                    acls.entry(acl_name(p)).or_insert(json!(1));
                }
                o.insert("acls".into(), Value::Object(acls));
            }
            map.insert(t.name.to_string(), Value::Object(o));
        }
        Ok(Some(json!({ "tokens": map })))
    }

    fn update(&self, call: &Call) -> Result<Option<Value>, String> {
        let keys = [
            "token_name",
            "new_name",
            "acl",
            "expires_at",
            "whitelist_ip",
        ];
        Self::refuse_unknown(call, "update", &keys)?;
        let raw = Self::required(call, "token_name")?;
        let changes = call.one("new_name")?.is_some()
            || call.many("acl").is_some()
            || call.one("expires_at")?.is_some()
            || call.many("whitelist_ip").is_some();
        if !changes {
            return Err("Specify a new name, updated ACLs, or IPs.".to_owned());
        }
        let current = self
            .find(raw)?
            .ok_or_else(|| format!("The API token \"{raw}\" does not exist."))?;
        if current.revoked.is_some() {
            return Err(format!(
                "The API token \"{raw}\" was revoked because its secret was reported leaked: \
                 it cannot be updated."
            ));
        }
        let mut u = TokenUpdate::new(current.id);
        if let Some(new) = call.one("new_name")? {
            let name = Self::name(new)?;
            if name != current.name && self.find(new)?.is_some() {
                return Err(format!(
                    "An API token with the name \"{new}\" already exists."
                ));
            }
            u = u.name(name);
        }
        if let Some(p) = self.acls(call)? {
            u = u.permissions(p);
        }
        if let Some(e) = self.expiry(call)? {
            u = u.expiry(e);
        }
        if let Some(w) = Self::whitelist(call)? {
            u = u.allowlist(w);
        }
        self.tokens.update(&self.actor, [u]).map_err(|e| match e {
            Error::Invalid { source, .. }
                if matches!(source.problem, Problem::NameTaken { .. }) =>
            {
                format!(
                    "An API token with the name \"{}\" already exists.",
                    source.value
                )
            }
            e => reason(&e),
        })?;
        let t = self
            .tokens
            .get(&self.actor, current.id)
            .map_err(|e| reason(&e))?;
        Ok(Some(Value::Object(details(&t))))
    }

    fn revoke(&self, call: &Call) -> Result<Option<Value>, String> {
        Self::refuse_unknown(call, "revoke", &["token_name"])?;
        let names = call
            .many("token_name")
            .ok_or("Provide at least one \"token_name\" argument.")?;
        let mut ids = Vec::new();
        for n in names {
            if let Some(t) = self.find(n)?
                && !ids.contains(&t.id)
            {
                ids.push(t.id);
            }
        }
        if !ids.is_empty() {
            self.tokens
                .delete(&self.actor, ids)
                .map_err(|e| reason(&e))?;
        }
        Ok(None)
    }

    /// The example's own `api_token_revoke_leaked?token=…`: revokes, for good, every token a
    /// leaked secret belongs to (the library's `revoke_by_secret`). Holding the secret is the
    /// authority. Like `api_token_revoke`, it answers no `data`, also when no token has that
    /// secret (unknown, or revoked already). The token stays listed with `revoke_time` until it
    /// is revoked by name.
    fn revoke_leaked(&self, call: &Call) -> Result<Option<Value>, String> {
        Self::refuse_unknown(call, "revoke_leaked", &["token"])?;
        let secret = Self::required(call, "token")?;
        self.tokens
            .revoke_by_secret(secret)
            .map_err(|e| reason(&e))?;
        Ok(None)
    }

    fn get_details(&self, call: &Call) -> Result<Option<Value>, String> {
        Self::refuse_unknown(call, "details", &["token"])?;
        let secret = Self::required(call, "token")?;
        let found = self
            .tokens
            .find_by_secret(&self.actor, secret)
            .map_err(|e| reason(&e))?;
        let Some(id) = found else {
            return Ok(None);
        };
        let t = self.tokens.get(&self.actor, id).map_err(|e| reason(&e))?;
        if t.is_expired_at(self.now()) {
            return Ok(None);
        }
        Ok(Some(Value::Object(details(&t))))
    }

    fn handle(&self, line: &str) -> Value {
        let (function, outcome) = match Call::parse(line) {
            Err((function, e)) => (function, Err(e)),
            Ok(call) => {
                let outcome = match call.function.as_str() {
                    "api_token_create" => self.create(&call),
                    "api_token_list" => self.list(&call),
                    "api_token_update" => self.update(&call),
                    "api_token_revoke" => self.revoke(&call),
                    "api_token_revoke_leaked" => self.revoke_leaked(&call),
                    "api_token_get_details" => self.get_details(&call),
                    other => Err(format!(
                        "Unknown app (\"{other}\") requested for this version (1) of the API."
                    )),
                };
                (call.function, outcome)
            }
        };
        let (data, result, reason) = match outcome {
            Ok(data) => (data, 1, "OK".to_owned()),
            Err(reason) => (None, 0, reason),
        };
        let mut response = json!({
            "metadata": {"command": function, "reason": reason, "result": result, "version": 1},
        });
        if let (Some(data), Some(o)) = (data, response.as_object_mut()) {
            o.insert("data".into(), data);
        }
        response
    }
}

/// The ACL catalogue from a file: one name per line, `#` comments.
fn read_catalogue(text: &str) -> Result<Vec<String>, Box<dyn StdError>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let name = line.split('#').next().unwrap_or_default().trim();
        if name.is_empty() || name == "all" {
            continue;
        }
        Permission::new(name)?;
        out.push(name.to_owned());
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn StdError>> {
    let mut user = "root".to_owned();
    let mut privileges = "all".to_owned();
    let mut now = None;
    let mut file = None;
    let mut catalogue: Vec<String> = WHM_ACLS.iter().map(|s| (*s).to_owned()).collect();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--user" => user = args.next().ok_or("--user needs a value")?,
            "--privileges" => privileges = args.next().ok_or("--privileges needs a value")?,
            "--now" => now = Some(args.next().ok_or("--now needs a value")?.parse::<i64>()?),
            "--acls" => {
                let path = args.next().ok_or("--acls needs a file")?;
                catalogue = read_catalogue(&std::fs::read_to_string(path)?)?;
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}").into()),
            path => file = Some(path.to_owned()),
        }
    }
    catalogue.sort();
    catalogue.dedup();
    let mut tokens = Tokens::in_memory().with_policy(Policy::cpanel());
    if let Some(secs) = now {
        tokens = tokens.with_clock(Arc::new(ManualClock::new(
            OffsetDateTime::from_unix_timestamp(secs)?,
        )));
    }
    let whm = Whm {
        tokens,
        actor: Actor::user(UserId::new(&user)?).privileges(privileges.parse()?),
        catalogue,
    };
    let input: Box<dyn Read> = match file {
        Some(path) => Box::new(std::fs::File::open(path)?),
        None => Box::new(std::io::stdin()),
    };
    let mut input = std::io::BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        let response = if line.len() > MAX_LINE {
            // Skip the rest of the over-long line.
            let mut rest = Vec::new();
            while !line.ends_with(b"\n") {
                rest.clear();
                if input
                    .by_ref()
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut rest)?
                    == 0
                {
                    break;
                }
                line.clear();
                line.extend_from_slice(&rest);
            }
            json!({"metadata": {"command": "", "reason": "The request is too large.", "result": 0, "version": 1}})
        } else {
            let text = String::from_utf8_lossy(&line);
            if text.trim().is_empty() {
                continue;
            }
            whm.handle(&text)
        };
        println!("{response}");
    }
    Ok(())
}
