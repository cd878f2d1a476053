//! The embedded store's HTTP side: everything outside `/file/` in the embedded shape.
//! It speaks a small S3 subset: `POST /` form uploads (both dialects), presigned `PUT`
//! and `GET`/`HEAD` of `/<key>`, CORS preflight, and S3-style XML errors.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::Method;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use crate::front::form_upload;
use crate::front::s3_error::{write_s3_error, S3Refusal};
use crate::http::envelope::write_small;
use crate::metrics::Metrics;
use crate::services::Services;
use crate::storage::embedded::EmbeddedStore;
use crate::storage::keys::ObjectKey;
use crate::storage::sigv4::request_url;

/// Answers store requests in the embedded shape.
pub struct EmbeddedStoreServer {
    store: Arc<EmbeddedStore>,
    services: Arc<Services>,
    metrics: Arc<Metrics>,
}

impl EmbeddedStoreServer {
    /// A server over `store`; its presigned GETs are served through the services'
    /// edge cache like any original.
    pub fn new(store: Arc<EmbeddedStore>, services: Arc<Services>) -> Self {
        EmbeddedStoreServer {
            store,
            metrics: services.metrics.clone(),
            services,
        }
    }

    /// Answers one request; returns the status written.
    pub async fn handle(&self, session: &mut Session) -> pingora_core::Result<u16> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let result = match method {
            Method::OPTIONS => return write_preflight(session).await,
            Method::POST if path == "/" => {
                return form_upload::receive(&self.store, &self.services, session).await
            }
            Method::PUT => self.put(session, &path).await,
            Method::GET | Method::HEAD if path == "/" => {
                // No listing: the store serves objects only (SPEC §1).
                let refusal = crate::error::ApiError::forbidden(
                    "the store serves objects only: a listing is refused",
                );
                return crate::http::envelope::write_error(session, &refusal, false).await;
            }
            Method::GET | Method::HEAD => self.get(session, &path).await,
            _ => Err(S3Refusal::new(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            )
            .into()),
        };
        match result {
            Ok(status) => Ok(status),
            Err(StoreFailure::Refused(r)) => {
                crate::front::unread_body::discard_unread_body(session).await;
                write_s3_error(session, &r).await
            }
            Err(StoreFailure::Aborted(e)) => Err(e),
        }
    }

    fn key_of(path: &str) -> Result<ObjectKey, S3Refusal> {
        let name = path.strip_prefix('/').unwrap_or(path);
        ObjectKey::parse(name)
            .map_err(|_| S3Refusal::new(400, "InvalidURI", "Couldn't parse the specified URI."))
    }

    fn verify(&self, session: &Session, method: &str) -> Result<(), S3Refusal> {
        let req = session.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        let url = request_url(
            host,
            req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        )?;
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(self
            .store
            .signer()
            .verify_presigned(method, &url, &header, SystemTime::now())?)
    }

    async fn get(&self, session: &mut Session, path: &str) -> Result<u16, StoreFailure> {
        let key = Self::key_of(path)?;
        // A HEAD may use a URL presigned for GET.
        let method = session.req_header().method.clone();
        if self.verify(session, method.as_str()).is_err() {
            self.verify(session, "GET")?;
        }
        Ok(crate::front::presigned_get::serve(&self.services, session, &key).await?)
    }

    async fn put(&self, session: &mut Session, path: &str) -> Result<u16, StoreFailure> {
        let key = Self::key_of(path)?;
        self.verify(session, "PUT")?;
        let headers = &session.req_header().headers;
        let length: u64 = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                S3Refusal::new(
                    411,
                    "MissingContentLength",
                    "You must provide the Content-Length HTTP header.",
                )
            })?;
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(crate::file_type::essence)
            .unwrap_or_else(|| "application/octet-stream".to_string());
        if self.store.exists(&key).await {
            return Err(S3Refusal::from_store(&crate::storage::StoreError::Exists).into());
        }
        let mut writer = self
            .store
            .begin_write(&key)
            .await
            .map_err(|e| S3Refusal::from_store(&e))?;
        let mut head = crate::media::sniff::SniffHead::default();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    head.feed(&chunk);
                    if writer.size() + chunk.len() as u64 > length {
                        return Err(S3Refusal::new(
                            400,
                            "IncompleteBody",
                            "The body is longer than Content-Length.",
                        )
                        .into());
                    }
                    writer
                        .write(&chunk)
                        .await
                        .map_err(|e| S3Refusal::new(500, "InternalError", e.to_string()))?;
                }
                Ok(None) => break,
                Err(e) => {
                    self.metrics
                        .store_uploads
                        .with_label_values(&["aborted"])
                        .inc();
                    return Err(StoreFailure::Aborted(e));
                }
            }
        }
        if writer.size() != length {
            return Err(S3Refusal::new(400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.").into());
        }
        let meta = writer
            .commit(&content_type, None)
            .await
            .map_err(|e| S3Refusal::from_store(&e))?;
        self.metrics.store_uploads.with_label_values(&["ok"]).inc();
        self.services
            .eager
            .submit(&self.services.config, &key, head.bytes());
        let mut resp = ResponseHeader::build_no_case(200, Some(4))?;
        resp.insert_header("ETag", &meta.etag)?;
        resp.insert_header("Access-Control-Expose-Headers", "ETag")?;
        write_small(session, resp, Bytes::new()).await?;
        Ok(200)
    }
}

/// A store request that failed: answer the refusal, or drop the connection.
enum StoreFailure {
    Refused(S3Refusal),
    Aborted(Box<pingora_error::Error>),
}

impl From<S3Refusal> for StoreFailure {
    fn from(r: S3Refusal) -> Self {
        StoreFailure::Refused(r)
    }
}

impl From<Box<pingora_error::Error>> for StoreFailure {
    fn from(e: Box<pingora_error::Error>) -> Self {
        StoreFailure::Aborted(e)
    }
}

/// CORS preflight: any origin may upload with the signed form or URL it was handed.
async fn write_preflight(session: &mut Session) -> pingora_core::Result<u16> {
    let requested = session
        .req_header()
        .headers
        .get("access-control-request-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("content-type")
        .to_string();
    let mut resp = ResponseHeader::build_no_case(200, Some(6))?;
    resp.insert_header("Access-Control-Allow-Methods", "GET, HEAD, PUT, POST")?;
    resp.insert_header("Access-Control-Allow-Headers", requested)?;
    resp.insert_header("Access-Control-Expose-Headers", "ETag")?;
    resp.insert_header("Access-Control-Max-Age", "86400")?;
    write_small(session, resp, Bytes::new()).await?;
    Ok(200)
}
