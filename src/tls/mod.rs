//! TLS and HTTP/2 at the edge (SPEC §9).
//!
//! - [`settings`]: the certificate chain and key from the config's files, checked,
//!   made into the rustls server config (versions, suites, ALPN).
//! - [`accept`]: the TLS listener's handshake, within `tls.handshake_timeout`, and
//!   what ALPN chose (h2 or HTTP/1.1).
//! - [`replay`]: a stream that takes back bytes read ahead (the request-head deadline
//!   and the h2 preface wait read before pingora parses).
//!
//! Reading the PEM files is [`crate::config::pem`] (its errors name the key at fault);
//! TLS to the store is [`crate::storage::tls_roots`].

pub mod accept;
pub mod replay;
pub mod settings;
