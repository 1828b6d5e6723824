//! TLS to a real PostgreSQL (started by the test with `ssl = on` and a certificate from a CA
//! the test makes): each `sslmode` connects, encrypts and checks what libpq's does, and each
//! refusal is a startup error that names its cause. Whether a connection is encrypted is read
//! from the server's own `pg_stat_ssl`.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use api_tokens::store::postgres::{
    PostgresOptions, PostgresStore, SslMode, SslRootCert, TlsFailure,
};
use api_tokens::store::replica::{Replica, ReplicaOptions};
use api_tokens::{Error, RequestContext, StoreError, Tokens};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::macros::datetime;

use crate::support::child::child_test;
use crate::support::pg::{PgServer, wait_for};
use crate::support::{issue, server};

/// A password in every connection string: no error may show it.
const PASSWORD: &str = "tls-test-password-8c1f";

/// A certificate authority the test makes.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// A server certificate for `names` (DNS names or IP addresses) signed by `ca`, and its key.
fn server_cert(ca: &Ca, names: &[&str], expired: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "api-tokens test server");
    if expired {
        params.not_before = datetime!(2019-01-01 0:00 UTC);
        params.not_after = datetime!(2020-01-01 0:00 UTC);
    }
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A server with TLS, serving a certificate from `ca` for `names`.
fn tls_server(ca: &Ca, names: &[&str], expired: bool) -> Option<PgServer> {
    let (cert, key) = server_cert(ca, names, expired);
    PgServer::start_with_tls(&cert, &key)
}

