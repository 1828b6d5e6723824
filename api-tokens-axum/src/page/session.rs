//! The page's own sessions: a CSRF token, the list's filter, one message for the next page,
//! and a new secret waiting to be shown once. In memory, bounded in number and in time.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use api_tokens::{Status, TokenId, TokenName, TokenSecret, UserId};
use rand::Rng;

/// Bounds on the page's sessions.
///
/// A session holds a CSRF token, the list's filter and at most one new secret waiting to be
/// shown; it belongs to one user (a request of another user on the same browser starts a fresh
/// one). A user with `max_per_user` sessions who opens another closes their own least recently
/// used, so no user can push others' sessions out; when `max_sessions` are open in all, opening
/// another closes the least recently used of all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionLimits {
    /// Most sessions kept at once. Default 10,000.
    pub max_sessions: usize,
    /// Most sessions of one user (browsers, tabs without cookies). Default 16.
    pub max_per_user: usize,
    /// A session unused this long is closed. Default 30 minutes.
    pub idle: Duration,
    /// A new secret not shown within this time is dropped (wiped) unseen. Default 10 minutes.
    pub reveal_within: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_sessions: 10_000,
            max_per_user: 16,
            idle: Duration::from_secs(30 * 60),
            reveal_within: Duration::from_secs(10 * 60),
        }
    }
}

/// Longest name filter kept, in characters.
pub(crate) const MAX_FILTER_TEXT: usize = 255;
/// Most users in the users and creators filters.
pub(crate) const MAX_FILTER_USERS: usize = 100;

/// The list's filter, as the seed's filter form has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub(crate) name: String,
    pub(crate) owners: Vec<UserId>,
    pub(crate) creators: Vec<UserId>,
    /// "Expires in less than N days".
    pub(crate) expires_within_days: Option<u32>,
    pub(crate) status: Option<Status>,
}

impl Filter {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A message for the next page: what was done, or what was refused (and, for a refusal about
/// one token of a mass action, which).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    pub(crate) ok: bool,
    pub(crate) text: String,
    pub(crate) token: Option<TokenId>,
}

/// Why a secret is waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reveal {
    Created,
    Regenerated,
}

/// A new secret waiting to be shown once (wiped when dropped).
pub(crate) struct Pending {
    pub(crate) id: TokenId,
    pub(crate) name: TokenName,
    pub(crate) secret: TokenSecret,
    pub(crate) why: Reveal,
    at: Instant,
}

pub(crate) struct Session {
    user: UserId,
    csrf: String,
    seen: Instant,
    pub(crate) filter: Filter,
    pub(crate) notice: Option<Notice>,
    pending: Option<Pending>,
}

impl Session {
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The sessions of one page.
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    pub(crate) limits: SessionLimits,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("open", &self.lock().len())
            .field("limits", &self.limits)
            .finish()
    }
}

/// 32 random bytes as 64 hex digits.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0xf));
    }
    out
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

