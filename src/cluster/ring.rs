//! Who owns a key: Ketama consistent hashing over the nodes (pingora-load-balancing, the
//! port of nginx's), skipping nodes its health checks mark down and nodes this one
//! just failed to reach. Every node computes the same ring from the same `peers`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pingora_core::services::background::{background_service, GenBackgroundService};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::HttpHealthCheck;
use pingora_load_balancing::selection::consistent::KetamaHashing;
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
        lb.set_health_check(Box::new(check));
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
            },
            service,
        ))
    }

    /// The live node that owns `key` (an object key: everything of one object,
    /// original and derived results, lives on one node).
    pub fn owner(&self, key: &str) -> Owner {
        let failed = &self.failed;
        let me = self.me;
        let chosen = self
            .lb
            .select_with(key.as_bytes(), MAX_STEPS, |b, healthy| {
                let addr = b.addr.as_inet().copied();
                // This node always counts as live for itself.
                addr == Some(me) || (healthy && addr.is_some_and(|a| !failed.contains_key(&a)))
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
            .filter(|b| {
                let addr = b.addr.as_inet().copied();
                addr == Some(self.me)
                    || (backends.ready(b) && addr.is_some_and(|a| !self.failed.contains_key(&a)))
            })
            .count()
    }

    /// Skips `addr` for a few seconds: it just failed to answer.
    pub fn mark_failed(&self, addr: SocketAddr) {
        self.failed.insert(addr, ());
    }
}
