//! Who owns a key: Ketama consistent hashing over the nodes (pingora-load-balancing, the
//! port of nginx's), skipping nodes its health checks mark down and nodes this one
//! just failed to reach. Every node computes the same ring from the same `peers`.
//!
//! Peers are trusted optimistically until seen: a node that has never answered a
//! health check counts as live, so a cluster converges the moment its last node
//! starts (a node started first would otherwise route around its peers until its
//! next health round, and every node would make its own copy meanwhile). A peer that
//! is not there yet costs one refused connection, then [`SKIP_AFTER_FAILURE`] of
//! serving from the store; one that answered once and then fails its checks is down.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::services::background::{background_service, GenBackgroundService};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck};
use pingora_load_balancing::selection::consistent::KetamaHashing;
use pingora_load_balancing::Backend;
use pingora_load_balancing::LoadBalancer;

use crate::config::{node_addr, ClusterConfig};

/// The health endpoint every node answers on its public listener.
pub const HEALTH_PATH: &str = "/_cluster/healthz";

/// How long a node that failed to answer is skipped before the health check says so.
const SKIP_AFTER_FAILURE: Duration = Duration::from_secs(3);

/// Most steps walked around the ring to find a live owner.
const MAX_STEPS: usize = 256;

/// The owner of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// This node.
    Local,
    /// Another node, at this address.
    Peer(SocketAddr),
}

/// The ring and the health of its nodes.
pub struct Ring {
    lb: Arc<LoadBalancer<KetamaHashing>>,
    me: SocketAddr,
    failed: moka::sync::Cache<SocketAddr, ()>,
    seen: Seen,
}

/// The peers that have answered a health check at least once.
#[derive(Clone, Default)]
struct Seen(Arc<RwLock<HashSet<SocketAddr>>>);

impl Seen {
    fn insert(&self, addr: SocketAddr) {
        if !self.contains(&addr) {
            self.0
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(addr);
        }
    }

    fn contains(&self, addr: &SocketAddr) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(addr)
    }
}

/// pingora's HTTP health check, remembering which peers ever passed it.
struct RememberingCheck {
    inner: HttpHealthCheck,
    seen: Seen,
}

#[async_trait]
impl HealthCheck for RememberingCheck {
    async fn check(&self, target: &Backend) -> pingora_error::Result<()> {
        self.inner.check(target).await?;
        if let Some(addr) = target.addr.as_inet() {
            self.seen.insert(*addr);
        }
        Ok(())
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        self.inner.health_status_change(target, healthy).await
    }

    fn backend_summary(&self, target: &Backend) -> String {
        self.inner.backend_summary(target)
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.inner.health_threshold(success)
    }
}

/// Whether a peer counts as live: it passes its checks, or it never answered one
/// (optimistic until seen); and this node did not just fail to reach it.
fn live(healthy: bool, ever_seen: bool, just_failed: bool) -> bool {
    (healthy || !ever_seen) && !just_failed
}

/// The background service that runs the health checks (added to the server).
pub type HealthService = GenBackgroundService<LoadBalancer<KetamaHashing>>;

impl Ring {
    /// The ring of `config.peers`, and the service checking their health.
    pub fn new(config: &ClusterConfig) -> Result<(Ring, HealthService), String> {
        let me = node_addr(&config.self_url)
            .ok_or_else(|| format!("cluster.self `{}` is not a node URL", config.self_url))?;
        let addrs: Vec<SocketAddr> = config.peers.iter().filter_map(|p| node_addr(p)).collect();
        let mut lb = LoadBalancer::<KetamaHashing>::try_from_iter(addrs.iter().copied())
            .map_err(|e| format!("cluster.peers: {e}"))?;
        let mut check = HttpHealthCheck::new("filegate-cluster", false);
        check.req = RequestHeader::build("GET", HEALTH_PATH.as_bytes(), None)
            .map_err(|e| format!("cluster: health check request: {e}"))?;
        check
            .req
            .insert_header("Host", "filegate-cluster")
            .map_err(|e| format!("cluster: health check request: {e}"))?;
        check.peer_template.options.connection_timeout = Some(config.peer_timeout);
        check.peer_template.options.read_timeout = Some(config.peer_timeout);
        check.reuse_connection = true;
        let seen = Seen::default();
        lb.set_health_check(Box::new(RememberingCheck {
            inner: check,
            seen: seen.clone(),
        }));
        lb.health_check_frequency = Some(config.health_interval);
        lb.parallel_health_check = true;
        let service = background_service("cluster health", lb);
        Ok((
            Ring {
                lb: service.task(),
                me,
                failed: moka::sync::Cache::builder()
                    .max_capacity(1024)
                    .time_to_live(SKIP_AFTER_FAILURE)
                    .build(),
                seen,
            },
            service,
        ))
    }

