//! The `filegate` binary's own host: a [`ProxyHttp`] whose phases only delegate.
//! `/file` requests go to [`FileGate`], requests between cluster nodes to
//! [`crate::routes::peer_request`], everything else to the store's front
//! ([`StoreFront::take`]: the embedded store, or upstream to the S3 store through the
//! pass-through, whose uploads the store answers 2xx are handed to eager derivation,
//! [`UploadWatch`]).

use std::sync::Arc;

use async_trait::async_trait;
use http::Method;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

use crate::cache::CacheStatus;
use crate::error::ApiError;
use crate::front::upload_watch::UploadWatch;
use crate::front::{Outside, StoreFront};
use crate::gate::{FileGate, GateCtx};
use crate::http::envelope::write_error;

/// Per-request state of the host: the gate's, and what the pass-through learns of an
/// upload it forwards.
#[derive(Debug)]
pub struct HostCtx {
    gate: GateCtx,
    upload: UploadWatch,
}

/// The binary's proxy service.
pub struct FileGateProxy {
    gate: Arc<FileGate>,
    front: StoreFront,
}

impl FileGateProxy {
    /// A host over `gate` with `front` for everything else.
    pub fn new(gate: Arc<FileGate>, front: StoreFront) -> Self {
        FileGateProxy { gate, front }
    }
}

impl FileGateProxy {
    /// Whether any app makes eager results (else uploads are not watched at all).
    fn eager_on(&self) -> bool {
        self.gate
            .services()
            .config
            .apps
            .values()
            .any(|app| !app.eager.is_empty())
    }
}

#[async_trait]
impl ProxyHttp for FileGateProxy {
    type CTX = HostCtx;

    fn new_ctx(&self) -> HostCtx {
        HostCtx {
            gate: self.gate.new_ctx(),
            upload: UploadWatch::Nothing,
        }
    }

    /// `/file` → the gate; `/_cluster/` → the peer handlers; the rest → the embedded
    /// store, or on to `upstream_peer`.
    async fn request_filter(
        &self,
        session: &mut Session,
        host: &mut HostCtx,
    ) -> pingora_core::Result<bool> {
        if self.gate.request_filter(session, &mut host.gate).await? {
            return Ok(true);
        }
        let services = self.gate.services();
        if let Some(status) = crate::routes::peer_request(services, session).await? {
            host.gate.record_answer("cluster", status);
            return Ok(true);
        }
        // Every request by client address but the nodes' own (`/_cluster/`, answered
        // above, or refused as outside the bucket without a cluster).
        let limits = &services.rate_limits;
        let exempt = session.req_header().uri.path().starts_with("/_cluster/");
        let route = match self.front {
            StoreFront::Embedded(_) => "store",
            StoreFront::Upstream(_) => "passthrough",
        };
        let client = limits.client_ip(crate::gate::peer_ip(session), &session.req_header().headers);
        if let Err(refusal) = limits.check_ip(client.filter(|_| !exempt), route) {
            let status = write_error(session, &refusal, false).await?;
            host.gate.record_answer(route, status);
            return Ok(true);
        }
        match self.front.take(services, session, self.eager_on()).await? {
            Outside::Answered { route, status } => {
                host.gate.record_answer(route, status);
                Ok(true)
            }
            Outside::Forward(watch) => {
                host.upload = watch;
                Ok(false)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut HostCtx,
    ) -> pingora_core::Result<Box<HttpPeer>> {
        match &self.front {
            StoreFront::Upstream(pass) => Ok(Box::new(pass.peer())),
            StoreFront::Embedded(_) => Err(Error::explain(
                ErrorType::InternalError,
                "embedded store requests are answered in request_filter",
            )),
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut HostCtx,
    ) -> pingora_core::Result<()> {
        if let StoreFront::Upstream(pass) = &self.front {
            pass.rewrite_request(upstream_request)?;
        }
        Ok(())
    }

    /// Lets an upload's body stream on to the store untouched, noting its beginning
    /// (the key of a form, the file's first bytes) for eager derivation.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut HostCtx,
    ) -> pingora_core::Result<()> {
        ctx.upload.feed(body.as_ref(), end_of_stream);
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut HostCtx,
    ) -> pingora_core::Result<()> {
        match &self.front {
            StoreFront::Upstream(pass) => {
                if upstream_response.status.is_success() {
                    // The store took the upload: its eager results can be made.
                    if let Some((key, head)) = ctx.upload.completed() {
                        let services = self.gate.services();
                        services.eager.submit(&services.config, &key, &head);
                    }
                }
                let method = &session.req_header().method;
                if method == Method::GET || method == Method::HEAD {
                    // Forwarded, so not from the cache.
                    upstream_response
                        .insert_header("X-Cache-Status", CacheStatus::Bypass.as_str())?;
                }
                pass.rewrite_response(upstream_response)
            }
            StoreFront::Embedded(_) => Ok(()),
        }
    }

    /// Store failures on pass-through answer the envelope: 504 on timeouts, else 502
    /// (a store certificate that did not verify says so).
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut HostCtx,
    ) -> FailToProxy {
        let err = match e.etype() {
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
                ApiError::store_timeout(e)
            }
            ErrorType::InvalidCert => ApiError::store_untrusted(e),
            ErrorType::TLSHandshakeFailure
                if e.to_string().contains("invalid peer certificate") =>
            {
                ApiError::store_untrusted(e)
            }
            ErrorType::HTTPStatus(code) if *code < 500 => ApiError::new(
                http::StatusCode::from_u16(*code).unwrap_or(http::StatusCode::BAD_REQUEST),
                "bad request",
            ),
            _ if e.esource() == &pingora_error::ErrorSource::Downstream => {
                return FailToProxy {
                    error_code: 0,
                    can_reuse_downstream: false,
                }
            }
            _ => ApiError::store_failed(e),
        };
        let code = if session.response_written().is_none() {
            write_error(session, &err, false).await.unwrap_or(0)
        } else {
            0
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// pingora logs this summary with its errors: credentials in the query or
    /// headers are redacted.
    fn request_summary(&self, session: &Session, _ctx: &HostCtx) -> String {
        crate::redact::redact(&session.as_ref().request_summary()).into_owned()
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut HostCtx) {
        self.gate.logging(session, e, &ctx.gate);
    }
}
