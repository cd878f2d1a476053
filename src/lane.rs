//! The `/file` routes answered on the connection itself. The head wait
//! (`header_deadline`) has already read a request's head whole; a `/file` request
//! without a body is parsed here once and answered by the same [`FileGate`] as
//! through pingora, without pingora's HTTP/1 session around it: the head is not
//! handed back and read again, and no proxy session, cache state or module context is
//! built and moved for a request that is never proxied. Everything else (other paths,
//! bodies, upgrades, `Expect`, absolute-form targets, heads httparse refuses) goes to
//! pingora untouched.
//!
//! The answer is framed as pingora frames it: the same `Date` and `Connection`
//! headers, no body after a `HEAD`, `204` or `304`, `Content-Length` bodies (a head
//! without one is close-delimited), keep-alive as HTTP/1.0 and 1.1 ask. The gate's
//! `logging` records the metrics and access log line of each request.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE};
use http::{HeaderName, HeaderValue, StatusCode, Version};
use pingora_core::protocols::l4::socket::SocketAddr;
use pingora_core::protocols::Stream;
use pingora_error::{Error, ErrorType};
use pingora_http::{RequestHeader, ResponseHeader};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;
use crate::gate::FileGate;
use crate::http::envelope::write_refusal;
use crate::http::exchange::Exchange;

/// Most header lines a request on the lane may carry; a head with more goes to pingora.
const MAX_HEADERS: usize = 48;

/// A head the lane takes: where its parts are in the buffer.
pub struct LaneRequest {
    /// The head's length, up to and including its empty line.
    pub len: usize,
    /// The request line (its headers are added from the head's bytes).
    req: RequestHeader,
    headers: Vec<(Range<usize>, Range<usize>)>,
    /// Whether the client asked to keep the connection (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    keep_alive: bool,
}

/// The `/file` component as a host of its own on HTTP/1 connections.
pub struct FileLane {
    gate: Arc<FileGate>,
}

impl FileLane {
    /// A lane answering with `gate`.
    pub fn new(gate: Arc<FileGate>) -> Self {
        FileLane { gate }
    }

    /// Answers `request` (from [`take`]), whose head is `head`, on `stream`. Returns whether the
    /// connection can carry another request; `reuse` is whether the server allows it
    /// (not shutting down, under the request limit).
    pub async fn answer(
        &self,
        stream: &mut Stream,
        head: Bytes,
        request: LaneRequest,
        reuse: bool,
    ) -> bool {
        let Some(req) = with_headers(&head, request.req, &request.headers) else {
            // httparse and the http crate disagree on a header: answer as pingora would.
            let err = ApiError::new(http::StatusCode::BAD_REQUEST, "malformed request header");
            write_refusal(stream, &err).await;
            return false;
        };
        let peer = stream.get_socket_digest();
        let mut exchange = LaneExchange {
            stream,
            peer: peer.as_ref().and_then(|d| d.peer_addr()),
            req,
            response: None,
            body: BodyFraming::Unset,
            sent: 0,
            keep_alive: reuse && request.keep_alive,
        };
        let mut ctx = self.gate.new_ctx();
        let error = match self.gate.request_filter(&mut exchange, &mut ctx).await {
            Ok(_) => None,
            Err(e) => {
                // As pingora's proxy logs a failed request filter (the summary redacted).
                log::error!(
                    "Fail to filter request: {e}, status: 0, {}",
                    crate::redact::redact(&exchange.summary())
                );
                Some(e)
            }
        };
        self.gate.logging(&exchange, error.as_deref(), &ctx);
        error.is_none() && exchange.reusable()
    }
}

/// The request at the start of `buf` if the lane answers it: a complete head on a
/// `/file` path, HTTP/1.0 or 1.1, without a body, an upgrade or `Expect`.
pub fn take(buf: &[u8]) -> Option<LaneRequest> {
    let mut parsed = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut parsed);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    let path = req.path?;
    if !(path == "/file" || path.starts_with("/file/") || path.starts_with("/file?")) {
        return None;
    }
    let version = match req.version? {
        1 => Version::HTTP_11,
        0 => Version::HTTP_10,
        _ => return None,
    };
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let mut keep_alive = version == Version::HTTP_11;
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"upgrade")
            || name.eq_ignore_ascii_case(b"expect")
            || (name.eq_ignore_ascii_case(b"content-length") && h.value.trim_ascii() != b"0")
        {
            return None;
        }
        if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
        headers.push((at(name), at(h.value)));
    }
    // A target the http crate refuses (pingora escapes it first) stays with pingora.
    let mut line =
        RequestHeader::build_no_case(req.method?, path.as_bytes(), Some(headers.len())).ok()?;
    line.set_version(version);
    Some(LaneRequest {
        len,
        req: line,
        headers,
        keep_alive,
    })
}

/// The request line with its headers, their values sharing the head's bytes.
fn with_headers(
    head: &Bytes,
    mut req: RequestHeader,
    headers: &[(Range<usize>, Range<usize>)],
) -> Option<RequestHeader> {
    for (name, value) in headers {
        let name = HeaderName::from_bytes(&head[name.clone()]).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(value.clone())).ok()?;
        req.append_header(name, value).ok()?;
    }
    Some(req)
}

/// How the response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    /// No head written yet.
    Unset,
    /// No body (`HEAD`, `204`, `304`): body pieces are dropped.
    Empty,
    /// `Content-Length` bytes still to send.
    Length(u64),
    /// Until the connection closes.
    UntilClose,
}

