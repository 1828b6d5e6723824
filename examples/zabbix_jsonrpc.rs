//! Zabbix's `token.*` JSON-RPC API over api-tokens.
//!
//! Reads JSON-RPC 2.0 requests (one or more JSON values, or batch arrays) from a file named on the
//! command line or from stdin, and prints one response per line. Methods: `token.create`,
//! `token.update`, `token.delete`, `token.get` and `token.generate`, with Zabbix's parameters and
//! error style. Ids are strings, times Unix seconds, `expires_at` 0 means never.
//!
//! The caller is the Super admin (user "1") unless a request carries `"auth"`: an API token,
//! authenticated like any other, whose owner then acts as a user who manages its own tokens.
//!
//! ```sh
//! echo '{"jsonrpc":"2.0","method":"token.create","params":{"name":"Your token","userid":"2"},"id":1}' \
//!   | cargo run --example zabbix_jsonrpc -- --first-id 188
//! ```
//!
//! Options: `--first-id N` (the store's first token id), `--now UNIX` (fix the clock).

use std::error::Error as StdError;
use std::io::{Read, Write};
use std::sync::Arc;

use api_tokens::store::{SortField, SortOrder};
use api_tokens::{
    Actor, Error, Expiry, Field, Forbidden, ManualClock, MemoryStore, NewToken, PermissionSet,
    Policy, Problem, Query, RequestContext, Snapshot, StaticDirectory, Status, Token, TokenId,
    TokenName, TokenUpdate, Tokens, UserId, UserState,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// A Zabbix API error: code, message and data.
struct ApiError {
    code: i64,
    message: &'static str,
    data: String,
}

fn invalid_params(data: impl Into<String>) -> ApiError {
    ApiError {
        code: -32602,
        message: "Invalid params.",
        data: data.into(),
    }
}

fn application(data: impl Into<String>) -> ApiError {
    ApiError {
        code: -32500,
        message: "Application error.",
        data: data.into(),
    }
}

const NO_PERMISSIONS: &str = "No permissions to referred object or it does not exist!";

type Outcome = Result<Value, ApiError>;

fn field_name(f: Field) -> &'static str {
    match f {
        Field::Name => "name",
        Field::Description => "description",
        Field::Owner | Field::UserId => "userid",
        Field::Expiry => "expires_at",
        Field::TokenId => "tokenid",
        _ => "",
    }
}

fn problem_text(p: &Problem) -> String {
    match p {
        Problem::Empty => "cannot be empty".into(),
        Problem::TooLong { .. } => "value is too long".into(),
        other => other.to_string(),
    }
}

/// Our errors in Zabbix's words.
fn from_error(method: &str, e: &Error) -> ApiError {
    match e {
        Error::Invalid { index, source } => {
            // The crate names an item only in batches of more than one; Zabbix always does.
            let item = format!("/{}", index.unwrap_or(0) + 1);
            match &source.problem {
                Problem::NameTaken { owner } => invalid_params(format!(
                    "API token \"{}\" already exists for userid \"{owner}\".",
                    source.value
                )),
                Problem::UnknownUser | Problem::InactiveUser => application(NO_PERMISSIONS),
                p => invalid_params(format!(
                    "Invalid parameter \"{item}/{}\": {}.",
                    field_name(source.field),
                    problem_text(p)
                )),
            }
        }
        Error::Forbidden {
            source: Forbidden::CannotManageTokens,
            ..
        } => application(format!("No permissions to call \"{method}\".")),
        Error::Forbidden { .. } | Error::NotFound { .. } => application(NO_PERMISSIONS),
        other => application(other.to_string()),
    }
}

/// A parameter error at `/item/field`.
fn bad(item: &str, field: &str, what: &str) -> ApiError {
    invalid_params(format!("Invalid parameter \"{item}/{field}\": {what}."))
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_int(v: &Value, item: &str, field: &str) -> Result<i64, ApiError> {
    as_text(v)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(item, field, "an integer is expected"))
}

fn status_of(v: &Value, item: &str) -> Result<Status, ApiError> {
    match as_int(v, item, "status")? {
        0 => Ok(Status::Enabled),
        1 => Ok(Status::Disabled),
        _ => Err(bad(item, "status", "value must be one of 0, 1")),
    }
}

