//! A store decorator that counts every operation in
//! `filegate_store_operations_total{op,result}`, so operators see store traffic and
//! errors (and tests can prove a refused request never reached the store).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use prometheus::IntCounterVec;

use crate::storage::keys::ObjectKey;
use crate::storage::{
    DownloadView, GetOutcome, GetRequest, ObjectMeta, ObjectStore, StoreError, UploadGrant,
    UploadRequest,
};

/// Counts operations of the wrapped store.
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    counter: IntCounterVec,
}

impl MeteredStore {
    /// Wraps `inner`, counting into `counter` (labels `op`, `result`).
    pub fn new(inner: Arc<dyn ObjectStore>, counter: IntCounterVec) -> Self {
        MeteredStore { inner, counter }
    }

    fn count<T>(&self, op: &str, result: &Result<T, StoreError>) {
        let label = match result {
            Ok(_) => "ok",
            Err(StoreError::NotFound) => "not_found",
            Err(StoreError::Exists) => "exists",
            Err(StoreError::RangeNotSatisfiable { .. }) => "range",
            Err(StoreError::Timeout(_)) => "timeout",
            Err(_) => "error",
        };
        self.counter.with_label_values(&[op, label]).inc();
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StoreError> {
        let r = self.inner.head(key).await;
        self.count("head", &r);
        r
    }

    async fn get(&self, key: &ObjectKey, req: GetRequest) -> Result<GetOutcome, StoreError> {
        let r = self.inner.get(key, req).await;
        self.count("get", &r);
        r
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        let r = self.inner.put(key, body, content_type).await;
        self.count("put", &r);
        r
    }

    fn presign_get(
        &self,
        key: &ObjectKey,
        ttl: Duration,
        view: &DownloadView<'_>,
    ) -> Result<String, StoreError> {
        let r = self.inner.presign_get(key, ttl, view);
        self.count("presign_get", &r);
        r
    }

    fn upload_grant(&self, req: &UploadRequest) -> Result<UploadGrant, StoreError> {
        let r = self.inner.upload_grant(req);
        self.count("upload_grant", &r);
        r
    }
}
