//! The TLS listener (`tls:`, SPEC §8–9): absent, filegate listens in plain HTTP only.
//! The files themselves are read and checked by [`crate::tls::settings`] (at start and
//! by `filegate check`); this section only holds and checks the values.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use super::values::parse_socket_addr;

/// Most h2 streams a client may open at once on one connection (the key's ceiling).
pub const MAX_CONCURRENT_STREAMS_CEILING: u32 = 1000;

/// Longest `tls.handshake_timeout` accepted.
pub const HANDSHAKE_TIMEOUT_CEILING: Duration = Duration::from_secs(60);

/// TLS (and HTTP/2) on a listener of its own, beside the plain one.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the TLS listener. Env `FILEGATE_TLS_LISTEN` overrides.
    pub listen: String,
    /// The certificate chain (PEM), leaf first, then its intermediates.
    pub cert: PathBuf,
    /// The leaf's private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
    /// Offer `h2` by ALPN beside `http/1.1`.
    pub http2: bool,
    /// Longest time from accepting a TCP connection to a finished TLS handshake (and,
    /// for h2, the client's connection preface); a slower or silent client is
    /// disconnected.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Most h2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            listen: "127.0.0.1:8443".into(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            http2: true,
            handshake_timeout: Duration::from_secs(10),
            max_concurrent_streams: 100,
        }
    }
}

impl TlsConfig {
    /// Checks the values (not the files); `plain` and `admin` are the other listeners.
    pub(super) fn validate(&self, plain: &str, admin: &str) -> Result<(), ConfigError> {
        let addr = parse_socket_addr("tls.listen", &self.listen)?;
        if addr.port() == 0 {
            // The TLS connections are told apart from the plain ones by this port.
            return Err(ConfigError::new("tls.listen", "needs a fixed port (not 0)"));
        }
        for (key, other) in [("listen", plain), ("admin_listen", admin)] {
            // Two listeners on one port (even on different addresses) would share
            // SO_REUSEPORT groups; the TLS listener is told apart by its port.
            let same_port = other
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|o| o.port() == addr.port());
            if same_port {
                return Err(ConfigError::new(
                    "tls.listen",
                    format!("must use another port than `{key}` ({other})"),
                ));
            }
        }
        if self.cert.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "tls.cert",
                "required with `tls`: the PEM certificate chain, leaf first",
            ));
        }
        if self.key.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "tls.key",
                "required with `tls`: the PEM private key of the certificate",
            ));
        }
        if self.handshake_timeout.is_zero() || self.handshake_timeout > HANDSHAKE_TIMEOUT_CEILING {
            return Err(ConfigError::new(
                "tls.handshake_timeout",
                "above 0 and at most 60s",
            ));
        }
        if !(1..=MAX_CONCURRENT_STREAMS_CEILING).contains(&self.max_concurrent_streams) {
            return Err(ConfigError::new(
                "tls.max_concurrent_streams",
                format!("between 1 and {MAX_CONCURRENT_STREAMS_CEILING}"),
            ));
        }
        Ok(())
    }

    /// The port of the TLS listener (after [`TlsConfig::validate`]).
    pub fn port(&self) -> Option<u16> {
        self.listen
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|a| a.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(listen: &str) -> TlsConfig {
        TlsConfig {
            listen: listen.into(),
            cert: "c.pem".into(),
            key: "k.pem".into(),
            ..TlsConfig::default()
        }
    }

    #[test]
    fn names_the_key_at_fault() {
        let plain = "127.0.0.1:8080";
        let admin = "127.0.0.1:9180";
        with("127.0.0.1:8443").validate(plain, admin).unwrap();
        let cases = [
            (with("nowhere"), "tls.listen"),
            (with("127.0.0.1:0"), "tls.listen"),
            (with("0.0.0.0:8080"), "tls.listen"),
            (with("127.0.0.1:9180"), "tls.listen"),
            (
                TlsConfig {
                    cert: PathBuf::new(),
                    ..with("127.0.0.1:8443")
                },
                "tls.cert",
            ),
            (
                TlsConfig {
                    key: PathBuf::new(),
                    ..with("127.0.0.1:8443")
                },
                "tls.key",
            ),
            (
                TlsConfig {
                    handshake_timeout: Duration::ZERO,
                    ..with("127.0.0.1:8443")
                },
                "tls.handshake_timeout",
            ),
            (
                TlsConfig {
                    handshake_timeout: Duration::from_secs(61),
                    ..with("127.0.0.1:8443")
                },
                "tls.handshake_timeout",
            ),
            (
                TlsConfig {
                    max_concurrent_streams: 0,
                    ..with("127.0.0.1:8443")
                },
                "tls.max_concurrent_streams",
            ),
        ];
        for (cfg, key) in cases {
            assert_eq!(cfg.validate(plain, admin).unwrap_err().key, key, "{cfg:?}");
        }
    }
}
