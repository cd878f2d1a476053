//! `limits.rate` and `limits.trusted_proxies` (SPEC §12): request rates per client
//! address and per user, and whose `X-Forwarded-For` is believed.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::error::ConfigError;

/// A rate setting as written: `"N/s"`, `"N/min"`, or `0` / `"0"` / absent for off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RateSetting {
    /// A number (only 0, off, is accepted).
    Number(u64),
    /// `"N/s"`, `"N/min"`, `"0"`.
    Text(String),
}

/// A limit: so many requests per period, with a burst of one second's worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per `period`.
    pub requests: u32,
    /// One second or one minute.
    pub period: Duration,
}

impl Rate {
    /// Requests a client may send at once: one second's worth, at least one.
    pub fn burst(&self) -> u32 {
        let per_second = u64::from(self.requests) / self.period.as_secs().max(1);
        u32::try_from(per_second.max(1)).unwrap_or(u32::MAX)
    }
}

impl Default for RateSetting {
    fn default() -> Self {
        RateSetting::Number(0)
    }
}

impl RateSetting {
    /// The limit this setting names (`None`: off), or an error naming `key`.
    pub fn rate(&self, key: &str) -> Result<Option<Rate>, ConfigError> {
        let text = match self {
            RateSetting::Number(0) => return Ok(None),
            RateSetting::Number(n) => {
                return Err(ConfigError::new(
                    key,
                    format!("`{n}` has no period: write \"{n}/s\" or \"{n}/min\" (0 is off)"),
                ))
            }
            RateSetting::Text(t) => t.trim(),
        };
        if text == "0" {
            return Ok(None);
        }
        let bad = || {
            ConfigError::new(
                key,
                format!("`{text}` is not a rate like \"200/s\" or \"3000/min\" (0 is off)"),
            )
        };
        let (count, unit) = text.split_once('/').ok_or_else(bad)?;
        let requests: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "minute" => Duration::from_secs(60),
            _ => return Err(bad()),
        };
        if requests == 0 {
            return Ok(None);
        }
        Ok(Some(Rate { requests, period }))
    }
}

/// `limits.rate`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Every request, by client address.
    pub per_ip: RateSetting,
    /// Requests carrying a credential, by app and user.
    pub per_user: RateSetting,
}

/// The checked form of `limits.rate` and `limits.trusted_proxies`.
#[derive(Debug, Clone, Default)]
pub struct RatePolicy {
    /// The per-address limit.
    pub per_ip: Option<Rate>,
    /// The per-user limit.
    pub per_user: Option<Rate>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl RatePolicy {
    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// Checks `limits.rate` and `limits.trusted_proxies`, naming the key at fault.
pub fn rate_policy(rate: &RateLimits, trusted: &[String]) -> Result<RatePolicy, ConfigError> {
    let trusted_proxies = trusted
        .iter()
        .enumerate()
        .map(|(i, cidr)| {
            let cidr = cidr.trim();
            cidr.parse::<IpNet>()
                .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        format!("limits.trusted_proxies[{i}]"),
                        format!("`{cidr}` is not a CIDR like 10.0.0.0/8 or an address"),
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(RatePolicy {
        per_ip: rate.per_ip.rate("limits.rate.per_ip")?,
        per_user: rate.per_user.rate("limits.rate.per_user")?,
        trusted_proxies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> RateSetting {
        RateSetting::Text(s.to_string())
    }

    #[test]
    fn rates_are_per_second_or_per_minute() {
        let r = text("200/s").rate("k").unwrap().unwrap();
        assert_eq!(
            (r.requests, r.period, r.burst()),
            (200, Duration::from_secs(1), 200)
        );
        let r = text("120/min").rate("k").unwrap().unwrap();
        assert_eq!((r.requests, r.burst()), (120, 2));
        assert_eq!(text("30/min").rate("k").unwrap().unwrap().burst(), 1);
        for off in [
            RateSetting::default(),
            RateSetting::Number(0),
            text("0"),
            text("0/s"),
        ] {
            assert_eq!(off.rate("k").unwrap(), None);
        }
        for bad in ["fast", "10", "10/h", "-1/s", "1.5/s", "/s"] {
            let e = text(bad).rate("limits.rate.per_ip").unwrap_err();
            assert!(e.to_string().contains("limits.rate.per_ip"), "{bad}: {e}");
        }
        assert!(RateSetting::Number(5).rate("k").is_err());
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let p = rate_policy(
            &RateLimits::default(),
            &["10.0.0.0/8".into(), "::1".into(), "127.0.0.2".into()],
        )
        .unwrap();
        assert!(p.trusts("10.1.2.3".parse().unwrap()));
        assert!(p.trusts("::1".parse().unwrap()));
        assert!(p.trusts("127.0.0.2".parse().unwrap()));
        assert!(!p.trusts("127.0.0.1".parse().unwrap()));
        let e = rate_policy(&RateLimits::default(), &["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.to_string().contains("limits.trusted_proxies[0]"), "{e}");
    }
}
