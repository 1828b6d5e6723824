//! TLS to PostgreSQL with rustls: libpq's `sslmode` and `sslrootcert` (see the table in the
//! [module docs](super)), the certificate checks each mode makes, and the startup errors that
//! name why a server was refused.
//!
//! The crypto provider is `ring`, given to each client config; the process-wide default
//! provider is neither read nor installed, so a host that installed another one (or none) is
//! unaffected and never makes this panic.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StoreError;

/// How a connection to PostgreSQL uses TLS: libpq's `sslmode`, with libpq's meanings.
///
/// libpq's sixth mode, `allow` (plaintext first, TLS only if the server insists), is read as
/// [`SslMode::Prefer`]: neither protects against an attacker on the network, and `prefer`
/// encrypts whenever the server can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, else plaintext; the certificate is not checked (unless
    /// an [`SslRootCert`] file is given: then its chain is, as libpq does). libpq's default.
    Prefer,
    /// TLS or no connection; the certificate is not checked, unless an [`SslRootCert`] file is
    /// given: then this is [`SslMode::VerifyCa`] (libpq's rule).
    Require,
    /// TLS, and the server's certificate must chain to a trusted root (the [`SslRootCert`]
    /// file, else the system's roots); its name is not checked.
    VerifyCa,
    /// As [`SslMode::VerifyCa`], and the certificate must name the host connected to (`host=`,
    /// a DNS name or an IP address). The mode to use.
    VerifyFull,
}

impl SslMode {
    /// libpq's name for the mode.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `sslmode` that is not one of libpq's six.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown sslmode (disable, allow, prefer, require, verify-ca or verify-full)")]
#[non_exhaustive]
pub struct UnknownSslMode;

impl FromStr for SslMode {
    type Err = UnknownSslMode;

    /// libpq's names; `allow` is read as `prefer` (see [`SslMode`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disable" => Ok(Self::Disable),
            "allow" | "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            _ => Err(UnknownSslMode),
        }
    }
}

/// Where the certificates that vouch for the server come from: libpq's `sslrootcert`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslRootCert {
    /// A PEM file of one or more CA certificates, read when the store connects.
    File(PathBuf),
    /// The system's trust store (libpq's `sslrootcert=system`; `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` replace it when set, as for OpenSSL). Implies
    /// [`SslMode::VerifyFull`], and refuses any weaker mode, as libpq does.
    System,
}

impl SslRootCert {
    /// libpq's reading of the option: `system`, else a file path.
    pub(crate) fn from_libpq(s: &str) -> Self {
        if s == "system" {
            Self::System
        } else {
            Self::File(PathBuf::from(s))
        }
    }
}

/// Why TLS to the database was refused (see [`StoreError::Tls`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server answered that it does not support TLS, and the `sslmode` requires it.
    #[error("the server does not support TLS, and sslmode={0} requires it")]
    NotSupported(SslMode),
    /// The server's certificate does not chain to a trusted root (`sslrootcert`, or the
    /// system's roots).
    #[error("the server's certificate is not signed by a trusted CA (unknown issuer)")]
    UnknownCa,
    /// The server's certificate does not name the host connected to (`sslmode=verify-full`).
    #[error("the server's certificate does not name this host (sslmode=verify-full checks it)")]
    NameMismatch,
    /// The server's certificate (or one of its chain) has expired.
    #[error("the server's certificate has expired")]
    Expired,
    /// The server's certificate (or one of its chain) is not valid yet.
    #[error("the server's certificate is not valid yet")]
    NotYetValid,
    /// The server's certificate was refused for another reason (see the source).
    #[error("the server's certificate was refused")]
    BadCertificate,
    /// The TLS handshake failed for a reason other than the certificate (no protocol version
    /// or cipher suite in common, an alert from the server: see the source).
    #[error("the TLS handshake failed")]
    Handshake,
    /// The `sslrootcert` file could not be read or holds no certificate.
    #[error("cannot load the root certificates of sslrootcert={}", .0.display())]
    RootCertFile(PathBuf),
    /// No certificate could be loaded from the system's trust store.
    #[error("no root certificate could be loaded from the system's trust store")]
    SystemRoots,
}

