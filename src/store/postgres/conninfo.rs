//! libpq connection strings as operators write them, in both of libpq's forms: `key=value`
//! pairs (values bare or single-quoted, a backslash escaping the next character) and
//! `postgresql://` / `postgres://` URLs (percent-encoded). The TLS options tokio-postgres'
//! own parser does not know (`sslmode` `allow`/`verify-ca`/`verify-full`, `sslrootcert`) are
//! taken out here; every other option is handed on to tokio-postgres, which refuses what it
//! does not know.
//!
//! libpq's rules kept: a repeated option keeps its last value; an empty value means "not set";
//! in a URL, `user[:password]@` ends at the first `@` before any `/`, the hosts are a
//! comma-separated list of `host[:port]` or `[ipv6][:port]`, every part is percent-decoded
//! (`%00` refused), and JDBC's `ssl=true` in the query means `sslmode=require`.
//!
//! No error repeats a value or an option name (a mistyped password could be either): errors
//! say where, by byte offset, and what was expected.

use tokio_postgres::Config;

use super::tls::{SslMode, SslRootCert};

/// A parsed connection string: the TLS options, the password (kept as bytes: a URL may
/// percent-encode any), and every other option for tokio-postgres.
pub(crate) struct ConnInfo {
    /// Options for tokio-postgres with their last non-empty value, names checked.
    options: Vec<(String, String)>,
    password: Option<Vec<u8>>,
    ssl_mode: Option<String>,
    ssl_root_cert: Option<String>,
}

/// Why a connection string was refused. Never holds a value from the string: not even an
/// `sslmode`'s, since libpq reads `sslmode= password=…` as the sslmode `password=…`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("connection string: missing \"=\" after the option name at byte {0}")]
    MissingEquals(usize),
    #[error(
        "connection string: the option name at byte {0} is not a libpq option name (letters, digits, `_`)"
    )]
    BadName(usize),
    #[error("connection string: the quoted value at byte {0} is not terminated")]
    Unterminated(usize),
    #[error("connection string: a \"[\" at byte {0} has no matching \"]\" (IPv6 host)")]
    UnclosedBracket(usize),
    #[error("connection string: an empty IPv6 host (\"[]\") at byte {0}")]
    EmptyIpv6(usize),
    #[error(
        "connection string: unexpected character at byte {0} after an IPv6 host (expected \":\", \"/\", \"?\" or \",\")"
    )]
    AfterIpv6(usize),
    #[error("connection string: a query parameter at byte {0} has no \"=\"")]
    QueryNoEquals(usize),
    #[error("connection string: a query parameter at byte {0} has a second \"=\"")]
    QueryExtraEquals(usize),
    #[error("connection string: invalid percent-encoding at byte {0}")]
    BadPercent(usize),
    #[error("connection string: %00 at byte {0} (a NUL byte is not allowed)")]
    PercentNul(usize),
    #[error("connection string: the {0} is not valid UTF-8 once percent-decoded")]
    NotUtf8(&'static str),
    #[error(
        "connection string: invalid sslmode (disable, allow, prefer, require, verify-ca or verify-full)"
    )]
    SslMode,
}

/// libpq's `isspace` in the C locale.
fn space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// libpq's option names are lower-case words with `_`; anything else is refused here, so no
/// name can change how tokio-postgres reads the string it is handed.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

const URL_PREFIXES: [&str; 2] = ["postgresql://", "postgres://"];

impl ConnInfo {
    /// Parses either form (a URL when the string starts with libpq's URL prefix).
    pub(crate) fn parse(s: &str) -> Result<Self, ParseError> {
        let mut info = Self {
            options: Vec::new(),
            password: None,
            ssl_mode: None,
            ssl_root_cert: None,
        };
        match URL_PREFIXES.iter().find_map(|p| s.strip_prefix(p)) {
            Some(rest) => info.parse_url(rest.as_bytes(), s.len() - rest.len())?,
            None => info.parse_pairs(s.as_bytes())?,
        }
        info.ssl_mode()?;
        Ok(info)
    }

