//! Reading a source for a transform: the size from the metadata is checked before
//! the read starts, and the read itself stops at the limit whatever the store says
//! (a store that lies about the length cannot make filegate allocate more).

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::error::ApiError;
use crate::media::limits::too_large;
use crate::storage::keys::ObjectKey;
use crate::storage::{GetOutcome, GetRequest, ObjectMeta, ObjectStore};

/// 413 when the stored size is over `limit`.
pub fn check_source_size(meta: &ObjectMeta, limit: u64) -> Result<(), ApiError> {
    if meta.size > limit {
        return Err(too_large(format!(
            "the source is {} bytes; transforms take at most {limit}",
            meta.size
        )));
    }
    Ok(())
}

/// Reads the whole object, at most `limit` bytes (413 past it).
pub async fn fetch_source_limited(
    store: &dyn ObjectStore,
    key: &ObjectKey,
    limit: u64,
) -> Result<Bytes, ApiError> {
    let body = match store.get(key, GetRequest::default()).await? {
        GetOutcome::Body(body) => body,
        GetOutcome::NotModified(_) => {
            return Err(ApiError::internal("unconditional read answered 304"))
        }
    };
    check_source_size(&body.meta, limit)?;
    let mut stream = body.stream;
    // The declared size is within the limit here, so it bounds the first allocation.
    let mut buf = BytesMut::with_capacity(body.meta.size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large(format!(
                "the source is larger than {limit} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
