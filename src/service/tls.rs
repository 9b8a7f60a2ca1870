//! TLS material read from PEM files and checked when read, so a bad file is reported by
//! name at start rather than as a handshake failure later: the server's certificate and
//! key, the client CA that turns on mutual TLS, and the same readers for the client side.

use std::fmt;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use super::auth::{CredentialFileError, read_credential_file};

/// Reads a PEM file holding one or more certificates (a chain, or CA roots).
pub fn read_certificates(path: &Path) -> Result<Vec<u8>, CredentialFileError> {
    let pem = read_credential_file(path)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| CredentialFileError::new(path, format!("bad PEM certificate: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(CredentialFileError::new(
            path,
            "no PEM `CERTIFICATE` block in the file",
        ));
    }
    Ok(pem)
}

/// Reads a PEM file holding a private key (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(path: &Path) -> Result<Vec<u8>, CredentialFileError> {
    let pem = read_credential_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| CredentialFileError::new(path, format!("no usable PEM private key: {e}")))?;
    Ok(pem)
}

/// The server's TLS material.
#[derive(Clone)]
pub struct TlsConfig {
    cert_chain: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl TlsConfig {
    /// The server's certificate chain and key and, for mutual TLS, the CA that client
    /// certificates must chain to, as PEM ([`read_certificates`] and [`read_private_key`]
    /// check files; the server checks again when it starts).
    pub fn from_pem(
        cert_chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
        client_ca: Option<Vec<u8>>,
    ) -> TlsConfig {
        TlsConfig {
            cert_chain: cert_chain.into(),
            key: key.into(),
            client_ca,
        }
    }

    /// Whether every client must present a certificate that chains to the client CA.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    /// Tonic's server configuration.
    pub fn server_config(&self) -> ServerTlsConfig {
        let config =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_chain, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("key", &"<redacted>")
            .field("mutual", &self.requires_client_certificates())
            .finish_non_exhaustive()
    }
}
