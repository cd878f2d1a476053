//! A cluster of nodes (`cluster:`, SPEC §10): each cache key has one owner.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

use super::apps::Secret;
use super::error::ConfigError;

/// The nodes of the cluster and how they talk.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node as its peers reach it (`http://host:port`, one of `peers`).
    #[serde(rename = "self")]
    pub self_url: String,
    /// Every node, this one included, in the same order on every node.
    pub peers: Vec<String>,
    /// Signs the requests nodes make of each other (at least 16 bytes, the same on
    /// every node).
    pub secret: Secret,
    /// How often every peer's health is checked.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Longest wait for an owner's answer to begin; then the store is asked directly.
    #[serde(with = "humantime_serde")]
    pub peer_timeout: Duration,
    /// A non-owner keeps what an owner sent it this long (bodies up to
    /// `local_copy_max`), so a burst of one object does not cross the network each time.
    #[serde(with = "humantime_serde")]
    pub local_copy_ttl: Duration,
    /// Largest body a non-owner keeps.
    pub local_copy_max: bytesize::ByteSize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            self_url: String::new(),
            peers: Vec::new(),
            secret: Secret::new(""),
            health_interval: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(2),
            local_copy_ttl: Duration::from_secs(10),
            local_copy_max: bytesize::ByteSize::kib(512),
        }
    }
}

/// The socket address of a node's URL (`http://host:port`).
pub fn node_addr(url: &str) -> Option<SocketAddr> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') || authority.is_empty() {
        return None;
    }
    authority.to_socket_addrs().ok()?.next()
}

impl ClusterConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if node_addr(&self.self_url).is_none() {
            return Err(ConfigError::new(
                "cluster.self",
                format!(
                    "`{}` is not a node URL like http://10.0.0.1:8080",
                    self.self_url
                ),
            ));
        }
        if self.peers.is_empty() {
            return Err(ConfigError::new(
                "cluster.peers",
                "list every node, this one included",
            ));
        }
        for (i, p) in self.peers.iter().enumerate() {
            if node_addr(p).is_none() {
                return Err(ConfigError::new(
                    format!("cluster.peers[{i}]"),
                    format!("`{p}` is not a node URL like http://10.0.0.1:8080"),
                ));
            }
        }
        if !self.peers.contains(&self.self_url) {
            return Err(ConfigError::new(
                "cluster.self",
                "must be one of cluster.peers (spelt the same)",
            ));
        }
        if self.secret.expose().len() < 16 {
            return Err(ConfigError::new(
                "cluster.secret",
                "at least 16 bytes, the same on every node",
            ));
        }
        if self.health_interval.is_zero() || self.peer_timeout.is_zero() {
            return Err(ConfigError::new(
                "cluster.health_interval",
                "health_interval and peer_timeout must be above 0",
            ));
        }
        Ok(())
    }
}