    /// The live node that owns `key` (an object key: everything of one object,
    /// original and derived results, lives on one node).
    pub fn owner(&self, key: &str) -> Owner {
        let me = self.me;
        let chosen = self
            .lb
            .select_with(key.as_bytes(), MAX_STEPS, |b, healthy| {
                // This node always counts as live for itself.
                match b.addr.as_inet().copied() {
                    Some(addr) => addr == me || self.peer_live(addr, healthy),
                    None => false,
                }
            });
        match chosen.and_then(|b| b.addr.as_inet().copied()) {
            Some(addr) if addr != me => Owner::Peer(addr),
            // No live peer at all: this node serves from the store itself.
            _ => Owner::Local,
        }
    }

    /// How many nodes are live, as this node sees them (itself included).
    pub fn live_nodes(&self) -> usize {
        let backends = self.lb.backends();
        backends
            .get_backend()
            .iter()
            .filter(|b| match b.addr.as_inet().copied() {
                Some(addr) => addr == self.me || self.peer_live(addr, backends.ready(b)),
                None => false,
            })
            .count()
    }

    fn peer_live(&self, addr: SocketAddr, healthy: bool) -> bool {
        live(
            healthy,
            self.seen.contains(&addr),
            self.failed.contains_key(&addr),
        )
    }

    /// Skips `addr` for a few seconds: it just failed to answer.
    pub fn mark_failed(&self, addr: SocketAddr) {
        self.failed.insert(addr, ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_of(me: usize) -> Ring {
        let peers: Vec<String> = (0..3)
            .map(|i| format!("http://127.0.0.1:{}", 7001 + i))
            .collect();
        let config = ClusterConfig {
            self_url: peers[me].clone(),
            peers,
            ..ClusterConfig::default()
        };
        Ring::new(&config).expect("a ring").0
    }

    fn as_addr(ring: &Ring, owner: Owner) -> SocketAddr {
        match owner {
            Owner::Local => ring.me,
            Owner::Peer(a) => a,
        }
    }

    #[test]
    fn every_node_agrees_on_the_owner_and_skips_a_failed_one() {
        let rings: Vec<Ring> = (0..3).map(ring_of).collect();
        let mut owned = std::collections::HashMap::new();
        for i in 0..3_000 {
            let key = format!("demo/chat/1/{i}/20261201/x.jpg");
            let owners: Vec<SocketAddr> = rings.iter().map(|r| as_addr(r, r.owner(&key))).collect();
            assert!(owners.windows(2).all(|w| w[0] == w[1]), "{key}: {owners:?}");
            *owned.entry(owners[0]).or_insert(0) += 1;
        }
        // Ketama spreads keys within a few percent of a third each.
        assert_eq!(owned.len(), 3);
        assert!(
            owned.values().all(|&n| (800..1200).contains(&n)),
            "{owned:?}"
        );
        // A node that just failed a fill is skipped by the node that saw it: its keys
        // move to the next node, the others stay.
        let (r0, failed) = (&rings[0], rings[1].me);
        r0.mark_failed(failed);
        for i in 0..300 {
            let key = format!("demo/chat/1/{i}/20261201/x.jpg");
            let before = as_addr(&rings[2], rings[2].owner(&key));
            let after = as_addr(r0, r0.owner(&key));
            if before == failed {
                assert_ne!(after, failed);
            } else {
                assert_eq!(after, before);
            }
        }
        // A node is always live for itself.
        assert_eq!(rings[1].live_nodes(), 3);
    }

    #[test]
    fn peers_are_live_until_seen_failing() {
        // Never answered a check yet (not started): tried.
        assert!(live(false, false, false));
        // Answered once, now failing its checks: down.
        assert!(!live(false, true, false));
        assert!(live(true, true, false));
        // A fill to it just failed: skipped for a few seconds, whatever the checks say.
        assert!(!live(true, true, true));
        assert!(!live(false, false, true));
    }
}