fn expiry_of(v: &Value, item: &str) -> Result<Expiry, ApiError> {
    match as_int(v, item, "expires_at")? {
        0 => Ok(Expiry::NEVER),
        n => Expiry::from_unix(n)
            .map_err(|_| bad(item, "expires_at", "a valid timestamp is expected")),
    }
}

fn name_of(v: &Value, item: &str) -> Result<TokenName, ApiError> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(item, "name", "a character string is expected"))?;
    TokenName::new(s).map_err(|e| bad(item, "name", &problem_text(&e.problem)))
}

fn token_id(v: &Value, item: &str) -> Result<TokenId, ApiError> {
    as_text(v)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(item, "tokenid", "a number is expected"))
}

fn user_id(v: &Value, item: &str) -> Result<UserId, ApiError> {
    as_text(v)
        .and_then(|s| UserId::new(&s).ok())
        .ok_or_else(|| bad(item, "userid", "a number is expected"))
}

/// One item of a batch: its path (`/1`) and its object.
type Item<'a> = (String, &'a Map<String, Value>);

/// The items of a batch parameter (one value or an array of them), each with its path (`/1`,
/// `/2`, …); an empty batch is refused.
fn batch(params: &Value) -> Result<Vec<(String, &Value)>, ApiError> {
    let items: Vec<&Value> = match params {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    if items.is_empty() {
        return Err(invalid_params("Invalid parameter \"/\": cannot be empty."));
    }
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("/{}", i + 1), v))
        .collect())
}

/// The items of a method that takes an object or an array of objects.
fn objects(params: &Value) -> Result<Vec<Item<'_>>, ApiError> {
    batch(params)?
        .into_iter()
        .map(|(item, v)| match v.as_object() {
            Some(o) => Ok((item, o)),
            None => Err(invalid_params(format!(
                "Invalid parameter \"{item}\": an array is expected."
            ))),
        })
        .collect()
}

/// A parameter the item must have.
fn required<'a>(o: &'a Map<String, Value>, item: &str, key: &str) -> Result<&'a Value, ApiError> {
    o.get(key).ok_or_else(|| {
        invalid_params(format!(
            "Invalid parameter \"{item}\": the parameter \"{key}\" is missing."
        ))
    })
}

fn unexpected(item: &str, o: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid_params(format!(
            "Invalid parameter \"{item}\": unexpected parameter \"{k}\"."
        ))),
        None => Ok(()),
    }
}

/// The ids of a method that takes an array of token ids.
fn ids_param(params: &Value) -> Result<Vec<TokenId>, ApiError> {
    batch(params)?
        .into_iter()
        .map(|(item, v)| {
            token_id(v, &item).map_err(|_| {
                invalid_params(format!(
                    "Invalid parameter \"{item}\": a number is expected."
                ))
            })
        })
        .collect()
}

fn tokenids(ids: &[TokenId]) -> Value {
    json!({ "tokenids": ids.iter().map(|id| id.to_string()).collect::<Vec<_>>() })
}

fn token_object(t: &Token) -> Map<String, Value> {
    let mut o = Map::new();
    let unix = |t: OffsetDateTime| t.unix_timestamp().to_string();
    o.insert("tokenid".into(), json!(t.id.to_string()));
    o.insert("name".into(), json!(t.name.as_str()));
    o.insert("description".into(), json!(t.description));
    o.insert("userid".into(), json!(t.owner.as_str()));
    o.insert(
        "lastaccess".into(),
        json!(t.last_use.map_or("0".into(), |u| unix(u.at))),
    );
    let status = if t.status == Status::Enabled {
        "0"
    } else {
        "1"
    };
    o.insert("status".into(), json!(status));
    o.insert(
        "expires_at".into(),
        json!(t.expiry.unix().map_or("0".into(), |s| s.to_string())),
    );
    o.insert("created_at".into(), json!(unix(t.created_at)));
    o.insert("creator_userid".into(), json!(t.creator.as_str()));
    o
}

