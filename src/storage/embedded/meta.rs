//! The metadata kept beside each object of the embedded store, as JSON.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::storage::{ObjectMeta, StoreError};

/// The on-disk form of [`ObjectMeta`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredMeta {
    /// Size in bytes.
    pub size: u64,
    /// Strong ETag, quoted.
    pub etag: String,
    /// Content type.
    pub content_type: String,
    /// Uploader's file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_name: Option<String>,
    /// HTTP-date of the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl From<&ObjectMeta> for StoredMeta {
    fn from(m: &ObjectMeta) -> Self {
        StoredMeta {
            size: m.size,
            etag: m.etag.clone(),
            content_type: m.content_type.clone(),
            original_name: m.original_name.clone(),
            last_modified: m.last_modified.clone(),
        }
    }
}

impl From<StoredMeta> for ObjectMeta {
    fn from(m: StoredMeta) -> Self {
        ObjectMeta {
            size: m.size,
            etag: m.etag,
            content_type: m.content_type,
            original_name: m.original_name,
            last_modified: m.last_modified,
        }
    }
}

impl StoredMeta {
    /// Reads the metadata at `path`; a missing file means no such object.
    pub async fn read(path: &Path) -> Result<StoredMeta, StoreError> {
        let raw = match tokio::fs::read(path).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NotFound),
            Err(e) => return Err(StoreError::Internal(format!("reading metadata: {e}"))),
        };
        serde_json::from_slice(&raw).map_err(|e| {
            StoreError::Internal(format!("corrupt metadata at {}: {e}", path.display()))
        })
    }

    /// Writes the metadata through a temp file and a rename, on the calling thread;
    /// `sync`: fsync the file before the rename (an upload's; a derived copy, which can
    /// be made again, skips it).
    pub fn write_atomic_blocking(&self, path: &Path, sync: bool) -> Result<(), StoreError> {
        use std::io::Write;
        let io = |e: std::io::Error| StoreError::Internal(format!("writing metadata: {e}"));
        let body = serde_json::to_vec(self).map_err(|e| StoreError::Internal(e.to_string()))?;
        let tmp = path.with_extension(format!("tmp{:016x}", rand::random::<u64>()));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&body)?;
                if sync {
                    f.sync_all()?;
                }
                Ok(())
            })
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)
    }

    /// [`StoredMeta::write_atomic_blocking`] with an fsync, in one blocking hop.
    pub async fn write_atomic(&self, path: &Path) -> Result<(), StoreError> {
        let (meta, path) = (self.clone(), path.to_path_buf());
        tokio::task::spawn_blocking(move || meta.write_atomic_blocking(&path, true))
            .await
            .map_err(|e| StoreError::Internal(format!("writing metadata: {e}")))?
    }
}
