//! Requests between nodes are signed with `cluster.secret`: HMAC-SHA256 over a fixed
//! label, the time, a random nonce and the request's spec. A node refuses a request
//! whose signature fails, whose time is more than [`MAX_SKEW_SECS`] away, or whose
//! nonce it has seen (a replay); a client without the secret can never pose as a peer.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The header carrying `<time>.<nonce>.<signature>`.
pub const AUTH_HEADER: &str = "x-filegate-peer";
/// The header carrying the request's spec (base64url JSON).
pub const SPEC_HEADER: &str = "x-filegate-fill";
/// Largest clock difference accepted between nodes.
pub const MAX_SKEW_SECS: u64 = 30;

/// Why a peer request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or malformed headers.
    Malformed,
    /// The signature is not the cluster's.
    BadSignature,
    /// Too old or too far in the future.
    Stale,
    /// A nonce seen before.
    Replayed,
}

impl Refusal {
    /// The message answered.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Malformed => "peer request: malformed signature headers",
            Refusal::BadSignature => "peer request: the signature is not this cluster's",
            Refusal::Stale => "peer request: signed too long ago (or clocks disagree)",
            Refusal::Replayed => "peer request: replayed",
        }
    }
}

fn mac(secret: &Secret, time: u64, nonce: &str, spec: &str) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut m = match HmacSha256::new_from_slice(secret.expose()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    m.update(b"filegate-peer-fill\n");
    m.update(time.to_string().as_bytes());
    m.update(b"\n");
    m.update(nonce.as_bytes());
    m.update(b"\n");
    m.update(spec.as_bytes());
    m
}

/// The value of [`AUTH_HEADER`] for `spec` at `time`.
pub fn sign(secret: &Secret, time: u64, spec: &str) -> String {
    let nonce = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    let sig = mac(secret, time, &nonce, spec).finalize().into_bytes();
    format!("{time}.{nonce}.{}", B64.encode(sig))
}

/// Remembers nonces for as long as a signature can be fresh.
pub struct Nonces {
    seen: moka::sync::Cache<String, ()>,
}

impl Default for Nonces {
    fn default() -> Self {
        Nonces {
            seen: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(2 * MAX_SKEW_SECS + 5))
                .build(),
        }
    }
}

/// Checks `auth` (the [`AUTH_HEADER`] value) for `spec` at `now`.
pub fn verify(
    secret: &Secret,
    auth: &str,
    spec: &str,
    now: u64,
    nonces: &Nonces,
) -> Result<(), Refusal> {
    let mut parts = auth.splitn(3, '.');
    let (Some(time), Some(nonce), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::Malformed);
    };
    let time: u64 = time.parse().map_err(|_| Refusal::Malformed)?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refusal::Malformed);
    }
    let sig = B64.decode(sig).map_err(|_| Refusal::Malformed)?;
    mac(secret, time, nonce, spec)
        .verify_slice(&sig)
        .map_err(|_| Refusal::BadSignature)?;
    if time.abs_diff(now) > MAX_SKEW_SECS {
        return Err(Refusal::Stale);
    }
    // Only after the signature: a forger cannot fill the nonce cache.
    let entry = nonces.seen.entry(nonce.to_string()).or_insert(());
    if !entry.is_fresh() {
        return Err(Refusal::Replayed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify_once() {
        let secret = Secret::new("cluster-secret-0123456789");
        let nonces = Nonces::default();
        let auth = sign(&secret, 1000, "spec");
        assert_eq!(verify(&secret, &auth, "spec", 1010, &nonces), Ok(()));
        assert_eq!(
            verify(&secret, &auth, "spec", 1010, &nonces),
            Err(Refusal::Replayed)
        );
        let other = sign(&secret, 1000, "spec");
        assert_eq!(
            verify(&secret, &other, "another spec", 1000, &nonces),
            Err(Refusal::BadSignature)
        );
        let forged = sign(&Secret::new("not-the-cluster-secret"), 1000, "spec");
        assert_eq!(
            verify(&secret, &forged, "spec", 1000, &nonces),
            Err(Refusal::BadSignature)
        );
        let old = sign(&secret, 1000, "spec");
        assert_eq!(
            verify(&secret, &old, "spec", 1100, &nonces),
            Err(Refusal::Stale)
        );
        assert_eq!(
            verify(&secret, "nonsense", "spec", 1000, &nonces),
            Err(Refusal::Malformed)
        );
    }
}
