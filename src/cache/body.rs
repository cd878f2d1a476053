//! A body ready to serve, wherever it comes from: the cache's pieces, a fill in
//! progress, another node, or a short-lived whole copy. Readers take it piece by piece
//! ([`Body::next_piece`]), so a large body is never held whole.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use crate::cache::entry::BodyHead;
use crate::cache::flight::FlightReader;
use crate::cache::status::CacheStatus;
use crate::error::ApiError;
use crate::storage::{ByteStream, ObjectMeta};

/// A body ready to serve.
pub enum Body {
    /// In the cache: the head (its metadata and first piece) and the other pieces.
    Cached {
        /// The head.
        head: Arc<BodyHead>,
        /// Pieces 1.. of a large body, in order.
        rest: Vec<Bytes>,
    },
    /// Arriving from a fill that other clients may share.
    Filling {
        /// Its metadata.
        meta: Arc<ObjectMeta>,
        /// Its bytes as they arrive.
        reader: FlightReader,
    },
    /// Arriving from another node (its owner), piece by piece.
    Remote {
        /// Its metadata.
        meta: Arc<ObjectMeta>,
        /// Its bytes as they arrive.
        stream: ByteStream,
    },
    /// Whole in memory (a node's short-lived copy of what an owner sent).
    Whole {
        /// Its metadata.
        meta: Arc<ObjectMeta>,
        /// Its bytes.
        bytes: Bytes,
    },
}

impl Body {
    /// What a client is told of the body.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Body::Cached { head, .. } => &head.meta,
            Body::Filling { meta, .. } | Body::Remote { meta, .. } | Body::Whole { meta, .. } => {
                meta
            }
        }
    }

    /// The next piece of the whole body (`index` counts them): a cached body's
    /// pieces, or a fill's as they come; `Ok(None)` at the end.
    pub async fn next_piece(&mut self, index: &mut usize) -> Result<Option<Bytes>, ApiError> {
        match self {
            Body::Cached { head, rest } => {
                let i = *index;
                *index += 1;
                Ok(match i {
                    0 => Some(head.first.clone()),
                    i => rest.get(i - 1).cloned(),
                })
            }
            Body::Filling { reader, .. } => reader.next().await,
            Body::Remote { stream, .. } => match stream.next().await {
                Some(Ok(piece)) => Ok(Some(piece)),
                Some(Err(e)) => Err(e.into()),
                None => Ok(None),
            },
            Body::Whole { bytes, .. } => {
                let first = *index == 0;
                *index += 1;
                Ok(first.then(|| bytes.clone()))
            }
        }
    }

    /// The whole body in one buffer, checked against its declared size (a
    /// transform's source, a copy written back to the store).
    pub async fn collect(mut self) -> Result<Bytes, ApiError> {
        let size = self.meta().size as usize;
        let mut i = 0;
        let first = self.next_piece(&mut i).await?.unwrap_or_default();
        if first.len() == size {
            return Ok(first);
        }
        let mut all = bytes::BytesMut::with_capacity(size);
        all.extend_from_slice(&first);
        while let Some(piece) = self.next_piece(&mut i).await? {
            all.extend_from_slice(&piece);
        }
        if all.len() != size {
            return Err(ApiError::store_failed(format!(
                "the body ended after {} of {size} bytes",
                all.len()
            )));
        }
        Ok(all.freeze())
    }
}

/// A body found or being fetched, and what the cache did.
pub struct Found {
    /// The body.
    pub body: Body,
    /// `X-Cache-Status`.
    pub status: CacheStatus,
}
