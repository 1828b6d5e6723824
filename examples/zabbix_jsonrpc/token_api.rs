//! The `token.*` methods: Zabbix's checks in Zabbix's order, then the library call.

mod revocation;

use std::cmp::Ordering;
use std::collections::HashSet;
use std::hash::Hash;

use api_tokens::store::{SortField, SortOrder, TextSearch};
use api_tokens::{
    Actor, Error, Expiry, Field, Forbidden, MemoryStore, NewToken, Problem, Query, Status, Token,
    TokenId, TokenName, TokenUpdate, Tokens, UserId,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::input::{
    self, ApiError, Object, application, array, bad, element, entries, ids, int32, int32_in,
    invalid_params, is_assoc, string, string_in, strings, unique, unique_objects,
};
use crate::users::{User, Users};

/// Zabbix's answer for an id that does not exist or that the caller may not see.
pub const NO_PERMISSIONS: &str = "No permissions to referred object or it does not exist!";

/// `token.name` and `token.description` lengths in Zabbix's database.
const NAME_LEN: usize = 64;
const DESCRIPTION_LEN: usize = 65_535;

/// The most patterns one `search` field may carry (the example's bound; Zabbix has none).
const MAX_PATTERNS: usize = 100;

/// The fields of a token object, in Zabbix's column order.
const TOKEN_FIELDS: &[&str] = &[
    "tokenid",
    "name",
    "description",
    "userid",
    "lastaccess",
    "status",
    "expires_at",
    "created_at",
    "creator_userid",
    // The example's own: when the token was revoked by possession of its secret.
    "revoked_at",
];

/// The fields `token.get` may sort by (Zabbix's `CToken::$sortColumns`).
const SORT_FIELDS: &[&str] = &[
    "tokenid",
    "name",
    "description",
    "userid",
    "lastaccess",
    "status",
    "expires_at",
    "created_at",
    "creator_userid",
];

pub type Outcome = Result<Value, ApiError>;

/// Who calls: the library's actor and the user table's row.
pub struct Caller {
    pub actor: Actor,
    pub user: User,
}

pub struct TokenApi {
    pub tokens: Tokens<MemoryStore>,
    pub users: Users,
}

/// A library error in Zabbix's words. The checks before each library call answer everything a
/// well-formed request can get wrong, so what reaches this is either a rule of the library that
/// Zabbix does not have (named in the example's table) or a failure.
fn from_error(e: &Error, method: &str) -> ApiError {
    match e {
        Error::Invalid { index, source } => {
            // The library names an item only in batches of more than one; Zabbix always does.
            let item = element("/", index.unwrap_or(0));
            match &source.problem {
                Problem::NameTaken { owner } => invalid_params(format!(
                    "API token \"{}\" already exists for userid \"{owner}\".",
                    source.value
                )),
                Problem::UnknownUser | Problem::InactiveUser => invalid_params(format!(
                    "User with ID \"{}\" is not available.",
                    source.value
                )),
                Problem::TooLong { .. } => bad(
                    &input::member(&item, field(source.field)),
                    "value is too long",
                ),
                p => bad(&input::member(&item, field(source.field)), &p.to_string()),
            }
        }
        Error::Forbidden {
            source: Forbidden::CannotManageTokens,
            ..
        } => invalid_params(format!("No permissions to call \"{method}\".")),
        Error::Forbidden { .. } | Error::NotFound { .. } => application(NO_PERMISSIONS),
        Error::Revoked { index, token } => revocation::refused(*index, *token, method),
        other => application(other.to_string()),
    }
}

fn field(f: Field) -> &'static str {
    match f {
        Field::Name => "name",
        Field::Description => "description",
        Field::Expiry => "expires_at",
        Field::TokenId => "tokenid",
        _ => "userid",
    }
}

/// `API_OBJECTS` with `API_NOT_EMPTY | API_NORMALIZE`: an array of objects, or one object.
fn objects(params: &Value) -> Result<Vec<&Value>, ApiError> {
    let entries = entries(params, "/")?.ok_or_else(|| bad("/", "an array is expected"))?;
    if entries.is_empty() {
        return Err(bad("/", "cannot be empty"));
    }
    if is_assoc(params) {
        return Ok(vec![params]);
    }
    Ok(entries.into_iter().map(|(_, v)| v).collect())
}

