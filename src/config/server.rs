//! Process-level settings handed to pingora (`server:`) and request limits (`limits:`).

use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use super::rate::RateLimits;

/// Process-level settings handed to pingora.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Socket through which a new process takes the listeners over (`serve -u`).
    pub upgrade_sock: String,
    /// Pid file written at start.
    pub pid_file: String,
    /// After SIGTERM (or SIGQUIT, once a new process has the listeners), how long
    /// in-flight requests may take to finish; filegate exits as soon as they are done.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
    /// After the grace period, how long blocking work (transforms) may take to stop.
    #[serde(with = "humantime_serde")]
    pub graceful_shutdown_timeout: Duration,
    /// Let the listener's threads steal each other's tasks. Off, each connection
    /// stays on one thread (no cross-thread wake-ups per request), which served
    /// cache hits faster here (BENCHMARKS.md).
    pub work_stealing: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            upgrade_sock: "/tmp/filegate_upgrade.sock".into(),
            pid_file: "/tmp/filegate.pid".into(),
            grace_period: Duration::from_secs(60),
            graceful_shutdown_timeout: Duration::from_secs(5),
            work_stealing: false,
        }
    }
}

/// Limits on what a request may carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestLimits {
    /// Total size of the request line and headers; larger → 431.
    pub max_header_bytes: ByteSize,
    /// Size of the query string; larger → 414.
    pub max_query_bytes: ByteSize,
    /// Longest time from a request's first byte to the end of its head; slower
    /// clients (slowloris) get a 408 and are disconnected.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// How long an idle keep-alive connection waits for its next request.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// Request rates per client address and per user (SPEC §12); off by default.
    pub rate: RateLimits,
    /// CIDRs whose `X-Forwarded-For` is believed (a load balancer in front).
    pub trusted_proxies: Vec<String>,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_header_bytes: ByteSize::kib(16),
            max_query_bytes: ByteSize::kib(8),
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            rate: RateLimits::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl RequestLimits {
    /// The checked rate limits and trusted proxies.
    pub fn rate_policy(&self) -> Result<super::rate::RatePolicy, super::error::ConfigError> {
        super::rate::rate_policy(&self.rate, &self.trusted_proxies)
    }
}
