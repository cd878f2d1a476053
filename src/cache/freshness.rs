//! How fresh a cached version is (SPEC §6): the keys filegate mints are immutable, so
//! a version the store vouched for stays fresh for `cache.fresh_for`; then it is
//! revalidated, and while the store fails it may still be served for
//! `cache.stale_if_error`. An object purged recently is revalidated far sooner
//! ([`PURGED_FRESH_MS`]), so a takedown holds whichever comes first, the purge or the
//! delete in the store (docs/caching.md, "Takedowns").

use std::time::Duration;

/// How long a version of a recently purged object stays fresh: a copy cached between
/// a purge and the store's delete is asked about again within this much.
pub const PURGED_FRESH_MS: u64 = 1_000;

/// How fresh a version record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Within its freshness: served without asking the store.
    Fresh,
    /// Past it, within `stale_if_error` more: revalidated, served stale if that fails.
    Stale,
    /// Past both: revalidated, never served on a failure.
    Expired,
}

/// The freshness rules of one cache.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    fresh_for_ms: u64,
    stale_if_error_ms: u64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Freshness {
    /// Rules for `cache.fresh_for` and `cache.stale_if_error`.
    pub fn new(fresh_for: Duration, stale_if_error: Duration) -> Freshness {
        Freshness {
            fresh_for_ms: millis(fresh_for),
            stale_if_error_ms: millis(stale_if_error),
        }
    }

    /// The age of a version the store last vouched for at `validated_at_ms`, at
    /// `now_ms`; `recently_purged`: its object was purged within `fresh_for`.
    pub fn age(&self, validated_at_ms: u64, now_ms: u64, recently_purged: bool) -> Age {
        let fresh_for = if recently_purged {
            self.fresh_for_ms.min(PURGED_FRESH_MS)
        } else {
            self.fresh_for_ms
        };
        let age = now_ms.saturating_sub(validated_at_ms);
        if age < fresh_for {
            Age::Fresh
        } else if age < fresh_for.saturating_add(self.stale_if_error_ms) {
            Age::Stale
        } else {
            Age::Expired
        }
    }

    /// How long after a purge its object counts as recently purged.
    pub fn purge_window_ms(&self) -> u64 {
        self.fresh_for_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_then_stale_then_expired() {
        let f = Freshness::new(Duration::from_secs(600), Duration::from_secs(3600));
        let at = 1_000_000;
        assert_eq!(f.age(at, at, false), Age::Fresh);
        assert_eq!(f.age(at, at + 599_999, false), Age::Fresh);
        assert_eq!(f.age(at, at + 600_000, false), Age::Stale);
        assert_eq!(f.age(at, at + 4_199_999, false), Age::Stale);
        assert_eq!(f.age(at, at + 4_200_000, false), Age::Expired);
        // A clock that went back is fresh, not an underflow.
        assert_eq!(f.age(at, at - 5, false), Age::Fresh);
    }

    #[test]
    fn a_recently_purged_object_is_asked_about_within_a_second() {
        let f = Freshness::new(Duration::from_secs(600), Duration::from_secs(3600));
        let at = 1_000_000;
        assert_eq!(f.age(at, at + 999, true), Age::Fresh);
        assert_eq!(f.age(at, at + 1_000, true), Age::Stale);
        // Its stale window follows the shortened freshness.
        assert_eq!(f.age(at, at + 3_601_000, true), Age::Expired);
        // A freshness already shorter than a second is kept.
        let short = Freshness::new(Duration::from_millis(200), Duration::ZERO);
        assert_eq!(short.age(at, at + 200, true), Age::Expired);
        assert_eq!(f.purge_window_ms(), 600_000);
    }
}
