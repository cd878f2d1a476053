//! [`Exchange`]: one request and the answer being written to it, as the `/file`
//! handlers see them. pingora's proxy [`Session`] is one; the other is the head wait's
//! own HTTP/1 answer (`crate::lane`), which serves the `/file` routes before pingora
//! builds a session. The handlers are written once, against this trait.

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::protocols::l4::socket::SocketAddr;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

/// A request and its answer.
#[async_trait]
pub trait Exchange: Send {
    /// The request head.
    fn req_header(&self) -> &RequestHeader;

    /// The address of the connection's peer.
    fn client_addr(&self) -> Option<&SocketAddr>;

    /// The response head, once written.
    fn response_written(&self) -> Option<&ResponseHeader>;

    /// Body bytes written so far.
    fn body_bytes_sent(&self) -> usize;

    /// Writes the response head; `end_of_stream` when no body follows.
    async fn write_response_header(
        &mut self,
        resp: Box<ResponseHeader>,
        end_of_stream: bool,
    ) -> pingora_core::Result<()>;

    /// Writes a piece of the body; `end_of_stream` with the last one (or with `None`).
    async fn write_response_body(
        &mut self,
        body: Option<Bytes>,
        end_of_stream: bool,
    ) -> pingora_core::Result<()>;
}

#[async_trait]
impl Exchange for Session {
    fn req_header(&self) -> &RequestHeader {
        self.as_ref().req_header()
    }

    fn client_addr(&self) -> Option<&SocketAddr> {
        self.as_ref().client_addr()
    }

    fn response_written(&self) -> Option<&ResponseHeader> {
        self.as_ref().response_written()
    }

    fn body_bytes_sent(&self) -> usize {
        self.as_ref().body_bytes_sent()
    }

    async fn write_response_header(
        &mut self,
        resp: Box<ResponseHeader>,
        end_of_stream: bool,
    ) -> pingora_core::Result<()> {
        Session::write_response_header(self, resp, end_of_stream).await
    }

    async fn write_response_body(
        &mut self,
        body: Option<Bytes>,
        end_of_stream: bool,
    ) -> pingora_core::Result<()> {
        Session::write_response_body(self, body, end_of_stream).await
    }
}