/// The stream a connection runs over: plaintext or TLS, as the server and the mode decided.
type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

/// A connection to drive (`tokio_postgres::Connection` over this module's TLS).
pub(crate) type PgConnection = Connection<Socket, Stream>;

/// How the certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Only that the server holds the certificate's key (the handshake's signature).
    Nothing,
    /// The chain to a trusted root, not the name.
    Chain,
    /// The chain and the host name.
    ChainAndName,
}

/// Which roots a check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    None,
    File(PathBuf),
    System,
}

/// What the settings ask for, decided from `sslmode` and `sslrootcert` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// The mode as the user asked for it (after libpq's defaults).
    mode: SslMode,
    /// What tokio-postgres negotiates: disable, prefer or require.
    wire: tokio_postgres::config::SslMode,
    check: Check,
    roots: Roots,
}

fn plan(mode: Option<SslMode>, root: Option<&SslRootCert>) -> Result<Plan, StoreError> {
    use tokio_postgres::config::SslMode as Wire;
    let mode = match (mode, root) {
        (None, Some(SslRootCert::System)) => SslMode::VerifyFull,
        (Some(m), Some(SslRootCert::System)) if m != SslMode::VerifyFull => {
            return Err(settings(
                "sslrootcert=system needs sslmode=verify-full (or no sslmode): a weaker mode \
                 would trust any certificate the system's roots vouch for, for any host",
            ));
        }
        (m, _) => m.unwrap_or(SslMode::Prefer),
    };
    let file = match root {
        Some(SslRootCert::File(p)) => Roots::File(p.clone()),
        Some(SslRootCert::System) => Roots::System,
        None => Roots::None,
    };
    let (wire, check, roots) = match mode {
        SslMode::Disable => (Wire::Disable, Check::Nothing, Roots::None),
        // libpq checks the chain in any encrypting mode once a root file is given.
        SslMode::Prefer | SslMode::Require => {
            let wire = if mode == SslMode::Prefer {
                Wire::Prefer
            } else {
                Wire::Require
            };
            match file {
                Roots::None => (wire, Check::Nothing, Roots::None),
                roots => (wire, Check::Chain, roots),
            }
        }
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let check = if mode == SslMode::VerifyCa {
                Check::Chain
            } else {
                Check::ChainAndName
            };
            let roots = match file {
                Roots::None => Roots::System,
                roots => roots,
            };
            (Wire::Require, check, roots)
        }
    };
    Ok(Plan {
        mode,
        wire,
        check,
        roots,
    })
}

/// TLS settings that cannot work as given.
fn settings(why: &str) -> StoreError {
    StoreError::Config(why.to_owned())
}

/// The TLS side of a store's connections, settled when the store connects.
pub(crate) struct Tls {
    mode: SslMode,
    /// Whether a connection that cannot be encrypted is refused (require and stronger).
    required: bool,
    make: MakeRustlsConnect,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("mode", &self.mode).finish()
    }
}

