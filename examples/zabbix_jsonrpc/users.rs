//! The example's user table: Zabbix-like users loaded from a fixture (`--users FILE`).
//!
//! The fixture is a JSON array of users:
//!
//! ```json
//! [
//!   {"userid": "1", "username": "Admin", "type": 3},
//!   {"userid": "5", "username": "zabbix-user", "type": 1, "status": 1, "manage_api_tokens": false}
//! ]
//! ```
//!
//! | member | meaning | default |
//! | --- | --- | --- |
//! | `userid` | the user's id (digits, as Zabbix writes ids) | required |
//! | `username` | for the reader only | — |
//! | `type` | the role type: `1` user, `2` admin, `3` super admin | `1` |
//! | `status` | `0` enabled, `1` disabled (the user group's `users_status`) | `0` |
//! | `manage_api_tokens` | the role's *Manage API tokens* action | `true` |
//!
//! Anything else in the file (an unknown member, a wrong type, a repeated id) is an error: the
//! example refuses to start rather than guess.

use std::collections::HashMap;
use std::error::Error as StdError;

use api_tokens::{PermissionSet, StaticDirectory, UserId, UserState};
use serde_json::Value;

/// One user of the table.
#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub super_admin: bool,
    pub active: bool,
    pub manage_tokens: bool,
}

/// The users, by id.
#[derive(Debug, Default)]
pub struct Users(HashMap<String, User>);

/// Users when no fixture is given: `1` the Super admin, `2` and `3` users, `4` a disabled user.
const DEFAULT: &str = r#"[
    {"userid": "1", "username": "Admin", "type": 3},
    {"userid": "2", "username": "user-2", "type": 1},
    {"userid": "3", "username": "user-3", "type": 1},
    {"userid": "4", "username": "disabled", "type": 1, "status": 1}
]"#;

/// The most users a fixture may hold.
const MAX_USERS: usize = 100_000;

impl Users {
    /// The default table.
    pub fn default_table() -> Result<Self, Box<dyn StdError>> {
        Self::parse(DEFAULT)
    }

    /// Reads a fixture.
    pub fn parse(text: &str) -> Result<Self, Box<dyn StdError>> {
        let value: Value = serde_json::from_str(text)?;
        let list = value
            .as_array()
            .ok_or("the users fixture must be a JSON array")?;
        if list.len() > MAX_USERS {
            return Err(format!("the users fixture holds more than {MAX_USERS} users").into());
        }
        let mut users = HashMap::with_capacity(list.len());
        for (i, u) in list.iter().enumerate() {
            let at = |what: &str| format!("users fixture, user {}: {what}", i + 1);
            let o = u.as_object().ok_or_else(|| at("not an object"))?;
            if let Some(k) = o.keys().find(|k| {
                !["userid", "username", "type", "status", "manage_api_tokens"].contains(&k.as_str())
            }) {
                return Err(at(&format!("unknown member \"{k}\"")).into());
            }
            let id = match o.get("userid") {
                Some(Value::String(s))
                    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    s.trim_start_matches('0').to_owned()
                }
                Some(Value::Number(n)) if n.is_u64() => n.to_string(),
                _ => return Err(at("\"userid\" must be an id (digits)").into()),
            };
            let id = if id.is_empty() { "0".to_owned() } else { id };
            if let Some(name) = o.get("username")
                && !name.is_string()
            {
                return Err(at("\"username\" must be a string").into());
            }
            let int = |key: &str, default: i64, allowed: &[i64]| -> Result<i64, String> {
                match o.get(key) {
                    None => Ok(default),
                    Some(v) => v
                        .as_i64()
                        .filter(|n| allowed.contains(n))
                        .ok_or_else(|| at(&format!("\"{key}\" must be one of {allowed:?}"))),
                }
            };
            let kind = int("type", 1, &[1, 2, 3])?;
            let status = int("status", 0, &[0, 1])?;
            let manage_tokens = match o.get("manage_api_tokens") {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(at("\"manage_api_tokens\" must be true or false").into()),
            };
            let user = User {
                id: UserId::new(&id)?,
                super_admin: kind == 3,
                active: status == 0,
                manage_tokens,
            };
            if users.insert(id.clone(), user).is_some() {
                return Err(at(&format!("user id {id} appears twice")).into());
            }
        }
        Ok(Self(users))
    }

    /// A user by its normalised id.
    pub fn get(&self, id: &str) -> Option<&User> {
        self.0.get(id)
    }

    /// The table as the library's user directory: enabled users are active with every right
    /// (Zabbix has no per-token permissions), disabled ones inactive.
    pub fn directory(&self) -> StaticDirectory {
        let dir = StaticDirectory::new();
        for u in self.0.values() {
            let state = if u.active {
                UserState::Active(PermissionSet::all())
            } else {
                UserState::Inactive
            };
            dir.set(u.id.clone(), state);
        }
        dir
    }
}