/// One request on the lane and the answer written to its connection. Writes go into
/// the stream's write buffer; the end of the answer flushes it (a head and a small
/// body leave in one send, as through pingora).
struct LaneExchange<'a> {
    stream: &'a mut Stream,
    peer: Option<&'a SocketAddr>,
    req: RequestHeader,
    response: Option<Box<ResponseHeader>>,
    body: BodyFraming,
    sent: usize,
    keep_alive: bool,
}

impl LaneExchange<'_> {
    /// pingora's request summary (method, path, host) for error lines.
    fn summary(&self) -> String {
        let host = self
            .req
            .headers
            .get(http::header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .unwrap_or_default();
        format!("{} {}, Host: {host}", self.req.method, self.req.uri)
    }

    /// Whether the answer is complete and the connection may carry the next request.
    fn reusable(&self) -> bool {
        self.keep_alive
            && match self.body {
                BodyFraming::Empty => true,
                BodyFraming::Length(left) => left == 0,
                BodyFraming::Unset | BodyFraming::UntilClose => false,
            }
    }

    async fn flush(&mut self) -> pingora_core::Result<()> {
        self.stream
            .flush()
            .await
            .map_err(|e| Error::because(ErrorType::WriteError, "flushing the answer", e))
    }
}

#[async_trait]
impl Exchange for LaneExchange<'_> {
    fn req_header(&self) -> &RequestHeader {
        &self.req
    }

    fn client_addr(&self) -> Option<&SocketAddr> {
        self.peer
    }

    fn response_written(&self) -> Option<&ResponseHeader> {
        self.response.as_deref()
    }

    fn body_bytes_sent(&self) -> usize {
        self.sent
    }

    async fn write_response_header(
        &mut self,
        mut resp: Box<ResponseHeader>,
        end_of_stream: bool,
    ) -> pingora_core::Result<()> {
        if self.response.is_some() {
            log::warn!("Respond header is already sent, cannot send again");
            return Ok(());
        }
        let no_body = matches!(
            resp.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        ) || self.req.method == http::Method::HEAD;
        let length = resp
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        self.body = match (no_body, length) {
            (true, _) => BodyFraming::Empty,
            (false, Some(n)) => BodyFraming::Length(n),
            (false, None) => {
                self.keep_alive = false;
                BodyFraming::UntilClose
            }
        };
        resp.insert_header(DATE, pingora_core::protocols::http::date::get_cached_date())?;
        let connection = if self.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        resp.insert_header(CONNECTION, connection)?;

        let mut head = BytesMut::with_capacity(1024);
        head.put_slice(match resp.version {
            Version::HTTP_10 => b"HTTP/1.0 ",
            _ => b"HTTP/1.1 ",
        });
        head.put_slice(resp.status.as_str().as_bytes());
        head.put_u8(b' ');
        if let Some(reason) = resp.get_reason_phrase() {
            head.put_slice(reason.as_bytes());
        }
        head.put_slice(b"\r\n");
        resp.header_to_h1_wire(&mut head);
        head.put_slice(b"\r\n");
        self.stream
            .write_all(&head)
            .await
            .map_err(|e| Error::because(ErrorType::WriteError, "writing response header", e))?;
        self.response = Some(resp);
        // A head without a length may be a slow answer's start: send it now.
        if end_of_stream || self.body == BodyFraming::Empty || length.is_none() {
            self.flush().await?;
        }
        Ok(())
    }

    async fn write_response_body(
        &mut self,
        body: Option<Bytes>,
        end_of_stream: bool,
    ) -> pingora_core::Result<()> {
        if let Some(piece) = body {
            let piece = match self.body {
                BodyFraming::Unset => {
                    return Error::e_explain(ErrorType::WriteError, "a body before its head")
                }
                BodyFraming::Empty => Bytes::new(),
                BodyFraming::Length(left) => {
                    let take = piece.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.body = BodyFraming::Length(left - take as u64);
                    piece.slice(..take)
                }
                BodyFraming::UntilClose => piece,
            };
            if !piece.is_empty() {
                self.stream.write_all(&piece).await.map_err(|e| {
                    Error::because(ErrorType::WriteError, "writing response body", e)
                })?;
                self.sent += piece.len();
            }
        }
        if end_of_stream {
            self.flush().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane_takes(head: &str) -> Option<LaneRequest> {
        take(head.as_bytes())
    }

    #[test]
    fn takes_file_requests_without_a_body_and_leaves_the_rest() {
        let r = lane_takes("GET /file/download/chat?file_sign=x HTTP/1.1\r\nHost: a\r\n\r\nGET /")
            .expect("taken");
        assert_eq!(r.len, 57, "the head alone, not the next request's start");
        assert!(r.keep_alive);
        assert!(lane_takes("GET /file HTTP/1.0\r\n\r\n").is_some_and(|r| !r.keep_alive));
        assert!(
            lane_takes("GET /file HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .is_some_and(|r| r.keep_alive)
        );
        assert!(
            lane_takes("GET /file/x HTTP/1.1\r\nConnection: close\r\n\r\n")
                .is_some_and(|r| !r.keep_alive)
        );
        assert!(lane_takes("POST /file/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
        for other in [
            "GET /bucket/key HTTP/1.1\r\n\r\n",
            "GET /files HTTP/1.1\r\n\r\n",
            "GET http://a/file/x HTTP/1.1\r\n\r\n",
            "POST /file/x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            "POST /file/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /file/x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "GET /file/x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /file/x HTTP/1.1\r\nHost: a\r\n",
        ] {
            assert!(lane_takes(other).is_none(), "{other}");
        }
    }
}
