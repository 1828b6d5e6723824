//! cPanel & WHM API 1's `api_token_*` functions over api-tokens.
//!
//! Reads one call per line from a file named on the command line or from stdin, written as the
//! WHM URL path and query (`api_token_create?token_name=example&acl-0=kill-acct`), and prints
//! each response as one line of JSON in WHM's shape (`data`, `metadata`).
//!
//! Functions: `api_token_create` (`token_name`, `acl`/`acl-N`, `expires_at`,
//! `whitelist_ip`/`whitelist_ip-N`), `api_token_list`, `api_token_update` (`token_name`,
//! `new_name`, and the create parameters; `expires_at=0` clears the expiry, an empty
//! `whitelist_ip=` clears the whitelist) and `api_token_revoke` (`token_name`/`token_name-N`).
//!
//! Options: `--user NAME` and `--privileges LIST` (the WHM user calling, default `root` with
//! `all`), `--now UNIX` (fix the clock).

use std::error::Error as StdError;
use std::io::Read;
use std::sync::Arc;

use api_tokens::{
    Actor, Error, Expiry, Forbidden, IpAllowlist, ManualClock, NewToken, PermissionSet, Policy,
    Problem, Query, Token, TokenName, TokenUpdate, Tokens, UserId,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// `%XX` and `+` decoding of one query component.
fn decode(s: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                let v =
                    u8::from_str_radix(&hex, 16).map_err(|_| format!("bad escape \"%{hex}\""))?;
                out.push(v);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8".to_owned())
}

/// A parsed call: the function and its parameters in order.
struct Call {
    function: String,
    params: Vec<(String, String)>,
}

impl Call {
    fn parse(line: &str) -> Result<Self, String> {
        let line = line.trim().trim_start_matches('/');
        let line = line.strip_prefix("json-api/").unwrap_or(line);
        let (function, query) = line.split_once('?').unwrap_or((line, ""));
        let params = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Ok((decode(k)?, decode(v)?))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            function: function.to_owned(),
            params,
        })
    }

    fn one(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key`, `key-0`, `key-1`, … in that order; `None` when none is given.
    fn many(&self, key: &str) -> Option<Vec<&str>> {
        let mut found: Vec<(i64, &str)> = self
            .params
            .iter()
            .filter_map(|(k, v)| {
                if k == key {
                    Some((-1, v.as_str()))
                } else {
                    k.strip_prefix(key)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .and_then(|n| n.parse().ok())
                        .map(|n| (n, v.as_str()))
                }
            })
            .collect();
        found.sort_by_key(|(n, _)| *n);
        (!found.is_empty()).then(|| found.into_iter().map(|(_, v)| v).collect())
    }
}

struct Whm {
    tokens: Tokens,
    actor: Actor,
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn expires(t: &Token) -> Value {
    t.expiry.unix().map_or(Value::Null, |s| json!(s))
}

fn whitelist(t: &Token) -> Value {
    if t.allowlist.is_empty() {
        Value::Null
    } else {
        json!(t.allowlist.entry_strings().collect::<Vec<_>>())
    }
}

fn acls(t: &Token) -> Value {
    json!(
        t.permissions
            .iter()
            .map(|p| if p.is_all() {
                "all".to_owned()
            } else {
                p.to_string()
            })
            .collect::<Vec<_>>()
    )
}

/// Our errors in WHM's words.
fn reason(e: &Error) -> String {
    match e {
        Error::Invalid { source, .. } => match &source.problem {
            Problem::NameTaken { .. } => {
                format!("The API token name \"{}\" is already in use.", source.value)
            }
            Problem::InThePast => "The expiration time must be in the future.".to_owned(),
            _ => format!("Invalid parameter: {source}"),
        },
        Error::Forbidden {
            source: Forbidden::PermissionsBeyondActor { missing },
            ..
        } => format!("You do not have the following privileges: {missing}"),
        other => other.to_string(),
    }
}

impl Whm {
    fn find(&self, name: &str) -> Result<Token, String> {
        self.tokens
            .list(&self.actor, &Query::new().owners([self.actor.user.clone()]))
            .map_err(|e| reason(&e))?
            .into_iter()
            .find(|t| t.name.as_str() == name)
            .ok_or_else(|| format!("The API token \"{name}\" does not exist."))
    }

    fn name(call: &Call, key: &str) -> Result<TokenName, String> {
        let raw = call
            .one(key)
            .ok_or_else(|| format!("Missing required parameter: {key}"))?;
        TokenName::new(raw).map_err(|e| format!("Invalid {key}: {e}"))
    }

    fn expiry(call: &Call) -> Result<Option<Expiry>, String> {
        call.one("expires_at")
            .map(|v| match v.parse::<i64>() {
                Ok(0) => Ok(Expiry::NEVER),
                Ok(secs) => Expiry::from_unix(secs).map_err(|e| e.to_string()),
                Err(_) => Err(format!("Invalid expires_at: \"{v}\" is not a Unix time")),
            })
            .transpose()
    }

    fn acl(call: &Call) -> Result<Option<PermissionSet>, String> {
        call.many("acl")
            .map(|v| PermissionSet::parse(v).map_err(|e| format!("Invalid acl: {e}")))
            .transpose()
    }

    fn whitelist(call: &Call) -> Result<Option<IpAllowlist>, String> {
        call.many("whitelist_ip")
            .map(|v| {
                IpAllowlist::parse(v.into_iter().filter(|e| !e.is_empty()))
                    .map_err(|e| format!("Invalid whitelist_ip: {e}"))
            })
            .transpose()
    }

    fn create(&self, call: &Call) -> Result<Value, String> {
        let mut item = NewToken::new(Self::name(call, "token_name")?);
        if let Some(e) = Self::expiry(call)? {
            item = item.expiry(e);
        }
        if let Some(p) = Self::acl(call)? {
            item = item.permissions(p);
        }
        if let Some(w) = Self::whitelist(call)? {
            item = item.allowlist(w);
        }
        let issued = self
            .tokens
            .issue(&self.actor, item)
            .map_err(|e| reason(&e))?;
        let t = &issued.token;
        Ok(json!({
            "acls": acls(t),
            "create_time": unix(t.created_at),
            "expires_at": expires(t),
            "name": t.name.as_str(),
            "token": issued.secret.expose(),
            "whitelist_ips": whitelist(t),
        }))
    }

    fn list(&self, _: &Call) -> Result<Value, String> {
        let tokens = self
            .tokens
            .list(&self.actor, &Query::new().owners([self.actor.user.clone()]))
            .map_err(|e| reason(&e))?;
        let mut map = serde_json::Map::new();
        for t in &tokens {
            map.insert(
                t.name.to_string(),
                json!({
                    "acls": acls(t),
                    "create_time": unix(t.created_at),
                    "expires_at": expires(t),
                    "has_full_access": if t.permissions.is_all() { 1 } else { 0 },
                    "name": t.name.as_str(),
                    "whitelist_ips": whitelist(t),
                }),
            );
        }
        Ok(json!({ "tokens": map }))
    }

    fn update(&self, call: &Call) -> Result<Value, String> {
        let current = self.find(&Self::name(call, "token_name")?.to_string())?;
        let mut u = TokenUpdate::new(current.id);
        if call.one("new_name").is_some() {
            u = u.name(Self::name(call, "new_name")?);
        }
        if let Some(e) = Self::expiry(call)? {
            u = u.expiry(e);
        }
        if let Some(p) = Self::acl(call)? {
            u = u.permissions(p);
        }
        if let Some(w) = Self::whitelist(call)? {
            u = u.allowlist(w);
        }
        self.tokens
            .update(&self.actor, [u])
            .map_err(|e| reason(&e))?;
        let t = self
            .tokens
            .get(&self.actor, current.id)
            .map_err(|e| reason(&e))?;
        Ok(json!({
            "acls": acls(&t),
            "create_time": unix(t.created_at),
            "expires_at": expires(&t),
            "name": t.name.as_str(),
            "whitelist_ips": whitelist(&t),
        }))
    }

    fn revoke(&self, call: &Call) -> Result<Value, String> {
        let names = call
            .many("token_name")
            .ok_or("Missing required parameter: token_name")?;
        let ids = names
            .iter()
            .map(|n| self.find(n).map(|t| t.id))
            .collect::<Result<Vec<_>, _>>()?;
        self.tokens
            .delete(&self.actor, ids)
            .map_err(|e| reason(&e))?;
        Ok(json!({}))
    }

    fn handle(&self, line: &str) -> Value {
        let (function, outcome) = match Call::parse(line) {
            Err(e) => (String::new(), Err(e)),
            Ok(call) => {
                let outcome = match call.function.as_str() {
                    "api_token_create" => self.create(&call),
                    "api_token_list" => self.list(&call),
                    "api_token_update" => self.update(&call),
                    "api_token_revoke" => self.revoke(&call),
                    other => Err(format!(
                        "Unknown app (\"{other}\") requested for this version (1) of the API."
                    )),
                };
                (call.function, outcome)
            }
        };
        let (data, result, reason) = match outcome {
            Ok(data) => (data, 1, "OK".to_owned()),
            Err(reason) => (Value::Null, 0, reason),
        };
        json!({
            "data": data,
            "metadata": {"command": function, "reason": reason, "result": result, "version": 1},
        })
    }
}

fn main() -> Result<(), Box<dyn StdError>> {
    let mut user = "root".to_owned();
    let mut privileges = "all".to_owned();
    let mut now = None;
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--user" => user = args.next().ok_or("--user needs a value")?,
            "--privileges" => privileges = args.next().ok_or("--privileges needs a value")?,
            "--now" => now = Some(args.next().ok_or("--now needs a value")?.parse::<i64>()?),
            path => file = Some(path.to_owned()),
        }
    }
    let input = match file {
        Some(path) => std::fs::read_to_string(path)?,
        None => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
    };
    let mut tokens = Tokens::in_memory().with_policy(Policy::cpanel());
    if let Some(secs) = now {
        tokens = tokens.with_clock(Arc::new(ManualClock::new(
            OffsetDateTime::from_unix_timestamp(secs)?,
        )));
    }
    let whm = Whm {
        tokens,
        actor: Actor::user(UserId::new(&user)?).privileges(privileges.parse()?),
    };
    for line in input.lines().filter(|l| !l.trim().is_empty()) {
        println!("{}", whm.handle(line));
    }
    Ok(())
}
