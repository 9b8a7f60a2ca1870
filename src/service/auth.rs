//! Who may call what. A caller is a *reader* (the queries and server reflection) or a
//! *writer* (`SyncState` as well), by a bearer token or by an mTLS client certificate;
//! [`AuthLayer`] enforces it by the gRPC path before any handler runs. Health is exempt,
//! so kubelet probes need no credential.
//!
//! Also owns the token-file format (one token per line, blank lines and `#` comments
//! ignored), shared by the server's token files and the client's `--token-file`.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ring::digest;
use rustls_pki_types::CertificateDer;
use subtle::ConstantTimeEq;
use tonic::Status;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service, ServiceExt};

/// The gRPC health service, open to every caller.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// The one method that writes.
pub const SYNC_STATE_PATH: &str = "/preemption_oracle.v1.PreemptionOracle/SyncState";

/// What a caller may do; a writer may do everything a reader may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Reader,
    Writer,
}

/// The role a call to `path` (`/package.Service/Method`) needs; `None` for health.
/// Every other path (the queries, reflection, unknown methods) needs a reader.
pub fn required_role(path: &str) -> Option<Role> {
    let service = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .map(|(service, _)| service);
    if service == Some(HEALTH_SERVICE) {
        None
    } else if path == SYNC_STATE_PATH {
        Some(Role::Writer)
    } else {
        Some(Role::Reader)
    }
}

/// A credential file that cannot be used, named in the message.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct CredentialFileError {
    pub path: PathBuf,
    pub message: String,
}

impl CredentialFileError {
    pub fn new(path: &Path, message: impl fmt::Display) -> CredentialFileError {
        CredentialFileError {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// Reads a credential file whole.
pub fn read_credential_file(path: &Path) -> Result<Vec<u8>, CredentialFileError> {
    std::fs::read(path).map_err(|e| CredentialFileError::new(path, e))
}

/// The tokens in a token file's text: each line trimmed, blank lines and `#` comments
/// skipped.
pub fn token_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Reads a token file (a mounted Secret); a file with no token is an error.
pub fn read_token_file(path: &Path) -> Result<Vec<String>, CredentialFileError> {
    let bytes = read_credential_file(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CredentialFileError::new(path, "a token file must be UTF-8 text"))?;
    let tokens: Vec<String> = token_lines(text).map(str::to_string).collect();
    if tokens.is_empty() {
        return Err(CredentialFileError::new(
            path,
            "no token in the file (blank lines and # comments are ignored)",
        ));
    }
    Ok(tokens)
}

/// A set of bearer tokens, kept as SHA-256 digests and compared in constant time.
#[derive(Clone, Default)]
pub struct Tokens(Vec<digest::Digest>);

impl Tokens {
    pub fn new<T: AsRef<str>>(tokens: impl IntoIterator<Item = T>) -> Tokens {
        Tokens(
            tokens
                .into_iter()
                .map(|t| digest::digest(&digest::SHA256, t.as_ref().as_bytes()))
                .collect(),
        )
    }

    /// Whether `token` is in the set. Every entry is compared, in constant time, so the
    /// time taken says nothing about which token (or how much of one) matched.
    fn contains(&self, token: &[u8]) -> bool {
        let presented = digest::digest(&digest::SHA256, token);
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |found, known| {
                found | known.as_ref().ct_eq(presented.as_ref())
            })
            .into()
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokens({} redacted)", self.0.len())
    }
}

/// Who may write and who may read. A client certificate verified by the server's client
/// CA makes its holder a reader, and a writer when one of its identities (subject CN or
/// DNS SAN, compared ignoring ASCII case) is in `writer_identities`.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub writer_tokens: Tokens,
    pub reader_tokens: Tokens,
    pub writer_identities: Vec<String>,
}

impl AuthConfig {
    /// The role of a caller presenting `authorization` (a header value) and, over mTLS,
    /// the verified certificate chain `peer_certs` (leaf first). The stronger credential
    /// wins; a malformed or unknown bearer token is refused even with a good certificate.
    fn role_of(
        &self,
        authorization: Option<&[u8]>,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<Option<Role>, Status> {
        let by_token = match authorization {
            None => None,
            Some(value) => Some(self.token_role(value).ok_or_else(|| {
                Status::unauthenticated("unknown bearer token or malformed authorization")
            })?),
        };
        let by_cert = peer_certs
            .and_then(<[_]>::first)
            .map(|leaf| self.certificate_role(leaf));
        Ok(by_token.max(by_cert))
    }

    fn token_role(&self, authorization: &[u8]) -> Option<Role> {
        let (scheme, token) = authorization.split_at_checked(7)?;
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return None;
        }
        let token = token.trim_ascii();
        // Both sets are always checked, so timing does not tell a reader from a writer.
        let writer = self.writer_tokens.contains(token);
        let reader = self.reader_tokens.contains(token);
        if writer {
            Some(Role::Writer)
        } else if reader {
            Some(Role::Reader)
        } else {
            None
        }
    }