/// `API_IDS` with `API_NOT_EMPTY` and `uniq` (`token.delete`, `token.generate`).
fn id_list(params: &Value) -> Result<Vec<TokenId>, ApiError> {
    let values = array(params, "/")?;
    if values.is_empty() {
        return Err(bad("/", "cannot be empty"));
    }
    let ids = values
        .iter()
        .enumerate()
        .map(|(i, v)| input::id(v, &element("/", i)))
        .collect::<Result<Vec<_>, _>>()?;
    unique(&ids, "/")?;
    Ok(ids.iter().map(|s| token_id(s)).collect())
}

/// A validated id as a token id (validated ids fit).
fn token_id(s: &str) -> TokenId {
    TokenId::new(s.parse().unwrap_or(u64::MAX))
}

fn user_id(s: &str) -> Result<UserId, ApiError> {
    UserId::new(s).map_err(|e| application(e.to_string()))
}

fn expiry(secs: i32) -> Expiry {
    match secs {
        0 => Expiry::NEVER,
        s => Expiry::from_unix(i64::from(s)).unwrap_or(Expiry::NEVER),
    }
}

fn status(n: i32) -> Status {
    if n == 0 {
        Status::Enabled
    } else {
        Status::Disabled
    }
}

fn unix(t: OffsetDateTime) -> String {
    t.unix_timestamp().to_string()
}

/// A token as Zabbix writes it: every value a string, `0` for "never".
fn token_object(t: &Token) -> Map<String, Value> {
    let mut o = Map::new();
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
    o.insert("revoked_at".into(), revocation::revoked_at(t));
    o
}

/// The values both lists allow (`None`: no restriction).
fn intersect<T: Eq + Hash + Clone>(a: Option<Vec<T>>, b: Option<Vec<T>>) -> Option<Vec<T>> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let keep: HashSet<T> = b.into_iter().collect();
            Some(a.into_iter().filter(|x| keep.contains(x)).collect())
        }
        (a, None) => a,
        (None, b) => b,
    }
}

/// The fields `token.create` and `token.update` share, read in Zabbix's rule order.
struct Fields {
    name: Option<String>,
    description: Option<String>,
    status: Option<Status>,
    expires_at: Option<Expiry>,
}

impl Fields {
    fn read(o: &Object<'_>, name_required: bool) -> Result<Self, ApiError> {
        let name = if name_required {
            Some(string(
                o.required("name")?,
                &o.at("name"),
                true,
                Some(NAME_LEN),
            )?)
        } else {
            o.get("name")
                .map(|v| string(v, &o.at("name"), true, Some(NAME_LEN)))
                .transpose()?
        };
        Ok(Self {
            name,
            description: o
                .get("description")
                .map(|v| string(v, &o.at("description"), false, Some(DESCRIPTION_LEN)))
                .transpose()?,
            status: None,
            expires_at: None,
        })
    }

    fn read_rest(mut self, o: &Object<'_>) -> Result<Self, ApiError> {
        self.status = o
            .get("status")
            .map(|v| int32_in(v, &o.at("status"), &[0, 1]).map(status))
            .transpose()?;
        self.expires_at = o
            .get("expires_at")
            .map(|v| int32(v, &o.at("expires_at")).map(expiry))
            .transpose()?;
        Ok(self)
    }
}

/// A name as the library takes it; the library's own rules (no control characters, no
/// surrounding whitespace) refused in Zabbix's format.
fn token_name(name: &str, path: &str) -> Result<TokenName, ApiError> {
    TokenName::new(name).map_err(|e| bad(&input::member(path, "name"), &e.problem.to_string()))
}

impl TokenApi {
    fn visible(&self, actor: &Actor, ids: Vec<TokenId>) -> Result<Vec<Token>, ApiError> {
        self.tokens
            .list(actor, &Query::new().ids(ids))
            .map_err(|e| from_error(&e, "token.get"))
    }

