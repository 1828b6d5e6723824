//! The page's sessions, kept by nobody: what the page hands a browser (its session cookie, the
//! CSRF token of its forms, a message for the next page, the version of a secret a regenerate
//! form was shown with) is signed with the page's [`PageKey`] (keyed BLAKE3) and checked when it
//! comes back. Any process holding the same key checks it the same way, so the page needs no
//! sticky sessions and no shared store, and keeps nothing a second process would need.

use std::fmt;
use std::time::Duration;

use api_tokens::{HashKey, HashKeyError, Token, TokenId, UserId};
use rand::Rng;

/// The key the page signs its cookies and form tokens with: 32 random bytes, **the same on
/// every process that serves the page** (behind a load balancer, a form shown by one process is
/// posted to another, which must check its CSRF token).
///
/// Give it with [`TokensPage::with_key`](super::TokensPage::with_key), read from the host's
/// configuration ([`PageKey::from_env`] reads hex or base64, as `openssl rand -hex 32` writes
/// it). Without one, each page makes a [random](PageKey::random) key when it is built: fine for
/// one process, and every process restart ends the page's sessions (a form shown before it is
/// refused as without its CSRF token; the user reloads the page).
///
/// Make it a key of its own, not the hash key (`openssl rand -hex 32` again): whoever holds it
/// can sign page sessions and CSRF tokens, nothing more. Its `Debug` shows only its public
/// [`id`](PageKey::id), never the key; the key is wiped when dropped.
///
/// ```
/// use api_tokens_axum::page::PageKey;
///
/// let key: PageKey = "4f".repeat(32).parse()?;
/// assert_eq!(key.id(), PageKey::from_hex(&"4F".repeat(32))?.id());
/// assert!(PageKey::from_hex("not a key").is_err());
/// // At startup: `let key = PageKey::from_env("API_TOKENS_PAGE_KEY")?;`
/// # Ok::<(), api_tokens_axum::page::PageKeyError>(())
/// ```
#[derive(Clone)]
pub struct PageKey(HashKey);

/// A page key that could not be read: its source error says why (length, alphabet, all zeros,
/// a missing variable). It never contains the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a page key (32 bytes in hex or base64)")]
pub struct PageKeyError(#[source] HashKeyError);

impl PageKey {
    /// A key from 32 bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(HashKey::new(bytes))
    }

    /// A fresh random key from the operating system's CSPRNG: the default of a page without
    /// one, good for one process only.
    pub fn random() -> Self {
        Self(HashKey::random())
    }

    /// A key from 64 hex digits (either case); surrounding whitespace is ignored.
    ///
    /// # Errors
    /// Not 64 hex digits, or all zeros (a placeholder).
    pub fn from_hex(text: &str) -> Result<Self, PageKeyError> {
        HashKey::from_hex(text).map(Self).map_err(PageKeyError)
    }

    /// A key from base64 (43 characters, or 44 ending in `=`; standard or URL-safe alphabet).
    ///
    /// # Errors
    /// Not 32 bytes of base64, or all zeros (a placeholder).
    pub fn from_base64(text: &str) -> Result<Self, PageKeyError> {
        HashKey::from_base64(text).map(Self).map_err(PageKeyError)
    }

    /// A key from the environment variable `var`, in hex or base64 (told apart by length).
    ///
    /// # Errors
    /// The variable is not set or not Unicode, or its value is no key.
    pub fn from_env(var: &str) -> Result<Self, PageKeyError> {
        HashKey::from_env(var).map(Self).map_err(PageKeyError)
    }

    /// The key's public name (8 bytes derived from it, as hex when displayed): log it at
    /// startup to see that every process serving the page has the same key, without logging
    /// the key.
    pub fn id(&self) -> api_tokens::KeyId {
        self.0.id()
    }

    /// The MAC of `fields` for `purpose`: keyed BLAKE3 over the purpose and each field, each
    /// prefixed with its length, so no two different lists of fields hash alike.
    fn mac(&self, purpose: &str, fields: &[&[u8]]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(self.0.expose());
        for field in std::iter::once(purpose.as_bytes()).chain(fields.iter().copied()) {
            h.update(&(field.len() as u64).to_le_bytes());
            h.update(field);
        }
        h.finalize()
    }
}