/// Equal, in time that does not depend on where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    pub(crate) fn new(limits: SessionLimits) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A panic while the lock was held leaves at worst a stale session: keep going.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of `user`'s session for `cookie`, opening a new one (with a new id) when there is
    /// none, it went idle, or it belongs to another user. The flag says whether it is new.
    pub(crate) fn open(&self, cookie: Option<&str>, user: &UserId) -> (String, bool) {
        let now = Instant::now();
        let mut map = self.lock();
        if let Some(id) = cookie
            && let Some(session) = map.get_mut(id)
        {
            if session.user == *user && now.duration_since(session.seen) < self.limits.idle {
                session.seen = now;
                return (id.to_owned(), false);
            }
            map.remove(id);
        }
        if map.len() >= self.limits.max_sessions {
            let idle = self.limits.idle;
            map.retain(|_, s| now.duration_since(s.seen) < idle);
        }
        // The user's own first, then anyone's: the least recently used goes.
        let close_oldest = |map: &mut HashMap<String, Session>, only: Option<&UserId>| {
            let oldest = map
                .iter()
                .filter(|(_, s)| only.is_none_or(|u| s.user == *u))
                .min_by_key(|(_, s)| s.seen)
                .map(|(id, _)| id.clone());
            oldest.is_some_and(|id| map.remove(&id).is_some())
        };
        while map.values().filter(|s| s.user == *user).count() >= self.limits.max_per_user.max(1) {
            if !close_oldest(&mut map, Some(user)) {
                break;
            }
        }
        while map.len() >= self.limits.max_sessions.max(1) {
            if !close_oldest(&mut map, None) {
                break;
            }
        }
        let id = random_hex();
        map.insert(
            id.clone(),
            Session {
                user: user.clone(),
                csrf: random_hex(),
                seen: now,
                filter: Filter::default(),
                notice: None,
                pending: None,
            },
        );
        (id, true)
    }

    /// Runs `f` on `user`'s live session `id`, if there is one.
    pub(crate) fn with<R>(
        &self,
        id: Option<&str>,
        user: &UserId,
        f: impl FnOnce(&mut Session) -> R,
    ) -> Option<R> {
        let now = Instant::now();
        let mut map = self.lock();
        let session = map.get_mut(id?)?;
        if session.user != *user || now.duration_since(session.seen) >= self.limits.idle {
            return None;
        }
        session.seen = now;
        Some(f(session))
    }

    /// Whether `presented` is the CSRF token of `user`'s live session `id`.
    pub(crate) fn csrf_ok(&self, id: Option<&str>, user: &UserId, presented: Option<&str>) -> bool {
        let Some(presented) = presented else {
            return false;
        };
        self.with(id, user, |s| same(&s.csrf, presented))
            .unwrap_or(false)
    }

    /// Keeps a new secret for the session's next look at token `id` (replacing, and so wiping,
    /// one not shown yet).
    pub(crate) fn hold(
        &self,
        session: Option<&str>,
        user: &UserId,
        id: TokenId,
        name: TokenName,
        secret: TokenSecret,
        why: Reveal,
    ) -> bool {
        self.with(session, user, |s| {
            s.pending = Some(Pending {
                id,
                name,
                secret,
                why,
                at: Instant::now(),
            });
        })
        .is_some()
    }

    /// The secret waiting for token `id`, taken out of the session: it is never shown twice.
    pub(crate) fn take(
        &self,
        session: Option<&str>,
        user: &UserId,
        id: TokenId,
    ) -> Option<Pending> {
        let within = self.limits.reveal_within;
        self.with(session, user, |s| {
            let pending = s.pending.take()?;
            if pending.id != id {
                s.pending = Some(pending);
                return None;
            }
            (pending.at.elapsed() < within).then_some(pending)
        })
        .flatten()
    }

    /// How many sessions are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    /// A new session of `user` holding a new secret for token 1; its id.
    fn holding(sessions: &Sessions, user: &UserId) -> String {
        let (id, _) = sessions.open(None, user);
        let secret = api_tokens::SecretFormat::default().generate();
        let name = TokenName::new("t").unwrap();
        assert!(sessions.hold(
            Some(&id),
            user,
            TokenId::new(1),
            name,
            secret,
            Reveal::Created
        ));
        id
    }

    #[test]
    fn sessions_are_bounded_and_the_least_recently_used_goes_first() {
        let sessions = Sessions::new(SessionLimits {
            max_sessions: 3,
            ..SessionLimits::default()
        });
        let alice = user("alice");
        let ids: Vec<String> = (0..3).map(|_| sessions.open(None, &alice).0).collect();
        // Touch the first: the second is now the least recently used.
        assert_eq!(
            sessions.open(Some(&ids[0]), &alice),
            (ids[0].clone(), false)
        );
        let (fourth, new) = sessions.open(None, &alice);
        assert!(new);
        assert_eq!(sessions.len(), 3);
        assert!(sessions.with(Some(&ids[1]), &alice, |_| ()).is_none());
        assert!(sessions.with(Some(&ids[0]), &alice, |_| ()).is_some());
        assert!(sessions.with(Some(&fourth), &alice, |_| ()).is_some());
    }

    #[test]
    fn one_user_cannot_push_out_the_sessions_of_others() {
        let sessions = Sessions::new(SessionLimits {
            max_sessions: 10,
            max_per_user: 3,
            ..SessionLimits::default()
        });
        let (bobs, _) = sessions.open(None, &user("bob"));
        let mallory = user("mallory");
        let first = sessions.open(None, &mallory).0;
        for _ in 0..100 {
            sessions.open(None, &mallory);
        }
        assert_eq!(sessions.len(), 4, "bob's one and mallory's three");
        assert!(sessions.with(Some(&bobs), &user("bob"), |_| ()).is_some());
        assert!(sessions.with(Some(&first), &mallory, |_| ()).is_none());
    }

    #[test]
    fn a_session_belongs_to_one_user() {
        let sessions = Sessions::new(SessionLimits::default());
        let (id, _) = sessions.open(None, &user("alice"));
        let csrf = sessions
            .with(Some(&id), &user("alice"), |s| s.csrf.clone())
            .unwrap();
        assert!(sessions.csrf_ok(Some(&id), &user("alice"), Some(&csrf)));
        assert!(!sessions.csrf_ok(Some(&id), &user("bob"), Some(&csrf)));
        assert!(!sessions.csrf_ok(Some(&id), &user("alice"), None));
        assert!(!sessions.csrf_ok(Some(&id), &user("alice"), Some("")));
        assert!(!sessions.csrf_ok(None, &user("alice"), Some(&csrf)));
        // Bob on Alice's browser gets a fresh session, and Alice's is gone.
        let (other, new) = sessions.open(Some(&id), &user("bob"));
        assert!(new && other != id);
        assert!(!sessions.csrf_ok(Some(&id), &user("alice"), Some(&csrf)));
    }

    #[test]
    fn idle_sessions_and_unseen_secrets_expire() {
        let sessions = Sessions::new(SessionLimits {
            idle: Duration::ZERO,
            ..SessionLimits::default()
        });
        let (id, _) = sessions.open(None, &user("alice"));
        assert!(sessions.with(Some(&id), &user("alice"), |_| ()).is_none());

        let sessions = Sessions::new(SessionLimits {
            reveal_within: Duration::ZERO,
            ..SessionLimits::default()
        });
        let alice = user("alice");
        let id = holding(&sessions, &alice);
        assert!(sessions.take(Some(&id), &alice, TokenId::new(1)).is_none());
    }

    #[test]
    fn a_secret_is_taken_once_and_only_for_its_token() {
        let sessions = Sessions::new(SessionLimits::default());
        let alice = user("alice");
        let id = holding(&sessions, &alice);
        assert!(sessions.take(Some(&id), &alice, TokenId::new(2)).is_none());
        assert!(
            sessions
                .take(Some(&id), &user("bob"), TokenId::new(1))
                .is_none()
        );
        assert!(sessions.take(Some(&id), &alice, TokenId::new(1)).is_some());
        assert!(sessions.take(Some(&id), &alice, TokenId::new(1)).is_none());
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