    /// Zabbix's `checkDuplicateNames`: per owner, in the order owners first appear, the first
    /// stored token of that owner with one of the names.
    fn check_duplicate_names(&self, wanted: &[(UserId, String)]) -> Result<(), ApiError> {
        let mut owners: Vec<(UserId, Vec<TokenName>)> = Vec::new();
        for (owner, name) in wanted {
            let Ok(name) = TokenName::new(name) else {
                continue;
            };
            match owners.iter_mut().find(|(o, _)| o == owner) {
                Some((_, names)) => names.push(name),
                None => owners.push((owner.clone(), vec![name])),
            }
        }
        for (owner, names) in owners {
            let q = Query::new().owners([owner.clone()]).names(names).limit(1);
            let found = self
                .tokens
                .list(&Actor::admin(owner.clone()), &q)
                .map_err(|e| from_error(&e, "token.get"))?;
            if let Some(t) = found.first() {
                return Err(invalid_params(format!(
                    "API token \"{}\" already exists for userid \"{owner}\".",
                    t.name
                )));
            }
        }
        Ok(())
    }

    pub fn create(&self, caller: &Caller, params: &Value) -> Outcome {
        let own = caller.user.id.to_string();
        let mut items = Vec::new();
        for (i, v) in objects(params)?.into_iter().enumerate() {
            let path = element("/", i);
            let o = Object::read(
                v,
                &path,
                &["name", "description", "userid", "status", "expires_at"],
            )?;
            let fields = Fields::read(&o, true)?;
            let owner = o
                .get("userid")
                .map(|v| input::id(v, &o.at("userid")))
                .transpose()?
                .unwrap_or_else(|| own.clone());
            items.push((path, fields.read_rest(&o)?, owner));
        }
        let pairs: Vec<Vec<Option<String>>> = items
            .iter()
            .map(|(_, f, owner)| vec![f.name.clone(), Some(owner.clone())])
            .collect();
        unique_objects(&pairs, &["name", "userid"], "/")?;
        // checkUsers: another user's id needs the Super admin, and the user must exist.
        let mut others: Vec<&str> = Vec::new();
        for (_, _, owner) in &items {
            if *owner != own && !others.contains(&owner.as_str()) {
                others.push(owner);
            }
        }
        for owner in &others {
            if !caller.user.super_admin || self.users.get(owner).is_none() {
                return Err(invalid_params(format!(
                    "User with ID \"{owner}\" is not available."
                )));
            }
        }
        let wanted = items
            .iter()
            .map(|(_, f, owner)| Ok((user_id(owner)?, f.name.clone().unwrap_or_default())))
            .collect::<Result<Vec<_>, ApiError>>()?;
        self.check_duplicate_names(&wanted)?;
        let mut new = Vec::with_capacity(items.len());
        for ((path, f, _), (owner, name)) in items.into_iter().zip(wanted) {
            let mut t = NewToken::new(token_name(&name, &path)?).owner(owner);
            if let Some(d) = f.description {
                t = t.description(d);
            }
            if let Some(s) = f.status {
                t = t.status(s);
            }
            if let Some(e) = f.expires_at {
                t = t.expiry(e);
            }
            new.push(t);
        }
        let ids = self
            .tokens
            .create(&caller.actor, new)
            .map_err(|e| from_error(&e, "token.create"))?;
        Ok(tokenids(&ids))
    }

    pub fn update(&self, caller: &Caller, params: &Value) -> Outcome {
        let mut items = Vec::new();
        for (i, v) in objects(params)?.into_iter().enumerate() {
            let path = element("/", i);
            let o = Object::read(
                v,
                &path,
                &["tokenid", "name", "description", "status", "expires_at"],
            )?;
            let id = input::id(o.required("tokenid")?, &o.at("tokenid"))?;
            let fields = Fields::read(&o, false)?.read_rest(&o)?;
            items.push((path, id, fields));
        }
        let ids: Vec<Vec<Option<String>>> = items
            .iter()
            .map(|(_, id, _)| vec![Some(id.clone())])
            .collect();
        unique_objects(&ids, &["tokenid"], "/")?;
        let wanted: Vec<TokenId> = items.iter().map(|(_, id, _)| token_id(id)).collect();
        let found = self.visible(&caller.actor, wanted.clone())?;
        if found.len() != items.len() {
            return Err(application(NO_PERMISSIONS));
        }
        let current = |id: TokenId| found.iter().find(|t| t.id == id);
        // The owner comes from the stored token; (userid, name) must be unique in the batch.
        let pairs: Vec<Vec<Option<String>>> = items
            .iter()
            .map(|(_, id, f)| {
                let owner = current(token_id(id)).map(|t| t.owner.to_string());
                vec![owner, f.name.clone()]
            })
            .collect();
        unique_objects(&pairs, &["userid", "name"], "/")?;
        let renamed: Vec<(UserId, String)> = items
            .iter()
            .filter_map(|(_, id, f)| {
                let t = current(token_id(id))?;
                let name = f.name.as_ref()?;
                (name != t.name.as_str()).then(|| (t.owner.clone(), name.clone()))
            })
            .collect();
        self.check_duplicate_names(&renamed)?;
        let mut updates = Vec::with_capacity(items.len());
        for (path, id, f) in items {
            let mut u = TokenUpdate::new(token_id(&id));
            u.name = f.name.map(|n| token_name(&n, &path)).transpose()?;
            u.description = f.description;
            u.status = f.status;
            u.expiry = f.expires_at;
            updates.push(u);
        }
        let ids = self
            .tokens
            .update(&caller.actor, updates)
            .map_err(|e| from_error(&e, "token.update"))?;
        Ok(tokenids(&ids))
    }

