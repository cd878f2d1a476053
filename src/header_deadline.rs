//! Slowloris defence. pingora bounds each read of a request head (60 s) but not the
//! whole head, so a client sending a byte a minute could hold a connection forever.
//! [`HeaderDeadline`] wraps the HTTP/1 loop of a pingora app: before each request it
//! waits for the first byte up to the keep-alive timeout (closing idle connections at
//! shutdown), then for the complete head (an empty line) within `header_timeout` of
//! that first byte and `max_head` bytes. A client too slow or too large gets a 408 or
//! 414/431 envelope and is disconnected. A `/file` request without a body is then
//! answered right there by the [`FileLane`]; any other head is handed back to the
//! stream (`rewind`) and pingora parses it as usual.
//!
//! On the TLS listener ([`TlsEdge`]) the handshake comes first; an h2 connection then
//! goes to pingora's own h2 loop of the inner app (its `ServerApp` impl: streams
//! multiplexed, each served by `process_new_http`, with the app's `h2_options`), and an
//! HTTP/1.1 one runs the same head deadline as plain TCP, over a [`ReplayStream`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use prometheus::IntCounterVec;
use tokio::io::AsyncReadExt;
use tokio::time::{timeout, timeout_at, Instant};

use crate::error::ApiError;
use crate::http::envelope::write_refusal;
use crate::lane::{self, FileLane};
use crate::tls::accept::{Accepted, TlsEdge};
use crate::tls::replay::ReplayStream;

/// Limits on request heads.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Longest wait for the first byte of a request (keep-alive idle time).
    pub idle_timeout: Duration,
    /// Longest time from the first byte to the end of the head.
    pub header_timeout: Duration,
    /// Largest head.
    pub max_head: usize,
}

/// An HTTP/1 app behind a request-head deadline (and, on the TLS listener, a
/// handshake deadline).
pub struct HeaderDeadline<A> {
    inner: Arc<A>,
    limits: HeadLimits,
    closed: IntCounterVec,
    tls: Option<Arc<TlsEdge>>,
    lane: Option<FileLane>,
}

impl<A> HeaderDeadline<A> {
    /// Wraps `inner`; connections closed early are counted in `closed` by reason.
    pub fn new(inner: A, limits: HeadLimits, closed: IntCounterVec) -> Self {
        HeaderDeadline {
            inner: Arc::new(inner),
            limits,
            closed,
            tls: None,
            lane: None,
        }
    }

    /// Answers `/file` requests on the connection itself (see [`FileLane`]).
    pub fn with_lane(mut self, lane: FileLane) -> Self {
        self.lane = Some(lane);
        self
    }

    /// Terminates TLS on the connections `edge` owns (those of the TLS listener).
    pub fn with_tls(mut self, edge: Arc<TlsEdge>) -> Self {
        self.tls = Some(edge);
        self
    }
}

/// Whether the head wait can hand bytes back to this transport.
fn rewindable(stream: &Stream) -> bool {
    stream.as_any().is::<L4Stream>() || stream.as_any().is::<ReplayStream>()
}

/// Hands `buf` back to the stream (plain TCP, or a replaying TLS stream).
fn rewind(stream: Stream, buf: &[u8]) -> Option<Stream> {
    match stream.into_any().downcast::<L4Stream>() {
        Ok(mut l4) => {
            l4.rewind(buf);
            Some(l4)
        }
        Err(any) => match any.downcast::<ReplayStream>() {
            Ok(mut replay) => {
                replay.rewind(buf);
                Some(replay)
            }
            Err(_) => None,
        },
    }
}

/// What waiting for a head produced.
enum Head {
    /// A complete head at the start of the buffer, or (the buffer empty) a transport
    /// the head wait cannot hand bytes back to, which pingora reads itself: serve it.
    Ready(Stream),
    /// Nothing to serve: idle timeout, EOF, shutdown, or an answered refusal.
    Closed,
}

/// Whether `buf` holds a whole head (an empty line), looking only at what arrived
/// from `from` on (and the three bytes before, for a terminator split across reads).
fn head_complete(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(3);
    let window = &buf[start..];
    memchr::memchr_iter(b'\n', window).any(|i| {
        let before = &window[..i];
        before.ends_with(b"\n") || before.ends_with(b"\n\r")
    })
}

