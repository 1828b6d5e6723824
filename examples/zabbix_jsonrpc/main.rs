//! Zabbix's `token.*` JSON-RPC API over api-tokens, answering as Zabbix 6.x does.
//!
//! Reads JSON-RPC 2.0 requests (JSON values one after another, or batch arrays) from a file named
//! on the command line or from stdin and prints one response per line; a notification (a request
//! without `"id"`) gets no response, as in Zabbix. Methods: `token.create`, `token.update`,
//! `token.delete`, `token.get`, `token.generate`, and the example's own `token.revoke` (see
//! "Revocation by possession"). Ids are strings, times Unix seconds, `0` means never.
//!
//! ```sh
//! echo '{"jsonrpc":"2.0","method":"token.create","params":{"name":"Your token","userid":"2"},"id":1}' \
//!   | cargo run --example zabbix_jsonrpc -- --first-id 188
//! ```
//!
//! Options: `--first-id N` (the store's first token id), `--now UNIX` (fix the clock),
//! `--users FILE` (the user table, see `users.rs`; by default `1` is the Super admin, `2` and
//! `3` are users, `4` is a disabled user), `--import FILE` (rows of a Zabbix database's `token`
//! table, imported before the first request, after which their old secrets keep working: see
//! `import.rs`).
//!
//! # Who calls
//! A request with `"auth"` is made by the owner of that API token (64 characters), checked like
//! any authentication. A request without `"auth"` (or with `"auth": null`) is made by user `1`,
//! as if it had logged in: the example has no `user.login`. Any other `auth` is refused, never
//! read as "no auth": a non-string is an invalid request, an empty string is not authorized, and
//! a string of another length is a session the example does not know. `token.revoke` is the
//! exception: it is called without `auth` (see below).
//!
//! # Parameters and errors
//! The references are Zabbix 6.x's `CToken`, `CApiInputValidator`, `CJsonRpc` and
//! `CLocalApiClient`, and Zabbix's own API tests (`testToken.php`, `testJSONRPC.php`). Every
//! error below is `"error": {"code", "message", "data"}`; the paths name the offending item
//! 1-based (`/1/name`, `/tokenids/2`, `/filter/status/1`).
//!
//! | where | rule | error `data` (code) |
//! | --- | --- | --- |
//! | input | not JSON | `Invalid JSON. An error occurred on the server while parsing the JSON text.` (-32700 `Parse error`); reading stops |
//! | input | one request over 16 MiB | as not JSON (the example's bound) |
//! | envelope | `[]`, a scalar | `The received JSON is not a valid JSON-RPC request.` (-32600) |
//! | envelope | a batch of more than 10,000 requests | `Invalid parameter "/": value is too long.` (-32600; the example's bound) |
//! | envelope | a batch element not an object | `Invalid parameter "/": an array is expected.` (-32600) |
//! | envelope | an unknown member | `Invalid parameter "/": unexpected parameter "x".` (-32600) |
//! | envelope | `jsonrpc`, `method`, `params` missing | `Invalid parameter "/": the parameter "jsonrpc" is missing.` (-32600) |
//! | envelope | `jsonrpc` not `"2.0"` | `Invalid parameter "/jsonrpc": value must be "2.0".` (-32600) |
//! | envelope | `method` not a string | `Invalid parameter "/method": a character string is expected.` (-32600) |
//! | envelope | `params` not an array or object | `Invalid parameter "/params": an array or object is expected.` (-32600) |
//! | envelope | `auth` not a string or null (`12345`, `true`, `[]`, `{}`) | `Invalid parameter "/auth": a character string is expected.` (-32600) |
//! | envelope | `id` not a string, number or null | `Invalid parameter "/id": a string, number or null value is expected.` (-32600) |
//! | method | an API other than `token` | `Incorrect API "host".` (-32601 `Method not found.`) |
//! | method | a method `token` does not have | `Incorrect method "token.nope".` (-32601) |
//! | auth | `""` | `Not authorized.` (-32602) |
//! | auth | 64 characters: unknown, disabled token, disabled owner | `Not authorized.` (-32602) |
//! | auth | 64 characters: an expired token | `API token expired.` (-32500 `Application error.`) |
//! | auth | any other string | `Session terminated, re-login, please.` (-32602) |
//! | role | the caller lacks *Manage API tokens* | `No permissions to call "token.get".` (-32602) |
//! | revoke | `auth` given (even a valid one) | `The "token.revoke" method must be called without the "auth" parameter.` (-32602; Zabbix's text for `apiinfo.version`) |
//! | revoke | members: `token` (required, 1–64 characters); anything else | `Invalid parameter "/": the parameter "token" is missing.` / `Invalid parameter "/token": cannot be empty.` / `… value is too long.` / `Invalid parameter "/": unexpected parameter "x".` (-32602) |
//! | all methods | an array parameter over 10,000 elements | `Invalid parameter "/": value is too long.` (-32602; the example's bound) |
//! | create, update | params empty | `Invalid parameter "/": cannot be empty.` (-32602) |
//! | create, update | an item not an object | `Invalid parameter "/1": an array is expected.` (-32602) |
//! | create | members: `name` (required, 1–64 characters), `description` (≤ 65,535), `userid` (id, default the caller), `status` (`0`, `1`), `expires_at` (int32, `0` never); anything else | `Invalid parameter "/1": unexpected parameter "token".` (-32602) |
//! | update | members: `tokenid` (required id), `name`, `description`, `status`, `expires_at`; anything else (`userid`) | `Invalid parameter "/1": unexpected parameter "userid".` (-32602) |
//! | create, update | a member missing | `Invalid parameter "/1": the parameter "name" is missing.` (-32602) |
//! | create, update | `name` empty / too long | `Invalid parameter "/1/name": cannot be empty.` / `… value is too long.` (-32602) |
//! | create, update | a string member not a string | `Invalid parameter "/1/description": a character string is expected.` (-32602) |
//! | create, update | `status` | `Invalid parameter "/1/status": value must be one of 0, 1.` (-32602) |
//! | everywhere | an integer that is not one (`"1.5"`, `1.5`, `"x"`) / outside int32 | `Invalid parameter "/1/expires_at": an integer is expected.` / `… a number is too large.` (-32602) |
//! | everywhere | an id that is not one (`"x"`, `-1`, `1.0`) / over 2⁶³−1 | `Invalid parameter "/tokenids/1": a number is expected.` / `… a number is too large.` (-32602) |
//! | create | a (name, userid) pair repeated | `Invalid parameter "/3": value (name, userid)=(x, 1) already exists.` (-32602) |
//! | update | a `tokenid` repeated | `Invalid parameter "/2": value (tokenid)=(1) already exists.` (-32602) |
//! | update | two tokens of one user renamed alike | `Invalid parameter "/2": value (userid, name)=(5, x) already exists.` (-32602) |
//! | delete, generate | params not an array of ids / empty / an id repeated | `… a number is expected.` / `Invalid parameter "/": cannot be empty.` / `Invalid parameter "/2": value (9) already exists.` (-32602) |
//! | create | `userid` of another user, by a caller that is not the Super admin, or of no user | `User with ID "5" is not available.` (-32602) |
//! | create, update | the name is taken for that user (update: also by a token renamed away in the same batch) | `API token "x" already exists for userid "2".` (-32602) |
//! | update, delete, generate | an id that does not exist or is not the caller's | `No permissions to referred object or it does not exist!` (-32500) |
//! | update | `status: 0` for a token revoked by possession, alone or in a mass enable (nothing in the batch changes) | `Invalid parameter "/2/status": API token "188" was revoked because its secret was reported leaked: it cannot be enabled again.` (-32602; the example's) |
//! | generate | a token revoked by possession (nothing in the batch changes) | `Invalid parameter "/2": API token "188" was revoked because its secret was reported leaked: it cannot be given a new secret.` (-32602; the example's) |
//! | get | members: `tokenids`, `userids` (ids; a lone id accepted), `token` (string ≤ 64), `valid_at`, `expired_at` (int32), `filter`, `search`, `searchByAny`, `startSearch`, `excludeSearch`, `searchWildcardsEnabled`, `output`, `countOutput`, `sortfield`, `sortorder`, `limit`, `preservekeys`; anything else | `Invalid parameter "/": unexpected parameter "x".` (-32602) |
//! | get | `tokenids: "x"` | `Invalid parameter "/tokenids": an array is expected.` (-32602) |
//! | get | `filter` members: `tokenid`, `userid`, `creator_userid` (ids), `name` (strings), `lastaccess`, `status` (`0`, `1`), `expires_at`, `created_at` (int32); each exact, an array meaning any of; anything else | `Invalid parameter "/filter": unexpected parameter "x".` (-32602) |
//! | get | `filter.status: 2` | `Invalid parameter "/filter/status/1": value must be one of 0, 1.` (-32602) |
//! | get | `search` members: `name`, `description` (strings; at most 100 each, each at most 65,535 characters: the example's bounds, answered `… value is too long.`); anything else | `Invalid parameter "/search": unexpected parameter "x".` (-32602) |
//! | get | `searchByAny`, `searchWildcardsEnabled`, `preservekeys` not a boolean | `Invalid parameter "/preservekeys": a boolean is expected.` (-32602) |
//! | get | `output`: `"extend"` or field names (the token's fields and the example's `revoked_at`) | `Invalid parameter "/output": value must be "extend".` / `Invalid parameter "/output/1": value must be one of "tokenid", "name", …` / `Invalid parameter "/output/2": value (name) already exists.` (-32602) |
//! | get | `sortfield`: `tokenid`, `name`, `description`, `userid`, `lastaccess`, `status`, `expires_at`, `created_at`, `creator_userid`, each once | `Invalid parameter "/sortfield/1": value must be one of "tokenid", …` / `Invalid parameter "/sortfield/2": value (name) already exists.` (-32602) |
//! | get | `sortorder`: `ASC` or `DESC`, one or per field | `Invalid parameter "/sortorder": value must be one of "ASC", "DESC".` (-32602) |
//! | get | `limit` below 1 | `Invalid parameter "/limit": value must be one of 1-2147483647.` (-32602) |
//!
//! `token.get` answers as Zabbix does: every value a string; `countOutput` a string count that
//! ignores `limit`; `output: []` gives an empty array per token; `preservekeys` an object keyed
//! by id; search is case-insensitive, all conditions unless `searchByAny`, `startSearch` anchors
//! at the start, `excludeSearch` negates, `searchWildcardsEnabled` makes `*` a wildcard over the
//! whole value, empty patterns are skipped; `sortfield: expires_at` puts never-expiring tokens
//! first (Zabbix stores them as `0`), `userid` and `creator_userid` sort as numbers;
//! `countOutput` with any valid `sortfield` answers the count (Zabbix drops the sort).
//!
//! # Revocation by possession (the example's own)
//! Zabbix has no way to report a leaked secret; the library's `revoke_by_secret` is final, and
//! the example maps it onto Zabbix's forms:
//!
//! | what | request | answer |
//! | --- | --- | --- |
//! | revoke | `token.revoke` with `{"token": "<secret>"}`, without `auth` | `{"tokenids": ["188"]}` (every token the secret opened, by id); `{"tokenids": []}` when no token has that secret any more (unknown, replaced, revoked already) |
//! | the leaked secret | as `auth`, or as `token.get`'s `token` | `Not authorized.`; no token (its hash is dropped) |
//! | the revoked token | `token.get` | listed, `status` `"1"`, `revoked_at` the Unix time of the revocation (`"0"` for every other token; in `output`'s field list) |
//! | enable it | `token.update` with `status: 0`, alone or in a mass enable | refused (table above); nothing in the batch changes |
//! | a new secret | `token.generate` | refused (table above); nothing in the batch changes |
//! | anything else | `token.update` of `name`, `description`, `expires_at`, `status: 1`; `token.delete` | as for any token |
//!
//! # Where the example differs from Zabbix
//! * No `user.login` and no sessions: without `auth` the caller is user `1`.
//! * `token.revoke`, the `revoked_at` field and the refusals of a revoked token are the
//!   example's own (Zabbix has no revocation by possession); see the section above.
//! * A token's name may not have surrounding whitespace or control characters (the library's
//!   rule; Zabbix accepts them): `Invalid parameter "/1/name": cannot start or end with
//!   whitespace.`
//! * A token cannot be created for a disabled user (the library's rule; Zabbix creates it, it
//!   just cannot authenticate): `User with ID "4" is not available.`
//! * Objects in answers list their members in alphabetical order, not in Zabbix's column order.
//! * The bounds marked above are the example's; Zabbix's only bound is PHP's memory limit.
//! * Not confirmed against a running Zabbix: the `-32600` message's capitalisation (Zabbix's
//!   JSON-RPC test says `Invalid request.`, some `CJsonRpc` versions say `Invalid Request.`);
//!   newer Zabbix releases drop unknown envelope members silently and write the create
//!   uniqueness error as `value (userid, name)=(1, x)`. The example follows the test suite of
//!   the 6.0 era for these.