    pub fn delete(&self, caller: &Caller, params: &Value) -> Outcome {
        let ids = id_list(params)?;
        if self.visible(&caller.actor, ids.clone())?.len() != ids.len() {
            return Err(application(NO_PERMISSIONS));
        }
        let ids = self
            .tokens
            .delete(&caller.actor, ids)
            .map_err(|e| from_error(&e, "token.delete"))?;
        Ok(tokenids(&ids))
    }

    pub fn generate(&self, caller: &Caller, params: &Value) -> Outcome {
        let ids = id_list(params)?;
        if self.visible(&caller.actor, ids.clone())?.len() != ids.len() {
            return Err(application(NO_PERMISSIONS));
        }
        let secrets = self
            .tokens
            .generate(&caller.actor, ids)
            .map_err(|e| from_error(&e, "token.generate"))?;
        Ok(Value::Array(
            secrets
                .iter()
                .map(|(id, s)| json!({"tokenid": id.to_string(), "token": s.expose()}))
                .collect(),
        ))
    }

    pub fn get(&self, caller: &Caller, params: &Value) -> Outcome {
        let p = GetParams::read(params)?;
        let mut q = Query::new();
        let mut ids = intersect(
            p.tokenids.map(|v| v.iter().map(|s| token_id(s)).collect()),
            p.filter_tokenid
                .map(|v| v.iter().map(|s| token_id(s)).collect()),
        );
        if let Some(secret) = &p.token {
            let found = self
                .tokens
                .find_by_secret(&caller.actor, secret)
                .map_err(|e| from_error(&e, "token.get"))?;
            ids = intersect(ids, Some(found.into_iter().collect()));
        }
        let owners = intersect(p.userids, p.filter_userid);
        q.owners = owners
            .map(|v| v.iter().map(|s| user_id(s)).collect::<Result<Vec<_>, _>>())
            .transpose()?;
        q.creators = p
            .filter_creator
            .map(|v| v.iter().map(|s| user_id(s)).collect::<Result<Vec<_>, _>>())
            .transpose()?;
        if let Some(statuses) = p.filter_status {
            let set: HashSet<i32> = statuses.into_iter().collect();
            match (set.contains(&0), set.contains(&1)) {
                (true, false) => q.status = Some(Status::Enabled),
                (false, true) => q.status = Some(Status::Disabled),
                (false, false) => ids = Some(Vec::new()),
                (true, true) => {}
            }
        }
        q.ids = ids;
        if let Some(names) = p.filter_name {
            q.names = Some(
                names
                    .iter()
                    .filter_map(|n| TokenName::new(n).ok())
                    .collect(),
            );
        }
        q.expires_at = p
            .filter_expires_at
            .map(|v| v.into_iter().map(expiry).collect());
        q.created_at = p.filter_created_at.map(|v| {
            v.into_iter()
                .filter_map(|s| OffsetDateTime::from_unix_timestamp(i64::from(s)).ok())
                .collect()
        });
        q.last_used_at = p.filter_lastaccess.map(|v| {
            v.into_iter()
                .filter_map(|s| match s {
                    0 => Some(None),
                    s => OffsetDateTime::from_unix_timestamp(i64::from(s))
                        .ok()
                        .map(Some),
                })
                .collect()
        });
        let instant = |s: i32| OffsetDateTime::from_unix_timestamp(i64::from(s)).ok();
        q.valid_at = p.valid_at.and_then(instant);
        q.expired_at = p.expired_at.and_then(instant);
        q.search = p.search;
        if p.count_output {
            let n = self
                .tokens
                .count(&caller.actor, &q)
                .map_err(|e| from_error(&e, "token.get"))?;
            return Ok(json!(n.to_string()));
        }
        // The library sorts by its own fields; by description, user or creator the example sorts
        // what it read, then applies the limit.
        let by_library: Option<Vec<(SortField, SortOrder)>> = p
            .sort
            .iter()
            .map(|(s, o)| s.library().map(|f| (f, *o)))
            .collect();
        let sort_here = by_library.is_none();
        for (field, order) in by_library.unwrap_or_default() {
            q = q.then_sort(field, order);
        }
        if !sort_here {
            q.limit = p.limit;
        }
        let mut tokens = self
            .tokens
            .list(&caller.actor, &q)
            .map_err(|e| from_error(&e, "token.get"))?;
        if sort_here {
            tokens.sort_by(|a, b| {
                p.sort
                    .iter()
                    .map(|(s, o)| {
                        let c = s.compare(a, b);
                        if *o == SortOrder::Descending {
                            c.reverse()
                        } else {
                            c
                        }
                    })
                    .find(|c| c.is_ne())
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.id.cmp(&b.id))
            });
            if let Some(n) = p.limit {
                tokens.truncate(n);
            }
        }
        let shown = |t: &Token| {
            let mut o = token_object(t);
            if let Some(fields) = &p.output {
                o.retain(|k, _| fields.contains(k));
            }
            // PHP writes an empty array, not an empty object.
            if o.is_empty() {
                json!([])
            } else {
                Value::Object(o)
            }
        };
        if tokens.is_empty() {
            return Ok(json!([]));
        }
        if p.preservekeys {
            let mut keyed = Map::new();
            for t in &tokens {
                keyed.insert(t.id.to_string(), shown(t));
            }
            return Ok(Value::Object(keyed));
        }
        Ok(Value::Array(tokens.iter().map(shown).collect()))
    }
}