    fn certificate_role(&self, leaf: &CertificateDer<'_>) -> Role {
        let allowed = certificate_identities(leaf).iter().any(|name| {
            self.writer_identities
                .iter()
                .any(|w| w.eq_ignore_ascii_case(name))
        });
        if allowed { Role::Writer } else { Role::Reader }
    }

    /// Admits or refuses a call to `path`: `UNAUTHENTICATED` without a credential (or
    /// with a bad token), `PERMISSION_DENIED` for a reader calling a writer's method.
    pub fn authorize(
        &self,
        path: &str,
        authorization: Option<&[u8]>,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<(), Status> {
        let Some(required) = required_role(path) else {
            return Ok(());
        };
        match self.role_of(authorization, peer_certs)? {
            None => Err(Status::unauthenticated(
                "a credential is required: send `authorization: Bearer <token>` or a client certificate",
            )),
            Some(role) if role < required => Err(Status::permission_denied(format!(
                "{path} needs a writer credential; this one may only read"
            ))),
            Some(_) => Ok(()),
        }
    }
}

/// A certificate's identities: its subject common names and DNS subject alternative
/// names. A certificate that does not parse has none.
pub fn certificate_identities(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_string)
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        names.extend(
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                    _ => None,
                }),
        );
    }
    names
}

/// The tower layer that admits calls by [`AuthConfig`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    config: Arc<AuthConfig>,
}