impl Tls {
    /// Settles TLS for `config` (whose own `ssl_mode` is replaced by what tokio-postgres must
    /// negotiate): reads the roots, checks the hosts against the mode.
    pub(crate) fn new(
        config: &mut Config,
        mode: Option<SslMode>,
        root: Option<&SslRootCert>,
    ) -> Result<Self, StoreError> {
        use tokio_postgres::config::SslMode as Wire;
        let plan = plan(mode, root)?;
        let mut wire = plan.wire;
        let unix = config.get_hosts().iter().filter(|h| is_unix(h)).count();
        let tcp = config.get_hosts().len() - unix;
        let by_addr_only = config.get_hosts().is_empty() && !config.get_hostaddrs().is_empty();
        if unix > 0 && tcp == 0 && config.get_hostaddrs().is_empty() {
            // libpq never uses TLS over a Unix socket, whatever the mode: the server refuses it.
            wire = Wire::Disable;
        } else if unix > 0 && wire == Wire::Require {
            return Err(settings(
                "a Unix-socket host beside TCP hosts with an sslmode that requires TLS: the \
                 socket cannot do TLS; give them to separate stores",
            ));
        } else if by_addr_only && wire != Wire::Disable {
            if plan.check == Check::ChainAndName {
                return Err(settings(
                    "sslmode=verify-full checks the certificate against host=, and only \
                     hostaddr= is given: add host=",
                ));
            }
            // The handshake needs a name; libpq's is the address (only verify-full checks it).
            let addrs: Vec<String> = config
                .get_hostaddrs()
                .iter()
                .map(ToString::to_string)
                .collect();
            for a in addrs {
                config.host(a);
            }
        }
        config.ssl_mode(wire);
        let provider = Arc::new(provider());
        let roots = match (&plan.roots, wire) {
            (_, Wire::Disable) | (Roots::None, _) => RootCertStore::empty(),
            (Roots::File(path), _) => roots_from_file(path)?,
            (Roots::System, _) => system_roots()?,
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(StoreError::backend)?;
        let client = match (plan.check, wire) {
            // Not used (tokio-postgres never starts TLS), and refuses every certificate if it
            // ever were.
            (_, Wire::Disable) | (Check::ChainAndName, _) => {
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            (check, _) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(WeakerCheck {
                    roots: (check == Check::Chain).then(|| Arc::new(roots)),
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth(),
        };
        Ok(Self {
            mode: plan.mode,
            required: wire == Wire::Require,
            make: MakeRustlsConnect::new(client),
        })
    }

    /// Opens a connection with `config` (the store's, or a copy of it): a refused
    /// certificate or a server without TLS under a mode that requires it is a
    /// [`StoreError::Tls`] that names the cause.
    pub(crate) async fn connect(
        &self,
        config: &Config,
    ) -> Result<(Client, PgConnection), StoreError> {
        let attempt = Arc::new(Mutex::new(Attempt::default()));
        let connector = Connector {
            make: self.make.clone(),
            attempt: attempt.clone(),
        };
        match config.connect(connector).await {
            Ok(c) => Ok(c),
            Err(e) => {
                let last = attempt
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                Err(self.refusal(e, last))
            }
        }
    }

    /// Names why a connection failed when TLS is the reason; any other failure stays a
    /// backend error.
    fn refusal(&self, e: tokio_postgres::Error, last: Attempt) -> StoreError {
        let Some(host) = last.host else {
            return StoreError::backend(e);
        };
        if let Some(r) = rustls_error(&e) {
            return StoreError::Tls {
                host: Some(host),
                cause: cause_of(r),
                source: Box::new(r.clone()),
            };
        }
        // The socket was reached, the handshake never began, and the failure is neither I/O
        // nor the server's: tokio-postgres refused the server's "no TLS" answer.
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<io::Error>());
        if self.required && !last.handshake && !io && e.as_db_error().is_none() {
            return StoreError::Tls {
                host: Some(host),
                cause: TlsFailure::NotSupported(self.mode),
                source: Box::new(e),
            };
        }
        StoreError::backend(e)
    }
}

/// ring's provider, for this store's configs only.
///
/// rustls marks it deprecated because ring has no post-quantum key exchange (aws-lc-rs has).
/// What a recording of this traffic could one day reveal is token metadata and keyed hashes
/// (useless without the hash key, which never leaves the process); the login is SCRAM, which
/// never sends the password. That is not worth aws-lc-rs' much larger C build for every host:
/// swapping providers is this one function.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(unix)]
fn is_unix(h: &Host) -> bool {
    matches!(h, Host::Unix(_))
}

#[cfg(not(unix))]
fn is_unix(_: &Host) -> bool {
    false
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, StoreError> {
    let refused = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Tls {
        host: None,
        cause: TlsFailure::RootCertFile(path.to_owned()),
        source,
    };
    let pem = std::fs::read(path).map_err(|e| refused(Box::new(e)))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| refused(Box::new(e)))?;
        roots.add(cert).map_err(|e| refused(Box::new(e)))?;
    }
    if roots.is_empty() {
        return Err(refused("the file holds no PEM certificate".into()));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, StoreError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let source: Box<dyn std::error::Error + Send + Sync> = match found.errors.into_iter().next()
        {
            Some(e) => Box::new(e),
            None => "the system's trust store is empty".into(),
        };
        return Err(StoreError::Tls {
            host: None,
            cause: TlsFailure::SystemRoots,
            source,
        });
    }
    Ok(roots)
}

/// The rustls error inside a tokio-postgres error, if the handshake failed in rustls.
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        // An io::Error's `source` skips the error it wraps: step into it.
        next = match err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    None
}

fn cause_of(e: &rustls::Error) -> TlsFailure {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => TlsFailure::UnknownCa,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::NameMismatch
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsFailure::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsFailure::NotYetValid
            }
            _ => TlsFailure::BadCertificate,
        },
        _ => TlsFailure::Handshake,
    }
}

