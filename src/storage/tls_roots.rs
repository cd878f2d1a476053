//! The certificates filegate trusts for an `https://` store (SPEC §9): the system
//! roots plus every certificate of `store.ca_file`. One set, loaded once at start and
//! shared by both paths to the store: the S3 client (reqwest, given a rustls config
//! built here) and the pass-through (pingora's connector, given the same set as a PEM
//! bundle: see [`BundleFile`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::config::pem::read_pem_certificates;
use crate::config::ConfigError;

/// The roots trusted for the store.
pub struct StoreRoots {
    certs: Vec<CertificateDer<'static>>,
    store: Arc<RootCertStore>,
    extra: usize,
}

impl std::fmt::Debug for StoreRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StoreRoots({} trusted, {} from store.ca_file)",
            self.certs.len(),
            self.extra
        )
    }
}

impl StoreRoots {
    /// The system roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured, as by OpenSSL)
    /// plus every certificate of `ca_file`. A system root rustls cannot use is
    /// skipped; a certificate of `ca_file` it cannot use is an error naming
    /// `store.ca_file`.
    pub fn load(ca_file: Option<&Path>) -> Result<StoreRoots, ConfigError> {
        let mut store = RootCertStore::empty();
        let mut certs = Vec::new();
        match pingora_core::tls::load_native_certs() {
            Ok(system) => {
                for cert in system {
                    if store.add(cert.clone()).is_ok() {
                        certs.push(cert);
                    }
                }
            }
            Err(e) => log::warn!("store TLS: cannot read the system roots: {e}"),
        }
        let mut extra = 0;
        if let Some(path) = ca_file {
            for (i, cert) in read_pem_certificates("store.ca_file", path)?
                .into_iter()
                .enumerate()
            {
                store.add(cert.clone()).map_err(|e| {
                    ConfigError::new(
                        "store.ca_file",
                        format!(
                            "{}: certificate #{} is not a usable CA: {e}",
                            path.display(),
                            i + 1
                        ),
                    )
                })?;
                certs.push(cert);
                extra += 1;
            }
        }
        if certs.is_empty() {
            return Err(ConfigError::new(
                "store.ca_file",
                "no system roots were found: name the store's CA here",
            ));
        }
        Ok(StoreRoots {
            certs,
            store: Arc::new(store),
            extra,
        })
    }

    /// How many certificates are trusted.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether none is (never true after [`StoreRoots::load`]).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// A client config for the S3 client: TLS 1.2 and 1.3, these roots, no client
    /// certificate, `http/1.1` only.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("store TLS: {e}"))?
            .with_root_certificates(self.store.clone())
            .with_no_client_auth();
        Ok(config)
    }

    /// The roots as one PEM bundle.
    pub fn pem_bundle(&self) -> String {
        let mut pem = String::with_capacity(self.certs.len() * 2048);
        let engine = base64::engine::general_purpose::STANDARD;
        for cert in &self.certs {
            let b64 = engine.encode(cert.as_ref());
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                // Base64 is ASCII: each chunk is valid UTF-8.
                let _ = writeln!(pem, "{}", String::from_utf8_lossy(line));
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        pem
    }

    /// Writes the bundle to a new private file for pingora's connector, which reads
    /// its trust store from a file path only (`ServerConf::ca_file`) when it is built.
    pub fn write_bundle(&self) -> Result<BundleFile, String> {
        let dir = std::env::temp_dir();
        let mut last = String::new();
        for _ in 0..8 {
            let path = dir.join(format!(
                "filegate-store-roots-{}-{:016x}.pem",
                std::process::id(),
                rand::random::<u64>()
            ));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&path) {
                Ok(mut file) => {
                    let bundle = BundleFile { path };
                    file.write_all(self.pem_bundle().as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| format!("store TLS: cannot write the CA bundle: {e}"))?;
                    return Ok(bundle);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!(
            "store TLS: cannot create a CA bundle in {}: {last}",
            dir.display()
        ))
    }
}

/// A PEM bundle on disk for as long as it is held; removed when dropped.
#[derive(Debug)]
pub struct BundleFile {
    path: PathBuf,
}

impl BundleFile {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BundleFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_round_trips_every_certificate() {
        let roots = match StoreRoots::load(None) {
            Ok(r) => r,
            // A machine without system roots: nothing to round-trip.
            Err(_) => return,
        };
        let bundle = roots.write_bundle().unwrap();
        let back = read_pem_certificates("x", bundle.path()).unwrap();
        assert_eq!(back.len(), roots.len());
        assert_eq!(back, roots.certs);
        let path = bundle.path().to_path_buf();
        drop(bundle);
        assert!(!path.exists(), "the bundle is removed when dropped");
    }

    #[test]
    fn a_bad_ca_file_names_the_key() {
        let dir = std::env::temp_dir().join(format!("fg-roots-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        assert_eq!(
            StoreRoots::load(Some(&missing)).unwrap_err().key,
            "store.ca_file"
        );
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        assert_eq!(
            StoreRoots::load(Some(&junk)).unwrap_err().key,
            "store.ca_file"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