impl std::str::FromStr for PageKey {
    type Err = PageKeyError;

    /// Hex or base64, told apart by length.
    fn from_str(text: &str) -> Result<Self, PageKeyError> {
        if text.trim().len() == 64 {
            Self::from_hex(text)
        } else {
            Self::from_base64(text)
        }
    }
}

impl fmt::Debug for PageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageKey")
            .field("id", &self.id().to_string())
            .finish_non_exhaustive()
    }
}

/// How long a page session lasts. A session is the page's own cookie: it binds the CSRF
/// tokens of the page's forms to one browser and one user (the host's login says who the user
/// is; the page's session never does). It is signed, not stored, so it ends by time only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionLimits {
    /// A session not used for this long ends (its forms are refused; the next page opens a new
    /// one). Default 30 minutes. The cookie is renewed when a quarter of it has passed, so a
    /// session in use ends between ¾ of it and all of it after its last use.
    pub idle: Duration,
    /// A session ends this long after it was opened, however busy. Default 12 hours.
    pub absolute: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 60 * 60),
        }
    }
}

impl SessionLimits {
    /// A session that lasts `idle` without use, and `absolute` at most.
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Self { idle, absolute }
    }
}

/// How far in the future a time signed by another process may be (their clocks differ a
/// little).
const SKEW_SECS: i64 = 60;
/// The longest cookie value the page reads (a session is about 120 bytes, a message at most
/// `2 * MAX_NOTICE_BYTES` more): longer ones are ignored unread.
const MAX_COOKIE: usize = 2 * MAX_NOTICE_BYTES + 256;
/// The longest message a notice carries, in bytes (longer texts are cut at a character).
pub(crate) const MAX_NOTICE_BYTES: usize = 600;
/// How long a notice waits for the next page.
pub(crate) const NOTICE_SECS: i64 = 60;

/// A message for the next page: what was done, or what was refused (and, for a refusal about
/// one token of a mass action, which).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    pub(crate) ok: bool,
    pub(crate) text: String,
    pub(crate) token: Option<TokenId>,
}

/// A session the caller's cookie proved (or one just opened).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    id: [u8; 16],
    issued: i64,
    seen: i64,
}