impl AuthLayer {
    pub fn new(config: AuthConfig) -> AuthLayer {
        AuthLayer {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    config: Arc<AuthConfig>,
}

impl<S, B> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    /// Always ready: readiness of the inner service (a concurrency permit) is awaited
    /// only for admitted calls, so refused ones hold nothing.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let peer_certs = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs);
        let verdict = self.config.authorize(
            request.uri().path(),
            request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
            peer_certs.as_deref().map(Vec::as_slice),
        );
        match verdict {
            Ok(()) => Box::pin(self.inner.clone().oneshot(request)),
            Err(status) => {
                tracing::debug!(path = request.uri().path(), code = ?status.code(), "call refused");
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic::server::NamedService;

    type OracleServer = crate::service::pb::preemption_oracle_server::PreemptionOracleServer<
        crate::service::oracle::Oracle,
    >;
    type HealthServer =
        tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>;

    #[test]
    fn paths_match_the_generated_service_names() {
        assert_eq!(
            SYNC_STATE_PATH,
            format!("/{}/SyncState", OracleServer::NAME)
        );
        assert_eq!(HEALTH_SERVICE, HealthServer::NAME);
    }

    #[test]
    fn path_decides_the_role() {
        let oracle = OracleServer::NAME;
        assert_eq!(required_role(SYNC_STATE_PATH), Some(Role::Writer));
        for method in ["Place", "PlaceBatch", "PendingPods"] {
            assert_eq!(
                required_role(&format!("/{oracle}/{method}")),
                Some(Role::Reader),
                "{method}"
            );
        }
        assert_eq!(required_role("/grpc.health.v1.Health/Check"), None);
        assert_eq!(required_role("/grpc.health.v1.Health/Watch"), None);
        for path in [
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            "/grpc.health.v1.HealthX/Check",
            "/unknown.Service/Method",
            "/",
            "",
        ] {
            assert_eq!(required_role(path), Some(Role::Reader), "{path}");
        }
    }

    #[test]
    fn token_lines_skip_blanks_and_comments() {
        let text = "# writers\n\n  alpha  \r\n#beta\n\tgamma\n   # indented comment\n";
        assert_eq!(token_lines(text).collect::<Vec<_>>(), ["alpha", "gamma"]);
        assert_eq!(token_lines("").count(), 0);
    }

    #[test]
    fn token_files_name_the_file_when_unusable() {
        let dir = std::env::temp_dir().join(format!("oracle-auth-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty-tokens");
        std::fs::write(&empty, "# nothing here\n\n").unwrap();
        let err = read_token_file(&empty).unwrap_err().to_string();
        assert!(err.starts_with(&empty.display().to_string()), "{err}");
        assert!(err.contains("no token"), "{err}");
        let missing = dir.join("missing-tokens");
        let err = read_token_file(&missing).unwrap_err().to_string();
        assert!(err.starts_with(&missing.display().to_string()), "{err}");
        let good = dir.join("tokens");
        std::fs::write(&good, "one\n# c\ntwo\n").unwrap();
        assert_eq!(read_token_file(&good).unwrap(), ["one", "two"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn config() -> AuthConfig {
        AuthConfig {
            writer_tokens: Tokens::new(["w-token"]),
            reader_tokens: Tokens::new(["r-token", "r-token-2"]),
            writer_identities: vec!["feeder.oracle.svc".into()],
        }
    }

    fn code(r: Result<(), Status>) -> Option<Code> {
        r.err().map(|s| s.code())
    }

    #[test]
    fn tokens_decide_reader_and_writer() {
        let c = config();
        let place = "/preemption_oracle.v1.PreemptionOracle/Place";
        assert_eq!(
            code(c.authorize(place, Some(b"Bearer r-token-2"), None)),
            None
        );
        assert_eq!(
            code(c.authorize(place, Some(b"bearer w-token"), None)),
            None
        );
        assert_eq!(
            code(c.authorize(SYNC_STATE_PATH, Some(b"Bearer w-token"), None)),
            None
        );
        assert_eq!(
            code(c.authorize(SYNC_STATE_PATH, Some(b"Bearer r-token"), None)),
            Some(Code::PermissionDenied)
        );
        for bad in [
            &b"Bearer nope"[..],
            b"Bearer r-toke",
            b"Bearer ",
            b"Basic r-token",
            b"r-token",
            b"",
        ] {
            assert_eq!(
                code(c.authorize(place, Some(bad), None)),
                Some(Code::Unauthenticated),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            code(c.authorize(place, None, None)),
            Some(Code::Unauthenticated)
        );
        assert_eq!(
            code(c.authorize("/grpc.health.v1.Health/Check", None, None)),
            None
        );
        assert_eq!(
            code(c.authorize("/grpc.health.v1.Health/Check", Some(b"Bearer nope"), None)),
            None
        );
    }

    fn cert(cn: &str, dns: &[&str]) -> CertificateDer<'static> {
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn certificates_identify_by_common_name_or_dns_name() {
        let by_san = cert("someone", &["feeder.oracle.svc", "other.example"]);
        assert_eq!(
            certificate_identities(&by_san),
            ["someone", "feeder.oracle.svc", "other.example"]
        );
        let c = config();
        assert_eq!(c.certificate_role(&by_san), Role::Writer);
        assert_eq!(
            c.certificate_role(&cert("FEEDER.oracle.svc", &[])),
            Role::Writer
        );
        let reader = cert("viewer", &["viewer.example"]);
        assert_eq!(c.certificate_role(&reader), Role::Reader);
        let certs = [reader];
        assert_eq!(
            code(c.authorize(SYNC_STATE_PATH, None, Some(&certs))),
            Some(Code::PermissionDenied)
        );
        // A writer token lifts a reader certificate; a bad token is refused outright.
        assert_eq!(
            code(c.authorize(SYNC_STATE_PATH, Some(b"Bearer w-token"), Some(&certs))),
            None
        );
        assert_eq!(
            code(c.authorize(SYNC_STATE_PATH, Some(b"Bearer nope"), Some(&certs))),
            Some(Code::Unauthenticated)
        );
        assert!(certificate_identities(&CertificateDer::from(vec![1, 2, 3])).is_empty());
    }
}
