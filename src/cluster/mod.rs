//! A cluster of nodes (SPEC §10): each object (its original and every result made from
//! it) has one owner on a Ketama ring ([`ring`]), so the whole cluster fetches it from
//! the store once and makes each result once. A node that does not own an object asks
//! the owner ([`fill`], signed with `cluster.secret`: [`peer_auth`]) after its own
//! credential check, streams the answer to its client, and keeps a small, short-lived
//! copy. An owner that is down or slow is skipped (health checks, and at once after a
//! failure); a request whose owner fails is served from the store directly, and an
//! original cut mid-body by its owner is resumed from the store.

pub mod fill;
pub mod peer_auth;
pub mod purge;
pub mod ring;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::cache::key::CacheKey;
use crate::cache::{Body, CacheStatus, Found};
use crate::clock::{now_ms, now_secs};
use crate::config::{node_addr, ClusterConfig, Secret};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::storage::keys::ObjectKey;
use crate::storage::{
    ByteRange, ByteStream, GetOutcome, GetRequest, ObjectMeta, ObjectStore, StoreError,
};
use fill::{decode_meta, FillSpec, META_HEADER};
use peer_auth::{Nonces, Purpose, Refusal, Target, AUTH_HEADER, SPEC_HEADER};
pub use ring::{HealthService, Owner, Ring, HEALTH_PATH};

/// Bytes of short-lived copies a node keeps of what owners sent it.
const LOCAL_COPIES_BYTES: u64 = 64 << 20;

/// What an owner answered.
pub enum Asked {
    /// The body.
    Found(Found),
    /// An answer that stands for the cluster (404, 413 of a transform, 415...).
    Refused(ApiError),
    /// The owner could not answer: serve from the store directly.
    Unavailable,
}

/// A short-lived copy of what an owner sent: its metadata, bytes, and when it was
/// asked for (Unix ms; a purge after that makes it unusable).
type LocalCopy = (Arc<ObjectMeta>, Bytes, u64);

/// This node's view of the cluster.
pub struct Cluster {
    ring: Ring,
    self_url: String,
    /// This node's address: what requests signed for it name.
    me: SocketAddr,
    /// The other nodes: their `cluster.peers` URL and address.
    peers: Vec<(String, SocketAddr)>,
    secret: Secret,
    client: reqwest::Client,
    nonces: Nonces,
    copies: moka::sync::Cache<CacheKey, LocalCopy>,
    /// When local copies were last purged (Unix ms): a copy asked for before it is
    /// never served, even one whose answer arrived after the purge.
    copies_purged_at: AtomicU64,
    /// How long after a purge copies are kept for a second at most (`cache.fresh_for`,
    /// the purge window of the owners' caches).
    purge_window_ms: u64,
    peer_timeout: Duration,
    /// Longest a derived result may take to make (the owner answers once it is made).
    make_timeout: Duration,
    copy_max: u64,
    metrics: Arc<Metrics>,
}

impl Cluster {
    /// The cluster of `config`, and the service that checks its nodes' health (to add
    /// to the server).
    pub fn new(
        config: &ClusterConfig,
        make_timeout: Duration,
        purge_window: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<(Cluster, HealthService), String> {
        let (ring, health) = Ring::new(config)?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.peer_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| format!("cluster: cannot build the peer client: {e}"))?;
        let me = node_addr(&config.self_url)
            .ok_or_else(|| format!("cluster.self: `{}` is not a node URL", config.self_url))?;
        let peers = config
            .peers
            .iter()
            .filter_map(|url| node_addr(url).map(|addr| (url.clone(), addr)))
            .filter(|(_, addr)| *addr != me)
            .collect();
        Ok((
            Cluster {
                ring,
                self_url: config.self_url.clone(),
                me,
                peers,
                copies_purged_at: AtomicU64::new(0),
                purge_window_ms: u64::try_from(purge_window.as_millis()).unwrap_or(u64::MAX),
                secret: config.secret.clone(),
                client,
                nonces: Nonces::default(),
                copies: moka::sync::Cache::builder()
                    .max_capacity(LOCAL_COPIES_BYTES)
                    .weigher(|_: &CacheKey, (_, b, _): &LocalCopy| {
                        u32::try_from(b.len() + 256).unwrap_or(u32::MAX)
                    })
                    .time_to_live(config.local_copy_ttl)
                    .build(),
                peer_timeout: config.peer_timeout,
                make_timeout,
                copy_max: config.local_copy_max.as_u64(),
                metrics,
            },
            health,
        ))
    }

    /// Who owns the object `key`.
    pub fn owner(&self, key: &ObjectKey) -> Owner {
        self.ring.owner(key.as_str())
    }

    /// How many nodes are live, as this node sees them (itself included).
    pub fn live_nodes(&self) -> usize {
        self.ring.live_nodes()
    }

