//! The embedded store: objects in a local directory, served by filegate itself on its
//! own listener (the default shape, SPEC §1).
//!
//! Layout under `store.dir`: `objects/<key>` (the bytes), `meta/<key>.json` (content
//! type, size, strong ETag, original name), `tmp/` (writes in progress; swept at
//! start). Upload and download URLs are signed like S3's (SigV4 presigned PUT/GET,
//! POST policies in both dialects) with the store's own key pair.

pub mod meta;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::config::{Config, PostDialect, Secret, UploadMethod};
use crate::headers::etag_matches;
use crate::storage::keys::ObjectKey;
use crate::storage::post_policy::form_fields;
use crate::storage::sigv4::S3Signer;
use crate::storage::{
    ByteStream, DownloadView, GetOutcome, GetRequest, ObjectBody, ObjectMeta, ObjectStore,
    StoreError, UploadGrant, UploadRequest,
};
use meta::StoredMeta;
use writer::ObjectWriter;

/// Size of the chunks read from disk.
const READ_CHUNK: usize = 256 * 1024;
/// The access key id of the embedded store's own key pair, unless configured.
const EMBEDDED_KEY_ID: &str = "filegate-embedded";

/// The embedded store.
pub struct EmbeddedStore {
    objects: PathBuf,
    meta: PathBuf,
    tmp: PathBuf,
    signer: S3Signer,
    public_base: String,
    dialect: PostDialect,
}

fn io(context: &str, e: std::io::Error) -> String {
    format!("{context}: {e}")
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store at `config.store.dir`.
    pub fn open(config: &Config) -> Result<EmbeddedStore, String> {
        let dir = &config.store.dir;
        let objects = dir.join("objects");
        let meta = dir.join("meta");
        let tmp = dir.join("tmp");
        for d in [&objects, &meta, &tmp] {
            std::fs::create_dir_all(d)
                .map_err(|e| io(&format!("store.dir: creating {}", d.display()), e))?;
        }
        sweep_tmp(&tmp);
        let (key_id, secret) =
            if config.store.access_key_id.is_empty() || config.store.secret_access_key.is_empty() {
                (
                    EMBEDDED_KEY_ID.to_string(),
                    load_or_create_key(&dir.join(".store-key"))?,
                )
            } else {
                (
                    config.store.access_key_id.clone(),
                    config.store.secret_access_key.clone(),
                )
            };
        Ok(EmbeddedStore {
            objects,
            meta,
            tmp,
            signer: S3Signer::new(&key_id, Secret::new(secret), &config.store.region),
            public_base: config.public_base().to_string(),
            dialect: config.store.post_dialect(),
        })
    }

    /// The key pair that signs this store's URLs.
    pub fn signer(&self) -> &S3Signer {
        &self.signer
    }

    fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.objects.join(key.as_str())
    }

    fn meta_path(&self, key: &ObjectKey) -> PathBuf {
        self.meta.join(format!("{}.json", key.as_str()))
    }

    fn url_of(&self, key: &ObjectKey) -> String {
        format!("{}/{}", self.public_base, key.as_str())
    }

    /// Starts an atomic write of `key`.
    pub async fn begin_write(&self, key: &ObjectKey) -> Result<ObjectWriter, StoreError> {
        ObjectWriter::create(&self.tmp, self.object_path(key), self.meta_path(key)).await
    }

    /// Whether an object exists (metadata present).
    pub async fn exists(&self, key: &ObjectKey) -> bool {
        tokio::fs::metadata(self.meta_path(key)).await.is_ok()
    }
}

/// Removes temp files a crash left behind.
fn sweep_tmp(tmp: &Path) {
    if let Ok(entries) = std::fs::read_dir(tmp) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The embedded store's secret, created once with 256 random bits and kept in the
/// store directory (mode 0600), so signed URLs survive restarts.
fn load_or_create_key(path: &Path) -> Result<String, String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let k = existing.trim().to_string();
        if k.len() >= 32 {
            return Ok(k);
        }
    }
    let key: String = (0..4)
        .map(|_| format!("{:016x}", rand::random::<u64>()))
        .collect();
    write_private(path, &key)
        .map_err(|e| io(&format!("store.dir: writing {}", path.display()), e))?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

