//! Atomic, write-once object writes: bytes go to a temp file (MD5 computed on the way
//! for the strong ETag), then fsync and a hard link into place, which fails if the key
//! exists (an upload grant writes its key once, so a reader only ever sees one object,
//! whole); metadata last, and an object is visible only once its metadata exists. A
//! writer dropped before `commit` (aborted, over-limit, refused upload) removes its
//! temp file, so nothing partial is ever visible.

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use crate::storage::embedded::meta::StoredMeta;
use crate::storage::{ObjectMeta, StoreError};

/// An object being written.
pub struct ObjectWriter {
    file: Option<tokio::fs::File>,
    tmp_path: PathBuf,
    object_path: PathBuf,
    meta_path: PathBuf,
    hasher: Md5,
    size: u64,
    committed: bool,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("embedded store I/O: {e}"))
}

impl ObjectWriter {
    /// Starts a write that will land at `object_path` (metadata at `meta_path`).
    pub async fn create(
        tmp_dir: &Path,
        object_path: PathBuf,
        meta_path: PathBuf,
    ) -> Result<Self, StoreError> {
        let tmp_path = tmp_dir.join(format!(
            "upload-{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        ));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .await
            .map_err(io)?;
        Ok(ObjectWriter {
            file: Some(file),
            tmp_path,
            object_path,
            meta_path,
            hasher: Md5::new(),
            size: 0,
            committed: false,
        })
    }

    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| StoreError::Internal("write after commit".into()))?;
        file.write_all(chunk).await.map_err(io)?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the object visible: fsync, rename the object, then write its metadata
    /// (an object is visible only once its metadata exists).
    pub async fn commit(
        mut self,
        content_type: &str,
        original_name: Option<String>,
    ) -> Result<ObjectMeta, StoreError> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| StoreError::Internal("double commit".into()))?;
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        let etag = format!("\"{:x}\"", self.hasher.clone().finalize());
        let meta = ObjectMeta {
            size: self.size,
            etag,
            content_type: content_type.to_string(),
            original_name,
            last_modified: Some(httpdate::fmt_http_date(std::time::SystemTime::now())),
        };
        for parent in [self.object_path.parent(), self.meta_path.parent()]
            .into_iter()
            .flatten()
        {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        // `link` is create-only: a second upload of the key fails here, atomically.
        match tokio::fs::hard_link(&self.tmp_path, &self.object_path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists)
            }
            Err(e) => return Err(io(e)),
        }
        // The temp name goes; the object stays under its key.
        let _ = tokio::fs::remove_file(&self.tmp_path).await;
        self.committed = true;
        StoredMeta::from(&meta)
            .write_atomic(&self.meta_path)
            .await?;
        Ok(meta)
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a temp file left by a crash is swept at start.
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// Writes a derived copy (`_derived/`, re-creatable) whole, on the calling thread: the
/// same temp file, create-only link and metadata-last order as an upload, without the
/// fsyncs. A crash may lose the copy or leave one shorter than its metadata says; the
/// reader checks the length and makes the result again. One blocking hop instead of a
/// dozen, and no journal commit per thumbnail.
pub fn write_copy_blocking(
    tmp_dir: &Path,
    object_path: &Path,
    meta_path: &Path,
    body: &[u8],
    content_type: &str,
) -> Result<ObjectMeta, StoreError> {
    use std::io::Write;
    let tmp_path = tmp_dir.join(format!(
        "copy-{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        file.write_all(body)?;
        for parent in [object_path.parent(), meta_path.parent()]
            .into_iter()
            .flatten()
        {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::hard_link(&tmp_path, object_path)
    })();
    let _ = std::fs::remove_file(&tmp_path);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(StoreError::Exists),
        Err(e) => return Err(io(e)),
    }
    let meta = ObjectMeta {
        size: body.len() as u64,
        etag: format!("\"{:x}\"", Md5::digest(body)),
        content_type: content_type.to_string(),
        original_name: None,
        last_modified: Some(httpdate::fmt_http_date(std::time::SystemTime::now())),
    };
    StoredMeta::from(&meta).write_atomic_blocking(meta_path, false)?;
    Ok(meta)
}