/// The optional fields `token.create` and `token.update` share.
struct Editable {
    description: Option<String>,
    status: Option<Status>,
    expiry: Option<Expiry>,
}

impl Editable {
    fn read(o: &Map<String, Value>, item: &str) -> Result<Self, ApiError> {
        Ok(Self {
            description: o
                .get("description")
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad(item, "description", "a character string is expected"))
                })
                .transpose()?,
            status: o.get("status").map(|v| status_of(v, item)).transpose()?,
            expiry: o
                .get("expires_at")
                .map(|v| expiry_of(v, item))
                .transpose()?,
        })
    }
}

struct Api {
    tokens: Tokens<MemoryStore>,
}

impl Api {
    fn create(&self, actor: &Actor, params: &Value) -> Outcome {
        let mut items = Vec::new();
        for (item, o) in objects(params)? {
            unexpected(
                &item,
                o,
                &["name", "description", "userid", "status", "expires_at"],
            )?;
            let name = name_of(required(o, &item, "name")?, &item)?;
            let fields = Editable::read(o, &item)?;
            let mut t = NewToken::new(name);
            if let Some(d) = fields.description {
                t = t.description(d);
            }
            if let Some(v) = o.get("userid") {
                t = t.owner(user_id(v, &item)?);
            }
            if let Some(s) = fields.status {
                t = t.status(s);
            }
            if let Some(e) = fields.expiry {
                t = t.expiry(e);
            }
            items.push(t);
        }
        let ids = self
            .tokens
            .create(actor, items)
            .map_err(|e| from_error("token.create", &e))?;
        Ok(tokenids(&ids))
    }

    fn update(&self, actor: &Actor, params: &Value) -> Outcome {
        let mut updates = Vec::new();
        for (item, o) in objects(params)? {
            unexpected(
                &item,
                o,
                &["tokenid", "name", "description", "status", "expires_at"],
            )?;
            let id = token_id(required(o, &item, "tokenid")?, &item)?;
            let fields = Editable::read(o, &item)?;
            let mut u = TokenUpdate::new(id);
            u.name = o.get("name").map(|v| name_of(v, &item)).transpose()?;
            u.description = fields.description;
            u.status = fields.status;
            u.expiry = fields.expiry;
            updates.push(u);
        }
        let ids = self
            .tokens
            .update(actor, updates)
            .map_err(|e| from_error("token.update", &e))?;
        Ok(tokenids(&ids))
    }

    fn delete(&self, actor: &Actor, params: &Value) -> Outcome {
        let ids = self
            .tokens
            .delete(actor, ids_param(params)?)
            .map_err(|e| from_error("token.delete", &e))?;
        Ok(tokenids(&ids))
    }

    fn generate(&self, actor: &Actor, params: &Value) -> Outcome {
        let secrets = self
            .tokens
            .generate(actor, ids_param(params)?)
            .map_err(|e| from_error("token.generate", &e))?;
        Ok(Value::Array(
            secrets
                .iter()
                .map(|(id, s)| json!({"tokenid": id.to_string(), "token": s.expose()}))
                .collect(),
        ))
    }

