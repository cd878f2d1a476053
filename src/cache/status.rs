//! What the cache did for a request, where a body came from, and what it is: the
//! values of `X-Cache-Status` and the labels of `filegate_cache_requests_total`.

/// What the cache did for a request: the values of nginx's `$upstream_cache_status`,
/// sent as `X-Cache-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache, fresh.
    Hit,
    /// Fetched (or made) now.
    Miss,
    /// Served from the cache while the store fails (`cache.stale_if_error`).
    Stale,
    /// Served from the cache after the store vouched for it again.
    Revalidated,
    /// Not cached (too large, or not cacheable): streamed from the store.
    Bypass,
}

impl CacheStatus {
    /// Every status, in header order.
    pub const ALL: [CacheStatus; 5] = [
        CacheStatus::Hit,
        CacheStatus::Miss,
        CacheStatus::Stale,
        CacheStatus::Revalidated,
        CacheStatus::Bypass,
    ];

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Bypass => "BYPASS",
        }
    }

    /// The status a header value names (another node's answer to a fill).
    pub fn from_header(value: &str) -> Option<CacheStatus> {
        CacheStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Stale => "stale",
            CacheStatus::Revalidated => "revalidated",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// Where a cached body came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The memory tier.
    Memory,
    /// The disk tier.
    Disk,
    /// Neither (a miss or a bypass).
    None,
}

impl Tier {
    /// Every tier label.
    pub const LABELS: [&'static str; 3] = ["memory", "disk", "none"];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Disk => "disk",
            Tier::None => "none",
        }
    }
}

/// What a cached body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An original object.
    Original,
    /// A thumbnail, cover or MP3.
    Derived,
}

impl Kind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Original => "original",
            Kind::Derived => "derived",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_round_trip() {
        for s in CacheStatus::ALL {
            assert_eq!(CacheStatus::from_header(s.as_str()), Some(s));
        }
        assert_eq!(CacheStatus::from_header("hit"), None);
        assert_eq!(CacheStatus::from_header(""), None);
    }
}