    /// `sslmode`, if set: `allow` is read as `prefer` (see [`SslMode`]).
    pub(crate) fn ssl_mode(&self) -> Result<Option<SslMode>, ParseError> {
        self.ssl_mode
            .as_deref()
            .map(|m| m.parse().map_err(|_| ParseError::SslMode))
            .transpose()
    }

    /// `sslrootcert`, if set: `system` is libpq's name for the system's trust store.
    pub(crate) fn ssl_root_cert(&self) -> Option<SslRootCert> {
        self.ssl_root_cert.as_deref().map(SslRootCert::from_libpq)
    }

    /// Every option but the TLS ones, as tokio-postgres reads them: each value quoted, so
    /// nothing in a value can be read as another option.
    pub(crate) fn config(&self) -> Result<Config, tokio_postgres::Error> {
        let mut s = String::new();
        for (name, value) in &self.options {
            s.push_str(name);
            s.push_str("='");
            for c in value.chars() {
                if c == '\\' || c == '\'' {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push_str("' ");
        }
        let mut config: Config = s.parse()?;
        if let Some(p) = &self.password {
            config.password(p.clone());
        }
        Ok(config)
    }

    /// Records an option; the last value wins, an empty one unsets it.
    fn set(&mut self, name: &str, value: Vec<u8>) -> Result<(), ParseError> {
        if name == "password" {
            self.password = (!value.is_empty()).then_some(value);
            return Ok(());
        }
        let what = match name {
            "sslmode" => "sslmode",
            "sslrootcert" => "sslrootcert",
            "host" => "host",
            "dbname" => "dbname",
            "user" => "user",
            _ => "value of an option",
        };
        let value = String::from_utf8(value).map_err(|_| ParseError::NotUtf8(what))?;
        let value = (!value.is_empty()).then_some(value);
        match name {
            "sslmode" => self.ssl_mode = value,
            "sslrootcert" => self.ssl_root_cert = value,
            _ => {
                self.options.retain(|(n, _)| n != name);
                if let Some(v) = value {
                    self.options.push((name.to_owned(), v));
                }
            }
        }
        Ok(())
    }

    /// libpq's `key=value` form.
    fn parse_pairs(&mut self, b: &[u8]) -> Result<(), ParseError> {
        let n = b.len();
        let mut i = 0;
        loop {
            while i < n && b.get(i).copied().is_some_and(space) {
                i += 1;
            }
            if i >= n {
                return Ok(());
            }
            let start = i;
            while b.get(i).is_some_and(|&c| c != b'=' && !space(c)) {
                i += 1;
            }
            let name = b.get(start..i).unwrap_or_default();
            while b.get(i).copied().is_some_and(space) {
                i += 1;
            }
            if b.get(i) != Some(&b'=') {
                return Err(ParseError::MissingEquals(start));
            }
            if !valid_name(name) {
                return Err(ParseError::BadName(start));
            }
            i += 1;
            while b.get(i).copied().is_some_and(space) {
                i += 1;
            }
            let mut value = Vec::new();
            if b.get(i) == Some(&b'\'') {
                let open = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(ParseError::Unterminated(open)),
                        Some(b'\\') => {
                            i += 1;
                            if let Some(&c) = b.get(i) {
                                value.push(c);
                                i += 1;
                            }
                        }
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
            } else {
                while let Some(&c) = b.get(i) {
                    if space(c) {
                        break;
                    }
                    i += 1;
                    if c == b'\\' {
                        if let Some(&e) = b.get(i) {
                            value.push(e);
                            i += 1;
                        }
                    } else {
                        value.push(c);
                    }
                }
            }
            // Names are ASCII (checked above).
            let name = String::from_utf8_lossy(name).into_owned();
            self.set(&name, value)?;
        }
    }

    /// libpq's URL form; `base` is the offset of `b` in the whole string (for messages).
    fn parse_url(&mut self, b: &[u8], base: usize) -> Result<(), ParseError> {
        let at = |i: usize| b.get(i).copied();
        let slice = |from: usize, to: usize| b.get(from..to).unwrap_or_default();
        let mut p = 0;
        // `user[:password]@`: only when an `@` comes before any `/`.
        while at(p).is_some_and(|c| c != b'@' && c != b'/') {
            p += 1;
        }
        if at(p) == Some(b'@') {
            let end = p;
            let mut q = 0;
            while at(q).is_some_and(|c| c != b':' && c != b'@') {
                q += 1;
            }
            let user = slice(0, q);
            if !user.is_empty() {
                let user = decode(user, base)?;
                self.set("user", user)?;
            }
            if at(q) == Some(b':') {
                let password = slice(q + 1, end);
                if !password.is_empty() {
                    let password = decode(password, base + q + 1)?;
                    self.set("password", password)?;
                }
            }
            p = end + 1;
        } else {
            p = 0;
        }
        // Hosts: `host[:port]` or `[ipv6][:port]`, separated by commas.
        let hosts_at = p;
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        let mut next;
        loop {
            if at(p) == Some(b'[') {
                let open = p;
                p += 1;
                let h = p;
                while at(p).is_some_and(|c| c != b']') {
                    p += 1;
                }
                if at(p).is_none() {
                    return Err(ParseError::UnclosedBracket(base + open));
                }
                if p == h {
                    return Err(ParseError::EmptyIpv6(base + open));
                }
                hosts.extend_from_slice(slice(h, p));
                p += 1;
                if at(p).is_some_and(|c| !matches!(c, b':' | b'/' | b'?' | b',')) {
                    return Err(ParseError::AfterIpv6(base + p));
                }
            } else {
                let h = p;
                while at(p).is_some_and(|c| !matches!(c, b':' | b'/' | b'?' | b',')) {
                    p += 1;
                }
                hosts.extend_from_slice(slice(h, p));
            }
            next = at(p);
            if next == Some(b':') {
                p += 1;
                let q = p;
                while at(p).is_some_and(|c| !matches!(c, b'/' | b'?' | b',')) {
                    p += 1;
                }
                ports.extend_from_slice(slice(q, p));
                next = at(p);
            }
            if next != Some(b',') {
                break;
            }
            p += 1;
            hosts.push(b',');
            ports.push(b',');
        }
        if !hosts.is_empty() {
            let hosts = decode(&hosts, base + hosts_at)?;
            self.set("host", hosts)?;
        }
        if !ports.is_empty() {
            let ports = decode(&ports, base + hosts_at)?;
            self.set("port", ports)?;
        }
        // `/dbname`.
        if next == Some(b'/') {
            p += 1;
            let d = p;
            while at(p).is_some_and(|c| c != b'?') {
                p += 1;
            }
            let db = slice(d, p);
            if !db.is_empty() {
                let db = decode(db, base + d)?;
                self.set("dbname", db)?;
            }
            next = at(p);
        }
        // `?key=value&…`.
        if next == Some(b'?') {
            p += 1;
            self.parse_query(slice(p, b.len()), base + p)?;
        }
        Ok(())
    }

    fn parse_query(&mut self, b: &[u8], base: usize) -> Result<(), ParseError> {
        let mut start = 0;
        while start < b.len() {
            let end = b
                .get(start..)
                .and_then(|r| r.iter().position(|&c| c == b'&'))
                .map_or(b.len(), |e| start + e);
            let param = b.get(start..end).unwrap_or_default();
            let mut parts = param.splitn(2, |&c| c == b'=');
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
                return Err(ParseError::QueryNoEquals(base + start));
            };
            if let Some(e) = value.iter().position(|&c| c == b'=') {
                return Err(ParseError::QueryExtraEquals(
                    base + start + key.len() + 1 + e,
                ));
            }
            let key = decode(key, base + start)?;
            let value = decode(value, base + start + key.len() + 1)?;
            if !valid_name(&key) {
                return Err(ParseError::BadName(base + start));
            }
            let key = String::from_utf8_lossy(&key).into_owned();
            if key == "ssl" && value == b"true" {
                self.set("sslmode", b"require".to_vec())?;
            } else {
                self.set(&key, value)?;
            }
            start = end + 1;
        }
        Ok(())
    }
}

/// libpq's percent-decoding: `%XX` with two hex digits, `%00` refused, `+` left as it is.
fn decode(b: &[u8], base: usize) -> Result<Vec<u8>, ParseError> {
    let hex = |c: Option<&u8>| c.and_then(|c| char::from(*c).to_digit(16));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) else {
            return Err(ParseError::BadPercent(base + i));
        };
        let v = u8::try_from(hi * 16 + lo).map_err(|_| ParseError::BadPercent(base + i))?;
        if v == 0 {
            return Err(ParseError::PercentNul(base + i));
        }
        out.push(v);
        i += 3;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tokio_postgres::config::Host;