/// The page's signer: its key and its sessions' limits.
pub(crate) struct Sessions {
    key: PageKey,
    pub(crate) limits: SessionLimits,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("key", &self.key)
            .field("limits", &self.limits)
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0xf));
    }
    out
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| char::from(c).to_digit(16);
            let (hi, lo) = (digit(*pair.first()?)?, digit(*pair.get(1)?)?);
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// Whether `presented` (hex) is the MAC `expected`, in constant time (BLAKE3's `Hash`
/// compares so).
fn mac_is(expected: &blake3::Hash, presented: &str) -> bool {
    let Some(bytes) = unhex(presented) else {
        return false;
    };
    <[u8; 32]>::try_from(bytes.as_slice()).is_ok_and(|b| *expected == blake3::Hash::from(b))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Sessions {
    pub(crate) fn new(key: PageKey, limits: SessionLimits) -> Self {
        Self { key, limits }
    }

    fn session_mac(&self, user: &UserId, s: &Session) -> blake3::Hash {
        self.key.mac(
            "api-tokens page session",
            &[
                user.as_str().as_bytes(),
                &s.id,
                &s.issued.to_le_bytes(),
                &s.seen.to_le_bytes(),
            ],
        )
    }

    /// The session `cookie` proves for `user` at `now`: signed for this user with this key,
    /// used within `idle`, opened within `absolute`. Anything else is no session.
    pub(crate) fn verify(&self, cookie: Option<&str>, user: &UserId, now: i64) -> Option<Session> {
        let [id, issued, seen, mac] = fields(cookie, "s1")?;
        let session = Session {
            id: <[u8; 16]>::try_from(unhex(id)?.as_slice()).ok()?,
            issued: issued.parse().ok()?,
            seen: seen.parse().ok()?,
        };
        if !mac_is(&self.session_mac(user, &session), mac) {
            return None;
        }
        let live = session.issued <= session.seen
            && session.seen <= now.saturating_add(SKEW_SECS)
            && now.saturating_sub(session.seen) < secs(self.limits.idle)
            && now.saturating_sub(session.issued) < secs(self.limits.absolute);
        live.then_some(session)
    }

    /// A new session, opened at `now` (its cookie is signed for a user by [`Sessions::cookie`]).
    pub(crate) fn open(&self, now: i64) -> Session {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        Session {
            id,
            issued: now,
            seen: now,
        }
    }

    /// `session` as used at `now`, when its cookie is due for renewal (a quarter of `idle`
    /// has passed since it was last renewed); `None` while the cookie it came with will do.
    pub(crate) fn renewed(&self, session: &Session, now: i64) -> Option<Session> {
        let quarter = secs(self.limits.idle) / 4;
        (now.saturating_sub(session.seen) >= quarter.max(1) && now > session.seen).then_some(
            Session {
                seen: now,
                ..*session
            },
        )
    }

    /// The cookie value of `user`'s `session`.
    pub(crate) fn cookie(&self, user: &UserId, session: &Session) -> String {
        format!(
            "s1.{}.{}.{}.{}",
            hex(&session.id),
            session.issued,
            session.seen,
            self.session_mac(user, session).to_hex()
        )
    }

    /// The CSRF token of `user`'s `session`: a MAC of the session (its id and when it was
    /// opened) and the user, the same for the session's whole life on every process.
    pub(crate) fn csrf(&self, user: &UserId, session: &Session) -> String {
        self.key
            .mac(
                "api-tokens page csrf",
                &[
                    user.as_str().as_bytes(),
                    &session.id,
                    &session.issued.to_le_bytes(),
                ],
            )
            .to_hex()
            .to_string()
    }

    /// Whether `presented` is the CSRF token of `user`'s `session` (constant time).
    pub(crate) fn csrf_ok(&self, user: &UserId, session: &Session, presented: &str) -> bool {
        let expected = self.key.mac(
            "api-tokens page csrf",
            &[
                user.as_str().as_bytes(),
                &session.id,
                &session.issued.to_le_bytes(),
            ],
        );
        mac_is(&expected, presented)
    }

    /// The MAC of a notice's fields (when, ok, token, text, as written in its cookie).
    fn notice_mac(&self, user: &UserId, session: &Session, fields: [&str; 4]) -> blake3::Hash {
        let mut all: Vec<&[u8]> = vec![user.as_str().as_bytes(), &session.id];
        all.extend(fields.iter().map(|f| f.as_bytes()));
        self.key.mac("api-tokens page notice", &all)
    }

    /// The cookie value carrying `notice` to `user`'s next page in `session`, made at `now`.
    pub(crate) fn notice_cookie(
        &self,
        user: &UserId,
        session: &Session,
        notice: &Notice,
        now: i64,
    ) -> String {
        let mut text = notice.text.as_str();
        if text.len() > MAX_NOTICE_BYTES {
            let mut end = MAX_NOTICE_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text = text.get(..end).unwrap_or_default();
        }
        let ok = if notice.ok { "1" } else { "0" };
        let token = notice
            .token
            .map_or_else(String::new, |t| t.get().to_string());
        let text = hex(text.as_bytes());
        let at = now.to_string();
        let mac = self.notice_mac(user, session, [&at, ok, &token, &text]);
        format!("n1.{at}.{ok}.{token}.{text}.{}", mac.to_hex())
    }

    /// The notice `cookie` carries for `user`'s `session`, if it was signed for them within
    /// the last minute.
    pub(crate) fn notice_of(
        &self,
        cookie: Option<&str>,
        user: &UserId,
        session: &Session,
        now: i64,
    ) -> Option<Notice> {
        let [at, ok, token, text, mac] = fields(cookie, "n1")?;
        let expected = self.notice_mac(user, session, [at, ok, token, text]);
        if !mac_is(&expected, mac) {
            return None;
        }
        let at: i64 = at.parse().ok()?;
        if at > now.saturating_add(SKEW_SECS) || now.saturating_sub(at) >= NOTICE_SECS {
            return None;
        }
        Some(Notice {
            ok: ok == "1",
            text: String::from_utf8(unhex(text)?).ok()?,
            token: if token.is_empty() {
                None
            } else {
                Some(token.parse().ok()?)
            },
        })
    }

    /// The version of `token`'s secret a regenerate form carries: a MAC of its id and of its
    /// secret's hash (none yet: empty), so it changes with every regeneration and tells nothing
    /// of the hash. A form sent again after its token was regenerated no longer matches.
    pub(crate) fn secret_version(&self, token: &Token) -> String {
        let hash = token
            .secret
            .as_ref()
            .map(|s| s.hash.to_hex())
            .unwrap_or_default();
        let mac = self.key.mac(
            "api-tokens page secret version",
            &[&token.id.get().to_le_bytes(), hash.as_bytes()],
        );
        hex(mac.as_bytes().get(..16).unwrap_or_default())
    }
}

/// The fields of a signed cookie written as `tag.field.….field`: `None` when it is longer than
/// a cookie may be, has another tag (another format or version) or another number of fields.
fn fields<'a, const N: usize>(cookie: Option<&'a str>, tag: &str) -> Option<[&'a str; N]> {
    let cookie = cookie.filter(|c| c.len() <= MAX_COOKIE)?;
    let mut parts = cookie.split('.');
    if parts.next()? != tag {
        return None;
    }
    let mut out = [""; N];
    for field in &mut out {
        *field = parts.next()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    fn sessions(limits: SessionLimits) -> Sessions {
        Sessions::new(PageKey::new([7; 32]), limits)
    }

    #[test]
    fn a_session_is_proved_by_its_cookie_on_any_process_with_the_key() {
        let one = sessions(SessionLimits::default());
        let two = sessions(SessionLimits::default());
        let alice = user("alice");
        let s = one.open(1_000);
        let cookie = one.cookie(&alice, &s);
        assert!(cookie.len() < 150, "{cookie}");
        assert_eq!(two.verify(Some(&cookie), &alice, 1_001), Some(s));
        let csrf = one.csrf(&alice, &s);
        assert!(two.csrf_ok(&alice, &s, &csrf));
        // Another key proves nothing.
        let other = Sessions::new(PageKey::new([8; 32]), SessionLimits::default());
        assert_eq!(other.verify(Some(&cookie), &alice, 1_001), None);
        assert!(!other.csrf_ok(&alice, &s, &csrf));
    }

    #[test]
    fn a_session_belongs_to_one_user() {
        let s = sessions(SessionLimits::default());
        let (alice, bob) = (user("alice"), user("bob"));
        let session = s.open(1_000);
        let cookie = s.cookie(&alice, &session);
        assert!(s.verify(Some(&cookie), &bob, 1_000).is_none());
        let csrf = s.csrf(&alice, &session);
        assert!(!s.csrf_ok(&bob, &session, &csrf));
        assert!(!s.csrf_ok(&alice, &session, ""));
        assert!(!s.csrf_ok(&alice, &session, &csrf[..63]));
        // Another session of the same user has another token.
        let later = s.open(1_000);
        assert_ne!(s.csrf(&alice, &later), csrf);
        assert!(!s.csrf_ok(&alice, &later, &csrf));
    }

    #[test]
    fn a_changed_cookie_proves_nothing() {
        let s = sessions(SessionLimits::default());
        let alice = user("alice");
        let cookie = s.cookie(&alice, &s.open(1_000));
        assert!(s.verify(Some(&cookie), &alice, 1_000).is_some());
        let parts: Vec<&str> = cookie.split('.').collect();
        // A later time (to outlive its limits), another id, another version: each refused.
        for (i, value) in [(3, "1999"), (2, "999"), (1, &*"ab".repeat(16)), (0, "s2")] {
            let mut changed = parts.clone();
            changed[i] = value;
            assert!(
                s.verify(Some(&changed.join(".")), &alice, 1_000).is_none(),
                "{i}"
            );
        }
        for junk in [
            "",
            "s1",
            "s1.....",
            &"x".repeat(5_000),
            &format!("{cookie}.x"),
        ] {
            assert!(s.verify(Some(junk), &alice, 1_000).is_none(), "{junk}");
        }
    }

    #[test]
    fn sessions_end_when_idle_and_when_old() {
        let s = sessions(SessionLimits::new(
            Duration::from_secs(100),
            Duration::from_secs(1_000),
        ));
        let alice = user("alice");
        let opened = s.open(10_000);
        let cookie = s.cookie(&alice, &opened);
        assert!(s.verify(Some(&cookie), &alice, 10_099).is_some());
        assert!(s.verify(Some(&cookie), &alice, 10_100).is_none(), "idle");
        // Renewed while in use, until its absolute end.
        assert_eq!(s.renewed(&opened, 10_010), None, "not due yet");
        let mut session = opened;
        let mut now = 10_000;
        while now < 10_990 {
            now += 90;
            let cookie = s.cookie(&alice, &session);
            let Some(live) = s.verify(Some(&cookie), &alice, now) else {
                break;
            };
            session = s.renewed(&live, now).unwrap_or(live);
        }
        assert!(now >= 10_990, "kept alive by use: {now}");
        let cookie = s.cookie(&alice, &session);
        assert!(
            s.verify(Some(&cookie), &alice, 11_000).is_none(),
            "absolute"
        );
        // A time far in the future (another key's, a forged clock): refused.
        let future = Session {
            seen: 20_000,
            ..opened
        };
        assert!(
            s.verify(Some(&s.cookie(&alice, &future)), &alice, 10_000)
                .is_none()
        );
    }

    #[test]
    fn a_notice_reaches_only_its_session_within_a_minute() {
        let s = sessions(SessionLimits::default());
        let alice = user("alice");
        let session = s.open(1_000);
        let notice = Notice {
            ok: false,
            text: "Token 7: refused — «quoted» & <b>".to_owned(),
            token: Some(TokenId::new(7)),
        };
        let cookie = s.notice_cookie(&alice, &session, &notice, 1_000);
        assert_eq!(
            s.notice_of(Some(&cookie), &alice, &session, 1_059),
            Some(notice.clone())
        );
        assert_eq!(s.notice_of(Some(&cookie), &alice, &session, 1_060), None);
        assert_eq!(
            s.notice_of(Some(&cookie), &user("bob"), &session, 1_000),
            None
        );
        assert_eq!(
            s.notice_of(Some(&cookie), &alice, &s.open(1_000), 1_000),
            None
        );
        let forged = cookie.replacen(".0.", ".1.", 1);
        assert_eq!(s.notice_of(Some(&forged), &alice, &session, 1_000), None);
        // A long text is cut at a character, and the cookie stays bounded.
        let long = Notice {
            ok: true,
            text: "é".repeat(1_000),
            token: None,
        };
        let cookie = s.notice_cookie(&alice, &session, &long, 1_000);
        assert!(cookie.len() <= MAX_COOKIE);
        let read = s.notice_of(Some(&cookie), &alice, &session, 1_000).unwrap();
        assert_eq!(read.text, "é".repeat(MAX_NOTICE_BYTES / 2));
    }

    #[test]
    fn the_key_reads_from_hex_and_base64_and_never_shows_itself() {
        let hex_key = "0123456789abcdef".repeat(4);
        let key: PageKey = hex_key.parse().unwrap();
        let debug = format!("{key:?}");
        assert!(
            !debug.contains(&hex_key) && debug.contains("PageKey"),
            "{debug}"
        );
        let b64: PageKey = "ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8"
            .parse()
            .unwrap();
        assert_eq!(b64.id(), key.id());
        assert!("00".repeat(32).parse::<PageKey>().is_err(), "all zeros");
        assert!("zz".repeat(32).parse::<PageKey>().is_err());
        assert!(std::error::Error::source(&"x".parse::<PageKey>().unwrap_err()).is_some());
    }
}
