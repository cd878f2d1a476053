//! The S3 store: any S3-compatible object store (AWS S3, OSS in S3 mode, MinIO,
//! Garage, s3s), path-style or virtual-host, requests signed with SigV4 through the
//! `aws-sigv4` crate; bodies streamed with `reqwest`.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::config::{Secret, StoreConfig, UploadMethod};
use crate::storage::embedded::put_grant;
use crate::storage::keys::ObjectKey;
use crate::storage::min_rate::enforce_min_rate;
use crate::storage::post_policy::form_fields;
use crate::storage::range::parse_content_range;
use crate::storage::sigv4::S3Signer;
use crate::storage::tls_roots::StoreRoots;
use crate::storage::{
    DownloadView, GetOutcome, GetRequest, ObjectBody, ObjectMeta, ObjectStore, StoreError,
    UploadGrant, UploadRequest,
};

/// An S3-compatible store.
pub struct S3Store {
    client: reqwest::Client,
    internal_base: String,
    public_base: String,
    bucket: String,
    path_style: bool,
    signer: S3Signer,
    dialect: crate::config::PostDialect,
    min_transfer_rate: u64,
    read_timeout: Duration,
    conditional_put: bool,
}

fn map_send_error(e: reqwest::Error) -> StoreError {
    // The URL stays out of the text: the store's request URLs never reach a log.
    let e = e.without_url();
    if let Some(why) = certificate_failure(&e) {
        StoreError::Untrusted(format!("{why} ({e})"))
    } else if e.is_timeout() {
        StoreError::Timeout(e.to_string())
    } else {
        StoreError::Failed(e.to_string())
    }
}

/// The rustls verdict when an error is a store certificate that did not verify. The
/// rustls error sits inside `io::Error`s of the connector, whose `source()` skips
/// their own inner error, so an `io::Error` is looked into rather than past.
fn certificate_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(
            tls @ (rustls::Error::InvalidCertificate(_)
            | rustls::Error::InvalidCertRevocationList(_)
            | rustls::Error::NoCertificatesPresented),
        ) = err.downcast_ref::<rustls::Error>()
        {
            return Some(tls.to_string());
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn meta_from(resp: &Response, size: u64) -> ObjectMeta {
    ObjectMeta {
        size,
        etag: header(resp, "etag").unwrap_or_default(),
        content_type: header(resp, "content-type")
            .unwrap_or_else(|| "application/octet-stream".into()),
        original_name: None,
        last_modified: header(resp, "last-modified"),
    }
}

async fn failure(resp: Response) -> StoreError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let snippet: String = body.chars().take(300).collect();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::GATEWAY_TIMEOUT {
        StoreError::Timeout(format!("store answered {status}: {snippet}"))
    } else {
        StoreError::Failed(format!("store answered {status}: {snippet}"))
    }
}