    fn get(&self, actor: &Actor, params: &Value) -> Outcome {
        let empty = Map::new();
        let p = match params {
            Value::Object(o) => o,
            Value::Null => &empty,
            _ => {
                return Err(invalid_params(
                    "Invalid parameter \"/\": an array is expected.",
                ));
            }
        };
        unexpected(
            "",
            p,
            &[
                "output",
                "tokenids",
                "userids",
                "token",
                "valid_at",
                "expired_at",
                "filter",
                "search",
                "countOutput",
                "limit",
                "sortfield",
                "sortorder",
            ],
        )?;
        let list = |v: &Value| -> Vec<Value> {
            match v {
                Value::Array(a) => a.clone(),
                Value::Null => Vec::new(),
                v => vec![v.clone()],
            }
        };
        let mut q = Query::new();
        let mut exact_names: Option<Vec<String>> = None;
        if let Some(v) = p.get("tokenids") {
            q = q.ids(
                list(v)
                    .iter()
                    .map(|v| token_id(v, "/tokenids"))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        if let Some(v) = p.get("userids") {
            q = q.owners(
                list(v)
                    .iter()
                    .map(|v| user_id(v, "/userids"))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        if let Some(v) = p.get("token") {
            let secret = v
                .as_str()
                .ok_or_else(|| bad("", "token", "a character string is expected"))?;
            let found = self
                .tokens
                .find_by_secret(actor, secret)
                .map_err(|e| from_error("token.get", &e))?;
            let ids: Vec<TokenId> = found.into_iter().collect();
            q.ids = Some(match q.ids.take() {
                Some(given) => ids.into_iter().filter(|id| given.contains(id)).collect(),
                None => ids,
            });
        }
        let instant = |v: &Value, f: &str| -> Result<OffsetDateTime, ApiError> {
            OffsetDateTime::from_unix_timestamp(as_int(v, "", f)?)
                .map_err(|_| bad("", f, "a valid timestamp is expected"))
        };
        if let Some(v) = p.get("valid_at") {
            q = q.valid_at(instant(v, "valid_at")?);
        }
        if let Some(v) = p.get("expired_at") {
            q = q.expired_at(instant(v, "expired_at")?);
        }
        if let Some(f) = p.get("filter").and_then(Value::as_object) {
            if let Some(v) = f.get("status") {
                q = q.status(status_of(v, "/filter")?);
            }
            if let Some(v) = f.get("name") {
                exact_names = Some(list(v).iter().filter_map(as_text).collect());
            }
            if let Some(v) = f.get("creator_userid") {
                q = q.creators(
                    list(v)
                        .iter()
                        .map(|v| user_id(v, "/filter"))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
        }
        if let Some(s) = p.get("search").and_then(Value::as_object) {
            if let Some(v) = s.get("name").and_then(Value::as_str) {
                q = q.name_contains(v);
            }
            if let Some(v) = s.get("description").and_then(Value::as_str) {
                q = q.description_contains(v);
            }
        }
        if let Some(v) = p.get("sortfield") {
            let field = match list(v).first().and_then(Value::as_str) {
                Some("tokenid") => SortField::Id,
                Some("name") => SortField::Name,
                Some("lastaccess") => SortField::LastUsed,
                Some("status") => SortField::Status,
                Some("expires_at") => SortField::Expiry,
                Some("created_at") => SortField::Created,
                _ => {
                    return Err(bad(
                        "",
                        "sortfield",
                        "value must be one of \"tokenid\", \"name\", \"lastaccess\", \"status\", \"expires_at\", \"created_at\"",
                    ));
                }
            };
            let order = match p.get("sortorder").and_then(Value::as_str) {
                None | Some("ASC") => SortOrder::Ascending,
                Some("DESC") => SortOrder::Descending,
                Some(_) => {
                    return Err(bad(
                        "",
                        "sortorder",
                        "value must be one of \"ASC\", \"DESC\"",
                    ));
                }
            };
            q = q.sort(field, order);
        }
        let limit = match p.get("limit") {
            Some(v) => match as_int(v, "", "limit")? {
                n if n >= 1 => Some(n as usize),
                _ => return Err(bad("", "limit", "value must be one of 1-2147483647")),
            },
            None => None,
        };
        // An exact-name filter is applied after the store's query, so the limit follows it.
        let mut tokens = self
            .tokens
            .list(actor, &q)
            .map_err(|e| from_error("token.get", &e))?;
        if let Some(names) = &exact_names {
            tokens.retain(|t| names.iter().any(|n| n == t.name.as_str()));
        }
        if let Some(n) = limit {
            tokens.truncate(n);
        }
        if p.get("countOutput").and_then(Value::as_bool) == Some(true) {
            return Ok(json!(tokens.len().to_string()));
        }
        let fields: Option<Vec<String>> = match p.get("output") {
            None => None,
            Some(Value::String(s)) if s == "extend" => None,
            Some(v) => Some(list(v).iter().filter_map(as_text).collect()),
        };
        Ok(Value::Array(
            tokens
                .iter()
                .map(|t| {
                    let mut o = token_object(t);
                    if let Some(f) = &fields {
                        o.retain(|k, _| f.contains(k));
                    }
                    Value::Object(o)
                })
                .collect(),
        ))
    }

    fn actor(&self, request: &Map<String, Value>) -> Result<Actor, ApiError> {
        let Some(auth) = request.get("auth").and_then(Value::as_str) else {
            return Ok(Actor::admin(UserId::from(1)));
        };
        let grant = self
            .tokens
            .authenticate(auth, &RequestContext::unknown_address())
            .map_err(|d| ApiError {
                code: -32602,
                message: "Invalid params.",
                data: match d.public() {
                    api_tokens::PublicDenial::Expired => "API token expired.".into(),
                    _ => "Not authorized.".into(),
                },
            })?;
        Ok(if grant.owner.as_str() == "1" {
            Actor::admin(grant.owner)
        } else {
            Actor::user(grant.owner)
        })
    }

    fn handle(&self, request: &Value) -> Value {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let outcome = (|| {
            let r = request.as_object().ok_or(ApiError {
                code: -32600,
                message: "Invalid request.",
                data: "Invalid parameter \"/\": an array is expected.".into(),
            })?;
            if r.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
                return Err(ApiError {
                    code: -32600,
                    message: "Invalid request.",
                    data: "Invalid parameter \"/jsonrpc\": value must be \"2.0\".".into(),
                });
            }
            let method = r.get("method").and_then(Value::as_str).unwrap_or_default();
            let params = r.get("params").unwrap_or(&Value::Null);
            let actor = self.actor(r)?;
            match method {
                "token.create" => self.create(&actor, params),
                "token.update" => self.update(&actor, params),
                "token.delete" => self.delete(&actor, params),
                "token.get" => self.get(&actor, params),
                "token.generate" => self.generate(&actor, params),
                _ => Err(ApiError {
                    code: -32601,
                    message: "Method not found.",
                    data: format!("Incorrect API \"{method}\"."),
                }),
            }
        })();
        match outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
            Err(e) => json!({
                "jsonrpc": "2.0",
                "error": {"code": e.code, "message": e.message, "data": e.data},
                "id": id,
            }),
        }
    }
}

fn main() -> Result<(), Box<dyn StdError>> {
    let mut first_id = 1u64;
    let mut now: Option<i64> = None;
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--first-id" => first_id = args.next().ok_or("--first-id needs a value")?.parse()?,
            "--now" => now = Some(args.next().ok_or("--now needs a value")?.parse()?),
            path => file = Some(path.to_owned()),
        }
    }
    // Requests are answered as they arrive, so a client can use one answer in the next request.
    let input: Box<dyn Read> = match file {
        Some(path) => Box::new(std::fs::File::open(path)?),
        None => Box::new(std::io::stdin()),
    };
    let store = MemoryStore::from_snapshot(Snapshot {
        version: api_tokens::store::memory::SNAPSHOT_VERSION,
        next_id: first_id,
        tokens: Vec::new(),
    })?;
    let users = StaticDirectory::new();
    for (id, active) in [(1, true), (2, true), (3, true), (4, false)] {
        let state = if active {
            UserState::Active(PermissionSet::all())
        } else {
            UserState::Inactive
        };
        users.set(UserId::from(id), state);
    }
    let mut tokens = Tokens::new(store)
        .with_policy(Policy::zabbix())
        .with_directory(users);
    if let Some(secs) = now {
        tokens = tokens.with_clock(Arc::new(ManualClock::new(
            OffsetDateTime::from_unix_timestamp(secs)?,
        )));
    }
    let api = Api { tokens };
    let mut out = std::io::stdout();
    for value in serde_json::Deserializer::from_reader(input).into_iter::<Value>() {
        let response = match value {
            Ok(Value::Array(batch)) => Value::Array(batch.iter().map(|r| api.handle(r)).collect()),
            Ok(request) => api.handle(&request),
            Err(e) => json!({
                "jsonrpc": "2.0",
                "error": {"code": -32700, "message": "Parse error.", "data": e.to_string()},
                "id": null,
            }),
        };
        writeln!(out, "{response}")?;
        out.flush()?;
        if response.get("error").and_then(|e| e.get("code")) == Some(&json!(-32700)) {
            break;
        }
    }
    Ok(())
}
