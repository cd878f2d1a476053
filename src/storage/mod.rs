//! Object storage behind one interface, [`ObjectStore`], with two implementations:
//! [`embedded`] (a local directory that filegate serves itself) and [`s3`] (any
//! S3-compatible store). [`keys`] owns the key grammar, [`post_policy`] the signed
//! upload forms both dialects hand out, and [`range`] byte ranges.

pub mod embedded;
pub mod keys;
pub mod metered;
pub mod min_rate;
pub mod post_policy;
pub mod range;
pub mod s3;
pub mod sigv4;
pub mod tls_roots;

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::config::UploadMethod;
use crate::error::ApiError;
use keys::ObjectKey;
pub use range::ByteRange;

/// What is known of a stored object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// Strong ETag, quoted (`"…"`).
    pub etag: String,
    /// Content type as stored.
    pub content_type: String,
    /// The uploader's file name, when the store kept it.
    pub original_name: Option<String>,
    /// Last modification, HTTP-date.
    pub last_modified: Option<String>,
}

/// How a store presents an object it serves straight to a client from a presigned
/// URL (redirect mode). A store adds no CSP of its own, so anything a browser could
/// execute must come as an attachment of a type no browser runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct DownloadView<'a> {
    /// Offer the bytes as an attachment of this name.
    pub file_name: Option<&'a str>,
    /// Offer them as an attachment even without a name.
    pub attachment: bool,
    /// Answer with this `Content-Type` instead of the stored one.
    pub content_type: Option<&'a str>,
}

impl DownloadView<'_> {
    /// For plain files (whatever their stored type): an attachment of a type no
    /// browser executes.
    pub const SAFE_ATTACHMENT_TYPE: &'static str = "application/octet-stream";
}

/// A body being read from the store, chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// Options of a read.
#[derive(Debug, Clone, Default)]
pub struct GetRequest {
    /// One byte range (multi-range requests are served whole).
    pub range: Option<ByteRange>,
    /// `If-None-Match` as sent by the client.
    pub if_none_match: Option<String>,
}

/// An object body: the object's metadata, the range served (inclusive), the bytes.
pub struct ObjectBody {
    /// The object.
    pub meta: ObjectMeta,
    /// `Some((first, last))` when a range is served.
    pub range: Option<(u64, u64)>,
    /// The bytes.
    pub stream: ByteStream,
}

/// The result of a read.
pub enum GetOutcome {
    /// `If-None-Match` matched.
    NotModified(ObjectMeta),
    /// The bytes.
    Body(ObjectBody),
}

/// How an upload's content type is constrained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRule {
    /// Exactly this type.
    Exact(String),
    /// One of these types.
    OneOf(Vec<String>),
    /// Any well-formed type.
    Any,
}

/// What a signed upload allows (SPEC §5).
#[derive(Debug, Clone)]
pub struct UploadRequest {
    /// The one key it may write.
    pub key: ObjectKey,
    /// POST form or presigned PUT.
    pub method: UploadMethod,
    /// The content type handed to the client (the form field or PUT header).
    pub content_type: String,
    /// What the store accepts.
    pub type_rule: TypeRule,
    /// Largest size in bytes.
    pub max_size: u64,
    /// Exact size, when the client told it (signed into PUT uploads).
    pub size: Option<u64>,
    /// How long the grant is valid.
    pub expires_in: Duration,
}

/// A signed upload handed to the client.
#[derive(Debug, Clone)]
pub struct UploadGrant {
    /// The URL to POST or PUT to.
    pub url: String,
    /// POST: form fields before `file`; PUT: headers to send.
    pub fields: BTreeMap<String, String>,
}

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No such object.
    NotFound,
    /// The range starts past the end.
    RangeNotSatisfiable {
        /// The object's size.
        size: u64,
    },
    /// The object exists and is never overwritten: an upload grant writes once (412).
    Exists,
    /// The store refused or failed (502).
    Failed(String),
    /// The store did not answer in time (504).
    Timeout(String),
    /// The store's TLS certificate did not verify against the trusted roots (502):
    /// nothing was sent to it.
    Untrusted(String),
    /// A local I/O failure or bug (500).
    Internal(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("no such object"),
            StoreError::Exists => f.write_str("the object exists and is never overwritten"),
            StoreError::RangeNotSatisfiable { size } => {
                write!(f, "range not satisfiable (size {size})")
            }
            StoreError::Failed(d) => write!(f, "store failed: {d}"),
            StoreError::Timeout(d) => write!(f, "store timed out: {d}"),
            StoreError::Untrusted(d) => write!(f, "store certificate did not verify: {d}"),
            StoreError::Internal(d) => write!(f, "store internal error: {d}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::not_found("no such object"),
            StoreError::Exists => ApiError::new(
                http::StatusCode::PRECONDITION_FAILED,
                "the object exists: an upload grant writes its key once",
            ),
            StoreError::RangeNotSatisfiable { .. } => ApiError::new(
                http::StatusCode::RANGE_NOT_SATISFIABLE,
                "range not satisfiable",
            ),
            StoreError::Failed(d) => ApiError::store_failed(d),
            StoreError::Timeout(d) => ApiError::store_timeout(d),
            StoreError::Untrusted(d) => ApiError::store_untrusted(d),
            StoreError::Internal(d) => ApiError::internal(d),
        }
    }
}

/// An object store.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The object's metadata.
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError>;

    /// Reads the object (or a range of it), honouring `If-None-Match`.
    async fn get(&self, key: &ObjectKey, req: GetRequest) -> Result<GetOutcome, StoreError>;

    /// Writes a small object whole (derived results).
    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError>;

    /// A short-lived URL that reads the object directly from the store, presented as
    /// `view` says.
    fn presign_get(
        &self,
        key: &ObjectKey,
        ttl: Duration,
        view: &DownloadView<'_>,
    ) -> Result<String, StoreError>;

    /// A signed upload of exactly `req.key`.
    fn upload_grant(&self, req: &UploadRequest) -> Result<UploadGrant, StoreError>;
}
