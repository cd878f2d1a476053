//! The TLS listener's handshake. pingora's own TLS listener runs the handshake under a
//! fixed 60 s timeout (`services/listening.rs` in pingora-core 0.9.1) and offers no hook
//! to shorten it: a silent or half-open client would hold its socket and task for a
//! minute. So pingora sees the TLS listener as plain TCP, and the handshake is done
//! here, in the connection's own task, with pingora's rustls [`Acceptor`] (the same
//! [`TlsStream`](pingora_core::protocols::tls::TlsStream) pingora would make), under
//! `tls.handshake_timeout`. For h2 the same deadline covers the client's connection
//! preface, since pingora's h2 handshake waits for it without a timeout.

use std::sync::Arc;
use std::time::Duration;

use pingora_core::listeners::tls::Acceptor;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::{Ssl, Stream, ALPN};
use prometheus::IntCounterVec;
use rustls::ServerConfig;
use tokio::io::AsyncReadExt;
use tokio::time::{timeout_at, Instant};

use crate::error::ApiError;
use crate::http::envelope::write_refusal;
use crate::tls::replay::ReplayStream;

/// The h2 client connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a TLS connection became.
pub enum Accepted {
    /// ALPN chose h2 and the client's preface arrived (replayed to pingora's h2
    /// handshake).
    H2(Stream),
    /// HTTP/1.1 (chosen by ALPN, or no ALPN at all).
    Http1(Stream),
    /// Closed: the handshake failed or took too long.
    Closed,
}

/// The TLS side of a worker's listeners.
pub struct TlsEdge {
    acceptor: Acceptor,
    port: u16,
    handshake_timeout: Duration,
    closed: IntCounterVec,
    connections: IntCounterVec,
}

impl TlsEdge {
    /// TLS on the listener of `port`, with `config`; failures are counted in `closed`
    /// by reason, finished handshakes in `connections` by protocol.
    pub fn new(
        config: Arc<ServerConfig>,
        port: u16,
        handshake_timeout: Duration,
        closed: IntCounterVec,
        connections: IntCounterVec,
    ) -> TlsEdge {
        TlsEdge {
            acceptor: Acceptor::from_server_config(config),
            port,
            handshake_timeout,
            closed,
            connections,
        }
    }

    /// Whether `stream` was accepted by the TLS listener (the listeners of a worker
    /// share one app; validation keeps the TLS port apart from the others).
    pub fn owns(&self, stream: &Stream) -> bool {
        stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).map(|a| a.port()))
            == Some(self.port)
    }

    /// Reads the first bytes (within the deadline) and hands them back. A plain HTTP
    /// request (an upper-case method where a TLS record should start) is answered with
    /// a 400 envelope that says to use https, as nginx does; anything else goes on to
    /// rustls, which refuses what is not TLS.
    async fn starts_tls(&self, l4: &mut L4Stream, deadline: Instant) -> bool {
        let mut first = [0u8; 8];
        let n = match timeout_at(deadline, l4.read(&mut first)).await {
            Ok(Ok(n)) if n > 0 => n,
            Ok(_) => return false,
            Err(_) => {
                self.closed
                    .with_label_values(&["tls_handshake_timeout"])
                    .inc();
                log::debug!(
                    "closing a connection silent for {:?} on the TLS listener",
                    self.handshake_timeout
                );
                return false;
            }
        };
        let seen = &first[..n];
        l4.rewind(seen);
        let method = seen.iter().take_while(|b| b.is_ascii_uppercase()).count();
        let looks_like_http = method > 0 && seen.get(method).is_none_or(|b| *b == b' ');
        if looks_like_http {
            self.closed.with_label_values(&["plain_http_on_tls"]).inc();
            let err = ApiError::new(
                http::StatusCode::BAD_REQUEST,
                "plain HTTP was sent to the TLS port: use https:// on this port",
            );
            write_refusal(l4, &err).await;
            return false;
        }
        true
    }

    /// Runs the TLS handshake (and, for h2, waits for the preface) within the
    /// handshake timeout.
    pub async fn accept(&self, stream: Stream) -> Accepted {
        let deadline = Instant::now() + self.handshake_timeout;
        let Ok(mut l4) = stream.into_any().downcast::<L4Stream>() else {
            return Accepted::Closed;
        };
        if !self.starts_tls(&mut l4, deadline).await {
            return Accepted::Closed;
        }
        let tls = match timeout_at(deadline, self.acceptor.tls_handshake(*l4)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                self.closed
                    .with_label_values(&["tls_handshake_failed"])
                    .inc();
                log::debug!("TLS handshake failed: {e}");
                return Accepted::Closed;
            }
            Err(_) => {
                self.closed
                    .with_label_values(&["tls_handshake_timeout"])
                    .inc();
                log::debug!(
                    "closing a connection whose TLS handshake took over {:?}",
                    self.handshake_timeout
                );
                return Accepted::Closed;
            }
        };
        let h2 = matches!(tls.selected_alpn_proto(), Some(ALPN::H2));
        self.connections
            .with_label_values(&[if h2 { "h2" } else { "http/1.1" }])
            .inc();
        let mut stream = ReplayStream::new(Box::new(tls));
        if !h2 {
            return Accepted::Http1(Box::new(stream));
        }
        let mut preface = [0u8; H2_PREFACE.len()];
        match timeout_at(deadline, stream.read_exact(&mut preface)).await {
            Ok(Ok(_)) if &preface == H2_PREFACE => {
                stream.rewind(&preface);
                Accepted::H2(Box::new(stream))
            }
            Ok(_) => {
                self.closed
                    .with_label_values(&["tls_handshake_failed"])
                    .inc();
                log::debug!("an h2 client sent no valid connection preface");
                Accepted::Closed
            }
            Err(_) => {
                self.closed.with_label_values(&["h2_preface_timeout"]).inc();
                log::debug!(
                    "closing an h2 connection whose preface took over {:?}",
                    self.handshake_timeout
                );
                Accepted::Closed
            }
        }
    }
}