/// What the last connection attempt got to (tokio-postgres tries each host in turn and
/// reports the last one's error).
#[derive(Debug, Default, Clone)]
struct Attempt {
    /// The host whose socket was reached.
    host: Option<String>,
    /// Whether the TLS handshake began (the server agreed to TLS).
    handshake: bool,
}

/// The adapter's connector, noting how far each attempt got.
struct Connector {
    make: MakeRustlsConnect,
    attempt: Arc<Mutex<Attempt>>,
}

type Inner = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;

impl MakeTlsConnect<Socket> for Connector {
    type Stream = Stream;
    type TlsConnect = Handshake;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Handshake, Self::Error> {
        *self.attempt.lock().unwrap_or_else(PoisonError::into_inner) = Attempt {
            host: Some(hostname.to_owned()),
            handshake: false,
        };
        Ok(Handshake {
            inner: <MakeRustlsConnect as MakeTlsConnect<Socket>>::make_tls_connect(
                &mut self.make,
                hostname,
            )?,
            attempt: self.attempt.clone(),
        })
    }
}

/// One handshake: notes that it began, then hands over to the adapter.
struct Handshake {
    inner: Inner,
    attempt: Arc<Mutex<Attempt>>,
}

impl TlsConnect<Socket> for Handshake {
    type Stream = Stream;
    type Error = <Inner as TlsConnect<Socket>>::Error;
    type Future = <Inner as TlsConnect<Socket>>::Future;

    fn connect(self, stream: Socket) -> Self::Future {
        self.attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .handshake = true;
        self.inner.connect(stream)
    }
}

/// The checks of `require` (none: only that the server holds its certificate's key) and of
/// `verify-ca` (the chain to a trusted root, not the name). `verify-full` uses rustls' own
/// verifier.
#[derive(Debug)]
struct WeakerCheck {
    /// The roots the chain must lead to; `None`: the chain is not checked.
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for WeakerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use tokio_postgres::config::SslMode as Wire;

    use super::*;

    fn file() -> SslRootCert {
        SslRootCert::File(PathBuf::from("/ca.pem"))
    }

    #[test]
    fn each_mode_checks_what_libpq_checks() {
        let f = || Roots::File(PathBuf::from("/ca.pem"));
        let cases = [
            (
                None,
                None,
                SslMode::Prefer,
                Wire::Prefer,
                Check::Nothing,
                Roots::None,
            ),
            (
                None,
                Some(file()),
                SslMode::Prefer,
                Wire::Prefer,
                Check::Chain,
                f(),
            ),
            (
                None,
                Some(SslRootCert::System),
                SslMode::VerifyFull,
                Wire::Require,
                Check::ChainAndName,
                Roots::System,
            ),
            (
                Some(SslMode::Disable),
                Some(file()),
                SslMode::Disable,
                Wire::Disable,
                Check::Nothing,
                Roots::None,
            ),
            (
                Some(SslMode::Require),
                None,
                SslMode::Require,
                Wire::Require,
                Check::Nothing,
                Roots::None,
            ),
            // require with a root file is verify-ca.
            (
                Some(SslMode::Require),
                Some(file()),
                SslMode::Require,
                Wire::Require,
                Check::Chain,
                f(),
            ),
            (
                Some(SslMode::VerifyCa),
                None,
                SslMode::VerifyCa,
                Wire::Require,
                Check::Chain,
                Roots::System,
            ),
            (
                Some(SslMode::VerifyCa),
                Some(file()),
                SslMode::VerifyCa,
                Wire::Require,
                Check::Chain,
                f(),
            ),
            (
                Some(SslMode::VerifyFull),
                None,
                SslMode::VerifyFull,
                Wire::Require,
                Check::ChainAndName,
                Roots::System,
            ),
            (
                Some(SslMode::VerifyFull),
                Some(file()),
                SslMode::VerifyFull,
                Wire::Require,
                Check::ChainAndName,
                f(),
            ),
            (
                Some(SslMode::VerifyFull),
                Some(SslRootCert::System),
                SslMode::VerifyFull,
                Wire::Require,
                Check::ChainAndName,
                Roots::System,
            ),
        ];
        for (mode, root, m, wire, check, roots) in cases {
            assert_eq!(
                plan(mode, root.as_ref()).unwrap(),
                Plan {
                    mode: m,
                    wire,
                    check,
                    roots
                },
                "{mode:?} {root:?}"
            );
        }
    }