/// Writes `pem` into the server's directory; returns the path.
fn write(pg: &PgServer, name: &str, pem: &str) -> PathBuf {
    let path = pg.dir().join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// Connection parameters for `db` with `extra` appended (and a password that must never
/// appear in an error).
fn params(pg: &PgServer, db: &str, extra: &str) -> String {
    format!("{} password={PASSWORD} {extra}", pg.url(db))
}

/// The URL form of [`params`], host `host`, `query` appended.
fn url(pg: &PgServer, host: &str, db: &str, query: &str) -> String {
    format!(
        "postgresql://postgres:{PASSWORD}@{host}:{}/{db}?connect_timeout=5&{query}",
        pg.port()
    )
}

/// Percent-encodes a path for a URL query.
fn encode(p: &Path) -> String {
    p.to_str()
        .unwrap()
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `(application_name, encrypted)` of every session connected to `db`, from the server's
/// `pg_stat_ssl`.
fn sessions(pg: &PgServer, db: &str) -> Vec<(String, bool)> {
    pg.psql(
        "postgres",
        &format!(
            "SELECT a.application_name, s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a \
             USING (pid) WHERE a.datname = '{db}' ORDER BY 1"
        ),
    )
    .lines()
    .map(|l| {
        let (name, ssl) = l.split_once('|').unwrap();
        (name.to_owned(), ssl == "t")
    })
    .collect()
}

/// Asserts that `db` has sessions and that every one is encrypted (or every one is not).
fn assert_all(pg: &PgServer, db: &str, encrypted: bool) -> Vec<(String, bool)> {
    let s = sessions(pg, db);
    assert!(!s.is_empty(), "no session on {db}");
    assert!(
        s.iter().all(|(_, ssl)| *ssl == encrypted),
        "{db}: expected every session {}: {s:?}",
        if encrypted {
            "encrypted"
        } else {
            "in plaintext"
        }
    );
    s
}

/// The refusal `connect` returned, checked for what every refusal must hold: a typed
/// [`StoreError::Tls`], its stable code, and no password in its message, its `Debug` or any
/// error of its source chain.
fn refusal(r: Result<PostgresStore, StoreError>) -> (Option<String>, TlsFailure, String) {
    let e = r.expect_err("the connection must be refused");
    let mut text = format!("{e} {e:?}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert!(!text.contains(PASSWORD), "a password in an error: {text}");
    let message = e.to_string();
    let as_error = Error::Store(e);
    assert_eq!(as_error.code(), "tls_refused", "{as_error:?}");
    match as_error {
        Error::Store(StoreError::Tls { host, cause, .. }) => (host, cause, message),
        other => panic!("not a TLS refusal: {other:?}"),
    }
}

/// Every way a connection string can be wrong, refused without a server: no message,
/// `Debug` or source shows the password, wherever the mistake put it.
#[test]
fn no_refused_string_shows_the_password() {
    for s in [
        format!("host=h sslmode= password={PASSWORD}"),
        format!("host=h password='{PASSWORD}"),
        format!("host=h user=x {PASSWORD}"),
        format!("host=h password={PASSWORD} sslcert=/c.pem"),
        format!("host=h password={PASSWORD} port=x{PASSWORD}"),
        format!("postgresql://u:{PASSWORD}%zz@h"),
        format!("postgresql://u:{PASSWORD}@h?sslmode=bogus"),
        format!("postgresql://u@h?password={PASSWORD}=x"),
        format!("postgresql://u:{PASSWORD}@[::1"),
    ] {
        let e = PostgresStore::connect(&s).expect_err(&s);
        let mut text = format!("{e} {e:?}");
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(&format!(" {s} {s:?}"));
            source = s.source();
        }
        assert!(!text.contains(PASSWORD), "{s}: {text}");
    }
}

#[test]
fn verify_full_encrypts_the_store_and_every_replica() {
    let ca = ca("fleet CA");
    let pg = server!(tls_server(&ca, &["127.0.0.1", "localhost"], false));
    let root = write(&pg, "root.pem", &ca.pem);
    pg.create_db("fleet");
    // The key=value form, host an IP address.
    let p = params(
        &pg,
        "fleet",
        &format!("sslmode=verify-full sslrootcert='{}'", root.display()),
    );
    let bound = Duration::from_secs(2);
    let replica = || {
        let store = PostgresStore::connect(&p).unwrap();
        Tokens::new(
            Replica::start(store, ReplicaOptions::default().staleness_bound(bound)).unwrap(),
        )
    };
    let (a, b) = (replica(), replica());
    let issued = issue(&a, "deploy");
    let secret = issued.secret.expose().to_owned();
    let ctx = RequestContext::unknown_address();
    // Issued through A, it reaches B through PostgreSQL (over TLS) and authenticates there.
    wait_for(bound, "the token authenticates on B", || {
        b.authenticate(&secret, &ctx).is_ok()
    });
    let s = assert_all(&pg, "fleet", true);
    let listeners = s
        .iter()
        .filter(|(name, _)| name == "api-tokens-listener")
        .count();
    assert_eq!(listeners, 2, "each replica's listener, encrypted: {s:?}");
    assert!(s.iter().any(|(name, _)| name == "api-tokens"), "{s:?}");

    // The URL form, host a DNS name, the root file percent-encoded.
    pg.create_db("by_url");
    let u = url(
        &pg,
        "localhost",
        "by_url",
        &format!("sslmode=verify-full&sslrootcert={}", encode(&root)),
    );
    let store = PostgresStore::connect(&u).unwrap();
    assert_all(&pg, "by_url", true);
    drop(store);
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let (ours, theirs) = (ca("the server's CA"), ca("another CA"));
    let pg = server!(tls_server(&ours, &["127.0.0.1"], false));
    let other = write(&pg, "other.pem", &theirs.pem);
    pg.create_db("app");
    // verify-full, verify-ca, and require with a root file (libpq: then it is verify-ca).
    for mode in ["verify-full", "verify-ca", "require"] {
        let p = params(
            &pg,
            "app",
            &format!("sslmode={mode} sslrootcert={}", other.display()),
        );
        let (host, cause, message) = refusal(PostgresStore::connect(&p));
        assert_eq!(cause, TlsFailure::UnknownCa, "{mode}");
        assert_eq!(host.as_deref(), Some("127.0.0.1"), "{mode}");
        assert_eq!(
            message,
            "TLS to PostgreSQL at 127.0.0.1 refused: the server's certificate is not signed \
             by a trusted CA (unknown issuer)"
        );
    }
    // The URL form, with the password in the authority.
    let u = url(
        &pg,
        "127.0.0.1",
        "app",
        &format!("sslmode=verify-full&sslrootcert={}", encode(&other)),
    );
    assert_eq!(refusal(PostgresStore::connect(&u)).1, TlsFailure::UnknownCa);
    // The rustls error is kept as the source.
    let p = params(
        &pg,
        "app",
        &format!("sslmode=verify-full sslrootcert={}", other.display()),
    );
    let e = PostgresStore::connect(&p).unwrap_err();
    let source = e.source().unwrap();
    assert_eq!(
        source.downcast_ref::<rustls::Error>(),
        Some(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )),
        "{source:?}"
    );
}

#[test]
fn verify_full_checks_the_name_and_verify_ca_does_not() {
    let ca = ca("name CA");
    let pg = server!(tls_server(&ca, &["db.example", "localhost"], false));
    let root = write(&pg, "root.pem", &ca.pem);
    pg.create_db("app");
    let with = |mode: &str| {
        params(
            &pg,
            "app",
            &format!("sslmode={mode} sslrootcert={}", root.display()),
        )
    };
    let (host, cause, message) = refusal(PostgresStore::connect(&with("verify-full")));
    assert_eq!(cause, TlsFailure::NameMismatch);
    assert_eq!(host.as_deref(), Some("127.0.0.1"));
    assert!(message.contains("does not name this host"), "{message}");
    // The same certificate under verify-ca: the chain is checked, the name is not.
    let store = PostgresStore::connect(&with("verify-ca")).unwrap();
    assert_all(&pg, "app", true);
    drop(store);
    // Several hosts: each is checked against its own name; the one the certificate names is
    // used (a later `host=` replaces the earlier one, as in libpq).
    let both = format!("{} host=127.0.0.1,localhost", with("verify-full"));
    let store = PostgresStore::connect(&both).unwrap();
    assert_all(&pg, "app", true);
    drop(store);
}

#[test]
fn an_expired_certificate_is_refused() {
    let ca = ca("expiry CA");
    let pg = server!(tls_server(&ca, &["127.0.0.1"], true));
    let root = write(&pg, "root.pem", &ca.pem);
    pg.create_db("app");
    let p = params(
        &pg,
        "app",
        &format!("sslmode=verify-full sslrootcert={}", root.display()),
    );
    let (_, cause, message) = refusal(PostgresStore::connect(&p));
    assert_eq!(cause, TlsFailure::Expired);
    assert!(
        message.ends_with("the server's certificate has expired"),
        "{message}"
    );
}

#[test]
fn a_server_without_tls_is_refused_where_the_mode_requires_it() {
    let pg = server!(PgServer::start());
    assert!(!pg.has_tls());
    let root = write(&pg, "root.pem", &ca("unused CA").pem);
    pg.create_db("app");
    for (mode, want) in [
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ] {
        let p = params(
            &pg,
            "app",
            &format!("sslmode={mode} sslrootcert={}", root.display()),
        );
        let (host, cause, message) = refusal(PostgresStore::connect(&p));
        assert_eq!(cause, TlsFailure::NotSupported(want), "{mode}");
        assert_eq!(host.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            message,
            format!(
                "TLS to PostgreSQL at 127.0.0.1 refused: the server does not support TLS, and \
                 sslmode={mode} requires it"
            )
        );
    }
    // prefer (libpq's default, and what `allow` is read as) falls back to plaintext; disable
    // never tries.
    for (i, extra) in ["sslmode=prefer", "sslmode=allow", "", "sslmode=disable"]
        .iter()
        .enumerate()
    {
        let db = format!("plain{i}");
        pg.create_db(&db);
        let store = PostgresStore::connect(&params(&pg, &db, extra)).unwrap();
        assert_all(&pg, &db, false);
        drop(store);
    }
}

#[test]
fn the_weaker_modes_against_a_server_with_tls() {
    // A certificate no root file vouches for: prefer and require do not check it (libpq's
    // meaning), yet encrypt; disable does not encrypt.
    let ca = ca("unchecked CA");
    let pg = server!(tls_server(&ca, &["db.example"], false));
    for (db, extra, encrypted) in [
        ("disabled", "sslmode=disable", false),
        ("preferred", "sslmode=prefer", true),
        ("by_default", "", true),
        ("allowed", "sslmode=allow", true),
        ("required", "sslmode=require", true),
    ] {
        pg.create_db(db);
        let store = PostgresStore::connect(&params(&pg, db, extra)).unwrap();
        assert_all(&pg, db, encrypted);
        drop(store);
    }
    // JDBC's `ssl=true` in a URL is require.
    pg.create_db("jdbc");
    let store = PostgresStore::connect(&url(&pg, "127.0.0.1", "jdbc", "ssl=true")).unwrap();
    assert_all(&pg, "jdbc", true);
    drop(store);
}

#[test]
fn tls_set_in_code() {
    let ca = ca("code CA");
    let pg = server!(tls_server(&ca, &["127.0.0.1"], false));
    let root = write(&pg, "root.pem", &ca.pem);
    pg.create_db("app");
    let verified = PostgresOptions::default()
        .ssl_mode(SslMode::VerifyFull)
        .ssl_root_cert(SslRootCert::File(root.clone()));
    let store = PostgresStore::connect_with(&params(&pg, "app", ""), verified.clone()).unwrap();
    assert_all(&pg, "app", true);
    drop(store);
    // The same setting in both places is fine; two different ones are refused.
    PostgresStore::connect_with(&params(&pg, "app", "sslmode=verify-full"), verified.clone())
        .unwrap();
    let e =
        PostgresStore::connect_with(&params(&pg, "app", "sslmode=disable"), verified).unwrap_err();
    assert!(
        matches!(&e, StoreError::Config(m) if m.contains("sslmode")),
        "{e:?}"
    );
    // A tokio-postgres Config cannot say verify-full; the options can.
    let mut config: tokio_postgres::Config = pg.url("app").parse().unwrap();
    let other = write(&pg, "other.pem", &self::ca("another CA").pem);
    let options = PostgresOptions::default()
        .ssl_mode(SslMode::VerifyFull)
        .ssl_root_cert(SslRootCert::File(other));
    let (_, cause, _) = refusal(PostgresStore::with_config(&mut config, options));
    assert_eq!(cause, TlsFailure::UnknownCa);
    // A root file that cannot be read is refused before any connection.
    let missing = pg.dir().join("missing.pem");
    let (host, cause, _) = refusal(PostgresStore::connect(&params(
        &pg,
        "app",
        &format!("sslmode=verify-full sslrootcert={}", missing.display()),
    )));
    assert_eq!((host, cause), (None, TlsFailure::RootCertFile(missing)));
    // sslrootcert=system with a weaker mode: refused, as libpq does.
    let e = PostgresStore::connect(&params(&pg, "app", "sslmode=require sslrootcert=system"))
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Config(m) if m.contains("sslrootcert=system needs sslmode=verify-full")),
        "{e:?}"
    );
}

