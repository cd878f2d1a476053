//! The TLS listener's settings, from the config's files: the certificate chain and its
//! key are read and checked (readable, the chain parses and is in order, the leaf is
//! not a CA and is valid now, the key matches it), then made into a rustls
//! [`ServerConfig`]: TLS 1.3 and 1.2 only, rustls' forward-secret AEAD suites, ALPN
//! `h2` and `http/1.1` (or `http/1.1` alone), no client certificates. rustls never
//! renegotiates. `filegate check` and `filegate serve` run the same checks.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::pem::{read_pem_certificates, read_pem_private_key};
use crate::config::{ConfigError, TlsConfig};

/// ALPN protocol ids, in the server's order of preference.
const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// What `filegate check` reports of a certificate that passed.
#[derive(Debug, Clone)]
pub struct CertificateSummary {
    /// The leaf's subject.
    pub subject: String,
    /// The leaf's expiry (UTC).
    pub not_after: String,
    /// Days until it expires.
    pub days_left: i64,
    /// Certificates in the chain, the leaf included.
    pub chain_len: usize,
}

/// The crypto provider of every TLS endpoint filegate runs: ring, with its default
/// cipher suites (TLS 1.3: AES-256-GCM, AES-128-GCM, ChaCha20-Poly1305; TLS 1.2:
/// ECDHE-ECDSA and ECDHE-RSA with the same three AEADs) and key exchanges (X25519,
/// P-256, P-384).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks the chain: every certificate parses, each is issued by the next, the leaf
/// is an end-entity certificate valid at `now`. Errors name `tls.cert`.
fn check_chain(
    chain: &[CertificateDer<'_>],
    now: SystemTime,
) -> Result<CertificateSummary, ConfigError> {
    let fault = |problem: String| ConfigError::new("tls.cert", problem);
    let mut parsed = Vec::with_capacity(chain.len());
    for (i, der) in chain.iter().enumerate() {
        let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| {
            fault(format!(
                "certificate #{} of the chain is not X.509: {e}",
                i + 1
            ))
        })?;
        parsed.push(cert);
    }
    let Some(leaf) = parsed.first() else {
        return Err(fault("no certificate in the chain".into()));
    };
    if leaf.is_ca() {
        return Err(fault(
            "the first certificate is a CA certificate: put the server's own (leaf) certificate first, then its intermediates".into(),
        ));
    }
    for (i, pair) in parsed.windows(2).enumerate() {
        if pair[0].issuer().as_raw() != pair[1].subject().as_raw() {
            return Err(fault(format!(
                "certificate #{} ({}) did not issue #{} (issuer {}): the chain must be the leaf, then each issuer in turn",
                i + 2,
                pair[1].subject(),
                i + 1,
                pair[0].issuer()
            )));
        }
    }
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let validity = leaf.validity();
    if validity.not_after.timestamp() <= now_secs {
        return Err(fault(format!(
            "the certificate expired on {}",
            validity.not_after
        )));
    }
    if validity.not_before.timestamp() > now_secs {
        return Err(fault(format!(
            "the certificate is not valid before {}",
            validity.not_before
        )));
    }
    Ok(CertificateSummary {
        subject: leaf.subject().to_string(),
        not_after: validity.not_after.to_string(),
        days_left: (validity.not_after.timestamp() - now_secs) / 86_400,
        chain_len: chain.len(),
    })
}

/// The checked chain and key of `tls`, as rustls signs with them.
fn load_certified_key(
    tls: &TlsConfig,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
        CertificateSummary,
    ),
    ConfigError,
> {
    let chain = read_pem_certificates("tls.cert", &tls.cert)?;
    let summary = check_chain(&chain, now)?;
    let key = read_pem_private_key("tls.key", &tls.key)?;
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| {
            ConfigError::new(
                "tls.key",
                format!("{}: unsupported private key: {e}", tls.key.display()),
            )
        })?;
    CertifiedKey::new(chain.clone(), signing)
        .keys_match()
        .map_err(|e| {
            ConfigError::new(
                "tls.key",
                format!(
                    "{} does not match the certificate in tls.cert ({}): {e}",
                    tls.key.display(),
                    tls.cert.display()
                ),
            )
        })?;
    Ok((chain, key, summary))
}

/// Checks the files of `tls` as `filegate check` does.
pub fn check_files(tls: &TlsConfig) -> Result<CertificateSummary, ConfigError> {
    load_certified_key(tls, &crypto_provider(), SystemTime::now()).map(|(_, _, s)| s)
}

/// The rustls server config of the TLS listener.
pub fn server_config(
    tls: &TlsConfig,
) -> Result<(Arc<ServerConfig>, CertificateSummary), ConfigError> {
    let provider = crypto_provider();
    let (chain, key, summary) = load_certified_key(tls, &provider, SystemTime::now())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError::new("tls", format!("cannot set TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ConfigError::new("tls.key", e.to_string()))?;
    config.alpn_protocols = if tls.http2 {
        vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()]
    } else {
        vec![ALPN_HTTP1.to_vec()]
    };
    Ok((Arc::new(config), summary))
}