/// Streams `length` bytes of `file` from its current position.
fn file_stream(file: tokio::fs::File, length: u64) -> ByteStream {
    Box::pin(futures::stream::unfold(
        (file, length),
        |(mut file, remaining)| async move {
            if remaining == 0 {
                return None;
            }
            let want = remaining.min(READ_CHUNK as u64) as usize;
            let mut buf = BytesMut::with_capacity(want);
            match file.read_buf(&mut buf).await {
                Ok(0) => Some((
                    Err(StoreError::Internal(
                        "object file shorter than its metadata".into(),
                    )),
                    (file, 0),
                )),
                Ok(n) => {
                    buf.truncate(n.min(want));
                    let chunk: Bytes = buf.freeze();
                    let left = remaining - chunk.len() as u64;
                    Some((Ok(chunk), (file, left)))
                }
                Err(e) => Some((
                    Err(StoreError::Internal(format!("reading object: {e}"))),
                    (file, 0),
                )),
            }
        },
    ))
}

#[async_trait]
impl ObjectStore for EmbeddedStore {
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        Ok(StoredMeta::read(&self.meta_path(key)).await?.into())
    }

    async fn get(&self, key: &ObjectKey, req: GetRequest) -> Result<GetOutcome, StoreError> {
        let meta: ObjectMeta = StoredMeta::read(&self.meta_path(key)).await?.into();
        if req
            .if_none_match
            .as_deref()
            .is_some_and(|inm| etag_matches(inm, &meta.etag))
        {
            return Ok(GetOutcome::NotModified(meta));
        }
        let range = match req.range {
            Some(r) => Some(
                r.resolve(meta.size)
                    .ok_or(StoreError::RangeNotSatisfiable { size: meta.size })?,
            ),
            None => None,
        };
        let mut file = match tokio::fs::File::open(self.object_path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NotFound),
            Err(e) => return Err(StoreError::Internal(format!("opening object: {e}"))),
        };
        let (first, length) = match range {
            Some((a, b)) => (a, b - a + 1),
            None => (0, meta.size),
        };
        if first > 0 {
            file.seek(std::io::SeekFrom::Start(first))
                .await
                .map_err(|e| StoreError::Internal(format!("seeking object: {e}")))?;
        }
        Ok(GetOutcome::Body(ObjectBody {
            meta,
            range,
            stream: file_stream(file, length),
        }))
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        // Only derived copies are put (re-creatable): one blocking hop, no fsync.
        let (tmp, object, meta) = (self.tmp.clone(), self.object_path(key), self.meta_path(key));
        let content_type = content_type.to_string();
        let written = tokio::task::spawn_blocking(move || {
            writer::write_copy_blocking(&tmp, &object, &meta, &body, &content_type)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("writing a copy: {e}")))?;
        match written {
            // Derived copies are named by their inputs: an existing one is this one.
            Err(StoreError::Exists) => self.head(key).await,
            other => other,
        }
    }

    fn presign_get(
        &self,
        key: &ObjectKey,
        ttl: Duration,
        view: &DownloadView<'_>,
    ) -> Result<String, StoreError> {
        self.signer
            .presign_download(&self.url_of(key), ttl, view)
            .map_err(StoreError::Internal)
    }

    fn upload_grant(&self, req: &UploadRequest) -> Result<UploadGrant, StoreError> {
        let now = SystemTime::now();
        match req.method {
            UploadMethod::Post => Ok(UploadGrant {
                url: format!("{}/", self.public_base),
                fields: form_fields(req, self.dialect, &self.signer, None, now),
            }),
            // Grants are single-use here by construction (create-only writes).
            UploadMethod::Put => put_grant(&self.signer, &self.url_of(&req.key), req, now, false),
        }
    }
}

/// A presigned PUT that signs the content type and, when known, the exact length;
/// with `write_once`, also `If-None-Match: *`, so a store with conditional writes
/// refuses to overwrite the key when the grant is replayed.
pub fn put_grant(
    signer: &S3Signer,
    url: &str,
    req: &UploadRequest,
    now: SystemTime,
    write_once: bool,
) -> Result<UploadGrant, StoreError> {
    let size = req.size.map(|s| s.to_string());
    let mut headers = vec![("content-type", req.content_type.as_str())];
    if let Some(s) = &size {
        headers.push(("content-length", s.as_str()));
    }
    if write_once {
        headers.push(("if-none-match", "*"));
    }
    let url = signer
        .presign("PUT", url, &headers, req.expires_in, now)
        .map_err(StoreError::Internal)?;
    let mut fields = std::collections::BTreeMap::new();
    fields.insert("Content-Type".to_string(), req.content_type.clone());
    if let Some(s) = size {
        fields.insert("Content-Length".to_string(), s);
    }
    if write_once {
        fields.insert("If-None-Match".to_string(), "*".to_string());
    }
    Ok(UploadGrant { url, fields })
}