    /// Forgets every short-lived copy of what owners sent (on a purge), and any copy
    /// still on its way.
    pub fn drop_local_copies(&self) {
        self.copies_purged_at.fetch_max(now_ms(), Ordering::AcqRel);
        self.copies.invalidate_all();
    }

    /// This node's URL (`cluster.self`).
    pub fn self_url(&self) -> &str {
        &self.self_url
    }

    /// The other nodes: their URL and address.
    pub fn peers(&self) -> &[(String, SocketAddr)] {
        &self.peers
    }

    /// Whether a copy asked for at `asked_at_ms` may no longer be served: it predates
    /// the last purge, or that purge is recent and the copy older than a second (the
    /// owners revalidate a recently purged object that often, so a takedown reaches
    /// the copies as soon as it reaches the owner).
    fn purged_since(&self, asked_at_ms: u64) -> bool {
        let purged_at = self.copies_purged_at.load(Ordering::Acquire);
        if purged_at == 0 {
            return false;
        }
        let now = now_ms();
        asked_at_ms <= purged_at
            || (now < purged_at.saturating_add(self.purge_window_ms)
                && now.saturating_sub(asked_at_ms) >= crate::cache::freshness::PURGED_FRESH_MS)
    }

    fn count(&self, role: &str, result: &str) {
        self.metrics
            .cluster_requests
            .with_label_values(&[role, result])
            .inc();
    }

    /// Asks `peer` for an original. A body cut by the owner midway is resumed from
    /// `store` (same ETag, a range from where it stopped).
    pub async fn ask_original(
        &self,
        peer: SocketAddr,
        key: &ObjectKey,
        store: &Arc<dyn ObjectStore>,
    ) -> Asked {
        let spec = FillSpec::Original {
            app: key.app().to_string(),
            key: key.as_str().to_string(),
        };
        let resume = Resume {
            store: store.clone(),
            key: key.clone(),
        };
        self.ask(peer, &spec, Some(resume)).await
    }

    /// Asks `peer` for a derived result.
    pub async fn ask_derived(&self, peer: SocketAddr, spec: &FillSpec) -> Asked {
        self.ask(peer, spec, None).await
    }