    use super::*;

    fn parse(s: &str) -> ConnInfo {
        ConnInfo::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn opts(s: &str) -> Vec<(String, String)> {
        parse(s).options
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn key_value_quoting_follows_libpq() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("   \t\n ", &[]),
            ("host=h", &[("host", "h")]),
            ("host = h  port =5433", &[("host", "h"), ("port", "5433")]),
            ("dbname='my db'", &[("dbname", "my db")]),
            (r"dbname='it\'s'", &[("dbname", "it's")]),
            (r"dbname='back\\slash'", &[("dbname", r"back\slash")]),
            (r"dbname=a\ b", &[("dbname", "a b")]),
            (r"dbname=a\'b", &[("dbname", "a'b")]),
            (r"dbname='\x'", &[("dbname", "x")]),
            // A quote closes the value; the next option may follow at once.
            ("dbname='a'user=u", &[("dbname", "a"), ("user", "u")]),
            // A quote inside a bare value is kept.
            ("dbname=a'b", &[("dbname", "a'b")]),
            // libpq skips blanks after "=": the next word is the value.
            ("dbname= x", &[("dbname", "x")]),
            // \v and \f are blanks for libpq.
            (
                "host=a\u{b}port=1\u{c}user=u",
                &[("host", "a"), ("port", "1"), ("user", "u")],
            ),
            // Non-ASCII text is a value like any other.
            ("dbname=données", &[("dbname", "données")]),
            // The last value wins; an empty one unsets.
            ("host=a host=b", &[("host", "b")]),
            ("host=a host=''", &[]),
            ("host=a dbname=", &[("host", "a")]),
            ("host =", &[]),
            ("host=a,b port=1,", &[("host", "a,b"), ("port", "1,")]),
        ];
        for (s, want) in cases {
            assert_eq!(opts(s), pairs(want), "{s:?}");
        }
    }