mod import;
mod input;
mod token_api;
mod users;

use std::cell::Cell;
use std::error::Error as StdError;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::Arc;

use api_tokens::{
    Actor, ManualClock, MemoryStore, Policy, PublicDenial, RequestContext, Snapshot, Tokens,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use input::{ApiError, application, entries, invalid_params, invalid_request};
use token_api::{Caller, TokenApi};
use users::Users;

/// The most requests one batch may hold (the example's bound).
const MAX_BATCH: usize = input::MAX_ELEMENTS;

/// The largest request the example reads, in bytes (the example's bound).
const MAX_REQUEST_BYTES: u64 = 16 * 1024 * 1024;

/// The `-32600` data when the JSON is not a request at all.
const NOT_A_REQUEST: &str = "The received JSON is not a valid JSON-RPC request.";

struct Server {
    api: TokenApi,
}

/// An envelope that passed the checks.
struct Call<'a> {
    method: String,
    params: &'a Value,
    auth: Option<&'a Value>,
    id: Option<Value>,
}

impl Server {
    /// The JSON-RPC envelope, checked as `CJsonRpc` does; the error carries the request's id
    /// when that id is valid.
    fn envelope<'a>(request: &'a Value) -> Result<Call<'a>, (ApiError, Value)> {
        let o = match entries(request, "/") {
            Ok(Some(o)) => o,
            Ok(None) => {
                return Err((
                    invalid_request("Invalid parameter \"/\": an array is expected."),
                    Value::Null,
                ));
            }
            Err(e) => return Err((invalid_request(e.data), Value::Null)),
        };
        let get = |k: &str| o.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        let valid_id =
            get("id").filter(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Null));
        let fail = |data: String| {
            (
                invalid_request(data),
                valid_id.cloned().unwrap_or(Value::Null),
            )
        };
        if let Some((k, _)) = o
            .iter()
            .find(|(k, _)| !["jsonrpc", "method", "params", "auth", "id"].contains(&k.as_str()))
        {
            return Err(fail(format!(
                "Invalid parameter \"/\": unexpected parameter \"{k}\"."
            )));
        }
        let missing =
            |k: &str| format!("Invalid parameter \"/\": the parameter \"{k}\" is missing.");
        let jsonrpc = get("jsonrpc").ok_or_else(|| fail(missing("jsonrpc")))?;
        match jsonrpc.as_str() {
            Some("2.0") => {}
            Some(_) => {
                return Err(fail(
                    "Invalid parameter \"/jsonrpc\": value must be \"2.0\".".into(),
                ));
            }
            None => {
                return Err(fail(
                    "Invalid parameter \"/jsonrpc\": a character string is expected.".into(),
                ));
            }
        }
        let method = get("method")
            .ok_or_else(|| fail(missing("method")))?
            .as_str()
            .ok_or_else(|| {
                fail("Invalid parameter \"/method\": a character string is expected.".into())
            })?;
        let params = get("params").ok_or_else(|| fail(missing("params")))?;
        if !(params.is_array() || params.is_object()) {
            return Err(fail(
                "Invalid parameter \"/params\": an array or object is expected.".into(),
            ));
        }
        let auth = get("auth").filter(|a| !a.is_null());
        if auth.is_some_and(|a| !a.is_string()) {
            return Err(fail(
                "Invalid parameter \"/auth\": a character string is expected.".into(),
            ));
        }
        if get("id").is_some() && valid_id.is_none() {
            return Err((
                invalid_request(
                    "Invalid parameter \"/id\": a string, number or null value is expected.",
                ),
                Value::Null,
            ));
        }
        Ok(Call {
            method: method.to_owned(),
            params,
            auth,
            id: get("id").cloned(),
        })
    }

    /// Who calls, as `CLocalApiClient::authenticate` decides.
    fn caller(&self, auth: Option<&Value>) -> Result<Caller, ApiError> {
        let not_authorized = || invalid_params("Not authorized.");
        let user = match auth.and_then(Value::as_str) {
            None => self
                .api
                .users
                .get("1")
                .cloned()
                .ok_or_else(not_authorized)?,
            Some("") => return Err(not_authorized()),
            Some(secret) if secret.len() == 64 => {
                let grant = self
                    .api
                    .tokens
                    .authenticate(secret, &RequestContext::unknown_address())
                    .map_err(|d| match d.public() {
                        PublicDenial::Expired => application("API token expired."),
                        _ => not_authorized(),
                    })?;
                self.api
                    .users
                    .get(grant.owner.as_str())
                    .cloned()
                    .ok_or_else(not_authorized)?
            }
            Some(_) => return Err(invalid_params("Session terminated, re-login, please.")),
        };
        if !user.active {
            return Err(not_authorized());
        }
        let actor = if user.super_admin {
            Actor::admin(user.id.clone())
        } else {
            Actor::user(user.id.clone())
        };
        Ok(Caller { actor, user })
    }

    fn dispatch(&self, call: &Call<'_>) -> Result<Value, ApiError> {
        let mut parts = call.method.split('.');
        let api = parts.next().unwrap_or_default();
        let method = parts.next().unwrap_or_default();
        let not_found = |data: String| ApiError {
            code: -32601,
            message: "Method not found.",
            data,
        };
        if !api.eq_ignore_ascii_case("token") {
            return Err(not_found(format!("Incorrect API \"{api}\".")));
        }
        let known = ["create", "update", "delete", "get", "generate", "revoke"];
        let Some(m) = known.iter().find(|m| m.eq_ignore_ascii_case(method)) else {
            return Err(not_found(format!("Incorrect method \"{api}.{method}\".")));
        };
        if *m == "revoke" {
            return self.revoke(call, api, method);
        }
        let caller = self.caller(call.auth)?;
        if !caller.user.manage_tokens {
            return Err(invalid_params(format!(
                "No permissions to call \"{api}.{method}\"."
            )));
        }
        match *m {
            "create" => self.api.create(&caller, call.params),
            "update" => self.api.update(&caller, call.params),
            "delete" => self.api.delete(&caller, call.params),
            "generate" => self.api.generate(&caller, call.params),
            _ => self.api.get(&caller, call.params),
        }
    }

    /// The example's own `token.revoke`: holding the secret is the authority, so, like
    /// Zabbix's methods that need no login (`apiinfo.version`), it is called without `auth`
    /// and checks no caller or role. An `auth` given anyway is refused in Zabbix's words for
    /// those methods, never ignored.
    fn revoke(&self, call: &Call<'_>, api: &str, method: &str) -> Result<Value, ApiError> {
        if call.auth.is_some() {
            return Err(invalid_params(format!(
                "The \"{api}.{method}\" method must be called without the \"auth\" parameter."
            )));
        }
        self.api.revoke(call.params)
    }

    /// One request's response, or `None` for a notification.
    fn handle(&self, request: &Value) -> Option<Value> {
        let call = match Self::envelope(request) {
            Ok(call) => call,
            Err((e, id)) => return Some(error(&e, id)),
        };
        let outcome = self.dispatch(&call);
        let id = call.id?;
        Some(match outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
            Err(e) => error(&e, id),
        })
    }

    /// The response to one JSON value of the input: a request, or a batch of them.
    fn respond(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Array(batch) if batch.is_empty() => {
                Some(error(&invalid_request(NOT_A_REQUEST), Value::Null))
            }
            Value::Array(batch) if batch.len() > MAX_BATCH => Some(error(
                &invalid_request("Invalid parameter \"/\": value is too long."),
                Value::Null,
            )),
            Value::Array(batch) => {
                let answers: Vec<Value> = batch.iter().filter_map(|r| self.handle(r)).collect();
                (!answers.is_empty()).then_some(Value::Array(answers))
            }
            Value::Object(_) => self.handle(value),
            _ => Some(error(&invalid_request(NOT_A_REQUEST), Value::Null)),
        }
    }
}