/// The system's roots are what `SSL_CERT_FILE` names when it is set (as for OpenSSL): a child
/// test process gets the test CA, or another, that way.
#[test]
fn without_a_root_file_the_system_roots_decide() {
    let (ours, theirs) = (ca("system CA"), ca("not the system's CA"));
    let pg = server!(tls_server(&ours, &["127.0.0.1"], false));
    let system = write(&pg, "system.pem", &ours.pem);
    let not_system = write(&pg, "not-system.pem", &theirs.pem);
    pg.create_db("app");
    for (roots, expect) in [(&system, "connect"), (&not_system, "unknown-ca")] {
        let out = child_test!(system_roots_child)
            .env("SSL_CERT_FILE", roots)
            .env_remove("SSL_CERT_DIR")
            .env("API_TOKENS_TLS_PARAMS", params(&pg, "app", ""))
            .env("API_TOKENS_TLS_EXPECT", expect)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child ({expect}) failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Run by [`without_a_root_file_the_system_roots_decide`] in a child process.
#[test]
#[ignore = "run in a child process by without_a_root_file_the_system_roots_decide"]
fn system_roots_child() {
    // Run alone (`--include-ignored`), it has no server to ask: the parent is the test.
    let (Ok(p), Ok(expect)) = (
        std::env::var("API_TOKENS_TLS_PARAMS"),
        std::env::var("API_TOKENS_TLS_EXPECT"),
    ) else {
        eprintln!("system_roots_child runs only under without_a_root_file_the_system_roots_decide");
        return;
    };
    // verify-full and verify-ca without sslrootcert, and sslrootcert=system (verify-full).
    for extra in [
        "sslmode=verify-full",
        "sslmode=verify-ca",
        "sslrootcert=system",
    ] {
        let r = PostgresStore::connect(&format!("{p} {extra}"));
        match expect.as_str() {
            "connect" => drop(r.unwrap()),
            _ => assert_eq!(refusal(r).1, TlsFailure::UnknownCa, "{extra}"),
        }
    }
}

/// A password login over TLS is SCRAM bound to the TLS channel (SCRAM-SHA-256-PLUS, what
/// `channel_binding=require` insists on), so even `require`, which checks no certificate,
/// defeats a relay in the middle; without TLS there is no channel to bind to.
#[test]
fn password_logins_bind_to_the_tls_channel() {
    let ca = ca("scram CA");
    let pg = server!(tls_server(&ca, &["127.0.0.1"], false));
    pg.psql(
        "postgres",
        &format!("CREATE ROLE app LOGIN PASSWORD '{PASSWORD}'"),
    );
    pg.psql("postgres", "CREATE DATABASE app OWNER app");
    let hba = pg.dir().join("data").join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all app 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()");
    let base = format!(
        "host=127.0.0.1 port={} user=app dbname=app connect_timeout=5",
        pg.port()
    );
    wait_for(
        Duration::from_secs(10),
        "the password rule in force",
        || PostgresStore::connect(&format!("{base} sslmode=disable")).is_err(),
    );
    let store = PostgresStore::connect(&format!(
        "{base} password={PASSWORD} sslmode=require channel_binding=require"
    ))
    .unwrap();
    assert_all(&pg, "app", true);
    drop(store);
    for (extra, why) in [
        (
            "sslmode=disable channel_binding=require",
            "no TLS, no binding",
        ),
        (
            "password=not-the-password sslmode=verify-ca",
            "wrong password",
        ),
    ] {
        let mut p = format!("{base} {extra}");
        if !extra.contains("password=") {
            p.push_str(&format!(" password={PASSWORD}"));
        }
        let root = write(&pg, "root.pem", &ca.pem);
        p.push_str(&format!(" sslrootcert={}", root.display()));
        let e = PostgresStore::connect(&p).expect_err(why);
        let mut text = format!("{e} {e:?}");
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(&format!(" {s} {s:?}"));
            source = s.source();
        }
        assert!(!text.contains(PASSWORD), "{why}: {text}");
        assert!(!text.contains("not-the-password"), "{why}: {text}");
        assert!(matches!(e, StoreError::Backend(_)), "{why}: {e:?}");
    }
}
