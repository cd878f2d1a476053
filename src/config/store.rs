//! Storage settings (`store:`): the embedded store or an S3-compatible one.

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use super::error::ConfigError;
use super::values::validate_base_url;

/// Which store implementation backs the objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A local directory served by filegate itself.
    Embedded,
    /// Any S3-compatible object store.
    S3,
}

/// The form-field dialect handed out for POST uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostDialect {
    /// Alibaba OSS PostObject V1 (`OSSAccessKeyId`, `policy`, `signature`).
    Oss,
    /// S3 SigV4 browser POST (`x-amz-*`).
    S3,
}

/// Storage settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `embedded` or `s3`.
    pub kind: StoreKind,
    /// Embedded only: the directory that holds the objects.
    pub dir: PathBuf,
    /// Form fields handed out for POST uploads. Default: `oss` for the embedded
    /// store (the product's clients speak it), `s3` for an S3 store.
    pub dialect: Option<PostDialect>,
    /// S3 only: the store's endpoint as filegate reaches it.
    pub endpoint: String,
    /// S3 only: the endpoint clients use for uploads and presigned downloads,
    /// when it differs from `endpoint` (default: `endpoint`).
    pub public_endpoint: Option<String>,
    /// S3 only: signing region.
    pub region: String,
    /// S3 only: the bucket.
    pub bucket: String,
    /// S3 access key id (env `FILEGATE_S3_ACCESS_KEY_ID` overrides). The embedded
    /// store signs its own URLs with this pair too; unset, it uses a random key
    /// kept in `<dir>/.store-key`.
    pub access_key_id: String,
    /// S3 secret (env `FILEGATE_S3_SECRET_ACCESS_KEY` overrides).
    pub secret_access_key: String,
    /// S3 only: `https://endpoint/bucket/key` (true) or `https://bucket.endpoint/key`.
    pub path_style: bool,
    /// Upstream connect timeout.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Upstream read timeout (time to first byte and between body chunks).
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Slowest body a store may send while filegate waits on it (averaged over the
    /// waiting time, checked once that exceeds `read_timeout`); slower is cut off
    /// as a timeout, so a dripping store cannot hold a download open forever.
    pub min_transfer_rate: ByteSize,
    /// S3 only: sign `If-None-Match: *` into presigned PUT grants, so a store with
    /// conditional writes (AWS S3, SeaweedFS, MinIO) refuses a replayed grant instead
    /// of overwriting the object. Turn off only for a store that rejects the header.
    pub conditional_put: bool,
    /// Extra CA certificates (PEM, every certificate in the file) trusted for an
    /// `https://` endpoint, beside the system roots; empty or absent: system roots only.
    pub ca_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Embedded,
            dir: PathBuf::from("./data"),
            dialect: None,
            endpoint: String::new(),
            public_endpoint: None,
            region: "us-east-1".into(),
            bucket: "filegate".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: true,
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(30),
            min_transfer_rate: ByteSize::kib(16),
            conditional_put: true,
            ca_file: None,
        }
    }
}

impl StoreConfig {
    /// `ca_file`, when set to a path.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// Whether filegate reaches the store over TLS.
    pub fn endpoint_is_https(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    /// The POST dialect in effect, after the per-kind default.
    pub fn post_dialect(&self) -> PostDialect {
        self.dialect.unwrap_or(match self.kind {
            StoreKind::Embedded => PostDialect::Oss,
            StoreKind::S3 => PostDialect::S3,
        })
    }
}

impl StoreConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.kind {
            StoreKind::Embedded => {
                if self.dir.as_os_str().is_empty() {
                    return Err(ConfigError::new("store.dir", "must not be empty"));
                }
            }
            StoreKind::S3 => {
                validate_base_url("store.endpoint", &self.endpoint)?;
                if let Some(public) = &self.public_endpoint {
                    validate_base_url("store.public_endpoint", public)?;
                }
                if self.region.is_empty() {
                    return Err(ConfigError::new("store.region", "must not be empty"));
                }
                validate_bucket(&self.bucket)?;
                if self.access_key_id.is_empty() {
                    return Err(ConfigError::new(
                        "store.access_key_id",
                        "required for an s3 store (or env FILEGATE_S3_ACCESS_KEY_ID)",
                    ));
                }
                if self.secret_access_key.is_empty() {
                    return Err(ConfigError::new(
                        "store.secret_access_key",
                        "required for an s3 store (or env FILEGATE_S3_SECRET_ACCESS_KEY)",
                    ));
                }
            }
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::new("store.connect_timeout", "must be above 0"));
        }
        if self.read_timeout.is_zero() {
            return Err(ConfigError::new("store.read_timeout", "must be above 0"));
        }
        Ok(())
    }
}

pub(super) fn validate_bucket(bucket: &str) -> Result<(), ConfigError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "store.bucket",
            "a bucket name is 3-63 of a-z 0-9 - .",
        ))
    }
}