impl S3Store {
    /// A client for the configured store (no request is made yet). An `https://`
    /// endpoint is verified against `roots` (the system roots plus `store.ca_file`);
    /// without `roots`, the system roots alone.
    pub fn new(config: &StoreConfig, roots: Option<&StoreRoots>) -> Result<S3Store, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .https_only(config.endpoint_is_https());
        let loaded;
        let roots = match roots {
            Some(r) => Some(r),
            None if config.endpoint_is_https() => {
                loaded = StoreRoots::load(config.ca_file()).map_err(|e| e.to_string())?;
                Some(&loaded)
            }
            None => None,
        };
        if let Some(roots) = roots {
            builder = builder.use_preconfigured_tls(roots.client_config()?);
        }
        let client = builder
            .build()
            .map_err(|e| format!("store: cannot build the HTTP client: {e}"))?;
        let internal_base = config.endpoint.trim_end_matches('/').to_string();
        let public_base = config
            .public_endpoint
            .as_deref()
            .unwrap_or(&config.endpoint)
            .trim_end_matches('/')
            .to_string();
        Ok(S3Store {
            client,
            internal_base,
            public_base,
            bucket: config.bucket.clone(),
            path_style: config.path_style,
            signer: S3Signer::new(
                &config.access_key_id,
                Secret::new(config.secret_access_key.clone()),
                &config.region,
            ),
            dialect: config.post_dialect(),
            min_transfer_rate: config.min_transfer_rate.as_u64(),
            read_timeout: config.read_timeout,
            conditional_put: config.conditional_put,
        })
    }

    fn bucket_url(&self, base: &str) -> String {
        if self.path_style {
            format!("{base}/{}", self.bucket)
        } else {
            match base.split_once("://") {
                Some((scheme, host)) => format!("{scheme}://{}.{host}", self.bucket),
                None => format!("{}.{base}", self.bucket),
            }
        }
    }

    fn object_url(&self, base: &str, key: &ObjectKey) -> String {
        format!("{}/{}", self.bucket_url(base), key.as_str())
    }

    async fn send(
        &self,
        method: Method,
        key: &ObjectKey,
        headers: &[(&str, String)],
        signed_headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<Response, StoreError> {
        let url = self.object_url(&self.internal_base, key);
        let payload_hash = body.as_ref().map(|b| format!("{:x}", Sha256::digest(b)));
        let auth = self
            .signer
            .sign_headers(
                method.as_str(),
                &url,
                signed_headers,
                payload_hash.as_deref(),
                SystemTime::now(),
            )
            .map_err(StoreError::Internal)?;
        let mut request = self.client.request(method, &url);
        for (k, v) in signed_headers {
            request = request.header(*k, *v);
        }
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        for (k, v) in auth {
            request = request.header(k, v);
        }
        if let Some(b) = body {
            request = request.body(b);
        }
        request.send().await.map_err(map_send_error)
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        let resp = self.send(Method::HEAD, key, &[], &[], None).await?;
        match resp.status() {
            StatusCode::OK => {
                let size = header(&resp, "content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Ok(meta_from(&resp, size))
            }
            StatusCode::NOT_FOUND => Err(StoreError::NotFound),
            _ => Err(failure(resp).await),
        }
    }

    async fn get(&self, key: &ObjectKey, req: GetRequest) -> Result<GetOutcome, StoreError> {
        let mut headers = Vec::new();
        if let Some(r) = req.range {
            headers.push(("range", r.to_header()));
        }
        if let Some(inm) = &req.if_none_match {
            headers.push(("if-none-match", inm.clone()));
        }
        let resp = self.send(Method::GET, key, &headers, &[], None).await?;
        let status = resp.status();
        let (meta, range) = match status {
            StatusCode::OK => {
                let size = resp.content_length().unwrap_or(0);
                (meta_from(&resp, size), None)
            }
            StatusCode::PARTIAL_CONTENT => {
                let (first, last, size) = header(&resp, "content-range")
                    .and_then(|v| parse_content_range(&v))
                    .ok_or_else(|| {
                        StoreError::Failed("206 without a valid Content-Range".into())
                    })?;
                (meta_from(&resp, size), Some((first, last)))
            }
            StatusCode::NOT_MODIFIED => return Ok(GetOutcome::NotModified(meta_from(&resp, 0))),
            StatusCode::NOT_FOUND => return Err(StoreError::NotFound),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let size = header(&resp, "content-range")
                    .and_then(|v| v.rsplit('/').next().and_then(|s| s.parse().ok()));
                // Some stores omit the size; the 416 answer must carry it.
                let size = match size {
                    Some(s) => s,
                    None => self.head(key).await?.size,
                };
                return Err(StoreError::RangeNotSatisfiable { size });
            }
            _ => return Err(failure(resp).await),
        };
        // Not every store honours If-None-Match: compare the ETag here too (the body
        // is dropped unread, which closes that connection).
        if req
            .if_none_match
            .as_deref()
            .is_some_and(|inm| crate::headers::etag_matches(inm, &meta.etag))
        {
            return Ok(GetOutcome::NotModified(meta));
        }
        let stream = resp
            .bytes_stream()
            .map(|chunk| chunk.map_err(map_send_error));
        let stream = enforce_min_rate(Box::pin(stream), self.min_transfer_rate, self.read_timeout);
        Ok(GetOutcome::Body(ObjectBody {
            meta,
            range,
            stream,
        }))
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        let size = body.len() as u64;
        let resp = self
            .send(
                Method::PUT,
                key,
                &[],
                &[("content-type", content_type)],
                Some(body),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(failure(resp).await);
        }
        let mut meta = meta_from(&resp, size);
        meta.content_type = content_type.to_string();
        Ok(meta)
    }

    fn presign_get(
        &self,
        key: &ObjectKey,
        ttl: Duration,
        view: &DownloadView<'_>,
    ) -> Result<String, StoreError> {
        self.signer
            .presign_download(&self.object_url(&self.public_base, key), ttl, view)
            .map_err(StoreError::Internal)
    }

    fn upload_grant(&self, req: &UploadRequest) -> Result<UploadGrant, StoreError> {
        let now = SystemTime::now();
        match req.method {
            UploadMethod::Post => Ok(UploadGrant {
                url: self.bucket_url(&self.public_base),
                fields: form_fields(req, self.dialect, &self.signer, Some(&self.bucket), now),
            }),
            UploadMethod::Put => put_grant(
                &self.signer,
                &self.object_url(&self.public_base, &req.key),
                req,
                now,
                self.conditional_put,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::certificate_failure;

    #[test]
    fn finds_a_certificate_verdict_inside_nested_io_errors() {
        // As hyper-util hands it over: io::Error(Other, io::Error(InvalidData, rustls)).
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer = std::io::Error::other(inner);
        let why = certificate_failure(&outer).expect("found");
        assert!(why.contains("UnknownIssuer"), "{why}");
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(certificate_failure(&other).is_none());
        let handshake = std::io::Error::other(rustls::Error::HandshakeNotComplete);
        assert!(certificate_failure(&handshake).is_none());
    }
}