fn tokenids(ids: &[TokenId]) -> Value {
    json!({ "tokenids": ids.iter().map(ToString::to_string).collect::<Vec<_>>() })
}

/// `token.get`'s parameters, checked in the order of Zabbix's rules.
#[derive(Default)]
struct GetParams {
    tokenids: Option<Vec<String>>,
    userids: Option<Vec<String>>,
    token: Option<String>,
    valid_at: Option<i32>,
    expired_at: Option<i32>,
    filter_tokenid: Option<Vec<String>>,
    filter_name: Option<Vec<String>>,
    filter_userid: Option<Vec<String>>,
    filter_lastaccess: Option<Vec<i32>>,
    filter_status: Option<Vec<i32>>,
    filter_expires_at: Option<Vec<i32>>,
    filter_created_at: Option<Vec<i32>>,
    filter_creator: Option<Vec<String>>,
    search: Option<TextSearch>,
    output: Option<Vec<String>>,
    count_output: bool,
    sort: Vec<(Sort, SortOrder)>,
    limit: Option<usize>,
    preservekeys: bool,
}

impl GetParams {
    fn read(params: &Value) -> Result<Self, ApiError> {
        let o = Object::read(
            params,
            "/",
            &[
                "tokenids",
                "userids",
                "token",
                "valid_at",
                "expired_at",
                "filter",
                "search",
                "searchByAny",
                "startSearch",
                "excludeSearch",
                "searchWildcardsEnabled",
                "output",
                "countOutput",
                "sortfield",
                "sortorder",
                "limit",
                "preservekeys",
            ],
        )?;
        let mut p = Self {
            tokenids: o
                .get_non_null("tokenids")
                .map(|v| ids(v, &o.at("tokenids"), true))
                .transpose()?,
            userids: o
                .get_non_null("userids")
                .map(|v| ids(v, &o.at("userids"), true))
                .transpose()?,
            token: o
                .get_non_null("token")
                .map(|v| string(v, &o.at("token"), false, Some(64)))
                .transpose()?,
            valid_at: o
                .get_non_null("valid_at")
                .map(|v| int32(v, &o.at("valid_at")))
                .transpose()?,
            expired_at: o
                .get_non_null("expired_at")
                .map(|v| int32(v, &o.at("expired_at")))
                .transpose()?,
            ..Self::default()
        };
        if let Some(f) = o.get_non_null("filter") {
            p.read_filter(&Object::read(
                f,
                &o.at("filter"),
                &[
                    "tokenid",
                    "name",
                    "userid",
                    "lastaccess",
                    "status",
                    "expires_at",
                    "created_at",
                    "creator_userid",
                ],
            )?)?;
        }
        let mut search = TextSearch::new();
        if let Some(s) = o.get_non_null("search") {
            let s = Object::read(s, &o.at("search"), &["name", "description"])?;
            for (key, field) in [("name", false), ("description", true)] {
                let Some(v) = s.get_non_null(key) else {
                    continue;
                };
                let patterns = strings(v, &s.at(key), Some(DESCRIPTION_LEN))?;
                if patterns.len() > MAX_PATTERNS {
                    return Err(bad(&s.at(key), "value is too long"));
                }
                // Zabbix skips empty patterns.
                let patterns = patterns.into_iter().filter(|p| !p.is_empty());
                search = if field {
                    search.description(patterns)
                } else {
                    search.name(patterns)
                };
            }
        }
        let boolean = |key: &str| {
            o.get(key)
                .map(|v| input::boolean(v, &o.at(key)))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        search = search.any(boolean("searchByAny")?);
        search = search.prefix(o.get("startSearch").is_some_and(input::flag));
        search = search.exclude(o.get("excludeSearch").is_some_and(input::flag));
        search = search.wildcards(boolean("searchWildcardsEnabled")?);
        if !search.is_empty() {
            p.search = Some(search);
        }
        p.output = match o.get("output") {
            None => None,
            Some(v @ Value::String(_)) => {
                string_in(v, &o.at("output"), &["extend"])?;
                None
            }
            Some(v) if v.is_array() || v.is_object() => {
                let path = o.at("output");
                let fields = array(v, &path)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| string_in(f, &element(&path, i), TOKEN_FIELDS))
                    .collect::<Result<Vec<_>, _>>()?;
                unique(&fields, &path)?;
                Some(fields)
            }
            Some(_) => {
                return Err(bad(
                    &o.at("output"),
                    "an array or a character string is expected",
                ));
            }
        };
        p.count_output = o.get("countOutput").is_some_and(input::flag);
        let mut sortfields = Vec::new();
        if let Some(v) = o.get("sortfield") {
            let path = o.at("sortfield");
            let given = if v.is_string() {
                vec![v]
            } else {
                array(v, &path)?
            };
            for (i, f) in given.into_iter().enumerate() {
                sortfields.push(string_in(f, &element(&path, i), SORT_FIELDS)?);
            }
        }
        let orders = match o.get("sortorder") {
            None => Orders::All(SortOrder::Ascending),
            Some(v @ Value::String(_)) => {
                Orders::All(order(&string_in(v, &o.at("sortorder"), &["ASC", "DESC"])?))
            }
            Some(v) if v.is_array() || v.is_object() => {
                let path = o.at("sortorder");
                Orders::Each(
                    array(v, &path)?
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| {
                            string_in(s, &element(&path, i), &["ASC", "DESC"]).map(|s| order(&s))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            Some(_) => {
                return Err(bad(
                    &o.at("sortorder"),
                    "an array or a character string is expected",
                ));
            }
        };
        p.limit = o
            .get_non_null("limit")
            .map(|v| int32_in_range(v, &o.at("limit")))
            .transpose()?;
        p.preservekeys = o
            .get("preservekeys")
            .map(|v| input::boolean(v, &o.at("preservekeys")))
            .transpose()?
            .unwrap_or_default();
        // Uniqueness is checked after every value (CApiInputValidator's second pass).
        unique(&sortfields, &o.at("sortfield"))?;
        p.sort = sortfields
            .iter()
            .enumerate()
            .map(|(i, f)| (Sort::of(f), orders.at(i)))
            .collect();
        Ok(p)
    }

    fn read_filter(&mut self, f: &Object<'_>) -> Result<(), ApiError> {
        let ids_of = |key: &str| {
            f.get_non_null(key)
                .map(|v| ids(v, &f.at(key), true))
                .transpose()
        };
        let ints_of = |key: &str, allowed: Option<&[i32]>| {
            f.get_non_null(key)
                .map(|v| {
                    input::ints32(v, &f.at(key), |v, p| match allowed {
                        Some(a) => int32_in(v, p, a),
                        None => int32(v, p),
                    })
                })
                .transpose()
        };
        self.filter_tokenid = ids_of("tokenid")?;
        self.filter_name = f
            .get_non_null("name")
            .map(|v| strings(v, &f.at("name"), None))
            .transpose()?;
        self.filter_userid = ids_of("userid")?;
        self.filter_lastaccess = ints_of("lastaccess", None)?;
        self.filter_status = ints_of("status", Some(&[0, 1]))?;
        self.filter_expires_at = ints_of("expires_at", None)?;
        self.filter_created_at = ints_of("created_at", None)?;
        self.filter_creator = ids_of("creator_userid")?;
        Ok(())
    }
}

/// `limit`: an integer in `1:2147483647`.
fn int32_in_range(v: &Value, path: &str) -> Result<usize, ApiError> {
    let n = int32(v, path)?;
    if n < 1 {
        return Err(bad(path, "value must be one of 1-2147483647"));
    }
    usize::try_from(n).map_err(|_| bad(path, "a number is too large"))
}

/// `sortorder`: one order for every field, or one per field (missing ones ascending).
enum Orders {
    All(SortOrder),
    Each(Vec<SortOrder>),
}

impl Orders {
    fn at(&self, i: usize) -> SortOrder {
        match self {
            Self::All(o) => *o,
            Self::Each(v) => v.get(i).copied().unwrap_or_default(),
        }
    }
}

fn order(s: &str) -> SortOrder {
    if s == "DESC" {
        SortOrder::Descending
    } else {
        SortOrder::Ascending
    }
}

/// A `sortfield` of `token.get`.
#[derive(Clone, Copy)]
enum Sort {
    /// One the library sorts by.
    Library(SortField),
    Description,
    /// `userid` and `creator_userid`: Zabbix's ids are numbers and sort as numbers.
    User,
    Creator,
}

impl Sort {
    fn of(f: &str) -> Self {
        match f {
            "name" => Self::Library(SortField::Name),
            "description" => Self::Description,
            "userid" => Self::User,
            "lastaccess" => Self::Library(SortField::LastUsed),
            "status" => Self::Library(SortField::Status),
            // Zabbix stores "never" as 0, so never-expiring tokens sort first.
            "expires_at" => Self::Library(SortField::ExpiryNeverFirst),
            "created_at" => Self::Library(SortField::Created),
            "creator_userid" => Self::Creator,
            _ => Self::Library(SortField::Id),
        }
    }

    fn library(self) -> Option<SortField> {
        match self {
            Self::Library(f) => Some(f),
            _ => None,
        }
    }

    /// The order Zabbix's column gives: the stored value (`0` for "never").
    fn compare(self, a: &Token, b: &Token) -> Ordering {
        let user = |u: &UserId| (u.as_str().parse::<u64>().ok(), u.as_str().to_owned());
        let used = |t: &Token| t.last_use.map_or(0, |u| u.at.unix_timestamp());
        match self {
            Self::Description => a.description.cmp(&b.description),
            Self::User => user(&a.owner).cmp(&user(&b.owner)),
            Self::Creator => user(&a.creator).cmp(&user(&b.creator)),
            Self::Library(SortField::Name) => a.name.as_str().cmp(b.name.as_str()),
            Self::Library(SortField::LastUsed) => used(a).cmp(&used(b)),
            Self::Library(SortField::Status) => (a.status == Status::Enabled)
                .cmp(&(b.status == Status::Enabled))
                .reverse(),
            Self::Library(SortField::ExpiryNeverFirst) => a
                .expiry
                .unix()
                .unwrap_or(0)
                .cmp(&b.expiry.unix().unwrap_or(0)),
            Self::Library(SortField::Created) => a.created_at.cmp(&b.created_at),
            Self::Library(_) => a.id.cmp(&b.id),
        }
    }
}