    #[test]
    fn key_value_errors_name_no_text() {
        let cases = [
            ("host", ParseError::MissingEquals(0)),
            ("host=a port", ParseError::MissingEquals(7)),
            // A quoted value ends at its quote: `'b'` is read as the next option's name.
            ("dbname='a''b'", ParseError::MissingEquals(10)),
            // libpq reads `sslmode= password=abc` as the sslmode "password=abc".
            ("sslmode= password=abc", ParseError::SslMode),
            // An option with no name.
            ("=x", ParseError::BadName(0)),
            ("host=a ho'st=b", ParseError::BadName(7)),
            ("postgresql:x=1", ParseError::BadName(0)),
            ("password='abc", ParseError::Unterminated(9)),
            (r"password='abc\'", ParseError::Unterminated(9)),
            (r"password='abc\", ParseError::Unterminated(9)),
            ("sslmode=verify_full", ParseError::SslMode),
        ];
        for (s, want) in cases {
            assert_eq!(ConnInfo::parse(s).err(), Some(want.clone()), "{s:?}");
            assert!(!want.to_string().contains("abc"), "{want}");
        }
        // A later valid sslmode replaces an invalid one (libpq checks the final value).
        assert_eq!(
            parse("sslmode=bogus sslmode=require").ssl_mode(),
            Ok(Some(SslMode::Require))
        );
    }

    #[test]
    fn tls_options_are_taken_out() {
        let info = parse("host=h sslmode=verify-full sslrootcert='/etc/ca dir/root.pem' user=u");
        assert_eq!(info.ssl_mode(), Ok(Some(SslMode::VerifyFull)));
        assert_eq!(
            info.ssl_root_cert(),
            Some(SslRootCert::File(PathBuf::from("/etc/ca dir/root.pem")))
        );
        assert_eq!(info.options, pairs(&[("host", "h"), ("user", "u")]));
        for (s, mode) in [
            ("sslmode=disable", SslMode::Disable),
            ("sslmode=allow", SslMode::Prefer),
            ("sslmode=prefer", SslMode::Prefer),
            ("sslmode=require", SslMode::Require),
            ("sslmode=verify-ca", SslMode::VerifyCa),
            ("sslmode=verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(parse(s).ssl_mode(), Ok(Some(mode)), "{s}");
        }
        assert_eq!(
            parse("sslrootcert=system").ssl_root_cert(),
            Some(SslRootCert::System)
        );
        assert_eq!(parse("host=h").ssl_mode(), Ok(None));
        assert_eq!(parse("sslmode='' host=h").ssl_mode(), Ok(None));
        // libpq skips blanks after "=": `sslmode= host=h` sets sslmode to "host=h".
        assert_eq!(
            ConnInfo::parse("sslmode= host=h").err(),
            Some(ParseError::SslMode)
        );
    }

    #[test]
    fn urls_follow_libpq() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("postgresql://", &[]),
            ("postgres://h", &[("host", "h")]),
            (
                "postgresql://h:5433/db",
                &[("host", "h"), ("port", "5433"), ("dbname", "db")],
            ),
            (
                "postgresql://u@h/db",
                &[("user", "u"), ("host", "h"), ("dbname", "db")],
            ),
            ("postgresql://u:@h", &[("user", "u"), ("host", "h")]),
            ("postgresql://:p@h", &[("host", "h")]),
            (
                "postgresql://%75ser@h%2Dx/d%20b",
                &[("user", "user"), ("host", "h-x"), ("dbname", "d b")],
            ),
            (
                "postgresql://[::1]:5433/db",
                &[("host", "::1"), ("port", "5433"), ("dbname", "db")],
            ),
            ("postgresql://[fe80::1%25eth0]", &[("host", "fe80::1%eth0")]),
            (
                "postgresql://a:1,[::1],b:3/db",
                &[("host", "a,::1,b"), ("port", "1,,3"), ("dbname", "db")],
            ),
            // libpq lists a port per host, empty for the default.
            ("postgresql://a,b", &[("host", "a,b"), ("port", ",")]),
            (
                "postgresql://%2Fvar%2Frun/db",
                &[("host", "/var/run"), ("dbname", "db")],
            ),
            (
                "postgresql:///db?host=/tmp",
                &[("dbname", "db"), ("host", "/tmp")],
            ),
            ("postgresql://h/?port=1", &[("host", "h"), ("port", "1")]),
            ("postgresql://h?port=1&", &[("host", "h"), ("port", "1")]),
            // The query overrides the authority, as a later option does.
            ("postgresql://h/db?host=o&dbname=", &[("host", "o")]),
            // `+` is not a space in libpq's URLs.
            ("postgresql://h/a+b", &[("host", "h"), ("dbname", "a+b")]),
            // An `@` after the first `/` is not the end of credentials.
            (
                "postgresql://h/db?options=a@b",
                &[("host", "h"), ("dbname", "db"), ("options", "a@b")],
            ),
            (
                "postgresql://h/db?application_name=x%3Dy%26z",
                &[
                    ("host", "h"),
                    ("dbname", "db"),
                    ("application_name", "x=y&z"),
                ],
            ),
        ];
        for (s, want) in cases {
            assert_eq!(opts(s), pairs(want), "{s:?}");
        }
        let info = parse("postgresql://u:p%40ss%3Aw%2Fd@h/db");
        assert_eq!(info.password.as_deref(), Some(&b"p@ss:w/d"[..]));
        // A password that is not UTF-8 is kept as bytes.
        let info = parse("postgresql://u:%FF%FE@h");
        assert_eq!(info.password.as_deref(), Some(&[0xff, 0xfe][..]));
        let info =
            parse("postgres://h/db?sslmode=verify-ca&sslrootcert=%2Fetc%2Fmy%20ca.pem&user=u");
        assert_eq!(info.ssl_mode(), Ok(Some(SslMode::VerifyCa)));
        assert_eq!(
            info.ssl_root_cert(),
            Some(SslRootCert::File(PathBuf::from("/etc/my ca.pem")))
        );
        assert_eq!(
            info.options,
            pairs(&[("host", "h"), ("dbname", "db"), ("user", "u")])
        );
        // JDBC's ssl=true.
        assert_eq!(
            parse("postgresql://h?ssl=true").ssl_mode(),
            Ok(Some(SslMode::Require))
        );
        // A URL prefix is only a URL at the very start (as in libpq).
        assert_eq!(
            ConnInfo::parse(" postgresql://h").err(),
            Some(ParseError::MissingEquals(1))
        );
    }