    async fn ask(&self, peer: SocketAddr, spec: &FillSpec, resume: Option<Resume>) -> Asked {
        let encoded = spec.encode();
        let copy_key = CacheKey::peer_copy(&encoded);
        if let Some((meta, bytes, asked_at)) = self.copies.get(&copy_key) {
            if !self.purged_since(asked_at) {
                self.count("asked", "local_copy");
                return Asked::Found(Found {
                    body: Body::Whole { meta, bytes },
                    status: CacheStatus::Hit,
                });
            }
            self.copies.invalidate(&copy_key);
        }
        let asked_at = now_ms();
        let target = Target {
            purpose: Purpose::Fill,
            node: peer,
        };
        let auth = peer_auth::sign(&self.secret, target, now_secs(), &encoded);
        let request = self
            .client
            .get(format!("http://{peer}{}", fill::FILL_PATH))
            .header(SPEC_HEADER, &encoded)
            .header(AUTH_HEADER, auth)
            .send();
        // An original's answer begins as soon as the owner's fill does; a derived
        // result's once it is made.
        let wait = match spec {
            FillSpec::Original { .. } => self.peer_timeout,
            FillSpec::Derived { .. } => self.peer_timeout + self.make_timeout,
        };
        let resp = match tokio::time::timeout(wait, request).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return self.unavailable(peer, &e.without_url().to_string()),
            Err(_) => return self.unavailable(peer, "no answer in time"),
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.bytes().await.unwrap_or_default();
            let envelope = serde_json::from_slice::<serde_json::Value>(&body).ok();
            let message = envelope
                .as_ref()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("owner answered {status}"));
            // The owner's store failing, or a body too large for the cache: this node
            // serves it from the store itself.
            if status >= 500 || status == 413 && matches!(spec, FillSpec::Original { .. }) {
                return self.unavailable(peer, &message);
            }
            self.count("asked", "refused");
            let http_status =
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
            // The answer stands for the cluster: its business code included.
            let code = envelope
                .as_ref()
                .and_then(|v| v["code"].as_u64())
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(u32::from(status));
            return Asked::Refused(ApiError::new(http_status, message).with_code(code));
        }
        let meta = match resp
            .headers()
            .get(META_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(decode_meta)
        {
            Some(m) => Arc::new(m),
            None => return self.unavailable(peer, "an answer without metadata"),
        };
        let cache = resp
            .headers()
            .get("x-cache-status")
            .and_then(|v| v.to_str().ok())
            .and_then(CacheStatus::from_header)
            .unwrap_or(CacheStatus::Hit);
        let stream = resp.bytes_stream().map(|c| {
            c.map_err(|e| {
                StoreError::Failed(format!("the owner's body failed: {}", e.without_url()))
            })
        });
        let stream: ByteStream = Box::pin(stream);
        if meta.size <= self.copy_max {
            // Small: read it whole, keep a short-lived copy.
            match collect(stream, meta.size).await {
                Some(bytes) => {
                    if !self.purged_since(asked_at) {
                        self.copies
                            .insert(copy_key, (meta.clone(), bytes.clone(), asked_at));
                    }
                    self.count("asked", "ok");
                    return Asked::Found(Found {
                        body: Body::Whole { meta, bytes },
                        status: cache,
                    });
                }
                None => return self.unavailable(peer, "the owner's body ended short"),
            }
        }
        self.count("asked", "ok");
        let stream = match resume {
            Some(r) => r.wrap(stream, meta.clone()),
            None => stream,
        };
        Asked::Found(Found {
            body: Body::Remote { meta, stream },
            status: cache,
        })
    }

    fn unavailable(&self, peer: SocketAddr, why: &str) -> Asked {
        log::warn!("cluster: node {peer} did not answer a fill ({why}); serving from the store");
        self.ring.mark_failed(peer);
        self.count("asked", "fallback");
        Asked::Unavailable
    }

    /// The spec of a request from another node, once its signature checks out for
    /// this node and `purpose` (a 401 envelope otherwise, a 503 when too many arrive
    /// within the signature window; counted as refused).
    pub fn verified_spec(
        &self,
        purpose: Purpose,
        headers: &http::HeaderMap,
    ) -> Result<String, ApiError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(spec), Some(auth)) = (header(SPEC_HEADER), header(AUTH_HEADER)) else {
            self.count("answered", "refused");
            return Err(ApiError::no_credential(
                "peer requests need the cluster's signature",
            ));
        };
        let target = Target {
            purpose,
            node: self.me,
        };
        if let Err(refusal) =
            peer_auth::verify(&self.secret, target, auth, spec, now_secs(), &self.nonces)
        {
            self.count("answered", "refused");
            return Err(match refusal {
                Refusal::Busy => {
                    ApiError::new(http::StatusCode::SERVICE_UNAVAILABLE, refusal.message())
                }
                _ => ApiError::invalid_credential(refusal.message()),
            });
        }
        Ok(spec.to_string())
    }

    /// Counts a request of another node this node answered (`ok`, `refused`,
    /// `error`).
    pub fn count_answered(&self, result: &str) {
        self.count("answered", result);
    }

    /// Longest wait for a peer's answer to begin (`cluster.peer_timeout`).
    pub fn peer_timeout(&self) -> Duration {
        self.peer_timeout
    }
}

/// Reads a small body whole; `None` if it is not exactly `size` bytes.
async fn collect(mut stream: ByteStream, size: u64) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        if (buf.len() + chunk.len()) as u64 > size {
            return None;
        }
        buf.extend_from_slice(&chunk);
    }
    (buf.len() as u64 == size).then(|| buf.freeze())
}

/// Resumes an original from the store where its owner stopped sending it.
struct Resume {
    store: Arc<dyn ObjectStore>,
    key: ObjectKey,
}

impl Resume {
    fn wrap(self, stream: ByteStream, meta: Arc<ObjectMeta>) -> ByteStream {
        struct State {
            stream: ByteStream,
            received: u64,
            resume: Option<Resume>,
            meta: Arc<ObjectMeta>,
        }
        let state = State {
            stream,
            received: 0,
            resume: Some(self),
            meta,
        };
        Box::pin(futures::stream::unfold(state, |mut s| async move {
            loop {
                match s.stream.next().await {
                    Some(Ok(chunk)) => {
                        s.received += chunk.len() as u64;
                        return Some((Ok(chunk), s));
                    }
                    None => return None,
                    Some(Err(e)) => {
                        let Some(resume) = s.resume.take() else {
                            return Some((Err(e), s));
                        };
                        log::warn!(
                            "cluster: the owner cut {} after {} bytes; resuming from the store",
                            resume.key,
                            s.received
                        );
                        match resume.rest(s.received, &s.meta).await {
                            Ok(rest) => s.stream = rest,
                            Err(e) => return Some((Err(e), s)),
                        }
                    }
                }
            }
        }))
    }

    /// The rest of the object from byte `from`, if the store still holds this version.
    async fn rest(&self, from: u64, meta: &ObjectMeta) -> Result<ByteStream, StoreError> {
        let request = GetRequest {
            range: Some(ByteRange::From(from)),
            if_none_match: None,
        };
        match self.store.get(&self.key, request).await? {
            GetOutcome::Body(body) if body.meta.etag == meta.etag => Ok(body.stream),
            _ => Err(StoreError::Failed(
                "the store's version differs from the owner's".into(),
            )),
        }
    }
}
