//! Request rates per client address and per user (SPEC §12), with `governor`'s GCRA
//! (a token bucket per key, burst of one second's worth). Keys: the client address
//! (an IPv6 client by its /64, what one subscriber gets), believed from
//! `X-Forwarded-For` only when the peer is a trusted proxy; and app + user from the
//! credential. A request over a limit is a 429 envelope with `Retry-After`, counted
//! in `filegate_rate_limited_total{by,route}`. Limits are per node.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::HeaderMap;

use crate::clock::now_ms;
use crate::config::{Rate, RatePolicy};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Keys idle this long (and so back to a full bucket) are forgotten on the next sweep.
const SWEEP_EVERY_MS: u64 = 10_000;

/// Who a per-user limit counts: an app's user (or group, for a group avatar's owner),
/// as a 64-bit digest so that counting a request allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey(u64);

impl UserKey {
    /// User `id` of app `app`.
    pub fn user(app: &str, id: i64) -> Self {
        UserKey::digest(app, b'u', id)
    }

    /// Group `id` of app `app` (the owner of a group's avatar).
    pub fn group(app: &str, id: i64) -> Self {
        UserKey::digest(app, b'g', id)
    }

    fn digest(app: &str, kind: u8, id: i64) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        app.hash(&mut h);
        kind.hash(&mut h);
        id.hash(&mut h);
        UserKey(h.finish())
    }
}

/// The node's rate limits.
pub struct RateLimits {
    policy: RatePolicy,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_user: Option<DefaultKeyedRateLimiter<UserKey>>,
    clock: DefaultClock,
    last_sweep_ms: AtomicU64,
    metrics: Arc<Metrics>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(rate: Rate) -> Option<DefaultKeyedRateLimiter<K>> {
    let cell = rate.period / rate.requests.max(1);
    let burst = NonZeroU32::new(rate.burst())?;
    Some(RateLimiter::keyed(
        Quota::with_period(cell)?.allow_burst(burst),
    ))
}

impl RateLimits {
    /// The limits of `policy` (`limits.rate`, `limits.trusted_proxies`).
    pub fn new(policy: RatePolicy, metrics: Arc<Metrics>) -> Self {
        RateLimits {
            per_ip: policy.per_ip.and_then(limiter),
            per_user: policy.per_user.and_then(limiter),
            policy,
            clock: DefaultClock::default(),
            last_sweep_ms: AtomicU64::new(now_ms()),
            metrics,
        }
    }

    /// The client's address: the socket's peer, or, when that peer is a trusted
    /// proxy, the last address in `X-Forwarded-For` that is not one.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.policy.trusts(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !self.policy.trusts(*ip))
                .unwrap_or(peer),
        )
    }

    /// Counts a request of `ip` on `route`; a 429 when it is over the per-address
    /// limit.
    pub fn check_ip(&self, ip: Option<IpAddr>, route: &str) -> Result<(), ApiError> {
        let (Some(limiter), Some(ip)) = (&self.per_ip, ip) else {
            return Ok(());
        };
        self.sweep();
        let key = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(subscriber(v6)),
            },
            v4 => v4,
        };
        self.judge(limiter.check_key(&key), "ip", route)
    }

    /// Counts a request of `user` on `route`; a 429 when it is over the per-user
    /// limit.
    pub fn check_user(&self, user: &UserKey, route: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_user else {
            return Ok(());
        };
        self.judge(limiter.check_key(user), "user", route)
    }

    fn judge(
        &self,
        verdict: Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
        by: &str,
        route: &str,
    ) -> Result<(), ApiError> {
        let Err(not_until) = verdict else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(self.clock.now());
        let secs = u32::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u32::MAX);
        self.metrics
            .rate_limited_total
            .with_label_values(&[by, route])
            .inc();
        Err(ApiError::rate_limited(secs.max(1), by))
    }

    /// Forgets keys whose buckets are full again, at most every few seconds.
    fn sweep(&self) {
        let now = now_ms();
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now < last + SWEEP_EVERY_MS
            || self
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_user {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The /64 of an IPv6 address: one subscriber's addresses count as one client.
fn subscriber(v6: Ipv6Addr) -> Ipv6Addr {
    let s = v6.segments();
    Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{rate_policy, RateLimits as RateConfig, RateSetting};

    fn limits(per_ip: &str, per_user: &str, trusted: &[&str]) -> RateLimits {
        let config = RateConfig {
            per_ip: RateSetting::Text(per_ip.into()),
            per_user: RateSetting::Text(per_user.into()),
        };
        let trusted: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
        RateLimits::new(
            rate_policy(&config, &trusted).unwrap(),
            Arc::new(Metrics::new()),
        )
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_burst_passes_then_429_with_retry_after() {
        let l = limits("3/s", "0", &[]);
        for _ in 0..3 {
            assert!(l.check_ip(ip("10.0.0.1"), "r").is_ok());
        }
        let e = l.check_ip(ip("10.0.0.1"), "r").unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.code(), e.retry_after()),
            (429, 429, Some(1))
        );
        assert!(l.check_ip(ip("10.0.0.2"), "r").is_ok(), "another address");
        assert!(l.check_ip(None, "r").is_ok(), "no address: not counted");
        assert_eq!(
            l.metrics
                .rate_limited_total
                .with_label_values(&["ip", "r"])
                .get(),
            1
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_v4_as_v4() {
        let l = limits("1/s", "0", &[]);
        assert!(l.check_ip(ip("2001:db8:1:2::1"), "r").is_ok());
        assert!(l.check_ip(ip("2001:db8:1:2:ffff::9"), "r").is_err());
        assert!(l.check_ip(ip("2001:db8:1:3::1"), "r").is_ok());
        assert!(l.check_ip(ip("192.0.2.1"), "r").is_ok());
        assert!(l.check_ip(ip("::ffff:192.0.2.1"), "r").is_err());
    }

    #[test]
    fn users_are_counted_per_app() {
        let l = limits("0", "120/min", &[]);
        let (a, b) = (UserKey::user("demo", 1), UserKey::user("other", 1));
        assert!(l.check_user(&a, "r").is_ok());
        assert!(l.check_user(&a, "r").is_ok());
        assert!(l.check_user(&a, "r").is_err(), "a burst of two");
        assert!(l.check_user(&b, "r").is_ok());
        assert!(l.check_user(&UserKey::group("demo", 1), "r").is_ok());
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_peers_only() {
        let l = limits("0", "0", &["10.0.0.0/8"]);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.9, 203.0.113.5, 10.0.0.3".parse().unwrap(),
        );
        assert_eq!(l.client_ip(ip("10.0.0.2"), &headers), ip("203.0.113.5"));
        assert_eq!(l.client_ip(ip("192.0.2.7"), &headers), ip("192.0.2.7"));
        assert_eq!(
            l.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        let mut junk = HeaderMap::new();
        junk.insert("x-forwarded-for", "unknown, nonsense".parse().unwrap());
        assert_eq!(l.client_ip(ip("10.0.0.2"), &junk), ip("10.0.0.2"));
    }
}