    #[test]
    fn url_errors_name_no_text() {
        let cases = [
            ("postgresql://[::1", ParseError::UnclosedBracket(13)),
            ("postgresql://[]/db", ParseError::EmptyIpv6(13)),
            ("postgresql://[::1]x", ParseError::AfterIpv6(18)),
            ("postgresql://h?port", ParseError::QueryNoEquals(15)),
            ("postgresql://h?a=1&&b=2", ParseError::QueryNoEquals(19)),
            (
                "postgresql://h?password=a=b",
                ParseError::QueryExtraEquals(25),
            ),
            ("postgresql://u:secret%zz@h", ParseError::BadPercent(21)),
            ("postgresql://u:secret%2@h", ParseError::BadPercent(21)),
            ("postgresql://h/db%00", ParseError::PercentNul(17)),
            ("postgresql://%FF", ParseError::NotUtf8("host")),
            ("postgresql://h?a%20b=1", ParseError::BadName(15)),
            ("postgresql://h?sslmode=full", ParseError::SslMode),
        ];
        for (s, want) in cases {
            assert_eq!(ConnInfo::parse(s).err(), Some(want.clone()), "{s:?}");
            assert!(!want.to_string().contains("secret"), "{want}");
        }
    }

    #[test]
    fn the_rest_reaches_tokio_postgres_intact() {
        let config = parse(
            r"host=/run/pg,db.example,10.0.0.1 port=5432,5433, user='u s' dbname='it\'s' application_name=a\\b connect_timeout=3 password='p w'",
        )
        .config()
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            config.get_hosts(),
            &[
                Host::Unix(PathBuf::from("/run/pg")),
                Host::Tcp("db.example".into()),
                Host::Tcp("10.0.0.1".into())
            ]
        );
        assert_eq!(config.get_ports(), &[5432, 5433, 5432]);
        assert_eq!(config.get_user(), Some("u s"));
        assert_eq!(config.get_dbname(), Some("it's"));
        assert_eq!(config.get_application_name(), Some(r"a\b"));
        assert_eq!(config.get_password(), Some(&b"p w"[..]));
        // Options tokio-postgres does not know are refused by it, not dropped here.
        for (s, name) in [
            ("host=h sslcert=/c.pem", "sslcert"),
            ("postgresql://h?frobnicate=1", "frobnicate"),
        ] {
            let e = parse(s).config().unwrap_err();
            let why = std::error::Error::source(&e).map(ToString::to_string);
            assert_eq!(why, Some(format!("unknown option `{name}`")), "{s}");
        }
    }

    /// A small deterministic generator: no dependency for a property loop.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// A value over an alphabet heavy in what quoting and encoding must handle.
        fn value(&mut self) -> String {
            const CHARS: &[char] = &[
                'a', 'Z', '0', ' ', '\t', '\'', '\\', '=', '&', '?', '/', ':', '@', ',', '%', '+',
                '#', '[', ']', 'é', '€', '\u{b}', '"',
            ];
            let len = 1 + self.below(8);
            (0..len).map(|_| CHARS[self.below(CHARS.len())]).collect()
        }
    }

    const NAMES: [&str; 5] = ["user", "dbname", "application_name", "options", "password"];

    /// libpq's quoting of a value (what `PQconninfo` users write).
    fn quote(v: &str) -> String {
        let mut s = String::from("'");
        for c in v.chars() {
            if c == '\\' || c == '\'' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('\'');
        s
    }

    /// Percent-encodes every byte outside unreserved characters.
    fn encode(v: &str) -> String {
        v.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn any_quoted_or_encoded_value_round_trips() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let mut want: Vec<(String, String)> = Vec::new();
            for name in NAMES {
                if g.below(3) > 0 {
                    want.push((name.to_owned(), g.value()));
                }
            }
            let kv: String = want
                .iter()
                .map(|(k, v)| format!("{k} = {} ", quote(v)))
                .collect();
            let query: Vec<String> = want
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            let url = format!("postgresql://h/?{}", query.join("&"));
            for s in [kv, url] {
                let info = parse(&s);
                let mut got = info.options.clone();
                if let Some(p) = &info.password {
                    got.push(("password".into(), String::from_utf8(p.clone()).unwrap()));
                }
                got.retain(|(k, _)| k != "host");
                got.sort();
                let mut sorted = want.clone();
                sorted.sort();
                assert_eq!(got, sorted, "{s:?}");
                // And tokio-postgres reads each value back exactly.
                let config = info.config().unwrap();
                for (k, v) in &want {
                    let got = match k.as_str() {
                        "user" => config.get_user().map(str::to_owned),
                        "dbname" => config.get_dbname().map(str::to_owned),
                        "application_name" => config.get_application_name().map(str::to_owned),
                        "options" => config.get_options().map(str::to_owned),
                        _ => config
                            .get_password()
                            .map(|p| String::from_utf8(p.to_vec()).unwrap()),
                    };
                    assert_eq!(got.as_deref(), Some(v.as_str()), "{k} in {s:?}");
                }
            }
        }
    }

    #[test]
    fn agrees_with_tokio_postgres_on_what_both_read() {
        // Strings in the subset both parsers read alike (no repeated option, no empty value,
        // no libpq-only TLS option): the Config built through this parser is tokio-postgres'.
        for s in [
            "host=h port=5433 user=u dbname=d password=p",
            "host=h,/tmp,[::1] port=1,2,3 connect_timeout=5 keepalives=0",
            r"host=h dbname='a b' user=\'q password='x\\y'",
            "host=h sslmode=require channel_binding=require target_session_attrs=read-write",
            "postgresql://u:p%20w@h1:1,h2:2/db?connect_timeout=3&application_name=a%26b",
            "postgres://[::1]:5433/db?sslmode=disable",
            "postgresql://%2Ftmp:5432/db",
        ] {
            let ours = parse(s).config();
            let theirs: Result<Config, _> = s.parse();
            match (ours, theirs) {
                (Ok(mut ours), Ok(theirs)) => {
                    // The TLS mode is set by the store, not here.
                    ours.ssl_mode(theirs.get_ssl_mode());
                    assert!(ours == theirs, "{s:?}: {ours:?} != {theirs:?}");
                }
                (ours, theirs) => panic!("{s:?}: {:?} vs {:?}", ours.err(), theirs.err()),
            }
        }
    }
}