impl<A> HeaderDeadline<A> {
    async fn await_head(
        &self,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
        reused: bool,
        buf: &mut BytesMut,
    ) -> Head {
        // Only a stream that can take the bytes back waits here; anything else goes
        // to pingora untouched.
        if !rewindable(&stream) {
            return Head::Ready(stream);
        }
        if reused && *shutdown.borrow() {
            return Head::Closed;
        }
        // One buffer per connection, request after request; it may already hold the
        // start of a pipelined request.
        if buf.is_empty() {
            buf.reserve(4096);
            let mut shutdown = shutdown.clone();
            let first = tokio::select! {
                r = timeout(self.limits.idle_timeout, stream.read_buf(buf)) => r,
                _ = shutdown.changed(), if reused => return Head::Closed,
            };
            match first {
                Ok(Ok(n)) if n > 0 => {}
                _ => return Head::Closed,
            }
        }
        let deadline = Instant::now() + self.limits.header_timeout;
        let mut scanned = 0;
        while !head_complete(buf, scanned) {
            if buf.len() >= self.limits.max_head {
                self.closed.with_label_values(&["head_too_large"]).inc();
                // No line end yet: the request line itself (the URL) is too long.
                let err = if buf.contains(&b'\n') {
                    ApiError::new(
                        http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "request headers too large",
                    )
                } else {
                    ApiError::new(http::StatusCode::URI_TOO_LONG, "request URL too long")
                };
                write_refusal(&mut stream, &err).await;
                return Head::Closed;
            }
            scanned = buf.len();
            buf.reserve(4096);
            match timeout_at(deadline, stream.read_buf(buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return Head::Closed,
                Err(_) => {
                    self.closed.with_label_values(&["slow_head"]).inc();
                    log::info!(
                        "closing a connection whose request head took over {:?} ({} bytes)",
                        self.limits.header_timeout,
                        buf.len()
                    );
                    let err = ApiError::new(
                        http::StatusCode::REQUEST_TIMEOUT,
                        "request headers too slow",
                    );
                    write_refusal(&mut stream, &err).await;
                    return Head::Closed;
                }
            }
        }
        Head::Ready(stream)
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for HeaderDeadline<A> {
    /// The HTTP/1 keep-alive loop of pingora's `HttpServerApp`, with the head wait
    /// in front of every request; on the TLS listener, the handshake first, and h2
    /// connections to the inner app's own h2 loop.
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut stream = match &self.tls {
            Some(edge) if edge.owns(&stream) => match edge.accept(stream).await {
                Accepted::Http1(s) => s,
                Accepted::H2(s) => return ServerApp::process_new(&self.inner, s, shutdown).await,
                Accepted::Closed => return None,
            },
            _ => stream,
        };
        let mut settings: Option<HttpPersistentSettings> = None;
        let mut buf = BytesMut::new();
        let mut reused = false;
        let request_limit = self
            .inner
            .server_options()
            .and_then(|o| o.keepalive_request_limit);
        let mut answered: u32 = 0;
        loop {
            stream = match self.await_head(stream, shutdown, reused, &mut buf).await {
                Head::Ready(s) => s,
                Head::Closed => return None,
            };
            reused = true;
            if let Some(lane) = &self.lane {
                if let Some(request) = lane::take(&buf) {
                    answered = answered.saturating_add(1);
                    let reuse = !*shutdown.borrow() && request_limit.is_none_or(|l| answered < l);
                    let head = buf.split_to(request.len).freeze();
                    if !lane.answer(&mut stream, head, request, reuse).await {
                        return None;
                    }
                    continue;
                }
            }
            if !buf.is_empty() {
                stream = rewind(stream, &buf)?;
                buf.clear();
            }
            let mut session = ServerSession::new_http1(stream);
            match settings.take() {
                Some(s) => s.apply_to_session(&mut session),
                None => {
                    let keepalive = if *shutdown.borrow() {
                        None
                    } else {
                        Some(self.limits.idle_timeout.as_secs())
                    };
                    session.set_keepalive(keepalive);
                    session.set_keepalive_reuses_remaining(request_limit);
                }
            }
            let reused_stream = self.inner.process_new_http(session, shutdown).await?;
            let (next, next_settings) = reused_stream.consume();
            stream = next;
            settings = next_settings;
        }
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_a_head() {
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
        assert!(head_complete(b"GET / HTTP/1.1\nHost: x\n\n", 0));
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(
            head_complete(head, head.len() - 2),
            "a terminator split across reads"
        );
    }
}