fn error(e: &ApiError, id: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "error": {"code": e.code, "message": e.message, "data": e.data},
        "id": id,
    })
}

/// A reader that fails once one request has taken more than [`MAX_REQUEST_BYTES`]; the count
/// restarts after each request.
struct Bounded<R> {
    inner: R,
    used: Rc<Cell<u64>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.used.get() >= MAX_REQUEST_BYTES {
            return Err(std::io::Error::other("request too large"));
        }
        let room = usize::try_from(MAX_REQUEST_BYTES - self.used.get()).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        let read = self.inner.read(&mut buf[..n])?;
        self.used.set(self.used.get() + read as u64);
        Ok(read)
    }
}

fn main() -> Result<(), Box<dyn StdError>> {
    let mut first_id = 1u64;
    let mut now: Option<i64> = None;
    let mut file = None;
    let mut users = None;
    let mut import_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--first-id" => first_id = args.next().ok_or("--first-id needs a value")?.parse()?,
            "--now" => now = Some(args.next().ok_or("--now needs a value")?.parse()?),
            "--users" => {
                let path = args.next().ok_or("--users needs a file")?;
                users = Some(Users::parse(&std::fs::read_to_string(path)?)?);
            }
            "--import" => import_file = Some(args.next().ok_or("--import needs a file")?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}").into()),
            path => file = Some(path.to_owned()),
        }
    }
    let users = match users {
        Some(u) => u,
        None => Users::default_table()?,
    };
    let store = MemoryStore::from_snapshot(Snapshot {
        version: api_tokens::store::memory::SNAPSHOT_VERSION,
        next_id: first_id,
        tokens: Vec::new(),
    })?;
    let tokens = Tokens::new(store)
        .with_policy(Policy::zabbix())
        .with_directory(users.directory());
    // With the feature `legacy`, Zabbix's own hashes are honoured, so tokens imported from a
    // Zabbix database keep their secrets (each one re-hashed under the example's key when it
    // is first used).
    #[cfg(feature = "legacy")]
    let tokens = tokens.with_legacy_scheme(api_tokens::LegacyScheme::ZabbixSha512);
    #[cfg(not(feature = "legacy"))]
    if import_file.is_some() {
        return Err(
            "--import needs the feature `legacy` (SHA-512 for Zabbix's hashes): \
                    cargo run --example zabbix_jsonrpc --features legacy -- --import FILE"
                .into(),
        );
    }
    let mut tokens = tokens;
    if let Some(secs) = now {
        tokens = tokens.with_clock(Arc::new(ManualClock::new(
            OffsetDateTime::from_unix_timestamp(secs)?,
        )));
    }
    if let Some(path) = import_file {
        for (zabbix_id, id) in import::import(&tokens, &std::fs::read_to_string(path)?)? {
            eprintln!("imported Zabbix token {zabbix_id} as token {id}");
        }
    }
    // The startup check: every stored hash is under a key (or scheme) this process holds.
    tokens.check_hash_keys()?;
    let server = Server {
        api: TokenApi { tokens, users },
    };
    // Requests are answered as they arrive, so a client can use one answer in the next request.
    let input: Box<dyn Read> = match file {
        Some(path) => Box::new(std::fs::File::open(path)?),
        None => Box::new(std::io::stdin()),
    };
    let used = Rc::new(Cell::new(0));
    let reader = Bounded {
        inner: std::io::BufReader::new(input),
        used: Rc::clone(&used),
    };
    let mut out = std::io::stdout();
    for value in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
        used.set(0);
        let Ok(value) = value else {
            let parse_error = json!({
                "jsonrpc": "2.0",
                "error": {"code": -32700, "message": "Parse error",
                          "data": "Invalid JSON. An error occurred on the server while parsing the JSON text."},
                "id": null,
            });
            writeln!(out, "{parse_error}")?;
            break;
        };
        if let Some(response) = server.respond(&value) {
            writeln!(out, "{response}")?;
            out.flush()?;
        }
    }
    Ok(())
}