    #[test]
    fn system_roots_refuse_weaker_modes() {
        for mode in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
        ] {
            let e = plan(Some(mode), Some(&SslRootCert::System)).unwrap_err();
            assert!(
                matches!(&e, StoreError::Config(m) if m.contains("sslrootcert=system")),
                "{mode}: {e:?}"
            );
        }
    }

    #[test]
    fn hosts_decide_where_tls_can_be_used() {
        let tls = |s: &str, mode: SslMode| {
            let mut config: Config = s.parse().unwrap();
            Tls::new(&mut config, Some(mode), None).map(|t| (t.required, config))
        };
        // Only Unix sockets: never TLS, whatever the mode.
        let (required, config) = tls("host=/run/a,/run/b", SslMode::Require).unwrap();
        assert!(!required);
        assert_eq!(config.get_ssl_mode(), Wire::Disable);
        // Unix beside TCP under a mode that requires TLS: refused.
        assert!(matches!(
            tls("host=/run/a,db", SslMode::Require),
            Err(StoreError::Config(_))
        ));
        // ... but fine under prefer (the socket answers "no TLS").
        let (_, config) = tls("host=/run/a,db", SslMode::Prefer).unwrap();
        assert_eq!(config.get_ssl_mode(), Wire::Prefer);
        // hostaddr alone: its address is the handshake's name, except for verify-full.
        let (required, config) = tls("hostaddr=127.0.0.1", SslMode::Require).unwrap();
        assert!(required);
        assert_eq!(config.get_hosts(), &[Host::Tcp("127.0.0.1".into())]);
        let (_, config) = tls("hostaddr=127.0.0.1", SslMode::VerifyCa).unwrap();
        assert_eq!(config.get_hosts(), &[Host::Tcp("127.0.0.1".into())]);
        assert!(matches!(
            tls("hostaddr=127.0.0.1", SslMode::VerifyFull),
            Err(StoreError::Config(_))
        ));
        let (_, config) = tls("hostaddr=127.0.0.1", SslMode::Disable).unwrap();
        assert!(config.get_hosts().is_empty());
    }

    #[test]
    fn root_files_are_read_when_the_store_connects() {
        let missing = PathBuf::from("/nonexistent/api-tokens-ca.pem");
        let mut config: Config = "host=h".parse().unwrap();
        let e = Tls::new(
            &mut config,
            Some(SslMode::VerifyFull),
            Some(&SslRootCert::File(missing.clone())),
        )
        .unwrap_err();
        match e {
            StoreError::Tls {
                host: None,
                cause: TlsFailure::RootCertFile(p),
                source,
            } => {
                assert_eq!(p, missing);
                assert!(source.is::<io::Error>(), "{source:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sslmode_names_are_libpq_names() {
        for m in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(m.to_string().parse::<SslMode>(), Ok(m));
        }
        assert_eq!("allow".parse::<SslMode>(), Ok(SslMode::Prefer));
        assert_eq!("verify_full".parse::<SslMode>(), Err(UnknownSslMode));
        assert_eq!("Require".parse::<SslMode>(), Err(UnknownSslMode));
    }
}
